"""Command line of ``imageaudit sbom IMAGE [--format cyclonedx-json] [-o FILE]``.

The SBOM goes to stdout or ``-o FILE``; progress to stderr. Exit codes follow
:mod:`imageaudit.cli.main`: ``0`` written, ``2`` the image could not be opened or holds no readable
package database.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from imageaudit.cli.options import add_open_options
from imageaudit.errors import UsageError
from imageaudit.helptext import add_command
from imageaudit.report import SBOM_FORMATS


def cmd_sbom(args: argparse.Namespace) -> int:
    """Open the image, collect its facts, write the SBOM of its packages."""
    from imageaudit.identity import identify_image
    from imageaudit.openers.detect import is_daemon_input
    from imageaudit.pipeline import gather_facts
    from imageaudit.report.sbom import sbom_of_facts

    facts = gather_facts(args.image, progress=not args.quiet, input_kind=args.input_kind,
                         opener=args.opener)
    if facts.packages is None or not facts.packages.databases:
        raise UsageError(f"{args.image}: no package database could be read")
    sha512 = None
    if not is_daemon_input(args.image, args.input_kind) and Path(args.image).is_file():
        sha512 = identify_image(args.image).sha512
    text = sbom_of_facts(facts, sha512=sha512, fmt=args.format)
    if args.output and args.output != "-":
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")
    if not args.quiet:
        count = sum(1 for p in facts.packages.packages if p.present)
        where = args.output if args.output and args.output != "-" else "stdout"
        print(f"imageaudit: SBOM of {count} packages written to {where}", file=sys.stderr)
    return 0


def add_parsers(subparsers: Any) -> None:
    """Add ``sbom`` to the ``imageaudit`` sub-command parsers."""
    p = add_command(subparsers, "sbom", "write a CycloneDX SBOM of the image's packages",
                    exit_codes={0: "the SBOM is written", 1: "internal failure",
                                2: "the image could not be opened or holds no readable "
                                   "package database"},
                    examples=["imageaudit sbom image.qcow2 -o image.cdx.json"])
    p.add_argument(
        "image", help="VM disk, container archive, OCI layout, docker://REF or directory"
    )
    p.add_argument("--format", choices=list(SBOM_FORMATS), default=SBOM_FORMATS[0])
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    add_open_options(p)
    p.set_defaults(func=cmd_sbom)


__all__ = ["add_parsers", "cmd_sbom"]
