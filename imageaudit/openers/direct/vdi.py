"""A small VirtualBox VDI reader of our own: the header and the block map, nothing else.

Dynamic and fixed images (types 1 and 2); a block map entry ``0xFFFFFFFF`` (never written) or
``0xFFFFFFFE`` (discarded) reads as zeros. Every field is checked before use: block size a
power of two, no ``block_extra``, the map inside the file, enough blocks for the disk size,
every data block inside the file.

Spec followed: the VDI header as qemu ``block/vdi.c`` and VirtualBox ``VDICore.h`` describe it.
"""

from __future__ import annotations

import struct

from imageaudit.openers.direct.blockdev import BlockDevice, DiskError, read_exact

SIGNATURE = 0xBEDA107F
UNALLOCATED = 0xFFFFFFFF
DISCARDED = 0xFFFFFFFE
MAX_BLOCKS = 1 << 24  # 16 Mi blocks of 1 MiB: 16 TiB, far over the virtual-size cap
HEADER = 0x190


class Vdi:
    def __init__(self, file: BlockDevice) -> None:
        self.file = file
        head = read_exact(file, 0, HEADER, "VDI header")
        (signature, version, _hsize, image_type) = struct.unpack_from("<IIII", head, 0x40)
        if signature != SIGNATURE:
            raise DiskError("not a VDI image (bad signature)")
        if version >> 16 != 1:
            raise DiskError(f"VDI version {version:#x} is not supported")
        if image_type not in (1, 2):
            raise DiskError(f"VDI image type {image_type} is not dynamic/fixed")
        offset_bmap, offset_data = struct.unpack_from("<II", head, 0x154)
        sector_size = struct.unpack_from("<I", head, 0x168)[0]
        (disk_size, block_size, block_extra, blocks) = struct.unpack_from("<QIII", head, 0x170)
        if sector_size != 512:
            raise DiskError(f"VDI sector size {sector_size} is not 512")
        if block_size < 512 or block_size & (block_size - 1) or block_size > 64 << 20:
            raise DiskError(f"VDI block size {block_size} is invalid")
        if block_extra:
            raise DiskError(f"VDI block_extra {block_extra} is not supported")
        if blocks > MAX_BLOCKS:
            raise DiskError(f"VDI with {blocks} blocks is too large")
        if blocks * block_size < disk_size:
            raise DiskError(f"VDI holds {blocks} blocks of {block_size}, less than its "
                            f"disk size {disk_size}")
        if offset_bmap < HEADER:
            raise DiskError(f"VDI block map at {offset_bmap} overlaps the header")
        if offset_data < offset_bmap + blocks * 4:
            raise DiskError(f"VDI block map of {blocks} entries at {offset_bmap} runs into the "
                            f"data area at {offset_data}")
        raw = read_exact(file, offset_bmap, blocks * 4, "VDI block map")
        self.map = struct.unpack(f"<{blocks}I", raw)
        self.block_size = block_size
        self.data = offset_data
        self.size = disk_size

    def pread(self, offset: int, size: int) -> bytes:
        size = min(size, self.size - offset)
        if offset < 0 or size <= 0:
            return b""
        out = bytearray()
        pos, end = offset, offset + size
        while pos < end:
            block, within = divmod(pos, self.block_size)
            n = min(self.block_size - within, end - pos)
            entry = self.map[block]
            if entry in (UNALLOCATED, DISCARDED):
                out += bytes(n)
            else:
                if entry >= len(self.map):
                    raise DiskError(f"VDI block {block} maps to data block {entry}, past the "
                                    f"{len(self.map)} the image holds")
                host = self.data + entry * self.block_size + within
                out += read_exact(self.file, host, n, f"VDI data block {entry}")
            pos += n
        return bytes(out)
