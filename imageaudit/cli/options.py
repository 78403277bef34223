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


def add_open_options(p: argparse.ArgumentParser) -> None:
    """Every option about opening an image: ``--input-kind`` and ``--opener``."""
    add_input_kind(p)
    add_opener(p)
