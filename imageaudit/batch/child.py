"""The process that audits one image of a batch: ``python -m imageaudit.batch.child REQUEST
RESULT``.

A batch worker starts one of these per image (:mod:`imageaudit.batch.task`) so that an image
that crashes the reader, exhausts memory or never finishes takes only this process with it: the
worker kills it, reports an error for that image and goes on. It reads the request (JSON: the
image, how to judge it, which outputs to render), runs the same pipeline as ``imageaudit scan``
and writes the result (JSON) to the file it was given, atomically. ``imageaudit scan
--timeout`` runs it too, one per image; asked (``events``), it writes each sub-step as a JSON
line on stdout for the parent's progress; otherwise nothing is written on stdout.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any


def _options(request: dict[str, Any]) -> Any:
    from imageaudit.pipeline import ScanOptions
    from imageaudit.tailoring import PathSkips, Selection

    def path(key: str) -> Path | None:
        value = request.get(key)
        return Path(value) if value else None

    return ScanOptions(
        rules_dir=path("rules_dir"),
        levels_file=path("levels_file"),
        waivers_file=path("waivers_file"),
        feeds_dir=path("feeds_dir"),
        expiry_days=request.get("expiry_days"),
        progress=False,
        input_kind=request.get("input_kind") or "auto",
        opener=request.get("opener") or "auto",
        ioc_files=tuple(Path(p) for p in request.get("ioc_files") or ()),
        yara_rules=path("yara_rules"),
        trivy=bool(request.get("trivy")),
        trivy_cache=path("trivy_cache"),
        trivy_timeout=request.get("trivy_timeout"),
        selection=Selection(**{k: tuple(v) for k, v in (request.get("selection") or {}).items()}),
        path_skips=PathSkips(**{k: tuple(v) for k, v in (request.get("path_skips") or {}).items()}),
        tailoring_file=path("tailoring_file"),
    )


def _step_events() -> Any:
    """A progress that tells the parent each sub-step, one JSON line on stdout
    (``imageaudit scan --timeout`` shows them and names the last one on a timeout)."""
    from imageaudit.progress import Progress

    def tell(what: str) -> None:
        sys.stdout.write(json.dumps({"step": what}) + "\n")
        sys.stdout.flush()

    return Progress(enabled=False, listener=tell)


def audit(request: dict[str, Any]) -> dict[str, Any]:
    """Scan the image the request names; the report and its rendered outputs, or an error."""
    from imageaudit.errors import describe_user_error
    from imageaudit.model import Severity
    from imageaudit.pipeline import Judge, render_shown, scan_one

    try:
        options = _options(request)
        judge = Judge.load(options)
        progress = _step_events() if request.get("events") else None
        report = scan_one(request["path"], judge, options, source=request.get("source"),
                          progress=progress)
        show = request.get("show_severities")
        shown_as = None if show is None else frozenset(Severity(v) for v in show)
        rendered = {fmt: render_shown(report, fmt, shown_as, request.get("require"))
                    for fmt in request.get("formats", [])}
    except MemoryError:
        return {"error": "ran out of memory while auditing the image", "retryable": True}
    except Exception as exc:
        known = describe_user_error(exc)
        if known is not None:
            # The image (or the configuration) is at fault: the same audit fails the same way.
            return {"error": known, "retryable": False}
        detail = traceback.format_exception_only(exc)[-1].strip()
        return {"error": f"internal error: {detail}", "retryable": True}
    return {"report": report.to_json(), "rendered": rendered}


PARENT_ENV = "IMAGEAUDIT_BATCH_PARENT"


def _die_with_parent() -> None:
    """Ask the kernel to kill this process when the worker that started it dies, so that a
    worker killed mid-audit leaves no orphan audit running."""
    import ctypes
    import os
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    expected = os.environ.get(PARENT_ENV)
    if expected and os.getppid() != int(expected):
        os._exit(1)  # the worker died before the request was even read


def main(argv: list[str]) -> int:
    _die_with_parent()
    if len(argv) != 2:
        print("usage: python -m imageaudit.batch.child REQUEST.json RESULT.json", file=sys.stderr)
        return 2
    request_path, result_path = (Path(a) for a in argv)
    request = json.loads(request_path.read_text(encoding="utf-8"))
    if request.get("debug"):
        import logging

        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result = audit(request)
    tmp = result_path.with_name(result_path.name + ".tmp")
    tmp.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    tmp.replace(result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
