"""Our own tar header reader: headers and data offsets only, every declared length capped.

Not :mod:`tarfile`: we need a cap on every length the archive declares *before* reading it
(PAX headers, GNU long names, member counts), and we only ever want headers plus the offset
of each member's data, never the data itself and never anything written to disk.

Specs: POSIX pax/ustar (``pax(1)``), GNU tar's long-name extensions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from imageaudit.openers.layers import Budget, ContainerImageError

BLOCK = 512
_CHUNK = 1 << 20


class _Source(Protocol):
    def read(self, n: int) -> bytes: ...
    def skip(self, n: int) -> None: ...


@dataclass(frozen=True, slots=True)
class TarMember:
    """One tar header, names as stored (not yet normalised). ``offset`` is in the tar stream."""

    name: str
    kind: str  # file, hardlink, symlink, chardev, blockdev, dir, fifo; "skip" for others
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    linkname: str
    offset: int


_KINDS = {
    b"0": "file", b"\0": "file", b"7": "file", b"1": "hardlink", b"2": "symlink",
    b"3": "chardev", b"4": "blockdev", b"5": "dir", b"6": "fifo",
}  # fmt: skip


def _pad(n: int) -> int:
    return (n + BLOCK - 1) // BLOCK * BLOCK


def _num(field_bytes: bytes, what: str, label: str) -> int:
    if field_bytes and field_bytes[0] & 0x80:
        if field_bytes[0] == 0xFF:
            raise ContainerImageError(label, f"negative {what} in a tar header")
        return int.from_bytes(bytes([field_bytes[0] & 0x7F]) + field_bytes[1:], "big")
    text = field_bytes.split(b"\0", 1)[0].strip(b" ")
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise ContainerImageError(label, f"bad {what} in a tar header") from None


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="surrogateescape")


class TarReader:
    """Iterate the headers of an uncompressed tar stream; data is skipped, never kept."""

    def __init__(self, source: _Source, label: str, budget: Budget) -> None:
        self.source = source
        self.label = label
        self.budget = budget
        self.pos = 0
        self._buf = bytearray()

    def _take(self, n: int, what: str) -> bytes:
        while len(self._buf) < n:
            more = self.source.read(max(_CHUNK, n - len(self._buf)))
            if not more:
                raise ContainerImageError(self.label, f"truncated tar: ends inside {what}")
            self._buf += more
        data = bytes(self._buf[:n])
        del self._buf[:n]
        self.pos += n
        return data

    def _peek_eof(self) -> bool:
        if self._buf:
            return False
        more = self.source.read(_CHUNK)
        self._buf += more
        return not more

    def _skip(self, n: int) -> None:
        self.pos += n
        if n <= len(self._buf):
            del self._buf[:n]
            return
        n -= len(self._buf)
        self._buf.clear()
        self.source.skip(n)

    def members(self) -> Iterator[TarMember]:
        """Every member in order; raises :class:`ContainerImageError` on any malformation."""
        limits = self.budget.limits
        pax: dict[str, str] = {}
        long_name: bytes | None = None
        long_link: bytes | None = None
        while True:
            if self._peek_eof():
                raise ContainerImageError(self.label, "truncated tar: no end-of-archive marker")
            header = self._take(BLOCK, "a header")
            if header == bytes(BLOCK):
                return
            self.budget.members += 1
            if self.budget.members > limits.max_members:
                raise ContainerImageError(self.label, f"more than {limits.max_members} tar members")
            self._check_sum(header)
            flag = header[156:157]
            size = _num(header[124:136], "size", self.label)
            if flag in (b"x", b"g"):
                if size > limits.max_pax_header:
                    raise ContainerImageError(
                        self.label, f"PAX header of {size} bytes is over the cap"
                    )
                data = self._take(_pad(size), "a PAX header")[:size]
                if flag == b"x":
                    pax.update(self._parse_pax(data))
                continue
            if flag in (b"L", b"K"):
                if size > limits.max_name_bytes + 1:
                    what = "member name" if flag == b"L" else "link target"
                    raise ContainerImageError(self.label, f"{what} longer than the cap")
                data = self._take(_pad(size), "a GNU long name")[:size].split(b"\0", 1)[0]
                if flag == b"L":
                    long_name = data
                else:
                    long_link = data
                continue
            member = self._member(header, size, pax, long_name, long_link)
            pax, long_name, long_link = {}, None, None
            yield member
            self._skip(_pad(member.size))

    def _check_sum(self, header: bytes) -> None:
        stored = _num(header[148:156], "checksum", self.label)
        unsigned = sum(header[:148]) + 8 * 32 + sum(header[156:])
        if stored == unsigned:
            return
        # Some old tars summed signed chars; only computed when the usual form fails.
        high = header[:148] + header[156:]
        signed = unsigned - 256 * sum(1 for b in high if b > 127)
        if stored != signed:
            raise ContainerImageError(self.label, "bad tar header checksum (not a tar?)")

    def _parse_pax(self, data: bytes) -> dict[str, str]:
        out: dict[str, str] = {}
        pos = 0
        while pos < len(data):
            space = data.find(b" ", pos, pos + 24)
            try:
                length = int(data[pos:space]) if space > pos else 0
            except ValueError:
                length = 0
            end = pos + length
            if length <= 0 or end > len(data) or data[end - 1 : end] != b"\n":
                raise ContainerImageError(self.label, "malformed PAX record")
            key, sep, value = data[space + 1 : end - 1].partition(b"=")
            if not sep:
                raise ContainerImageError(self.label, "malformed PAX record")
            if key.startswith(b"GNU.sparse"):
                raise ContainerImageError(self.label, "GNU sparse members are not supported")
            out[key.decode("ascii", "replace")] = _decode(value)
            pos = end
        return out

    def _member(
        self,
        header: bytes,
        size: int,
        pax: dict[str, str],
        long_name: bytes | None,
        long_link: bytes | None,
    ) -> TarMember:
        limits = self.budget.limits
        name_b = header[0:100].split(b"\0", 1)[0]
        if header[257:263] == b"ustar\x00":
            prefix = header[345:500].split(b"\0", 1)[0]
            if prefix:
                name_b = prefix + b"/" + name_b
        name = pax.get("path") or _decode(long_name if long_name is not None else name_b)
        link_b = header[157:257].split(b"\0", 1)[0]
        link = pax.get("linkpath") or _decode(long_link if long_link is not None else link_b)
        for text, what in ((name, "member name"), (link, "link target")):
            if len(text.encode("utf-8", "surrogateescape")) > limits.max_name_bytes:
                raise ContainerImageError(self.label, f"{what} longer than the cap")
        try:
            size = int(pax["size"]) if "size" in pax else size
            uid = int(pax["uid"]) if "uid" in pax else _num(header[108:116], "uid", self.label)
            gid = int(pax["gid"]) if "gid" in pax else _num(header[116:124], "gid", self.label)
            mtime = (
                int(float(pax["mtime"]))
                if "mtime" in pax
                else _num(header[136:148], "mtime", self.label)
            )
        except (ValueError, OverflowError):
            raise ContainerImageError(self.label, f"{name}: bad number in PAX header") from None
        if size < 0:
            raise ContainerImageError(self.label, f"{name}: negative size")
        flag = header[156:157]
        kind = _KINDS.get(flag)
        if kind is None:
            self.budget.note(f"{self.label}: {name}: tar member type {flag!r} skipped")
            # Returning a placeholder keeps the data skip right for unknown types.
            return TarMember(name, "skip", 0, 0, 0, size, 0, "", self.pos)
        if kind == "file" and name.endswith("/"):
            kind = "dir"  # old V7 archives mark directories this way
        mode = _num(header[100:108], "mode", self.label) & 0o7777
        return TarMember(name, kind, mode, uid, gid, size, mtime, link, self.pos)
