"""Image hygiene facts for the credentials collector: what a builder should have cleaned.

Shell and tool histories, cloud-init state and presence, machine identity and random seeds,
logs, temporary files and ``~/.ssh`` contents other than ``authorized_keys``. Reads are
bounded (histories: first :data:`MAX_HISTORY_READ` bytes, to count lines); a history that is
a symlink to ``/dev/null`` is recorded as such, never as a non-empty file.
Follows machine-id(5), systemd-random-seed.service(8), cloud-init docs ("Boot stages",
"Directory layout" of /var/lib/cloud), bash(1) HISTFILE.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from imageaudit.facts.accounts.homes import Home
from imageaudit.facts.base import CollectContext
from imageaudit.imagefs import FileStat, FileType, ImageFSError, normalize
from imageaudit.model import Source

HISTORY_NAMES = (
    ".bash_history",
    ".zsh_history",
    ".sh_history",
    ".ash_history",
    ".history",
    ".python_history",
    ".mysql_history",
    ".psql_history",
    ".sqlite_history",
    ".node_repl_history",
    ".lesshst",
    ".viminfo",
    ".local/share/fish/fish_history",
)
MAX_HISTORY_READ = 1024 * 1024
MAX_SSH_ENTRIES = 1_000
MAX_NAMES = 100
SKIP_SSH = frozenset({"authorized_keys", "authorized_keys2"})
CLOUD_INIT_BINARIES = ("/usr/bin/cloud-init", "/usr/local/bin/cloud-init", "/bin/cloud-init")
CLOUD_INIT_UNITS = (
    "cloud-init-local.service",
    "cloud-init-main.service",
    "cloud-init-network.service",
    "cloud-init.service",
    "cloud-config.service",
    "cloud-final.service",
    "cloud-init.target",
)
UNIT_DIRS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
IDENTITY_FILES = (
    "/etc/machine-id",
    "/var/lib/dbus/machine-id",
    "/var/lib/systemd/random-seed",
    "/var/lib/urandom/random-seed",
    "/var/lib/systemd/credential.secret",
)
TEMP_CONTENT_DIRS = ("/tmp", "/var/tmp")


@dataclass(frozen=True, slots=True)
class HistoryFile:
    """A history file in a home (present; absent ones have no record)."""

    path: str
    home: str
    name: str
    type: FileType  # of the entry itself (a symlink stays a symlink)
    link_target: str | None
    target_type: FileType | None  # after following symlinks; None when dangling
    dev_null: bool  # resolves to /dev/null (history disabled on purpose)
    size: int  # of the regular file reached, else 0
    lines: int | None  # newline-terminated or final partial lines; None if not a regular file
    lines_truncated: bool  # counted over the first MAX_HISTORY_READ bytes only
    source: Source


@dataclass(frozen=True, slots=True)
class SshDirEntry:
    """An entry of a home's ``.ssh`` directory other than authorized_keys."""

    path: str
    home: str
    name: str
    type: FileType
    mode: int
    uid: int
    gid: int
    size: int
    source: Source


@dataclass(frozen=True, slots=True)
class CloudState:
    """``/var/lib/cloud``: what a previous boot with cloud-init left behind."""

    present: bool
    entries: int  # every entry below it in the walk
    instance_link: str | None  # target of /var/lib/cloud/instance
    instances: tuple[str, ...]  # names under /var/lib/cloud/instances
    data_entries: int | None  # None: data/ absent
    sem_entries: int | None
    source: Source


@dataclass(frozen=True, slots=True)
class CloudInit:
    """Where cloud-init is installed (configuration, program, units)."""

    config: bool  # /etc/cloud/cloud.cfg exists
    config_d: tuple[str, ...]  # /etc/cloud/cloud.cfg.d/* names
    binaries: tuple[str, ...]
    units: tuple[str, ...]
    source: Source


@dataclass(frozen=True, slots=True)
class IdentityFile:
    """machine-id or random seed: ``absent``, ``empty``, ``uninitialized`` or ``set``."""

    path: str
    state: str
    size: int | None
    link_target: str | None
    source: Source


@dataclass(frozen=True, slots=True)
class LogFile:
    path: str
    size: int
    source: Source


@dataclass(frozen=True, slots=True)
class Logs:
    """Non-empty regular files under /var/log (list capped, totals not)."""

    files: tuple[LogFile, ...]
    count: int
    empty_count: int
    total_bytes: int
    truncated: bool


@dataclass(frozen=True, slots=True)
class TempContent:
    """What a temp directory holds in the image."""

    path: str
    present: bool
    entries: int  # direct children
    total: int  # all descendants
    names: tuple[str, ...]  # first MAX_NAMES direct children
    source: Source


def _counted_lines(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def histories(ctx: CollectContext, homes: Sequence[Home]) -> list[HistoryFile]:
    """Every history file present in a home (empty, non-empty, or a link elsewhere)."""
    out: list[HistoryFile] = []
    for home in homes:
        if not home.present:
            continue
        for name in HISTORY_NAMES:
            path = posixpath.join(home.path, name)
            try:
                st = ctx.fs.lstat(path)
            except ImageFSError:
                continue
            out.append(_history(ctx, home.path, name, path, st))
    return out


def _history(ctx: CollectContext, home: str, name: str, path: str, st: FileStat) -> HistoryFile:
    target: FileStat | None = st
    dev_null = False
    if st.is_symlink:
        # Containers often ship no /dev at all: judge a direct link by its text too.
        direct = normalize(posixpath.join(posixpath.dirname(path), st.link_target or ""))
        dev_null = direct == "/dev/null"
        try:
            dev_null = dev_null or ctx.fs.resolve(path) == "/dev/null"
            target = ctx.fs.stat(path)
        except ImageFSError:
            target = None
    lines: int | None = None
    truncated = False
    if target is not None and target.is_file:
        result = ctx.read(path, MAX_HISTORY_READ)
        if result is not None:
            lines, truncated = _counted_lines(result.data), result.truncated
    return HistoryFile(
        path=path,
        home=home,
        name=name,
        type=st.type,
        link_target=st.link_target,
        target_type=target.type if target else None,
        dev_null=dev_null,
        size=target.size if target is not None and target.is_file else 0,
        lines=lines,
        lines_truncated=truncated,
        source=Source(path),
    )


def ssh_entries(ctx: CollectContext, homes: Sequence[Home]) -> list[SshDirEntry]:
    """Entries of each home's .ssh directory, authorized_keys excepted (accounts owns it)."""
    out: list[SshDirEntry] = []
    for home in homes:
        ssh = posixpath.join(home.path, ".ssh")
        if not home.present or not ctx.fs.is_dir(ssh):
            continue
        try:
            names = ctx.fs.listdir(ssh)
        except ImageFSError as exc:
            ctx.error("credentials", str(exc), ssh)
            continue
        for name in names[:MAX_SSH_ENTRIES]:
            if name in SKIP_SSH:
                continue
            path = posixpath.join(ssh, name)
            try:
                st = ctx.fs.lstat(path)
            except ImageFSError:
                continue
            out.append(
                SshDirEntry(
                    path, home.path, name, st.type, st.mode, st.uid, st.gid, st.size, Source(path)
                )
            )
    return out


def _count_under(walk: Sequence[FileStat], top: str) -> int:
    prefix = top.rstrip("/") + "/"
    return sum(1 for st in walk if st.path.startswith(prefix))


def cloud_state(ctx: CollectContext, walk: Sequence[FileStat]) -> CloudState:
    base = "/var/lib/cloud"
    present = ctx.fs.is_dir(base)
    link: str | None = None
    try:
        link = ctx.fs.readlink(base + "/instance")
    except ImageFSError:
        link = None
    instances: tuple[str, ...] = ()
    if ctx.fs.is_dir(base + "/instances"):
        instances = tuple(ctx.fs.listdir(base + "/instances")[:MAX_NAMES])

    def entries(sub: str) -> int | None:
        path = f"{base}/{sub}"
        return _count_under(walk, path) if ctx.fs.is_dir(path) else None

    return CloudState(
        present=present,
        entries=_count_under(walk, base) if present else 0,
        instance_link=link,
        instances=instances,
        data_entries=entries("data"),
        sem_entries=entries("sem"),
        source=Source(base),
    )


def cloud_init(ctx: CollectContext) -> CloudInit:
    config_d: tuple[str, ...] = ()
    if ctx.fs.is_dir("/etc/cloud/cloud.cfg.d"):
        config_d = tuple(ctx.fs.listdir("/etc/cloud/cloud.cfg.d")[:MAX_NAMES])
    units = {
        posixpath.join(d, u)
        for d in UNIT_DIRS
        for u in CLOUD_INIT_UNITS
        if ctx.fs.lexists(posixpath.join(d, u))
    }
    return CloudInit(
        config=ctx.fs.exists("/etc/cloud/cloud.cfg"),
        config_d=config_d,
        binaries=tuple(b for b in CLOUD_INIT_BINARIES if ctx.fs.lexists(b)),
        units=tuple(sorted(units)),
        source=Source("/etc/cloud/cloud.cfg"),
    )


def identity_files(ctx: CollectContext) -> list[IdentityFile]:
    out: list[IdentityFile] = []
    for path in IDENTITY_FILES:
        link: str | None = None
        try:
            link = ctx.fs.lstat(path).link_target
            st = ctx.fs.stat(path)
        except ImageFSError:
            state = "dangling" if link is not None else "absent"
            out.append(IdentityFile(path, state, None, link, Source(path)))
            continue
        state = "set"
        if not st.is_file:
            state = st.type.value
        elif st.size == 0:
            state = "empty"
        else:
            result = ctx.read(path, 64)
            if result is not None and result.data.strip() in (b"", b"uninitialized"):
                state = "uninitialized" if result.data.strip() else "empty"
        out.append(IdentityFile(path, state, st.size, link, Source(path)))
    return out


def logs(walk: Sequence[FileStat], cap: int) -> Logs:
    files = [st for st in walk if st.is_file and st.path.startswith("/var/log/")]
    full = [LogFile(st.path, st.size, Source(st.path)) for st in files if st.size > 0]
    return Logs(
        files=tuple(full[:cap]),
        count=len(full),
        empty_count=len(files) - len(full),
        total_bytes=sum(f.size for f in full),
        truncated=len(full) > cap,
    )


def temp_content(ctx: CollectContext, walk: Sequence[FileStat]) -> list[TempContent]:
    out: list[TempContent] = []
    for path in TEMP_CONTENT_DIRS:
        try:
            canon = ctx.fs.resolve(path)
        except ImageFSError:
            canon = path
        if not ctx.fs.is_dir(canon):
            out.append(TempContent(path, False, 0, 0, (), Source(path)))
            continue
        names = sorted(
            posixpath.basename(st.path) for st in walk if posixpath.dirname(st.path) == canon
        )
        total = _count_under(walk, canon)
        out.append(
            TempContent(path, True, len(names), total, tuple(names[:MAX_NAMES]), Source(path))
        )
    return out
