"""Exposure settings of vsftpd, snmpd, ntpd, chrony, rpcbind, the NFS server and tftpd-hpa.

Directive keys are recorded lower-cased where the daemon compares them without case
(net-snmp, ntpd, chrony); shell-style files keep their variable names, and option strings in
them (``OPTIONS``, ``TFTP_OPTIONS``, ``RPCNFSDOPTS``...) are also split into one setting per
option (``-h``, ``--create``), keyed by the option as written.

Follows vsftpd.conf(5), snmpd.conf(5) (``rocommunity``, ``com2sec``, ``agentAddress``,
``includeFile``/``includeDir``), ntp.conf(5) and ntp_acc(5) (``restrict``), chrony.conf(5)
(``allow``, ``cmdallow``, ``bindcmdaddress``, ``include``, ``confdir``), rpcbind(8),
nfs.conf(5), rpc.nfsd(8), and in.tftpd(8) with Debian's ``/etc/default/tftpd-hpa``.
"""

from __future__ import annotations

import posixpath

from imageaudit.facts.base import CollectContext
from imageaudit.facts.conftext import (
    IncludeGuard,
    glob_files,
    join_path,
    numbered_lines,
    parse_options,
    parse_shell_vars,
    read_config,
    split_words,
    strip_comment,
)
from imageaudit.facts.listeners.model import DaemonBuilder, NtpRestrict, SnmpAccess, config_lines
from imageaudit.model import Source

VSFTPD_FILES = ("/etc/vsftpd.conf", "/etc/vsftpd/vsftpd.conf")
SNMPD_FILES = ("/etc/snmp/snmpd.conf", "/etc/snmp/snmpd.local.conf")
NTP_FILES = ("/etc/ntp.conf", "/etc/ntpsec/ntp.conf")
CHRONY_FILES = ("/etc/chrony.conf", "/etc/chrony/chrony.conf")
COMMUNITY_DIRECTIVES = frozenset({"rocommunity", "rwcommunity", "rocommunity6", "rwcommunity6"})
NTP_FAMILIES = ("-4", "-6")
RPCBIND_OPTS = {"-h": "-h"}
NFS_OPTS = {"-H": "-H", "--host": "-H", "-p": "-p", "--port": "-p", "-N": "-N",
            "--no-nfs-version": "-N", "-V": "-V", "--nfs-version": "-V"}
TFTP_OPTS = {"-a": "--address", "--address": "--address", "-u": "--user", "--user": "--user"}


def collect_vsftpd(ctx: CollectContext) -> list[DaemonBuilder]:
    """``key=value`` lines of vsftpd.conf (``listen``, ``anonymous_enable``, ...)."""
    out = DaemonBuilder("vsftpd")
    for path in VSFTPD_FILES:
        text = read_config(ctx, path)
        if text is None:
            continue
        out.files.append(path)
        for number, raw in numbered_lines(text):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep or not key or " " in key:
                out.bad("not option=value", raw, Source(path, number))
                continue
            out.add(key, value, Source(path, number))
    return [out]


def directive_file(guard: IncludeGuard, out: DaemonBuilder, path: str, depth: int,
                    src: Source | None, handler: DirectiveHandler) -> None:
    for source, _raw, line in config_lines(guard, out, path, depth, src, inline=True):
        words = line.split()
        key = words[0].lower()
        if not handler(guard, out, key, words[1:], source, depth):
            out.add(key, " ".join(words[1:]), source)


class DirectiveHandler:
    """Per-daemon hook: returns True when it consumed the directive itself."""

    def __call__(self, guard: IncludeGuard, out: DaemonBuilder, key: str, args: list[str],
                 source: Source, depth: int) -> bool:
        return False


class _Snmp(DirectiveHandler):
    def __init__(self) -> None:
        self.access: list[SnmpAccess] = []

    def __call__(self, guard: IncludeGuard, out: DaemonBuilder, key: str, args: list[str],
                 source: Source, depth: int) -> bool:
        base = posixpath.dirname(source.path)
        if key == "includefile" and args:
            directive_file(guard, out, join_path(base, args[0]), depth + 1, source, self)
            return True
        if key == "includedir" and args:
            for inc in glob_files(guard.ctx, posixpath.join(join_path(base, args[0]), "*.conf")):
                directive_file(guard, out, inc, depth + 1, source, self)
            return True
        if key in COMMUNITY_DIRECTIVES and args:
            net = args[1] if len(args) > 1 else None
            self.access.append(SnmpAccess(key, args[0], net, None, tuple(args[2:]), source))
        elif key in ("com2sec", "com2sec6"):
            rest = list(args)
            context: list[str] = []
            if rest and rest[0] == "-Cn" and len(rest) > 1:
                context, rest = rest[:2], rest[2:]
            if len(rest) >= 3:
                self.access.append(
                    SnmpAccess(key, rest[2], rest[1], rest[0], tuple(context + rest[3:]), source)
                )
            else:
                out.bad("com2sec needs NAME SOURCE COMMUNITY", " ".join([key, *args]), source)
        return False


class _Ntp(DirectiveHandler):
    def __init__(self) -> None:
        self.restrict: list[NtpRestrict] = []

    def __call__(self, guard: IncludeGuard, out: DaemonBuilder, key: str, args: list[str],
                 source: Source, depth: int) -> bool:
        if key == "includefile" and args:
            path = join_path(posixpath.dirname(source.path), args[0])
            directive_file(guard, out, path, depth + 1, source, self)
            return True
        if key == "restrict":
            rest = list(args)
            family = rest.pop(0) if rest and rest[0] in NTP_FAMILIES else None
            if not rest:
                out.bad("restrict without an address", " ".join([key, *args]), source)
                return False
            address = rest.pop(0)
            mask = None
            if len(rest) >= 2 and rest[0] == "mask":
                mask, rest = rest[1], rest[2:]
            self.restrict.append(NtpRestrict(address, family, mask, tuple(rest), source))
        return False


class _Chrony(DirectiveHandler):
    def __call__(self, guard: IncludeGuard, out: DaemonBuilder, key: str, args: list[str],
                 source: Source, depth: int) -> bool:
        base = posixpath.dirname(source.path)
        if key == "include" and args:
            for inc in glob_files(guard.ctx, join_path(base, args[0])):
                directive_file(guard, out, inc, depth + 1, source, self)
            return False  # keep the include itself as a setting too
        if key == "confdir":
            # chronyd reads *.conf of every listed directory; a name in several: first wins
            chosen: dict[str, str] = {}
            for directory in args:
                for inc in glob_files(guard.ctx, posixpath.join(join_path(base, directory),
                                                                "*.conf")):
                    chosen.setdefault(posixpath.basename(inc), inc)
            for _name, inc in sorted(chosen.items()):
                directive_file(guard, out, inc, depth + 1, source, self)
        return False


def _directive_daemon(ctx: CollectContext, daemon: str, files: tuple[str, ...],
                      handler: DirectiveHandler) -> DaemonBuilder:
    out = DaemonBuilder(daemon)
    guard = IncludeGuard(ctx, "listeners")
    for path in files:
        directive_file(guard, out, path, 0, None, handler)
    out.malformed.extend(guard.malformed)
    return out


def collect_snmpd(ctx: CollectContext) -> tuple[list[DaemonBuilder], list[SnmpAccess]]:
    handler = _Snmp()
    return [_directive_daemon(ctx, "snmpd", SNMPD_FILES, handler)], handler.access


def collect_ntpd(ctx: CollectContext) -> tuple[list[DaemonBuilder], list[NtpRestrict]]:
    handler = _Ntp()
    return [_directive_daemon(ctx, "ntpd", NTP_FILES, handler)], handler.restrict


def collect_chrony(ctx: CollectContext) -> list[DaemonBuilder]:
    return [_directive_daemon(ctx, "chrony", CHRONY_FILES, _Chrony())]


def _shell_daemon(ctx: CollectContext, daemon: str, files: tuple[str, ...],
                  option_vars: frozenset[str], options: dict[str, str]) -> DaemonBuilder:
    out = DaemonBuilder(daemon)
    for path in files:
        text = read_config(ctx, path)
        if text is None:
            continue
        out.files.append(path)
        settings, malformed = parse_shell_vars(text, path)
        out.malformed.extend(malformed)
        for setting in settings:
            out.settings.append(setting)
            if setting.key in option_vars:
                words = split_words(setting.value) or []
                out.settings.extend(parse_options(words, options, setting.source))
    return out


def collect_rpcbind(ctx: CollectContext) -> list[DaemonBuilder]:
    return [
        _shell_daemon(ctx, "rpcbind", ("/etc/default/rpcbind", "/etc/sysconfig/rpcbind"),
                      frozenset({"OPTIONS", "RPCBIND_OPTS", "RPCBIND_ARGS"}), RPCBIND_OPTS)
    ]


def _nfs_conf(ctx: CollectContext, out: DaemonBuilder) -> None:
    paths = ["/etc/nfs.conf", *glob_files(ctx, "/etc/nfs.conf.d/*.conf")]
    for path in paths:
        text = read_config(ctx, path)
        if text is None:
            continue
        out.files.append(path)
        section: str | None = None
        for number, raw in numbered_lines(text):
            line = strip_comment(raw, "#;")
            if not line:
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1].strip().lower()
                continue
            key, sep, value = line.partition("=")
            if not sep:
                out.bad("not key = value", raw, Source(path, number))
                continue
            out.add(key.strip().lower(), value.strip(), Source(path, number), section)


def collect_nfs(ctx: CollectContext) -> list[DaemonBuilder]:
    """``/etc/nfs.conf`` (+ ``nfs.conf.d``) and the distribution's variable files."""
    out = _shell_daemon(
        ctx, "nfs", ("/etc/default/nfs-kernel-server", "/etc/sysconfig/nfs"),
        frozenset({"RPCNFSDOPTS", "RPCNFSDARGS", "RPCMOUNTDOPTS"}), NFS_OPTS,
    )
    _nfs_conf(ctx, out)
    return [out]


def collect_tftp(ctx: CollectContext) -> list[DaemonBuilder]:
    return [
        _shell_daemon(ctx, "tftp", ("/etc/default/tftpd-hpa",),
                      frozenset({"TFTP_OPTIONS"}), TFTP_OPTS)
    ]
