"""Validated API input and output (pydantic). The report part follows
``imageaudit/schemas/report-1.json``; unknown report fields are kept (fields are only ever added
within a schema version) but everything the catalogue reads is checked here, so a malformed body
is a 422 and never reaches the database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
ROLES = ("reader", "auditor", "operator", "admin")

# No control characters: they cannot be stored in PostgreSQL text (NUL) nor shown safely.
Text = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")]
Short = Annotated[Text, StringConstraints(max_length=255)]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
"""Names of VOs, levels, token holders and auditors (one rule for the API and list import)."""
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Sha512 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{128}$")]
ReportId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{1,128}$")]
Time = Annotated[str, StringConstraints(
    pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")]
Size = Annotated[int, Field(ge=0, le=2**62)]


def parse_time(value: str) -> datetime:
    """``%Y-%m-%dT%H:%M:%SZ`` to an aware UTC datetime (ValueError when not a real date)."""
    return datetime.strptime(value, TIME_FORMAT).replace(tzinfo=UTC)


def format_time(value: datetime) -> str:
    """An aware datetime as ``%Y-%m-%dT%H:%M:%SZ`` in UTC."""
    return value.astimezone(UTC).strftime(TIME_FORMAT)


class LevelResult(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: Name
    description: Text = ""
    granted: bool
    blocking: list[Text] = Field(default_factory=list, max_length=10000)
    unevaluated: list[Text] = Field(default_factory=list, max_length=10000)


class Certification(BaseModel):
    model_config = ConfigDict(extra="allow")
    level: Name
    levels: list[LevelResult] = Field(max_length=64)
    ruleset_version: Short
    levels_version: Short
    tool_version: Short
    image_sha512: Sha512
    image_size: Size | None
    issued: Time
    expires: Time

    @field_validator("issued", "expires")
    @classmethod
    def _real_time(cls, value: str) -> str:
        parse_time(value)  # the pattern admits 2025-13-45T99:00:00Z
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Certification:
        names = [lv.name for lv in self.levels]
        if len(set(names)) != len(names):
            raise ValueError("certification.levels names are not unique")
        if self.level != "none" and self.level not in names:
            raise ValueError(
                f"certification.level {self.level!r} is not one of certification.levels")
        if parse_time(self.expires) < parse_time(self.issued):
            raise ValueError("certification expires before it was issued")
        return self


class Evidence(BaseModel):
    model_config = ConfigDict(extra="allow")
    path: Text | None = None
    line: Annotated[int, Field(ge=1, le=2**31)] | None = None
    observed: Text | None = None
    expected: Text | None = None


class Finding(BaseModel):
    model_config = ConfigDict(extra="allow")
    rule_id: Text
    title: Text
    category: Text
    severity: Literal["critical", "high", "moderate", "low", "info"]
    status: Literal["PASS", "FAIL", "ERROR", "NOT_APPLICABLE", "WAIVED"]
    message: Text
    resource: Text | None = None
    evidence: Evidence | None = None
    remediation: Text = ""
    references: list[Text] = Field(default_factory=list)
    waived: bool = False


class ImageInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    source: Text
    kind: Text
    format: Text
    sha512: Sha512 | None
    size: Size | None


class ReportDoc(BaseModel):
    """An imageaudit report (``imageaudit-report/1``)."""

    model_config = ConfigDict(extra="allow")
    schema_: Literal["imageaudit-report/1"] = Field(alias="schema")
    image: ImageInfo
    certification: Certification
    findings: list[Finding] = Field(max_length=200000)
    summary: dict[str, Annotated[int, Field(ge=0, le=2**31)]]


class SignatureDoc(BaseModel):
    """The auditor's Ed25519 signature over the canonical report (``imageaudit.signing``)."""

    model_config = ConfigDict(extra="forbid")
    algorithm: Literal["ed25519"]
    key_id: Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]
    value: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/=]{1,200}$")]


class PublishRequest(BaseModel):
    """The publisher's body: a report, its id (SHA-256 of the canonical report, recomputed by
    the catalogue) and the auditor's signature (required; optional here so that a missing one
    is refused with a sentence rather than a schema error)."""

    model_config = ConfigDict(extra="forbid")
    report_id: ReportId
    report: ReportDoc
    signature: SignatureDoc | None = None


class PublishResult(BaseModel):
    report_id: str
    image_id: str
    level: str
    listed: bool
    signer: str | None = None


class SuspendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[Text, StringConstraints(min_length=1, max_length=4000, strip_whitespace=True)]


class VoRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_level: Name | None = None


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    role: Literal["reader", "auditor", "operator", "admin"]


class TokenCreated(BaseModel):
    name: str
    role: str
    token: str


class ImportResult(BaseModel):
    list_identifier: str
    signed: bool
    signer: str | None
    images: list[str]


class ImageSummary(BaseModel):
    image_id: str
    title: str
    vo: str
    version: str
    sha512: str
    level: str
    report_expires: str | None
    listed: bool
    suspended: bool
    suspension_reason: str | None
    report_id: str | None = None
    signer: str | None = None


class VersionSummary(BaseModel):
    """One registered image file (a version of an image, current or not), for batch audits."""

    image_id: str
    vo: str
    version: str
    title: str
    uri: str
    size: int | None
    sha512: str
    current: bool


class AuditorKeyInfo(BaseModel):
    auditor: str
    key_id: str
    created: str
    revoked: bool


class Health(BaseModel):
    status: Literal["ok"]


def json_detail(errors: list[Any]) -> list[dict[str, Any]]:
    """pydantic errors without the input echo (which may be large or hostile)."""
    return [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in errors]
