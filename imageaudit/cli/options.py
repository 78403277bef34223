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
