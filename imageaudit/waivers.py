"""Waivers: accepted risks kept in a separate YAML file, applied after evaluation.

```yaml
waivers:
  - rule: ssh_password_authentication
    resource: "user:backup*"      # optional glob over the finding's resource
    reason: bastion-only image, password login filtered upstream
    expires: 2026-06-30           # the waiver holds through that day (UTC)
    who: alice@example.org
```

A waiver covers FAIL and ERROR findings of its rule (and resource); covered findings keep
their place in every output with status WAIVED and the waiver's reason. Expired waivers
are ignored with a warning, as are waivers for rules the rule set does not have.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imageaudit.findings import Finding, WaiverNote, code
from imageaudit.model import Status
from imageaudit.rules import describe_yaml_error

_WAIVABLE = frozenset({Status.FAIL, Status.ERROR})


class WaiverModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str = Field(min_length=1)
    resource: str | None = Field(default=None, min_length=1)
    reason: str = Field(min_length=1)
    expires: dt.date
    who: str = Field(min_length=1)


class WaiversFileModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    waivers: list[WaiverModel] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Waiver:
    rule: str
    reason: str
    expires: dt.date
    who: str
    resource: str | None = None

    def describe(self) -> str:
        on = f" on {code(self.resource)}" if self.resource else ""
        return f"Waiver for rule {code(self.rule)}{on} by {self.who}"

    def matches(self, finding: Finding) -> bool:
        if finding.rule_id != self.rule or finding.status not in _WAIVABLE:
            return False
        if self.resource is None:
            return True
        return finding.resource is not None and fnmatchcase(finding.resource, self.resource)


class WaiverError(Exception):
    """A waivers file was refused; ``errors`` lists every problem, each naming the file."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(self.errors))


def load_waivers(path: Path | str) -> tuple[Waiver, ...]:
    """Read and validate a waivers file (a mapping with ``waivers:`` or a bare list)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise WaiverError([f"{path}: cannot read the waivers: {describe_yaml_error(exc)}"]) from exc
    if raw is None:
        return ()
    if isinstance(raw, list):
        raw = {"waivers": raw}
    try:
        model = WaiversFileModel.model_validate(raw)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            errors.append(f"{path}: {loc}: {err['msg']}")
        raise WaiverError(errors) from exc
    return tuple(
        Waiver(rule=w.rule, reason=w.reason, expires=w.expires, who=w.who, resource=w.resource)
        for w in model.waivers
    )


def apply_waivers(
    findings: Sequence[Finding],
    waivers: Sequence[Waiver],
    now: dt.datetime,
    rule_ids: Collection[str],
) -> tuple[list[Finding], list[str]]:
    """Mark the findings covered by a waiver still valid at ``now``; return them and warnings."""
    today = now.astimezone(dt.UTC).date()
    warnings: list[str] = []
    active: list[Waiver] = []
    for waiver in waivers:
        if waiver.expires < today:
            warnings.append(f"{waiver.describe()} expired on {waiver.expires}; ignored")
        elif waiver.rule not in rule_ids:
            warnings.append(f"{waiver.describe()} names a rule the rule set does not have")
        else:
            active.append(waiver)
    used: set[int] = set()
    result: list[Finding] = []
    for finding in findings:
        for index, waiver in enumerate(active):
            if waiver.matches(finding):
                used.add(index)
                finding = finding.waive(
                    WaiverNote(
                        reason=waiver.reason,
                        who=waiver.who,
                        expires=waiver.expires.isoformat(),
                        original_status=finding.status,
                    )
                )
                break
        result.append(finding)
    warnings.extend(
        f"{w.describe()} matched no failing finding" for i, w in enumerate(active) if i not in used
    )
    return result, warnings


__all__ = ["Waiver", "WaiverError", "apply_waivers", "load_waivers"]
