"""A bounded parser for rpm header blobs as the rpm databases store them.

A stored header is ``il`` (int32 BE, index entries), ``dl`` (int32 BE, data bytes), then
``il`` entries of 16 bytes (tag, type, offset, count; all int32 BE) and ``dl`` bytes of data.
Every offset, count and string is checked against the data store before it is used; a
header that breaks a bound raises :class:`HeaderError`, never reads past the blob.

Specs: rpm's "RPM file format" (docs/manual/format_header.md), lib/header.c limits
(``hdrchkTags``/``hdrchkData``), rpmtag.h tag numbers.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Tag numbers from rpmtag.h.
TAG_NAME = 1000
TAG_VERSION = 1001
TAG_RELEASE = 1002
TAG_EPOCH = 1003
TAG_ARCH = 1022
TAG_OLDFILENAMES = 1027
TAG_SOURCERPM = 1044
TAG_DIRINDEXES = 1116
TAG_BASENAMES = 1117
TAG_DIRNAMES = 1118

# Value types.
TYPE_CHAR = 1
TYPE_INT8 = 2
TYPE_INT16 = 3
TYPE_INT32 = 4
TYPE_INT64 = 5
TYPE_STRING = 6
TYPE_BIN = 7
TYPE_STRING_ARRAY = 8
TYPE_I18NSTRING = 9

# Same limits as rpm's own header import (lib/header.c).
MAX_INDEX_ENTRIES = 0xFFFF
MAX_DATA_BYTES = 0x0FFFFFFF

WANTED = frozenset(
    {
        TAG_NAME,
        TAG_VERSION,
        TAG_RELEASE,
        TAG_EPOCH,
        TAG_ARCH,
        TAG_OLDFILENAMES,
        TAG_SOURCERPM,
        TAG_DIRINDEXES,
        TAG_BASENAMES,
        TAG_DIRNAMES,
    }
)

_INT_SIZES = {TYPE_CHAR: 1, TYPE_INT8: 1, TYPE_INT16: 2, TYPE_INT32: 4, TYPE_INT64: 8}
_INT_FORMATS = {1: "B", 2: "H", 4: "I", 8: "Q"}


class HeaderError(ValueError):
    """The header blob breaks the format or one of its bounds."""


Value = str | tuple[str, ...] | tuple[int, ...] | bytes


@dataclass(frozen=True, slots=True)
class RpmHeader:
    """The tags of one header that the package inventory needs."""

    tags: dict[int, Value]

    def string(self, tag: int) -> str | None:
        value = self.tags.get(tag)
        if isinstance(value, str):
            return value
        if isinstance(value, tuple) and value and isinstance(value[0], str):
            return value[0]  # an I18NSTRING table: the first entry is the default locale
        return None

    def strings(self, tag: int) -> tuple[str, ...]:
        value = self.tags.get(tag)
        if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
            return tuple(str(v) for v in value)
        if isinstance(value, str):
            return (value,)
        return ()

    def ints(self, tag: int) -> tuple[int, ...]:
        value = self.tags.get(tag)
        if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
            return tuple(int(v) for v in value)
        return ()

    def file_paths(self) -> tuple[str, ...]:
        """Every file path the header lists (BASENAMES/DIRNAMES/DIRINDEXES or OLDFILENAMES)."""
        basenames = self.strings(TAG_BASENAMES)
        if not basenames:
            return self.strings(TAG_OLDFILENAMES)
        dirnames = self.strings(TAG_DIRNAMES)
        indexes = self.ints(TAG_DIRINDEXES)
        if len(indexes) != len(basenames):
            raise HeaderError(
                f"{len(basenames)} file basenames but {len(indexes)} directory indexes"
            )
        paths: list[str] = []
        for base, index in zip(basenames, indexes, strict=True):
            if index >= len(dirnames):
                raise HeaderError(f"directory index {index} past {len(dirnames)} directories")
            paths.append(dirnames[index] + base)
        return tuple(paths)


def _cstring(store: bytes, start: int) -> tuple[str, int]:
    end = store.find(b"\0", start)
    if end < 0:
        raise HeaderError(f"string at data offset {start} is not terminated")
    return store[start:end].decode("utf-8", errors="replace"), end + 1


def _decode(store: bytes, tag: int, vtype: int, offset: int, count: int) -> Value:
    if vtype in _INT_SIZES:
        size = _INT_SIZES[vtype]
        if count > (len(store) - offset) // size:
            raise HeaderError(f"tag {tag}: {count} values of {size} bytes run past the data")
        fmt = ">" + _INT_FORMATS[size] * count
        return tuple(struct.unpack_from(fmt, store, offset))
    if vtype == TYPE_BIN:
        if count > len(store) - offset:
            raise HeaderError(f"tag {tag}: {count} bytes run past the data")
        return store[offset : offset + count]
    if vtype == TYPE_STRING:
        if count != 1:
            raise HeaderError(f"tag {tag}: STRING with count {count}")
        return _cstring(store, offset)[0]
    if vtype in (TYPE_STRING_ARRAY, TYPE_I18NSTRING):
        # Every string takes at least its terminating NUL: a larger count cannot fit.
        if count > len(store) - offset:
            raise HeaderError(f"tag {tag}: {count} strings cannot fit in the data")
        out: list[str] = []
        pos = offset
        for _ in range(count):
            text, pos = _cstring(store, pos)
            out.append(text)
        return tuple(out)
    raise HeaderError(f"tag {tag}: unknown type {vtype}")


def parse_header(blob: bytes, wanted: frozenset[int] = WANTED) -> RpmHeader:
    """Parse a stored header blob, decoding the ``wanted`` tags; raises :class:`HeaderError`
    when it is malformed."""
    if len(blob) < 8:
        raise HeaderError(f"header of {len(blob)} bytes is shorter than its 8-byte preamble")
    il, dl = struct.unpack_from(">II", blob, 0)
    if il == 0 or il > MAX_INDEX_ENTRIES:
        raise HeaderError(f"index count {il} out of range")
    if dl > MAX_DATA_BYTES:
        raise HeaderError(f"data length {dl} out of range")
    store_start = 8 + 16 * il
    if store_start + dl > len(blob):
        raise HeaderError(
            f"index count {il} and data length {dl} need {store_start + dl} bytes, "
            f"blob has {len(blob)}"
        )
    store = blob[store_start : store_start + dl]
    tags: dict[int, Value] = {}
    for i in range(il):
        tag, vtype, offset, count = struct.unpack_from(">iIiI", blob, 8 + 16 * i)
        if offset < 0 or offset >= dl:
            raise HeaderError(f"tag {tag}: offset {offset} outside {dl} bytes of data")
        if count == 0 or count > dl:
            raise HeaderError(f"tag {tag}: count {count} out of range")
        if tag in wanted and tag not in tags:
            tags[tag] = _decode(store, tag, vtype, offset, count)
    return RpmHeader(tags=tags)
