"""In the parser child: find the OS root, mount what its fstab names, walk the whole tree.

Inspection follows what libguestfs' ``inspect_os`` does for Linux, in small: a filesystem
whose root holds ``/etc`` with ``os-release``, ``fstab`` or ``passwd`` is an OS root; its
``/etc/fstab`` names the other filesystems by ``LABEL=``, ``UUID=``, ``PARTUUID=``,
``PARTLABEL=``, ``/dev/disk/by-*``, ``/dev/VG/LV``, ``/dev/mapper/VG-LV`` or a disk device
(``/dev/sda2``, ``/dev/vda2``, ``/dev/nvme0n1p2``: partition 2 of this disk). With no OS
root, the largest filesystem is mounted at ``/`` (as the libguestfs opener does).

The walk is iterative, visits each directory inode once (a directory loop is noted, not
followed), and is capped in entries, name length, path depth and link length. It emits tree
records (:mod:`.protocol`) through a callback.
"""

from __future__ import annotations

import contextlib
import posixpath
import re
import stat as stat_mod
from collections.abc import Callable
from dataclasses import dataclass, field

from imageaudit.openers.direct import protocol as proto
from imageaudit.openers.direct.blockdev import DiskError, Unsupported, libyal_reason
from imageaudit.openers.direct.filesystems import (
    READABLE,
    EntryError,
    Filesystem,
    short_error,
)
from imageaudit.openers.direct.volumes import Layout, Volume

MAX_FSTAB = 1024 * 1024
MAX_DEPTH = 256
ROOT_MARKERS = ("os-release", "fstab", "passwd")
PSEUDO = frozenset({"proc", "sysfs", "tmpfs", "devpts", "devtmpfs", "swap", "none", "cgroup",
                    "cgroup2", "securityfs", "debugfs", "mqueue", "hugetlbfs", "efivarfs",
                    "binfmt_misc", "autofs", "nfs", "nfs4", "cifs", "smb3", "fuse", "9p",
                    "vfat", "iso9660", "udf", "ramfs", "bpf", "pstore", "configfs"})
_DISK_DEV = re.compile(r"^/dev/(?:[shv]d[a-z]|xvd[a-z]|nvme\d+n\d+p)(\d+)$")


@dataclass
class Plan:
    root: str
    mounts: dict[str, str]  # mountpoint -> device, "/" included
    notes: list[str] = field(default_factory=list)
    roots: list[str] = field(default_factory=list)


def _is_root(fs: Filesystem) -> bool:
    etc = fs.lookup("/etc")
    if etc is None or not stat_mod.S_ISDIR(etc.get_file_mode()):
        return False
    return any(fs.lookup(f"/etc/{name}") is not None for name in ROOT_MARKERS)


def _fstab(fs: Filesystem) -> list[tuple[str, str, str]]:
    """``(spec, mountpoint, type)`` of each fstab line (split on ``\\n`` only, as libc does)."""
    entry = fs.lookup("/etc/fstab")
    if entry is None or not stat_mod.S_ISREG(entry.get_file_mode()):
        return []
    size = min(entry.get_size(), MAX_FSTAB)
    text = fs.read(entry.get_inode_number(), 0, size).decode("utf-8", "replace")
    out = []
    for line in text.split("\n"):
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 3:
            out.append((fields[0], fields[1], fields[2]))
    return out


def _unescape_mapper(name: str) -> tuple[str, str] | None:
    """``VG-LV`` of ``/dev/mapper`` (``--`` stands for ``-``) as ``(VG, LV)``."""
    parts = re.split(r"(?<!-)-(?!-)", name)
    if len(parts) != 2:
        return None
    vg, lv = (p.replace("--", "-") for p in parts)
    return vg, lv


def _same(have: str, want: str, fold: bool) -> bool:
    if not have:
        return False
    return have.lower() == want.lower() if fold else have == want


def resolve_spec(spec: str, volumes: list[Volume]) -> Volume | None:
    """The volume an fstab device field names, or ``None``."""
    def one(pred: Callable[[Volume], bool]) -> Volume | None:
        found = [v for v in volumes if pred(v)]
        return found[0] if len(found) == 1 else None

    for prefix, attr in (("LABEL=", "label"), ("UUID=", "uuid"), ("PARTUUID=", "partuuid"),
                         ("PARTLABEL=", "partlabel"), ("/dev/disk/by-label/", "label"),
                         ("/dev/disk/by-uuid/", "uuid"), ("/dev/disk/by-partuuid/", "partuuid"),
                         ("/dev/disk/by-partlabel/", "partlabel")):
        if spec.startswith(prefix):
            want = spec[len(prefix):].strip('"')
            fold = attr in ("uuid", "partuuid")
            return one(lambda v: _same(str(getattr(v, attr)), want, fold))  # noqa: B023
    m = _DISK_DEV.match(spec)
    if m:
        return one(lambda v: v.partition and v.device.endswith(f"sda{int(m.group(1))}"))
    if spec.startswith("/dev/mapper/"):
        pair = _unescape_mapper(spec[len("/dev/mapper/"):])
        if pair:
            return one(lambda v: v.device == f"/dev/{pair[0]}/{pair[1]}")
        return None
    if spec.startswith("/dev/"):
        return one(lambda v: v.device == spec)
    return None


def plan_mounts(layout: Layout, open_fs: Callable[[Volume], Filesystem]) -> Plan:
    readable = [v for v in layout.volumes if v.fstype in READABLE]
    roots: list[str] = []
    for vol in readable:
        if _is_root(open_fs(vol)):
            roots.append(vol.device)
    others = [v for v in layout.volumes if v.fstype in ("btrfs", "crypto_LUKS")]
    if not roots:
        if others:
            kinds = ", ".join(sorted({v.fstype for v in others}))
            raise Unsupported(f"no ext or XFS root filesystem; the disk holds {kinds}")
        if not readable:
            raise DiskError("no operating system and no filesystem found")
        best = max(readable, key=lambda v: v.dev.size)
        return Plan(root=best.device, mounts={"/": best.device},
                    notes=[f"no operating system found; mounted largest filesystem "
                           f"{best.device}"])
    root = roots[0]
    plan = Plan(root=root, mounts={"/": root}, roots=roots)
    if len(roots) > 1:
        plan.notes.append(f"image holds {len(roots)} operating systems; audited {root}, "
                          f"not {', '.join(roots[1:])}")
    for spec, mountpoint, fstype in _fstab(open_fs(next(v for v in readable
                                                       if v.device == root))):
        if fstype in PSEUDO or not mountpoint.startswith("/"):
            continue
        target = posixpath.normpath(mountpoint)
        if target == "/" or target.startswith("//"):
            continue
        found = resolve_spec(spec, layout.volumes)
        if found is None:
            continue
        if found.fstype not in READABLE:
            raise Unsupported(f"{target} is on {found.device}, a {found.fstype} filesystem "
                              "the direct reader does not read")
        plan.mounts[target] = found.device
    return plan


@dataclass
class WalkState:
    files: list[tuple[str, int]] = field(default_factory=list)  # handle -> (device, inode)
    handles: dict[tuple[str, int], int] = field(default_factory=dict)
    entries: int = 0
    undecodable: int = 0
    long_names: int = 0
    loops: int = 0
    unreadable: int = 0
    too_deep: int = 0
    cut: bool = False
    mounted: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _unlistable(device: str, path: bytes, entry: object, exc: OSError) -> DiskError:
    """The error of a directory that cannot be listed: which one (path and inode), which
    entry of it when known, and why."""
    where = path.decode("utf-8", "replace") or "/"
    with contextlib.suppress(OSError):
        where += f" (inode {entry.get_inode_number()})"  # type: ignore[attr-defined]
    if isinstance(exc, EntryError):
        return DiskError(f"{device}: directory {where} cannot be listed: entry "
                         f"{exc.index + 1} of {exc.count}: {libyal_reason(exc.cause)}")
    return DiskError(f"{device}: directory {where} cannot be listed: {short_error(exc)}")


def walk(plan: Plan, filesystems: dict[str, Filesystem], max_entries: int,
         emit: Callable[[bytes], None]) -> WalkState:
    """Emit a record for every entry under ``/`` (the root itself included, path ``/``)."""
    state = WalkState()
    batch = bytearray()

    def flush() -> None:
        if batch:
            emit(bytes(batch))
            batch.clear()

    def record(path: bytes, device: str, meta_entry: object) -> tuple[int, int] | None:
        fs = filesystems[device]
        try:
            meta = fs.meta(meta_entry)
        except (OSError, DiskError, UnicodeError):
            # Shown, as an entry of unknown type, rather than dropped: a collector must see
            # that /etc/shadow is there and unreadable, never that it is absent.
            state.unreadable += 1
            batch.extend(proto.encode_record(path, 0, 0, 0, 0, 0, 1, -1, None))
            return None
        if meta.link is not None and len(meta.link) > proto.MAX_LINK_BYTES:
            state.long_names += 1
            return None
        handle = -1
        if stat_mod.S_ISREG(meta.mode):
            key = (device, meta.inode)
            handle = state.handles.get(key, -1)
            if handle < 0:
                handle = len(state.files)
                state.files.append(key)
                state.handles[key] = handle
        rec = proto.encode_record(path, meta.mode, meta.uid, meta.gid, meta.size, meta.mtime,
                                  meta.nlink, handle, meta.link)
        if len(batch) + len(rec) > proto.MAX_FRAME // 2:
            flush()
        batch.extend(rec)
        return meta.mode, meta.inode

    root_fs = filesystems[plan.mounts["/"]]
    root_entry = root_fs.root()
    state.mounted["/"] = plan.mounts["/"]
    rec = record(b"/", plan.mounts["/"], root_entry)
    if rec is None:
        raise DiskError(f"{plan.mounts['/']}: the root directory cannot be read")
    visited = {(plan.mounts["/"], rec[1])}
    stack: list[tuple[bytes, str, object, int]] = [(b"", plan.mounts["/"], root_entry, 0)]
    while stack:
        path, device, entry, depth = stack.pop()
        fs = filesystems[device]
        subdirs: list[tuple[bytes, str, object, int]] = []
        for item in fs.children(entry):
            if isinstance(item, OSError):
                if "UTF-8" not in str(item):
                    # A directory we cannot list fully would be a silently incomplete tree.
                    raise _unlistable(device, path, entry, item)
                state.undecodable += 1
                continue
            name, child = item
            if len(name) > proto.MAX_NAME_BYTES or b"/" in name or name in (b"", b".", b".."):
                state.long_names += 1
                continue
            child_path = path + b"/" + name
            if len(child_path) > proto.MAX_PATH_BYTES:
                state.long_names += 1
                continue
            state.entries += 1
            if state.entries > max_entries:
                state.cut = True
                flush()
                return state
            child_device = device
            text_path = child_path.decode("utf-8")
            mounted = plan.mounts.get(text_path)
            if mounted is not None:
                try:
                    is_dir = stat_mod.S_ISDIR(child.get_file_mode())
                except OSError:
                    is_dir = False
                if is_dir:
                    child_device = mounted
                    child = filesystems[mounted].root()
                    state.mounted[text_path] = mounted
            got = record(child_path, child_device, child)
            if got is None:
                continue
            mode, inode = got
            if stat_mod.S_ISDIR(mode):
                if (child_device, inode) in visited:
                    state.loops += 1
                    continue
                visited.add((child_device, inode))
                if depth + 1 >= MAX_DEPTH:
                    state.too_deep += 1
                    continue
                subdirs.append((child_path, child_device, child, depth + 1))
        stack.extend(reversed(subdirs))
    flush()
    for mountpoint, device in plan.mounts.items():
        if mountpoint not in state.mounted:
            state.notes.append(f"could not mount {device} on {mountpoint}: no such directory")
    return state
