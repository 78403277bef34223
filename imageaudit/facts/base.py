"""What every collector shares: the collection context and the collector declaration."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from imageaudit.imagefs import DEFAULT_READ_LIMIT, FileStat, ImageFS, ImageFSError, ReadResult
from imageaudit.model import CollectorError

# Pseudo filesystems and caches that are never part of what an image ships.
WALK_SKIP = ("/proc", "/sys", "/dev", "/run", "/var/cache/apt/archives", "/var/lib/docker")
WALK_LIMIT = 500_000


@dataclass
class CollectContext:
    """Handed to each collector: the image, one shared bounded walk, and an error sink."""

    fs: ImageFS
    walk_limit: int = WALK_LIMIT
    errors: list[CollectorError] = field(default_factory=list)
    _walk: list[FileStat] | None = None
    walk_truncated: bool = False
    # The collector now running: read failures are charged to its facts.
    current: str = "read"
    # What the collectors run so far returned, by name: a later one may reuse their work
    # (integrity takes the digests filehashes computed instead of reading the files again).
    collected: dict[str, Any] = field(default_factory=dict)

    def walk(self) -> list[FileStat]:
        """Every entry of the image (not following symlinks), listed once and shared."""
        if self._walk is None:
            entries: list[FileStat] = []
            for st in self.fs.walk("/", max_entries=self.walk_limit + 1, skip=WALK_SKIP):
                entries.append(st)
            if len(entries) > self.walk_limit:
                self.walk_truncated = True
                entries = entries[: self.walk_limit]
                self.error("walk", f"stopped after {self.walk_limit} entries")
            self._walk = entries
        return self._walk

    def walk_cut(self) -> bool:
        """Whether the shared walk was cut; a cut walk leaves the current collector incomplete."""
        if self.walk_truncated:
            self.incomplete(f"the walk of the image stopped after {self.walk_limit} entries")
        return self.walk_truncated

    def read(self, path: str, limit: int = DEFAULT_READ_LIMIT) -> ReadResult | None:
        """Read a file; a missing file is ``None``, any other failure is recorded and ``None``."""
        try:
            return self.fs.read(path, limit)
        except FileNotFoundError:
            return None
        except ImageFSError as exc:
            self.error(self.current, str(exc), path)
            return None

    def read_text(
        self, path: str, limit: int = DEFAULT_READ_LIMIT, *, whole: bool = True
    ) -> str | None:
        """The text of a file the current collector reads, or ``None`` when nothing is there.

        With ``whole`` (the default, for files a judgement rests on: account databases,
        daemon configuration), a file that is present but cannot be read (a link to nothing,
        a symlink loop, not a regular file) or is longer than ``limit`` marks the collector's
        facts incomplete, so the rules that need them end as "could not evaluate". The text
        of a cut file is still returned: what it shows is still evidence.
        """
        try:
            result = self.fs.read(path, limit)
        except FileNotFoundError as exc:
            if self._present(path):
                self.error(self.current, f"cannot be read: {exc}", path, incomplete=whole)
            return None
        except ImageFSError as exc:
            self.error(self.current, f"cannot be read: {exc}", path, incomplete=whole)
            return None
        if result.truncated:
            self.error(
                self.current,
                f"read only the first {limit} of {result.size} bytes",
                path,
                incomplete=whole,
            )
        return result.text()

    def _present(self, path: str) -> bool:
        """Something (if only a dangling link) is at ``path``, or a parent cannot be resolved."""
        try:
            self.fs.lstat(path)
        except FileNotFoundError:
            return False
        except ImageFSError:
            return True
        return True

    def incomplete(self, message: str, path: str | None = None) -> None:
        """Record that the current collector's facts lack something it needed to read."""
        self.error(self.current, message, path, incomplete=True)

    def error(
        self, collector: str, message: str, path: str | None = None, *, incomplete: bool = False
    ) -> None:
        self.errors.append(
            CollectorError(collector=collector, message=message, path=path, incomplete=incomplete)
        )


@dataclass(frozen=True)
class Collector:
    """A collector: its name, the in-image globs it reads, and the function that reads them."""

    name: str
    patterns: tuple[str, ...]
    collect: Callable[[CollectContext], Any]
    needs_walk: bool = False
