"""``python -m imageaudit.checks --doc``: print the check-type reference page."""

from __future__ import annotations

import argparse
import sys

from imageaudit.checks import default_registry
from imageaudit.checks.doc import render_doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m imageaudit.checks")
    parser.add_argument("--doc", action="store_true", help="print the Markdown reference page")
    args = parser.parse_args(argv)
    if not args.doc:
        parser.print_help()
        return 2
    sys.stdout.write(render_doc(default_registry()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
