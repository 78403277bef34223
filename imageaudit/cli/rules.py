"""``imageaudit rules list|show|validate`` and ``imageaudit levels``: the rule set and the
certification levels as a user sees them, as text or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from imageaudit.findings import Rule
from imageaudit.model import Severity
from imageaudit.rules import describe_severity, finding_severities, load_rules, validate_rules


def _rules_dir(args: argparse.Namespace) -> Path:
    from imageaudit.pipeline import default_rules_dir

    return Path(args.rules) if getattr(args, "rules", None) else default_rules_dir()


def _show(rule: Rule) -> str:
    params = rule.params.model_dump(mode="json")
    lines = [
        f"{rule.id}  [{describe_severity(rule, detailed=False)}, {rule.category.value}]",
        f"  title:       {rule.title}",
        f"  severity:    {describe_severity(rule)}",
        f"  description: {rule.description.strip()}",
        f"  rationale:   {rule.rationale.strip()}",
        f"  remediation: {rule.remediation.strip()}",
        f"  check:       {rule.check_type} {json.dumps(params, sort_keys=True)}",
        f"  levels:      {', '.join(rule.levels) or '(by severity)'}",
        f"  version:     {rule.version}",
    ]
    if rule.applies_to.image_kinds:
        lines.append(f"  image kinds: {', '.join(rule.applies_to.image_kinds)}")
    if rule.applies_to.os_families:
        lines.append(f"  os families: {', '.join(rule.applies_to.os_families)}")
    lines.extend(f"  reference:   {ref}" for ref in rule.references)
    return "\n".join(lines)


def rule_json(rule: Rule) -> dict[str, Any]:
    """One rule as ``rules list|show --format json`` prints it."""
    return {
        "id": rule.id,
        "title": rule.title,
        "category": rule.category.value,
        "severity": rule.severity.value,
        "severities": sorted((s.value for s in finding_severities(rule)),
                             key=lambda v: -Severity(v).rank),
        "description": rule.description.strip(),
        "rationale": rule.rationale.strip(),
        "remediation": rule.remediation.strip(),
        "references": list(rule.references),
        "check": {"type": rule.check_type, "params": rule.params.model_dump(mode="json")},
        "levels": list(rule.levels),
        "image_kinds": list(rule.applies_to.image_kinds or ()) or None,
        "os_families": list(rule.applies_to.os_families or ()) or None,
        "version": rule.version,
    }


def _dump(value: object) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def add_rules_parser(sub: Any) -> None:
    """``imageaudit rules list|show|validate``."""
    from imageaudit.helptext import add_command

    p = add_command(sub, "rules", "list, show and validate rules",
                    examples=["imageaudit rules list --category password",
                              "imageaudit rules show ssh_permit_root_login --format json"])
    rsub = p.add_subparsers(dest="rules_command", required=True)
    r = add_command(rsub, "list", "one line per rule, or a JSON array",
                    examples=["imageaudit rules list --severity high",
                              "imageaudit rules list --format json"])
    r.add_argument("--category", help="only rules of this category")
    r.add_argument("--severity", help="only rules whose findings can have this severity")
    r.add_argument("--rules", metavar="DIR", help="rules directory (default: the built-in rules)")
    r.add_argument("--format", choices=["text", "json"], default="text",
                   help="output format (default: %(default)s)")
    r = add_command(rsub, "show", "everything about one rule",
                    exit_codes={0: "shown", 2: "no such rule, or a usage error"},
                    examples=["imageaudit rules show ssh_permit_root_login"])
    r.add_argument("rule_id")
    r.add_argument("--rules", metavar="DIR", help="rules directory (default: the built-in rules)")
    r.add_argument("--format", choices=["text", "json"], default="text",
                   help="output format (default: %(default)s)")
    r = add_command(rsub, "validate", "check every rule file of a directory",
                    exit_codes={0: "every rule file is valid",
                                2: "a rule file is invalid (each error is printed)"},
                    examples=["imageaudit rules validate my-rules/"])
    r.add_argument("dir")
    p.set_defaults(func=run)


def add_levels_parser(sub: Any) -> None:
    """``imageaudit levels``."""
    from imageaudit.helptext import add_command

    p = add_command(
        sub, "levels", "list the certification levels and the rules that block each",
        examples=["imageaudit levels", "imageaudit levels --format json"],
        description="List the certification levels, lowest first, with what blocks each "
                    "(severities, categories, rules) and every rule each level requires, "
                    "its own and those inherited from the levels below. A required rule that "
                    "fails, or is not evaluated, blocks the level.")
    p.add_argument("--rules", metavar="DIR", help="rules directory (default: the built-in rules)")
    p.add_argument("--levels", metavar="FILE",
                   help="levels file (default: levels.yaml of the rules directory)")
    p.add_argument("--format", choices=["text", "json"], default="text",
                   help="output format (default: %(default)s)")
    p.set_defaults(func=run_levels)


def run_levels(args: argparse.Namespace) -> int:
    from imageaudit.certify import load_levels, required_rules
    from imageaudit.pipeline import default_rules_dir

    rules_dir = _rules_dir(args)
    levels_file = Path(args.levels) if args.levels else rules_dir / "levels.yaml"
    if not args.levels and not levels_file.is_file():
        levels_file = default_rules_dir() / "levels.yaml"
    levels = load_levels(levels_file)
    rules = load_rules(rules_dir)
    required = required_rules(levels, rules)
    entries: list[dict[str, Any]] = [{
        "name": level.name,
        "description": " ".join(level.description.split()),
        "blocked_by": {"severities": [s.value for s in level.severities],
                       "categories": [c.value for c in level.categories],
                       "rules": list(level.rules)},
        "rules": list(required[level.name]),
    } for level in levels.levels]
    if args.format == "json":
        _dump({"levels_file": str(levels_file), "levels_version": levels.version,
               "ruleset_version": rules.version, "levels": entries})
        return 0
    for entry in entries:
        blocked = entry["blocked_by"]
        what = [f"{k} {', '.join(v)}" for k, v in blocked.items() if v]
        print(f"{entry['name']}: {entry['description']}")
        print(f"  blocked by: {'; '.join(what) or 'nothing of its own'}")
        print(f"  requires {len(entry['rules'])} rules: {', '.join(entry['rules'])}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.rules_command == "validate":
        errors = validate_rules(Path(args.dir))
        for error in errors:
            print(error, file=sys.stderr)
        if errors:
            print(f"{len(errors)} error(s) in {args.dir}", file=sys.stderr)
            return 2
        print(f"{args.dir}: {len(load_rules(Path(args.dir)))} rules, all valid", file=sys.stderr)
        return 0
    rules = load_rules(_rules_dir(args))
    if args.rules_command == "show":
        rule = rules.get(args.rule_id)
        if rule is None:
            print(f"imageaudit: error: no rule {args.rule_id!r}", file=sys.stderr)
            return 2
        if args.format == "json":
            _dump(rule_json(rule))
        else:
            print(_show(rule))
        return 0
    listed = [
        rule for rule in rules
        if not (args.category and rule.category.value != args.category)
        # a rule is listed under every severity its findings can have
        and not (args.severity and args.severity not in finding_severities(rule))
    ]
    if args.format == "json":
        _dump([rule_json(rule) for rule in listed])
        return 0
    from imageaudit.report.table import write_table

    write_table(sys.stdout, ("Rule", "Severity", "Category", "Title"), (
        (rule.id, describe_severity(rule, detailed=False), rule.category.value, rule.title)
        for rule in listed))
    return 0
