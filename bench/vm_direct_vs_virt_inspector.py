"""The direct VM reader against ``virt-inspector`` (and against a directory scan), paired runs.

Usage: ``.venv/bin/python bench/vm_direct_vs_virt_inspector.py [--runs N] [--image FILE]
[--no-inspector]``

Each run, back to back so that machine load drifts over all alike: ``imageaudit facts`` and
``imageaudit scan`` on the Debian qcow2 through the direct reader, ``imageaudit scan`` of the
same tree as a directory, and ``virt-inspector`` on the qcow2 (one libguestfs appliance, with
the same backend settings as the other benchmarks). The direct runs are the CLI with
``--opener direct``, run by this script as ``--worker`` so that it can report the peak RSS of
the process and of the parser child.

Prints the median and minimum of each, and checks the targets of the issue (on 2 cores):
direct ``facts`` at most 1/20 of virt-inspector's wall time; the qcow2 ``scan`` at most 1.5x
the ``scan`` of the directory; peak RSS (worker plus parser child) at most 300 MB.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # the path above makes ``common`` importable as a script
    GUESTFS_ENV,
    IMAGEAUDIT,
    REPO,
    Run,
    debian_qcow2,
    facts_timings,
    machine,
    median,
    run,
)

FACTS_RATIO_TARGET = 1 / 20
SCAN_RATIO_TARGET = 1.5
RSS_TARGET_MB = 300
PYTHON = REPO / ".venv" / "bin" / "python"
RSS_MARK = "bench-rss-kib:"


def worker(argv: list[str]) -> int:
    """Run the CLI in this process; print the peak RSS of this process and its children."""
    from imageaudit.cli.main import main as cli_main

    try:
        code = cli_main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"{RSS_MARK} {json.dumps({'self': own, 'children': child})}", file=sys.stderr)
    return int(code or 0)


def _rss_mb(result: Run) -> float:
    for line in result.stderr.splitlines():
        if line.startswith(RSS_MARK):
            data = json.loads(line[len(RSS_MARK):])
            return (int(data["self"]) + int(data["children"])) / 1024
    return float("nan")


def _line(name: str, values: list[float], unit: str = "s") -> str:
    return f"{name:<28} median {median(values):8.3f} {unit}   min {min(values):8.3f} {unit}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="paired runs (default 5)")
    parser.add_argument("--image", type=Path, help="a qcow2 (default: the cached Debian one)")
    parser.add_argument("--tree", type=Path,
                        help="the same tree as a directory (default: the cached Debian root)")
    parser.add_argument("--no-inspector", action="store_true",
                        help="leave virt-inspector out (no appliance)")
    args = parser.parse_args(argv)
    inspector = None if args.no_inspector else shutil.which("virt-inspector")
    if not args.no_inspector and inspector is None:
        print("virt-inspector is missing: apt-get install libguestfs-tools", file=sys.stderr)
        return 2
    image = args.image or debian_qcow2()
    if args.tree is not None:
        tree = args.tree
    else:
        from tests.builders.debian import debian_root

        tree = debian_root()
    print(f"image: {image} ({image.stat().st_size / 2**20:.0f} MiB on disk); tree: {tree}")
    me = Path(__file__).resolve()
    facts_cmd: list[str | Path] = [PYTHON, me, "--worker", "facts", str(image), "--opener",
                                   "direct", "--format", "json", "-q"]
    scan_cmd: list[str | Path] = [PYTHON, me, "--worker", "scan", str(image), "--opener",
                                  "direct", "-q"]
    dir_cmd: list[str | Path] = [IMAGEAUDIT, "scan", str(tree), "-q"]
    vi_cmd: list[str | Path] = [inspector or "", "--format=qcow2", "-a", str(image)]
    scan_ok = (0, 3)  # 3: a level was not reached, which is a result, not a failure
    series: dict[str, list[float]] = {"facts": [], "inside": [], "open": [], "scan": [],
                                      "dir": [], "vi": []}
    rss: list[float] = []
    facts_ratios: list[float] = []
    scan_ratios: list[float] = []
    for i in range(args.runs):
        facts = run(facts_cmd)
        scan = run(scan_cmd, ok=scan_ok)
        directory = run(dir_cmd, ok=scan_ok)
        series["facts"].append(facts.seconds)
        phases = facts_timings(facts)
        series["inside"].append(phases.get("total", float("nan")))
        series["open"].append(phases.get("open", float("nan")))
        series["scan"].append(scan.seconds)
        series["dir"].append(directory.seconds)
        rss.extend([_rss_mb(facts), _rss_mb(scan)])
        scan_ratios.append(scan.seconds / directory.seconds)
        text = (f"run {i + 1}/{args.runs}: direct facts {facts.seconds:6.2f} s   direct scan "
                f"{scan.seconds:6.2f} s   directory scan {directory.seconds:6.2f} s")
        if inspector:
            vi = run(vi_cmd, GUESTFS_ENV)
            series["vi"].append(vi.seconds)
            facts_ratios.append(facts.seconds / vi.seconds)
            text += f"   virt-inspector {vi.seconds:6.1f} s"
        print(text, flush=True)
    print()
    print(_line("direct facts (qcow2)", series["facts"]))
    print(_line("  of which open+collect", series["inside"]))
    print(_line("  of which open (parser)", series["open"]))
    print(_line("direct scan (qcow2)", series["scan"]))
    print(_line("scan of the tree (directory)", series["dir"]))
    if series["vi"]:
        print(_line("virt-inspector", series["vi"]))
    ok = True
    if facts_ratios:
        ratio = median(facts_ratios)
        good = ratio <= FACTS_RATIO_TARGET
        ok &= good
        print(f"facts / virt-inspector       median of runs {ratio:.3f} (1/{1 / ratio:.0f})  "
              f"target <= 1/20: {'ok' if good else 'OVER TARGET'}")
        inside = median([a / b for a, b in zip(series["inside"], series["vi"], strict=True)])
        print(f"  open+collect / inspector   median of runs {inside:.3f} (1/{1 / inside:.0f})"
              "  (without the CLI's start-up)")
    scan_ratio = median(scan_ratios)
    good = scan_ratio <= SCAN_RATIO_TARGET
    ok &= good
    print(f"qcow2 scan / directory scan  median of runs {scan_ratio:.2f}x  "
          f"target <= {SCAN_RATIO_TARGET}x: {'ok' if good else 'OVER TARGET'}")
    peak = max(rss)
    good = peak <= RSS_TARGET_MB
    ok &= good
    print(f"peak RSS (worker + parser)   {peak:.0f} MB  target <= {RSS_TARGET_MB} MB: "
          f"{'ok' if good else 'OVER TARGET'}")
    print(f"machine: {machine()}")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        raise SystemExit(worker(sys.argv[2:]))
    raise SystemExit(main())
