"""The interface every cloud implements, and how a target picks its implementation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from imageaudit.cloud.model import (
    REVERSE,
    ContainOptions,
    Found,
    Held,
    ImageQuery,
    Record,
    Step,
    Target,
)


class Provider(Protocol):
    target: Target

    def find(self, query: ImageQuery) -> Found:
        """Every copy of the image the credentials can see (every project when they can), and
        the instances started from each copy."""

    def contain_steps(self, found: Found, options: ContainOptions) -> list[Step]:
        """The steps of containment, in the procedure's order: per image copy, then per
        instance snapshot (waited for), isolate (pause, suspend or stop), lock."""

    def release_steps(self, records: Sequence[Record]) -> list[Step]:
        """Steps undoing what the records say ``contain`` did (``done`` records only), newest
        first; evidence (snapshots, incident tags) is kept."""

    def holdings(self, remembered: Mapping[str, Sequence[str]] | None = None
                 ) -> dict[str, Held]:
        """Every image file this cloud holds, by SHA-512: copies, instances started from them
        and the copies' ids; what a site reports to the catalogue. ``remembered`` (SHA-512 →
        ids of copies seen before) counts the instances of copies deleted since."""


def release_pairs(records: Sequence[Record], incident: str) -> list[Record]:
    """The records ``release`` undoes: steps this incident's ``contain`` took (``done``), not
    already undone by a later release, newest first."""
    undoes = {rev: act for act, rev in REVERSE.items()}
    undone: set[tuple[str, str]] = set()
    out: list[Record] = []
    for r in reversed(records):
        if r.incident != incident:
            continue
        key = (r.obj.id, r.action)
        if r.action in undoes:
            if r.result in ("done", "already"):
                undone.add((r.obj.id, undoes[r.action]))
            continue
        if r.action in REVERSE and r.result == "done" and key not in undone:
            out.append(r)
            undone.add(key)  # an older 'done' of the same step is the same change
    return out
