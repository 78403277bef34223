"""SysV init (``/etc/rc?.d`` links, ``/etc/inittab``) and OpenRC (``/etc/runlevels``).

Helpers for :mod:`imageaudit.facts.services`. A script is enabled at a runlevel when an
``S<NN><name>`` link sits in that runlevel's directory; ``K`` links are recorded too.

Follows init(8) and inittab(5) (sysvinit), Debian Policy §9.3 (``/etc/rcN.d`` links),
openrc(8) and rc-update(8) (``/etc/runlevels/<level>/<service>``).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from imageaudit.facts.base import CollectContext
from imageaudit.facts.conftext import MalformedLine, canonical, numbered_lines, read_config
from imageaudit.imagefs import FileType, ImageFSError
from imageaudit.model import Source

RC_GLOBS = ("/etc/rc?.d", "/etc/rc.d/rc?.d")
INIT_DIRS = ("/etc/init.d", "/etc/rc.d/init.d")
MAX_LINKS = 10_000
_RC_LINK = re.compile(r"^([SK])(\d*)(.+)$")
_RC_DIR = re.compile(r"^rc(.)\.d$")


@dataclass(frozen=True, slots=True)
class RcLink:
    """One ``/etc/rcN.d/[SK]NNname`` entry."""

    runlevel: str
    action: str  # start | stop
    order: int | None
    script: str
    path: str
    target: str | None
    source: Source


@dataclass(frozen=True, slots=True)
class SysvScript:
    name: str
    path: str | None  # the script in /etc/init.d, None when only links name it
    start_runlevels: tuple[str, ...]
    stop_runlevels: tuple[str, ...]
    source: Source


@dataclass(frozen=True, slots=True)
class SysvFacts:
    present: bool
    default_runlevel: str | None  # from /etc/inittab ``id:N:initdefault:``
    default_runlevel_source: Source | None
    scripts: tuple[SysvScript, ...]
    links: tuple[RcLink, ...]
    malformed: tuple[MalformedLine, ...]


@dataclass(frozen=True, slots=True)
class OpenRCEntry:
    """``/etc/runlevels/<runlevel>/<name>``: the service is added to that runlevel."""

    name: str
    runlevel: str
    path: str
    target: str | None
    source: Source


@dataclass(frozen=True, slots=True)
class OpenRCFacts:
    present: bool
    runlevels: tuple[str, ...]
    entries: tuple[OpenRCEntry, ...]


def _listdir(ctx: CollectContext, path: str) -> list[str]:
    try:
        names = ctx.fs.listdir(path)
    except ImageFSError:
        return []
    if len(names) > MAX_LINKS:
        ctx.error("services", f"more than {MAX_LINKS} entries, rest not read", path)
    return names[:MAX_LINKS]


def _inittab(
    ctx: CollectContext, malformed: list[MalformedLine]
) -> tuple[str | None, Source | None]:
    text = read_config(ctx, "/etc/inittab")
    if text is None:
        return None, None
    found: tuple[str | None, Source | None] = (None, None)
    for number, raw in numbered_lines(text):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":", 3)
        if len(fields) != 4:
            malformed.append(MalformedLine("not id:runlevels:action:process", raw,
                                           Source("/etc/inittab", number)))
            continue
        if fields[2] == "initdefault" and found[0] is None:
            found = (fields[1], Source("/etc/inittab", number))
    return found


def _init_scripts(ctx: CollectContext) -> dict[str, str]:
    scripts: dict[str, str] = {}
    done: set[str] = set()
    for directory in INIT_DIRS:
        canon = canonical(ctx, directory)
        if canon in done or not ctx.fs.is_dir(directory):
            continue
        done.add(canon)
        for name in _listdir(ctx, directory):
            path = posixpath.join(directory, name)
            if ctx.fs.is_file(path):
                scripts.setdefault(name, path)
    return scripts


def collect_sysv(ctx: CollectContext) -> SysvFacts:
    """rc links per runlevel, init scripts and the default runlevel."""
    malformed: list[MalformedLine] = []
    default, default_source = _inittab(ctx, malformed)
    scripts = _init_scripts(ctx)
    links: list[RcLink] = []
    done: set[str] = set()
    rc_dirs = sorted({d for pattern in RC_GLOBS for d in ctx.fs.glob(pattern)})
    for directory in rc_dirs:
        canon = canonical(ctx, directory)
        match = _RC_DIR.match(posixpath.basename(directory))
        if match is None or canon in done or not ctx.fs.is_dir(directory):
            continue
        done.add(canon)
        for name in _listdir(ctx, directory):
            link = _RC_LINK.match(name)
            if link is None or name.startswith("README"):
                continue
            path = posixpath.join(directory, name)
            try:
                st = ctx.fs.lstat(path)
            except ImageFSError:
                continue
            target = st.link_target if st.type is FileType.SYMLINK else None
            links.append(
                RcLink(
                    runlevel=match.group(1),
                    action="start" if link.group(1) == "S" else "stop",
                    order=int(link.group(2)) if link.group(2) else None,
                    script=link.group(3),
                    path=path,
                    target=target,
                    source=Source(path),
                )
            )
    links.sort(key=lambda lk: lk.path)
    by_script: dict[str, list[RcLink]] = {}
    for lk in links:
        by_script.setdefault(lk.script, []).append(lk)
    records = []
    for name in sorted(set(scripts) | set(by_script)):
        mine = by_script.get(name, [])
        starts = sorted({lk.runlevel for lk in mine if lk.action == "start"})
        stops = sorted({lk.runlevel for lk in mine if lk.action == "stop"})
        script = scripts.get(name)
        where = script if script is not None else (mine[0].path if mine else name)
        records.append(SysvScript(name, script, tuple(starts), tuple(stops), Source(where)))
    return SysvFacts(
        present=bool(scripts or links or default),
        default_runlevel=default,
        default_runlevel_source=default_source,
        scripts=tuple(records),
        links=tuple(links),
        malformed=tuple(malformed),
    )


def collect_openrc(ctx: CollectContext) -> OpenRCFacts:
    """Services added to each OpenRC runlevel."""
    if not ctx.fs.is_dir("/etc/runlevels"):
        return OpenRCFacts(present=False, runlevels=(), entries=())
    levels = [
        lv for lv in _listdir(ctx, "/etc/runlevels") if ctx.fs.is_dir(f"/etc/runlevels/{lv}")
    ]
    entries: list[OpenRCEntry] = []
    for level in levels:
        directory = f"/etc/runlevels/{level}"
        for name in _listdir(ctx, directory):
            path = posixpath.join(directory, name)
            try:
                st = ctx.fs.lstat(path)
            except ImageFSError:
                continue
            target = st.link_target if st.type is FileType.SYMLINK else None
            entries.append(OpenRCEntry(name, level, path, target, Source(path)))
    return OpenRCFacts(present=True, runlevels=tuple(levels), entries=tuple(entries))
