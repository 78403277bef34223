"""Collector ``os``: which distribution, release and architecture the image carries.

The distribution comes from ``/etc/os-release`` (or ``/usr/lib/os-release`` when the first
is absent); missing fields fall back, in order, to ``/etc/lsb-release``,
``/etc/debian_version``, ``/etc/redhat-release`` and ``/etc/alpine-release``. The
architecture is read from the ELF header of ``/bin/sh`` (or ``/usr/bin/env``) through the
image, else from apk/dpkg/rpm configuration. Each value carries the file and line it came
from; every os-release assignment is kept, and lines that are not assignments are facts.

Specs: os-release(5), lsb_release(1) (``/etc/lsb-release``), elf(5) (``e_ident``,
``e_machine``), dpkg-architecture(1), hostname(5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from imageaudit.facts.base import CollectContext, Collector
from imageaudit.facts.os_sources import (
    ELF_CANDIDATES,
    arch_from_config,
    elf_architecture,
    parse_assignments,
)
from imageaudit.facts.packages.dpkg import parse_stanzas
from imageaudit.facts.textlines import MalformedLine, glibc_lines
from imageaudit.model import Source

OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")
LSB_RELEASE = "/etc/lsb-release"
DEBIAN_VERSION = "/etc/debian_version"
REDHAT_RELEASE = "/etc/redhat-release"
ALPINE_RELEASE = "/etc/alpine-release"
HOSTNAMES = ("/etc/hostname", "/etc/HOSTNAME")
DPKG_STATUS = "/var/lib/dpkg/status"
MAX_BYTES = 64 * 1024

_OS_RELEASE_FIELDS = {
    "ID": "id",
    "ID_LIKE": "id_like",
    "NAME": "name",
    "VERSION": "version",
    "VERSION_ID": "version_id",
    "VERSION_CODENAME": "codename",
    "PRETTY_NAME": "pretty_name",
}
_LSB_FIELDS = {
    "DISTRIB_ID": "id",
    "DISTRIB_RELEASE": "version_id",
    "DISTRIB_CODENAME": "codename",
    "DISTRIB_DESCRIPTION": "pretty_name",
}
_REDHAT_RE = re.compile(r"^(?P<name>.+?)\s+release\s+(?P<version>\S+)(?:\s+\((?P<code>[^)]*)\))?")
_REDHAT_IDS = (
    ("red hat enterprise linux", "rhel"),
    ("centos", "centos"),
    ("fedora", "fedora"),
    ("rocky", "rocky"),
    ("almalinux", "almalinux"),
    ("scientific linux", "scientific"),
    ("oracle linux", "ol"),
    ("amazon linux", "amzn"),
)


@dataclass(frozen=True, slots=True)
class OSValue:
    """One value and the file (and line) it was read from."""

    value: str
    source: Source


@dataclass(frozen=True, slots=True)
class OSReleaseEntry:
    """One ``KEY=value`` assignment of the os-release file, unquoted."""

    key: str
    value: str
    source: Source


@dataclass(frozen=True, slots=True)
class OSFacts:
    """What the image says it is. A value is ``None`` when no file gave it."""

    kind: str
    id: OSValue | None = None
    id_like: OSValue | None = None
    name: OSValue | None = None
    version: OSValue | None = None
    version_id: OSValue | None = None
    codename: OSValue | None = None
    pretty_name: OSValue | None = None
    architecture: OSValue | None = None
    hostname: OSValue | None = None
    os_release_path: str | None = None
    os_release: tuple[OSReleaseEntry, ...] = ()
    release_files: tuple[OSValue, ...] = ()
    malformed: tuple[MalformedLine, ...] = ()

    @property
    def id_like_list(self) -> tuple[str, ...]:
        """``ID_LIKE`` split into distribution ids."""
        return tuple(self.id_like.value.split()) if self.id_like else ()

    def is_like(self, distro: str) -> bool:
        """Whether the image is ``distro`` or says it is like it."""
        return (self.id is not None and self.id.value == distro) or distro in self.id_like_list


def os_value(os_facts: OSFacts | None, name: str) -> str | None:
    """The text of the os facts' field ``name`` (``id``, ``version_id``...), None when unset."""
    value = getattr(getattr(os_facts, name, None), "value", None)
    return value if isinstance(value, str) and value else None


def _first_line(ctx: CollectContext, path: str) -> OSValue | None:
    text = ctx.read_text(path, MAX_BYTES)
    if text is None:
        return None
    for number, line in enumerate(glibc_lines(text), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            return OSValue(line.strip(), Source(path, number))
    return OSValue("", Source(path))


def _assignments(
    ctx: CollectContext,
    path: str,
    fields: dict[str, str],
    into: dict[str, OSValue],
    entries: list[OSReleaseEntry],
    malformed: list[MalformedLine],
) -> bool:
    text = ctx.read_text(path, MAX_BYTES)
    if text is None:
        return False
    for number, key, value, problem, raw in parse_assignments(text):
        source = Source(path, number)
        if problem:
            malformed.append(MalformedLine(source, problem, raw))
        if key is None:
            continue
        if path in OS_RELEASE:
            entries.append(OSReleaseEntry(key, value, source))
        name = fields.get(key)
        if name and name not in into:
            into[name] = OSValue(value, source)
    return True


def _redhat(release: OSValue) -> dict[str, OSValue]:
    match = _REDHAT_RE.match(release.value)
    if not match:
        return {"pretty_name": release}
    lowered = match.group("name").lower()
    ident = next((i for prefix, i in _REDHAT_IDS if lowered.startswith(prefix)), None)
    found = {
        "name": OSValue(match.group("name"), release.source),
        "version_id": OSValue(match.group("version"), release.source),
        "pretty_name": release,
        "id": OSValue(ident or lowered.split()[0], release.source),
    }
    if match.group("code"):
        found["codename"] = OSValue(match.group("code"), release.source)
    return found


def _architecture(ctx: CollectContext) -> OSValue | None:
    for path in ELF_CANDIDATES:
        result = ctx.read(path, 64)
        if result is not None:
            arch = elf_architecture(result.data)
            if arch:
                return OSValue(arch, Source(path))
    for path in ("/etc/apk/arch", "/var/lib/dpkg/arch", "/etc/rpm/platform"):
        line = _first_line(ctx, path)
        if line is not None and line.value:
            return OSValue(arch_from_config(path, line.value), line.source)
    status = ctx.read(DPKG_STATUS, 64 * 1024 * 1024)
    if status is not None:
        stanzas, _ = parse_stanzas(status.text(), DPKG_STATUS)
        for stanza in stanzas:
            if stanza.fields.get("Package") == "dpkg" and stanza.fields.get("Architecture"):
                arch = arch_from_config(DPKG_STATUS, stanza.fields["Architecture"])
                return OSValue(arch, Source(DPKG_STATUS, stanza.line))
    return None


def collect(ctx: CollectContext) -> OSFacts:
    """Read the distribution identity, architecture and hostname of the image."""
    values: dict[str, OSValue] = {}
    entries: list[OSReleaseEntry] = []
    malformed: list[MalformedLine] = []
    os_release_path = None
    for path in OS_RELEASE:
        if _assignments(ctx, path, _OS_RELEASE_FIELDS, values, entries, malformed):
            os_release_path = path
            break
    _assignments(ctx, LSB_RELEASE, _LSB_FIELDS, values, [], malformed)
    release_files: list[OSValue] = []
    for path in (DEBIAN_VERSION, REDHAT_RELEASE, ALPINE_RELEASE):
        line = _first_line(ctx, path)
        if line is None:
            continue
        release_files.append(line)
        if path == REDHAT_RELEASE:
            found = _redhat(line)
        else:
            ident = "debian" if path == DEBIAN_VERSION else "alpine"
            found = {"id": OSValue(ident, line.source), "version_id": line}
        for name, value in found.items():
            values.setdefault(name, value)
    hostname = None
    for path in HOSTNAMES:
        hostname = _first_line(ctx, path)
        if hostname is not None:
            break
    return OSFacts(
        kind=ctx.fs.info.kind,
        id=values.get("id"),
        id_like=values.get("id_like"),
        name=values.get("name"),
        version=values.get("version"),
        version_id=values.get("version_id"),
        codename=values.get("codename"),
        pretty_name=values.get("pretty_name"),
        architecture=_architecture(ctx),
        hostname=hostname,
        os_release_path=os_release_path,
        os_release=tuple(entries),
        release_files=tuple(release_files),
        malformed=tuple(malformed),
    )


COLLECTOR = Collector(
    name="os",
    patterns=(
        *OS_RELEASE,
        LSB_RELEASE,
        DEBIAN_VERSION,
        REDHAT_RELEASE,
        ALPINE_RELEASE,
        *HOSTNAMES,
        *ELF_CANDIDATES,
        "/etc/apk/arch",
        "/var/lib/dpkg/arch",
        "/etc/rpm/platform",
    ),
    collect=collect,
)
