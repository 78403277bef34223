"""Collector ``filehashes``: SHA-256, SHA-1 and MD5 of the files an incident responder asks
about, so that the catalogue can answer "which images carry this file" from an indicator list.

Hashed, from the one shared walk: regular files with an execute bit, shared libraries
(``*.so*`` under the library directories), every file under the places a system runs things
from without being asked (cron, systemd, SysV init and rc scripts, shell profiles, the dynamic
linker's preload list, PAM modules, kernel modules loaded at boot, X autostart, motd scripts),
files in world-writable directories, and files under ``/root`` and ``/home``. Each file's kinds
say why it was taken (``exec``, ``persistence``, ``writable``, ``home``) and what its first bytes
are (``elf``, ``script``). Bounded: a file over :data:`MAX_FILE_BYTES`, the files after
:data:`MAX_FILES` or :data:`MAX_TOTAL_BYTES` are not hashed, and how many were not (with a few
examples and the reason) is part of the facts, never left out silently.

Follows MITRE ATT&CK for Linux persistence locations (T1053.003 cron, T1543.002 systemd,
T1037.004 rc scripts, T1546.004 shell profiles, T1574.006 ld.so.preload, T1556.003 PAM,
T1547.006 kernel modules) for what counts as ``persistence``.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass

from imageaudit.facts.base import CollectContext, Collector
from imageaudit.imagefs import FileStat, ImageFSError
from imageaudit.model import Source

NAME = "filehashes"
MAX_FILE_BYTES = 64 * 2**20
MAX_TOTAL_BYTES = 2**30
# A report carries every hash (about 300 bytes each) and a catalogue takes 16 MiB per request.
MAX_FILES = 30_000
MAX_EXAMPLES = 50

LIBRARY_DIRS = ("/lib", "/lib64", "/lib32", "/usr/lib", "/usr/lib64", "/usr/lib32",
                "/usr/local/lib")
PERSISTENCE = (
    "/etc/crontab", "/etc/cron.d", "/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly",
    "/etc/cron.monthly", "/var/spool/cron", "/etc/anacrontab", "/var/spool/at",
    "/etc/systemd/system", "/etc/systemd/user", "/lib/systemd/system", "/usr/lib/systemd/system",
    "/run/systemd/system", "/etc/init.d", "/etc/rc.local", "/etc/rc.d", "/etc/rc0.d",
    "/etc/rc1.d", "/etc/rc2.d", "/etc/rc3.d", "/etc/rc4.d", "/etc/rc5.d", "/etc/rc6.d",
    "/etc/rcS.d", "/etc/init", "/etc/profile", "/etc/profile.d", "/etc/bash.bashrc",
    "/etc/bashrc", "/etc/zsh", "/etc/environment", "/etc/ld.so.preload", "/etc/ld.so.conf",
    "/etc/ld.so.conf.d", "/etc/pam.d", "/lib/security", "/lib64/security", "/usr/lib/security",
    "/usr/lib64/security", "/etc/modules", "/etc/modules-load.d", "/usr/lib/modules-load.d",
    "/etc/update-motd.d", "/etc/xdg/autostart", "/etc/udev/rules.d",
)
HOMES = ("/root", "/home")
# PAM modules live in a per-architecture directory on Debian (/lib/x86_64-linux-gnu/security).
_PAM_DIR = "/security/"


@dataclass(frozen=True, slots=True)
class FileHash:
    """One hashed file: its digests, size, and why it was taken."""

    path: str
    sha256: str
    sha1: str
    md5: str
    size: int
    kinds: tuple[str, ...]
    source: Source


@dataclass(frozen=True, slots=True)
class NotHashed:
    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class FileHashesFacts:
    """The hashed files (sorted by path), and what was left out."""

    files: tuple[FileHash, ...] = ()
    not_hashed_count: int = 0
    not_hashed: tuple[NotHashed, ...] = ()  # the first examples
    max_file_bytes: int = MAX_FILE_BYTES
    max_total_bytes: int = MAX_TOTAL_BYTES
    max_files: int = MAX_FILES

    @property
    def complete(self) -> bool:
        return self.not_hashed_count == 0


def _size(n: int) -> str:
    return f"{n // 2**20} MiB" if n >= 2**20 else f"{n} bytes"


def _under(path: str, tops: tuple[str, ...]) -> bool:
    return any(path == t or path.startswith(t + "/") for t in tops)


def _kinds(st: FileStat, writable_dirs: set[str]) -> list[str]:
    path = st.path
    kinds = []
    if st.mode & 0o111:
        kinds.append("exec")
    if _under(path, PERSISTENCE) or (_PAM_DIR in path and path.endswith(".so")):
        kinds.append("persistence")
    if posixpath.dirname(path) in writable_dirs or st.mode & 0o002:
        kinds.append("writable")
    if _under(path, HOMES):
        kinds.append("home")
    if not kinds and _under(path, LIBRARY_DIRS) and ".so" in posixpath.basename(path):
        kinds.append("library")
    return kinds


def collect(ctx: CollectContext) -> FileHashesFacts:
    walk = ctx.walk()
    writable_dirs = {st.path for st in walk if st.is_dir and st.mode & 0o002}
    candidates = sorted(
        ((st, kinds) for st in walk if st.is_file and (kinds := _kinds(st, writable_dirs))),
        key=lambda pair: pair[0].path,
    )
    files: list[FileHash] = []
    left: list[NotHashed] = []
    left_count = 0
    total = 0

    def skip(path: str, reason: str) -> None:
        nonlocal left_count
        left_count += 1
        if len(left) < MAX_EXAMPLES:
            left.append(NotHashed(path, reason))

    for st, kinds in candidates:
        if len(files) >= MAX_FILES:
            skip(st.path, f"more than {MAX_FILES} files to hash")
            continue
        if st.size > MAX_FILE_BYTES:
            skip(st.path, f"larger than {_size(MAX_FILE_BYTES)}")
            continue
        if total + st.size > MAX_TOTAL_BYTES:
            skip(st.path, f"over the {_size(MAX_TOTAL_BYTES)} hashed per image")
            continue
        try:
            result = ctx.fs.read(st.path, MAX_FILE_BYTES)
        except (ImageFSError, OSError) as exc:
            skip(st.path, f"cannot be read: {exc}")
            continue
        if result.truncated:
            skip(st.path, f"larger than {_size(MAX_FILE_BYTES)}")
            continue
        data = result.data
        total += len(data)
        head = data[:4]
        found = list(kinds)
        if head == b"\x7fELF":
            found.append("elf")
        elif head[:2] == b"#!":
            found.append("script")
        if found == ["library"]:
            continue  # a file called *.so that is no shared object: not what was looked for
        files.append(FileHash(
            path=st.path, sha256=hashlib.sha256(data).hexdigest(),
            sha1=hashlib.sha1(data, usedforsecurity=False).hexdigest(),
            md5=hashlib.md5(data, usedforsecurity=False).hexdigest(), size=len(data),
            kinds=tuple(k for k in found if k != "library"), source=Source(st.path),
        ))
    if ctx.walk_cut():
        skip("/", "the walk of the image was cut")
    return FileHashesFacts(files=tuple(files), not_hashed_count=left_count,
                           not_hashed=tuple(left))


COLLECTOR = Collector(NAME, (), collect, needs_walk=True)

__all__ = ["COLLECTOR", "FileHash", "FileHashesFacts", "NotHashed", "collect"]
