"""Command-line options shared by several commands, so each command module can add them itself."""

from __future__ import annotations

import argparse


def add_input_kind(p: argparse.ArgumentParser) -> None:
    """``--input-kind``: how to read the image(s) instead of detecting it from the content."""
    from imageaudit.openers import AUTO, INPUT_KINDS

    p.add_argument(
        "--input-kind",
        choices=INPUT_KINDS,
        default=AUTO,
        help="read every image as this kind instead of detecting it; needed for an input "
        "that reads as two kinds (e.g. a root directory that also holds an OCI layout)",
    )


def add_opener(p: argparse.ArgumentParser) -> None:
    """``--opener``: how a VM disk or OVA is read."""
    from imageaudit.openers import AUTO, OPENERS

    p.add_argument(
        "--opener",
        choices=OPENERS,
        default=AUTO,
        help="how VM disks are read: direct (in user space, no appliance), guestfs (a "
        "libguestfs appliance), or auto (default: direct, and libguestfs with a note for what "
        "the direct reader does not read, such as btrfs or LUKS)",
    )


def add_trivy_options(p: argparse.ArgumentParser) -> None:
    """``--trivy``, ``--trivy-cache`` and ``--trivy-timeout``: trivy run on each image, offline."""
    p.add_argument("--trivy", action="store_true",
                   help="also run trivy (on PATH or $IMAGEAUDIT_TRIVY) offline: its secret "
                        "scanner, and its vulnerability scanner when it has a database")
    p.add_argument("--trivy-cache", metavar="DIR",
                   help="trivy's cache directory holding its database (db/trivy.db); default "
                        "$IMAGEAUDIT_TRIVY_CACHE or ~/.cache/trivy")
    p.add_argument("--trivy-timeout", metavar="SECONDS", type=_positive_seconds, default=600.0,
                   help="stop trivy after this long on one image; its rules are then not "
                        "evaluated (default: %(default)g)")


def add_run_options(p: argparse.ArgumentParser) -> None:
    """``--timeout`` and ``--debug``: how long one image may take, and what is logged."""
    p.add_argument("--timeout", metavar="SECONDS", type=_positive_seconds,
                   help="stop an image's audit after this long (it then runs in a process "
                        "of its own, killed whole); that image gets an error naming the "
                        "step it was in and no level (default: no limit)")
    p.add_argument("--debug", action="store_true",
                   help="log what happens (and the libguestfs appliance's own log, when it "
                        "is used) on stderr")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 86_400:
        raise argparse.ArgumentTypeError(f"between 0 and 86400 seconds, not {text}")
    return value


def add_open_options(p: argparse.ArgumentParser) -> None:
    """Every option about opening an image: ``--input-kind`` and ``--opener``."""
    add_input_kind(p)
    add_opener(p)


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


_SEVERITY_ALIASES = {"medium": "moderate", "unknown": "info", "informational": "info"}


def _severity(text: str) -> str:
    from imageaudit.model import Severity

    name = _SEVERITY_ALIASES.get(text.strip().lower(), text.strip().lower())
    if name not in {s.value for s in Severity}:
        raise argparse.ArgumentTypeError(
            f"unknown severity {text!r} (severities: {', '.join(s.value for s in Severity)})")
    return name


def _severities(text: str) -> list[str]:
    return [_severity(item) for item in _items(text)]


class _ExtendItems(argparse.Action):
    """Repeatable option whose values may also be comma-separated lists."""

    repeatable = True  # the configuration file and environment give it a list

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        items = list(getattr(namespace, self.dest, None) or [])
        items.extend(values if isinstance(values, list) else _items(str(values)))
        setattr(namespace, self.dest, items)


def add_selection_options(p: argparse.ArgumentParser) -> None:
    """What a scan judges and shows: rule selection, path skips, tailoring, severity gates."""
    g = add_narrowing_options(p)
    g.add_argument("--severity", metavar="LIST", type=_severities, action=_ExtendItems,
                   help="show only findings of these severities (comma-separated: critical, "
                        "high, moderate or medium, low, info) in the text, SARIF, JUnit, HTML "
                        "and Markdown outputs; the level is still judged on every finding and "
                        "the JSON report keeps them all")
    g.add_argument("--fail-on", metavar="SEVERITY", type=_severity,
                   help="also exit 3 when a finding at or above SEVERITY failed or could not "
                        "be evaluated (waived findings aside), beside --require")


def add_narrowing_options(p: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Which rules and paths are judged, and the tailoring file (``scan`` and ``batch``)."""
    g = p.add_argument_group(
        "selection and gating",
        "A rule left out by --rule, --skip-rule, --category or --skip-category is not "
        "evaluated: it is reported as an ERROR finding, so no level it guards is granted "
        "(use --waivers to accept a finding and keep the level). Findings under --skip-dirs "
        "or --skip-files are dropped; the levels are judged on the rest. Both, and the "
        "--tailoring file's digest, are recorded in the report's certification (scope). "
        "Every option can also come from $IMAGEAUDIT_<OPTION> or imageaudit.yaml "
        "(see imageaudit --help).")
    g.add_argument("--rule", metavar="ID", action=_ExtendItems,
                   help="evaluate only these rules (repeatable or comma-separated)")
    g.add_argument("--skip-rule", metavar="ID", action=_ExtendItems,
                   help="leave these rules out (repeatable or comma-separated)")
    g.add_argument("--category", metavar="CAT", action=_ExtendItems,
                   help="evaluate only rules of these categories (repeatable or comma-separated)")
    g.add_argument("--skip-category", metavar="CAT", action=_ExtendItems,
                   help="leave out rules of these categories (repeatable or comma-separated)")
    g.add_argument("--skip-dirs", metavar="GLOB", action=_ExtendItems,
                   help="drop findings under these directories of the image (fnmatch globs, "
                        "e.g. /opt/app or /home/*; repeatable or comma-separated)")
    g.add_argument("--skip-files", metavar="GLOB", action=_ExtendItems,
                   help="drop findings about files matching these globs (a glob with a / "
                        "matches the whole path, one without the file name, e.g. *.pem)")
    g.add_argument("--tailoring", metavar="FILE",
                   help="YAML file changing rule parameters and severities "
                        "(version: 1, rules: {ID: {severity: ..., params: {...}}})")
    return g


def narrowing_options(args: argparse.Namespace) -> dict[str, object]:
    """The ``ScanOptions`` (and ``BatchOptions``) fields of :func:`add_narrowing_options`."""
    from pathlib import Path

    from imageaudit.errors import UsageError
    from imageaudit.tailoring import Selection, TailoringError, path_skips

    try:
        skips = path_skips(args.skip_dirs or (), args.skip_files or ())
    except TailoringError as exc:
        raise UsageError(str(exc)) from None
    return {
        "selection": Selection(rules=tuple(args.rule or ()),
                               skip_rules=tuple(args.skip_rule or ()),
                               categories=tuple(args.category or ()),
                               skip_categories=tuple(args.skip_category or ())),
        "path_skips": skips,
        "tailoring_file": Path(args.tailoring) if args.tailoring else None,
    }


def selection_options(args: argparse.Namespace) -> dict[str, object]:
    """The ``ScanOptions`` fields of :func:`add_selection_options`' options."""
    from imageaudit.model import Severity

    return {
        **narrowing_options(args),
        "show_severities": frozenset(Severity(s) for s in args.severity)
        if args.severity else None,
        "fail_on": Severity(args.fail_on) if args.fail_on else None,
    }
