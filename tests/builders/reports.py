"""Reports for the tests that carry them: the golden report bound to an image, as recorded or
made genuine for a certification level (for the publisher and the catalogue tests alike)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from imageaudit.certify import load_levels, required_rules
from imageaudit.engine import worst_status
from imageaudit.model import Status
from integrations.appdb.schemas import format_time
from integrations.appdb.verify import _outcomes, expected_certification, shipped_levels_file

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden" / "report.json"


def make_report(sha: str, level: str | None = None, *,
                issued: timedelta = timedelta(minutes=-1),
                expires: timedelta = timedelta(days=30)) -> dict[str, Any]:
    """The golden report bound to the image of SHA-512 ``sha``.

    Without ``level`` it is otherwise as recorded (its dates, its findings): the same report
    each time for a given ``sha``. With ``level`` it is a genuine report that reaches ``level``,
    issued and expiring ``issued`` and ``expires`` from now: the findings that would block
    ``level`` (or one below) turned into passes, and the rules' statuses, the summary and the
    certification recomputed as imageaudit does.
    """
    doc: dict[str, Any] = copy.deepcopy(json.loads(GOLDEN.read_text(encoding="utf-8")))
    doc["image"]["sha512"] = sha
    cert = doc["certification"]
    cert["image_sha512"] = sha
    if level is None:
        return doc
    now = datetime.now(UTC)
    cert["issued"], cert["expires"] = format_time(now + issued), format_time(now + expires)
    levels = load_levels(shipped_levels_file())
    names = list(levels.names())
    required = required_rules(levels, _outcomes(doc))
    if level in names:
        for f in doc["findings"]:
            if f["rule_id"] in required[level] and f["status"] in ("FAIL", "ERROR"):
                f["status"], f["message"] = "PASS", "Passes (made so by the test)"
        if level != names[-1]:
            # Keep the next level out of reach: a waived finding it requires is not waived.
            above = set(required[names[names.index(level) + 1]]) - set(required[level])
            for f in doc["findings"]:
                if f["rule_id"] in above and f["status"] == "WAIVED":
                    f.update(status="FAIL", waived=False, waiver=None)
    _settle(doc)
    got = expected_certification(doc, levels)
    assert got.level == level, (got.level, level)
    cert["level"] = got.level
    cert["levels"] = [{"name": lv.name, "description": lv.description, "granted": lv.granted,
                       "blocking": list(lv.blocking), "unevaluated": list(lv.unevaluated)}
                      for lv in got.levels]
    return doc


def _settle(doc: dict[str, Any]) -> None:
    """Rules' statuses and the summary from the findings, as imageaudit makes them."""
    for rule in doc["rules"]:
        statuses = {Status(f["status"]) for f in doc["findings"] if f["rule_id"] == rule["id"]}
        rule["status"] = worst_status(statuses).value
    doc["summary"] = {st: sum(f["status"] == st for f in doc["findings"])
                      for st in ("PASS", "FAIL", "ERROR", "NOT_APPLICABLE", "WAIVED")}
