"""A parser child that stops answering: the open or the read fails within its wall-clock bound
with one clear error, the child is killed and reaped, and the image serves no further read.

The child is made to stop answering from outside, with SIGSTOP: the real child, no hook in
it, frozen exactly as a parser stuck in a loop would look to the parent.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from imageaudit.imagefs import ImageFSError
from imageaudit.openers.direct import DirectError, Limits, open_direct
from imageaudit.openers.direct.fs import (
    DEFAULT_OPEN_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    OPEN_TIMEOUT_ENV,
    READ_TIMEOUT_ENV,
)
from tests.openers.direct.test_hostile import _children_alive

BOUND = 1.5


def test_a_read_the_child_never_answers(direct_images: dict[str, Path]) -> None:
    image = direct_images["qcow2"]
    fs = open_direct(image, limits=Limits(read_timeout=BOUND))
    try:
        assert fs.read("/etc/passwd").data.startswith(b"root:")  # answering before
        os.kill(fs._child.proc.pid, signal.SIGSTOP)
        start = time.monotonic()
        with pytest.raises(DirectError) as info:
            fs.read("/etc/os-release")
        took = time.monotonic() - start
        message = str(info.value)
        assert message == (f"{image}: the parser did not answer a read of /etc/os-release "
                           f"within {BOUND:g} s (${READ_TIMEOUT_ENV}); it was stopped")
        assert BOUND <= took < BOUND + 5, took
        assert _children_alive() == []
        # Stopped for good: a later read says so at once, as a DirectError, never a crash.
        start = time.monotonic()
        with pytest.raises(DirectError, match=r"the parser is no longer running \(it did not "
                                              r"answer a read of /etc/os-release"):
            fs.read("/etc/passwd")
        assert time.monotonic() - start < 1
        assert fs.exists("/etc/passwd")  # the tree already sent stays
    finally:
        fs.close()
    assert _children_alive() == []


def _stop_first_child(stopped: list[int], done: threading.Event) -> None:
    while not done.is_set():
        for pid in _children_alive():
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
            return
        time.sleep(0.002)


def test_an_open_the_child_never_finishes(direct_images: dict[str, Path],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    image = direct_images["qcow2"]
    monkeypatch.setenv(OPEN_TIMEOUT_ENV, str(BOUND))
    stopped: list[int] = []
    done = threading.Event()
    watcher = threading.Thread(target=_stop_first_child, args=(stopped, done))
    watcher.start()
    start = time.monotonic()
    try:
        with pytest.raises(DirectError) as info:
            open_direct(image).close()
    finally:
        done.set()
        watcher.join()
    took = time.monotonic() - start
    assert stopped, "the child was seen and stopped"
    assert str(info.value) == (f"{image}: the parser did not answer with the tree within the "
                               f"open bound of {BOUND:g} s (${OPEN_TIMEOUT_ENV}); it was "
                               "stopped")
    assert BOUND <= took < BOUND + 5, took
    assert _children_alive() == []
    assert not Path(f"/proc/{stopped[0]}").exists()  # killed and reaped, not a zombie


def test_bounds_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OPEN_TIMEOUT_ENV, raising=False)
    monkeypatch.delenv(READ_TIMEOUT_ENV, raising=False)
    limits = Limits()
    assert (limits.open_timeout, limits.read_timeout) == (DEFAULT_OPEN_TIMEOUT,
                                                          DEFAULT_READ_TIMEOUT)
    monkeypatch.setenv(OPEN_TIMEOUT_ENV, "30")
    monkeypatch.setenv(READ_TIMEOUT_ENV, "2.5")
    limits = Limits()
    assert (limits.open_timeout, limits.read_timeout) == (30.0, 2.5)


@pytest.mark.parametrize("raw", ["soon", "0", "-3", "inf", "nan"])
def test_a_bad_bound_is_refused(raw: str, direct_images: dict[str, Path],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(READ_TIMEOUT_ENV, raw)
    with pytest.raises(ImageFSError, match=rf"^\${READ_TIMEOUT_ENV}: '{raw}' "):
        open_direct(direct_images["qcow2"])
    assert _children_alive() == []
