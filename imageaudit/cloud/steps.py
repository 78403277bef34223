"""Run a plan: each step is judged on the state read from the cloud before it (already made:
nothing to do), applied, and judged again on the state read back after it. A step that ran
without error but whose change the cloud does not show is a failure with the reason; a failed
gate step (the evidence snapshot) stops the steps after it on the same object."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TextIO

from imageaudit.cloud.actionlog import ActionLog
from imageaudit.cloud.model import Record, Result, State, Step

Echo = Callable[[Record], None]
# HTML line breaks and the like in error bodies (Nova's and Glance's 400s carry <br />)
_TAGS = re.compile(r"<[a-zA-Z/][^<>]{0,20}>")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error_text(exc: BaseException) -> str:
    """An SDK error in one line: openstacksdk's and botocore's carry the HTTP status/code."""
    aws = _aws_error(exc)
    if aws is not None:
        return aws
    for attr in ("details", "message"):
        value = getattr(exc, attr, None)
        if isinstance(value, str) and value.strip():
            status = getattr(exc, "status_code", None)
            prefix = f"HTTP {status}: " if status else ""
            return prefix + " ".join(_TAGS.sub(" ", value).split())[:500]
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"


def _aws_error(exc: BaseException) -> str | None:
    """botocore's ClientError keeps AWS's answer in ``response['Error']`` (code, message): the
    code is what tells the reader why (``UnauthorizedOperation``, ``InvalidInstanceID.NotFound``)
    and the message may be absent."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict) or not isinstance(response.get("Error"), dict):
        return None
    error = response["Error"]
    code = str(error.get("Code") or "error")
    message = " ".join(str(error.get("Message") or "").split())[:500]
    meta = response.get("ResponseMetadata")
    status = meta.get("HTTPStatusCode") if isinstance(meta, dict) else None
    operation = getattr(exc, "operation_name", "")
    text = f"HTTP {status}: " if status else ""
    text += f"{operation} refused: {code}" if operation else code
    return f"{text}: {message}" if message else text


def run_steps(steps: Sequence[Step], *, act: bool, cloud: str, incident: str, image: str,
              log: ActionLog | None, echo: Echo | None = None) -> list[Record]:
    """Judge (``act=False``: the plan) or take (``act=True``) each step; every record taken is
    appended to ``log`` as soon as it is known."""
    records: list[Record] = []
    blocked: dict[str, str] = {}
    for step in steps:
        record = _one(step, act=act, cloud=cloud, incident=incident, image=image,
                      blocked=blocked.get(step.obj.id))
        if step.gate and record.result == "failed":
            blocked.setdefault(step.obj.id, step.action)
        if log is not None and act:
            log.append(record)
        if echo is not None:
            echo(record)
        records.append(record)
    return records


def _one(step: Step, *, act: bool, cloud: str, incident: str, image: str,
         blocked: str | None) -> Record:
    def record(result: Result, before: State, after: State, reason: str = "") -> Record:
        return Record(time=now(), cloud=cloud, incident=incident, image=image, obj=step.obj,
                      action=step.action, before=before, after=after, result=result,
                      reason=reason, note=step.note)

    if blocked is not None:
        return record("skipped", {}, {}, f"not taken: the {blocked} step before it failed")
    try:
        before = step.read()
    except Exception as exc:
        return record("failed", {}, {}, f"cannot read the {step.obj.kind}: {error_text(exc)}")
    if step.reached(before):
        return record("already", before, before)
    if not act:
        return record("planned", before, {})
    try:
        step.apply()
    except Exception as exc:
        after = _read_quietly(step)
        if step.reached(after):  # e.g. a timeout while the cloud finished it anyway
            return record("done", before, after)
        return record("failed", before, after, error_text(exc))
    after = _read_quietly(step)
    if step.reached(after):
        return record("done", before, after)
    return record("failed", before, after, f"{step.unmet} (read back: {_brief(after)})")


def _read_quietly(step: Step) -> State:
    try:
        return step.read()
    except Exception as exc:
        return {"unreadable": error_text(exc)}


def _brief(state: State) -> str:
    return ", ".join(f"{k}={v}" for k, v in state.items()) or "nothing"


RESULT_WORDS = {"planned": "would", "done": "done", "already": "already", "failed": "FAILED",
                "skipped": "skipped"}


def print_record(record: Record, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    line = f"  {RESULT_WORDS[record.result]:8} {record.action:22} {record.obj.label()}"
    if record.reason:
        line += f": {record.reason}"
    print(line, file=out)
    if record.note and record.result in ("planned", "done"):
        print(f"           note: {record.note}", file=out)
