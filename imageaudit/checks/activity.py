"""Whether a network service runs in the image: enablement for VMs, the command for containers.

Shared by the ``service`` and ``export`` check types. A service is known by a
:class:`ServiceIdentity` (its unit/script names, its inetd service names, its programs).

- VM and directory images: the service is *active* when an init mechanism enables it
  (``Facts.services.enabled``). An inetd/xinetd entry counts only when the super-server itself
  is enabled: the entry alone starts nothing.
- Container images have no init system. The image configuration's entrypoint and command
  (``Facts.image.details``) say what runs: the service is active when they name one of its
  programs (``redis-server``, ``mongod``...). When they start an init (``/sbin/init``,
  ``systemd``) enablement is used as for a VM. When they start a process supervisor
  (``supervisord``, s6 ``/init``, runit) or the image records no command at all, we cannot
  know what will run, so *installed and configured* counts: the daemon's program is present.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from imageaudit.findings import code
from imageaudit.model import Source


@dataclass(frozen=True, slots=True)
class ServiceIdentity:
    """How one service is named by init systems, inetd and on disk."""

    label: str  # for messages: "telnet", "Redis"
    names: tuple[str, ...]  # unit/script names; "name@inst" and "name-15" match "name"
    inetd_names: tuple[str, ...] = ()  # inetd.conf/xinetd service names (from /etc/services)
    programs: tuple[str, ...] = ()  # program basenames (inetd server, container command)
    daemon: str | None = None  # the listeners daemon whose ``executables`` are its programs


SERVICES: dict[str, ServiceIdentity] = {
    "telnet": ServiceIdentity("telnet", ("telnet", "telnetd", "inetutils-telnetd"),
                              ("telnet",), ("in.telnetd", "telnetd"), "telnetd"),
    "rsh": ServiceIdentity("rsh", ("rsh",), ("shell", "rsh"), ("in.rshd", "rshd"), "rshd"),
    "rlogin": ServiceIdentity("rlogin", ("rlogin",), ("login", "rlogin"),
                              ("in.rlogind", "rlogind"), "rshd"),
    "rexec": ServiceIdentity("rexec", ("rexec",), ("exec", "rexec"), ("in.rexecd", "rexecd"),
                             "rshd"),
    "tftp": ServiceIdentity("TFTP", ("tftpd-hpa", "tftp", "tftpd", "atftpd"), ("tftp",),
                            ("in.tftpd", "tftpd", "atftpd"), "tftp"),
    "vsftpd": ServiceIdentity("vsftpd", ("vsftpd",), (), ("vsftpd",), "vsftpd"),
    "snmpd": ServiceIdentity("snmpd", ("snmpd",), (), ("snmpd",), "snmpd"),
    "ntpd": ServiceIdentity("ntpd", ("ntp", "ntpd", "ntpsec"), (), ("ntpd",), "ntpd"),
    "bind": ServiceIdentity("BIND named", ("named", "bind9", "named-chroot"), (), ("named",),
                            "bind"),
    "rpcbind": ServiceIdentity("rpcbind", ("rpcbind", "portmap"), (), ("rpcbind", "portmap"),
                               "rpcbind"),
    "nfs": ServiceIdentity("The NFS server", ("nfs-server", "nfs-kernel-server", "nfsserver",
                                              "nfs"), (), ("rpc.nfsd",), "nfs"),
    "samba": ServiceIdentity("Samba", ("smbd", "smb", "samba", "samba-ad-dc"), (),
                             ("smbd", "samba")),
    "redis": ServiceIdentity("Redis", ("redis-server", "redis"), (), ("redis-server",), "redis"),
    "mongodb": ServiceIdentity("MongoDB", ("mongod", "mongodb"), (), ("mongod",), "mongodb"),
    "memcached": ServiceIdentity("memcached", ("memcached",), (), ("memcached",), "memcached"),
    "elasticsearch": ServiceIdentity("Elasticsearch", ("elasticsearch",), (),
                                     ("elasticsearch", "eswrapper"), "elasticsearch"),
    "mysql": ServiceIdentity("MySQL/MariaDB", ("mysql", "mysqld", "mariadb"), (),
                             ("mysqld", "mariadbd", "mysqld_safe", "mariadbd-safe"), "mysql"),
    "postgresql": ServiceIdentity("PostgreSQL", ("postgresql",), (),
                                  ("postgres", "postmaster", "pg_ctl", "pg_ctlcluster"),
                                  "postgresql"),
    # The CIS server services judged on their own settings (checks/services_cis.py).
    "rsync": ServiceIdentity("the rsync daemon", ("rsync", "rsyncd"), ("rsync",), ("rsync",),
                             "rsync"),
    "squid": ServiceIdentity("squid", ("squid", "squid3"), (), ("squid",), "squid"),
    "dovecot": ServiceIdentity("dovecot", ("dovecot",), (), ("dovecot",), "dovecot"),
    "cyrus": ServiceIdentity("Cyrus IMAP", ("cyrus-imapd", "cyrus"), (),
                             ("cyrmaster", "master"), "cyrus"),
    "cups": ServiceIdentity("CUPS", ("cups", "cupsd", "org.cups.cupsd"), (), ("cupsd",),
                            "cups"),
    "dnsmasq": ServiceIdentity("dnsmasq", ("dnsmasq",), (), ("dnsmasq",), "dnsmasq"),
    "postfix": ServiceIdentity("postfix", ("postfix",), (), ("postfix",), "postfix"),
    "exim4": ServiceIdentity("exim", ("exim4", "exim"), (), ("exim4", "exim"), "exim4"),
    "sendmail": ServiceIdentity("sendmail", ("sendmail",), (), ("sendmail", "sendmail-mta"),
                                "sendmail"),
    "apache": ServiceIdentity("Apache httpd", ("apache2", "httpd", "apache-htcacheclean"), (),
                              ("apache2", "httpd", "apache2ctl", "httpd-foreground"),
                              "apache"),
    "nginx": ServiceIdentity("nginx", ("nginx",), (), ("nginx",), "nginx"),
    "lighttpd": ServiceIdentity("lighttpd", ("lighttpd",), (), ("lighttpd",), "lighttpd"),
    # The named daemons of cloud images (checks/exposure_daemons.py, exposure_desktop.py,
    # exposure_shares.py).
    "docker": ServiceIdentity("dockerd", ("docker",), (), ("dockerd",), "dockerd"),
    "kubelet": ServiceIdentity("kubelet", ("kubelet",), (), ("kubelet",), "kubelet"),
    "jupyter": ServiceIdentity(
        "Jupyter", ("jupyter", "jupyterlab", "jupyter-notebook", "jupyter-lab", "jupyter-server",
                    "notebook"), (),
        ("jupyter", "jupyter-notebook", "jupyter-lab", "jupyter-server", "start-notebook.sh",
         "start-notebook.py", "start-singleuser.sh", "start-singleuser.py"), "jupyter"),
    "vnc": ServiceIdentity(
        "A VNC server", ("x11vnc", "x0vncserver", "vncserver", "tigervncserver", "xvnc",
                         "vncserver-x11-serviced"), (),
        ("x11vnc", "Xvnc", "Xtigervnc", "vncserver", "tigervncserver", "x0vncserver",
         "x0tigervncserver"), "vnc"),
    "slapd": ServiceIdentity("slapd", ("slapd",), (), ("slapd",), "slapd"),
    "proftpd": ServiceIdentity("ProFTPD", ("proftpd",), (), ("proftpd", "in.proftpd"),
                               "proftpd"),
    "pureftpd": ServiceIdentity("Pure-FTPd", ("pure-ftpd", "pure-ftpd-mysql", "pure-ftpd-ldap",
                                              "pure-ftpd-postgresql"), (),
                                ("pure-ftpd", "pure-ftpd-wrapper"), "pure-ftpd"),
}

SUPER_SERVERS: dict[str, ServiceIdentity] = {
    "inetd": ServiceIdentity("inetd", ("inetd", "openbsd-inetd", "inetutils-inetd"), (),
                             ("inetd", "inetutils-inetd")),
    "xinetd": ServiceIdentity("xinetd", ("xinetd",), (), ("xinetd",)),
}
INIT_PROGRAMS = frozenset({"init", "systemd"})
# "/init" is s6-overlay's entrypoint; the others are process supervisors.
SUPERVISORS = frozenset({"supervisord", "s6-svscan", "runsvdir", "runit", "runsv", "monit"})


@dataclass(frozen=True, slots=True)
class Activity:
    """Why we believe a service runs: a sentence fragment and where it was seen."""

    how: str
    source: Source | None
    mechanism: str  # systemd | sysv | openrc | inetd | xinetd | container
    unit: str = ""  # the enabled unit, script, inetd server, or the container program


def name_matches(name: str, names: Iterable[str]) -> bool:
    """``name`` is one of ``names``, an instance ``n@x`` of one, or a versioned ``n-15``."""
    for n in names:
        if name == n or name.startswith(n + "@") or re.fullmatch(re.escape(n) + r"-\d+(\.\d+)?",
                                                                name):
            return True
    return False


def _enabled_how(svc: Any) -> str:
    where = f" ({svc.source})"
    if svc.mechanism == "systemd":
        return f"systemd unit {code(svc.unit)} is enabled{where}"
    if svc.mechanism == "sysv":
        return f"init script {code(svc.unit)} starts in {svc.detail}{where}"
    if svc.mechanism == "openrc":
        return f"OpenRC service {code(svc.unit)} is in {svc.detail}{where}"
    return f"{svc.mechanism} runs {code(svc.unit)} as {code(svc.name)}{where}"


def _matches(svc: Any, ident: ServiceIdentity) -> bool:
    if svc.mechanism in ("inetd", "xinetd"):
        return (svc.name in ident.inetd_names or svc.name in ident.names
                or posixpath.basename(svc.unit) in ident.programs)
    return name_matches(svc.name, ident.names)


def enabled_activity(services: Any, ident: ServiceIdentity) -> list[Activity]:
    """Init-system enablement of ``ident``; inetd entries only with their super-server."""
    out: list[Activity] = []
    supers = {
        mech: any(name_matches(s.name, sup.names) for s in services.enabled
                  if s.mechanism not in ("inetd", "xinetd"))
        for mech, sup in SUPER_SERVERS.items()
    }
    for svc in services.enabled:
        if not _matches(svc, ident):
            continue
        if svc.mechanism in supers and not supers[svc.mechanism]:
            continue  # the entry is there but nothing starts the super-server
        out.append(Activity(_enabled_how(svc), svc.source, svc.mechanism, svc.unit))
    return out


def container_command(details: dict[str, Any]) -> list[str] | None:
    """Entrypoint then command of a container image as words; ``None`` when neither is set."""
    parts: list[str] = []
    found = False
    for key in ("entrypoint", "cmd"):
        value = details.get(key)
        if isinstance(value, list):
            found = True
            for item in value:
                if not isinstance(item, str):
                    continue
                try:
                    parts.extend(shlex.split(item))  # "sh -c 'redis-server /etc/x'" forms
                except ValueError:
                    parts.extend(item.split())
    return parts if found else None


def _command_text(words: list[str]) -> str:
    return " ".join(words)[:200]


def active(facts: Any, ident: ServiceIdentity) -> list[Activity]:
    """Every reason to believe ``ident`` runs when the image boots or the container starts.

    Needs ``facts.services`` (the caller declares it); ``facts.listeners`` is used for the
    installed-program fallback of containers and may be absent.
    """
    if facts.image.kind != "container":
        return enabled_activity(facts.services, ident)
    words = container_command(facts.image.details)
    if words is not None:
        bases = {posixpath.basename(w) for w in words}
        if bases & INIT_PROGRAMS and "/init" not in words:
            return enabled_activity(facts.services, ident)
        ran = sorted(bases & set(ident.programs))
        if ran:
            return [Activity(f"the container's command {code(_command_text(words))} runs "
                             f"{code(ran[0])}", None, "container", ran[0])]
        for mech, sup in SUPER_SERVERS.items():
            if bases & set(sup.programs):
                return [
                    Activity(f"the container's command runs {mech}, which runs "
                             f"{code(s.unit)} as {code(s.name)} ({s.source})", s.source, mech,
                             s.unit)
                    for s in facts.services.enabled if s.mechanism == mech and _matches(s, ident)
                ]
        if not (bases & SUPERVISORS or "/init" in words):
            return []
        why = f"the container's command {code(_command_text(words))} starts a process supervisor"
    else:
        why = "the image records no entrypoint or command"
    return installed_activity(facts, ident, why)


def installed_activity(facts: Any, ident: ServiceIdentity, why: str) -> list[Activity]:
    """Containers whose command we cannot read: the daemon counts when it is installed."""
    programs: tuple[str, ...] = ()
    listeners = getattr(facts, "listeners", None)
    if ident.daemon is not None and listeners is not None:
        programs = tuple(p for d in listeners.get(ident.daemon) for p in d.executables
                         if posixpath.basename(p) in ident.programs)
    out = [Activity(f"{code(p)} is installed and {why}", Source(p), "container", p)
           for p in sorted(set(programs))]
    if not out:
        out = [
            Activity(f"{s.mechanism} would run {code(s.unit)} as {code(s.name)} ({s.source}) "
                     f"and {why}", s.source, s.mechanism, s.unit)
            for s in facts.services.enabled if _matches(s, ident)
        ]
    return out


def describe(acts: list[Activity]) -> str:
    """The reasons, joined for a message."""
    return "; ".join(a.how for a in acts)


__all__ = [
    "SERVICES",
    "Activity",
    "ServiceIdentity",
    "active",
    "container_command",
    "describe",
    "enabled_activity",
    "name_matches",
]
