"""``/etc/passwd`` and ``/etc/group`` for the files and credentials collectors: which ids are
known, what their names are, and where homes are.

The accounts collector owns the full records (and reports malformed lines); this module
needs ids, names and home directories only, read the same way (glibc's nss_files, see
:mod:`imageaudit.facts.accounts.nss_files`), so that every collector sees the accounts the system
sees. A file present but unreadable, or cut at the cap, leaves the reading collector's
facts incomplete. Follows passwd(5) and group(5).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field

from imageaudit.facts.accounts.nss_files import (
    ACCOUNT_DB_LIMIT,
    GroupFields,
    PasswdFields,
    gc_paused,
    group_file,
    passwd_file,
)
from imageaudit.facts.base import CollectContext
from imageaudit.imagefs import ImageFSError, normalize
from imageaudit.model import Source

MAX_HOMES = 250_000


@dataclass(frozen=True, slots=True)
class IdMaps:
    """Ids and names read from passwd and group (helper, not a fact record)."""

    passwd_present: bool
    group_present: bool
    users: dict[int, str] = field(default_factory=dict)
    groups: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Home:
    """A home directory examined by the credentials collector."""

    path: str  # canonical path in the image
    user: str | None  # the passwd user naming it, None for /root and /home/* found by listing
    present: bool
    source: Source


def passwd_entries(text: str) -> Iterator[tuple[int, PasswdFields]]:
    """``(line number, fields)`` of every line ``getpwent`` returns."""
    for lineno, entry in passwd_file(text):
        if isinstance(entry, PasswdFields):
            yield lineno, entry


def _group_names(text: str | None) -> dict[int, str]:
    names: dict[int, str] = {}
    for _lineno, entry in group_file(text or ""):
        if isinstance(entry, GroupFields):
            names.setdefault(entry.gid, entry.name)
    return names


def read_ids(ctx: CollectContext) -> IdMaps:
    """Known uids and gids with their first name (what ``getpwuid``/``getgrgid`` return)."""
    passwd = ctx.read_text("/etc/passwd", ACCOUNT_DB_LIMIT)
    group = ctx.read_text("/etc/group", ACCOUNT_DB_LIMIT)
    users: dict[int, str] = {}
    with gc_paused():
        for _lineno, entry in passwd_entries(passwd or ""):
            users.setdefault(entry.uid, entry.name)
        groups = _group_names(group)
    return IdMaps(
        passwd_present=passwd is not None,
        group_present=group is not None,
        users=users,
        groups=groups,
    )


def _passwd_homes(ctx: CollectContext) -> list[tuple[str, str | None, Source]]:
    """``(home as written, user, source)`` for the first :data:`MAX_HOMES` passwd homes."""
    homes: list[tuple[str, str | None, Source]] = [
        (entry.home, entry.name, Source("/etc/passwd", lineno))
        for lineno, entry in passwd_entries(ctx.read_text("/etc/passwd", ACCOUNT_DB_LIMIT) or "")
        if entry.home.startswith("/")  # a relative home means nothing to login(1)
    ]
    if len(homes) > MAX_HOMES:
        ctx.incomplete(f"looked in the first {MAX_HOMES} of {len(homes)} passwd homes only")
    return homes[:MAX_HOMES]


class _Resolver:
    """Canonical paths of homes, each parent directory resolved and listed once.

    Most homes share a parent (``/home``): one listing tells which exist, so an image with
    100k accounts costs one look-up per existing home, not one per account.
    """

    def __init__(self, ctx: CollectContext) -> None:
        self._ctx = ctx
        self._parents: dict[str, tuple[str, frozenset[str]] | None] = {}

    def _parent(self, parent: str) -> tuple[str, frozenset[str]] | None:
        if parent not in self._parents:
            fs = self._ctx.fs
            try:
                canon = fs.resolve(parent)
                names = frozenset(fs.listdir(canon)) if fs.is_dir(canon) else frozenset()
                self._parents[parent] = (canon, names)
            except ImageFSError:
                self._parents[parent] = None
        return self._parents[parent]

    def home(self, written: str) -> tuple[str, bool]:
        """``(canonical path, whether a directory is there)``."""
        clean = _is_clean(written)
        norm = written if clean else normalize(written)
        parent, _, base = norm.rpartition("/")
        # ".." after a symlink is not lexical: such homes are resolved the long way.
        lexical = base and (clean or ".." not in written.split("/"))
        known = self._parent(parent or "/") if lexical else None
        if known is not None and base not in known[1]:
            return posixpath.join(known[0], base), False
        try:
            canon = self._ctx.fs.resolve(written)
        except ImageFSError:
            return norm, False
        return canon, self._ctx.fs.is_dir(canon)


def listdir_or_none(ctx: CollectContext, path: str) -> list[str] | None:
    """The names in an in-image directory, or ``None`` when it cannot be listed."""
    try:
        return ctx.fs.listdir(path)
    except ImageFSError:
        return None


def existing_homes(ctx: CollectContext, homes: list[str]) -> list[str]:
    """The homes that may exist, each parent directory listed once rather than one look-up a home.

    A home alone under its parent, or with ``..`` in it, is kept to be looked up on its own.
    """
    by_parent: dict[str, list[str]] = {}
    for home in homes:
        # ".." after a symlink is not lexical: such homes are looked up the long way.
        parent = "" if ".." in home.split("/") else (home.rpartition("/")[0] or "/")
        by_parent.setdefault(parent, []).append(home)
    out: list[str] = []
    for parent, children in by_parent.items():
        if not parent or len(children) == 1:
            out.extend(children)  # looked up one by one below
            continue
        if not ctx.fs.is_dir(parent):
            continue  # nothing is read under a parent that is not there
        names = listdir_or_none(ctx, parent)
        if names is None:
            out.extend(children)
            continue
        present = set(names)
        out.extend(h for h in children if h == "/" or h.rpartition("/")[2] in present)
    return out


def _is_clean(path: str) -> bool:
    """Already what :func:`normalize` would make of it (the usual ``/home/name``)."""
    return path.startswith("/") and "//" not in path and "/." not in path and path[-1] != "/"


def home_dirs(ctx: CollectContext) -> tuple[Home, ...]:
    """Homes from passwd, plus ``/root`` and every ``/home/*``; one record per canonical path."""
    with gc_paused():
        return _home_dirs(ctx)


def _home_dirs(ctx: CollectContext) -> tuple[Home, ...]:
    candidates = _passwd_homes(ctx)
    candidates.append(("/root", None, Source("/root")))
    candidates.extend((p, None, Source("/home")) for p in ctx.fs.glob("/home/*")[:MAX_HOMES])
    resolver = _Resolver(ctx)
    seen: dict[str, Home] = {}
    for written, user, src in candidates:
        canon, present = resolver.home(written)
        if canon not in seen:
            seen[canon] = Home(path=canon, user=user, present=present, source=src)
    return tuple(sorted(seen.values(), key=lambda h: h.path))
