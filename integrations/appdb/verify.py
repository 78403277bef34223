"""What the catalogue recomputes before it stores a report: nothing a publisher says is taken
on trust.

- the report id is the SHA-256 of the report's canonical JSON (as ``imageaudit`` computes it),
  so a body cannot take another report's id;
- every place the report names the image's SHA-512 (and size) agrees;
- each rule's status follows from its findings, and the level, with every level's granted /
  blocking / unevaluated, follows from the rules under the levels definition the report names
  by digest (``certification.levels_version``).

The levels definition is looked up among the ones the catalogue knows (the one shipped with
this imageaudit, and any the operator adds with ``serve --levels FILE``), never taken from the
report: a definition carried by the report would let a forger ship a lax one (a ``hardened``
blocked by nothing) whose digest matches itself. A report naming an unknown definition is
refused. What cannot be recomputed here (findings the image would have given, a rule's base
severity) is what the auditor's signature vouches for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from imageaudit.certify import Levels, LevelsError, certify, load_levels
from imageaudit.engine import worst_status
from imageaudit.findings import Category, Certification, RuleOutcome
from imageaudit.identity import ImageIdentity
from imageaudit.model import Severity, Status
from imageaudit.signing import report_digest
from integrations.appdb.schemas import parse_time

_BLOCKING = (Status.FAIL, Status.ERROR)


class ReportInvalid(Exception):
    """The report does not hold together; the message says where."""


def shipped_levels_file() -> Path:
    """``ruleset/levels.yaml`` of the installed imageaudit."""
    from imageaudit.pipeline import default_rules_dir

    return default_rules_dir() / "levels.yaml"


def known_levels(extra: Iterable[Path] = ()) -> dict[str, Levels]:
    """The levels definitions the catalogue accepts, by digest (``sha256:<hex>``)."""
    out: dict[str, Levels] = {}
    for path in (shipped_levels_file(), *extra):
        try:
            levels = load_levels(path)
        except LevelsError as exc:
            raise ValueError(str(exc)) from exc
        out[levels.version] = levels
    return out


def check_id(report: Mapping[str, Any], claimed: str) -> str:
    """The recomputed id; :class:`ReportInvalid` when ``claimed`` is not it."""
    try:
        actual = report_digest(report)
    except UnicodeEncodeError as exc:  # JSON may escape a lone surrogate; UTF-8 cannot hold it
        raise ReportInvalid("the report holds text that is not valid Unicode (a lone "
                            f"surrogate at character {exc.start} of its canonical form)") from exc
    if claimed != actual:
        raise ReportInvalid(f"report_id {claimed[:16]}... is not the SHA-256 of the canonical "
                            f"report ({actual[:16]}...)")
    return actual


def check_binding(report: Mapping[str, Any], version_size: int | None) -> None:
    """``image`` and ``certification`` name the same SHA-512 and size, and the registered
    version's size agrees when both are known."""
    image, cert = report["image"], report["certification"]
    if image.get("sha512") != cert["image_sha512"]:
        raise ReportInvalid("image.sha512 differs from certification.image_sha512")
    if image.get("size") != cert.get("image_size"):
        raise ReportInvalid("image.size differs from certification.image_size")
    size = cert.get("image_size")
    if size is not None and version_size is not None and size != version_size:
        raise ReportInvalid(f"the report is for a {size}-byte image; the registered version "
                            f"with this SHA-512 has {version_size} bytes")


def _outcomes(report: Mapping[str, Any]) -> list[RuleOutcome]:
    raw_rules = report.get("rules")
    if not isinstance(raw_rules, list):
        raise ReportInvalid("the report has no rules list; its level cannot be checked")
    by_rule: dict[str, list[Mapping[str, Any]]] = {}
    for f in report["findings"]:
        by_rule.setdefault(f["rule_id"], []).append(f)
    seen: set[str] = set()
    out = []
    for i, r in enumerate(raw_rules):
        if not isinstance(r, Mapping) or not isinstance(r.get("id"), str):
            raise ReportInvalid(f"rules[{i}] has no id")
        rid = r["id"]
        if rid in seen:
            raise ReportInvalid(f"rule {rid!r} appears twice in rules")
        seen.add(rid)
        levels = r.get("levels", [])
        try:
            severity = Severity(str(r.get("severity")))
            category, status = Category(str(r.get("category"))), Status(str(r.get("status")))
        except ValueError as exc:
            raise ReportInvalid(f"rule {rid!r}: {exc}") from exc
        if not isinstance(levels, list) or not all(isinstance(x, str) for x in levels):
            raise ReportInvalid(f"rule {rid!r}: levels is not a list of names")
        findings = by_rule.get(rid, [])
        derived = worst_status({Status(f["status"]) for f in findings})
        if status is not derived:
            raise ReportInvalid(f"rule {rid!r} has status {status.value} but its findings "
                                f"give {derived.value}")
        worst = max((Severity(f["severity"]).rank for f in findings
                     if f["status"] in _BLOCKING), default=-1)
        if worst > severity.rank:
            raise ReportInvalid(f"rule {rid!r} has severity {severity.value} below the "
                                "severity of its own failing findings")
        out.append(RuleOutcome(
            id=rid, title="", description="", rationale="", category=category,
            severity=severity, remediation="", references=(), levels=tuple(levels),
            version=1, status=status, check_type=""))
    orphans = sorted(set(by_rule) - seen)
    if orphans:
        raise ReportInvalid(f"findings of rule {orphans[0]!r}, which is not in rules")
    return out


def _check_summary(report: Mapping[str, Any]) -> None:
    counts = {s.value: 0 for s in Status}
    for f in report["findings"]:
        counts[f["status"]] += 1
    summary = report.get("summary")
    if summary != counts:
        raise ReportInvalid(f"summary {summary} does not count the findings ({counts})")


def expected_certification(report: Mapping[str, Any], levels: Levels) -> Certification:
    """The certification imageaudit gives the report's rules under ``levels`` (the rules'
    statuses checked against their findings first)."""
    cert = report["certification"]
    return certify(_outcomes(report), levels, ruleset_version=cert["ruleset_version"],
                   identity=ImageIdentity("", cert["image_sha512"], cert.get("image_size")),
                   now=parse_time(cert["issued"]), tool_version=cert["tool_version"])


def check_level(report: Mapping[str, Any], known: Mapping[str, Levels]) -> None:
    """The certification follows from the findings under the named levels definition."""
    cert = report["certification"]
    levels = known.get(cert["levels_version"])
    if levels is None:
        names = ", ".join(sorted(known)) or "none"
        raise ReportInvalid(f"levels definition {cert['levels_version']} is not known to this "
                            f"catalogue (known: {names})")
    _check_summary(report)
    expected = expected_certification(report, levels)
    claimed: Sequence[Mapping[str, Any]] = cert["levels"]
    if [lv["name"] for lv in claimed] != [lv.name for lv in expected.levels]:
        raise ReportInvalid("certification.levels are not the levels of "
                            f"{cert['levels_version']}")
    for lv, want in zip(claimed, expected.levels, strict=True):
        got = (bool(lv["granted"]), tuple(lv.get("blocking", ())),
               tuple(lv.get("unevaluated", ())))
        if got != (want.granted, want.blocking, want.unevaluated):
            reason = (f"blocked by {', '.join(want.blocking)}" if want.blocking
                      else "blocked by a level below" if not want.granted else "not blocked")
            raise ReportInvalid(f"level {want.name} does not follow from the findings: "
                                f"{'granted' if want.granted else 'not granted'} ({reason})")
    if cert["level"] != expected.level:
        raise ReportInvalid(f"certification.level {cert['level']} does not follow from the "
                            f"findings, which give {expected.level}")
