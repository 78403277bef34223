"""A small qcow2 (v2/v3) reader of our own: L1/L2 tables, zero clusters, compressed clusters.

Not libqcow: it returns zeros for compressed clusters without an error (a ``qemu-img convert
-c`` image then looks empty and would pass as clean), and refuses zstd images. This reader
decodes deflate and zstd clusters, and refuses anything it does not understand (extended L2,
encryption, backing or data files: the header check has refused those already) rather than
returning bytes it is unsure of.

Every table and cluster is bounds-checked against the file before it is read: an L1/L2
table or a data cluster past the end of the file, a table or cluster that overlaps the
header or the L1 table, an L1 table too small for the virtual size, or a compressed cluster
that does not decode to exactly one cluster is a :class:`~.blockdev.DiskError`.

Spec followed: qemu ``docs/interop/qcow2.txt``.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections import OrderedDict

from imageaudit.openers.direct.blockdev import BlockDevice, DiskError, read_exact

MAGIC = b"QFI\xfb"
L1_MAX_BYTES = 32 * 1024 * 1024  # qemu's QCOW_MAX_L1_SIZE
OFFSET_MASK = 0x00FFFFFFFFFFFE00
COMPRESSED = 1 << 62
ZERO_FLAG = 1
INCOMPAT_COMPRESSION_TYPE = 1 << 3
INCOMPAT_EXTENDED_L2 = 1 << 4
INCOMPAT_KNOWN = 0b11111
L2_CACHE = 64
CLUSTER_CACHE = 32


def _zstd_decompress(data: bytes, size: int) -> bytes:
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data))
    out = bytearray()
    while len(out) < size:
        chunk = reader.read(size - len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)


class Qcow2:
    """Guest-visible bytes of a qcow2 image held by ``file`` (a :class:`BlockDevice`)."""

    def __init__(self, file: BlockDevice) -> None:
        self.file = file
        head = read_exact(file, 0, 112 if file.size >= 112 else 72, "qcow2 header")
        if head[:4] != MAGIC:
            raise DiskError("not a qcow2 image (no QFI magic)")
        (version, backing_off, backing_size, cluster_bits, size, crypt, l1_size, l1_off) = (
            struct.unpack_from(">IQIIQIIQ", head, 4))
        if version not in (2, 3):
            raise DiskError(f"qcow2 version {version} is not supported")
        if backing_off or backing_size:
            raise DiskError("qcow2 image has a backing file")
        if not 9 <= cluster_bits <= 21:
            raise DiskError(f"qcow2 cluster_bits {cluster_bits} out of range 9..21")
        if crypt:
            raise DiskError(f"qcow2 image is encrypted (crypt_method {crypt})")
        self.cluster_bits = cluster_bits
        self.cluster_size = cs = 1 << cluster_bits
        self.size = size
        self.compression = "deflate"
        header_len = 72
        if version == 3:
            incompat, _compat, _autoclear, _order, header_len = struct.unpack_from(
                ">QQQII", head, 72)
            if incompat & ~INCOMPAT_KNOWN or incompat & (1 << 2):
                raise DiskError(f"qcow2 incompatible features {incompat:#x} are not supported")
            if incompat & INCOMPAT_EXTENDED_L2:
                raise DiskError("qcow2 extended L2 entries (subclusters) are not supported")
            if incompat & INCOMPAT_COMPRESSION_TYPE:
                if header_len < 105:
                    raise DiskError("qcow2 compression-type bit set but no compression type field")
                ctype = head[104]
                if ctype not in (0, 1):
                    raise DiskError(f"qcow2 compression type {ctype} is unknown")
                self.compression = "zstd" if ctype == 1 else "deflate"
        self.l2_entries = cs // 8
        need_l1 = -(-size // (self.l2_entries * cs)) if size else 0
        if l1_size < need_l1:
            raise DiskError(f"qcow2 L1 table of {l1_size} entries is too small for the "
                            f"virtual size {size} (needs {need_l1})")
        if l1_size * 8 > L1_MAX_BYTES:
            raise DiskError(f"qcow2 L1 table of {l1_size} entries is over {L1_MAX_BYTES} bytes")
        if need_l1 and (l1_off % cs or l1_off == 0):
            raise DiskError(f"qcow2 L1 table offset {l1_off:#x} is not cluster-aligned")
        self.l1_range = (l1_off, l1_off + need_l1 * 8)
        raw = read_exact(file, l1_off, need_l1 * 8, "qcow2 L1 table") if need_l1 else b""
        self.l1 = struct.unpack(f">{need_l1}Q", raw)
        self.header_end = max(header_len, 72)
        self._l2: OrderedDict[int, tuple[int, ...]] = OrderedDict()
        self._clusters: OrderedDict[int, bytes] = OrderedDict()
        self.compressed_clusters = 0

    # -- metadata ----------------------------------------------------------------------

    def _check_host_range(self, offset: int, length: int, what: str) -> None:
        if offset + length > self.file.size:
            raise DiskError(f"qcow2 {what} at {offset:#x} lies past the end of the file")
        if offset < self.cluster_size:
            raise DiskError(f"qcow2 {what} at {offset:#x} overlaps the header cluster")
        lo, hi = self.l1_range
        if offset < hi and offset + length > lo:
            raise DiskError(f"qcow2 {what} at {offset:#x} overlaps the L1 table")

    def _l2_table(self, index: int) -> tuple[int, ...] | None:
        entry = self.l1[index]
        offset = entry & OFFSET_MASK
        if offset == 0:
            return None
        if offset % self.cluster_size:
            raise DiskError(f"qcow2 L2 table offset {offset:#x} is not cluster-aligned")
        table = self._l2.get(offset)
        if table is not None:
            self._l2.move_to_end(offset)
            return table
        self._check_host_range(offset, self.cluster_size, "L2 table")
        raw = read_exact(self.file, offset, self.cluster_size, "qcow2 L2 table")
        table = struct.unpack(f">{self.l2_entries}Q", raw)
        self._l2[offset] = table
        if len(self._l2) > L2_CACHE:
            self._l2.popitem(last=False)
        return table

    # -- data --------------------------------------------------------------------------

    def _cluster(self, vcluster: int) -> bytes | None:
        """The whole guest cluster ``vcluster`` (``None`` when it reads as zeros)."""
        l1_index, l2_index = divmod(vcluster, self.l2_entries)
        table = self._l2_table(l1_index)
        if table is None:
            return None
        entry = table[l2_index]
        if entry & COMPRESSED:
            return self._compressed(vcluster, entry)
        offset = entry & OFFSET_MASK
        if entry & ZERO_FLAG or offset == 0:
            return None
        if offset % self.cluster_size:
            raise DiskError(f"qcow2 data cluster offset {offset:#x} is not cluster-aligned")
        want = min(self.cluster_size, self.size - vcluster * self.cluster_size)
        self._check_host_range(offset, want, "data cluster")
        if offset in self._l2:
            raise DiskError(f"qcow2 data cluster at {offset:#x} is also an L2 table")
        return read_exact(self.file, offset, want, "qcow2 data cluster")

    def _compressed(self, vcluster: int, entry: int) -> bytes:
        cached = self._clusters.get(vcluster)
        if cached is not None:
            return cached
        shift = 62 - (self.cluster_bits - 8)
        offset = entry & ((1 << shift) - 1)
        sectors = ((entry >> shift) & ((1 << (self.cluster_bits - 8)) - 1)) + 1
        length = sectors * 512 - (offset & 511)
        length = min(length, self.file.size - offset)  # the last one may end at EOF
        if length <= 0:
            raise DiskError(f"qcow2 compressed cluster at {offset:#x} lies past the end")
        self._check_host_range(offset, length, "compressed cluster")
        data = read_exact(self.file, offset, length, "qcow2 compressed cluster")
        try:
            if self.compression == "zstd":
                out = _zstd_decompress(data, self.cluster_size)
            else:
                out = zlib.decompressobj(-12).decompress(data, self.cluster_size)
        except Exception as exc:  # zlib.error, zstd.ZstdError: both mean a corrupt cluster
            raise DiskError(
                f"qcow2 compressed cluster {vcluster} at {offset:#x} does not decode: {exc}"
            ) from exc
        if len(out) != self.cluster_size:
            raise DiskError(f"qcow2 compressed cluster {vcluster} at {offset:#x} decodes to "
                            f"{len(out)} bytes, not {self.cluster_size}")
        self.compressed_clusters += 1
        self._clusters[vcluster] = out
        if len(self._clusters) > CLUSTER_CACHE:
            self._clusters.popitem(last=False)
        return out

    def pread(self, offset: int, size: int) -> bytes:
        size = min(size, self.size - offset)
        if offset < 0 or size <= 0:
            return b""
        out = bytearray()
        cs = self.cluster_size
        pos = offset
        end = offset + size
        while pos < end:
            vcluster, within = divmod(pos, cs)
            n = min(cs - within, end - pos)
            data = self._cluster(vcluster)
            if data is None:
                out += bytes(n)
            else:
                piece = data[within: within + n]
                if len(piece) != n:
                    raise DiskError(f"qcow2 cluster {vcluster} is short")
                out += piece
            pos += n
        return bytes(out)
