"""A bounded reader for rpm's own ``ndb`` package store (``Packages.db``, openSUSE, SLES).

Layout (all integers little-endian): a 32-byte file header (magic ``RpmP``, version 0,
generation, number of slot pages, next package index), slot pages of 4096 bytes holding
16-byte slots (magic ``Slot``, package index, block offset, block count), then blobs in
16-byte blocks: a 16-byte head (``BlbS``, package index, timestamp, length), the header
blob, padding, and a 12-byte tail (adler32, length, ``BlbE``). Every slot and blob is
checked against the file and its checksum before its bytes are used.

Specs: rpm ``lib/backend/ndb/rpmpkg.c`` (``rpmpkgReadHeader``, ``rpmpkgReadSlots``,
``rpmpkgReadBlob``); RFC 1950 (adler32).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

PKGDB_MAGIC = int.from_bytes(b"RpmP", "little")
SLOT_MAGIC = int.from_bytes(b"Slot", "little")
BLOBHEAD_MAGIC = int.from_bytes(b"BlbS", "little")
BLOBTAIL_MAGIC = int.from_bytes(b"BlbE", "little")
HEADER_SIZE = 32
SLOT_SIZE = 16
BLK_SIZE = 16
PAGE_SIZE = 4096
BLOBHEAD_SIZE = 16
BLOBTAIL_SIZE = 12


class NDBError(ValueError):
    """The file is not an ndb package store, or one of its slots or blobs is broken."""


def _slots(data: bytes) -> list[tuple[int, int, int]]:
    if len(data) < HEADER_SIZE:
        raise NDBError(f"file of {len(data)} bytes is shorter than the ndb header")
    magic, version, _generation, slotnpages = struct.unpack_from("<IIII", data, 0)
    if magic != PKGDB_MAGIC:
        raise NDBError("not an rpm ndb package store (bad magic)")
    if version != 0:
        raise NDBError(f"unsupported ndb version {version}")
    if len(data) % BLK_SIZE:
        raise NDBError(f"file size {len(data)} is not a multiple of {BLK_SIZE}")
    if slotnpages == 0 or slotnpages * PAGE_SIZE > len(data):
        raise NDBError(f"{slotnpages} slot pages do not fit in {len(data)} bytes")
    fileblks = len(data) // BLK_SIZE
    minblkoff = slotnpages * (PAGE_SIZE // BLK_SIZE)
    slots: list[tuple[int, int, int]] = []
    for off in range(HEADER_SIZE, slotnpages * PAGE_SIZE, SLOT_SIZE):
        smagic, pkgidx, blkoff, blkcnt = struct.unpack_from("<IIII", data, off)
        if smagic != SLOT_MAGIC:
            raise NDBError(f"slot at byte {off} has a bad magic")
        if blkoff == 0:
            continue  # a free slot
        if blkoff + blkcnt > fileblks:
            raise NDBError(f"package {pkgidx}: blocks {blkoff}+{blkcnt} run past the file")
        if pkgidx == 0 or blkcnt == 0 or blkoff < minblkoff:
            raise NDBError(f"slot at byte {off} is invalid")
        slots.append((blkoff, blkcnt, pkgidx))
    slots.sort()
    return slots


def _blob(data: bytes, pkgidx: int, blkoff: int, blkcnt: int) -> bytes:
    start = blkoff * BLK_SIZE
    end = start + blkcnt * BLK_SIZE
    hmagic, hidx, _tstamp, bloblen = struct.unpack_from("<IIII", data, start)
    if hmagic != BLOBHEAD_MAGIC or hidx != pkgidx:
        raise NDBError(f"package {pkgidx}: bad blob head")
    needed = (BLOBHEAD_SIZE + bloblen + BLOBTAIL_SIZE + BLK_SIZE - 1) // BLK_SIZE
    if needed != blkcnt:
        raise NDBError(f"package {pkgidx}: blob of {bloblen} bytes in {blkcnt} blocks")
    adler, tlen, tmagic = struct.unpack_from("<III", data, end - BLOBTAIL_SIZE)
    if tmagic != BLOBTAIL_MAGIC or tlen != bloblen:
        raise NDBError(f"package {pkgidx}: bad blob tail")
    if zlib.adler32(data[start : end - BLOBTAIL_SIZE]) != adler:
        raise NDBError(f"package {pkgidx}: adler32 checksum mismatch")
    return data[start + BLOBHEAD_SIZE : start + BLOBHEAD_SIZE + bloblen]


def iter_ndb_blobs(data: bytes) -> Iterator[tuple[int, bytes | NDBError]]:
    """Every (package index, header blob or the error reading it), in file order.

    A broken file header or slot table raises :class:`NDBError` (nothing can be trusted);
    a broken blob is yielded as its error and the next slot is read.
    """
    slots = _slots(data)
    last_end = 0
    for blkoff, blkcnt, pkgidx in slots:
        if blkoff < last_end:
            yield pkgidx, NDBError(f"package {pkgidx}: blob overlaps the one before it")
            continue
        last_end = blkoff + blkcnt
        try:
            yield pkgidx, _blob(data, pkgidx, blkoff, blkcnt)
        except NDBError as exc:
            yield pkgidx, exc
