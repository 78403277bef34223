"""``imageaudit batch`` on a 2-worker local Dask cluster against a sequential loop of ``scan``.

Usage: ``.venv/bin/python bench/batch_throughput.py [--runs N] [--images N] [--entries N]``

Builds (or reuses) N distinct images (default 40: qcow2 disks and docker archives in turn,
from the test builders), then, N runs, back to back: a shell-style loop running ``imageaudit
scan IMG --format json -q`` on each image one after the other, and ``imageaudit batch DIR
--workers 2 --force`` on the directory holding them (``--force``: every image audited again,
nothing taken from an earlier run). Prints images per minute for both, the median of the
per-run ratios (target: at least 1.8 on 2 cores), then times a second, fully cached ``batch``
over an image list of ``--entries`` entries (default 1,000: the distinct images, each listed
under many identifiers and URLs, as copies of one image are in a federation's lists) served
by a local HTTP server (target: under 5 s). Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import IMAGEAUDIT, REPO, machine, median, run  # the path above makes it importable

RATIO_TARGET = 1.8
CACHED_TARGET_S = 5.0
SCAN_EXIT_OK = (0, 3)  # 3: findings block a level; still a complete scan


def build(count: int) -> list[Path]:
    from tests.builders.batch import build_images
    from tests.builders.debian import cache_root

    return build_images(cache_root() / "batch-bench", count, kinds=("qcow2", "docker-archive"))


def sequential(images: list[Path], out: Path) -> float:
    total = 0.0
    for i, image in enumerate(images):
        total += run([IMAGEAUDIT, "scan", image, "--format", "json", "-o", out / f"{i}.json",
                      "-q"], ok=SCAN_EXIT_OK).seconds
    return total


def batch(folder: Path, work: Path, *extra: str) -> float:
    cmd = [IMAGEAUDIT, "batch", folder, "--workers", "2", "--store", work / "results.db",
           "--output-dir", work / "out", "--cache-dir", work / "cache", "-q", *extra]
    return run(cmd).seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="paired runs (default 3)")
    parser.add_argument("--images", type=int, default=40, help="distinct images (default 40)")
    parser.add_argument("--entries", type=int, default=1000,
                        help="entries of the image list for the cached run (default 1000)")
    args = parser.parse_args(argv)
    images = build(args.images)
    print(f"{len(images)} distinct images ({sum(p.stat().st_size for p in images) / 2**20:.0f} "
          f"MiB); {machine()}", flush=True)
    ok = True
    with tempfile.TemporaryDirectory(prefix="imageaudit-bench-") as tmp:
        work = Path(tmp)
        folder = work / "images"
        folder.mkdir()
        for image in images:
            (folder / image.name).symlink_to(image)
        (work / "scan").mkdir()
        seq_s: list[float] = []
        batch_s: list[float] = []
        for i in range(args.runs):
            seq_s.append(sequential(images, work / "scan"))
            batch_s.append(batch(folder, work, "--force"))
            print(f"  run {i + 1}/{args.runs}: scan loop {seq_s[-1]:7.2f} s   "
                  f"batch {batch_s[-1]:7.2f} s   ratio {seq_s[-1] / batch_s[-1]:.2f}",
                  flush=True)
        ratio = median([s / b for s, b in zip(seq_s, batch_s, strict=True)])
        per_min = [60 * len(images) / median(seq_s), 60 * len(images) / median(batch_s)]
        ok &= ratio >= RATIO_TARGET
        print(f"\n{'':24}{'scan loop':>12}{'batch (2 workers)':>20}")
        print(f"{'images per minute':24}{per_min[0]:12.1f}{per_min[1]:20.1f}")
        print(f"{'median wall seconds':24}{median(seq_s):12.2f}{median(batch_s):20.2f}")
        print(f"ratio (median of paired runs): {ratio:.2f}  target >= {RATIO_TARGET}  "
              f"{'ok' if ratio >= RATIO_TARGET else 'MISSED'}")
        ok &= cached_run(images, work, args.entries, args.runs)
    return 0 if ok else 1


def cached_run(images: list[Path], work: Path, entries: int, runs: int) -> bool:
    """A fully cached batch over an image list of ``entries`` entries."""
    from tests.batch.httpserver import FileServer
    from tests.builders.batch import image_list

    files = {f"/{p.name}": p.read_bytes() for p in images}
    with FileServer(files) as srv:
        listed = [(f"entry-{i:05d}", srv.url(f"/{images[i % len(images)].name}") + f"?copy={i}",
                   images[i % len(images)]) for i in range(entries)]
        (work / "big.list").write_bytes(image_list(listed, identifier="bench-list"))
        doc = json.loads((work / "big.list").read_text())
        assert len(doc["hv:imagelist"]["hv:images"]) == entries
        batch(work / "big.list", work)  # first pass: fetches and audits what is new
        seconds = [batch(work / "big.list", work) for _ in range(runs)]
    took = median(seconds)
    ok = took < CACHED_TARGET_S
    print(f"cached batch over {entries} list entries ({len(images)} distinct images): "
          f"median {took:.2f} s  target < {CACHED_TARGET_S:.0f} s  {'ok' if ok else 'MISSED'}")
    return ok


if __name__ == "__main__":
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    sys.exit(main())
