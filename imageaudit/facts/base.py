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

    def read(self, path: str, limit: int = DEFAULT_READ_LIMIT) -> ReadResult | None:
        """Read a file; a missing file is ``None``, any other failure is recorded and ``None``."""
        try:
            return self.fs.read(path, limit)
        except FileNotFoundError:
            return None
        except ImageFSError as exc:
            self.error("read", str(exc), path)
            return None

    def read_text(self, path: str, limit: int = DEFAULT_READ_LIMIT) -> str | None:
        result = self.read(path, limit)
        if result is None:
            return None
        if result.truncated:
            self.error("read", f"read only the first {limit} of {result.size} bytes", path)
        return result.text()

    def error(self, collector: str, message: str, path: str | None = None) -> None:
        self.errors.append(CollectorError(collector=collector, message=message, path=path))


@dataclass(frozen=True)
class Collector:
    """A collector: its name, the in-image globs it reads, and the function that reads them."""

    name: str
    patterns: tuple[str, ...]
    collect: Callable[[CollectContext], Any]
    needs_walk: bool = False
