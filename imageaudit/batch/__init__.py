"""Batch audits: many images in one run, one Dask task per image.

``sources`` turns what the user named (image lists, the catalogue, OCI artefacts, directories,
paths) into items; ``fetch`` and ``registry`` bring a remote image into the cache; ``task`` scans
one item in a confined child process; ``run`` drives the tasks on a Dask cluster and keeps every
result in the results store, so that a run interrupted at any point resumes; ``summary`` writes
what a batch found as JSON, CSV and an HTML page.
"""
