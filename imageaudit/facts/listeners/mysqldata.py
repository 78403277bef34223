"""MariaDB accounts from the data directory shipped in the image (listeners helper).

MariaDB 10.4 and later keep accounts in ``mysql.global_priv``, an Aria table of ``Host``,
``User`` and a JSON ``Priv`` column (``plugin``, ``authentication_string``, ``auth_or``,
``account_locked``, ``is_role``; "mysql.global_priv Table" in the MariaDB knowledge base).
``global_priv.MAD`` is read as Aria's block-record format lays it out (storage/maria/
ma_blockrec.c): 8 KiB pages, page 0 a bitmap; each head page lists its rows in a directory
at the end of the page (offset and length, offset 0 for a deleted row, so deleted accounts
are not seen); a row is a flag byte (a transaction id follows when bit 0 is set), the size of
its length data, a bit per column stored empty (host, user, Priv), a 2-byte length for each
stored ``CHAR`` column and a 4-byte one for ``Priv``, then the values.

Every account becomes a setting ``account`` valued ``'user'@'host'`` whose section is its
state: ``empty`` (a password plugin with an empty authentication string, or an empty
``Priv``: anyone may log in without a password), ``password``, ``socket`` (only plugins
without a password, ``unix_socket``...), ``locked``, ``role``. Tables this does not read
(MyISAM ``user.MYD`` of MySQL 5.7 and MariaDB before 10.4, MySQL 8's data dictionary in
``mysql.ibd``), a cut or unreadable ``global_priv.MAD``, or a row in a shape not described
above (one split over pages) give a setting ``accounts-unread`` saying why.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from imageaudit.facts.base import CollectContext
from imageaudit.facts.listeners.model import DaemonBuilder
from imageaudit.imagefs import ImageFSError
from imageaudit.model import Source

DEFAULT_DATADIR = "/var/lib/mysql"
MAD_LIMIT = 16 * 1024 * 1024
MAX_ACCOUNTS = 1000
PASSWORD_PLUGINS = frozenset({"", "mysql_native_password", "mysql_old_password"})
SERVER_SECTIONS = frozenset({"mysqld", "server", "mariadb", "mariadbd"})


PAGE = 8192
HEAD_PAGE = 1
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


class RowError(ValueError):
    """A global_priv row that is not laid out as expected."""


def _row(row: bytes) -> tuple[str, str, bytes]:
    """Host, user and Priv bytes of one Aria row of ``mysql.global_priv``."""
    if not row:
        raise RowError("empty row")
    flag, pos = row[0], 1
    if flag & ~1:
        raise RowError(f"row flags {flag:#x} (extents or versions) are not read")
    if flag & 1:
        pos += 6  # transaction id
    if pos + 2 > len(row):
        raise RowError("row header cut")
    size, empty = row[pos], row[pos + 1]
    pos += 2
    want = (0 if empty & 1 else 2) + (0 if empty & 2 else 2) + (0 if empty & 4 else 4)
    if size != want or pos + size > len(row):
        raise RowError(f"length data of {size} bytes, {want} expected")
    host_len = user_len = priv_len = 0
    if not empty & 1:
        host_len = int.from_bytes(row[pos:pos + 2], "little")
        pos += 2
    if not empty & 2:
        user_len = int.from_bytes(row[pos:pos + 2], "little")
        pos += 2
    if not empty & 4:
        priv_len = int.from_bytes(row[pos:pos + 4], "little")
        pos += 4
    end = pos + host_len + user_len + priv_len
    if end > len(row):
        raise RowError("values longer than the row")
    host = row[pos:pos + host_len].decode("utf-8", "replace")
    user = row[pos + host_len:pos + host_len + user_len].decode("utf-8", "replace")
    return host, user, row[pos + host_len + user_len:end]


def rows(data: bytes) -> tuple[list[tuple[str, str, bytes]], list[str]]:
    """The live rows of every head page, and why some could not be read."""
    found: list[tuple[str, str, bytes]] = []
    problems: list[str] = []
    if len(data) % PAGE:
        problems.append(f"{len(data)} bytes is not a whole number of {PAGE}-byte pages")
    for start in range(PAGE, len(data) - PAGE + 1, PAGE):
        page = data[start:start + PAGE]
        if page[7] & 0x7F != HEAD_PAGE:
            continue
        for i in range(page[8]):
            at = PAGE - 4 - (i + 1) * 4
            offset = int.from_bytes(page[at:at + 2], "little")
            length = int.from_bytes(page[at + 2:at + 4], "little")
            if offset == 0:
                continue  # a deleted row
            if offset < 12 or offset + length > at:
                problems.append(f"page {start // PAGE} row {i}: outside the page")
                continue
            try:
                found.append(_row(page[offset:offset + length]))
            except RowError as exc:
                problems.append(f"page {start // PAGE} row {i}: {exc}")
            if len(found) >= MAX_ACCOUNTS:
                return found, problems
    return found, problems


def is_local_host(host: str) -> bool:
    """An account host that only the server itself matches."""
    return host.lower() in _LOCAL_HOSTS


def account_state(priv: dict[str, Any]) -> str:
    """``role``, ``locked``, ``empty``, ``password`` or ``socket`` for one ``Priv``."""
    if priv.get("is_role") is True:
        return "role"
    if priv.get("account_locked") is True:
        return "locked"
    top = {"plugin": priv.get("plugin", "mysql_native_password"),
           "authentication_string": priv.get("authentication_string", "")}
    alternatives = priv.get("auth_or")
    ways = [top]
    if isinstance(alternatives, list) and alternatives:
        ways = [a or top for a in alternatives if isinstance(a, dict)] or [top]
    state = "socket"
    for way in ways:
        plugin = str(way.get("plugin", "mysql_native_password"))
        auth = str(way.get("authentication_string", ""))
        if plugin in PASSWORD_PLUGINS and auth == "":
            return "empty"
        if plugin in PASSWORD_PLUGINS or plugin in ("ed25519", "parsec", "caching_sha2_password",
                                                    "sha256_password"):
            state = "password"
    return state


def _datadir(out: DaemonBuilder) -> str:
    found = DEFAULT_DATADIR
    for s in out.settings:
        if s.key == "datadir" and (s.section or "") in SERVER_SECTIONS and s.value.startswith("/"):
            found = s.value.rstrip("/") or "/"
    return found


def collect_accounts(ctx: CollectContext, out: DaemonBuilder) -> None:
    """Accounts of the data directory named by the option files (``datadir``)."""
    datadir = _datadir(out)
    mad = posixpath.join(datadir, "mysql", "global_priv.MAD")
    try:
        result = ctx.fs.read(mad, MAD_LIMIT) if ctx.fs.lexists(mad) else None
    except (ImageFSError, FileNotFoundError) as exc:
        out.add("accounts-unread", f"{mad} cannot be read: {exc}", Source(mad))
        return
    if result is None:
        for path, why in ((posixpath.join(datadir, "mysql", "user.MYD"),
                           "the MyISAM table mysql.user (MySQL 5.7, MariaDB before 10.4)"),
                          (posixpath.join(datadir, "mysql.ibd"),
                           "MySQL 8's data dictionary (InnoDB mysql.ibd)")):
            if ctx.fs.lexists(path):
                out.add("accounts-unread", f"accounts are kept in {why}, which is not read",
                        Source(path))
                return
        return
    out.files.append(mad)
    if result.truncated:
        out.add("accounts-unread", f"{mad} is larger than {MAD_LIMIT} bytes", Source(mad))
        return
    found, problems = rows(result.data)
    for host, user, priv_bytes in found:
        try:
            priv = json.loads(priv_bytes.decode("utf-8")) if priv_bytes else {}
        except (ValueError, UnicodeDecodeError, RecursionError):
            problems.append(f"the Priv of '{user}'@'{host}' is not JSON")
            continue
        if not isinstance(priv, dict):
            problems.append(f"the Priv of '{user}'@'{host}' is not a JSON object")
            continue
        out.add("account", f"'{user}'@'{host}'", Source(mad), account_state(priv))
    if problems:
        out.add("accounts-unread", f"{mad}: " + "; ".join(problems[:3]), Source(mad))
    elif not found:
        out.add("accounts-unread", f"no account row could be read from {mad}", Source(mad))
