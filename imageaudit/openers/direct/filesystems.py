"""ext2/3/4 and XFS through libfsext and libfsxfs, given a file object over one volume.

What the libraries do not say is read here from the on-disk inode: both report 0 as the
size of a directory, where the kernel (and so libguestfs) reports ``i_size`` (4096 for a
small ext4 directory). The inode is located from the superblock fields the specs define;
every offset is bounds-checked.

Names and symlink targets that are not UTF-8 make the libraries raise: such an entry is
counted and skipped (libguestfs' Python binding cannot name them either).

Specs followed: ext4 disk layout (kernel ``Documentation/filesystems/ext4``), XFS
``xfs_format.h`` (superblock, dinode core).
"""

from __future__ import annotations

import stat as stat_mod
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from imageaudit.openers.direct.blockdev import BlockDevice, DiskError, FileObject, Unsupported
from imageaudit.openers.direct.volumes import Volume

READABLE = ("ext2", "ext3", "ext4", "xfs")

Entry = Any  # a pyfsext/pyfsxfs file_entry; the bindings carry no type information


@dataclass(frozen=True, slots=True)
class Meta:
    """What the walk records of one inode."""

    inode: int
    mode: int  # full st_mode
    uid: int
    gid: int
    size: int
    mtime: int
    nlink: int
    link: bytes | None


class Filesystem:
    """One mounted-to-be filesystem: entries, metadata and bounded reads by inode number."""

    def __init__(self, vol: Volume) -> None:
        self.device = vol.device
        self.kind = vol.fstype
        self.dev = vol.dev
        if vol.fstype not in READABLE:
            raise Unsupported(f"{vol.device}: {vol.fstype} is not read by the direct reader")
        try:
            if vol.fstype == "xfs":
                import pyfsxfs  # type: ignore[import-not-found]

                self.volume = pyfsxfs.volume()
                self._inode_size = _XfsInodes(vol.dev).size
            else:
                import pyfsext  # type: ignore[import-not-found]

                self.volume = pyfsext.volume()
                self._inode_size = _ExtInodes(vol.dev).size
            self.volume.open_file_object(FileObject(vol.dev))
        except OSError as exc:
            raise DiskError(f"{vol.device}: cannot open the {vol.fstype} filesystem: "
                            f"{short_error(exc)}") from exc

    def root(self) -> Entry:
        try:
            return self.volume.get_root_directory()
        except OSError as exc:
            raise DiskError(f"{self.device}: no root directory: {short_error(exc)}") from exc

    def by_inode(self, inode: int) -> Entry:
        try:
            return self.volume.get_file_entry_by_inode(inode)
        except OSError as exc:
            raise DiskError(f"{self.device}: inode {inode}: {short_error(exc)}") from exc

    def meta(self, entry: Entry) -> Meta:
        mode = entry.get_file_mode()
        inode = entry.get_inode_number()
        size = entry.get_size()
        link: bytes | None = None
        if stat_mod.S_ISLNK(mode):
            target = entry.get_symbolic_link_target()
            link = (target or "").encode("utf-8")
        if stat_mod.S_ISDIR(mode):
            size = self._inode_size(inode)
        mtime = entry.get_modification_time_as_integer()
        return Meta(inode=inode, mode=mode, uid=entry.get_owner_identifier(),
                    gid=entry.get_group_identifier(), size=size,
                    mtime=(mtime or 0) // 1_000_000_000, nlink=entry.get_number_of_links(),
                    link=link)

    def children(self, entry: Entry) -> Iterator[tuple[bytes, Entry] | OSError]:
        """``(name, entry)`` of each child (no ``.``/``..``); an :class:`OSError` for one that
        cannot be read (undecodable name, corrupt directory block, an inode the library
        refuses), an :class:`EntryError` saying which one when the count is known."""
        try:
            count = entry.get_number_of_sub_file_entries()
        except OSError as exc:
            yield exc
            return
        for i in range(count):
            try:
                child = entry.get_sub_file_entry(i)
                name = child.get_name().encode("utf-8")
            except OSError as exc:
                yield EntryError(i, count, exc)
                continue
            yield name, child

    def read(self, inode: int, offset: int, size: int) -> bytes:
        entry = self.by_inode(inode)
        try:
            return bytes(entry.read_buffer_at_offset(size, offset))
        except OSError as exc:
            raise DiskError(
                f"{self.device}: inode {inode}: cannot read: {short_error(exc)}") from exc

    def lookup(self, path: str) -> Entry | None:
        """The entry at ``path`` inside this filesystem (no symlink followed), or ``None``."""
        try:
            return self.volume.get_file_entry_by_path(path)
        except OSError:
            return None


class EntryError(OSError):
    """Entry ``index`` (from 0) of the ``count`` a directory holds could not be read."""

    def __init__(self, index: int, count: int, cause: OSError) -> None:
        super().__init__(str(cause))
        self.index = index
        self.count = count
        self.cause = cause


def short_error(exc: BaseException) -> str:
    """libyal errors chain every frame's message; the first two say what went wrong."""
    parts = [p.strip() for p in str(exc).split(". ") if p.strip()]
    return ". ".join(parts[:2])[:300]


class _ExtInodes:
    """``i_size`` of an ext inode, read from the inode table (group descriptors, then inode)."""

    def __init__(self, dev: BlockDevice) -> None:
        sb = dev.pread(1024, 1024)
        if len(sb) < 1024:
            raise DiskError("ext superblock is truncated")
        self.dev = dev
        (self.inodes_count,) = struct.unpack_from("<I", sb, 0x0)
        first_data_block, log_block = struct.unpack_from("<II", sb, 0x14)
        (self.per_group,) = struct.unpack_from("<I", sb, 0x28)
        (self.inode_size,) = struct.unpack_from("<H", sb, 0x58)
        (incompat,) = struct.unpack_from("<I", sb, 0x60)
        (desc_size,) = struct.unpack_from("<H", sb, 0xFE)
        if log_block > 6 or not self.per_group or self.inode_size < 128:
            raise DiskError("ext superblock has invalid geometry")
        self.block = 1024 << log_block
        self.desc_size = desc_size if incompat & 0x80 and desc_size >= 64 else 32
        self.gdt = (first_data_block + 1) * self.block

    def size(self, inode: int) -> int:
        if not 1 <= inode <= self.inodes_count:
            raise DiskError(f"ext inode {inode} is out of range")
        group, index = divmod(inode - 1, self.per_group)
        desc = self.dev.pread(self.gdt + group * self.desc_size, self.desc_size)
        if len(desc) < self.desc_size:
            raise DiskError(f"ext group descriptor {group} lies past the end")
        (lo,) = struct.unpack_from("<I", desc, 8)
        hi = struct.unpack_from("<I", desc, 0x28)[0] if self.desc_size >= 64 else 0
        where = ((hi << 32) | lo) * self.block + index * self.inode_size
        raw = self.dev.pread(where, 0x70)
        if len(raw) < 0x70:
            raise DiskError(f"ext inode {inode} lies past the end")
        (lo_size,) = struct.unpack_from("<I", raw, 4)
        (hi_size,) = struct.unpack_from("<I", raw, 0x6C)
        return int((hi_size << 32) | lo_size)


class _XfsInodes:
    """``di_size`` of an XFS inode, located from the superblock geometry."""

    def __init__(self, dev: BlockDevice) -> None:
        sb = dev.pread(0, 512)
        if len(sb) < 512 or sb[:4] != b"XFSB":
            raise DiskError("XFS superblock is missing")
        self.dev = dev
        (self.block,) = struct.unpack_from(">I", sb, 4)
        (self.agblocks,) = struct.unpack_from(">I", sb, 84)
        (self.inode_size,) = struct.unpack_from(">H", sb, 104)
        self.inopblog, self.agblklog = sb[123], sb[124]
        if not 512 <= self.block <= 65536 or self.inode_size < 256 or self.agblklog > 32:
            raise DiskError("XFS superblock has invalid geometry")

    def size(self, inode: int) -> int:
        agno = inode >> (self.agblklog + self.inopblog)
        agbno = (inode >> self.inopblog) & ((1 << self.agblklog) - 1)
        index = inode & ((1 << self.inopblog) - 1)
        where = (agno * self.agblocks + agbno) * self.block + index * self.inode_size
        raw = self.dev.pread(where, 64)
        if len(raw) < 64 or raw[:2] != b"IN":
            raise DiskError(f"XFS inode {inode} is not where the superblock puts it")
        return int(struct.unpack_from(">Q", raw, 56)[0])
