"""Narrowing and tailoring a rule set without editing its tree.

A **selection** keeps some rules and leaves the others out (``scan --rule``, ``--skip-rule``,
``--category``, ``--skip-category``). A rule left out is not evaluated: the engine reports it
as an ERROR finding, so no level that rule guards is granted on it.

A **tailoring file** changes rule parameters and severities, the way a SCAP tailoring file
does::

    version: 1
    rules:
      ssh_weak_ciphers:
        severity: moderate          # critical, high, moderate, low or info
        params:                     # any parameter the rule's check type takes
          weak_ciphers: [3des-cbc, arcfour]

Every problem is named with the file, the rule and the key. The file's digest goes into the
report's certification (``scope.tailoring``) so that a tailored result is told apart.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imageaudit.findings import Category, Rule
from imageaudit.model import Severity
from imageaudit.rules import RuleSet, describe_yaml_error, format_validation_error


class TailoringError(Exception):
    """A selection or tailoring file was refused; ``errors`` lists every problem."""

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(self.errors))


class _RuleTailoring(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: Severity | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class _TailoringModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1, le=1)
    rules: dict[str, _RuleTailoring] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Selection:
    """Which rules a scan evaluates: all of them when every field is empty."""

    rules: tuple[str, ...] = ()
    skip_rules: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    skip_categories: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.rules or self.skip_rules or self.categories or self.skip_categories)


def select_rules(rules: RuleSet, selection: Selection) -> tuple[RuleSet, tuple[Rule, ...]]:
    """The rules ``selection`` keeps (same version) and the rules it leaves out.

    A rule is kept when it is named by ``rules`` or its category by ``categories`` (or both
    are empty), and neither its id nor its category is skipped. Unknown ids or categories are
    refused: a typo would otherwise silently narrow or widen the audit.
    """
    errors = [f"--rule/--skip-rule: no rule {rid!r} in {rules.directory}"
              for rid in dict.fromkeys((*selection.rules, *selection.skip_rules))
              if rules.get(rid) is None]
    known = {c.value for c in Category}
    errors.extend(
        f"--category/--skip-category: unknown category {name!r} (categories: "
        f"{', '.join(sorted(known))})"
        for name in dict.fromkeys((*selection.categories, *selection.skip_categories))
        if name not in known)
    if errors:
        raise TailoringError(errors)
    kept: list[Rule] = []
    left: list[Rule] = []
    for rule in rules:
        chosen = (not selection.rules and not selection.categories) or (
            rule.id in selection.rules or rule.category.value in selection.categories)
        skipped = rule.id in selection.skip_rules or rule.category.value in \
            selection.skip_categories
        (kept if chosen and not skipped else left).append(rule)
    return dataclasses.replace(rules, rules=tuple(kept)), tuple(left)


@dataclass(frozen=True, slots=True)
class PathSkips:
    """Paths inside the image whose findings a scan drops (``--skip-dirs``, ``--skip-files``).

    A directory glob (``/opt/app``, ``/home/*``) covers the directories it matches and
    everything beneath them; a file glob with a ``/`` is matched against the whole path, one
    without against the file name (``*.pem``). Globs are ``fnmatch`` patterns, case-sensitive.
    """

    dirs: tuple[str, ...] = ()
    files: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.dirs or self.files)

    def covers(self, path: str | None) -> bool:
        """Whether ``path`` (an absolute path in the image) is skipped."""
        if not path or not path.startswith("/"):
            return False
        path = posixpath.normpath(path)
        parts = path.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(2, len(parts) + 1)]
        for pattern in self.dirs:
            if any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
                return True
        for pattern in self.files:
            target = path if "/" in pattern else posixpath.basename(path)
            if fnmatch.fnmatchcase(target, pattern):
                return True
        return False


def path_skips(dirs: Iterable[str], files: Iterable[str]) -> PathSkips:
    """Validated globs: directories made absolute, the image root itself refused."""
    clean_dirs: list[str] = []
    for raw in dirs:
        pattern = "/" + raw.strip().strip("/")
        if pattern == "/" or fnmatch.fnmatchcase("/", pattern):
            raise TailoringError([f"--skip-dirs: {raw!r} would skip the whole image"])
        clean_dirs.append(pattern)
    clean_files = []
    for raw in files:
        pattern = raw.strip()
        if not pattern or pattern.endswith("/"):
            raise TailoringError([f"--skip-files: {raw!r} is not a file name or path glob"])
        clean_files.append(pattern)
    return PathSkips(tuple(dict.fromkeys(clean_dirs)), tuple(dict.fromkeys(clean_files)))


def _tailor_rule(path: Path, rule: Rule, change: _RuleTailoring) -> tuple[Rule | None, list[str]]:
    where = f"{path}: rules.{rule.id}"
    params_model = type(rule.params)
    fields = params_model.model_fields
    unknown = [key for key in change.params if key not in fields]
    if unknown:
        names = ", ".join(sorted(fields)) or "none"
        return None, [f"{where}.params.{key}: the {rule.check_type} check of rule {rule.id} has "
                      f"no parameter {key!r} (parameters: {names})" for key in unknown]
    merged = {**rule.params.model_dump(), **change.params}
    try:
        params = params_model.model_validate(merged)
    except ValidationError as exc:
        return None, [f"{path}: {line}" for line in
                      format_validation_error(exc, f"rules.{rule.id}.params")]
    return dataclasses.replace(rule, params=params,
                               severity=change.severity or rule.severity), []


def tailor_rules(rules: RuleSet, path: Path) -> tuple[RuleSet, str]:
    """``rules`` with the changes of the tailoring file ``path``, and the file's digest."""
    try:
        data = path.read_bytes()
        raw = yaml.safe_load(data.decode("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise TailoringError([f"{path}: cannot read the tailoring file: "
                              f"{describe_yaml_error(exc)}"]) from None
    try:
        model = _TailoringModel.model_validate(raw)
    except ValidationError as exc:
        raise TailoringError([f"{path}: {line}"
                              for line in format_validation_error(exc)]) from None
    errors: list[str] = []
    changed: dict[str, Rule] = {}
    for rid, change in model.rules.items():
        rule = rules.get(rid)
        if rule is None:
            errors.append(f"{path}: rules.{rid}: no rule {rid!r} in {rules.directory}")
            continue
        tailored, problems = _tailor_rule(path, rule, change)
        errors.extend(problems)
        if tailored is not None:
            changed[rid] = tailored
    if errors:
        raise TailoringError(errors)
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    tailored_rules = tuple(changed.get(r.id, r) for r in rules)
    return dataclasses.replace(rules, rules=tailored_rules), digest


__all__ = ["PathSkips", "Selection", "TailoringError", "path_skips", "select_rules",
           "tailor_rules"]
