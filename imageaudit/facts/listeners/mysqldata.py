"""MariaDB accounts from the data directory shipped in the image (listeners helper).

MariaDB 10.4 and later keep accounts in ``mysql.global_priv``, an Aria table whose ``Priv``
column is a JSON document (``plugin``, ``authentication_string``, ``auth_or``,
``account_locked``; "mysql.global_priv Table" in the MariaDB knowledge base). The rows are
found by their JSON text in ``global_priv.MAD``: each document starting ``{"access":`` is
decoded, and the printable bytes right before it (``Host`` then ``User``, stored without a
separator) name the account. The Aria page layout itself is not decoded, so a row deleted
but not yet overwritten would still be seen.

Every account becomes a setting ``account`` whose value is the stored ``HostUser`` text
and whose section is its state: ``empty`` (a password plugin with an empty
authentication string: anyone may log in without a password), ``password``, ``socket``
(only plugins without a password, ``unix_socket``...), ``locked``. Tables this does not read
(MyISAM ``user.MYD`` of MySQL 5.7 and MariaDB before 10.4, MySQL 8's data dictionary in
``mysql.ibd``), a cut or unreadable ``global_priv.MAD`` or one with no readable row give a
setting ``accounts-unread`` saying why: the accounts were not evaluated.
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
MAX_JSON = 64 * 1024
MAX_ACCOUNTS = 1000
_START = b'{"access":'
PASSWORD_PLUGINS = frozenset({"", "mysql_native_password", "mysql_old_password"})
SERVER_SECTIONS = frozenset({"mysqld", "server", "mariadb", "mariadbd"})


def _json_at(data: bytes, start: int) -> tuple[Any, int] | None:
    depth, quoted, escaped = 0, False, False
    end = min(len(data), start + MAX_JSON)
    for i in range(start, end):
        ch = data[i]
        if quoted:
            if escaped:
                escaped = False
            elif ch == 0x5C:
                escaped = True
            elif ch == 0x22:
                quoted = False
        elif ch == 0x22:
            quoted = True
        elif ch == 0x7B:
            depth += 1
        elif ch == 0x7D:
            depth -= 1
            if depth == 0:
                try:
                    return json.loads(data[start:i + 1].decode("utf-8")), i + 1
                except (ValueError, UnicodeDecodeError, RecursionError):
                    return None
    return None


def _identity(data: bytes, start: int) -> str:
    """The printable run just before ``start`` (a few length/flag bytes may sit between)."""
    i = start
    skipped = 0
    while i > 0 and not 0x20 <= data[i - 1] < 0x7F and skipped < 8:
        i -= 1
        skipped += 1
    end = i
    while i > 0 and 0x20 <= data[i - 1] < 0x7F and end - i < 400:
        i -= 1
    return data[i:end].decode("ascii", "replace")


def account_state(priv: dict[str, Any]) -> str:
    """``locked``, ``empty``, ``password`` or ``socket`` for one ``Priv`` document."""
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
    data = result.data
    pos, count, bad = 0, 0, 0
    while count < MAX_ACCOUNTS:
        start = data.find(_START, pos)
        if start < 0:
            break
        parsed = _json_at(data, start)
        if parsed is None or not isinstance(parsed[0], dict):
            bad += 1
            pos = start + 1
            continue
        priv, pos = parsed
        count += 1
        out.add("account", _identity(data, start), Source(mad), account_state(priv))
    if count == 0:
        out.add("accounts-unread", f"no account row could be read from {mad}"
                + (f" ({bad} unreadable)" if bad else ""), Source(mad))
