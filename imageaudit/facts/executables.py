"""What runs without anyone typing it: PATH directories, and the executables named by cron
tables and systemd unit ``Exec*=`` lines, each with its stat resolved inside the image.

Helper of the files collector. Only the executable of each command is parsed (plus, for
cron's shell commands, every absolute path token), bounded per file and in total.
Follows crontab(5), environment(5) (pam_env), login.defs(5), systemd.service(5),
systemd.syntax(7).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass

from imageaudit.facts.base import CollectContext
from imageaudit.facts.conftext import systemd_lines
from imageaudit.facts.textlines import glibc_lines
from imageaudit.imagefs import FileStat, ImageFSError, normalize
from imageaudit.model import Source

NAME = "files"
DEFAULT_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
CRON_DEFAULT_PATH = ("/usr/bin", "/bin")  # crontab(5): PATH=/usr/bin:/bin unless set
UNIT_DIRS = (
    "/etc/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
)
EXEC_KEYS = (
    "ExecCondition",
    "ExecStartPre",
    "ExecStart",
    "ExecStartPost",
    "ExecReload",
    "ExecStop",
    "ExecStopPost",
    "ExecStopPre",
)
CRON_RUN_PARTS = ("cron.hourly", "cron.daily", "cron.weekly", "cron.monthly")
MAX_FILE = 256 * 1024
MAX_UNIT_FILES = 5_000
MAX_CRON_FILES = 2_000
MAX_TOKENS = 32
# Shell words that are not programs: a cron command line is shell, not an argv.
SHELL_WORDS = frozenset(
    {
        *("if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done"),
        *("case", "esac", "in", "!", "{", "}", "time", "exec", "command"),
    }
)
# Builtins of every sh: no file is run, though absolute paths after them still count.
SHELL_BUILTINS = frozenset(
    {"[", "[[", "test", "cd", "echo", "printf", "export", "set", "exit", ":", ".", "source"}
    | {"eval", "read", "true", "false", "return", "shift", "trap", "umask", "wait", "ulimit"}
)

_ENV_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
_SEGMENT_RE = re.compile(r"[;&|()`\n]+")
_ASSIGN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True, slots=True)
class MalformedLine:
    source: Source
    reason: str


@dataclass(frozen=True, slots=True)
class PathDir:
    """One directory of a PATH list, where it was declared and what it is in the image."""

    path: str  # as written ("" means the current directory)
    origin: str  # "default", "/etc/environment PATH", "login.defs ENV_PATH", ...
    relative: bool
    present: bool
    resolved: str | None
    stat: FileStat | None
    world_writable: bool
    sticky: bool
    writable_entries: tuple[str, ...]  # names whose target is a world-writable regular file
    source: Source


@dataclass(frozen=True, slots=True)
class ExecRef:
    """An executable named by cron or systemd, resolved inside the image."""

    kind: str  # "cron" | "systemd"
    directive: str  # "crontab", "cron.d", "user crontab", "cron.daily", "ExecStart", ...
    position: str  # "command" (the program run) or "argument" (an absolute path in the line)
    command: str  # the token as written
    user: str | None  # the user field of a system crontab, the owner of a user crontab
    path: str | None  # absolute path searched (None when a bare name is on no PATH dir)
    resolved: str | None  # canonical path after following symlinks in the image
    stat: FileStat | None
    world_writable: bool
    writable_dirs: tuple[str, ...]  # world-writable directories above the resolved path
    error: str | None
    source: Source


class Resolver:
    """Resolve and stat paths once per collection; world-writable ancestors cached too."""

    def __init__(self, ctx: CollectContext) -> None:
        self.ctx = ctx
        self._cache: dict[str, tuple[str | None, FileStat | None, str | None]] = {}
        self._ww: dict[str, bool] = {}

    def resolve(self, path: str) -> tuple[str | None, FileStat | None, str | None]:
        """(canonical path, stat of it, error) — stat is None when it does not exist."""
        if path not in self._cache:
            try:
                canon = self.ctx.fs.resolve(path)
                st = self.ctx.fs.lstat(canon)
                self._cache[path] = (canon, st, None)
            except FileNotFoundError:
                self._cache[path] = (_safe_canon(self.ctx, path), None, "does not exist")
            except ImageFSError as exc:
                self._cache[path] = (None, None, str(exc))
        return self._cache[path]

    def writable_dirs(self, canon: str) -> tuple[str, ...]:
        out: list[str] = []
        parent = posixpath.dirname(canon)
        while True:
            if parent not in self._ww:
                try:
                    st = self.ctx.fs.lstat(parent)
                    self._ww[parent] = st.is_dir and bool(st.mode & 0o002)
                except ImageFSError:
                    self._ww[parent] = False
            if self._ww[parent]:
                out.append(parent)
            if parent == "/":
                break
            parent = posixpath.dirname(parent)
        return tuple(reversed(out))


def _safe_canon(ctx: CollectContext, path: str) -> str | None:
    try:
        return ctx.fs.resolve(path)
    except ImageFSError:
        return None


def _split_path(value: str) -> list[str]:
    return value.strip().strip("\"'").split(":")


def path_lists(ctx: CollectContext) -> list[tuple[str, str, Source]]:
    """(dir as written, origin, source) for the default PATH and those the image sets."""
    out = [(d, "default", Source("(default PATH)")) for d in DEFAULT_PATH]
    env = ctx.read_text("/etc/environment", MAX_FILE)
    for lineno, line in enumerate(glibc_lines(env or ""), start=1):
        m = re.match(r"^\s*(?:export\s+)?PATH\s*=\s*(.*)$", line)
        if m:
            src = Source("/etc/environment", lineno)
            out.extend((d, "/etc/environment PATH", src) for d in _split_path(m.group(1)))
    defs = ctx.read_text("/etc/login.defs", MAX_FILE)
    for lineno, line in enumerate(glibc_lines(defs or ""), start=1):
        m = re.match(r"^\s*(ENV_PATH|ENV_SUPATH)\s+(?:PATH=)?(\S+)", line)
        if m:
            src = Source("/etc/login.defs", lineno)
            out.extend((d, f"login.defs {m.group(1)}", src) for d in _split_path(m.group(2)))
    return out


def path_dirs(ctx: CollectContext, res: Resolver, walk: Iterable[FileStat]) -> list[PathDir]:
    """Every PATH entry with its stat and the world-writable programs found in it."""
    declared = path_lists(ctx)
    resolved: dict[str, str] = {}
    for written, _origin, _src in declared:
        if written.startswith("/"):
            canon, st, _err = res.resolve(written)
            if canon and st is not None and st.is_dir:
                resolved[written] = canon
    in_dirs = set(resolved.values())
    writable: dict[str, list[str]] = {d: [] for d in in_dirs}
    for st in walk:
        parent = posixpath.dirname(st.path)
        if parent not in in_dirs or st.is_dir:
            continue
        target: FileStat | None = st
        if st.is_symlink:
            target = res.resolve(st.path)[1]
        if target is not None and target.is_file and target.mode & 0o002:
            writable[parent].append(posixpath.basename(st.path))
    out: list[PathDir] = []
    for written, origin, src in declared:
        canon, st, _err = res.resolve(written) if written.startswith("/") else (None, None, None)
        is_dir = st is not None and st.is_dir
        out.append(
            PathDir(
                path=written,
                origin=origin,
                relative=not written.startswith("/"),
                present=is_dir,
                resolved=canon if is_dir else None,
                stat=st,
                world_writable=bool(is_dir and st is not None and st.mode & 0o002),
                sticky=bool(is_dir and st is not None and st.mode & 0o1000),
                writable_entries=tuple(sorted(writable.get(canon or "", ()))),
                source=src,
            )
        )
    return out


class ExecCollector:
    """Accumulates :class:`ExecRef` records from cron tables and unit files."""

    def __init__(self, ctx: CollectContext, res: Resolver) -> None:
        self.ctx = ctx
        self.res = res
        self.refs: list[ExecRef] = []
        self.malformed: list[MalformedLine] = []

    def add(
        self,
        kind: str,
        directive: str,
        position: str,
        command: str,
        user: str | None,
        search: tuple[str, ...],
        source: Source,
    ) -> None:
        path: str | None = None
        error: str | None = None
        if command.startswith("/"):
            path = normalize(command)
        else:
            for d in search:
                candidate = posixpath.join(d, command)
                if self.res.resolve(candidate)[1] is not None:
                    path = normalize(candidate)
                    break
            if path is None:
                error = "not found on PATH " + ":".join(search)
        canon, st, err = self.res.resolve(path) if path else (None, None, None)
        error = error or err
        self.refs.append(
            ExecRef(
                kind=kind,
                directive=directive,
                position=position,
                command=command,
                user=user,
                path=path,
                resolved=canon,
                stat=st,
                world_writable=bool(st is not None and st.is_file and st.mode & 0o002),
                writable_dirs=self.res.writable_dirs(canon or path) if path else (),
                error=error,
                source=source,
            )
        )

    # -- cron --------------------------------------------------------------------------------

    def cron_table(self, path: str, directive: str, owner: str | None) -> None:
        """One crontab; ``owner`` set means a user crontab (no user field)."""
        text = self.ctx.read_text(path, MAX_FILE)
        if text is None:
            return
        search: tuple[str, ...] = CRON_DEFAULT_PATH
        for lineno, raw in enumerate(glibc_lines(text), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            src = Source(path, lineno)
            env = _ENV_RE.match(line)
            if env and not line.startswith("@") and not line[0].isdigit() and line[0] != "*":
                if env.group(1) == "PATH":
                    search = tuple(d for d in _split_path(env.group(2)) if d.startswith("/"))
                continue
            nfields = (1 if line.startswith("@") else 5) + (0 if owner else 1)
            fields = line.split(None, nfields)
            if len(fields) <= nfields:
                self.malformed.append(MalformedLine(src, f"expected {nfields + 1} fields"))
                continue
            user = owner or fields[nfields - 1]
            self.cron_command(fields[nfields], directive, user, search, src)

    def cron_command(
        self, command: str, directive: str, user: str, search: tuple[str, ...], src: Source
    ) -> None:
        """The program of each pipeline segment, and every absolute path token."""
        command = re.split(r"(?<!\\)%", command, maxsplit=1)[0]  # % starts stdin: crontab(5)
        budget = MAX_TOKENS
        for segment in _SEGMENT_RE.split(command):
            tokens = [t.strip("\"'") for t in segment.split() if t.strip("\"'")]
            first = True
            for token in tokens[:budget]:
                budget -= 1
                if first and (token in SHELL_WORDS or _ASSIGN_RE.match(token)):
                    continue  # keywords, VAR=value and exec come before the program
                if first:
                    first = False
                    if token not in SHELL_BUILTINS:
                        self.add("cron", directive, "command", token, user, search, src)
                elif token.startswith("/"):
                    self.add("cron", directive, "argument", token, user, search, src)
            if budget <= 0:
                break

    def cron(self) -> None:
        tables: list[tuple[str, str, str | None]] = [("/etc/crontab", "crontab", None)]
        tables += [(p, "cron.d", None) for p in self._files("/etc/cron.d/*")]
        for pattern in (
            "/var/spool/cron/crontabs/*",
            "/var/spool/cron/tabs/*",
            "/var/spool/cron/*",
        ):
            tables += [(p, "user crontab", posixpath.basename(p)) for p in self._files(pattern)]
        for path, directive, owner in tables[:MAX_CRON_FILES]:
            self.cron_table(path, directive, owner)
        for part in CRON_RUN_PARTS:
            for path in self._files(f"/etc/{part}/*"):
                self.add("cron", part, "command", path, "root", (), Source(path))

    def _files(self, pattern: str) -> list[str]:
        return [p for p in self.ctx.fs.glob(pattern) if self.ctx.fs.is_file(p)]

    # -- systemd -----------------------------------------------------------------------------

    def systemd(self, walk: Iterable[FileStat]) -> bool:
        """Parse Exec lines of every unit file and drop-in; True if the file cap was hit."""
        units: list[FileStat] = []
        for st in walk:
            if not (st.is_file or st.is_symlink):
                continue
            parent, name = posixpath.split(st.path)
            is_unit = parent in UNIT_DIRS and name.endswith((".service", ".socket"))
            is_dropin = (
                parent.endswith((".service.d", ".socket.d"))
                and posixpath.dirname(parent) in UNIT_DIRS
                and name.endswith(".conf")
            )
            if is_unit or is_dropin:
                units.append(st)
        # Regular files first so that a link into a unit directory adds nothing new.
        units.sort(key=lambda st: (st.is_symlink, st.path))
        seen: set[str] = set()
        for st in units[:MAX_UNIT_FILES]:
            canon, target, _err = self.res.resolve(st.path)
            if canon is None or target is None or not target.is_file or canon in seen:
                continue  # dangling, masked (-> /dev/null) or already read
            seen.add(canon)
            self.unit_file(st.path)
        return len(units) > MAX_UNIT_FILES

    def unit_file(self, path: str) -> None:
        text = self.ctx.read_text(path, MAX_FILE)
        if text is None:
            return
        pending = ""
        start = 0
        for lineno, raw in enumerate(systemd_lines(text), start=1):
            if not pending:
                start = lineno
            if raw.endswith("\\"):
                pending += raw[:-1] + " "
                continue
            line = (pending + raw).strip()
            pending = ""
            key, sep, value = line.partition("=")
            key = key.strip()
            if not sep or key not in EXEC_KEYS:
                continue
            program = _exec_program(value)
            if program:
                self.add(
                    "systemd", key, "command", program, None, DEFAULT_PATH, Source(path, start)
                )


def _exec_program(value: str) -> str | None:
    """The program of an ``Exec*=`` value: special prefixes dropped, quotes honoured."""
    value = value.strip().lstrip("@-:+!")
    if not value:
        return None  # an empty assignment resets the list
    if value[0] in "\"'":
        end = value.find(value[0], 1)
        return value[1:end] if end > 0 else value[1:]
    return value.split()[0]
