"""The action log: one JSON object per line for every step a ``contain``, ``release`` or
``sync`` took on a cloud (time, cloud, incident, image, object, action, state before and
after, result, reason), kept for the CSIRT and, with ``--publish``, sent to the catalogue.

Lines are appended and flushed to disk one by one, so that an interrupted run leaves every
step it took on record; a run that resumes appends to the same file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from imageaudit.cloud.model import CloudObject, Record
from imageaudit.errors import UsageError

MAX_LINE = 64 * 1024


def state_dir(cloud: str) -> Path:
    """``$XDG_STATE_HOME/imageaudit/cloud/CLOUD`` (``~/.local/state/...``): the cloud's action
    logs and what the site agent remembers of it."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    safe_cloud = cloud.replace("/", "_").replace(":", "_").replace("@", "_")
    return Path(base) / "imageaudit" / "cloud" / safe_cloud


def default_log(cloud: str, incident: str) -> Path:
    """``STATE_DIR/INCIDENT.jsonl``, in :func:`state_dir`."""
    safe_incident = incident.replace("/", "_").replace(":", "_").replace("#", "_")
    return state_dir(cloud) / f"{safe_incident}.jsonl"


class ActionLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: Record) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record.as_json(), sort_keys=True, default=str)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def records(self) -> Iterator[Record]:
        """Every record of the log, oldest first; a line that is not a record is an error
        naming the file and the line (the log is evidence: nothing is skipped silently)."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    if len(line) > MAX_LINE:
                        raise ValueError(f"longer than {MAX_LINE} characters")
                    yield parse_record(json.loads(line))
                except (ValueError, KeyError, TypeError) as exc:
                    raise UsageError(f"{self.path}:{n}: not an action log record: {exc}") from None


def parse_record(raw: Any) -> Record:
    if not isinstance(raw, dict):
        raise ValueError("not an object")
    obj = raw["object"]
    return Record(
        time=str(raw["time"]), cloud=str(raw["cloud"]), incident=str(raw["incident"]),
        image=str(raw["image"]),
        obj=CloudObject(kind=obj["kind"], id=str(obj["id"]), name=str(obj.get("name", "")),
                        project=str(obj.get("project", ""))),
        action=str(raw["action"]), before=dict(raw.get("before") or {}),
        after=dict(raw.get("after") or {}), result=raw["result"],
        reason=str(raw.get("reason", "")), note=str(raw.get("note", "")),
    )
