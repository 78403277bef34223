"""inetd (``/etc/inetd.conf``) and xinetd (``/etc/xinetd.conf``, ``/etc/xinetd.d/*``).

Helpers for :mod:`imageaudit.facts.services`. A commented-out inetd entry (``#telnet ...``
or update-inetd's ``#<off># telnet ...``) is recorded as a *disabled* entry, not dropped.
An xinetd block left open at the end of a file is recorded (``complete=False``) and reported.

Follows inetd.conf(5) (openbsd-inetd, inetutils-inetd), update-inetd(8) and xinetd.conf(5).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from imageaudit.facts.base import CollectContext
from imageaudit.facts.conftext import (
    IncludeGuard,
    MalformedLine,
    Setting,
    join_path,
    numbered_lines,
    read_config,
    readable_or_broken,
)
from imageaudit.imagefs import ImageFSError
from imageaudit.model import Source

INETD_CONF = "/etc/inetd.conf"
XINETD_CONF = "/etc/xinetd.conf"
SOCKET_TYPES = frozenset({"stream", "dgram", "raw", "rdm", "seqpacket"})
XINETD_OPS = ("+=", "-=", "=")


@dataclass(frozen=True, slots=True)
class InetdEntry:
    service: str
    socket_type: str
    protocol: str
    wait: str
    user: str
    server: str
    args: tuple[str, ...]
    enabled: bool  # False for a commented-out entry
    source: Source


@dataclass(frozen=True, slots=True)
class InetdFacts:
    present: bool  # /etc/inetd.conf exists
    entries: tuple[InetdEntry, ...]
    malformed: tuple[MalformedLine, ...]


@dataclass(frozen=True, slots=True)
class XinetdService:
    name: str
    disable: str | None  # the ``disable`` value as written; None when absent
    server: str | None
    only_from: tuple[str, ...]
    bind: str | None
    socket_type: str | None
    protocol: str | None
    user: str | None
    port: str | None
    attributes: tuple[Setting, ...]  # every line of the block, operator kept in the value
    complete: bool  # the closing brace was found
    source: Source


@dataclass(frozen=True, slots=True)
class XinetdFacts:
    present: bool
    files: tuple[str, ...]
    defaults: tuple[Setting, ...]
    services: tuple[XinetdService, ...]
    malformed: tuple[MalformedLine, ...]


def _inetd_fields(line: str) -> list[str] | None:
    fields = line.split()
    if len(fields) < 6 or fields[1] not in SOCKET_TYPES:
        return None
    return fields


def _entry(fields: list[str], enabled: bool, source: Source) -> InetdEntry:
    return InetdEntry(
        service=fields[0],
        socket_type=fields[1],
        protocol=fields[2],
        wait=fields[3],
        user=fields[4],
        server=fields[5],
        args=tuple(fields[6:]),
        enabled=enabled,
        source=source,
    )


def collect_inetd(ctx: CollectContext) -> InetdFacts:
    """Active and commented-out entries of ``/etc/inetd.conf``."""
    text = read_config(ctx, INETD_CONF)
    if text is None:
        return InetdFacts(present=False, entries=(), malformed=())
    entries: list[InetdEntry] = []
    malformed: list[MalformedLine] = []
    for number, raw in numbered_lines(text):
        line = raw.strip()
        source = Source(INETD_CONF, number)
        if not line:
            continue
        if line.startswith("#"):
            body = line.lstrip("#").strip()
            if body.startswith("<off>#"):
                body = body[len("<off>#") :].strip()
            fields = _inetd_fields(body)
            if fields is not None:
                entries.append(_entry(fields, False, source))
            continue
        fields = _inetd_fields(line)
        if fields is None:
            malformed.append(MalformedLine("not an inetd.conf entry", raw, source))
            continue
        entries.append(_entry(fields, True, source))
    return InetdFacts(present=True, entries=tuple(entries), malformed=tuple(malformed))


class _XinetdParser:
    def __init__(self, ctx: CollectContext) -> None:
        self.guard = IncludeGuard(ctx, "services")
        self.ctx = ctx
        self.defaults: list[Setting] = []
        self.services: list[XinetdService] = []

    def parse_file(self, path: str, depth: int, source: Source | None) -> None:
        text = self.guard.read(path, depth, source)
        if text is None:
            return
        header: tuple[str, Source] | None = None  # "defaults" or "service NAME"
        block: list[Setting] | None = None
        for number, raw in numbered_lines(text):
            line = raw.split("#", 1)[0].strip()
            src = Source(path, number)
            if not line:
                continue
            if block is not None:
                if line == "}":
                    self._close(header, block, True)
                    header, block = None, None
                else:
                    self._attribute(line, raw, src, block)
                continue
            words = line.split()
            if line == "{" or (len(words) > 1 and words[-1] == "{"):
                if len(words) > 1:
                    header = (" ".join(words[:-1]), src)
                if header is None:
                    self.guard.malformed.append(MalformedLine("'{' without a header", raw, src))
                    header = ("", src)
                block = []
                continue
            if words[0] in ("includedir", "includefile") and len(words) == 2:
                self._include(words[0], join_path(posixpath.dirname(path), words[1]), depth, src)
                continue
            if words[0] in ("service", "defaults"):
                if header is not None:
                    self.guard.malformed.append(
                        MalformedLine("header without a block", header[0], header[1])
                    )
                header = (line, src)
                continue
            self.guard.malformed.append(MalformedLine("unexpected line", raw, src))
        if block is not None:
            self.guard.malformed.append(
                MalformedLine("block not closed at end of file", header[0] if header else "",
                              header[1] if header else Source(path))
            )
            self._close(header, block, False)

    def _include(self, kind: str, target: str, depth: int, src: Source) -> None:
        if kind == "includefile":
            self.parse_file(target, depth + 1, src)
            return
        try:
            names = self.ctx.fs.listdir(target)
        except ImageFSError:
            return
        for name in names:
            # xinetd skips names holding a dot or ending in '~' (editor and package backups)
            if "." in name or name.endswith("~"):
                continue
            child = posixpath.join(target, name)
            if readable_or_broken(self.ctx, child):
                self.parse_file(child, depth + 1, src)

    def _attribute(self, line: str, raw: str, src: Source, block: list[Setting]) -> None:
        for op in XINETD_OPS:
            key, sep, value = line.partition(op)
            if sep and key.strip() and " " not in key.strip():
                value = value.strip() if op == "=" else f"{op} {value.strip()}"
                block.append(Setting(key.strip(), value, src))
                return
        self.guard.malformed.append(MalformedLine("not 'attribute = value'", raw, src))

    def _close(self, header: tuple[str, Source] | None, block: list[Setting], done: bool) -> None:
        if header is None:
            return
        words = header[0].split()
        if words and words[0] == "defaults":
            self.defaults.extend(block)
            return
        name = words[1] if len(words) > 1 else ""

        def last(key: str) -> str | None:
            vals = [s.value for s in block if s.key == key]
            return vals[-1] if vals else None

        only_from = tuple(
            w for s in block if s.key == "only_from" for w in s.value.split() if w not in "+=-="
        )
        self.services.append(
            XinetdService(
                name=name,
                disable=last("disable"),
                server=last("server"),
                only_from=only_from,
                bind=last("bind") or last("interface"),
                socket_type=last("socket_type"),
                protocol=last("protocol"),
                user=last("user"),
                port=last("port"),
                attributes=tuple(block),
                complete=done,
                source=header[1],
            )
        )


def collect_xinetd(ctx: CollectContext) -> XinetdFacts:
    """``defaults`` and ``service`` blocks from xinetd.conf and what it includes."""
    parser = _XinetdParser(ctx)
    parser.parse_file(XINETD_CONF, 0, None)
    return XinetdFacts(
        present=bool(parser.guard.files),
        files=tuple(parser.guard.files),
        defaults=tuple(parser.defaults),
        services=tuple(parser.services),
        malformed=tuple(parser.guard.malformed),
    )


def xinetd_enabled(facts: XinetdFacts, service: XinetdService) -> bool:
    """xinetd's own reading: ``disable = yes`` or the ``defaults`` lists switch a service off."""
    if (service.disable or "").lower() == "yes":
        return False
    disabled = {w for s in facts.defaults if s.key == "disabled" for w in s.value.split()}
    enabled = [w for s in facts.defaults if s.key == "enabled" for w in s.value.split()]
    if service.name in disabled:
        return False
    return not enabled or service.name in enabled
