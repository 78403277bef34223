"""Results of judging: check results, findings, per-rule outcomes, certification, the report.

Everything here is a frozen dataclass built once by the engine and read by the output formats.
Strings that came from the image are made printable once, here (:func:`printable`), and then
escaped again by each output format for its own syntax.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imageaudit.model import CollectorError, Evidence, Severity, Status, to_jsonable

if TYPE_CHECKING:
    from pydantic import BaseModel

REPORT_SCHEMA = "imageaudit-report/1"


class MissingPolicy(enum.StrEnum):
    """What a rule's result is when a fact its check needs could not be collected."""

    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"
    ERROR = "error"


class Category(enum.StrEnum):
    """What a rule is about; one of a fixed list so outputs can group and filter."""

    PASSWORD = "password"
    SSH = "ssh"
    SERVICE = "service"
    EXPORT = "export"
    PERMISSION = "permission"
    SECRET = "secret"
    HYGIENE = "hygiene"
    PACKAGE = "package"
    VULNERABILITY = "vulnerability"
    MALWARE = "malware"


# C0/C1 controls (terminal escapes, NUL, bidi overrides) and lone surrogates left by
# ``surrogateescape`` decoding: none of them may reach a terminal, an XML file or a browser.
_UNPRINTABLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not valid UTF-8
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}" if code > 0xFF else f"\\x{code:02x}"


def printable(text: str) -> str:
    """Replace control characters and undecodable bytes by visible ``\\xNN`` escapes.

    Tab and newline are kept; everything else below U+0020, DEL, C1 controls, bidirectional
    overrides and lone surrogates become escapes, so the text is safe in every output format.
    """
    return _UNPRINTABLE.sub(_escape_char, text)


def code(value: object) -> str:
    """Quote ``value`` as a Markdown code span for a finding message (``User `admin` ...``).

    Uses a fence longer than any run of backticks inside the value, so a name from the image
    cannot close the span early.
    """
    text = printable(str(value)).replace("\n", "\\n")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What a check type returns for one object: a status, a sentence, the object, evidence.

    Checks return only what they want to report: an empty list means the rule passed.
    ``status`` is one of PASS, FAIL, ERROR, NOT_APPLICABLE.
    """

    status: Status
    message: str
    resource: str | None = None
    evidence: Evidence = field(default_factory=Evidence)
    # A check may raise or lower the rule's severity for one object, and must say why in
    # ``message`` (an empty password reachable through PAM ``nullok`` is worse than one that
    # is not).
    severity: Severity | None = None


@dataclass(frozen=True, slots=True)
class WaiverNote:
    """The waiver that covered a finding, kept in the finding so every output can show it."""

    reason: str
    who: str
    expires: str
    original_status: Status


@dataclass(frozen=True, slots=True)
class Finding:
    """One judged object: a rule applied to one resource of the image."""

    rule_id: str
    title: str
    category: Category
    severity: Severity
    status: Status
    message: str
    resource: str | None = None
    evidence: Evidence = field(default_factory=Evidence)
    remediation: str = ""
    references: tuple[str, ...] = ()
    waived: bool = False
    waiver: WaiverNote | None = None

    def waive(self, note: WaiverNote) -> Finding:
        """This finding, marked as waived (it stays in every output)."""
        return replace(self, status=Status.WAIVED, waived=True, waiver=note)


@dataclass(frozen=True, slots=True)
class RuleText:
    """What a rule says about itself: the fields a loaded rule and its outcome share."""

    id: str
    title: str
    description: str
    rationale: str
    category: Category
    severity: Severity
    remediation: str
    references: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AppliesTo:
    image_kinds: tuple[str, ...] | None = None
    os_families: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Rule(RuleText):
    """A loaded rule: metadata, the check type name and its validated parameters."""

    applies_to: AppliesTo
    check_type: str
    params: BaseModel
    levels: tuple[str, ...]
    version: int
    missing: MissingPolicy | None
    path: Path = field(metadata={"internal": True})

    @property
    def rules_dir(self) -> Path:
        """The rules tree the rule came from (check types find ``data/`` files there)."""
        return self.path.parent.parent


@dataclass(frozen=True, slots=True)
class RuleOutcome(RuleText):
    """A rule's metadata and its overall status (worst unwaived status of its findings).

    ``severity`` is the effective one: raised when a finding of the rule was raised.
    """

    levels: tuple[str, ...]
    version: int
    status: Status
    check_type: str


@dataclass(frozen=True, slots=True)
class LevelResult:
    """Whether one certification level is granted, and which rules stand in its way."""

    name: str
    description: str
    granted: bool
    blocking: tuple[str, ...] = ()
    # Among ``blocking``, the rules that could not be evaluated (ERROR) rather than failed.
    unevaluated: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Scope:
    """What the user left out of the audit or changed in its rules, recorded in the
    certification so that a narrowed or tailored result is told apart from a full one.

    ``skipped_rules`` were not evaluated (each is an ERROR finding, so no level they guard is
    granted); findings under ``skipped_dirs`` or matching ``skipped_files`` were dropped
    (``dropped_findings`` of them); ``tailoring`` is the ``sha256:`` digest of the tailoring
    file that changed rule parameters or severities.
    """

    skipped_rules: tuple[str, ...] = ()
    skipped_dirs: tuple[str, ...] = ()
    skipped_files: tuple[str, ...] = ()
    dropped_findings: int = 0
    tailoring: str | None = None


@dataclass(frozen=True, slots=True)
class Certification:
    """The certification record: the level reached, bound to the image's content and the rules."""

    level: str
    levels: tuple[LevelResult, ...]
    ruleset_version: str
    levels_version: str
    tool_version: str
    image_sha512: str | None
    image_size: int | None
    issued: str
    expires: str
    # Present only when the audit was narrowed or tailored (``scan --skip-rule``, ...).
    scope: Scope | None = field(default=None, metadata={"optional": True})


@dataclass(frozen=True, slots=True)
class ImageRef:
    """What was audited: the name the user gave, how it was opened, and its content identity."""

    source: str
    kind: str
    format: str
    sha512: str | None = None
    size: int | None = None


@dataclass(frozen=True, slots=True)
class InventoryPackage:
    """One installed package as a report lists it (``ecosystem``: an OSV ecosystem name)."""

    name: str
    version: str
    arch: str | None
    source_name: str | None
    source_version: str | None
    manager: str
    ecosystem: str | None
    purl: str | None


@dataclass(frozen=True, slots=True)
class InventoryFile:
    """One hashed file as a report lists it; ``kinds`` say why it was hashed."""

    path: str
    sha256: str
    sha1: str
    md5: str
    size: int
    kinds: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NotHashedFiles:
    count: int
    examples: tuple[tuple[str, str], ...] = ()  # (path, reason), the first few


@dataclass(frozen=True, slots=True)
class Inventory:
    """What the image holds, for the catalogue's campaigns: its packages and the hashes of its
    executables, libraries, scripts, persistence files and files in writable or home
    directories. ``complete`` is false when files that should have been hashed were not."""

    packages: tuple[InventoryPackage, ...]
    files: tuple[InventoryFile, ...]
    complete: bool
    not_hashed: NotHashedFiles
    limits: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Report:
    """Everything a scan produced; every output format renders this and nothing else."""

    image: ImageRef
    certification: Certification
    rules: tuple[RuleOutcome, ...]
    findings: tuple[Finding, ...]
    collector_errors: tuple[CollectorError, ...] = ()
    warnings: tuple[str, ...] = ()
    inventory: Inventory | None = None
    schema: str = REPORT_SCHEMA

    def counts(self) -> dict[str, int]:
        """Number of findings per status, every status present (zero included)."""
        result = {s.value: 0 for s in Status}
        for finding in self.findings:
            result[finding.status.value] += 1
        return result

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON values, in the shape of ``schemas/report-1.json``."""
        data: dict[str, Any] = {"schema": self.schema}
        body = to_jsonable(self)
        body.pop("schema")
        if self.inventory is None:
            body.pop("inventory")
        else:
            inv = body["inventory"]
            inv["not_hashed"]["examples"] = [
                {"path": p, "reason": r} for p, r in self.inventory.not_hashed.examples]
            inv["limits"] = dict(self.inventory.limits)
        data.update(body)
        data["summary"] = self.counts()
        return data


__all__ = [
    "REPORT_SCHEMA",
    "AppliesTo",
    "Category",
    "Certification",
    "CheckResult",
    "Evidence",
    "Finding",
    "ImageRef",
    "Inventory",
    "InventoryFile",
    "InventoryPackage",
    "LevelResult",
    "MissingPolicy",
    "NotHashedFiles",
    "Report",
    "Rule",
    "RuleOutcome",
    "RuleText",
    "Scope",
    "WaiverNote",
    "code",
    "printable",
]
