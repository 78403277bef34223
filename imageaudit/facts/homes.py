"""Minimal, tolerant reading of ``/etc/passwd`` and ``/etc/group`` for the files and
credentials collectors: which ids are known, what their names are, and where homes are.

The accounts collector owns the full parsing (and reports malformed lines); this module
only needs ids, names and home directories, so lines it cannot use are simply not used.
Follows passwd(5) and group(5).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
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


@dataclass(frozen=True, slots=True)
class Home:
    """A home directory examined by the credentials collector."""

    path: str  # canonical path in the image
    user: str | None  # the passwd user naming it, None for /root and /home/* found by listing
    present: bool
    source: Source


def _entries(text: str) -> Iterator[tuple[int, list[str], int]]:
    """``(line number, fields, id)`` of every line with a name and a numeric third field."""
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split(":")
        if len(fields) < 3 or not fields[0] or fields[0][0] in "+-#":
            continue
        try:
            num = int(fields[2])
        except ValueError:
            continue
        yield lineno, fields, num


def _names(text: str | None) -> dict[int, str]:
    names: dict[int, str] = {}
    for _lineno, fields, num in _entries(text or ""):
        names.setdefault(num, fields[0])
    return names


def read_ids(ctx: CollectContext) -> IdMaps:
    """Known uids and gids with their first name."""
    passwd = ctx.read_text("/etc/passwd")
    group = ctx.read_text("/etc/group")
    return IdMaps(
        passwd_present=passwd is not None,
        group_present=group is not None,
        users=_names(passwd),
        groups=_names(group),
    )


def _passwd_homes(ctx: CollectContext) -> list[tuple[str, str | None, Source]]:
    """``(home as written, user, source)`` for the first :data:`MAX_HOMES` passwd homes."""
    homes = (
        (fields[5], fields[0], Source("/etc/passwd", lineno))
        for lineno, fields, _uid in _entries(ctx.read_text("/etc/passwd") or "")
        if len(fields) >= 6 and fields[5]
    )
    return list(itertools.islice(homes, MAX_HOMES))


def home_dirs(ctx: CollectContext) -> tuple[Home, ...]:
    """Homes from passwd, plus ``/root`` and every ``/home/*``; one record per canonical path."""
    candidates = _passwd_homes(ctx)
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
