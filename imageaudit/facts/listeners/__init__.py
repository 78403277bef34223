"""Exposure settings of common network daemons, read from their own configuration files.

Only configuration facts: which address a daemon binds, whether it asks for authentication,
which clients it lets in. A setting missing from the files is absent from the record; what
the daemon then does is documented in :data:`DEFAULT_BIND` for the rules. sshd and samba
have their own collectors; whether a daemon is enabled is a services fact.

One :class:`DaemonConfig` per daemon (per instance for redis and PostgreSQL clusters), with
the files read, the settings in read order with their sources, the daemon's programs found
in the image, and the malformed lines met. ``pg_hba.conf`` records, ntpd ``restrict`` lines
and snmpd communities are typed records of their own.

Follows the manuals named in :mod:`~imageaudit.facts.listeners.nosql`,
:mod:`~imageaudit.facts.listeners.sql`, :mod:`~imageaudit.facts.listeners.net` and
:mod:`~imageaudit.facts.listeners.namedconf`.
"""

from __future__ import annotations

from dataclasses import dataclass

from imageaudit.facts.base import CollectContext, Collector
from imageaudit.facts.listeners.cis import (
    CIS_DEFAULT_BIND,
    CIS_EXECUTABLES,
    CIS_PATTERNS,
    collect_cis,
)
from imageaudit.facts.listeners.model import (
    DEFAULT_BIND,
    DaemonBuilder,
    DaemonConfig,
    HbaEntry,
    NtpRestrict,
    SnmpAccess,
)
from imageaudit.facts.listeners.namedconf import collect_bind
from imageaudit.facts.listeners.net import (
    collect_chrony,
    collect_nfs,
    collect_ntpd,
    collect_rpcbind,
    collect_snmpd,
    collect_tftp,
    collect_vsftpd,
)
from imageaudit.facts.listeners.nosql import (
    collect_elasticsearch,
    collect_memcached,
    collect_mongodb,
    collect_redis,
)
from imageaudit.facts.listeners.remote import (
    NAMED_DEFAULT_BIND,
    NAMED_EXECUTABLES,
    NAMED_PATTERNS,
    collect_named,
)
from imageaudit.facts.listeners.sql import collect_mysql, collect_postgresql

# Where each daemon's programs live; their presence is recorded, never run.
EXECUTABLES: dict[str, tuple[str, ...]] = {
    "redis": ("/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server"),
    "mongodb": ("/usr/bin/mongod", "/usr/local/bin/mongod"),
    "memcached": ("/usr/bin/memcached", "/usr/sbin/memcached"),
    "mysql": ("/usr/sbin/mysqld", "/usr/sbin/mariadbd", "/usr/libexec/mysqld",
              "/usr/libexec/mariadbd", "/usr/bin/mysqld", "/usr/bin/mariadbd"),
    "postgresql": ("/usr/lib/postgresql/*/bin/postgres", "/usr/pgsql-*/bin/postgres",
                   "/usr/bin/postgres", "/usr/libexec/postgresql*/postgres"),
    "elasticsearch": ("/usr/share/elasticsearch/bin/elasticsearch",),
    "vsftpd": ("/usr/sbin/vsftpd",),
    "snmpd": ("/usr/sbin/snmpd",),
    "ntpd": ("/usr/sbin/ntpd",),
    "chrony": ("/usr/sbin/chronyd",),
    "bind": ("/usr/sbin/named",),
    "rpcbind": ("/sbin/rpcbind", "/usr/sbin/rpcbind", "/usr/bin/rpcbind"),
    "nfs": ("/usr/sbin/rpc.nfsd", "/sbin/rpc.nfsd"),
    "tftp": ("/usr/sbin/in.tftpd",),
    "telnetd": ("/usr/sbin/in.telnetd", "/usr/sbin/telnetd", "/usr/libexec/telnetlogin"),
    "rshd": ("/usr/sbin/in.rshd", "/usr/sbin/in.rlogind", "/usr/sbin/in.rexecd"),
    **CIS_EXECUTABLES,
    **NAMED_EXECUTABLES,
}
# The CIS server-services daemons (rsync, squid, dovecot, CUPS, dnsmasq, X, MTAs, web
# servers) document their defaults next to their parsers.
DEFAULT_BIND.update(CIS_DEFAULT_BIND)
# dockerd, kubelet, Jupyter, VNC, slapd, ProFTPD, Pure-FTPd, Samba usershares: see
# :mod:`~imageaudit.facts.listeners.remote`.
DEFAULT_BIND.update(NAMED_DEFAULT_BIND)

__all__ = [
    "COLLECTOR",
    "DEFAULT_BIND",
    "DaemonConfig",
    "HbaEntry",
    "ListenersFacts",
    "NtpRestrict",
    "SnmpAccess",
    "collect",
]


@dataclass(frozen=True, slots=True)
class ListenersFacts:
    daemons: tuple[DaemonConfig, ...]  # sorted by daemon, then instance
    pg_hba: tuple[HbaEntry, ...]
    ntp_restrict: tuple[NtpRestrict, ...]
    snmp_access: tuple[SnmpAccess, ...]

    def get(self, daemon: str) -> tuple[DaemonConfig, ...]:
        """Every record of ``daemon`` (one with ``present=False`` when it has no config)."""
        return tuple(d for d in self.daemons if d.daemon == daemon)


def _executables(ctx: CollectContext, daemon: str) -> tuple[str, ...]:
    found: list[str] = []
    for candidate in EXECUTABLES.get(daemon, ()):
        paths = ctx.fs.glob(candidate) if "*" in candidate else [candidate]
        found.extend(p for p in paths if ctx.fs.is_file(p))
    return tuple(sorted(set(found)))


def collect(ctx: CollectContext) -> ListenersFacts:
    """Configuration facts of every daemon listed in :data:`DEFAULT_BIND`."""
    builders: list[DaemonBuilder] = []
    for simple in (collect_redis, collect_mongodb, collect_memcached, collect_mysql,
                   collect_elasticsearch, collect_vsftpd, collect_chrony, collect_bind,
                   collect_rpcbind, collect_nfs, collect_tftp, collect_cis,
                   collect_named):
        builders.extend(simple(ctx))
    pg, hba = collect_postgresql(ctx)
    snmp, access = collect_snmpd(ctx)
    ntp, restrict = collect_ntpd(ctx)
    builders += pg + snmp + ntp
    builders += [DaemonBuilder("telnetd"), DaemonBuilder("rshd")]
    daemons = sorted(
        (b.build(_executables(ctx, b.daemon)) for b in builders),
        key=lambda d: (d.daemon, d.instance),
    )
    return ListenersFacts(
        daemons=tuple(daemons),
        pg_hba=tuple(hba),
        ntp_restrict=tuple(restrict),
        snmp_access=tuple(access),
    )


COLLECTOR = Collector(
    name="listeners",
    patterns=(
        "/etc/redis/*.conf", "/etc/redis.conf", "/etc/mongod.conf", "/etc/mongodb.conf",
        "/etc/memcached.conf", "/etc/sysconfig/memcached", "/etc/my.cnf", "/etc/my.cnf.d/*",
        "/etc/mysql/*", "/etc/mysql/*/*", "/etc/postgresql/*/*/*.conf",
        "/var/lib/pgsql/data/*.conf", "/etc/elasticsearch/elasticsearch.yml",
        "/etc/vsftpd.conf", "/etc/vsftpd/vsftpd.conf", "/etc/snmp/*.conf", "/etc/ntp.conf",
        "/etc/ntpsec/ntp.conf", "/etc/chrony.conf", "/etc/chrony/*", "/etc/bind/*",
        "/etc/named.conf", "/etc/default/rpcbind", "/etc/sysconfig/rpcbind", "/etc/nfs.conf",
        "/etc/nfs.conf.d/*", "/etc/default/nfs-kernel-server", "/etc/sysconfig/nfs",
        "/etc/default/tftpd-hpa", *CIS_PATTERNS, *NAMED_PATTERNS,
    ),
    collect=collect,
)
