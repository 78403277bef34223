"""firewalld: the default zone and the zone files it names (firewall helpers).

Zone XML is parsed with expat directly and any document type declaration is refused, so no
entity (internal or external) is ever expanded. ``/etc/firewalld/zones/NAME.xml`` overrides
``/usr/lib/firewalld/zones/NAME.xml``.

Follows firewalld.conf(5) (``DefaultZone``, default ``public``) and firewalld.zone(5)
(``target``: ``default``, ``ACCEPT``, ``DROP``, ``%%REJECT%%``).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from xml.parsers import expat

from imageaudit.facts.base import CollectContext
from imageaudit.facts.conftext import (
    MalformedLine,
    glob_files,
    read_config,
    strip_comment,
    universal_lines,
)
from imageaudit.model import Source

FIREWALLD_CONF = "/etc/firewalld/firewalld.conf"
ZONE_DIRS = ("/etc/firewalld/zones", "/usr/lib/firewalld/zones")
ZONE_LIMIT = 256 * 1024
MAX_ELEMENTS = 10_000


@dataclass(frozen=True, slots=True)
class FirewalldZone:
    name: str
    target: str | None  # the attribute as written; None when absent (firewalld: "default")
    services: tuple[str, ...]
    ports: tuple[str, ...]  # "22/tcp"
    sources: tuple[str, ...]
    interfaces: tuple[str, ...]
    rich_rules: int
    forward_ports: int
    source: Source


@dataclass(frozen=True, slots=True)
class FirewalldFacts:
    present: bool  # firewalld.conf or a zone directory exists
    default_zone: str | None  # as written in firewalld.conf; None when absent
    default_zone_source: Source | None
    zones: tuple[FirewalldZone, ...]
    malformed: tuple[MalformedLine, ...]


class _RefusedXML(Exception):
    pass


def parse_zone(data: bytes, path: str, name: str) -> FirewalldZone:
    """A zone file's elements; raises ``ValueError`` on bad or refused XML."""
    parser = expat.ParserCreate()
    attrs: dict[str, list[dict[str, str]]] = {}
    depth = [0]
    root: list[dict[str, str]] = []
    count = [0]

    def refuse(*_args: object) -> None:
        raise _RefusedXML("document type declarations are refused")

    def start(tag: str, attributes: dict[str, str]) -> None:
        count[0] += 1
        if count[0] > MAX_ELEMENTS:
            raise _RefusedXML(f"more than {MAX_ELEMENTS} elements")
        if depth[0] == 0:
            root.append(attributes)
        elif depth[0] == 1:
            attrs.setdefault(tag, []).append(attributes)
        depth[0] += 1

    def end(_tag: str) -> None:
        depth[0] -= 1

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = lambda *a: 0
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except (expat.ExpatError, _RefusedXML) as exc:
        raise ValueError(str(exc)) from exc

    def names(tag: str, key: str) -> tuple[str, ...]:
        return tuple(a.get(key, "") for a in attrs.get(tag, []))

    ports = tuple(f"{a.get('port', '')}/{a.get('protocol', '')}" for a in attrs.get("port", []))
    return FirewalldZone(
        name=name,
        target=root[0].get("target") if root else None,
        services=names("service", "name"),
        ports=ports,
        sources=tuple(a.get("address") or a.get("ipset") or a.get("mac") or ""
                      for a in attrs.get("source", [])),
        interfaces=names("interface", "name"),
        rich_rules=len(attrs.get("rule", [])),
        forward_ports=len(attrs.get("forward-port", [])),
        source=Source(path),
    )


def collect_firewalld(ctx: CollectContext) -> FirewalldFacts:
    """DefaultZone and every zone file (``/etc`` overriding ``/usr/lib``)."""
    malformed: list[MalformedLine] = []
    default: str | None = None
    default_source: Source | None = None
    text = read_config(ctx, FIREWALLD_CONF)
    # firewalld is Python: it reads its conf in text mode, where CR ends a line too.
    for number, raw in enumerate(universal_lines(text or ""), start=1):
        line = strip_comment(raw)
        key, sep, value = line.partition("=")
        if line and not sep:
            malformed.append(MalformedLine("not KEY=value", raw, Source(FIREWALLD_CONF, number)))
        elif key.strip() == "DefaultZone":
            default, default_source = value.strip(), Source(FIREWALLD_CONF, number)
    chosen: dict[str, str] = {}
    for directory in ZONE_DIRS:
        for path in glob_files(ctx, posixpath.join(directory, "*.xml")):
            chosen.setdefault(posixpath.basename(path)[:-4], path)
    zones = []
    for name, path in sorted(chosen.items()):
        result = ctx.read(path, ZONE_LIMIT)
        if result is None:
            continue
        if result.truncated:
            malformed.append(MalformedLine(f"larger than {ZONE_LIMIT} bytes", "", Source(path)))
            continue
        try:
            zones.append(parse_zone(result.data, path, name))
        except ValueError as exc:
            malformed.append(MalformedLine(f"zone not parsed: {exc}", "", Source(path)))
    present = text is not None or any(ctx.fs.is_dir(d) for d in ZONE_DIRS)
    return FirewalldFacts(present, default, default_source, tuple(zones), tuple(malformed))
