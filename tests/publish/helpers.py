"""A command line for the publisher tests (their reports are ``tests.builders.reports``')."""

from __future__ import annotations

import argparse

from imageaudit.cli.publish import add_parsers


def run_cli(argv: list[str]) -> int:
    """Parse with the publisher's own sub-commands and run, as ``imageaudit`` will."""
    parser = argparse.ArgumentParser(prog="imageaudit")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parsers(sub)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code
