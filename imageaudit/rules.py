"""Rules are data: one YAML file per rule, ``ruleset/<area>/<rule_id>.yaml``, validated at load.

The loader collects every problem of a rule tree before it refuses it, each message naming the
file, so ``imageaudit rules validate DIR`` can list them all in one run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imageaudit.checks import Registry, default_registry
from imageaudit.findings import AppliesTo, Category, MissingPolicy, Rule
from imageaudit.model import Severity

# Top-level directories of a rules tree that hold data for check types, not rules.
DATA_DIRS = frozenset({"data"})
ImageKind = Literal["vm", "container", "directory"]


class AppliesToModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    image_kinds: list[ImageKind] | None = Field(
        default=None, description="image kinds the rule applies to; all when absent"
    )
    os_families: list[str] | None = Field(
        default=None, description="OS families or ids (debian, rhel, alpine...); all when absent"
    )


class CheckModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    params: dict[str, Any] = Field(default_factory=dict)


class RuleModel(BaseModel):
    """The schema of one rule file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_]*$")
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    rationale: str = Field(min_length=1)
    category: Category
    severity: Severity
    remediation: str = Field(min_length=1)
    references: list[str] = Field(default_factory=list)
    applies_to: AppliesToModel = Field(default_factory=AppliesToModel)
    check: CheckModel
    levels: list[str] = Field(default_factory=list)
    version: int = Field(ge=1)
    missing: MissingPolicy | None = None


@dataclass(frozen=True, slots=True)
class RuleSet:
    """All rules of a tree, sorted by id, and the digest of the tree (the rule-set version)."""

    rules: tuple[Rule, ...]
    version: str
    directory: Path

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


class RuleSetError(Exception):
    """A rules tree was refused; ``errors`` lists every problem, each naming its file."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(self.errors))


def format_validation_error(exc: ValidationError, prefix: str = "") -> list[str]:
    """One ``location: message`` line per pydantic error, the location prefixed."""
    lines = []
    for err in exc.errors():
        head = prefix.split(".") if prefix else []
        loc = ".".join([*head, *(str(p) for p in err["loc"])])
        lines.append(f"{loc}: {err['msg']}" if loc else str(err["msg"]))
    return lines


def rule_files(directory: Path) -> tuple[list[Path], list[str]]:
    """The rule files of a tree and the errors about misplaced files."""
    files: list[Path] = []
    errors: list[str] = []
    for area in sorted(p for p in directory.iterdir() if p.is_dir()):
        if area.name in DATA_DIRS or area.name.startswith((".", "_")):
            continue
        for path in sorted(area.rglob("*")):
            if path.name.startswith(".") or not path.is_file():
                continue
            if path.suffix == ".yml":
                errors.append(f"{path}: rule files end in .yaml")
            elif path.suffix == ".yaml":
                if path.parent != area:
                    errors.append(f"{path}: rule files sit directly in {directory}/<area>/")
                else:
                    files.append(path)
    return files, errors


def describe_yaml_error(exc: Exception) -> str:
    """A one-line reason for a file that could not be read or parsed."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return " ".join(str(exc).split())


def _load_one(path: Path, registry: Registry) -> tuple[Rule | None, list[str]]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return None, [f"{path}: cannot read the rule: {describe_yaml_error(exc)}"]
    if not isinstance(raw, dict):
        return None, [f"{path}: a rule file holds one mapping"]
    try:
        model = RuleModel.model_validate(raw)
    except ValidationError as exc:
        return None, [f"{path}: {line}" for line in format_validation_error(exc)]
    errors: list[str] = []
    if model.id != path.stem:
        errors.append(f"{path}: id {model.id!r} does not match the file name {path.stem!r}")
    ctype = registry.get(model.check.type)
    if ctype is None:
        known = ", ".join(registry.names()) or "none"
        errors.append(
            f"{path}: check.type: unknown check type {model.check.type!r} (known: {known})"
        )
        return None, errors
    try:
        params = ctype.params_model.model_validate(model.check.params)
    except ValidationError as exc:
        errors.extend(f"{path}: {line}" for line in format_validation_error(exc, "check.params"))
        return None, errors
    if errors:
        return None, errors
    applies = AppliesTo(
        image_kinds=tuple(model.applies_to.image_kinds)
        if model.applies_to.image_kinds is not None
        else None,
        os_families=tuple(model.applies_to.os_families)
        if model.applies_to.os_families is not None
        else None,
    )
    rule = Rule(
        id=model.id,
        title=model.title,
        description=model.description,
        rationale=model.rationale,
        category=model.category,
        severity=model.severity,
        remediation=model.remediation,
        references=tuple(model.references),
        applies_to=applies,
        check_type=model.check.type,
        params=params,
        levels=tuple(model.levels),
        version=model.version,
        missing=model.missing,
        path=path,
    )
    return rule, []


@dataclass(frozen=True, slots=True)
class SeverityCase:
    """A severity a rule's check gives some findings instead of the rule's own, and when."""

    severity: Severity
    when: str


def _condition(description: str | None, name: str) -> str:
    # Parameter descriptions read "severity when ...", "severity of ...", or "raise findings
    # to this severity when ..."; the condition is what follows "severity".
    text = " ".join((description or "").split())
    if text.startswith("severity of "):
        return "for " + text.removeprefix("severity of ")
    if text.startswith("severity "):
        return text.removeprefix("severity ")
    _, sep, tail = text.partition(" when ")
    return f"when {tail}" if sep else f"as {name} says"


def severity_cases(rule: Rule) -> tuple[SeverityCase, ...]:
    """The other severities the rule's check parameters give findings, most severe first.

    A check that raises or lowers a finding's severity takes it from a ``Severity``
    parameter (``reachable_severity: critical``); the parameter's description says when.
    """
    cases = []
    for name, info in type(rule.params).model_fields.items():
        value = getattr(rule.params, name)
        if isinstance(value, Severity) and value is not rule.severity:
            cases.append(SeverityCase(value, _condition(info.description, name)))
    return tuple(sorted(cases, key=lambda c: -c.severity.rank))


def finding_severities(rule: Rule) -> frozenset[Severity]:
    """Every severity a finding of the rule can be given."""
    return frozenset({rule.severity, *(c.severity for c in severity_cases(rule))})


def describe_severity(rule: Rule, *, detailed: bool = True) -> str:
    """The rule's severity as findings get it: ``high (critical when ...)`` when a check
    parameter can raise it; ``detailed=False`` names only the range (``high (up to critical)``).
    """
    cases = severity_cases(rule)
    own = rule.severity.value
    if not cases:
        return own
    if detailed:
        return f"{own} ({'; '.join(f'{c.severity.value} {c.when}' for c in cases)})"
    top, bottom = cases[0].severity, cases[-1].severity
    if top.rank > rule.severity.rank and bottom.rank < rule.severity.rank:
        return f"{own} ({bottom.value} to {top.value})"
    if top.rank > rule.severity.rank:
        return f"{own} (up to {top.value})"
    return f"{own} (down to {bottom.value})"


def tree_digest(directory: Path) -> str:
    """``sha256:`` digest of every file of a tree (names and contents): the rule-set version."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        data = path.read_bytes()
        digest.update(rel.as_posix().encode() + b"\0" + str(len(data)).encode() + b"\0")
        digest.update(data)
    return f"sha256:{digest.hexdigest()}"


def validate_rules(directory: Path, registry: Registry | None = None) -> list[str]:
    """Every problem of a rules tree, each naming its file; empty when the tree is valid."""
    try:
        load_rules(directory, registry)
    except RuleSetError as exc:
        return list(exc.errors)
    return []


def load_rules(directory: Path | str, registry: Registry | None = None) -> RuleSet:
    """Load and validate every rule of ``directory``; :class:`RuleSetError` lists all problems."""
    directory = Path(directory)
    reg = registry if registry is not None else default_registry()
    if not directory.is_dir():
        raise RuleSetError([f"{directory}: not a directory of rules"])
    files, errors = rule_files(directory)
    rules: dict[str, Rule] = {}
    for path in files:
        rule, problems = _load_one(path, reg)
        errors.extend(problems)
        if rule is None:
            continue
        if rule.id in rules:
            errors.append(f"{path}: duplicate rule id {rule.id!r} (also {rules[rule.id].path})")
            continue
        rules[rule.id] = rule
    if errors:
        # file order, each file's problems in the order found
        raise RuleSetError(sorted(errors, key=lambda e: e.split(": ", 1)[0]))
    ordered = tuple(sorted(rules.values(), key=lambda r: r.id))
    return RuleSet(rules=ordered, version=tree_digest(directory), directory=directory)


__all__ = [
    "AppliesTo",
    "Rule",
    "RuleModel",
    "RuleSet",
    "RuleSetError",
    "SeverityCase",
    "describe_severity",
    "describe_yaml_error",
    "finding_severities",
    "load_rules",
    "severity_cases",
    "tree_digest",
    "validate_rules",
]
