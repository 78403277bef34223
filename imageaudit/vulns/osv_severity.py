"""Severity of an OSV record: CVSS base score from its vectors, else the distribution's word.

OSV carries severity as ``severity[]`` entries (``CVSS_V3``, ``CVSS_V4``, ``CVSS_V2`` vectors;
``Ubuntu`` priority words) on the record or on one ``affected[]`` entry, and distributions add
their own rating under ``ecosystem_specific``/``database_specific`` (Debian's ``urgency``, Red
Hat's ``Important``). Scores map onto the EGI SVG scale: critical >= 9.0, high >= 7.0,
moderate >= 4.0, low > 0.

Specs: OSV schema 1.6 (``severity``), CVSS v3.1 and v4.0 specifications (FIRST), Debian
security tracker urgencies, Ubuntu CVE priorities, Red Hat severity ratings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

from imageaudit.model import Severity

# Preference among vector types: the SVG scale was written for CVSS v3 scores.
_VECTOR_ORDER = ("CVSS_V3", "CVSS_V4", "CVSS_V2")
MAX_VECTOR_CHARS = 256

# Words distributions use for their own rating, lower-cased. ``None``: a word that is no rating.
_WORDS: dict[str, Severity | None] = {
    "critical": Severity.CRITICAL,
    "important": Severity.HIGH,
    "high": Severity.HIGH,
    "moderate": Severity.MODERATE,
    "medium": Severity.MODERATE,
    "low": Severity.LOW,
    "negligible": Severity.INFO,
    "unimportant": Severity.INFO,
    "not yet assigned": None,
    "end-of-life": None,
    "unknown": None,
    "untriaged": None,
}
_WORD_KEYS = ("severity", "urgency", "priority")


@dataclass(frozen=True, slots=True)
class SeverityInfo:
    """A record's severity, the CVSS score and vector it came from (when it came from one)."""

    severity: Severity | None
    score: float | None = None
    vector: str | None = None
    basis: str = ""  # "CVSS_V3", "urgency", "Ubuntu", ... (said in finding messages)


def severity_of_score(score: float) -> Severity | None:
    """The EGI SVG category of a CVSS base score (0.0 has none)."""
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MODERATE
    if score > 0:
        return Severity.LOW
    return None


def cvss_base_score(kind: str, vector: str) -> float | None:
    """The base score of a CVSS vector of type ``CVSS_V2/V3/V4``; None when malformed."""
    if len(vector) > MAX_VECTOR_CHARS:
        return None
    try:
        if kind == "CVSS_V3":
            return float(CVSS3(vector).base_score)
        if kind == "CVSS_V4":
            return float(CVSS4(vector).base_score)
        if kind == "CVSS_V2":
            return float(CVSS2(vector).base_score)
    except (CVSSError, ValueError, KeyError, IndexError, ArithmeticError):
        return None
    return None


def _from_vectors(entries: object) -> SeverityInfo | None:
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        return None
    by_kind: dict[str, str] = {}
    word: SeverityInfo | None = None
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        kind, score = entry.get("type"), entry.get("score")
        if not isinstance(kind, str) or not isinstance(score, str):
            continue
        if kind in _VECTOR_ORDER:
            by_kind.setdefault(kind, score)
        elif word is None and score.strip().lower() in _WORDS:
            # "Ubuntu" priorities (and any other ecosystem word rating) in ``severity[]``.
            word = SeverityInfo(_WORDS[score.strip().lower()], basis=kind)
    for kind in _VECTOR_ORDER:
        vector = by_kind.get(kind)
        if vector is None:
            continue
        base = cvss_base_score(kind, vector)
        if base is not None:
            return SeverityInfo(severity_of_score(base), base, vector, kind)
    return word


def _from_specific(*blocks: object) -> SeverityInfo | None:
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        for key in _WORD_KEYS:
            value = block.get(key)
            if isinstance(value, str) and value.strip().lower() in _WORDS:
                found = _WORDS[value.strip().lower()]
                if found is not None:
                    return SeverityInfo(found, basis=key)
    return None


def record_severity(record: Mapping[str, Any], affected: Mapping[str, Any]) -> SeverityInfo:
    """The severity of one affected entry: its CVSS vectors, the record's, then the words."""
    for found in (
        _from_vectors(affected.get("severity")),
        _from_vectors(record.get("severity")),
        _from_specific(
            affected.get("ecosystem_specific"),
            affected.get("database_specific"),
            record.get("database_specific"),
            record.get("ecosystem_specific"),
        ),
    ):
        if found is not None and found.severity is not None:
            return found
    return SeverityInfo(None)
