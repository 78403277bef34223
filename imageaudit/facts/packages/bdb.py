"""A bounded reader for the Berkeley DB *hash* files rpm used for ``/var/lib/rpm/Packages``.

Only what rpm wrote is understood: a hash database (versions 8-10, either byte order,
unencrypted) whose keys and values are on-page items or overflow chains. Every page number
is checked against the file before it is read, every item against its page, every overflow
chain against the length its item announces, and no page is visited twice; anything else
raises :class:`BDBError`.

Specs: Berkeley DB 5.3 ``dbinc/db_page.h`` (page header, ``HMETA``, ``HOFFPAGE``, page
types), ``hash/hash_page.c`` (bucket to page through ``spares``); rpm's ``bdb_ro.c``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

HASH_MAGIC = 0x061561
BTREE_MAGIC = 0x053162
PAGE_HEADER = 26  # lsn 8, pgno 4, prev 4, next 4, entries 2, hf_offset 2, level 1, type 1

P_HASH_UNSORTED = 2
P_OVERFLOW = 7
P_HASH = 13
H_KEYDATA = 1
H_OFFPAGE = 3


class BDBError(ValueError):
    """The file is not a Berkeley DB hash database we can read, or breaks a bound."""


class _HashFile:
    def __init__(self, data: bytes) -> None:
        if len(data) < 512:
            raise BDBError(f"file of {len(data)} bytes is shorter than a metadata page")
        self.data = data
        magic_le, magic_be = (
            struct.unpack_from("<I", data, 12)[0],
            struct.unpack_from(">I", data, 12)[0],
        )
        if HASH_MAGIC in (magic_le, magic_be):
            self.order = "<" if magic_le == HASH_MAGIC else ">"
        elif BTREE_MAGIC in (magic_le, magic_be):
            raise BDBError("a Berkeley DB btree, not the hash database rpm writes")
        else:
            raise BDBError("not a Berkeley DB hash database (bad magic)")
        o = self.order
        version, pagesize = struct.unpack_from(o + "II", data, 16)
        if not 8 <= version <= 10:
            raise BDBError(f"unsupported hash version {version}")
        if pagesize < 512 or pagesize > 65536 or pagesize & (pagesize - 1):
            raise BDBError(f"invalid page size {pagesize}")
        if data[24] != 0:
            raise BDBError("encrypted database")
        self.pagesize = pagesize
        self.last_pgno = struct.unpack_from(o + "I", data, 32)[0]
        self.max_bucket, self.high_mask, self.low_mask = struct.unpack_from(o + "III", data, 72)
        self.spares = struct.unpack_from(o + "32I", data, 96)
        if self.max_bucket > self.last_pgno:
            raise BDBError(f"{self.max_bucket + 1} buckets but only {self.last_pgno} pages")

    def page(self, pgno: int) -> bytes:
        if pgno == 0 or pgno > self.last_pgno:
            raise BDBError(f"page {pgno} out of bounds (last page {self.last_pgno})")
        start = pgno * self.pagesize
        if start + self.pagesize > len(self.data):
            raise BDBError(f"page {pgno} lies past the end of the file ({len(self.data)} bytes)")
        page = self.data[start : start + self.pagesize]
        stored = struct.unpack_from(self.order + "I", page, 8)[0]
        if stored != pgno:
            raise BDBError(f"page {pgno} says it is page {stored}")
        return page

    def header(self, page: bytes) -> tuple[int, int, int, int]:
        """(next page, entries, hf_offset, type) of a page."""
        next_pgno = struct.unpack_from(self.order + "I", page, 16)[0]
        entries, hf_offset = struct.unpack_from(self.order + "HH", page, 20)
        return next_pgno, entries, hf_offset, page[25]

    def overflow(self, pgno: int, total: int) -> bytes:
        if total <= 0 or total > len(self.data):
            raise BDBError(f"overflow item of {total} bytes in a file of {len(self.data)}")
        parts: list[bytes] = []
        remaining = total
        seen: set[int] = set()
        while remaining > 0:
            if pgno == 0:
                raise BDBError(f"overflow chain ends {remaining} bytes short")
            if pgno in seen:
                raise BDBError(f"overflow chain loops at page {pgno}")
            seen.add(pgno)
            page = self.page(pgno)
            next_pgno, _, used, ptype = self.header(page)
            if ptype != P_OVERFLOW:
                raise BDBError(f"page {pgno} in an overflow chain has type {ptype}")
            if used == 0 or used > remaining or PAGE_HEADER + used > self.pagesize:
                raise BDBError(f"overflow page {pgno} holds {used} bytes, {remaining} expected")
            parts.append(page[PAGE_HEADER : PAGE_HEADER + used])
            remaining -= used
            pgno = next_pgno
        return b"".join(parts)

    def item(self, page: bytes, pgno: int, off: int, length: int) -> bytes:
        if length <= 0 or off + length > self.pagesize:
            raise BDBError(f"page {pgno}: item at {off} of length {length} leaves the page")
        kind = page[off]
        if kind == H_KEYDATA:
            return page[off + 1 : off + length]
        if kind == H_OFFPAGE:
            if length != 12:
                raise BDBError(f"page {pgno}: off-page item of length {length}")
            ov_pgno, tlen = struct.unpack_from(self.order + "II", page, off + 4)
            return self.overflow(ov_pgno, tlen)
        raise BDBError(f"page {pgno}: unsupported item type {kind}")

    def bucket_page(self, bucket: int) -> int:
        return int(bucket + self.spares[bucket.bit_length()])


def iter_hash_items(data: bytes, max_items: int = 1_000_000) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) of a Berkeley DB hash file, bucket by bucket.

    Raises :class:`BDBError` at the first structural problem; values already yielded stay
    valid. The total bytes yielded are capped at twice the file size (items may share an
    overflow chain; a hostile file must not multiply itself).
    """
    db = _HashFile(data)
    visited: set[int] = set()
    budget = 2 * len(data) + 65536
    count = 0
    psize = db.pagesize
    for bucket in range(db.max_bucket + 1):
        pgno = db.bucket_page(bucket)
        while pgno:
            if pgno in visited:
                raise BDBError(f"page {pgno} reached twice (bucket {bucket})")
            visited.add(pgno)
            page = db.page(pgno)
            next_pgno, entries, _, ptype = db.header(page)
            if ptype not in (P_HASH, P_HASH_UNSORTED):
                raise BDBError(f"bucket {bucket}: page {pgno} has type {ptype}")
            if PAGE_HEADER + 2 * entries > psize:
                raise BDBError(f"page {pgno}: {entries} entries do not fit")
            offsets = struct.unpack_from(f"{db.order}{entries}H", page, PAGE_HEADER)
            floor = PAGE_HEADER + 2 * entries
            for i in range(0, entries - 1, 2):
                koff, voff = offsets[i], offsets[i + 1]
                kend = psize if i == 0 else offsets[i - 1]
                if not floor <= voff < koff < kend <= psize:
                    raise BDBError(f"page {pgno}: item offsets {voff}/{koff} out of order")
                key = db.item(page, pgno, koff, kend - koff)
                value = db.item(page, pgno, voff, koff - voff)
                budget -= len(key) + len(value)
                count += 1
                if budget < 0 or count > max_items:
                    raise BDBError("items exceed the size of the file; stopped")
                yield key, value
            pgno = next_pgno
