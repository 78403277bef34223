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
