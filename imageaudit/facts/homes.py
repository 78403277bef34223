"""Minimal, tolerant reading of ``/etc/passwd`` and ``/etc/group`` for the files and
credentials collectors: which ids are known, what their names are, and where homes are.

The accounts collector owns the full parsing (and reports malformed lines); this module
only needs ids, names and home directories, so lines it cannot use are simply not used.
Follows passwd(5) and group(5).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from imageaudit.facts.base import CollectContext
from imageaudit.imagefs import ImageFSError, normalize
from imageaudit.model import Source

MAX_HOMES = 5_000


@dataclass(frozen=True, slots=True)
class IdMaps:
    """Ids and names read from passwd and group (helper, not a fact record)."""

    passwd_present: bool
    group_present: bool
    users: dict[int, str] = field(default_factory=dict)
    groups: dict[int, str] = field(default_factory=dict)
    homes: tuple[tuple[str, str, Source], ...] = ()  # (user, home as written, source)


@dataclass(frozen=True, slots=True)
class Home:
    """A home directory examined by the credentials collector."""

    path: str  # canonical path in the image
    user: str | None  # the passwd user naming it, None for /root and /home/* found by listing
    present: bool
    source: Source


def _ids(text: str, want_home: bool) -> tuple[dict[int, str], list[tuple[str, str, int]]]:
    names: dict[int, str] = {}
    homes: list[tuple[str, str, int]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split(":")
        if len(fields) < 3 or not fields[0] or fields[0][0] in "+-#":
            continue
        try:
            num = int(fields[2])
        except ValueError:
            continue
        names.setdefault(num, fields[0])
        if want_home and len(fields) >= 6 and fields[5]:
            homes.append((fields[0], fields[5], lineno))
    return names, homes


def read_ids(ctx: CollectContext) -> IdMaps:
    """Known uids and gids with their first name, and the homes named in passwd."""
    passwd = ctx.read_text("/etc/passwd")
    group = ctx.read_text("/etc/group")
    users, homes = _ids(passwd or "", want_home=True)
    groups, _ = _ids(group or "", want_home=False)
    return IdMaps(
        passwd_present=passwd is not None,
        group_present=group is not None,
        users=users,
        groups=groups,
        homes=tuple(
            (user, home, Source("/etc/passwd", line)) for user, home, line in homes[:MAX_HOMES]
        ),
    )


def home_dirs(ctx: CollectContext, ids: IdMaps) -> tuple[Home, ...]:
    """Homes from passwd, plus ``/root`` and every ``/home/*``; one record per canonical path."""
    candidates: list[tuple[str, str | None, Source]] = [
        (home, user, src) for user, home, src in ids.homes
    ]
    candidates.append(("/root", None, Source("/root")))
    candidates.extend((p, None, Source("/home")) for p in ctx.fs.glob("/home/*")[:MAX_HOMES])
    seen: dict[str, Home] = {}
    for written, user, src in candidates:
        if not written.startswith("/"):
            continue  # a relative home means nothing to login(1); nothing to look under
        try:
            canon = ctx.fs.resolve(written)
        except ImageFSError:
            canon = normalize(written)
            present = False
        else:
            present = ctx.fs.is_dir(canon)
        if canon not in seen:
            seen[canon] = Home(path=canon, user=user, present=present, source=src)
    return tuple(sorted(seen.values(), key=lambda h: h.path))
