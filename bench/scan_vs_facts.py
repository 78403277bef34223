"""``imageaudit scan`` against ``imageaudit facts`` on the same Debian images, in one run.

Usage: ``.venv/bin/python bench/scan_vs_facts.py [--runs N] [--skip-vm]``

Two images of one Debian bookworm root: a qcow2 (libguestfs, TCG here) and a ``docker save``
archive. For each, ``facts`` and ``scan`` alternate N times; prints the median wall times and
what judging adds (rules, password checks, certification, image digest). Targets: scan adds
under 20% to facts on the qcow2; the container scan finishes within a few seconds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # the path above makes ``common`` importable as a script
    GUESTFS_ENV,
    IMAGEAUDIT,
    debian_docker_archive,
    debian_qcow2,
    machine,
    median,
    run,
)

VM_TARGET = 0.20
CONTAINER_TARGET_S = 5.0
SCAN_EXIT_OK = (0, 3)  # 3: findings block a level; still a complete scan


def bench(image: Path, runs: int) -> tuple[float, float]:
    """Median wall seconds of (facts, scan) on ``image``."""
    facts_cmd = [str(IMAGEAUDIT), "facts", str(image), "--format", "json", "-q"]
    scan_cmd = [str(IMAGEAUDIT), "scan", str(image), "--format", "json", "-q"]
    facts_s: list[float] = []
    scan_s: list[float] = []
    for i in range(runs):
        facts_s.append(run(facts_cmd, GUESTFS_ENV).seconds)
        scan_s.append(run(scan_cmd, GUESTFS_ENV, ok=SCAN_EXIT_OK).seconds)
        print(f"  run {i + 1}/{runs}: facts {facts_s[-1]:6.2f} s   scan {scan_s[-1]:6.2f} s",
              flush=True)
    return median(facts_s), median(scan_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each command (default 3)")
    parser.add_argument("--skip-vm", action="store_true", help="only the container image")
    args = parser.parse_args(argv)
    ok = True
    rows: list[str] = []
    archive = debian_docker_archive()
    print(f"container: {archive} ({archive.stat().st_size / 2**20:.0f} MiB)")
    facts_c, scan_c = bench(archive, args.runs)
    ok &= scan_c <= CONTAINER_TARGET_S
    rows.append(f"docker-archive  facts {facts_c:6.2f} s  scan {scan_c:6.2f} s  "
                f"overhead {scan_c - facts_c:+6.2f} s  "
                f"(target: scan <= {CONTAINER_TARGET_S:.0f} s: "
                f"{'ok' if scan_c <= CONTAINER_TARGET_S else 'OVER'})")
    if not args.skip_vm:
        qcow2 = debian_qcow2()
        print(f"qcow2: {qcow2} ({qcow2.stat().st_size / 2**20:.0f} MiB on disk)")
        facts_v, scan_v = bench(qcow2, args.runs)
        share = (scan_v - facts_v) / facts_v
        ok &= share < VM_TARGET
        rows.append(f"qcow2           facts {facts_v:6.2f} s  scan {scan_v:6.2f} s  "
                    f"overhead {scan_v - facts_v:+6.2f} s = {share:+.1%}  "
                    f"(target < {VM_TARGET:.0%}: {'ok' if share < VM_TARGET else 'OVER'})")
    print()
    print("\n".join(rows))
    print(f"machine: {machine()}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
