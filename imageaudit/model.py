"""The shared vocabulary: sources of facts, findings, severities, statuses."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any


@dataclass(frozen=True, slots=True)
class Source:
    """Where a fact was read: a path inside the image and, where it has one, a line number."""

    path: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path} line {self.line}" if self.line is not None else self.path


class Severity(enum.StrEnum):
    """EGI Software Vulnerability Group risk categories, plus ``info``."""

    CRITICAL = "critical"
    HIGH = "high"
    MODERATE = "moderate"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {
    Severity.CRITICAL: 4,
    Severity.HIGH: 3,
    Severity.MODERATE: 2,
    Severity.LOW: 1,
    Severity.INFO: 0,
}


class Status(enum.StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"
    NOT_APPLICABLE = "NOT_APPLICABLE"
    WAIVED = "WAIVED"


@dataclass(frozen=True, slots=True)
class CollectorError:
    """A collector could not read something; the reason is a fact in its own right."""

    collector: str
    message: str
    path: str | None = None
    # True when the collector's facts lack something it had to read whole (a file cut at a
    # cap, a link that leads nowhere, a loop): rules that need those facts cannot be judged.
    incomplete: bool = False


@dataclass(frozen=True, slots=True)
class Evidence:
    path: str | None = None
    line: int | None = None
    observed: str | None = None
    expected: str | None = None


def to_jsonable(value: Any) -> Any:
    """Turn dataclasses, enums, sets and paths into plain JSON-compatible values.

    Iterative enough for our records (their nesting is shallow); strings from the image are
    left as they are here and escaped by each output format. A dataclass field whose metadata
    says ``internal`` is left out, as is one that says ``optional`` while it is None; one with a
    ``shown`` function is written through it (a command line with its credentials masked).
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(_shown(f, value))
            for f in dataclasses.fields(value)
            if not f.metadata.get("internal")
            and not (f.metadata.get("optional") and getattr(value, f.name) is None)
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return [to_jsonable(v) for v in sorted(value, key=str)]
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, PurePath):
        return str(value)
    return value


def _shown(f: dataclasses.Field[Any], record: Any) -> Any:
    """A field's value as written out: through its ``shown`` function (a mask) when it has one.

    The function gets each string (of a tuple of strings too) and the record it belongs to.
    """
    value = getattr(record, f.name)
    shown = f.metadata.get("shown")
    if shown is None:
        return value
    if isinstance(value, str):
        return shown(value, record)
    if isinstance(value, tuple):
        return tuple(shown(v, record) if isinstance(v, str) else v for v in value)
    return value


__all__ = [
    "CollectorError",
    "Evidence",
    "Severity",
    "Source",
    "Status",
    "field",
    "to_jsonable",
]
