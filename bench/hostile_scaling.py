"""How ``imageaudit scan`` scales on hostile configuration: time per input size, per case.

Usage: ``.venv/bin/python bench/hostile_scaling.py [--cases a,b] [--runs N] [--timeout S]``
(``--keep DIR`` keeps the roots)

Builds one small root directory per case and size (no Debian mirror needed) and times
``python -m imageaudit scan ROOT --format json -q`` on each (the shortest of ``--runs``) as a
subprocess, so a case that hangs is stopped at ``--timeout`` and reported as such. The cases:

- ``sshd-include``: N files in ``/etc/ssh/sshd_config.d``, each of which includes
  ``sshd_config.d/*.conf`` again (a fan-out that sshd itself refuses at depth 16);
- ``exports``: N world-writable ``/etc/exports`` lines;
- ``accounts``: N locked accounts in ``/etc/passwd`` and ``/etc/shadow``;
- ``sudoers``: N user-specification lines in ``/etc/sudoers``.

For each case it prints the time per size, the time left once a baseline scan of an empty
root is taken off, and the growth ratio: that time per unit at the largest size over the
same at the smallest size that takes measurably (0.2 s) longer than the baseline (about 1
for linear work, 10 for quadratic over a 10x step). A case is
flagged when its largest size takes over 5 s or its ratio is over 2. Exits 1 when a case is
flagged. ``PYTHONPATH`` is passed through, so another checkout can be measured the same way.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make ``tests.scenario`` importable
    sys.path.insert(0, str(REPO))

from tests.scenario import write_tree  # noqa: E402

LIMIT_S = 5.0
RATIO_LIMIT = 2.0
NOISE_S = 0.2  # extra seconds over the baseline below which a size says nothing about growth
SCAN_EXIT_OK = (0, 3)  # 3: a level is not reached; still a complete scan

SSHD = b"\x7fELF\0OpenSSH_9.2p1 Debian\0"


def _base() -> dict[str, str | bytes]:
    """A minimal root: an os-release and root's account, so every collector has a start."""
    return {
        "/etc/os-release": 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian 12"\n',
        "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\n",
        "/etc/shadow": "root:*:19000:0:99999:7:::\n",
        "/etc/group": "root:x:0:\n",
    }


def sshd_include(n: int) -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = {
        "/usr/sbin/sshd": SSHD,
        "/etc/ssh/sshd_config": "Include sshd_config.d/*.conf\nPermitRootLogin no\n",
    }
    for i in range(n):
        files[f"/etc/ssh/sshd_config.d/{i:05d}.conf"] = (
            f"# file {i}\nInclude sshd_config.d/*.conf\nMaxAuthTries {3 + i % 3}\n"
        )
    return files


def exports(n: int) -> dict[str, str | bytes]:
    return {"/etc/exports": "".join(f"/srv/share{i} *(rw,no_root_squash)\n" for i in range(n))}


def accounts(n: int) -> dict[str, str | bytes]:
    users = range(1000, 1000 + n)
    return {
        "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\n"
        + "".join(f"user{u}:x:{u}:{u}::/home/user{u}:/bin/bash\n" for u in users),
        "/etc/shadow": "root:*:19000:0:99999:7:::\n"
        + "".join(f"user{u}:!:19000:0:99999:7:::\n" for u in users),
        "/etc/group": "root:x:0:\n" + "".join(f"user{u}:x:{u}:\n" for u in users),
    }


def sudoers(n: int) -> dict[str, str | bytes]:
    return {
        "/etc/sudoers": "root ALL=(ALL:ALL) ALL\n"
        + "".join(f"user{i} ALL=(ALL) NOPASSWD: /usr/bin/true{i}\n" for i in range(n)),
    }


CASES: dict[str, tuple[Callable[[int], dict[str, str | bytes]], tuple[int, ...], str]] = {
    "sshd-include": (sshd_include, (10, 100, 1000), "files"),
    "exports": (exports, (1_000, 10_000, 100_000), "lines"),
    "accounts": (accounts, (1_000, 10_000, 100_000), "accounts"),
    "sudoers": (sudoers, (1_000, 10_000, 100_000), "lines"),
}


def time_scan(root: Path, timeout: float) -> float | None:
    """Wall seconds of one scan of ``root``; ``None`` when it was stopped at ``timeout``."""
    cmd = [sys.executable, "-m", "imageaudit", "scan", str(root), "--format", "json", "-q",
           "-o", os.devnull]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False, cwd=root)
    except subprocess.TimeoutExpired:
        return None
    seconds = time.perf_counter() - start
    if proc.returncode not in SCAN_EXIT_OK:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return seconds


def best_of(root: Path, runs: int, timeout: float) -> float | None:
    """The shortest of ``runs`` scans (the least disturbed by other load); ``None`` on timeout."""
    times: list[float] = []
    for _ in range(runs):
        seconds = time_scan(root, timeout)
        if seconds is None:
            return None
        times.append(seconds)
    return min(times)


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs, load average {load}"


def growth(sizes: tuple[int, ...], times: list[float | None],
           baseline: float) -> tuple[str, bool]:
    """The growth ratio as text, and whether the case is flagged.

    Time per unit (baseline taken off) at the largest size over that at the smallest size
    whose own extra time stands above the noise; with no such size the work is too small
    to measure growth, and only the 5 s limit applies.
    """
    large = times[-1]
    if large is None or any(t is None for t in times):
        return "n/a (timed out)", True
    over = large > LIMIT_S
    for n, t in zip(sizes[:-1], times[:-1], strict=True):
        assert t is not None
        if t - baseline >= NOISE_S:
            ratio = ((large - baseline) / sizes[-1]) / ((t - baseline) / n)
            return f"{ratio:.2f} (vs {n:,})", over or ratio > RATIO_LIMIT
    return "n/a (below noise)", over


def _fmt(seconds: float | None, timeout: float) -> str:
    return f">{timeout:.0f} s" if seconds is None else f"{seconds:.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    parser.add_argument("--timeout", type=float, default=150.0, help="seconds per scan")
    parser.add_argument("--runs", type=int, default=1, help="scans per size; the shortest counts")
    parser.add_argument("--keep", metavar="DIR", help="build the roots here and keep them")
    args = parser.parse_args(argv)
    names = [c for c in args.cases.split(",") if c]
    unknown = [c for c in names if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="hostile-bench-"))
    base_root = work / "baseline"
    write_tree(_base(), base_root)
    # The fixed cost (interpreter, imports, rules): the shortest of a few scans of an empty root.
    baseline = best_of(base_root, max(3, args.runs), args.timeout) or 0.0
    print(f"baseline (empty root, best of {max(3, args.runs)}): {baseline:.2f} s")
    rows: list[str] = []
    flagged = False
    for name in names:
        build, sizes, unit = CASES[name]
        times: list[float | None] = []
        for n in sizes:
            root = work / f"{name}-{n}"
            write_tree({**_base(), **build(n)}, root)
            times.append(best_of(root, args.runs, args.timeout))
            print(f"  {name:<13} {n:>7} {unit:<8} {_fmt(times[-1], args.timeout):>9}", flush=True)
        ratio_text, over = growth(sizes, times, baseline)
        flagged |= over
        cells = " | ".join(_fmt(t, args.timeout) for t in times)
        sizes_text = "/".join(f"{n:,}" for n in sizes)
        rows.append(f"| {name} ({sizes_text} {unit}) | {cells} | {ratio_text} | "
                    f"{'OVER' if over else 'ok'} |")
    print()
    print("| case | smallest | middle | largest | growth ratio | flag |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nflag: over {LIMIT_S:.0f} s at the largest size, or growth ratio over "
          f"{RATIO_LIMIT:.0f} (time per unit, baseline {baseline:.2f} s taken off, against the "
          f"smallest size at least {NOISE_S} s above it)")
    print(f"machine: {machine()}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if flagged else 0


if __name__ == "__main__":
    raise SystemExit(main())
