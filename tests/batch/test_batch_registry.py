"""``imageaudit batch oci://…``: VM images held as OCI artefacts in a real registry (Debian's
``docker-registry``, distribution 2.8), pulled, audited and, with ``--attach``, given their
report as an OCI referrer."""

from __future__ import annotations

import json
from pathlib import Path

from imageaudit.batch.registry import parse_oci_ref, referrers
from tests.batch.registry_server import Registry
from tests.batch.test_batch import by_source, run_batch, summary
from tests.batch.test_registry import DISK, push
from tests.builders.batch import build_images, sha512_of
from tests.builders.debian import cache_root


def test_artefacts_pulled_audited_and_reports_attached(oci_registry: Registry,
                                                       tmp_path: Path) -> None:
    weak, clean = build_images(cache_root() / "batch", 2)
    weak_digest = push(oci_registry, "egi/weak-vm:1", [(weak, DISK)])
    push(oci_registry, "egi/clean-vm:1", [(clean, DISK)])
    by_digest = oci_registry.ref(f"egi/weak-vm@{weak_digest}")
    wrong = oci_registry.ref("egi/weak-vm@sha256:" + "0" * 64)
    done = run_batch(tmp_path, by_digest, oci_registry.ref("egi/clean-vm:1"), wrong,
                     oci_registry.ref("egi/no-such-vm:1"), "--insecure-registry", "--attach",
                     "--workers", "2", "--strict")
    assert done.returncode == 1, done.stderr  # two references could not be audited
    results = by_source(summary(tmp_path))
    weak_result = results[str(parse_oci_ref(by_digest))]
    assert weak_result["error"] is None and weak_result["level"] == "none"
    assert weak_result["sha512"] == sha512_of(weak)
    assert results[str(parse_oci_ref(oci_registry.ref("egi/clean-vm:1")))]["error"] is None
    assert "pull failed" in results[str(parse_oci_ref(wrong))]["error"]
    missing = results[str(parse_oci_ref(oci_registry.ref("egi/no-such-vm:1")))]["error"]
    assert "no-such-vm" in missing
    # The report hangs on the artefact: found through the referrers tag schema.
    found = referrers(parse_oci_ref(by_digest), weak_digest, insecure=True)
    assert [r["digest"] for r in found] == [weak_result["reports"]["oci"]]
    assert found[0]["artifactType"] == "application/vnd.imageaudit.report.v1+json"
    report = json.loads((tmp_path / "out" / weak_result["reports"]["json"]).read_text())
    assert report["image"]["source"] == str(parse_oci_ref(by_digest))
    # Again, cached: nothing attached twice.
    again = run_batch(tmp_path, by_digest, "--insecure-registry", "--attach", "--workers", "1")
    assert again.returncode == 0, again.stderr
    assert summary(tmp_path)["images"][0]["cached"], "a known artefact is not pulled again"
    assert len(referrers(parse_oci_ref(by_digest), weak_digest, insecure=True)) == 1
