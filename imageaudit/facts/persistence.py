"""Collector ``persistence``: what the image runs without being asked, line by line.

The places MITRE ATT&CK for Linux names for persistence and hijacking, each line kept with
its file and line number and the place it came from (``mechanism``):

- the dynamic linker (T1574.006): ``/etc/ld.so.preload``, the directories of
  ``/etc/ld.so.conf`` and its includes, ``/etc/environment``;
- cron and at (T1053.003, T1053.002): ``/etc/crontab``, ``/etc/cron.d``, ``/etc/anacrontab``,
  the users' tables (``/var/spool/cron/crontabs``, ``/var/spool/cron``, ``/etc/crontabs``),
  the scripts of ``/etc/cron.{hourly,daily,weekly,monthly}`` and ``/etc/periodic``, at jobs;
- systemd units (T1543.002, T1053.006): the ``Exec*=`` and ``Environment*=`` settings of every
  system unit (found by the ``services`` collector's :class:`UnitLoader`, drop-ins included)
  and of user units in ``/etc/systemd/user`` and the accounts' ``~/.config/systemd/user``;
- rc scripts (T1037.004): ``/etc/rc.local``, ``/etc/init.d``, regular files in ``/etc/rc*.d``,
  OpenRC's ``/etc/local.d``;
- shell profiles (T1546.004): ``/etc/profile``, ``/etc/profile.d``, the system bash and zsh
  files, and the start-up files in every passwd home;
- PAM (T1556.003): every rule line of ``/etc/pam.d`` and ``/etc/pam.conf`` with the module
  file it resolves to;
- kernel modules (T1547.006): ``/etc/modules``, ``modules-load.d``, ``modprobe.d`` directives
  and every kernel object (``*.ko*``) file the shared walk finds.

Each file read is kept too (mode and owner), and the state of the paths the lines name
(preloaded libraries, library directories). authorized_keys and setuid files are read by the
``accounts`` and ``files`` collectors. A file longer than :data:`FILE_LIMIT`, a line cut at
:data:`~imageaudit.facts.persistence_files.MAX_TEXT` or more than :data:`MAX_ENTRIES` lines make
the facts incomplete; a cut walk only the list of kernel objects (``kernel_objects_complete``).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from imageaudit.facts import persistence_files as pf
from imageaudit.facts.accounts.homes import existing_homes
from imageaudit.facts.base import CollectContext, Collector
from imageaudit.facts.conftext import MalformedLine
from imageaudit.facts.files import PathState, path_state
from imageaudit.facts.persistence_files import (
    AT_DIRS,
    CRON_SCRIPT_DIRS,
    HOME_FILES,
    KO_MAGIC,
    KO_SUFFIXES,
    MODPROBE_DIRS,
    MODULES_LOAD_DIRS,
    PAM_MODULE_DIRS,
    PROFILE_DIRS,
    PROFILE_FILES,
    RC_DIRS,
    RC_FILES,
    USER_CRONTAB_DIRS,
    PamRule,
    PersistenceEntry,
    PersistenceFile,
)
from imageaudit.facts.services.systemd_loader import UnitLoader
from imageaudit.facts.services.systemd_units import parse_unit_file, unit_kind
from imageaudit.facts.textlines import glibc_lines
from imageaudit.imagefs import FileStat, ImageFSError
from imageaudit.model import Source

FILE_LIMIT = 1024 * 1024
MAX_ENTRIES = 200_000
MAX_DIR_FILES = 5_000  # files read from one directory
MAX_HOMES = 20_000
MAX_KERNEL_OBJECTS = 50_000
MAX_INCLUDES = 64



@dataclass(frozen=True, slots=True)
class PersistenceFacts:
    entries: tuple[PersistenceEntry, ...]
    files: tuple[PersistenceFile, ...]
    pam: tuple[PamRule, ...]
    paths: tuple[PathState, ...]  # preloaded libraries, library directories, PAM modules
    # The kernel objects the walk found: *.ko* files under /lib/modules, and elsewhere those
    # whose content starts like one (ELF, or xz/gzip/zstd compressed). Not complete when the
    # walk was cut or more than MAX_KERNEL_OBJECTS were found (only the first are kept).
    kernel_objects: tuple[str, ...]
    kernel_objects_complete: bool
    homes: tuple[tuple[str, str], ...]  # (account, home) whose start-up files were looked at
    malformed: tuple[MalformedLine, ...]

    def path(self, path: str) -> PathState | None:
        return next((p for p in self.paths if p.path == path), None)


class _Reader:
    """What one collection gathered so far, with the caps applied."""

    def __init__(self, ctx: CollectContext) -> None:
        self.ctx = ctx
        self.entries: list[PersistenceEntry] = []
        self.files: list[PersistenceFile] = []
        self.seen: set[str] = set()
        self.paths: dict[str, PathState] = {}
        self.malformed: list[MalformedLine] = []
        self.full = False

    def listdir(self, path: str) -> list[str]:
        try:
            names = sorted(self.ctx.fs.listdir(path))
        except ImageFSError:
            return []
        if len(names) > MAX_DIR_FILES:
            self.ctx.incomplete(f"read only the first {MAX_DIR_FILES} entries", path)
            names = names[:MAX_DIR_FILES]
        return [posixpath.join(path, n) for n in names]

    def text(self, mechanism: str, path: str, account: str | None = None) -> str | None:
        """The text of a regular file (each path once); a program is recorded, not read."""
        if path in self.seen:
            return None
        try:
            st = self.ctx.fs.stat(path)
        except FileNotFoundError:
            if self.ctx.fs.lexists(path):  # a dangling link: what it hides is not known
                self.ctx.incomplete("cannot be read: a link to nothing", path)
            return None
        except ImageFSError as exc:
            self.ctx.incomplete(f"cannot be read: {exc}", path)
            return None
        if not st.is_file:
            return None
        self.seen.add(path)
        head = self.ctx.read(path, 4)
        binary = head is not None and (head.data[:4] == b"\x7fELF" or b"\0" in head.data)
        self.files.append(
            PersistenceFile(mechanism, path, st.mode, st.uid, st.gid, st.size, binary, account)
        )
        if binary:
            return None
        return self.ctx.read_text(path, FILE_LIMIT)

    def add(self, entries: list[PersistenceEntry]) -> None:
        if self.full:
            return
        for e in entries:
            if e.cut:
                self.ctx.incomplete(
                    f"line longer than {pf.MAX_TEXT} characters, only its start kept",
                    e.source.path,
                )
        room = MAX_ENTRIES - len(self.entries)
        if len(entries) > room:
            self.full = True
            self.ctx.incomplete(f"stopped after {MAX_ENTRIES} lines")
            entries = entries[:room]
        self.entries.extend(entries)

    def state(self, path: str) -> None:
        if path not in self.paths and len(self.paths) < MAX_ENTRIES:
            self.paths[path] = path_state(self.ctx, path)


def _cron(r: _Reader) -> None:
    for path in ["/etc/crontab", *r.listdir("/etc/cron.d")]:
        if (text := r.text("cron", path)) is not None:
            r.add(pf.crontab(path, text, system=True, owner=None))
    if (text := r.text("cron", "/etc/anacrontab")) is not None:
        r.add(pf.anacrontab("/etc/anacrontab", text))
    user_paths = [p for d in USER_CRONTAB_DIRS for p in r.listdir(d)]
    # RHEL keeps users' tables directly in /var/spool/cron (its subdirectories are others')
    user_paths += [p for p in r.listdir("/var/spool/cron") if r.ctx.fs.is_file(p)]
    for path in user_paths:
        owner = posixpath.basename(path)
        if (text := r.text("cron", path, owner)) is not None:
            r.add(pf.crontab(path, text, system=False, owner=owner))
    for directory in CRON_SCRIPT_DIRS:
        for path in r.listdir(directory):
            if (text := r.text("cron", path)) is not None:
                r.add(pf.script("cron", path, text))
    for directory in AT_DIRS:
        for path in r.listdir(directory):
            name = posixpath.basename(path)
            if name.startswith(".") or name == "spool":  # .SEQ, the output spool
                continue
            if (text := r.text("at", path)) is not None:
                r.add([
                    pf.entry("at", "script", e.text, e.source, e.command)
                    for e in pf.script("at", path, text)
                ])


def _systemd(r: _Reader, homes: list[tuple[str, str]]) -> None:
    loader = UnitLoader(r.ctx)
    loader.load()
    for name in sorted(loader.entries):
        kind = unit_kind(name)
        if kind not in ("service", "socket") or loader.entries[name].kind != "file":
            continue  # an alias is read under the name of its file; a mask runs nothing
        parsed = loader.parse(name)
        _unit_entries(r, name, parsed.values)
    r.malformed.extend(loader.malformed)
    user_dirs: list[tuple[str | None, str]] = [(None, "/etc/systemd/user")] + [
        (account, posixpath.join(home, ".config/systemd/user")) for account, home in homes
    ]
    for account, directory in user_dirs:
        for path in r.listdir(directory):
            name = posixpath.basename(path)
            if unit_kind(name) is None or (text := r.text("systemd", path, account)) is None:
                continue
            parsed = parse_unit_file(text, path, r.malformed)
            _unit_entries(r, name, parsed.values)


def _unit_entries(
    r: _Reader, name: str, values: dict[tuple[str, str], list[tuple[str, int, str]]]
) -> None:
    out = []
    for (section, key), items in values.items():
        if section not in ("Service", "Socket"):
            continue
        is_exec = key in pf.SYSTEMD_COMMAND_KEYS or (section == "Socket" and key.startswith("Exec"))
        if not is_exec and key not in pf.SYSTEMD_ENV_KEYS:
            continue
        for value, line, path in items:
            if not value:
                continue
            command = pf.systemd_command(value) if is_exec else None
            out.append(
                pf.entry("systemd", key, f"{key}={value}", Source(path, line), command, unit=name)
            )
    r.add(out)


def _rc(r: _Reader) -> None:
    paths = list(RC_FILES) + [p for d in RC_DIRS for p in r.listdir(d)]
    for directory in r.ctx.fs.glob("/etc/rc*.d") + r.ctx.fs.glob("/etc/rc.d/rc*.d"):
        for path in r.listdir(directory):
            try:
                if r.ctx.fs.lstat(path).is_symlink:
                    continue  # a link to an init.d script, read there
            except ImageFSError:
                continue
            paths.append(path)
    for path in paths:
        if (text := r.text("rc", path)) is not None:
            r.add(pf.script("rc", path, text))


def _passwd_homes(r: _Reader) -> list[tuple[str, str]]:
    text = r.ctx.read_text("/etc/passwd", FILE_LIMIT)
    homes: dict[str, str] = {}
    for line in glibc_lines(text or ""):
        fields = line.split(":")
        if len(fields) >= 7 and fields[5].startswith("/") and fields[5] != "/":
            homes.setdefault(posixpath.normpath(fields[5]), fields[0])
    homes.setdefault("/root", "root")
    # Accounts whose home was never made (system accounts, a directory of thousands of users)
    # cost one listing of their parent, not one look-up each; only homes there count.
    out = sorted((homes[home], home) for home in existing_homes(r.ctx, list(homes)))
    if len(out) > MAX_HOMES:
        r.ctx.incomplete(f"looked at the first {MAX_HOMES} homes only", "/etc/passwd")
        out = out[:MAX_HOMES]
    return out


def _profiles(r: _Reader, homes: list[tuple[str, str]]) -> None:
    paths = list(PROFILE_FILES) + [p for d in PROFILE_DIRS for p in r.listdir(d)]
    for path in paths:
        if (text := r.text("profile", path)) is not None:
            r.add(pf.script("profile", path, text))
    for account, home in homes:
        try:
            present = set(r.ctx.fs.listdir(home))
        except ImageFSError:
            continue
        for name in HOME_FILES:
            path = posixpath.join(home, name)
            if name in present and (text := r.text("profile", path, account)) is not None:
                r.add(pf.script("profile", path, text, account))
    if (text := r.text("environment", "/etc/environment")) is not None:
        r.add(pf.assignments("environment", "/etc/environment", text))


def _linker(r: _Reader) -> None:
    if (text := r.text("ld_preload", "/etc/ld.so.preload")) is not None:
        found = pf.preload_list("/etc/ld.so.preload", text)
        r.add(found)
        for e in found:
            if e.text.startswith("/"):
                r.state(e.text)
    pending = ["/etc/ld.so.conf"]
    done = 0
    while pending and done < MAX_INCLUDES:
        path = pending.pop(0)
        done += 1
        if (text := r.text("ld_conf", path)) is None:
            continue
        dirs, includes = pf.ld_conf(path, text)
        r.add(dirs)
        for e in dirs:
            if e.text.startswith("/"):
                r.state(e.text)
        for pattern in includes:
            if not pattern.startswith("/"):
                pattern = posixpath.join("/etc", pattern)
            pending.extend(sorted(r.ctx.fs.glob(pattern)))
    if pending:
        r.ctx.incomplete(f"followed only {MAX_INCLUDES} ld.so.conf includes", "/etc/ld.so.conf")


def _pam_module(r: _Reader, module: str, dirs: list[str]) -> str | None:
    if module.startswith("/"):
        r.state(module)
        return module if r.ctx.fs.lexists(module) else None
    for directory in dirs:
        path = posixpath.join(directory, module)
        if r.ctx.fs.lexists(path):
            r.state(path)
            return path
    return None


def _pam(r: _Reader) -> list[PamRule]:
    dirs = [d for d in PAM_MODULE_DIRS if r.ctx.fs.is_dir(d)]
    dirs += sorted(r.ctx.fs.glob("/lib/*-linux-gnu*/security"))
    dirs += sorted(r.ctx.fs.glob("/usr/lib/*-linux-gnu*/security"))
    rules: list[PamRule] = []
    sources = [(p, False) for p in r.listdir("/etc/pam.d")] + [("/etc/pam.conf", True)]
    for path, conf in sources:
        if (text := r.text("pam", path)) is None:
            continue
        lines = pf.pam_rules(path, text, conf=conf)
        r.add([pf.entry("pam", "rule", " ".join(t), src) for t, src in lines])
        for tokens, src in lines:
            service = tokens[-1] if conf and tokens else posixpath.basename(path)
            body = tokens[:-1] if conf else tokens
            module = body[2] if len(body) >= 3 else ""
            rule = pf.pam_rule(service, body, src, _pam_module(r, module, dirs) if module else None)
            if rule is not None:
                rules.append(rule)
    return rules


def _kernel(r: _Reader, walk: list[FileStat]) -> tuple[list[str], bool]:
    sources = ["/etc/modules"] + [p for d in MODULES_LOAD_DIRS for p in r.listdir(d)]
    for path in sources:
        if (text := r.text("modules", path)) is not None:
            r.add(pf.module_list(path, text))
    modprobe = ["/etc/modprobe.conf"] + [p for d in MODPROBE_DIRS for p in r.listdir(d)]
    for path in modprobe:
        if (path == "/etc/modprobe.conf" or path.endswith(".conf")) and (
            text := r.text("modprobe", path)
        ) is not None:
            r.add(pf.modprobe_conf(path, text))
    objects = []
    for st in walk:
        if not st.is_file or not st.path.endswith(KO_SUFFIXES):
            continue
        if not st.path.startswith(("/lib/modules/", "/usr/lib/modules/")):
            head = r.ctx.read(st.path, 6)  # elsewhere the name alone is no proof (vim's tutor.ko)
            if head is None or not head.data.startswith(KO_MAGIC):
                continue
        objects.append(st.path)
    complete = not r.ctx.walk_truncated
    if len(objects) > MAX_KERNEL_OBJECTS:
        complete = False
        objects = objects[:MAX_KERNEL_OBJECTS]
    return sorted(objects), complete


def collect(ctx: CollectContext) -> PersistenceFacts:
    r = _Reader(ctx)
    homes = _passwd_homes(r)
    _linker(r)
    _cron(r)
    _systemd(r, homes)
    _rc(r)
    _profiles(r, homes)
    pam = _pam(r)
    objects, complete = _kernel(r, ctx.walk())
    return PersistenceFacts(
        entries=tuple(r.entries),
        files=tuple(r.files),
        pam=tuple(pam),
        paths=tuple(r.paths[p] for p in sorted(r.paths)),
        kernel_objects=tuple(objects),
        kernel_objects_complete=complete,
        homes=tuple(homes),
        malformed=tuple(r.malformed),
    )


COLLECTOR = Collector(
    "persistence",
    (
        "/etc/ld.so.preload", "/etc/ld.so.conf", "/etc/ld.so.conf.d/*", "/etc/environment",
        "/etc/crontab", "/etc/cron.d/*", "/etc/cron.*/*", "/etc/anacrontab", "/etc/crontabs/*",
        "/var/spool/cron/*", "/var/spool/cron/*/*", "/etc/init.d/*", "/etc/rc.local",
        "/etc/profile", "/etc/profile.d/*", "/etc/bash.bashrc", "/etc/pam.d/*",
        "/etc/modules", "/etc/modules-load.d/*", "/etc/modprobe.d/*",
    ),
    collect,
    needs_walk=True,
)

__all__ = [
    "COLLECTOR", "PamRule", "PersistenceEntry", "PersistenceFacts", "PersistenceFile", "collect",
]
