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
IMAGE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$"
"""Image ids (``dc:identifier``) as the API's ``/images/{image_id}`` routes take them."""
Sha512 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{128}$")]
INCIDENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:#+-]{0,63}$"
"""Incident ids of containment records (the cloud agent checks its --incident with it too)."""
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
    """An image's current version and its standing; ``unlisted_reason`` says why the image is
    not in its VO's image list (suspended, no unexpired report, level below the VO's minimum,
    image list entry expired: every reason that holds, ``; ``-separated), None when it is."""

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
    unlisted_reason: str | None = None


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


def error_sentence(errors: list[Any]) -> str:
    """pydantic errors as one line for people: ``field: reason; ...`` (no input echo)."""
    parts = []
    for e in errors:
        msg = str(e.get("msg", "")).removeprefix("Value error, ")
        loc = ".".join(str(x) for x in e.get("loc", ()))
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def json_detail(errors: list[Any]) -> list[dict[str, Any]]:
    """pydantic errors without the input echo (which may be large or hostile)."""
    return [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in errors]


# --- campaigns ------------------------------------------------------------------------------

MAX_INDICATORS = 100_000
MAX_PROVENANCE = 16
PackageName = Annotated[str, StringConstraints(pattern=r"^[^\s\x00-\x1f\x7f]{1,1024}$")]
Cve = Annotated[str, StringConstraints(pattern=r"^CVE-[0-9]{4}-[0-9]{4,19}$")]
AdvisoryId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$")]
Dn = Annotated[Text, StringConstraints(min_length=1, max_length=1024)]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Sha1 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{40}$")]
Md5 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
FileName = Annotated[str, StringConstraints(pattern=r"^[^/\x00]{1,1024}$")]
FilePath = Annotated[str, StringConstraints(pattern=r"^[^\x00]*/[^\x00]*$", max_length=4096)]
Provenance = Annotated[list[Annotated[Text, StringConstraints(max_length=4096)]],
                       Field(max_length=MAX_PROVENANCE)]
CampaignName = Name


class IndicatorSet(BaseModel):
    """Indicators of compromise, as ``imageaudit.ioc`` reads them: file hashes, file names (in
    any directory) and paths (absolute, or relative: matching the end of a path); where each
    came from (``provenance``: value -> sources, shown with every match); and the names and
    paths a source gave only together with hashes (``paired``: value -> ``algorithm:hex``),
    which are evidence only beside one of those hashes."""

    model_config = ConfigDict(extra="forbid")
    sha256: list[Sha256] = Field(default_factory=list, max_length=MAX_INDICATORS)
    sha1: list[Sha1] = Field(default_factory=list, max_length=MAX_INDICATORS)
    md5: list[Md5] = Field(default_factory=list, max_length=MAX_INDICATORS)
    names: list[FileName] = Field(default_factory=list, max_length=MAX_INDICATORS)
    paths: list[FilePath] = Field(default_factory=list, max_length=MAX_INDICATORS)
    provenance: dict[Annotated[str, StringConstraints(max_length=4096)], Provenance] = Field(
        default_factory=dict, max_length=MAX_INDICATORS)
    paired: dict[Annotated[str, StringConstraints(max_length=4096)], Provenance] = Field(
        default_factory=dict, max_length=MAX_INDICATORS)

    @model_validator(mode="after")
    def _bounded(self) -> IndicatorSet:
        total = (len(self.sha256) + len(self.sha1) + len(self.md5) + len(self.names)
                 + len(self.paths))
        if total == 0:
            raise ValueError("no indicator given")
        if total > MAX_INDICATORS:
            raise ValueError(f"{total} indicators; at most {MAX_INDICATORS} in one query")
        for value in (*self.names, *self.paths):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"file name {value[:80]!r} is not valid Unicode") from None
        return self

    def count(self) -> int:
        return (len(self.sha256) + len(self.sha1) + len(self.md5) + len(self.names)
                + len(self.paths))


class CampaignQuery(BaseModel):
    """What a campaign looks for; every filter given must hold (``affected`` needs
    ``package``). ``affected`` is a version range (``<< 3.0.15-1~deb12u1``, see
    ``versionrange``); ``cve`` and ``osv_id`` are resolved through the OSV advisories of a feed
    snapshot."""

    model_config = ConfigDict(extra="forbid")
    package: PackageName | None = None
    affected: Annotated[str, StringConstraints(max_length=1024)] | None = None
    cve: Cve | None = None
    osv_id: AdvisoryId | None = None
    endorser_dn: Dn | None = None
    ioc: IndicatorSet | None = None

    @model_validator(mode="after")
    def _coherent(self) -> CampaignQuery:
        from integrations.appdb.versionrange import parse_range

        if self.affected is not None:
            if self.package is None:
                raise ValueError("affected (a version range) needs a package")
            parse_range(self.affected)  # RangeInvalid is a ValueError: a 422 with its reason
        if not (self.package or self.cve or self.osv_id or self.endorser_dn or self.ioc):
            raise ValueError("give a package, a CVE, an OSV id, indicators or an endorser DN")
        return self

    def describe(self) -> str:
        """The query in one line, for listings."""
        parts = []
        if self.package:
            parts.append(f"package {self.package}" + (f" {self.affected}" if self.affected
                                                      else ""))
        parts += [f"{label} {value}" for label, value in (
            ("CVE", self.cve), ("OSV", self.osv_id), ("endorser", self.endorser_dn)) if value]
        if self.ioc is not None:
            parts.append(f"{self.ioc.count()} indicator(s)")
        return ", ".join(parts)


class MatchedItem(BaseModel):
    """What made a version affected: a package (``name``, ``version``, ``via`` binary or
    source name, the ``advisory`` and its ``fixed`` version), a file (``path``, ``by`` which
    hash or name, the ``indicator`` and its ``provenance``), or its endorser (``dn``)."""

    kind: Literal["package", "file", "endorser"]
    name: str | None = None
    version: str | None = None
    source_name: str | None = None
    source_version: str | None = None
    manager: str | None = None
    ecosystem: str | None = None
    via: Literal["binary", "source"] | None = None
    advisory: str | None = None
    fixed: str | None = None
    path: str | None = None
    by: Literal["sha256", "sha1", "md5", "name", "path"] | None = None
    indicator: str | None = None
    provenance: list[str] | None = None
    paired_with: list[str] | None = None
    dn: str | None = None


class HitSite(BaseModel):
    """A site holding an affected version: its copies, the instances running from it, and
    when the site reported it."""

    site: str
    copies: int
    instances: int
    reported: str


class CampaignHit(BaseModel):
    """One affected image version: who endorsed it, whether it is listed, what matched."""

    image_id: str
    version: str
    title: str
    sha512: str
    vos: list[str]
    endorser_dn: str | None
    endorser_name: str | None
    endorser_email: str | None
    level: str
    listed: bool
    current: bool
    suspended: bool
    matched: list[MatchedItem]
    fix: str | None
    sites: list[HitSite]


class CampaignSaveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: CampaignName
    query: CampaignQuery


class CampaignRunInfo(BaseModel):
    at: str
    by: str
    affected: int
    newly_affected: int


class CampaignInfo(BaseModel):
    name: str
    query: dict[str, Any]
    created: str
    created_by: str
    runs: list[CampaignRunInfo]


class CampaignRunResult(BaseModel):
    """A run of a saved campaign: every affected version, and those the previous run had not."""

    campaign: CampaignInfo
    affected: list[CampaignHit]
    newly_affected: list[CampaignHit]


# --- sites -----------------------------------------------------------------------------------

MAX_HOLDINGS = 100_000
MAX_SITE_COUNT = 10**7
SiteCount = Annotated[int, Field(ge=0, le=MAX_SITE_COUNT)]


class Holding(BaseModel):
    """One image version a site holds: ``copies`` of its file, ``instances`` running from it."""

    model_config = ConfigDict(extra="forbid")
    sha512: Sha512
    copies: SiteCount
    instances: SiteCount


class HoldingsReport(BaseModel):
    """A site's whole report: every image version it holds now (each SHA-512 once)."""

    model_config = ConfigDict(extra="forbid")
    holdings: list[Holding] = Field(max_length=MAX_HOLDINGS)

    @model_validator(mode="after")
    def _once_each(self) -> HoldingsReport:
        seen: set[str] = set()
        for h in self.holdings:
            if h.sha512 in seen:
                raise ValueError(f"image {h.sha512[:16]}… is reported more than once")
            seen.add(h.sha512)
        return self


class SiteInfo(BaseModel):
    """A site's last report: when, how many image versions, copies and instances in all."""

    site: str
    reported: str
    images: int
    copies: int
    instances: int
