"""``scan --timeout``: each image is audited in a process of its own, killed whole at the deadline.

The collectors read the image in this process's threads, which cannot be stopped; so, as a
batch does, the audit runs in ``python -m imageaudit.batch.child`` in a session of its own
(the direct reader's child and a libguestfs appliance included), and on the timeout the whole
session is killed. The child tells its sub-steps on stdout, so progress is shown as usual and
the timeout names the sub-step it stopped in. Its stderr (notes, ``--debug`` logging) is ours.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from imageaudit.batch.child import PARENT_ENV
from imageaudit.pipeline import Audited, Auditor, ScanOptions
from imageaudit.progress import Progress

if TYPE_CHECKING:
    import argparse

LOG = logging.getLogger("imageaudit.scan")
# ``facts --timeout`` runs ``imageaudit facts`` again in a child; this names the pipe on which
# the child tells its sub-steps (its stdout is the facts, its stderr the user's).
STEP_FD_ENV = "IMAGEAUDIT_STEP_FD"


def _request(spec: str, options: ScanOptions, formats: list[str]) -> dict[str, Any]:
    def text(path: Path | None) -> str | None:
        return None if path is None else str(path)

    return {
        "path": spec, "formats": formats, "events": True, "debug": options.debug,
        "require": options.require,
        "selection": dataclasses.asdict(options.selection),
        "path_skips": dataclasses.asdict(options.path_skips),
        "tailoring_file": text(options.tailoring_file),
        "show_severities": (None if options.show_severities is None
                            else sorted(s.value for s in options.show_severities)),
        "rules_dir": text(options.rules_dir), "levels_file": text(options.levels_file),
        "waivers_file": text(options.waivers_file), "feeds_dir": text(options.feeds_dir),
        "expiry_days": options.expiry_days, "input_kind": options.input_kind,
        "opener": options.opener, "ioc_files": [str(p) for p in options.ioc_files],
        "yara_rules": text(options.yara_rules), "trivy": options.trivy,
        "trivy_cache": text(options.trivy_cache), "trivy_timeout": options.trivy_timeout,
    }


def _relay(stream: IO[bytes], progress: Progress) -> None:
    for raw in stream:
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if isinstance(event, dict) and isinstance(event.get("step"), str):
            progress.step(event["step"])


def _kill_session(pid: int) -> None:
    """SIGKILL ``pid``, every process below it, also those in sessions of their own (trivy,
    the direct reader, qemu start their own), and what is left in its session."""
    from imageaudit.openers.kvm import kill_tree

    kill_tree(pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def bounded_auditor(options: ScanOptions, formats: list[str], timeout: float) -> Auditor:
    """Audit each image in a child process stopped after ``timeout`` seconds; the child
    renders ``formats`` (and the text summary)."""
    wanted = sorted({*formats, "text"})

    def audit(spec: str, progress: Progress) -> Audited:
        with tempfile.TemporaryDirectory(prefix="imageaudit-scan-") as tmp:
            work = Path(tmp)
            request_path, result_path = work / "request.json", work / "result.json"
            request_path.write_text(json.dumps(_request(spec, options, wanted)), encoding="utf-8")
            child = subprocess.Popen(
                [sys.executable, "-m", "imageaudit.batch.child", str(request_path),
                 str(result_path)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                env={**os.environ, PARENT_ENV: str(os.getpid())},
                start_new_session=True,  # one process group: killed whole, qemu included
            )
            assert child.stdout is not None
            relay = threading.Thread(target=_relay, args=(child.stdout, progress), daemon=True)
            relay.start()
            LOG.debug("%s: auditing in process %d, at most %g s", spec, child.pid, timeout)
            try:
                child.wait(timeout=max(0.0, timeout - progress.elapsed))
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_session(child.pid)  # on the timeout, or what the child left running
                child.wait()
                relay.join(timeout=5)
                child.stdout.close()
            if timed_out:
                return Audited(spec, error=f"{spec}: timed out after {timeout:g} s while "
                                           f"{progress.current or 'starting'}; the audit was "
                                           "stopped and nothing was certified",
                               failure="timeout")
            return _result(spec, child.returncode, result_path)

    return audit


def _result(spec: str, code: int, path: Path) -> Audited:
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        return Audited(spec, error=f"{spec}: the audit process died of {name}",
                       failure="internal")
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return Audited(spec, error=f"{spec}: the audit process exited {code} without a "
                                   f"result ({exc})", failure="internal")
    report = result.get("report")
    if not isinstance(report, dict):
        error = str(result.get("error") or "no report")
        if result.get("retryable"):
            return Audited(spec, error=f"{spec}: {error}", failure="internal")
        return Audited(spec, error=error, failure="unreadable")
    return Audited(spec, data=report, rendered=dict(result.get("rendered") or {}))


def step_listener() -> Any:
    """In a ``facts --timeout`` child: what tells the parent each sub-step, or ``None``."""
    fd = os.environ.pop(STEP_FD_ENV, None)
    if not fd:
        return None
    pipe = os.fdopen(int(fd), "w", buffering=1, encoding="utf-8")

    def tell(what: str) -> None:
        with contextlib.suppress(OSError):
            pipe.write(json.dumps({"step": what}) + "\n")

    return tell


def facts_bounded(args: argparse.Namespace, fmt: str) -> int:
    """``imageaudit facts --timeout``: the same command in a session of its own, killed whole
    at the deadline; the facts and progress are the child's own stdout and stderr."""
    command = [sys.executable, "-m", "imageaudit", "facts", args.image, "--format", fmt,
               "--input-kind", args.input_kind, "--opener", args.opener]
    if args.output:
        command += ["-o", args.output]
    command += ["-q"] * bool(args.quiet) + ["--debug"] * bool(args.debug)
    steps = Progress(enabled=False)
    steps.start(args.image)
    read, write = os.pipe()
    try:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, pass_fds=(write,),
                                 env={**os.environ, STEP_FD_ENV: str(write)},
                                 start_new_session=True)
    finally:
        os.close(write)
    with os.fdopen(read, "rb") as stream:
        relay = threading.Thread(target=_relay, args=(stream, steps), daemon=True)
        relay.start()
        try:
            code = child.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            _kill_session(child.pid)
            child.wait()
            relay.join(timeout=5)
    if code is None:
        print(f"imageaudit: error: {args.image}: timed out after {args.timeout:g} s while "
              f"{steps.current or 'starting'}; it was stopped", file=sys.stderr)
        from imageaudit.errors import EXIT_INTERNAL

        return EXIT_INTERNAL
    return code if code >= 0 else 1


__all__ = ["STEP_FD_ENV", "bounded_auditor", "facts_bounded", "step_listener"]
