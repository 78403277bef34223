"""Certification: ordered levels from ``levels.yaml``, each inheriting what blocks the one below.

```yaml
version: 1
validity_days: 30          # a certification expires this many days after it is issued
levels:                    # lowest first; below the first one the level is "none"
  - name: basic
    description: nothing critical
    blocked_by:
      severities: [critical]
      categories: []
      rules: [password_default]
```

A rule is required by a level when its severity or category is listed in ``blocked_by`` of that
level or of a level below, when it is listed by id, or when the rule names the level (or one
below) in its own ``levels``. A required rule that is FAIL or ERROR, and not waived, blocks the
level; a level is granted only when it and every level below are unblocked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imageaudit.findings import Category, Certification, LevelResult, RuleOutcome, code
from imageaudit.identity import ImageIdentity
from imageaudit.model import Severity, Status
from imageaudit.rules import describe_yaml_error

NO_LEVEL = "none"
DEFAULT_VALIDITY_DAYS = 30
_BLOCKING = frozenset({Status.FAIL, Status.ERROR})


class BlockedByModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    severities: list[Severity] = Field(default_factory=list)
    categories: list[Category] = Field(default_factory=list)
    rules: list[str] = Field(default_factory=list)


class LevelModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    description: str = ""
    blocked_by: BlockedByModel = Field(default_factory=BlockedByModel)


class LevelsModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1)
    validity_days: int = Field(default=DEFAULT_VALIDITY_DAYS, ge=1)
    levels: list[LevelModel] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Level:
    name: str
    description: str
    severities: tuple[Severity, ...] = ()
    categories: tuple[Category, ...] = ()
    rules: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Levels:
    """Ordered levels (lowest first), the default lifetime, and the digest of their file."""

    levels: tuple[Level, ...]
    validity_days: int = DEFAULT_VALIDITY_DAYS
    version: str = ""

    def names(self) -> tuple[str, ...]:
        return tuple(level.name for level in self.levels)


class LevelsError(Exception):
    """A levels file was refused; ``errors`` lists every problem, each naming the file."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(self.errors))


def load_levels(path: Path | str) -> Levels:
    """Read and validate a levels file; :class:`LevelsError` lists every problem."""
    path = Path(path)
    try:
        data = path.read_bytes()
        raw = yaml.safe_load(data.decode("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise LevelsError([f"{path}: cannot read the levels: {describe_yaml_error(exc)}"]) from exc
    try:
        model = LevelsModel.model_validate(raw)
    except ValidationError as exc:
        errors = [
            f"{path}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        ]
        raise LevelsError(errors) from exc
    errors = []
    seen: set[str] = set()
    for level in model.levels:
        if level.name == NO_LEVEL:
            errors.append(
                f"{path}: level name {NO_LEVEL!r} is reserved for 'below the first level'"
            )
        if level.name in seen:
            errors.append(f"{path}: duplicate level {level.name!r}")
        seen.add(level.name)
    if errors:
        raise LevelsError(errors)
    levels = tuple(
        Level(
            name=m.name,
            description=m.description,
            severities=tuple(m.blocked_by.severities),
            categories=tuple(m.blocked_by.categories),
            rules=tuple(m.blocked_by.rules),
        )
        for m in model.levels
    )
    version = f"sha256:{hashlib.sha256(data).hexdigest()}"
    return Levels(levels=levels, validity_days=model.validity_days, version=version)


class _RuleLike(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def levels(self) -> tuple[str, ...]: ...


class _Requirable(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def severity(self) -> Severity: ...

    @property
    def category(self) -> Category: ...

    @property
    def levels(self) -> tuple[str, ...]: ...


def required_rules(levels: Levels, rules: Iterable[_Requirable]) -> dict[str, tuple[str, ...]]:
    """For each level, the ids of the rules it requires (its own and those it inherits);
    ``rules`` are loaded rules or judged outcomes."""
    rules = list(rules)
    result: dict[str, tuple[str, ...]] = {}
    required: set[str] = set()
    below: set[str] = set()
    for level in levels.levels:
        below.add(level.name)
        for rule in rules:
            if (
                rule.severity in level.severities
                or rule.category in level.categories
                or rule.id in level.rules
                or not below.isdisjoint(rule.levels)
            ):
                required.add(rule.id)
        result[level.name] = tuple(sorted(required))
    return result


def level_warnings(rules: Iterable[_RuleLike], levels: Levels) -> list[str]:
    """Rules naming levels the levels file lacks, and levels naming rules the set lacks."""
    names = set(levels.names())
    rules = list(rules)
    ids = {r.id for r in rules}
    warnings = [
        f"Rule {code(r.id)} names level {code(name)}, which the levels file does not define"
        for r in rules
        for name in r.levels
        if name not in names
    ]
    warnings.extend(
        f"Level {code(level.name)} names rule {code(rid)}, which the rule set does not have"
        for level in levels.levels
        for rid in level.rules
        if rid not in ids
    )
    return warnings


def installed_version() -> str:
    """The installed imageaudit version."""
    try:
        return metadata.version("imageaudit")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def certify(
    outcomes: Sequence[RuleOutcome],
    levels: Levels,
    *,
    ruleset_version: str,
    identity: ImageIdentity,
    now: datetime,
    validity_days: int | None = None,
    tool_version: str | None = None,
) -> Certification:
    """Grant each level whose required rules neither failed nor errored (unless waived)."""
    status = {o.id: o.status for o in outcomes}
    required = required_rules(levels, outcomes)
    results: list[LevelResult] = []
    reached = NO_LEVEL
    below_granted = True
    for level in levels.levels:
        blocking = tuple(rid for rid in required[level.name] if status[rid] in _BLOCKING)
        unevaluated = tuple(rid for rid in blocking if status[rid] is Status.ERROR)
        granted = below_granted and not blocking
        if granted:
            reached = level.name
        below_granted = granted
        results.append(LevelResult(level.name, level.description, granted, blocking, unevaluated))
    days = validity_days if validity_days is not None else levels.validity_days
    return Certification(
        level=reached,
        levels=tuple(results),
        ruleset_version=ruleset_version,
        levels_version=levels.version,
        tool_version=tool_version if tool_version is not None else installed_version(),
        image_sha512=identity.sha512,
        image_size=identity.size,
        issued=iso(now),
        expires=iso(now + timedelta(days=days)),
    )


__all__ = [
    "NO_LEVEL",
    "Level",
    "Levels",
    "LevelsError",
    "certify",
    "installed_version",
    "level_warnings",
    "load_levels",
    "required_rules",
]
