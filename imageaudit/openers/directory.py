"""Open an already extracted root filesystem (a builder's chroot) as an :class:`ImageFS`.

Paths are resolved by :class:`~imageaudit.imagefs.ImageFS` with chroot rules; this opener
then reaches each canonical path one component at a time with ``O_NOFOLLOW`` relative to the
directory above it, so a symlink swapped in behind our back still cannot lead to the host.
Nothing here calls ``os.path.realpath`` or opens a host path built from image data.
"""

from __future__ import annotations

import contextlib
import os
import stat as stat_mod
from collections.abc import Iterator
from pathlib import Path

from imageaudit.imagefs import FileStat, FileType, ImageFS, ImageFSError, OpenInfo

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@contextlib.contextmanager
def parent_dir(root_fd: int, path: str) -> Iterator[tuple[int, str]]:
    """Yield an fd of the directory holding ``path`` and the last component's name.

    ``path`` is taken relative to ``root_fd`` and walked one component at a time with
    ``O_NOFOLLOW``, so no symlink on the host is ever followed; ``/`` gives ``root_fd, "."``.
    The directories opened on the way are closed when the block ends.
    """
    parts = [p for p in path.split("/") if p]
    if not parts:
        yield root_fd, "."
        return
    opened: list[int] = []
    fd = root_fd
    try:
        for part in parts[:-1]:
            fd = os.open(part, DIR_FLAGS, dir_fd=fd)
            opened.append(fd)
        yield fd, parts[-1]
    finally:
        for o in opened:
            os.close(o)


class DirectoryError(ImageFSError):
    """The root directory cannot be opened."""


class DirectoryFS(ImageFS):
    """A host directory seen as an image root, read-only."""

    def __init__(self, root: str | Path, source: str | None = None) -> None:
        root_path = Path(root)
        if not root_path.is_dir():
            raise DirectoryError(f"{root}: not a directory")
        super().__init__(
            OpenInfo(kind="directory", format="directory", source=source or str(root))
        )
        self._root_fd = os.open(root_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1

    def _lstat_canonical(self, path: str) -> FileStat | None:
        try:
            with parent_dir(self._root_fd, path) as (fd, name):
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                target = None
                if stat_mod.S_ISLNK(st.st_mode):
                    target = os.readlink(name, dir_fd=fd)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == 40:  # ELOOP: a component became a symlink under us
                return None
            raise ImageFSError(f"{path}: {exc.strerror}") from exc
        return FileStat(
            path=path,
            type=FileType.from_mode(st.st_mode),
            mode=stat_mod.S_IMODE(st.st_mode),
            uid=st.st_uid,
            gid=st.st_gid,
            size=st.st_size,
            mtime=int(st.st_mtime),
            link_target=target,
            nlink=st.st_nlink,
        )

    def _listdir_canonical(self, path: str) -> list[str]:
        try:
            with parent_dir(self._root_fd, path) as (fd, name):
                dfd = os.open(name, DIR_FLAGS, dir_fd=fd) if name != "." else os.dup(fd)
                try:
                    return os.listdir(dfd)  # noqa: PTH208 - listing by fd, not by path
                finally:
                    os.close(dfd)
        except OSError as exc:
            raise ImageFSError(f"{path}: cannot list: {exc.strerror}") from exc

    def _read_canonical(self, path: str, limit: int, offset: int = 0) -> bytes:
        try:
            with parent_dir(self._root_fd, path) as (fd, name):
                ffd = os.open(name, FILE_FLAGS, dir_fd=fd)
        except OSError as exc:
            raise ImageFSError(f"{path}: cannot open: {exc.strerror}") from exc
        try:
            if not stat_mod.S_ISREG(os.fstat(ffd).st_mode):
                raise ImageFSError(f"{path}: not a regular file")
            chunks: list[bytes] = []
            remaining = limit
            pos = offset
            while remaining > 0:
                chunk = os.pread(ffd, min(remaining, 1 << 20), pos)
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
                pos += len(chunk)
            return b"".join(chunks)
        finally:
            os.close(ffd)
