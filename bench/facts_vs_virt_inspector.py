"""``imageaudit facts`` against ``virt-inspector`` on the same Debian qcow2, in one run.

Usage: ``.venv/bin/python bench/facts_vs_virt_inspector.py [--runs N] [--image FILE]``

Both tools launch one libguestfs appliance with the same backend settings (``force_tcg``
here, where qemu cannot use KVM) and inspect the same file; runs alternate so that machine
load drifts over both alike. Prints the median and minimum wall time of each, the ratio
(median of the per-run ratios; target: at most 1.3) and the median of our per-phase timings
from the JSON ``timings``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # the path above makes ``common`` importable as a script
    GUESTFS_ENV,
    IMAGEAUDIT,
    Run,
    debian_qcow2,
    facts_timings,
    machine,
    median,
    median_timings,
    run,
)

TARGET = 1.3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each tool (default 3)")
    parser.add_argument("--image", type=Path, help="a qcow2 (default: the cached Debian one)")
    args = parser.parse_args(argv)
    inspector = shutil.which("virt-inspector")
    if inspector is None:
        print("virt-inspector is missing: apt-get install libguestfs-tools", file=sys.stderr)
        return 2
    image = args.image or debian_qcow2()
    print(f"image: {image} ({image.stat().st_size / 2**20:.0f} MiB on disk)")
    vi_cmd = [inspector, "--format=qcow2", "-a", str(image)]
    ours_cmd = [str(IMAGEAUDIT), "facts", str(image), "--format", "json", "-q"]
    vi: list[Run] = []
    ours: list[Run] = []
    phases: list[dict[str, float]] = []
    ratios: list[float] = []
    for i in range(args.runs):
        vi.append(run(vi_cmd, GUESTFS_ENV))
        ours.append(run(ours_cmd, GUESTFS_ENV))
        phases.append(facts_timings(ours[-1]))
        ratios.append(ours[-1].seconds / vi[-1].seconds)
        print(f"run {i + 1}/{args.runs}: virt-inspector {vi[-1].seconds:6.1f} s   "
              f"imageaudit facts {ours[-1].seconds:6.1f} s   ratio {ratios[-1]:.2f}", flush=True)
    vi_s = [r.seconds for r in vi]
    ours_s = [r.seconds for r in ours]
    # Other work on the machine moves launch times by 2x: each run's ratio pairs two runs
    # taken back to back, and the minimum is the least disturbed figure of each tool.
    ratio = median(ratios)
    print()
    print(f"virt-inspector   median {median(vi_s):6.1f} s   min {min(vi_s):6.1f} s")
    print(f"imageaudit facts median {median(ours_s):6.1f} s   min {min(ours_s):6.1f} s")
    verdict = "ok" if ratio <= TARGET else "OVER TARGET"
    print(f"ratio            median of runs {ratio:.2f}x, min/min {min(ours_s) / min(vi_s):.2f}x"
          f"  (target <= {TARGET}x: {verdict})")
    print("imageaudit phases (median s):")
    for key, value in median_timings(phases).items():
        if not key.startswith("collect."):
            print(f"  {key:<20} {value:8.3f}")
    slow = {k: v for k, v in median_timings(phases).items() if k.startswith("collect.")}
    top = sorted(slow.items(), key=lambda kv: -kv[1])[:4]
    print("  slowest collectors:  " + ", ".join(f"{k[8:]}={v:.3f}" for k, v in top))
    print(f"machine: {machine()}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
