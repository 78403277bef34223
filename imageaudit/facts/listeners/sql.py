"""Exposure settings of MySQL/MariaDB and PostgreSQL (listeners helpers).

MySQL/MariaDB: option files ``/etc/my.cnf`` then ``/etc/mysql/my.cnf`` with ``!include`` and
``!includedir`` (``*.cnf``, sorted); keys are compared with ``_`` and ``-`` equal, so they are
recorded with ``-``; each setting keeps its ``[section]``.

PostgreSQL: every cluster's ``postgresql.conf`` with ``include``, ``include_if_exists`` and
``include_dir`` (relative to the including file), then its ``pg_hba.conf`` (``hba_file`` or the
same directory) with its own include directives.

Follows "Using Option Files" (MySQL reference manual), mariadb "Configuring MariaDB with
Option Files", PostgreSQL "Setting Parameters" (§20.1) and "The pg_hba.conf File" (§21.1).
"""

from __future__ import annotations

import posixpath
import re

from imageaudit.facts.base import CollectContext
from imageaudit.facts.conftext import IncludeGuard, glob_files, join_path, numbered_lines
from imageaudit.facts.listeners.model import DaemonBuilder, HbaEntry
from imageaudit.facts.listeners.mysqldata import collect_accounts
from imageaudit.model import Source

MYSQL_MAIN = ("/etc/my.cnf", "/etc/mysql/my.cnf")
PG_GLOBS = (
    "/etc/postgresql/*/*/postgresql.conf",
    "/var/lib/pgsql/data/postgresql.conf",
    "/var/lib/pgsql/*/data/postgresql.conf",
    "/var/lib/postgresql/data/postgresql.conf",
    "/var/lib/postgresql/*/data/postgresql.conf",
)
HBA_TYPES = frozenset({"local", "host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc"})
_PG_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.\-]*)\s*(?:=\s*|\s+)(.*)$")
_IP_LIKE = re.compile(r"^[0-9a-fA-F:.]+$")


def _strip_quotes(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _mysql_file(guard: IncludeGuard, out: DaemonBuilder, path: str, depth: int,
                src: Source | None) -> None:
    text = guard.read(path, depth, src)
    if text is None:
        return
    out.files.append(path)
    section: str | None = None
    base = posixpath.dirname(path)
    for number, raw in numbered_lines(text):
        line = raw.strip()
        source = Source(path, number)
        if not line or line[0] in "#;":
            continue
        if line.startswith("!include "):
            _mysql_file(guard, out, join_path(base, line[9:].strip()), depth + 1, source)
            continue
        if line.startswith("!includedir "):
            directory = join_path(base, line[12:].strip())
            for inc in glob_files(guard.ctx, posixpath.join(directory, "*.cnf")):
                _mysql_file(guard, out, inc, depth + 1, source)
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                out.bad("unclosed section header", raw, source)
                continue
            section = line[1:-1].strip().lower()
            continue
        key, _sep, value = line.partition("=")
        key = key.strip().lower().replace("_", "-")
        if not key or " " in key:
            out.bad("not an option line", raw, source)
            continue
        value = value.split(" #", 1)[0].strip()
        out.add(key, _strip_quotes(value), source, section)


def collect_mysql(ctx: CollectContext) -> list[DaemonBuilder]:
    """``bind-address``, ``skip-networking``, ``skip-grant-tables`` and every other option;
    then the accounts of the data directory (:mod:`~imageaudit.facts.listeners.mysqldata`)."""
    out = DaemonBuilder("mysql")
    guard = IncludeGuard(ctx, "listeners")
    for main in MYSQL_MAIN:
        _mysql_file(guard, out, main, 0, None)
    out.malformed.extend(guard.malformed)
    collect_accounts(ctx, out)
    return [out]


def _pg_value(rest: str) -> str:
    rest = rest.strip()
    if rest.startswith("'"):
        value, i = [], 1
        while i < len(rest):
            if rest[i] == "'":
                if rest[i + 1 : i + 2] == "'":
                    value.append("'")
                    i += 2
                    continue
                break
            value.append(rest[i])
            i += 1
        return "".join(value)
    return rest.split("#", 1)[0].strip()


def _pg_conf(guard: IncludeGuard, out: DaemonBuilder, path: str, depth: int,
             src: Source | None, must_exist: bool = True) -> None:
    text = guard.read(path, depth, src)
    if text is None:
        if must_exist and src is not None:
            out.bad("included file not found", path, src)
        return
    out.files.append(path)
    base = posixpath.dirname(path)
    for number, raw in numbered_lines(text):
        line = raw.strip()
        source = Source(path, number)
        if not line or line.startswith("#"):
            continue
        match = _PG_LINE.match(line)
        if match is None:
            out.bad("not a parameter line", raw, source)
            continue
        key, value = match.group(1).lower(), _pg_value(match.group(2))
        if key in ("include", "include_if_exists"):
            _pg_conf(guard, out, join_path(base, value), depth + 1, source, key == "include")
        elif key == "include_dir":
            for inc in glob_files(guard.ctx, posixpath.join(join_path(base, value), "*.conf")):
                _pg_conf(guard, out, inc, depth + 1, source)
        else:
            out.add(key, value, source)


def _hba_tokens(line: str) -> list[str]:
    tokens: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
            current.append(ch)
        elif ch == "#" and not quoted:
            break
        elif ch.isspace() and not quoted:
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(ch)
    if current:
        tokens.append("".join(current))
    return tokens


def _hba_file(guard: IncludeGuard, out: DaemonBuilder, entries: list[HbaEntry], cluster: str,
              path: str, depth: int, src: Source | None) -> None:
    text = guard.read(path, depth, src)
    if text is None:
        return
    out.files.append(path)
    base = posixpath.dirname(path)
    pending, start = "", 0
    for number, raw in numbered_lines(text):
        if not pending:
            start = number
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        tokens = _hba_tokens(pending + raw)
        pending = ""
        source = Source(path, start)
        if not tokens:
            continue
        if tokens[0] in ("include", "include_if_exists", "include_dir") and len(tokens) == 2:
            target = join_path(base, tokens[1].strip('"'))
            targets = glob_files(guard.ctx, posixpath.join(target, "*.conf")) if (
                tokens[0] == "include_dir") else [target]
            for inc in targets:
                _hba_file(guard, out, entries, cluster, inc, depth + 1, source)
            continue
        entry = _hba_entry(tokens, cluster, source)
        if entry is None:
            out.bad("not a pg_hba.conf record", raw, source)
        else:
            entries.append(entry)


def _hba_entry(tokens: list[str], cluster: str, source: Source) -> HbaEntry | None:
    kind = tokens[0]
    if kind not in HBA_TYPES:
        return None
    if kind == "local":
        if len(tokens) < 4:
            return None
        return HbaEntry(cluster, kind, tokens[1], tokens[2], None, None, tokens[3],
                        tuple(tokens[4:]), source)
    if len(tokens) < 5:
        return None
    address, netmask, rest = tokens[3], None, tokens[4:]
    if "/" not in address and _IP_LIKE.match(address) and _IP_LIKE.match(rest[0]) and len(rest) > 1:
        netmask, rest = rest[0], rest[1:]
    return HbaEntry(cluster, kind, tokens[1], tokens[2], address, netmask, rest[0],
                    tuple(rest[1:]), source)


def collect_postgresql(ctx: CollectContext) -> tuple[list[DaemonBuilder], list[HbaEntry]]:
    """One builder per cluster, and the ``pg_hba.conf`` records of all clusters."""
    mains = sorted({p for pattern in PG_GLOBS for p in glob_files(ctx, pattern)})
    builders: list[DaemonBuilder] = []
    entries: list[HbaEntry] = []
    for main in mains:
        out = DaemonBuilder("postgresql", main)
        guard = IncludeGuard(ctx, "listeners")
        _pg_conf(guard, out, main, 0, None)
        hba = next((s for s in reversed(out.settings) if s.key == "hba_file"), None)
        base = posixpath.dirname(main)
        hba_path = join_path(base, hba.value) if hba else posixpath.join(base, "pg_hba.conf")
        _hba_file(guard, out, entries, main, hba_path, 0, hba.source if hba else None)
        out.malformed.extend(guard.malformed)
        builders.append(out)
    return builders or [DaemonBuilder("postgresql")], entries
