"""The image hash a certification is bound to, and stopping it when the scan fails first."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from imageaudit.identity import HashingStopped, identify_image


def test_hash_and_size_of_the_file(tmp_path: Path) -> None:
    image = tmp_path / "disk.raw"
    image.write_bytes(b"x" * (3 << 20) + b"tail")
    got = identify_image(image, stop=threading.Event())
    assert (got.sha512, got.size) == (hashlib.sha512(image.read_bytes()).hexdigest(),
                                      (3 << 20) + 4)


def test_a_set_stop_ends_the_hash(tmp_path: Path) -> None:
    image = tmp_path / "disk.raw"
    image.write_bytes(b"x" * (3 << 20))
    stop = threading.Event()
    stop.set()
    with pytest.raises(HashingStopped):
        identify_image(image, stop=stop)
