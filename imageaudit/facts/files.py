"""Collector ``files``: permissions and ownership across the image, from the one shared walk.

Records world-writable regular files and directories (sticky or not, temp or not, on PATH
or not), setuid/setgid files, entries owned by ids that ``/etc/passwd``/``/etc/group`` do not
know, device nodes outside ``/dev``, the state of a fixed list of sensitive paths (present
or absent), the PATH directories, and every executable named by cron or systemd with its
resolved stat (:mod:`imageaudit.facts.executables`). Symlinks always show 0777, so they are
skipped for permission facts. Every list is capped at :data:`LIST_CAP`; a cut is recorded.

Follows chmod(1) (setuid, setgid, sticky bits), passwd(5), group(5), crontab(5),
systemd.service(5), CIS Distribution Independent Linux Benchmark (file permission section).
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from imageaudit.facts.accounts.homes import read_ids
from imageaudit.facts.base import CollectContext, Collector
from imageaudit.facts.executables import (
    ExecCollector,
    ExecRef,
    MalformedLine,
    PathDir,
    Resolver,
    path_dirs,
)
from imageaudit.imagefs import FileStat, FileType, ImageFSError
from imageaudit.model import Source

NAME = "files"
LIST_CAP = 10_000
TEMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
SENSITIVE_PATHS = (
    "/etc/passwd",
    "/etc/passwd-",
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/group",
    "/etc/group-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/security/opasswd",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/ssh",
    "/etc/ssh/sshd_config",
    "/etc/ssh/sshd_config.d",
    "/etc/ssh/ssh_host_rsa_key",
    "/etc/ssh/ssh_host_ecdsa_key",
    "/etc/ssh/ssh_host_ed25519_key",
    "/etc/ssh/ssh_host_dsa_key",
    "/root",
    "/root/.ssh",
    "/etc/crontab",
    "/etc/cron.d",
    "/etc/cron.hourly",
    "/etc/cron.daily",
    "/etc/cron.weekly",
    "/etc/cron.monthly",
    "/etc/cron.allow",
    "/etc/cron.deny",
    "/etc/at.allow",
    "/etc/at.deny",
    "/var/spool/cron",
    "/etc/anacrontab",
    "/etc/login.defs",
    "/etc/pam.d",
    "/etc/security",
    "/boot/grub/grub.cfg",
    "/boot/grub2/grub.cfg",
    "/boot/grub2/user.cfg",
)
SENSITIVE_GLOBS = ("/etc/ssh/ssh_host_*_key",)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Truncation:
    """A list that hit its cap: how many entries there were and how many were kept."""

    list: str
    total: int
    kept: int


@dataclass(frozen=True, slots=True)
class WritableFile:
    """A regular file writable by every user."""

    path: str
    mode: int
    uid: int
    gid: int
    size: int
    on_path: bool  # directly inside a directory of a PATH list
    source: Source


@dataclass(frozen=True, slots=True)
class WritableDir:
    """A directory writable by every user."""

    path: str
    mode: int
    uid: int
    gid: int
    sticky: bool
    temp: bool  # one of TEMP_DIRS
    on_path: bool
    source: Source


@dataclass(frozen=True, slots=True)
class SpecialFile:
    """A regular file with the setuid and/or setgid bit."""

    path: str
    mode: int
    uid: int
    gid: int
    user: str | None  # owner name from /etc/passwd, None if unknown
    group: str | None
    setuid: bool
    setgid: bool
    size: int
    source: Source


@dataclass(frozen=True, slots=True)
class UnownedEntry:
    """An entry whose uid is not in /etc/passwd or whose gid is not in /etc/group."""

    path: str
    type: FileType
    mode: int
    uid: int
    gid: int
    unknown_uid: bool
    unknown_gid: bool
    source: Source


@dataclass(frozen=True, slots=True)
class DeviceNode:
    """A character or block device outside /dev."""

    path: str
    type: FileType
    mode: int
    uid: int
    gid: int
    source: Source


@dataclass(frozen=True, slots=True)
class PathState:
    """A named path: absent, or its own metadata and (for a symlink) its target's."""

    path: str
    present: bool
    stat: FileStat | None  # lstat: the entry itself
    target: FileStat | None  # stat after following symlinks inside the image
    error: str | None
    source: Source


@dataclass(frozen=True, slots=True)
class FilesFacts:
    """Permission and ownership facts of the whole image."""

    passwd_present: bool
    group_present: bool
    world_writable_files: tuple[WritableFile, ...]
    world_writable_dirs: tuple[WritableDir, ...]
    special_files: tuple[SpecialFile, ...]
    unowned: tuple[UnownedEntry, ...]
    devices: tuple[DeviceNode, ...]
    sensitive: tuple[PathState, ...]
    temp_dirs: tuple[PathState, ...]
    path_dirs: tuple[PathDir, ...]
    exec_refs: tuple[ExecRef, ...]
    malformed: tuple[MalformedLine, ...]
    walk_truncated: bool
    truncated: tuple[Truncation, ...]


def path_state(ctx: CollectContext, path: str) -> PathState:
    """Present/absent, lstat and followed stat of one path (never raises)."""
    src = Source(path)
    try:
        st = ctx.fs.lstat(path)
    except FileNotFoundError:
        return PathState(path, present=False, stat=None, target=None, error=None, source=src)
    except ImageFSError as exc:
        return PathState(path, present=False, stat=None, target=None, error=str(exc), source=src)
    target: FileStat | None = st
    error: str | None = None
    if st.is_symlink:
        try:
            target = ctx.fs.stat(path)
        except ImageFSError as exc:
            target, error = None, str(exc)
    return PathState(path, present=True, stat=st, target=target, error=error, source=src)


def _capped(name: str, items: Sequence[T], truncated: list[Truncation]) -> tuple[T, ...]:
    if len(items) > LIST_CAP:
        truncated.append(Truncation(list=name, total=len(items), kept=LIST_CAP))
    return tuple(items[:LIST_CAP])


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


def collect(ctx: CollectContext) -> FilesFacts:
    """Classify every walked entry, then the named paths, PATH dirs, cron and systemd."""
    walk = ctx.walk()
    ids = read_ids(ctx)
    res = Resolver(ctx)
    pdirs = path_dirs(ctx, res, walk)
    on_path = {d.resolved for d in pdirs if d.resolved}
    ww_files: list[WritableFile] = []
    ww_dirs: list[WritableDir] = []
    special: list[SpecialFile] = []
    unowned: list[UnownedEntry] = []
    devices: list[DeviceNode] = []
    for st in walk:
        src = Source(st.path)
        unknown_uid = st.uid not in ids.users
        unknown_gid = st.gid not in ids.groups
        if unknown_uid or unknown_gid:
            unowned.append(
                UnownedEntry(
                    st.path, st.type, st.mode, st.uid, st.gid, unknown_uid, unknown_gid, src
                )
            )
        if st.type in (FileType.CHAR_DEVICE, FileType.BLOCK_DEVICE) and not _under(st.path, "/dev"):
            devices.append(DeviceNode(st.path, st.type, st.mode, st.uid, st.gid, src))
        if st.is_file:
            if st.mode & 0o002:
                parent = posixpath.dirname(st.path)
                ww_files.append(
                    WritableFile(st.path, st.mode, st.uid, st.gid, st.size, parent in on_path, src)
                )
            if st.mode & 0o6000:
                special.append(
                    SpecialFile(
                        path=st.path,
                        mode=st.mode,
                        uid=st.uid,
                        gid=st.gid,
                        user=ids.users.get(st.uid),
                        group=ids.groups.get(st.gid),
                        setuid=bool(st.mode & 0o4000),
                        setgid=bool(st.mode & 0o2000),
                        size=st.size,
                        source=src,
                    )
                )
        elif st.is_dir and st.mode & 0o002:
            ww_dirs.append(_writable_dir(st, on_path))
    temp = [path_state(ctx, p) for p in TEMP_DIRS]
    walked_dirs = {d.path for d in ww_dirs}
    for state in temp:
        # /dev and /run are not walked: their temp dirs are added from the direct lstat.
        tst = state.stat
        if tst is not None and tst.is_dir and tst.mode & 0o002 and tst.path not in walked_dirs:
            ww_dirs.append(_writable_dir(tst, on_path))
    sensitive_paths = set(SENSITIVE_PATHS)
    for pattern in SENSITIVE_GLOBS:
        sensitive_paths.update(ctx.fs.glob(pattern))
    execs = ExecCollector(ctx, res)
    execs.cron()
    units_cut = execs.systemd(walk)
    truncated: list[Truncation] = []
    if units_cut:
        ctx.error(NAME, "too many systemd unit files; only the first ones were read")
    return FilesFacts(
        passwd_present=ids.passwd_present,
        group_present=ids.group_present,
        world_writable_files=_capped("world_writable_files", ww_files, truncated),
        world_writable_dirs=_capped(
            "world_writable_dirs", sorted(ww_dirs, key=lambda d: d.path), truncated
        ),
        special_files=_capped("special_files", special, truncated),
        unowned=_capped("unowned", unowned, truncated),
        devices=_capped("devices", devices, truncated),
        sensitive=tuple(path_state(ctx, p) for p in sorted(sensitive_paths)),
        temp_dirs=tuple(temp),
        path_dirs=_capped("path_dirs", pdirs, truncated),
        exec_refs=_capped("exec_refs", execs.refs, truncated),
        malformed=_capped("malformed", execs.malformed, truncated),
        walk_truncated=ctx.walk_cut(),
        truncated=tuple(truncated),
    )


def _writable_dir(st: FileStat, on_path: set[str]) -> WritableDir:
    return WritableDir(
        path=st.path,
        mode=st.mode,
        uid=st.uid,
        gid=st.gid,
        sticky=bool(st.mode & 0o1000),
        temp=st.path in TEMP_DIRS,
        on_path=st.path in on_path,
        source=Source(st.path),
    )


COLLECTOR = Collector(
    name=NAME,
    patterns=(
        "/etc/passwd",
        "/etc/group",
        "/etc/environment",
        "/etc/login.defs",
        "/etc/crontab",
        "/etc/cron.d/*",
        "/var/spool/cron/*",
        "/var/spool/cron/crontabs/*",
        "/var/spool/cron/tabs/*",
        "/etc/systemd/system/*",
        "/etc/systemd/system/*.d/*.conf",
        "/usr/lib/systemd/system/*",
        "/usr/lib/systemd/system/*.d/*.conf",
        "/lib/systemd/system/*",
        "/usr/local/lib/systemd/system/*",
    ),
    collect=collect,
    needs_walk=True,
)
