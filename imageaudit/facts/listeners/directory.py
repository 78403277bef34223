"""Exposure settings of slapd, ProFTPD, Pure-FTPd and Samba usershares (listeners helpers).

- ``slapd``: the listening URLs (``SLAPD_SERVICES`` in ``/etc/default/slapd``, ``SLAPD_URLS``
  in ``/etc/sysconfig/slapd``), then the cn=config tree (``slapd.d/cn=config.ldif`` as section
  ``global``, ``cn=config/olcDatabase=*.ldif`` as the database, e.g. ``{1}mdb``: LDIF
  attributes lower-cased, continuation lines joined) and ``slapd.conf`` (with ``include``;
  ``disallow``, ``require``, ``allow`` and ``access`` recorded as ``olcdisallows``,
  ``olcrequires``, ``olcallows`` and ``olcaccess`` so both forms read alike; the section is
  ``global`` until the first ``database`` line). ``olcAccess`` values lose their ``{n}``.
  Follows slapd.conf(5), slapd-config(5), slapd.access(5).
- ``proftpd``: ``proftpd.conf`` with ``Include`` (a file, a glob or a directory);
  directives lower-cased, their section the enclosing blocks (``anonymous ~ftp > limit
  write``); each block opening is a setting ``<block>`` valued with its name and arguments.
  Follows the ProFTPD directive reference (``<Anonymous>``, ``<Limit>``, ``Include``).
- ``pure-ftpd``: Debian's one-file-per-option directory ``/etc/pure-ftpd/conf`` (the file
  name is the option, its first line the value) and ``pure-ftpd.conf`` (``Option value``).
  Follows pure-ftpd(8) and pure-ftpd-wrapper(8).
- ``samba-usershares``: the share definitions ``net usershare`` writes to
  ``/var/lib/samba/usershares`` (``key=value``; section = the file name). Follows net(8)
  "USERSHARE" and smb.conf(5) ``usershare path``.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re

from imageaudit.facts.base import CollectContext
from imageaudit.facts.conftext import (
    MAX_FILES,
    IncludeGuard,
    glob_files,
    join_path,
    numbered_lines,
    parse_shell_vars,
    read_config,
    strip_comment,
)
from imageaudit.facts.listeners.mailweb import section_line, section_of
from imageaudit.facts.listeners.model import DaemonBuilder, config_lines
from imageaudit.model import Source

SLAPD_VARS = ("/etc/default/slapd", "/etc/sysconfig/slapd")
SLAPD_D = ("/etc/ldap/slapd.d", "/etc/openldap/slapd.d")
SLAPD_CONF = ("/etc/ldap/slapd.conf", "/etc/openldap/slapd.conf")
_CONF_KEYS = {"disallow": "olcdisallows", "require": "olcrequires", "allow": "olcallows",
              "access": "olcaccess"}
_ORDINAL = re.compile(r"^\{-?\d+\}")
PROFTPD_MAIN = ("/etc/proftpd/proftpd.conf", "/etc/proftpd.conf")
PUREFTPD_DIR = "/etc/pure-ftpd/conf"
PUREFTPD_CONF = ("/etc/pure-ftpd.conf", "/etc/pure-ftpd/pure-ftpd.conf")
USERSHARE_DIR = "/var/lib/samba/usershares"
MAX_USERSHARES = 4096
USERSHARE_LIMIT = 16 * 1024  # net usershare writes a few short lines


def _ldif(text: str, path: str, section: str, out: DaemonBuilder) -> None:
    entries: list[tuple[int, list[str]]] = []  # parts joined once: no quadratic copying
    for number, raw in numbered_lines(text):
        if raw.startswith(" ") and entries:
            entries[-1][1].append(raw[1:].rstrip("\r"))
        elif raw.strip() and not raw.startswith("#"):
            entries.append((number, [raw.rstrip("\r")]))
    for number, parts in entries:
        line = "".join(parts)
        key, sep, value = line.partition(":")
        if not sep:
            out.bad("not an LDIF attribute line", line[:200], Source(path, number))
            continue
        if value.startswith(":"):
            try:
                value = base64.b64decode(value[1:].strip(), validate=False).decode(
                    "utf-8", "replace")
            except (binascii.Error, ValueError):
                out.bad("bad base64 value", line[:200], Source(path, number))
                continue
        value = _ORDINAL.sub("", value.strip())
        out.add(key.strip().lower(), value, Source(path, number), section)


def _slapd_conf(guard: IncludeGuard, out: DaemonBuilder, path: str, depth: int,
                src: Source | None, section: list[str]) -> None:
    text = guard.read(path, depth, src)
    if text is None:
        return
    out.files.append(path)
    lines: list[tuple[int, list[str]]] = []
    for number, raw in numbered_lines(text):
        if raw[:1] in (" ", "\t") and lines and raw.strip():
            lines[-1][1].append(raw.strip())
        elif raw.strip() and not raw.lstrip().startswith("#"):
            lines.append((number, [raw.strip()]))
    for number, parts in lines:
        line = " ".join(parts)
        source = Source(path, number)
        key, _sep, rest = line.partition(" ")
        key, rest = key.lower(), rest.strip()
        if key == "include":
            _slapd_conf(guard, out, join_path(posixpath.dirname(path), rest), depth + 1,
                        source, section)
            continue
        if key == "database":
            section[0] = rest.split()[0].lower() if rest else "?"
        out.add(_CONF_KEYS.get(key, key), rest, source, section[0])


def collect_slapd(ctx: CollectContext) -> list[DaemonBuilder]:
    """Listening URLs, global and per-database restrictions and access lines of slapd."""
    out = DaemonBuilder("slapd")
    for path in SLAPD_VARS:
        text = read_config(ctx, path)
        if text is None:
            continue
        out.files.append(path)
        settings, malformed = parse_shell_vars(text, path)
        out.settings.extend(settings)
        out.malformed.extend(malformed)
    for base in SLAPD_D:
        main = posixpath.join(base, "cn=config.ldif")
        text = read_config(ctx, main)
        if text is None:
            continue
        out.files.append(main)
        _ldif(text, main, "global", out)
        for path in capped(ctx, glob_files(ctx, posixpath.join(base, "cn=config",
                                                           "olcDatabase=*.ldif")),
                           "slapd database files"):
            text = read_config(ctx, path)
            if text is not None:
                out.files.append(path)
                name = posixpath.basename(path)[len("olcDatabase="):-len(".ldif")]
                _ldif(text, path, _ORDINAL.sub("", name).lower(), out)
    guard = IncludeGuard(ctx, "listeners")
    for path in SLAPD_CONF:
        _slapd_conf(guard, out, path, 0, None, ["global"])
    out.malformed.extend(guard.malformed)
    return [out]


def _proftpd_file(guard: IncludeGuard, out: DaemonBuilder, path: str, depth: int,
                  src: Source | None, stack: list[str]) -> None:
    for source, raw, line in config_lines(guard, out, path, depth, src, inline=True):
        section = section_of(stack)
        block = section_line(line, raw, stack, out, source, lower=True)
        if block:
            out.add("<block>", block, source, section)
        if block is not None:
            continue
        key, _sep, rest = line.partition(" ")
        key, rest = key.lower(), rest.strip()
        if key == "include":
            target = join_path(posixpath.dirname(path), rest)
            targets = glob_files(guard.ctx, posixpath.join(target, "*")) if guard.ctx.fs.is_dir(
                target) else glob_files(guard.ctx, target)
            for inc in targets:
                _proftpd_file(guard, out, inc, depth + 1, source, stack)
            continue
        out.add(key, rest, source, section)


def collect_proftpd(ctx: CollectContext) -> list[DaemonBuilder]:
    """Every directive of proftpd.conf and what it includes, with its enclosing blocks."""
    out = DaemonBuilder("proftpd")
    guard = IncludeGuard(ctx, "listeners")
    for path in PROFTPD_MAIN:
        _proftpd_file(guard, out, path, 0, None, [])
        if out.files:
            break
    out.malformed.extend(guard.malformed)
    return [out]


def collect_pureftpd(ctx: CollectContext) -> list[DaemonBuilder]:
    """Options of the Debian wrapper's directory and of ``pure-ftpd.conf``."""
    out = DaemonBuilder("pure-ftpd")
    for path in capped(ctx, glob_files(ctx, posixpath.join(PUREFTPD_DIR, "*")),
                       "Pure-FTPd option files"):
        text = read_config(ctx, path)
        if text is None:
            continue
        out.files.append(path)
        first = next((ln.strip() for _n, ln in numbered_lines(text) if ln.strip()), "")
        out.add(posixpath.basename(path).lower(), first, Source(path, 1), "conf")
    for path in PUREFTPD_CONF:
        text = read_config(ctx, path)
        if text is None:
            continue
        out.files.append(path)
        for number, raw in numbered_lines(text):
            line = strip_comment(raw)
            if line:
                key, _sep, value = line.partition(" ")
                out.add(key.lower(), value.strip(), Source(path, number), "pure-ftpd.conf")
    return [out]


def capped(ctx: CollectContext, paths: list[str], what: str, limit: int = MAX_FILES,
           ) -> list[str]:
    """At most ``limit`` of ``paths``; past it the facts are incomplete (never judged whole)."""
    if len(paths) > limit:
        ctx.incomplete(f"not read: more than {limit} {what}", paths[limit])
        return paths[:limit]
    return paths


def collect_usershares(ctx: CollectContext) -> list[DaemonBuilder]:
    """``key=value`` lines of every usershare definition file."""
    out = DaemonBuilder("samba-usershares")
    paths = capped(ctx, glob_files(ctx, posixpath.join(USERSHARE_DIR, "*")), "usershare files",
                   MAX_USERSHARES)
    for path in paths:
        name = posixpath.basename(path)
        if name.startswith("."):
            continue
        text = read_config(ctx, path, USERSHARE_LIMIT)
        if text is None:
            continue
        out.files.append(path)
        for number, raw in numbered_lines(text):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep:
                out.bad("not key=value", raw, Source(path, number))
                continue
            out.add(key.strip().lower(), value.strip(), Source(path, number), name)
    return [out]
