"""The read-only view of an image's root filesystem that every collector reads through.

Openers (``imageaudit.openers``) produce an :class:`ImageFS`. Everything above the openers
sees only this interface: no libguestfs handle, no tar member, no host path.

Every path given to an :class:`ImageFS` is a path *inside the image*. Resolution follows
chroot rules, done here once for all openers (SECURITY.md, "Resolve links inside the tree"):

- an absolute symlink target restarts at the image root;
- ``..`` never climbs above the image root;
- at most :data:`MAX_SYMLINK_HOPS` symlinks are followed while resolving one path.

Openers implement three primitives over *canonical* paths (absolute, normalised, free of
symlinks in every component but possibly the last): :meth:`ImageFS._lstat_canonical`,
:meth:`ImageFS._listdir_canonical` and :meth:`ImageFS._read_canonical`. Resolution, ``stat``,
``exists``, ``walk`` and in-image globbing are built on them here, so every opener obeys the
same rules.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import stat as stat_mod
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

MAX_SYMLINK_HOPS = 40
DEFAULT_READ_LIMIT = 4 * 1024 * 1024
DEFAULT_WALK_LIMIT = 2_000_000
MAX_PATH_DEPTH = 256


class ImageFSError(Exception):
    """A path could not be resolved or read inside the image."""


class NotFoundInImage(ImageFSError, FileNotFoundError):
    """The path does not exist inside the image."""


class SymlinkLoop(ImageFSError):
    """More than :data:`MAX_SYMLINK_HOPS` symlinks were met while resolving a path."""


class NotADirectoryInImage(ImageFSError, NotADirectoryError):
    """A path component that must be a directory is not one."""


class FileType(StrEnum):
    REGULAR = "file"
    DIRECTORY = "dir"
    SYMLINK = "symlink"
    CHAR_DEVICE = "chardev"
    BLOCK_DEVICE = "blockdev"
    FIFO = "fifo"
    SOCKET = "socket"
    UNKNOWN = "unknown"

    @classmethod
    def from_mode(cls, mode: int) -> FileType:
        """Map the ``S_IFMT`` bits of a full ``st_mode`` to a :class:`FileType`."""
        fmt = stat_mod.S_IFMT(mode)
        return _FMT_TO_TYPE.get(fmt, cls.UNKNOWN)

    @property
    def ifmt(self) -> int:
        return _TYPE_TO_FMT.get(self, 0)


_FMT_TO_TYPE = {
    stat_mod.S_IFREG: FileType.REGULAR,
    stat_mod.S_IFDIR: FileType.DIRECTORY,
    stat_mod.S_IFLNK: FileType.SYMLINK,
    stat_mod.S_IFCHR: FileType.CHAR_DEVICE,
    stat_mod.S_IFBLK: FileType.BLOCK_DEVICE,
    stat_mod.S_IFIFO: FileType.FIFO,
    stat_mod.S_IFSOCK: FileType.SOCKET,
}
_TYPE_TO_FMT = {v: k for k, v in _FMT_TO_TYPE.items()}


@dataclass(frozen=True, slots=True)
class FileStat:
    """Metadata of one entry in the image. ``mode`` holds permission bits only (``0o7777``)."""

    path: str
    type: FileType
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int = 0
    link_target: str | None = None
    nlink: int = 1

    @property
    def is_dir(self) -> bool:
        return self.type is FileType.DIRECTORY

    @property
    def is_file(self) -> bool:
        return self.type is FileType.REGULAR

    @property
    def is_symlink(self) -> bool:
        return self.type is FileType.SYMLINK

    @property
    def st_mode(self) -> int:
        """The full ``st_mode`` (type and permission bits)."""
        return self.type.ifmt | self.mode


@dataclass(frozen=True, slots=True)
class ReadResult:
    """Bytes read from a file in the image, at most the limit the caller asked for."""

    path: str
    data: bytes
    size: int
    truncated: bool

    def text(self) -> str:
        """Decode as UTF-8; undecodable bytes become U+FFFD so no guest byte is lost silently."""
        return self.data.decode("utf-8", errors="replace")


@dataclass
class OpenInfo:
    """What the opener learnt while opening, reported with the facts."""

    kind: str  # "vm" | "container" | "directory"
    format: str  # "qcow2", "raw", "docker-archive", "oci-layout", "directory", ...
    source: str  # what the user named
    notes: list[str] = field(default_factory=list)
    details: dict[str, object] = field(default_factory=dict)


def env_seconds(name: str, default: float) -> float:
    """A bound in seconds from the environment variable ``name``, ``default`` when unset; an
    :class:`ImageFSError` naming the variable for anything but a finite number above 0."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ImageFSError(f"${name}: {raw!r} is not a number of seconds") from exc
    if not 0 < value < float("inf"):
        raise ImageFSError(f"${name}: {raw!r} must be more than 0 seconds")
    return value


def normalize(path: str) -> str:
    """Lexically normalise an in-image path to an absolute one; ``..`` stops at ``/``."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


class ImageFS(ABC):
    """Read-only, chroot-resolving view of an image root filesystem."""

    def __init__(self, info: OpenInfo) -> None:
        self.info = info

    # -- primitives every opener implements (canonical paths only) ----------------------

    @abstractmethod
    def _lstat_canonical(self, path: str) -> FileStat | None:
        """Metadata of ``path`` without following it; ``None`` if it does not exist.

        ``path`` is absolute, normalised, and no component but the last is a symlink.
        """

    @abstractmethod
    def _listdir_canonical(self, path: str) -> list[str]:
        """Names in the directory ``path`` (canonical, known to be a directory)."""

    @abstractmethod
    def _read_canonical(self, path: str, limit: int, offset: int = 0) -> bytes:
        """At most ``limit`` bytes of the regular file ``path`` (canonical) from ``offset``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the opener holds (appliance, file handles)."""

    def prefetch(self, patterns: Iterable[str], limit: int = DEFAULT_READ_LIMIT) -> None:  # noqa: B027
        """Hint: collectors will read files matching these in-image globs soon.

        Openers with a costly round trip per read (libguestfs) fetch them in bulk here.
        """

    def __enter__(self) -> ImageFS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- resolution ---------------------------------------------------------------------

    def resolve(self, path: str, follow_last: bool = True) -> str:
        """Canonical in-image path of ``path``, following symlinks with chroot rules.

        Raises :class:`NotFoundInImage` when a component is missing (except a missing last
        component, which is returned as is), :class:`SymlinkLoop` past the hop limit.
        """
        hops = 0
        todo = [p for p in path.split("/") if p not in ("", ".")]
        todo.reverse()
        done: list[str] = []
        while todo:
            if len(done) > MAX_PATH_DEPTH:
                raise ImageFSError(f"{path}: path deeper than {MAX_PATH_DEPTH} components")
            part = todo.pop()
            if part == "..":
                if done:
                    done.pop()
                continue
            current = "/" + "/".join([*done, part])
            st = self._lstat_canonical(current)
            if st is None:
                if todo:
                    raise NotFoundInImage(f"{path}: {current} does not exist in the image")
                done.append(part)
                break
            is_last = not todo
            if st.type is FileType.SYMLINK and (follow_last or not is_last):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise SymlinkLoop(f"{path}: more than {MAX_SYMLINK_HOPS} symlinks")
                target = st.link_target or ""
                if target.startswith("/"):
                    done = []
                new_parts = [p for p in target.split("/") if p not in ("", ".")]
                todo.extend(reversed(new_parts))
                continue
            if not is_last and st.type is not FileType.DIRECTORY:
                raise NotADirectoryInImage(f"{path}: {current} is not a directory")
            done.append(part)
        return "/" + "/".join(done)

    # -- the public read-only interface ---------------------------------------------------

    def lstat(self, path: str) -> FileStat:
        """Metadata of ``path`` itself (a symlink is not followed)."""
        canon = self.resolve(path, follow_last=False)
        st = self._lstat_canonical(canon)
        if st is None:
            raise NotFoundInImage(f"{path}: does not exist in the image")
        return st

    def stat(self, path: str) -> FileStat:
        """Metadata of what ``path`` points at, symlinks followed inside the image."""
        canon = self.resolve(path)
        st = self._lstat_canonical(canon)
        if st is None:
            raise NotFoundInImage(f"{path}: does not exist in the image")
        return st

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except ImageFSError:
            return False
        return True

    def lexists(self, path: str) -> bool:
        try:
            self.lstat(path)
        except ImageFSError:
            return False
        return True

    def is_dir(self, path: str) -> bool:
        try:
            return self.stat(path).is_dir
        except ImageFSError:
            return False

    def is_file(self, path: str) -> bool:
        try:
            return self.stat(path).is_file
        except ImageFSError:
            return False

    def readlink(self, path: str) -> str:
        st = self.lstat(path)
        if st.type is not FileType.SYMLINK:
            raise ImageFSError(f"{path}: not a symlink")
        return st.link_target or ""

    def listdir(self, path: str) -> list[str]:
        """Sorted names in a directory (symlinks to directories are followed)."""
        canon = self.resolve(path)
        st = self._lstat_canonical(canon)
        if st is None:
            raise NotFoundInImage(f"{path}: does not exist in the image")
        if st.type is not FileType.DIRECTORY:
            raise NotADirectoryInImage(f"{path}: not a directory")
        return sorted(self._listdir_canonical(canon))

    def read(self, path: str, limit: int = DEFAULT_READ_LIMIT) -> ReadResult:
        """Read at most ``limit`` bytes of a regular file, following symlinks in the image."""
        canon = self.resolve(path)
        st = self._lstat_canonical(canon)
        if st is None:
            raise NotFoundInImage(f"{path}: does not exist in the image")
        if st.type is not FileType.REGULAR:
            raise ImageFSError(f"{path}: not a regular file ({st.type.value})")
        want = min(limit, st.size)
        data = self._read_canonical(canon, want) if want > 0 else b""
        return ReadResult(path=path, data=data[:want], size=st.size, truncated=st.size > limit)

    def read_text(self, path: str, limit: int = DEFAULT_READ_LIMIT) -> str:
        return self.read(path, limit).text()

    def walk(
        self,
        top: str = "/",
        max_entries: int = DEFAULT_WALK_LIMIT,
        skip: Iterable[str] = (),
    ) -> Iterator[FileStat]:
        """Every entry under ``top`` (not following symlinks), depth-first, iteratively.

        Stops after ``max_entries`` entries; directories in ``skip`` (canonical paths) are
        listed themselves but not descended into.
        """
        skipped = set(skip)
        root = self.resolve(top)
        st = self._lstat_canonical(root)
        if st is None or st.type is not FileType.DIRECTORY:
            return
        stack = [root]
        count = 0
        while stack:
            directory = stack.pop()
            try:
                names = sorted(self._listdir_canonical(directory), reverse=True)
            except ImageFSError:
                continue
            subdirs: list[str] = []
            for name in reversed(names):
                child = posixpath.join(directory, name)
                child_st = self._lstat_canonical(child)
                if child_st is None:
                    continue
                count += 1
                if count > max_entries:
                    return
                yield child_st
                if child_st.type is FileType.DIRECTORY and child not in skipped:
                    subdirs.append(child)
            stack.extend(reversed(subdirs))

    def glob(self, pattern: str) -> list[str]:
        """In-image glob (``*``, ``?``, ``[...]`` per component), sorted; never the host's."""
        parts = [p for p in normalize(pattern).split("/") if p]
        current = ["/"]
        for part in parts:
            nxt: list[str] = []
            has_magic = any(c in part for c in "*?[")
            for base in current:
                if not has_magic:
                    candidate = posixpath.join(base, part)
                    if self.lexists(candidate):
                        nxt.append(candidate)
                    continue
                if not self.is_dir(base):
                    continue
                try:
                    names = self.listdir(base)
                except ImageFSError:
                    continue
                for name in names:
                    if name.startswith(".") and not part.startswith("."):
                        continue
                    if fnmatch.fnmatchcase(name, part):
                        nxt.append(posixpath.join(base, name))
            current = nxt
        return sorted(set(current))


class TreeImageFS(ImageFS):
    """An :class:`ImageFS` whose metadata is held in memory (containers, bulk-listed disks).

    ``nodes`` maps canonical paths to :class:`FileStat`; ``children`` maps a directory to
    the names in it. Subclasses implement :meth:`_read_canonical`.
    """

    def __init__(self, info: OpenInfo) -> None:
        super().__init__(info)
        self.nodes: dict[str, FileStat] = {
            "/": FileStat(path="/", type=FileType.DIRECTORY, mode=0o755, uid=0, gid=0, size=0)
        }
        self.children: dict[str, set[str]] = {"/": set()}

    def _lstat_canonical(self, path: str) -> FileStat | None:
        return self.nodes.get(path)

    def _listdir_canonical(self, path: str) -> list[str]:
        return list(self.children.get(path, ()))
