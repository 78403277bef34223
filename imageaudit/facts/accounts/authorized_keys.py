"""``authorized_keys`` files: those in every passwd home that exists, and under ``/etc/ssh``.

Homes are checked the cheap way first: each parent directory (``/home``) is listed once,
so an image with 100k accounts costs one look-up per home that exists, not one per account.
Follows sshd(8) "AUTHORIZED_KEYS FILE FORMAT" and sshd_config(5) ``AuthorizedKeysFile``.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from imageaudit.facts.accounts.homes import existing_homes, listdir_or_none
from imageaudit.facts.accounts.sshkeys import AuthorizedKey, parse_key_line
from imageaudit.facts.base import CollectContext
from imageaudit.facts.textlines import glibc_lines
from imageaudit.model import Source

# Homes that exist; bounded by the passwd cap anyway, an image has far fewer.
MAX_HOMES = 250_000


@dataclass(frozen=True, slots=True)
class AuthorizedKeysFile:
    path: str
    accounts: tuple[str, ...]  # passwd accounts whose home holds it (empty under /etc/ssh)
    uid: int
    gid: int
    mode: int
    keys: int


def authorized_keys(
    ctx: CollectContext, accounts: list[tuple[str, str]]
) -> tuple[list[AuthorizedKeysFile], list[AuthorizedKey]]:
    """The authorized_keys files sshd reads for ``(home, account)`` pairs and under /etc/ssh."""
    owners: dict[str, list[str]] = {}
    homes: dict[str, list[str]] = {}
    for home, name in accounts:
        if not home.startswith("/"):
            continue
        if "//" in home or "/." in home or (home[-1] == "/" and home != "/"):
            home = home if ".." in home.split("/") else posixpath.normpath(home)
        homes.setdefault(home, []).append(name)
    existing = existing_homes(ctx, list(homes))
    if len(existing) > MAX_HOMES:
        ctx.incomplete(f"looked for authorized_keys in the first {MAX_HOMES} homes only")
    for home in sorted(existing)[:MAX_HOMES]:
        for name in ("authorized_keys", "authorized_keys2"):
            owners[posixpath.join(home, ".ssh", name)] = homes[home]
    for path in ctx.fs.glob("/etc/ssh/authorized_keys*"):
        if ctx.fs.is_dir(path):
            for name in listdir_or_none(ctx, path) or []:
                owners.setdefault(posixpath.join(path, name), [])
        else:
            owners.setdefault(path, [])
    files: list[AuthorizedKeysFile] = []
    keys: list[AuthorizedKey] = []
    for path, names in sorted(owners.items()):
        if not ctx.fs.is_file(path):
            continue
        text = ctx.read_text(path)
        if text is None:
            continue
        account = names[0] if names else None
        found = [
            k
            for n, line in enumerate(glibc_lines(text), 1)
            if (k := parse_key_line(line, Source(path, n), account)) is not None
        ]
        keys.extend(found)
        st = ctx.fs.stat(path)
        files.append(AuthorizedKeysFile(path, tuple(names), st.uid, st.gid, st.mode, len(found)))
    return files, keys
