"""``scan --trivy``: trivy's secret scanner (and, with a database, its vulnerability scanner).

:func:`scan_with_trivy` points ``trivy rootfs`` at the image's tree, offline, with a timeout,
and turns its JSON report into :class:`TrivyFacts` (``facts.trivy``): secrets by trivy rule,
file and line (never the secret: trivy's ``Match`` and ``Code`` are not kept), and
vulnerabilities as ``source="trivy"`` :class:`~imageaudit.vulns.model.AdvisoryMatch` records.
A directory input is scanned in place (trivy reads it; it does not follow symlinks); any other
input is copied first, through :class:`~imageaudit.imagefs.ImageFS` (in-image path
resolution, size caps), into a private temporary tree: the release files and package
databases (:mod:`.trivy_tree`) and every text file under :class:`ScanLimits`.

The vulnerability scanner runs only when a trivy database is there (``--trivy-cache DIR``,
``$IMAGEAUDIT_TRIVY_CACHE`` or ``~/.cache/trivy``, holding ``db/trivy.db``); otherwise trivy
gets an empty temporary cache and only the secret scanner runs. trivy never reaches the
network: ``--skip-db-update``, ``--skip-java-db-update``, ``--skip-check-update``,
``--offline-scan``. Every fault (no binary, a timeout, a crash, a report that is not one)
becomes a ``*_problem`` sentence, never an exception.

Specs: trivy 0.59 CLI (``trivy rootfs``, ``--scanners``, ``--skip-dirs``), trivy JSON report
schema version 2 (``Results[].Secrets[]``: ``RuleID``, ``Category``, ``Severity``, ``Title``,
``StartLine``).
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imageaudit.facts.base import WALK_LIMIT, WALK_SKIP, CollectContext
from imageaudit.imagefs import FileStat, ImageFS, ImageFSError
from imageaudit.vulns.model import AdvisoryMatch
from imageaudit.vulns.trivy import (
    ENV_BINARY,
    MAX_REPORT_BYTES,
    MAX_STDERR_BYTES,
    TrivyOutputError,
    _reason,
    default_cache_dir,
    find_trivy,
    parse_trivy_json,
    report_results,
    trivy_env,
)
from imageaudit.vulns.trivy_tree import build_minimal_tree

if TYPE_CHECKING:
    from imageaudit.facts import Facts

DEFAULT_TIMEOUT = 600.0
MAX_SECRETS = 10_000
SNIFF_BYTES = 8192
NO_TRIVY = f"no trivy binary found (set {ENV_BINARY} or put trivy on PATH)"


@dataclass(frozen=True, slots=True)
class ScanLimits:
    """Caps on the copy of a non-directory image's text files for trivy."""

    max_file_bytes: int = 8 * 1024 * 1024
    max_total_bytes: int = 1024 * 1024 * 1024
    max_files: int = 200_000
    max_walk: int = WALK_LIMIT


@dataclass(frozen=True, slots=True)
class TrivySecret:
    """One secret trivy found: its rule, where (in-image path, line); never the secret."""

    rule_id: str
    category: str
    severity: str  # trivy's: CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN
    title: str
    path: str
    line: int | None


@dataclass(frozen=True, slots=True)
class TrivyFacts:
    """What ``scan --trivy`` found, and why a scanner gave nothing when it could not run.

    ``secret_problem`` / ``vuln_problem`` say why that scanner's results are missing;
    ``incomplete`` why the secret scan did not see every text file of the image (a cap of
    the copy); the secrets found are kept either way.
    """

    secrets: tuple[TrivySecret, ...] = ()
    vulnerabilities: tuple[AdvisoryMatch, ...] = ()
    secret_problem: str | None = None
    vuln_problem: str | None = None
    incomplete: str | None = None
    database: str | None = None
    command: tuple[str, ...] = ()
    seconds: float = 0.0


def _text(mapping: Mapping[str, Any], key: str, limit: int = 300) -> str:
    value = mapping.get(key)
    return value[:limit] if isinstance(value, str) else ""


def parse_trivy_secrets(data: bytes) -> tuple[TrivySecret, ...]:
    """The secrets of a trivy JSON report (schema 2), by file and line; ``Match`` is dropped."""
    results = report_results(data)
    found: dict[tuple[str, int | None, str], TrivySecret] = {}
    for result in results:
        if not isinstance(result, Mapping):
            raise TrivyOutputError("trivy's report has a Result that is not an object")
        target = _text(result, "Target", 4096)
        for secret in result.get("Secrets") or ():
            if not isinstance(secret, Mapping):
                raise TrivyOutputError("trivy's report has a Secret that is not an object")
            rule_id = _text(secret, "RuleID", 100)
            if not rule_id or not target:
                raise TrivyOutputError("a trivy Secret lacks RuleID or its Target")
            line = secret.get("StartLine")
            line = line if isinstance(line, int) and not isinstance(line, bool) else None
            path = posixpath.normpath("/" + target.lstrip("/"))
            found[(path, line, rule_id)] = TrivySecret(
                rule_id=rule_id,
                category=_text(secret, "Category", 100),
                severity=_text(secret, "Severity", 20).upper() or "UNKNOWN",
                title=_text(secret, "Title", 200),
                path=path,
                line=line,
            )
            if len(found) >= MAX_SECRETS:
                break
    return tuple(sorted(found.values(), key=lambda s: (s.path, s.line or 0, s.rule_id)))


def has_database(cache_dir: Path) -> bool:
    """Whether ``cache_dir`` holds a trivy vulnerability database (``db/trivy.db``)."""
    return (cache_dir / "db" / "trivy.db").is_file()


def _write(root: Path, path: str, data: bytes) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    with os.fdopen(os.open(target, flags, 0o600), "wb") as handle:
        handle.write(data)


def _safe_path(path: str) -> bool:
    parts = path.strip("/").split("/")
    return path.startswith("/") and all(p not in ("", ".", "..") and "\x00" not in p
                                        for p in parts)  # fmt: skip


def copy_tree(
    fs: ImageFS, root: Path, walk: Iterable[FileStat] | None = None,
    limits: ScanLimits | None = None,
) -> str | None:
    """Copy the package databases and the text files of ``fs`` into the empty dir ``root``.

    ``walk`` is the image's entries when already listed (the collectors' shared walk).
    Returns why the copy is not
    the image's every text file (a cap hit, a file that could not be read), or ``None``.
    """
    limits = limits or ScanLimits()
    root.mkdir(mode=0o700, exist_ok=True)
    copied = set(build_minimal_tree(fs, root).copied)
    left_out: list[str] = []
    total = files = seen = 0
    if walk is None:
        walk = fs.walk("/", max_entries=limits.max_walk + 1, skip=WALK_SKIP)
    for st in walk:
        seen += 1
        if seen > limits.max_walk:
            return f"the walk of the image stopped after {limits.max_walk} entries"
        if not st.is_file or st.size == 0 or st.path in copied or not _safe_path(st.path):
            continue
        try:
            head = fs.read(st.path, SNIFF_BYTES)
            if b"\x00" in head.data:
                continue  # binary: trivy's secret scanner skips it too
            if st.size > limits.max_file_bytes:
                left_out.append(f"{st.path} (larger than {limits.max_file_bytes} bytes)")
                continue
            if files >= limits.max_files or total + st.size > limits.max_total_bytes:
                return (f"the copy of the image's text files stopped at {files} files, "
                        f"{total} bytes")  # fmt: skip
            result = head if not head.truncated else fs.read(st.path, limits.max_file_bytes)
        except ImageFSError as exc:
            left_out.append(f"{st.path} ({exc})")
            continue
        if result.truncated:
            left_out.append(f"{st.path} (larger than {limits.max_file_bytes} bytes)")
            continue
        try:
            _write(root, st.path, result.data)
        except OSError as exc:  # a file and a directory of the same name, say
            left_out.append(f"{st.path} ({exc.strerror})")
            continue
        files += 1
        total += len(result.data)
    if left_out:
        more = f" and {len(left_out) - 3} more" if len(left_out) > 3 else ""
        return "text files left out of trivy's copy: " + ", ".join(left_out[:3]) + more
    return None


def _command(binary: str, scanners: str, cache: Path, timeout: float, out: Path,
             target: Path) -> tuple[str, ...]:
    skip = [d.lstrip("/") for d in WALK_SKIP]
    return (
        binary, "rootfs", "--format", "json", "--scanners", scanners,
        "--skip-db-update", "--skip-java-db-update", "--skip-check-update", "--offline-scan",
        "--cache-dir", str(cache), "--cache-backend", "memory", "--pkg-types", "os",
        *(a for d in skip for a in ("--skip-dirs", d)),
        "--no-progress", "--timeout", f"{int(timeout)}s", "--output", str(out), str(target),
    )  # fmt: skip


def _execute(command: tuple[str, ...], work: Path, timeout: float) -> tuple[bytes | None, str]:
    out, err = Path(command[command.index("--output") + 1]), work / "stderr"
    env = trivy_env()
    with err.open("wb") as err_handle:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err_handle,
            env=env, cwd=work, start_new_session=True,
        )  # fmt: skip
        try:
            code = proc.wait(timeout=timeout + 5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None, f"trivy did not finish within {timeout:g} s"
    with err.open("rb") as handle:
        handle.seek(max(0, err.stat().st_size - MAX_STDERR_BYTES))
        stderr = handle.read()
    if code != 0:
        return None, f"trivy exited with status {code}: {_reason(stderr)}"
    if not out.is_file():
        return None, "trivy wrote no report"
    if out.stat().st_size > MAX_REPORT_BYTES:
        return None, f"trivy's report is larger than {MAX_REPORT_BYTES} bytes"
    return out.read_bytes(), ""


def scan_with_trivy(
    fs: ImageFS,
    *,
    directory: Path | None = None,
    walk: Iterable[FileStat] | None = None,
    trivy: str | None = None,
    cache_dir: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    limits: ScanLimits | None = None,
) -> TrivyFacts:
    """Run trivy's secret (and, with a database, vulnerability) scanner on the image, offline.

    ``directory`` is the image's root on disk when the input is a directory (scanned in
    place); otherwise ``fs`` is copied first (``walk``: its entries, when already listed).
    Never raises on trivy's faults.
    """
    binary = find_trivy(trivy)
    if binary is None:
        return TrivyFacts(secret_problem=NO_TRIVY, vuln_problem=NO_TRIVY)
    db_dir = cache_dir or default_cache_dir()
    with_db = has_database(db_dir)
    vuln_problem = None if with_db else (
        f"no trivy vulnerability database in {db_dir} (give --trivy-cache DIR holding "
        "db/trivy.db, e.g. from `trivy image --download-db-only --cache-dir DIR`)"
    )
    start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="imageaudit-trivy-"))
    try:
        incomplete = None
        target = directory.resolve() if directory is not None else None
        if target is None:
            target = work / "root"
            incomplete = copy_tree(fs, target, walk, limits)
        cache = db_dir if with_db else work / "cache"
        scanners = "vuln,secret" if with_db else "secret"
        command = _command(binary, scanners, cache, timeout, work / "report", target)
        report, problem = _execute(command, work, timeout)
        seconds = round(time.monotonic() - start, 3)
        base = TrivyFacts(vuln_problem=vuln_problem, incomplete=incomplete, command=command,
                          database=str(db_dir) if with_db else None, seconds=seconds)
        if report is None:
            return dataclasses.replace(base, secret_problem=problem,
                                       vuln_problem=vuln_problem or problem)
        try:
            secrets = parse_trivy_secrets(report)
            vulns = parse_trivy_json(report) if with_db else ()
        except TrivyOutputError as exc:
            return dataclasses.replace(base, secret_problem=str(exc),
                                       vuln_problem=vuln_problem or str(exc))
        return dataclasses.replace(base, secrets=secrets, vulnerabilities=vulns)
    except OSError as exc:
        problem = f"trivy could not be run: {exc}"
        return TrivyFacts(secret_problem=problem, vuln_problem=vuln_problem or problem,
                          seconds=round(time.monotonic() - start, 3))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def trivy_identity(trivy: str | None = None, cache_dir: Path | None = None) -> str:
    """What trivy's findings depend on besides the image: its version and its database's.

    ``trivy --version`` names both (the database's version and when it was built); a batch
    keys its stored results by it, so a new trivy or database audits the images again. A
    missing trivy, or one that does not answer, is named instead: the rules are then errors.
    """
    binary = find_trivy(trivy)
    if binary is None:
        return "trivy: absent"
    db_dir = cache_dir or default_cache_dir()
    env = trivy_env()
    try:
        done = subprocess.run(
            (binary, "--version", "--cache-dir", str(db_dir)), stdin=subprocess.DEVNULL,
            capture_output=True, env=env, timeout=60, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"trivy: {binary} did not answer ({type(exc).__name__})"
    if done.returncode != 0:
        return f"trivy: {binary} --version exited with status {done.returncode}"
    text = done.stdout[:MAX_STDERR_BYTES].decode("utf-8", errors="replace")
    return "trivy: " + " ".join(text.split())


def trivy_step(
    directory: Path | None = None,
    *,
    trivy: str | None = None,
    cache_dir: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Callable[[CollectContext, Facts], Facts]:
    """A step for :func:`~imageaudit.facts.collect_facts` (``after``) attaching ``facts.trivy``.

    ``directory`` is the image's root when the input is a directory; otherwise the image is
    copied through the open ``fs``, using the collectors' shared walk.
    """

    def run_trivy_scan(ctx: CollectContext, facts: Facts) -> Facts:
        # A directory spec opened as anything else (an OCI layout) is copied like an archive.
        root = directory if ctx.fs.info.kind == "directory" else None
        walk = ctx.walk() if root is None else None
        result = scan_with_trivy(ctx.fs, directory=root, walk=walk, trivy=trivy,
                                 cache_dir=cache_dir, timeout=timeout)
        if walk is not None and ctx.walk_truncated and not result.incomplete:
            cut = f"the walk of the image stopped after {ctx.walk_limit} entries"
            result = dataclasses.replace(result, incomplete=cut)
        return dataclasses.replace(facts, trivy=result)

    return run_trivy_scan
