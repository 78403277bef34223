"""What a long audit shows while it runs: the image, its current sub-step and the time spent.

On a terminal one live line on stderr is rewritten in place; anywhere else (a CI log, a file)
each sub-step is one timestamped line, so a log shows where an audit spent its time and where
it stopped. The current sub-step is kept even when nothing is shown: a timeout names it.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

LOG = logging.getLogger("imageaudit.progress")


class Progress:
    """Sub-steps of the image being audited, shown on ``stream`` unless ``enabled`` is false."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None,
                 listener: Callable[[str], None] | None = None) -> None:
        self.enabled = enabled
        self.listener = listener  # hears every sub-step (a child process tells its parent)
        self.stream = stream if stream is not None else sys.stderr
        self.image = ""
        self.current = ""
        self._image_start = time.monotonic()
        self._step_start = self._image_start
        self._live: Live | None = None
        self._console: Console | None = None
        if enabled and _is_terminal(self.stream):
            self._console = Console(file=self.stream, stderr=self.stream is sys.stderr)

    @property
    def elapsed(self) -> float:
        """Seconds since the current image started."""
        return time.monotonic() - self._image_start

    def start(self, image: str) -> None:
        """A new image: its clock starts now."""
        self.image = _printable(image)
        self.current = ""
        self._image_start = time.monotonic()
        self._step_start = self._image_start
        if self._console is not None and self._live is None:
            self._live = Live(self, console=self._console, refresh_per_second=4,
                              transient=True)
            self._live.start()

    def step(self, what: str) -> None:
        """The image's work moved on to ``what`` (e.g. ``gathering facts: accounts``)."""
        self.current = what = _printable(what)
        self._step_start = time.monotonic()
        LOG.debug("%s: %s (%.1f s)", self.image, what, self.elapsed)
        if self.listener is not None:
            self.listener(what)
        if not self.enabled or self._console is not None:
            return
        self._line(f"{self.image}: {what}")

    def finish(self, outcome: str | None) -> None:
        """The image is done (``outcome``: what came of it, ``None`` when an error says it);
        the live line goes away."""
        self._stop_live()
        LOG.debug("%s: %s after %.1f s", self.image, outcome or "stopped", self.elapsed)
        if self.enabled and self._console is None and outcome is not None:
            self._line(f"{self.image}: {outcome} after {self.elapsed:.1f} s")

    def note(self, text: Text) -> None:
        """A warning about the image, shown even when progress is not (``-q``)."""
        console = self._console or Console(file=self.stream)
        # One line each (no wrapping at 80 columns in CI logs); image text is not markup.
        console.print(text, soft_wrap=True, highlight=False)

    def close(self) -> None:
        self._stop_live()

    def _stop_live(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _line(self, text: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.stream.write(f"{stamp} [{self.elapsed:6.1f}s] {text}\n")
        self.stream.flush()

    def __rich__(self) -> Spinner:
        # Called on every refresh of the live line, so the clocks move between sub-steps.
        now = time.monotonic()
        line = Text.assemble(
            (self.image, "bold"), ": ", self.current or "starting",
            (f"  {now - self._step_start:.0f} s", "dim"),
            (f"  (total {now - self._image_start:.0f} s)", "dim"),
            no_wrap=True, overflow="ellipsis",
        )
        return Spinner("dots", text=line)


def _printable(text: str) -> str:
    """``text`` on one line: a newline in an image's name must not forge a progress line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


__all__ = ["Progress"]
