"""One image of a batch, as a Dask worker runs it: bring the image into reach, audit it in a
child process under a time and memory bound, return what came out.

The worker fetches or pulls the image itself (into the cache directory, checked against the
SHA-512 or digest its source promised), so a cluster spreads the downloads too. The audit runs
in ``python -m imageaudit.batch.child`` in a session of its own: on the timeout, or when the
child and its own children together pass the memory cap, the whole session is killed and the
image gets an error; the worker itself is untouched and takes the next image.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imageaudit.batch.child import PARENT_ENV
from imageaudit.batch.sources import BatchItem
from imageaudit.tailoring import PathSkips, Selection

# How often the worker looks at the child's memory and the clock.
POLL_SECONDS = 0.2
# The last lines of the child's stderr kept for an error message.
STDERR_TAIL = 2000


@dataclass(frozen=True, slots=True)
class TaskSettings:
    """What every task of a batch shares (plain values: it travels to remote workers)."""

    cache_dir: str
    max_image_bytes: int
    rules_dir: str | None = None
    levels_file: str | None = None
    waivers_file: str | None = None
    feeds_dir: str | None = None
    expiry_days: int | None = None
    input_kind: str = "auto"
    opener: str = "auto"
    formats: tuple[str, ...] = ("json",)
    timeout: float | None = None
    memory_bytes: int | None = None
    insecure_registry: bool = False
    ioc_files: tuple[str, ...] = ()
    yara_rules: str | None = None
    trivy: bool = False
    trivy_cache: str | None = None
    trivy_timeout: float | None = None
    selection: Selection = field(default_factory=Selection)
    path_skips: PathSkips = field(default_factory=PathSkips)
    tailoring_file: str | None = None


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """What a task sends back: the report (JSON) and its rendered outputs, or an error.

    ``sha512`` is the image's, when it is known (a report carries it; a fetch that failed its
    check does not). ``oci_manifest`` is the pulled artefact's manifest digest, for ``--attach``.
    """

    source: str
    report: dict[str, Any] | None = None
    rendered: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    sha512: str | None = None
    seconds: float = 0.0
    oci_manifest: str | None = None
    retryable: bool = False


class _Unreachable(Exception):
    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def _materialize(item: BatchItem, settings: TaskSettings) -> tuple[str, str | None]:
    """A local path for the image, and the OCI manifest digest when it came from a registry."""
    cache = Path(settings.cache_dir)
    if item.kind == "path":
        return item.locator, None
    if item.kind == "http":
        from imageaudit.batch.fetch import FetchError, fetch

        try:
            path = fetch(item.locator, cache, expected_sha512=item.sha512,
                         max_bytes=settings.max_image_bytes)
        except FetchError as exc:
            raise _Unreachable(f"fetch failed: {exc}", retryable=True) from exc
        return str(path), None
    if item.kind == "oci":
        from imageaudit.batch.registry import RegistryError, parse_oci_ref, pull_disk

        try:
            pulled = pull_disk(parse_oci_ref(item.locator), cache,
                               max_bytes=settings.max_image_bytes,
                               insecure=settings.insecure_registry)
        except RegistryError as exc:
            raise _Unreachable(f"pull failed: {exc}", retryable=True) from exc
        return str(pulled.path), pulled.manifest_digest
    raise _Unreachable(f"unknown item kind {item.kind!r}", retryable=False)


def _tree_rss(proc: Any) -> int:
    import psutil

    total = 0
    try:
        for p in [proc, *proc.children(recursive=True)]:
            try:
                total += int(p.memory_info().rss)
            except psutil.Error:
                continue
    except psutil.Error:
        pass
    return total


def _kill_session(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _tail(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][-STDERR_TAIL:] if lines else ""


def run_child(path: str, source: str, settings: TaskSettings) -> dict[str, Any]:
    """Audit ``path`` in a child process under the settings' bounds; the child's result."""
    import psutil

    request = {
        "path": path, "source": source, "formats": list(settings.formats),
        "rules_dir": settings.rules_dir, "levels_file": settings.levels_file,
        "waivers_file": settings.waivers_file, "feeds_dir": settings.feeds_dir,
        "expiry_days": settings.expiry_days, "input_kind": settings.input_kind,
        "opener": settings.opener, "ioc_files": list(settings.ioc_files),
        "yara_rules": settings.yara_rules, "trivy": settings.trivy,
        "trivy_cache": settings.trivy_cache, "trivy_timeout": settings.trivy_timeout,
        "selection": dataclasses.asdict(settings.selection),
        "path_skips": dataclasses.asdict(settings.path_skips),
        "tailoring_file": settings.tailoring_file,
    }
    with tempfile.TemporaryDirectory(prefix="imageaudit-task-") as tmp:
        work = Path(tmp)
        (work / "request.json").write_text(json.dumps(request), encoding="utf-8")
        result_path = work / "result.json"
        with (work / "stderr").open("wb") as err:
            child = subprocess.Popen(
                [sys.executable, "-m", "imageaudit.batch.child", str(work / "request.json"),
                 str(result_path)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                env={**os.environ, PARENT_ENV: str(os.getpid())},
                start_new_session=True,  # one process group: killed whole, grandchildren too
            )
        deadline = None if settings.timeout is None else time.monotonic() + settings.timeout
        watched = psutil.Process(child.pid)
        try:
            while True:
                try:
                    code = child.wait(timeout=POLL_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if deadline is not None and time.monotonic() > deadline:
                    _kill_session(child.pid)
                    child.wait()
                    return {"error": f"no result within the per-image timeout of "
                                     f"{settings.timeout:g} s; the audit was stopped"}
                if settings.memory_bytes is not None:
                    used = _tree_rss(watched)
                    if used > settings.memory_bytes:
                        _kill_session(child.pid)
                        child.wait()
                        return {"error": f"the audit used {used // 2**20} MiB, over the "
                                         f"per-image memory cap of "
                                         f"{settings.memory_bytes // 2**20} MiB; it was stopped"}
        finally:
            if child.poll() is None:
                _kill_session(child.pid)
                child.wait()
            else:
                _kill_session(child.pid)  # what the child left running in its session
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            return {"error": f"the audit process died of {name}"}
        if not result_path.is_file():
            why = _tail(work / "stderr")
            return {"error": f"the audit process exited {code} without a result"
                             + (f": {why}" if why else "")}
        try:
            result: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            return {"error": f"the audit process wrote an unreadable result: {exc}"}
        return result


def audit_item(item: BatchItem, settings: TaskSettings) -> TaskOutcome:
    """What a Dask task runs for one image; never raises for a problem of the image."""
    started = time.monotonic()
    try:
        path, manifest = _materialize(item, settings)
    except _Unreachable as exc:
        return TaskOutcome(source=item.source, error=str(exc), sha512=item.sha512,
                           seconds=time.monotonic() - started, retryable=exc.retryable)
    result = run_child(path, item.source, settings)
    report = result.get("report")
    sha512 = item.sha512
    if isinstance(report, dict):
        cert = report.get("certification") or {}
        sha512 = cert.get("image_sha512") or sha512
    return TaskOutcome(
        source=item.source,
        report=report if isinstance(report, dict) else None,
        rendered=dict(result.get("rendered") or {}),
        error=None if isinstance(report, dict) else str(result.get("error") or "no report"),
        retryable=bool(result.get("retryable", True)),
        sha512=sha512,
        seconds=time.monotonic() - started,
        oci_manifest=manifest,
    )


__all__ = ["TaskOutcome", "TaskSettings", "audit_item", "run_child"]
