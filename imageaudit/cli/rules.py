"""``imageaudit rules list|show|validate``: the rule set as a user sees it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imageaudit.findings import Rule
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
        print(_show(rule))
        return 0
    for rule in rules:
        if args.category and rule.category.value != args.category:
            continue
        # a rule is listed under every severity its findings can have
        if args.severity and args.severity not in finding_severities(rule):
            continue
        severity = describe_severity(rule, detailed=False)
        print(f"{rule.id:40} {severity:25} {rule.category.value:14} {rule.title}")
    return 0
