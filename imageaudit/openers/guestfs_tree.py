"""Bulk metadata listing and mounting over a libguestfs handle, with few round trips.

Every libguestfs call is a round trip to the appliance (a few ms under TCG), so the tree is
built with one ``find0`` (names streamed to a local file), then one ``lstatnslist`` per
directory (the API takes plain names relative to one directory) and one ``readlinklist``
per directory that holds symlinks. Nothing from the guest is ever executed.

Specs followed: guestfs(3) (find0, lstatnslist, readlinklist, inspect_get_mountpoints),
guestfs-security(1).
"""

from __future__ import annotations

import stat as stat_mod
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from imageaudit.imagefs import FileStat, FileType, ImageFSError

LSTAT_BATCH = 2000  # entries per lstatnslist call: ~150 bytes each, far under the 4 MiB limit
MAX_FIND0_BYTES = 512 * 1024 * 1024

Guest = Any  # a guestfs.GuestFS handle; the module has no type information


def _stat_of(path: str, st: dict[str, int], link: str | None) -> FileStat:
    mode = st["st_mode"]
    return FileStat(
        path=path,
        type=FileType.from_mode(mode),
        mode=stat_mod.S_IMODE(mode),
        uid=st["st_uid"],
        gid=st["st_gid"],
        size=st["st_size"],
        mtime=st["st_mtime_sec"],
        link_target=link,
        nlink=st["st_nlink"],
    )


def list_names(g: Guest, local: Path, max_entries: int) -> tuple[list[bytes], bool]:
    """Every path under ``/`` (relative, as bytes) from one ``find0``; ``(names, cut)``."""
    g.find0("/", str(local))
    size = local.stat().st_size
    if size > MAX_FIND0_BYTES:
        raise ImageFSError(f"file list of {size} bytes is over {MAX_FIND0_BYTES}")
    names = local.read_bytes().split(b"\0")
    local.unlink()
    if names and names[-1] == b"":
        names.pop()
    cut = len(names) > max_entries
    return names[:max_entries], cut


def build_tree(
    g: Guest,
    local: Path,
    max_entries: int,
    nodes: dict[str, FileStat],
    children: dict[str, set[str]],
) -> dict[str, int]:
    """Fill ``nodes``/``children`` from the mounted guest; return counters for notes."""
    names, cut = list_names(g, local, max_entries)
    by_dir: dict[str, list[str]] = defaultdict(list)
    undecodable = 0
    for raw in names:
        try:
            rel = raw.decode("utf-8")
        except UnicodeDecodeError:
            # The Python binding passes str as UTF-8 only, so such a name cannot be asked for.
            undecodable += 1
            continue
        parent, _, base = rel.rpartition("/")
        by_dir["/" + parent].append(base)
    root = g.lstatns("/")
    nodes["/"] = _stat_of("/", root, None)
    children.setdefault("/", set())
    calls = 1
    for directory in sorted(by_dir):
        batch = by_dir[directory]
        for start in range(0, len(batch), LSTAT_BATCH):
            chunk = batch[start: start + LSTAT_BATCH]
            stats = g.lstatnslist(directory, chunk)
            calls += 1
            links = [n for n, s in zip(chunk, stats, strict=True) if stat_mod.S_ISLNK(s["st_mode"])]
            targets: dict[str, str] = {}
            if links:
                targets = dict(zip(links, g.readlinklist(directory, links), strict=True))
                calls += 1
            for name, st in zip(chunk, stats, strict=True):
                if st["st_ino"] == -1:  # vanished or unreadable: the API's error marker
                    continue
                path = directory.rstrip("/") + "/" + name
                nodes[path] = _stat_of(path, st, targets.get(name))
                children.setdefault(directory, set()).add(name)
                if stat_mod.S_ISDIR(st["st_mode"]):
                    children.setdefault(path, set())
    return {"entries": len(nodes), "calls": calls, "undecodable": undecodable, "cut": int(cut)}


def depth(mountpoint: str) -> int:
    return len([p for p in mountpoint.split("/") if p])


def mount_plan(g: Guest, root: str) -> list[tuple[str, str]]:
    """(mountpoint, device) pairs the OS at ``root`` mounts, shallowest first."""
    mps = g.inspect_get_mountpoints(root)
    return sorted(mps.items(), key=lambda kv: (depth(kv[0]), kv[0]))


def mount_all(g: Guest, plan: Sequence[tuple[str, str]], note: Callable[[str], None]) -> dict[
    str, str
]:
    """Mount read-only in order; a failed non-root mount is noted, a failed root is fatal."""
    mounted: dict[str, str] = {}
    for mountpoint, device in plan:
        try:
            g.mount_ro(device, mountpoint)
        except RuntimeError as exc:
            if mountpoint == "/":
                raise ImageFSError(f"cannot mount the root filesystem {device}: {exc}") from exc
            note(f"could not mount {device} on {mountpoint}: {exc}")
            continue
        mounted[mountpoint] = device
    return mounted


def fs_key(g: Guest, device: str) -> tuple[str, str] | None:
    """(label, UUID) of the filesystem on ``device``, to find its twin on another drive."""
    try:
        return (g.vfs_label(device), g.vfs_uuid(device))
    except RuntimeError:
        return None


def largest_filesystem(g: Guest, devices: Sequence[str]) -> str | None:
    """The biggest mountable filesystem among ``devices`` (fallback when no OS is found)."""
    best: tuple[int, str] | None = None
    for device in devices:
        try:
            size = g.blockdev_getsize64(device)
        except RuntimeError:
            continue
        if best is None or size > best[0]:
            best = (size, device)
    return best[1] if best else None
