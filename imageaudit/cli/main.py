"""Command line: parse options, call the library, map outcomes to exit codes.

Exit codes CI can rely on: ``0`` level reached (or nothing required), ``3`` findings block the
required level, ``2`` usage or configuration error (bad rule file, unreadable image), ``1``
internal failure, or rules that could not be evaluated under ``--strict``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from imageaudit import __version__
from imageaudit.cli.options import add_open_options, add_trivy_options
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

    facts = gather_facts(args.image, progress=not args.quiet, input_kind=args.input_kind,
                         opener=args.opener)
    if args.format == "json":
        _write(json.dumps(facts.to_json(), indent=2, ensure_ascii=False), args.output)
    else:
        _write(render_facts_text(facts), args.output)
    return EXIT_OK


def cmd_scan(args: argparse.Namespace) -> int:
    from imageaudit.pipeline import ScanOptions, scan_images

    formats: list[str] = args.format or []
    outputs: list[str] = args.output or []
    if len(outputs) > len(formats):
        raise UsageError("more -o/--output than --format options")
    if not formats:
        formats = ["text"]
    pairs = [(f, outputs[i] if i < len(outputs) else None) for i, f in enumerate(formats)]
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
    )
    outcome = scan_images(args.image, pairs, options)
    if args.publish:
        from imageaudit.cli.publish import publish_reports

        published = publish_reports(
            outcome.reports, args.publish, args.token, args.store, sources=args.image,
            signing_key=args.signing_key,
        )
        # A blocked level is the answer CI waits for; a publishing failure comes after it.
        return outcome.code or published
    return outcome.code


def cmd_demo(args: argparse.Namespace) -> int:
    """Build the example images, scan, publish to a local catalogue, show the withdrawal."""
    from imageaudit.cli.demo import run

    return run(Path(args.out), serve=not args.no_serve, progress=not args.quiet)


def cmd_rules(args: argparse.Namespace) -> int:
    from imageaudit.cli import rules as rulescli

    return rulescli.run(args)


SCAN_CODES = {
    EXIT_OK: "every image reached --require (or no level was required)",
    EXIT_INTERNAL: "internal failure, or a rule could not be evaluated under --strict",
    EXIT_USAGE: "usage or configuration error (bad rule file, unreadable image)",
    EXIT_BLOCKED: "findings block the --require level",
}


def build_parser() -> argparse.ArgumentParser:
    from imageaudit.cli.batch import add_parsers as add_batch_parsers
    from imageaudit.cli.cloud import add_parsers as add_cloud_parsers
    from imageaudit.cli.feeds import add_parsers as add_feeds_parsers
    from imageaudit.cli.helptext import HelpFormatter, add_command, epilog
    from imageaudit.cli.publish import add_parsers as add_publish_parsers
    from imageaudit.cli.publish import add_scan_arguments
    from imageaudit.cli.sbom import add_parsers as add_sbom_parsers
    from integrations.appdb.cli import add_parsers as add_catalogue_parsers
    from integrations.appdb.imagelist_cli import add_parsers as add_imagelist_parsers

    parser = argparse.ArgumentParser(
        prog="imageaudit",
        description="Audit VM and container images offline and certify them for a cloud catalogue.",
        formatter_class=HelpFormatter,
        epilog=epilog(SCAN_CODES, ["imageaudit scan image.qcow2 --require standard",
                                   "imageaudit COMMAND --help"]),
    )
    parser.add_argument("--version", action="version", version=f"imageaudit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = add_command(sub, "facts", "print every fact collected from an image",
                    examples=["imageaudit facts image.qcow2 --format json -o facts.json"])
    p.add_argument(
        "image", help="VM disk, container archive, OCI layout, docker://REF or directory"
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("-o", "--output", help="write to FILE instead of stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    add_open_options(p)
    p.set_defaults(func=cmd_facts)

    p = add_command(sub, "scan", "judge images against the rules and certify a level",
                    exit_codes=SCAN_CODES,
                    examples=["imageaudit scan image.qcow2 --require standard",
                              "imageaudit scan image.qcow2 --format sarif -o scan.sarif",
                              "imageaudit scan image.qcow2 --publish --catalogue "
                              "https://catalogue.example.org --signing-key alice.key"])
    p.add_argument("image", nargs="+")
    p.add_argument("--require", metavar="LEVEL", help="exit 3 unless every image reaches LEVEL")
    p.add_argument(
        "--format",
        action="append",
        choices=["text", "json", "sarif", "junit", "html", "markdown"],
        help="output format; repeat with -o for several outputs",
    )
    p.add_argument("-o", "--output", action="append", help="file for the matching --format")
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
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    add_open_options(p)
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

    p = add_command(sub, "rules", "list, show and validate rules",
                    examples=["imageaudit rules list --category accounts",
                              "imageaudit rules show service_cups_remote"])
    rsub = p.add_subparsers(dest="rules_command", required=True)
    r = add_command(rsub, "list", "the rules, one a line",
                    examples=["imageaudit rules list --severity high"])
    r.add_argument("--category")
    r.add_argument("--severity")
    r.add_argument("--rules", metavar="DIR")
    r = add_command(rsub, "show", "one rule in full",
                    examples=["imageaudit rules show service_cups_remote"])
    r.add_argument("rule_id")
    r.add_argument("--rules", metavar="DIR")
    r = add_command(rsub, "validate", "check every rule file of a directory",
                    exit_codes={0: "every rule file is valid",
                                2: "a rule file is invalid (each error is printed)"},
                    examples=["imageaudit rules validate rules/"])
    r.add_argument("dir")
    p.set_defaults(func=cmd_rules)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from imageaudit.errors import describe_user_error

    try:
        code: int = args.func(args)
        return code
    except UsageError as exc:
        print(f"imageaudit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("imageaudit: interrupted", file=sys.stderr)
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
