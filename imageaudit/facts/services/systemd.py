"""systemd unit files, enablement links, masks and what the default target pulls in.

Helpers for :mod:`imageaudit.facts.services`. Only links count as enablement: ``WantedBy=`` in
an ``[Install]`` section is recorded as information, never as "enabled". The set of units
pulled in by the default target is computed from ``.wants``/``.requires``/``.upholds``
directories and ``Wants=``/``Requires=``/``Upholds=`` lines (drop-ins included), bounded.
Unit files are parsed by :mod:`.systemd_units`; the unit directories are walked by
:mod:`.systemd_loader`.

Follows systemd.unit(5) (unit search path, aliases, drop-ins, templates, masking),
systemd.socket(5) (``Listen*=``, ``Accept=``, ``Service=``), systemd.service(5)
(``ExecStart=`` reset by an empty assignment) and systemd.special(7) (``default.target``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from imageaudit.facts.base import CollectContext
from imageaudit.facts.conftext import MalformedLine
from imageaudit.facts.masking import shown_masked
from imageaudit.facts.services.systemd_loader import EnableLink, UnitLoader
from imageaudit.facts.services.systemd_units import (
    DEP_KEYS,
    last_value,
    list_values,
    split_template,
    unit_kind,
)
from imageaudit.model import Source

__all__ = [
    "EnableLink",
    "SocketListen",
    "SystemdFacts",
    "SystemdUnit",
    "collect_systemd",
]

LISTEN_KEYS = (
    "ListenStream", "ListenDatagram", "ListenSequentialPacket", "ListenFIFO",
    "ListenNetlink", "ListenSpecial", "ListenMessageQueue", "ListenUSBFunction",
)
MAX_REACH = 5_000  # units visited from the default target


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
    exec_start: tuple[str, ...] = field(metadata={"shown": shown_masked})  # written out masked
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


def _reachable(loader: UnitLoader, start: str | None) -> set[str]:
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


def _unit(loader: UnitLoader, name: str, reach: set[str]) -> SystemdUnit:
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
        for v, line, p in list_values(parsed, "Socket", key)
    )
    accept = last_value(parsed, "Socket", "Accept")
    activates = None
    if kind == "socket":
        activates = last_value(parsed, "Socket", "Service")
        if activates is None:
            stem = name[: -len(".socket")]
            accepting = (accept or "").lower() in ("yes", "true", "1", "on")
            activates = f"{stem}@.service" if accepting else f"{stem}.service"
    wants = tuple(
        w for key in DEP_KEYS for v, _l, _p in list_values(parsed, "Unit", key) for w in v.split()
    )
    wanted_by = tuple(
        w
        for key in ("WantedBy", "RequiredBy", "UpheldBy")
        for v, _l, _p in list_values(parsed, "Install", key)
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
        exec_start=tuple(v for v, _l, _p in list_values(parsed, "Service", "ExecStart")),
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
    loader = UnitLoader(ctx)
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
