"""systemd unit files, enablement links, masks and what the default target pulls in.

Helpers for :mod:`imageaudit.facts.services`. Only links count as enablement: ``WantedBy=`` in
an ``[Install]`` section is recorded as information, never as "enabled". The set of units
pulled in by the default target is computed from ``.wants``/``.requires``/``.upholds``
directories and ``Wants=``/``Requires=``/``Upholds=`` lines (drop-ins included), bounded.

Follows systemd.unit(5) (unit search path, aliases, drop-ins, templates, masking),
systemd.socket(5) (``Listen*=``, ``Accept=``, ``Service=``), systemd.service(5)
(``ExecStart=`` reset by an empty assignment) and systemd.special(7) (``default.target``).
"""

from __future__ import annotations

import posixpath
from collections import deque
from dataclasses import dataclass, field

from imageaudit.facts.base import CollectContext
from imageaudit.facts.conftext import MalformedLine, canonical, read_config, systemd_lines
from imageaudit.imagefs import FileStat, FileType, ImageFSError
from imageaudit.model import Source

# Highest precedence first; /run is volatile and never part of an image at rest.
UNIT_DIRS = (
    "/etc/systemd/system",
    "/usr/local/lib/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
)
UNIT_KINDS = frozenset(
    {
        "service", "socket", "target", "timer", "mount", "automount", "path",
        "swap", "slice", "scope", "device",
    }
)
DEP_DIR_SUFFIXES = {".wants": "wants", ".requires": "requires", ".upholds": "upholds"}
DEP_KEYS = {"Wants": "wants", "Requires": "requires", "Upholds": "upholds"}
LISTEN_KEYS = (
    "ListenStream", "ListenDatagram", "ListenSequentialPacket", "ListenFIFO",
    "ListenNetlink", "ListenSpecial", "ListenMessageQueue", "ListenUSBFunction",
)
MAX_ENTRIES = 20_000  # directory entries looked at across all unit directories
MAX_REACH = 5_000  # units visited from the default target
MAX_ALIAS_HOPS = 16


@dataclass(frozen=True, slots=True)
class EnableLink:
    """A symlink in ``<unit>.wants/`` (or ``.requires/``, ``.upholds/``): real enablement."""

    unit: str  # the unit name the link stands for (its file name)
    wanted_by: str  # the unit whose directory holds the link
    kind: str  # wants | requires | upholds
    path: str
    target: str | None  # link target as written; None for a regular file in the directory
    source: Source


@dataclass(frozen=True, slots=True)
class SocketListen:
    kind: str  # the directive: ListenStream, ListenDatagram, ...
    address: str
    source: Source


@dataclass(frozen=True, slots=True)
class SystemdUnit:
    """One unit as systemd would load it: the winning file, links, mask, key settings."""

    name: str
    kind: str
    path: str | None  # the unit file loaded (a template's file for an instance)
    template: str | None  # "getty@.service" for "getty@tty1.service"
    instance: str | None
    enabled: bool  # at least one enablement link names it
    enabled_by: tuple[str, ...]  # the link paths
    masked: bool
    masked_by: str | None  # the /dev/null link
    in_default_target: bool  # pulled in by the default target (links and Wants=/Requires=)
    alias_of: str | None  # set when this name is a symlink to another unit
    exec_start: tuple[str, ...]
    listen: tuple[SocketListen, ...]
    accept: str | None
    activates: str | None  # sockets: the service started on a connection
    wants: tuple[str, ...]  # Wants=/Requires=/Upholds= from the file and its drop-ins
    wanted_by: tuple[str, ...]  # [Install] WantedBy=/RequiredBy= (information only)
    drop_ins: tuple[str, ...]
    source: Source


@dataclass(frozen=True, slots=True)
class SystemdFacts:
    present: bool  # a unit directory exists
    default_target: str | None
    default_target_source: Source | None
    units: tuple[SystemdUnit, ...]
    links: tuple[EnableLink, ...]
    malformed: tuple[MalformedLine, ...]


@dataclass
class _Entry:
    """The winning directory entry for a unit name."""

    path: str
    kind: str  # file | mask | alias
    target: str | None = None  # alias: the unit name pointed at


@dataclass
class _Parsed:
    values: dict[tuple[str, str], list[tuple[str, int, str]]] = field(default_factory=dict)


def unit_kind(name: str) -> str | None:
    """The unit type from its suffix, ``None`` for anything else."""
    base, dot, suffix = name.rpartition(".")
    return suffix if dot and base and suffix in UNIT_KINDS else None


def split_template(name: str) -> tuple[str | None, str | None]:
    """``("getty@.service", "tty1")`` for an instance, ``(None, None)`` otherwise."""
    base, _dot, suffix = name.rpartition(".")
    prefix, at, instance = base.partition("@")
    if not at or not instance:
        return None, None
    return f"{prefix}@.{suffix}", instance


def parse_unit_file(text: str, path: str, malformed: list[MalformedLine]) -> _Parsed:
    """Section/key/value triples of a unit file (continuation lines joined)."""
    parsed = _Parsed()
    section = ""
    pending = ""
    start = 0
    for number, raw in enumerate(systemd_lines(text), start=1):
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            malformed.append(MalformedLine("not a key=value line", raw, Source(path, start)))
            continue
        parsed.values.setdefault((section, key.strip()), []).append(
            (value.strip(), start, path)
        )
    return parsed


class _Loader:
    def __init__(self, ctx: CollectContext) -> None:
        self.ctx = ctx
        self.entries: dict[str, _Entry] = {}
        self.links: list[EnableLink] = []
        self.drop_ins: dict[str, dict[str, str]] = {}
        self.malformed: list[MalformedLine] = []
        self.parsed: dict[str, _Parsed] = {}
        self.seen_entries = 0
        self.present = False

    def _listdir(self, path: str) -> list[str]:
        try:
            names = self.ctx.fs.listdir(path)
        except ImageFSError:
            return []
        room = MAX_ENTRIES - self.seen_entries
        if len(names) > room:
            self.ctx.error("services", f"more than {MAX_ENTRIES} systemd entries", path)
            names = names[: max(room, 0)]
        self.seen_entries += len(names)
        return names

    def _lstat(self, path: str) -> FileStat | None:
        try:
            return self.ctx.fs.lstat(path)
        except ImageFSError:
            return None

    def load(self) -> None:
        done: set[str] = set()
        for directory in UNIT_DIRS:
            if not self.ctx.fs.is_dir(directory):
                continue
            canon = canonical(self.ctx, directory)
            if canon in done:  # /lib -> usr/lib on merged-/usr systems
                continue
            done.add(canon)
            self.present = True
            for name in self._listdir(directory):
                self._entry(directory, name)

    def _entry(self, directory: str, name: str) -> None:
        path = posixpath.join(directory, name)
        st = self._lstat(path)
        if st is None:
            return
        dep_suffix = next((s for s in DEP_DIR_SUFFIXES if name.endswith(s)), None)
        if dep_suffix and self.ctx.fs.is_dir(path):
            wanted_by = name[: -len(dep_suffix)]
            for link in self._listdir(path):
                self._link(path, link, wanted_by, DEP_DIR_SUFFIXES[dep_suffix])
            return
        if name.endswith(".d") and self.ctx.fs.is_dir(path):
            unit = name[:-2]
            slot = self.drop_ins.setdefault(unit, {})
            for conf in self._listdir(path):
                if conf.endswith(".conf"):
                    slot.setdefault(conf, posixpath.join(path, conf))  # higher dir wins
            return
        if unit_kind(name) is None or name in self.entries:
            return
        if st.type is FileType.SYMLINK:
            target = st.link_target or ""
            if target == "/dev/null":
                self.entries[name] = _Entry(path, "mask")
                return
            base = posixpath.basename(target)
            if base != name and unit_kind(base) is not None:
                self.entries[name] = _Entry(path, "alias", base)
                return
        if self.ctx.fs.is_file(path):
            self.entries[name] = _Entry(path, "file")

    def _link(self, directory: str, name: str, wanted_by: str, kind: str) -> None:
        path = posixpath.join(directory, name)
        st = self._lstat(path)
        if st is None or unit_kind(name) is None:
            return
        target = st.link_target if st.type is FileType.SYMLINK else None
        self.links.append(EnableLink(name, wanted_by, kind, path, target, Source(path)))

    def index(self) -> None:
        """Links by the unit holding them and by the (canonical) unit they name."""
        self.by_wanted_by: dict[str, list[EnableLink]] = {}
        self.by_unit: dict[str, list[EnableLink]] = {}
        for link in self.links:
            self.by_wanted_by.setdefault(link.wanted_by, []).append(link)
            self.by_unit.setdefault(self.canonical_name(link.unit), []).append(link)

    def file_of(self, name: str) -> str | None:
        """The unit file systemd would load for ``name`` (aliases and templates followed)."""
        current = name
        for _ in range(MAX_ALIAS_HOPS):
            entry = self.entries.get(current)
            if entry is None:
                template, _inst = split_template(current)
                if template is not None and template in self.entries:
                    current = template
                    continue
                return None
            if entry.kind == "mask":
                return None
            if entry.kind == "file":
                return entry.path
            current = entry.target or ""
        return None

    def canonical_name(self, name: str) -> str:
        current = name
        for _ in range(MAX_ALIAS_HOPS):
            entry = self.entries.get(current)
            if entry is None or entry.kind != "alias" or entry.target is None:
                return current
            current = entry.target
        return current

    def parse(self, name: str) -> _Parsed:
        if name in self.parsed:
            return self.parsed[name]
        merged = _Parsed()
        paths: list[str] = []
        path = self.file_of(name)
        if path is not None:
            paths.append(path)
        template, _inst = split_template(name)
        for unit in (template, name):
            if unit is not None:
                paths.extend(v for _k, v in sorted(self.drop_ins.get(unit, {}).items()))
        for p in paths:
            text = read_config(self.ctx, p)
            if text is None:
                continue
            for key, vals in parse_unit_file(text, p, self.malformed).values.items():
                merged.values.setdefault(key, []).extend(vals)
        self.parsed[name] = merged
        return merged

    def dependencies(self, name: str) -> list[str]:
        names = [name, self.canonical_name(name)]
        template, _inst = split_template(name)
        if template is not None:
            names.append(template)
        deps = [link.unit for n in names for link in self.by_wanted_by.get(n, [])]
        parsed = self.parse(name)
        for key in DEP_KEYS:
            for value, _line, _path in parsed.values.get(("Unit", key), []):
                deps.extend(value.split())
        return deps


def _values(parsed: _Parsed, section: str, key: str) -> list[tuple[str, int, str]]:
    """Values of a list-like setting; an empty assignment resets what came before."""
    out: list[tuple[str, int, str]] = []
    for item in parsed.values.get((section, key), []):
        if item[0] == "":
            out = []
        else:
            out.append(item)
    return out


def _last(parsed: _Parsed, section: str, key: str) -> str | None:
    vals = parsed.values.get((section, key), [])
    return vals[-1][0] if vals else None


def _reachable(loader: _Loader, start: str | None) -> set[str]:
    if start is None:
        return set()
    seen: set[str] = set()
    queue = deque([start])
    while queue and len(seen) < MAX_REACH:
        name = queue.popleft()
        if name in seen:
            continue
        seen.add(name)
        canon = loader.canonical_name(name)
        if canon != name:
            queue.append(canon)
        queue.extend(d for d in loader.dependencies(name) if d not in seen)
    if queue:
        loader.ctx.error("services", f"stopped following the default target after {MAX_REACH}")
    return seen


def _unit(loader: _Loader, name: str, reach: set[str]) -> SystemdUnit:
    entry = loader.entries.get(name)
    template, instance = split_template(name)
    kind = unit_kind(name) or ""
    parsed = loader.parse(name)
    canon = loader.canonical_name(name)
    names = {name, canon}
    links = sorted({link.path for n in names for link in loader.by_unit.get(n, [])})
    masked_by = entry.path if entry is not None and entry.kind == "mask" else None
    if masked_by is None and canon != name:
        alias_entry = loader.entries.get(canon)
        if alias_entry is not None and alias_entry.kind == "mask":
            masked_by = alias_entry.path
    listen = tuple(
        SocketListen(key, v, Source(p, line))
        for key in LISTEN_KEYS
        for v, line, p in _values(parsed, "Socket", key)
    )
    accept = _last(parsed, "Socket", "Accept")
    activates = None
    if kind == "socket":
        activates = _last(parsed, "Socket", "Service")
        if activates is None:
            stem = name[: -len(".socket")]
            accepting = (accept or "").lower() in ("yes", "true", "1", "on")
            activates = f"{stem}@.service" if accepting else f"{stem}.service"
    wants = tuple(
        w for key in DEP_KEYS for v, _l, _p in _values(parsed, "Unit", key) for w in v.split()
    )
    wanted_by = tuple(
        w
        for key in ("WantedBy", "RequiredBy", "UpheldBy")
        for v, _l, _p in _values(parsed, "Install", key)
        for w in v.split()
    )
    path = loader.file_of(name)
    drop_ins = tuple(
        p for unit in (template, name) if unit for p in
        (v for _k, v in sorted(loader.drop_ins.get(unit, {}).items()))
    )
    source_path = path or (entry.path if entry else (links[0] if links else name))
    return SystemdUnit(
        name=name,
        kind=kind,
        path=path,
        template=template,
        instance=instance,
        enabled=bool(links),
        enabled_by=tuple(links),
        masked=masked_by is not None,
        masked_by=masked_by,
        in_default_target=name in reach or canon in reach,
        alias_of=canon if canon != name else None,
        exec_start=tuple(v for v, _l, _p in _values(parsed, "Service", "ExecStart")),
        listen=listen,
        accept=accept,
        activates=activates,
        wants=wants,
        wanted_by=wanted_by,
        drop_ins=drop_ins,
        source=Source(source_path),
    )


def collect_systemd(ctx: CollectContext) -> SystemdFacts:
    """Every unit systemd would see in the image, with links, masks and reachability."""
    loader = _Loader(ctx)
    loader.load()
    loader.index()
    default_target: str | None = None
    default_source: Source | None = None
    entry = loader.entries.get("default.target")
    if entry is not None:
        default_source = Source(entry.path)
        default_target = loader.canonical_name("default.target")
    reach = _reachable(loader, default_target)
    names = set(loader.entries) | {link.unit for link in loader.links}
    names |= {n for n in reach if unit_kind(n) is not None}
    units = tuple(_unit(loader, n, reach) for n in sorted(names))
    return SystemdFacts(
        present=loader.present,
        default_target=default_target,
        default_target_source=default_source,
        units=units,
        links=tuple(sorted(loader.links, key=lambda lk: lk.path)),
        malformed=tuple(loader.malformed),
    )
