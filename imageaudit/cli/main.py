"""Command line: parse options, call the library, map outcomes to exit codes.

Exit codes CI can rely on: ``0`` level reached (or nothing required), ``3`` findings block the
required level (or a finding at or above ``--fail-on``), ``2`` usage or configuration error
(bad rule file, unreadable image), ``1`` internal failure, or rules that could not be evaluated
under ``--strict``.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imageaudit import __version__
from imageaudit.cli.options import (
    add_open_options,
    add_run_options,
    add_selection_options,
    add_trivy_options,
    selection_options,
)
from imageaudit.errors import EXIT_BLOCKED, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, UsageError

__all__ = ["EXIT_BLOCKED", "EXIT_INTERNAL", "EXIT_OK", "EXIT_USAGE", "UsageError", "main"]


def _write(text: str, output: str | None) -> None:
    if output and output != "-":
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
        if not text.endswith("\n"):
            sys.stdout.write("\n")


def cmd_facts(args: argparse.Namespace) -> int:
    from imageaudit.pipeline import gather_facts
    from imageaudit.report.facts_text import render_facts_text

    fmt = args.format
    if fmt is None:
        suffix = Path(args.output).suffix.lower() if args.output and args.output != "-" else ""
        fmt = "json" if suffix == ".json" else "text"
    if args.timeout is not None:
        from imageaudit.cli.bounded import facts_bounded

        return facts_bounded(args, fmt)
    from imageaudit.cli.bounded import step_listener
    from imageaudit.progress import Progress

    progress = Progress(enabled=not args.quiet, listener=step_listener())
    progress.start(args.image)
    try:
        facts = gather_facts(args.image, progress=progress, input_kind=args.input_kind,
                             opener=args.opener)
        progress.finish("facts gathered")
    finally:
        progress.close()
    if fmt == "json":
        _write(json.dumps(facts.to_json(), indent=2, ensure_ascii=False), args.output)
    else:
        _write(render_facts_text(facts), args.output)
    return EXIT_OK


class _InOrder(argparse._AppendAction):
    """Appends like ``append`` and also keeps ``--format`` and ``-o`` in command-line order,
    so that each ``-o`` takes the ``--format`` given before it."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        super().__call__(parser, namespace, values, option_string)
        order = list(getattr(namespace, "output_order", None) or [])
        order.append((self.dest, values))
        namespace.output_order = order


def _scan_outputs(args: argparse.Namespace) -> tuple[list[tuple[str, str | None]], list[str]]:
    """The (format, file) pairs and the ``--output-dir`` formats the options ask for.

    Each ``-o`` takes the first ``--format`` given before it and not yet taken; an ``-o``
    without one takes the format its suffix names; a ``--format`` left without ``-o`` goes
    to stdout, or into ``--output-dir``.
    """
    from imageaudit.report.outputs import infer_format

    pending: list[str] = []
    pairs: list[tuple[str, str | None]] = []
    for dest, value in getattr(args, "output_order", None) or []:
        if dest == "format":
            pending.append(value)
            continue
        if pending:
            pairs.append((pending.pop(0), value))
            continue
        try:
            pairs.append((infer_format(value), value))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    rest = list(dict.fromkeys(pending))
    if args.output_dir:
        return pairs, rest or ["json"]
    pairs.extend((fmt, None) for fmt in rest)
    return pairs or [("text", None)], []


def cmd_scan(args: argparse.Namespace) -> int:
    from imageaudit.pipeline import ScanOptions, scan_images

    pairs, dir_formats = _scan_outputs(args)
    if args.publish:
        from imageaudit.cli.catalogue_options import publish_catalogue
        from imageaudit.cli.publish import refuse_unpublishable_inputs

        refuse_unpublishable_inputs(args.image, args.input_kind)
        args.publish = publish_catalogue(args)
    options = ScanOptions(
        require=args.require,
        rules_dir=Path(args.rules) if args.rules else None,
        levels_file=Path(args.levels) if args.levels else None,
        waivers_file=Path(args.waivers) if args.waivers else None,
        strict=args.strict,
        expiry_days=args.expiry_days,
        feeds_dir=Path(args.feeds) if getattr(args, "feeds", None) else None,
        ioc_files=tuple(Path(f) for f in args.ioc or ()),
        yara_rules=Path(args.yara) if args.yara else None,
        trivy=args.trivy,
        trivy_cache=Path(args.trivy_cache) if args.trivy_cache else None,
        trivy_timeout=args.trivy_timeout,
        progress=not args.quiet,
        input_kind=args.input_kind,
        opener=args.opener,
        debug=args.debug,
        **selection_options(args),  # type: ignore[arg-type]
    )
    auditor = None
    if args.timeout is not None:
        from imageaudit.cli.bounded import bounded_auditor

        formats = [f for f, _ in pairs if f != "jsonl"] + [f for f in dir_formats if f != "jsonl"]
        auditor = bounded_auditor(options, formats, args.timeout)
    outcome = scan_images(args.image, pairs, options,
                          output_dir=Path(args.output_dir) if args.output_dir else None,
                          dir_formats=dir_formats, auditor=auditor)
    if args.publish:
        from imageaudit.cli.publish import publish_reports

        done = [a for a in outcome.audited if a.data is not None]
        published = publish_reports(
            [a.data for a in done if a.data is not None], args.publish, args.token, args.store,
            sources=[a.spec for a in done], signing_key=args.signing_key,
        ) if done else 0
        # A blocked level is the answer CI waits for; a publishing failure comes after it.
        return outcome.code or published
    return outcome.code


def cmd_demo(args: argparse.Namespace) -> int:
    """Build the example images, scan, publish to a local catalogue, show the withdrawal."""
    from imageaudit.cli.demo import run

    return run(Path(args.out), serve=not args.no_serve, progress=not args.quiet)


SCAN_OUTPUTS_HELP = """\
outputs:
  The report goes to stdout (text by default); progress, the summary and errors go to
  stderr, so `imageaudit scan IMAGE > report.txt` or `| grep` see the report alone.
  -o FILE writes the --format given before it to FILE instead (without one, the suffix
  names it: .json .jsonl .sarif .xml=junit .html .md .txt). Each image's files are written
  as soon as that image is done; one image's json on stdout is its report object.
  Several images: -o scan.sarif writes scan.IMAGE.sarif per image (IMAGE: the file name
  without its suffix, e.g. scan.example-good.sarif), except jsonl (one file, a line per
  image); on stdout, json is one JSON array of the reports, jsonl one report per line,
  sarif one SARIF log with one run per image (junit and html need -o or --output-dir).
  An image that cannot be read gets its error on stderr; the others are still written.

"""


def _configure_logging(debug: bool) -> None:
    import logging

    if debug:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")


SCAN_CODES = {
    EXIT_OK: "every image audited and reached --require (or no level was required)",
    EXIT_INTERNAL: "internal failure, an image not audited (--timeout) without --require, or "
                   "a rule that could not be evaluated under --strict",
    EXIT_USAGE: "usage or configuration error (bad rule file, an image that cannot be read)",
    EXIT_BLOCKED: "an image is below --require or was not audited (--timeout), or a finding "
                  "is at --fail-on or above",
}


def build_parser() -> argparse.ArgumentParser:
    from imageaudit.cli.batch import add_parsers as add_batch_parsers
    from imageaudit.cli.cloud import add_parsers as add_cloud_parsers
    from imageaudit.cli.config import EPILOG, add_config_option
    from imageaudit.cli.feeds import add_parsers as add_feeds_parsers
    from imageaudit.cli.publish import add_parsers as add_publish_parsers
    from imageaudit.cli.publish import add_scan_arguments
    from imageaudit.cli.rules import add_levels_parser, add_rules_parser
    from imageaudit.cli.sbom import add_parsers as add_sbom_parsers
    from imageaudit.helptext import HelpFormatter, add_command, epilog
    from integrations.appdb.cli import add_parsers as add_catalogue_parsers
    from integrations.appdb.imagelist_cli import add_parsers as add_imagelist_parsers

    parser = argparse.ArgumentParser(
        prog="imageaudit",
        description="Audit VM and container images offline and certify them for a cloud catalogue.",
        formatter_class=HelpFormatter,
        epilog=epilog(SCAN_CODES, ["imageaudit scan image.qcow2 --require standard",
                                   "imageaudit COMMAND --help"],
                      notes=textwrap.fill(EPILOG, width=79)),
    )
    parser.add_argument("--version", action="version", version=f"imageaudit {__version__}")
    add_config_option(parser)
    sub = parser.add_subparsers(dest="command", required=True)

    p = add_command(sub, "facts", "print every fact collected from an image",
                    examples=["imageaudit facts image.qcow2 --format json -o facts.json"])
    p.add_argument(
        "image", help="VM disk, container archive, OCI layout, docker://REF or directory"
    )
    p.add_argument("--format", choices=["text", "json"],
                   help="output format (default: from -o's suffix .json or .txt, else text)")
    p.add_argument("-o", "--output", help="write to FILE instead of stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    add_run_options(p)
    add_open_options(p)
    p.set_defaults(func=cmd_facts)

    p = add_command(sub, "scan", "judge images against the rules and certify a level",
                    exit_codes=SCAN_CODES, notes=SCAN_OUTPUTS_HELP,
                    examples=["imageaudit scan image.qcow2 --require standard",
                              "imageaudit scan image.qcow2 --require basic -o report.sarif "
                              "--timeout 1800",
                              "imageaudit scan image.qcow2 --format sarif -o scan.sarif",
                              "imageaudit scan image.qcow2 --publish --catalogue "
                              "https://catalogue.example.org --signing-key alice.key"])
    p.add_argument("image", nargs="+")
    p.add_argument("--require", metavar="LEVEL",
                   help="exit 3 unless every image reaches LEVEL (an image that could not be "
                        "audited reaches none)")
    p.add_argument(
        "--format",
        action=_InOrder,
        choices=["text", "json", "jsonl", "sarif", "junit", "html", "markdown"],
        help="output format (default: text on stdout, or what -o's suffix names); repeat "
             "with -o for several outputs",
    )
    p.add_argument("-o", "--output", action=_InOrder, metavar="FILE",
                   help="file for the --format before it (- for stdout); its format is "
                        "inferred from the suffix when no --format goes with it; with several "
                        "images, one file per image named by image")
    p.add_argument("--output-dir", metavar="DIR",
                   help="write each image's outputs into DIR as IMAGE.SUFFIX, one file per "
                        "--format not paired with -o (default format: json)")
    p.add_argument("--waivers", metavar="FILE")
    p.add_argument("--rules", metavar="DIR", help="rules directory (default: the built-in rules)")
    p.add_argument("--levels", metavar="FILE", help="levels file (default: rules/levels.yaml)")
    p.add_argument(
        "--strict", action="store_true", help="exit 1 when a rule could not be evaluated"
    )
    p.add_argument("--expiry-days", type=int, default=30, help="certification validity (days)")
    p.add_argument("--feeds", metavar="DIR", help="advisory/update feed snapshot for package rules")
    p.add_argument("--ioc", metavar="FILE", action="append",
                   help="indicators of compromise (MISP event JSON, MISP feed directory or CSV) "
                        "to match file hashes and names against; repeatable")
    p.add_argument("--yara", metavar="DIR",
                   help="YARA rules (a .yar/.yara file or a directory of them) to match the "
                        "image's executables, libraries and scripts against")
    add_trivy_options(p)
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress or summary on stderr (errors still are); the report "
                        "still goes to stdout unless -o names a file for it")
    add_run_options(p)
    add_open_options(p)
    add_selection_options(p)
    add_scan_arguments(p)
    p.set_defaults(func=cmd_scan)

    add_batch_parsers(sub)
    add_publish_parsers(sub)
    add_feeds_parsers(sub)
    add_sbom_parsers(sub)
    add_catalogue_parsers(sub)
    add_cloud_parsers(sub)
    add_imagelist_parsers(sub)

    p = add_command(sub, "demo", "build the example images, scan them and write reports",
                    examples=["imageaudit demo --out out --no-serve"])
    p.add_argument("--out", default="out", help="directory for the images and reports")
    p.add_argument("--no-serve", action="store_true", help="stop the catalogue when done")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_demo)

    add_rules_parser(sub)
    add_levels_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from imageaudit.cli.config import parse_args
    from imageaudit.errors import describe_user_error

    parser = build_parser()
    try:
        args = parse_args(parser, argv)
    except UsageError as exc:
        print(f"imageaudit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _configure_logging(bool(getattr(args, "debug", False)))
    try:
        code: int = args.func(args)
        return code
    except UsageError as exc:
        print(f"imageaudit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("imageaudit: interrupted", file=sys.stderr)
        return EXIT_INTERNAL
    except BrokenPipeError:
        # The reader went away (| head): stop without a traceback. Python's own recipe: point
        # stdout at /dev/null so that flushing it at exit does not fail a second time.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_INTERNAL
    except Exception as exc:
        known = describe_user_error(exc)
        if known is not None:
            print(f"imageaudit: error: {known}", file=sys.stderr)
            return EXIT_USAGE
        import traceback

        traceback.print_exc()
        print(f"imageaudit: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
