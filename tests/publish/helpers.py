"""Reports and a command line for the publisher tests."""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

from imageaudit.cli.publish import add_parsers

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "golden" / "report.json"


def make_report(sha512: str, issued: str = "2025-03-01T12:00:00Z") -> dict[str, Any]:
    """The golden report, bound to ``sha512`` and issued at ``issued`` (a distinct report)."""
    report: dict[str, Any] = copy.deepcopy(json.loads(GOLDEN.read_text(encoding="utf-8")))
    report["image"]["sha512"] = sha512
    report["certification"]["image_sha512"] = sha512
    report["certification"]["issued"] = issued
    return report


def run_cli(argv: list[str]) -> int:
    """Parse with the publisher's own sub-commands and run, as ``imageaudit`` will."""
    parser = argparse.ArgumentParser(prog="imageaudit")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parsers(sub)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code
