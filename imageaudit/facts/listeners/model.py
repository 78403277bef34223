"""Records of the listeners family (see :mod:`imageaudit.facts.listeners`).

A daemon's setting that is absent from its configuration is simply not among its
``settings``: the collector never fills in defaults. :data:`DEFAULT_BIND` documents what each
daemon listens on when its configuration says nothing, for rules to reference.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from imageaudit.facts.conftext import (
    IncludeGuard,
    MalformedLine,
    Setting,
    numbered_lines,
    strip_comment,
)
from imageaudit.model import Source

# What each daemon binds to when its configuration names no address (upstream defaults of
# the versions Debian 12 / RHEL 9 ship; the rule decides what this means).
DEFAULT_BIND: dict[str, str] = {
    # redis.conf(5)/redis.io: without "bind" Redis listens on all interfaces; protected-mode
    # (default yes since 3.2) then refuses non-loopback clients only when no password is set.
    "redis": "*:6379",
    # mongod --bind_ip: localhost only by default since MongoDB 3.6.
    "mongodb": "127.0.0.1:27017",
    # memcached(1) -l: all interfaces (INADDR_ANY); UDP off by default since 1.5.6.
    "memcached": "0.0.0.0:11211",
    # mysqld/mariadbd bind-address: "*" (all IPv4 and IPv6 interfaces) by default.
    "mysql": "*:3306",
    # postgresql.conf listen_addresses: 'localhost' by default.
    "postgresql": "localhost:5432",
    # elasticsearch network.host: _local_ (loopback) by default.
    "elasticsearch": "_local_:9200",
    # vsftpd.conf(5) listen_address: all interfaces when listen/listen_ipv6 is on.
    "vsftpd": "0.0.0.0:21",
    # snmpd.conf(5) agentAddress: udp:161 on all interfaces.
    "snmpd": "udp:0.0.0.0:161",
    # ntpd: every interface, UDP 123, unless "interface" lines say otherwise.
    "ntpd": "udp:*:123",
    # chrony.conf(5): no NTP server port unless "allow" is given; command port on loopback.
    "chrony": "udp:127.0.0.1:323",
    # named.conf(5) listen-on: all IPv4 interfaces, port 53.
    "bind": "*:53",
    # rpcbind(8): all interfaces, port 111, unless -h names addresses.
    "rpcbind": "*:111",
    # rpc.nfsd(8): all interfaces, port 2049.
    "nfs": "*:2049",
    # in.tftpd(8) (tftpd-hpa): the package default TFTP_ADDRESS is ":69", all interfaces.
    "tftp": "udp:*:69",
    # in.telnetd and in.rshd run from inetd/xinetd/systemd sockets; see the services facts.
    "telnetd": "*:23",
    "rshd": "*:514",
}


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    """The exposure-related configuration of one daemon (or one instance of it)."""

    daemon: str
    instance: str  # "" for a single instance; the main config path for multi-instance daemons
    present: bool  # at least one configuration file was read
    files: tuple[Source, ...]  # configuration files read, includes included, in read order
    settings: tuple[Setting, ...]  # directives in read order (later ones usually win)
    executables: tuple[str, ...]  # the daemon's programs found in the image
    default_bind: str  # DEFAULT_BIND[daemon], repeated here for convenience
    malformed: tuple[MalformedLine, ...]

    def values(self, key: str, section: str | None = None) -> tuple[Setting, ...]:
        """Every setting named ``key`` (optionally only in ``section``), in read order."""
        return tuple(
            s for s in self.settings if s.key == key and (section is None or s.section == section)
        )

    def last(self, key: str, section: str | None = None) -> Setting | None:
        """The last setting named ``key``; ``None`` when absent."""
        found = self.values(key, section)
        return found[-1] if found else None


@dataclass(frozen=True, slots=True)
class HbaEntry:
    """A ``pg_hba.conf`` record: who may connect, from where, and how they authenticate."""

    cluster: str  # the postgresql.conf this file belongs to
    type: str  # local | host | hostssl | hostnossl | hostgssenc | hostnogssenc
    database: str
    user: str
    address: str | None  # None for "local"
    netmask: str | None  # the separate mask column, when used
    method: str  # trust, md5, scram-sha-256, peer, reject, ...
    options: tuple[str, ...]
    source: Source


@dataclass(frozen=True, slots=True)
class NtpRestrict:
    """An ntp.conf ``restrict`` line."""

    address: str  # default | source | an address or host name
    family: str | None  # "-4", "-6" or None
    mask: str | None
    flags: tuple[str, ...]  # noquery, nomodify, limited, kod, ignore, ...
    source: Source


@dataclass(frozen=True, slots=True)
class SnmpAccess:
    """An snmpd.conf community or ``com2sec`` mapping."""

    directive: str  # rocommunity, rwcommunity, rocommunity6, rwcommunity6, com2sec, com2sec6
    community: str
    network: str | None  # the source the community is valid from; None when not given
    security_name: str | None  # com2sec's name
    rest: tuple[str, ...]  # OID / -V view / context
    source: Source


class DaemonBuilder:
    """Collects what one daemon's parser finds, then freezes it into a :class:`DaemonConfig`."""

    def __init__(self, daemon: str, instance: str = "") -> None:
        self.daemon = daemon
        self.instance = instance
        self.files: list[str] = []
        self.settings: list[Setting] = []
        self.malformed: list[MalformedLine] = []

    def add(self, key: str, value: str, source: Source, section: str | None = None) -> None:
        self.settings.append(Setting(key, value, source, section))

    def bad(self, reason: str, text: str, source: Source) -> None:
        self.malformed.append(MalformedLine(reason, text, source))

    def build(self, executables: tuple[str, ...]) -> DaemonConfig:
        return DaemonConfig(
            daemon=self.daemon,
            instance=self.instance,
            present=bool(self.files),
            files=tuple(Source(f) for f in self.files),
            settings=tuple(self.settings),
            executables=executables,
            default_bind=DEFAULT_BIND[self.daemon],
            malformed=tuple(self.malformed),
        )


def config_lines(
    guard: IncludeGuard, out: DaemonBuilder, path: str, depth: int, src: Source | None,
    *, comment: str = "#", inline: bool = False,
) -> Iterator[tuple[Source, str, str]]:
    """``(source, raw, line)`` of each line of a daemon's file that holds something.

    The file is read through ``guard`` (its depth and size bounds; ``src`` names the include
    line) and recorded among ``out``'s files. ``line`` is stripped; a line starting with one
    of the ``comment`` characters is left out, and with ``inline`` a comment is cut wherever
    it starts (no quoting).
    """
    text = guard.read(path, depth, src)
    if text is None:
        return
    out.files.append(path)
    for number, raw in numbered_lines(text):
        line = strip_comment(raw, comment) if inline else raw.strip()
        if not line or line[0] in comment:
            continue
        yield Source(path, number), raw, line
