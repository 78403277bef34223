"""trivy as an optional second opinion: a subprocess on a minimal copy of the image's databases.

:func:`run_trivy` copies the release files and package databases out of the image
(:mod:`.trivy_tree`) into a private temporary directory, runs ``trivy rootfs`` on it offline
against the user's own trivy database, with a timeout, and parses the JSON report into
:class:`~imageaudit.vulns.model.AdvisoryMatch` records marked ``source="trivy"``. Anything that
goes wrong (no binary, no database, timeout, a crash, output that is not a report) becomes a
:class:`TrivyResult` with a ``problem`` sentence, never an exception. :func:`merge_trivy` adds
the result to the :class:`~imageaudit.vulns.model.VulnerabilityFacts` of our own matchers.

trivy is found as ``$IMAGEAUDIT_TRIVY`` or ``trivy`` on ``PATH``; its database directory is
``$IMAGEAUDIT_TRIVY_CACHE`` or trivy's default (``~/.cache/trivy``).

Specs: trivy 0.59 CLI (``trivy rootfs``, ``--skip-db-update``, ``--offline-scan``,
``--cache-dir``), trivy JSON report schema version 2, CycloneDX 1.6 (``--format cyclonedx``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imageaudit.imagefs import ImageFS
from imageaudit.model import Severity
from imageaudit.vulns.model import AdvisoryMatch, FeedProblem, VulnerabilityFacts
from imageaudit.vulns.trivy_tree import MinimalTree, build_minimal_tree

ENV_BINARY = "IMAGEAUDIT_TRIVY"
ENV_CACHE = "IMAGEAUDIT_TRIVY_CACHE"
DEFAULT_TIMEOUT = 300.0
MAX_REPORT_BYTES = 256 * 1024 * 1024
MAX_STDERR_BYTES = 64 * 1024

_SEVERITY = {
    "CRITICAL": Severity.CRITICAL,
    "HIGH": Severity.HIGH,
    "MEDIUM": Severity.MODERATE,
    "LOW": Severity.LOW,
}
_LOG_PREFIX = re.compile(r"^\S+\s+(FATAL|ERROR|WARN|INFO|DEBUG)\s+")
_NO_DB = ("first run cannot skip downloading DB", "cannot be specified on the first run")


class TrivyOutputError(ValueError):
    """trivy's output is not the report we asked for."""


@dataclass(frozen=True, slots=True)
class TrivyResult:
    """What one trivy run gave: matches, or the reason it gave none (``problem``)."""

    matches: tuple[AdvisoryMatch, ...] = ()
    problem: str | None = None
    command: tuple[str, ...] = ()
    seconds: float = 0.0
    copied: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True, slots=True)
class _Run:
    report: bytes | None
    problem: str | None
    command: tuple[str, ...]
    seconds: float
    tree: MinimalTree | None


def trivy_env() -> dict[str, str]:
    """The environment trivy runs in: ours without ``TRIVY_*``, so that a user's settings
    (a server, a config file, online updates) never change an offline scan."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TRIVY_")}


def find_trivy(explicit: str | None = None) -> str | None:
    """The trivy binary: ``explicit``, else ``$IMAGEAUDIT_TRIVY``, else ``trivy`` on PATH."""
    for candidate in (explicit, os.environ.get(ENV_BINARY)):
        if candidate:
            found = shutil.which(candidate)
            return found or None
    return shutil.which("trivy")


def default_cache_dir() -> Path:
    """Where trivy's vulnerability database is looked for."""
    env = os.environ.get(ENV_CACHE)
    return Path(env) if env else Path.home() / ".cache" / "trivy"


def _reason(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", errors="replace").splitlines()
    for level in ("FATAL", "ERROR"):
        found = [_LOG_PREFIX.sub("", ln).strip() for ln in lines if f"\t{level}\t" in ln]
        if found:
            return found[-1][:500]
    tail = [ln.strip() for ln in lines if ln.strip()]
    return tail[-1][:500] if tail else "no message"


def _run(
    fs: ImageFS, fmt: str, trivy: str | None, cache_dir: Path | None, timeout: float
) -> _Run:
    binary = find_trivy(trivy)
    if binary is None:
        return _Run(None, f"no trivy binary found (set {ENV_BINARY} or put trivy on PATH)",
                    (), 0.0, None)
    cache = cache_dir or default_cache_dir()
    start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="imageaudit-trivy-"))
    try:
        tree = build_minimal_tree(fs, work / "root")
        if not tree.copied:
            return _Run(None, "the image has no release file or package database for trivy",
                        (), 0.0, tree)
        out, err = work / "report", work / "stderr"
        command = (
            binary, "rootfs", "--format", fmt, *(("--scanners", "vuln") if fmt == "json" else ()),
            "--skip-db-update", "--skip-java-db-update", "--offline-scan",
            "--cache-dir", str(cache), "--cache-backend", "memory", "--pkg-types", "os",
            "--no-progress", "--timeout", f"{int(timeout)}s", "--output", str(out),
            str(tree.root),
        )  # fmt: skip
        env = trivy_env()
        with err.open("wb") as err_handle:
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=err_handle, env=env, cwd=work, start_new_session=True,
            )  # fmt: skip
            try:
                code = proc.wait(timeout=timeout + 5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return _Run(None, f"trivy did not finish within {timeout:g} s", command,
                            time.monotonic() - start, tree)
        seconds = time.monotonic() - start
        with err.open("rb") as handle:
            handle.seek(max(0, err.stat().st_size - MAX_STDERR_BYTES))
            stderr = handle.read()
        if code != 0:
            reason = _reason(stderr)
            if any(marker in reason for marker in _NO_DB):
                return _Run(None, f"trivy has no vulnerability database in {cache}: {reason}",
                            command, seconds, tree)
            return _Run(None, f"trivy exited with status {code}: {reason}", command, seconds, tree)
        if not out.is_file():
            return _Run(None, "trivy wrote no report", command, seconds, tree)
        if out.stat().st_size > MAX_REPORT_BYTES:
            return _Run(None, f"trivy's report is larger than {MAX_REPORT_BYTES} bytes",
                        command, seconds, tree)
        return _Run(out.read_bytes(), None, command, seconds, tree)
    except OSError as exc:
        return _Run(None, f"trivy could not be run: {exc}", (), time.monotonic() - start, None)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _get(mapping: Mapping[str, Any], key: str) -> str:
    value = mapping.get(key)
    return value if isinstance(value, str) else ""


def _cvss(vuln: Mapping[str, Any]) -> tuple[float | None, str | None]:
    cvss = vuln.get("CVSS")
    if not isinstance(cvss, Mapping):
        return None, None
    order = [_get(vuln, "SeveritySource"), "nvd", *sorted(k for k in cvss if isinstance(k, str))]
    for source in order:
        entry = cvss.get(source)
        if isinstance(entry, Mapping) and isinstance(entry.get("V3Score"), (int, float)):
            vector = entry.get("V3Vector")
            return float(entry["V3Score"]), vector if isinstance(vector, str) else None
    return None, None


def report_results(data: bytes) -> Sequence[Any]:
    """The ``Results`` of a trivy JSON report (schema 2); ``TrivyOutputError`` for anything else."""
    try:
        report = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise TrivyOutputError(f"trivy's output is not JSON ({exc})") from exc
    if not isinstance(report, Mapping) or report.get("SchemaVersion") != 2:
        raise TrivyOutputError("trivy's output is not a JSON report of schema version 2")
    results = report.get("Results") or []
    if not isinstance(results, Sequence) or isinstance(results, str):
        raise TrivyOutputError("trivy's report has no list of Results")
    return results


def parse_trivy_json(data: bytes) -> tuple[AdvisoryMatch, ...]:
    """The vulnerabilities of a trivy JSON report (schema 2) as ``source="trivy"`` matches."""
    results = report_results(data)
    matches: dict[tuple[str, str, str], AdvisoryMatch] = {}
    for result in results:
        if not isinstance(result, Mapping):
            raise TrivyOutputError("trivy's report has a Result that is not an object")
        for vuln in result.get("Vulnerabilities") or ():
            if not isinstance(vuln, Mapping):
                raise TrivyOutputError("trivy's report has a Vulnerability that is not an object")
            ident, name = _get(vuln, "VulnerabilityID"), _get(vuln, "PkgName")
            installed = _get(vuln, "InstalledVersion")
            if not ident or not name:
                raise TrivyOutputError("a trivy Vulnerability lacks VulnerabilityID or PkgName")
            score, vector = _cvss(vuln)
            fixed = _get(vuln, "FixedVersion").split(",")[0].strip() or None
            matches[(ident, name, installed)] = AdvisoryMatch(
                id=ident,
                package=name,
                installed_version=installed,
                fixed_version=fixed,
                severity=_SEVERITY.get(_get(vuln, "Severity").upper()),
                source="trivy",
                summary=_get(vuln, "Title")[:300],
                cvss_score=score,
                cvss_vector=vector,
                url=_get(vuln, "PrimaryURL") or None,
                source_name=_get(vuln, "SrcName") or None,
                feed="trivy",
            )
    return tuple(sorted(matches.values(), key=lambda m: (m.package, m.id)))


def run_trivy(
    fs: ImageFS,
    *,
    trivy: str | None = None,
    cache_dir: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> TrivyResult:
    """Scan the image's package databases with trivy, offline; never raises on trivy's faults."""
    run = _run(fs, "json", trivy, cache_dir, timeout)
    copied = run.tree.copied if run.tree else ()
    if run.report is None:
        return TrivyResult(problem=run.problem, command=run.command, seconds=run.seconds,
                           copied=copied)
    try:
        matches = parse_trivy_json(run.report)
    except TrivyOutputError as exc:
        return TrivyResult(problem=str(exc), command=run.command, seconds=run.seconds,
                           copied=copied)
    return TrivyResult(matches, None, run.command, run.seconds, copied)


def trivy_sbom(
    fs: ImageFS,
    *,
    trivy: str | None = None,
    cache_dir: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[dict[str, Any] | None, str | None]:
    """trivy's CycloneDX SBOM of the image's package databases (works without its DB).

    Returns ``(document, None)`` or ``(None, reason)``.
    """
    run = _run(fs, "cyclonedx", trivy, cache_dir, timeout)
    if run.report is None:
        return None, run.problem
    try:
        doc = json.loads(run.report)
    except (ValueError, RecursionError) as exc:
        return None, f"trivy's SBOM is not JSON ({exc})"
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        return None, "trivy's output is not a CycloneDX document"
    return doc, None


def _cves(match: AdvisoryMatch) -> set[str]:
    return {match.id, *match.aliases}


def merge_trivy(facts: VulnerabilityFacts | None, result: TrivyResult) -> VulnerabilityFacts:
    """``facts`` with trivy's result: new matches added, shared ones marked ``osv+trivy``.

    A trivy match is shared when one of ours names the same binary package and has its id
    (a CVE) as id or alias. A failed run becomes a :class:`FeedProblem` of feed ``trivy``.
    """
    base = facts if facts is not None else VulnerabilityFacts(release=None)
    if not result.ok:
        problem = FeedProblem("trivy", result.problem or "trivy failed")
        return dataclasses.replace(base, problems=(*base.problems, problem))
    ours = list(base.advisories)
    added: list[AdvisoryMatch] = []
    for theirs in result.matches:
        shared = [i for i, m in enumerate(ours)
                  if m.package == theirs.package and theirs.id in _cves(m)]  # fmt: skip
        for i in shared:
            if "trivy" not in ours[i].source.split("+"):
                ours[i] = dataclasses.replace(ours[i], source=f"{ours[i].source}+trivy")
        if not shared:
            added.append(theirs)
    replaced = dataclasses.replace(base, advisories=tuple(ours))
    return replaced.with_advisories(tuple(added), source="trivy")
