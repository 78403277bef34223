"""Find the volumes on a disk: GPT or MBR partitions (extended included), LVM2 logical volumes,
or the whole disk; and say what each holds (filesystem type, label, UUID) from its superblock.

Devices are named as the libguestfs appliance names them (``/dev/sda1``, logical partitions
from ``/dev/sda5``, ``/dev/VG/LV``) so the two openers report the same layout. Tables are
read by our own code (the specs are short); LVM2 metadata by libvslvm over file objects.
Every count and offset is capped or bounds-checked; a partition past the end of the disk is
noted and skipped, never read; an extended partition chain that loops, leaves the disk or
is longer than the cap is an error.

Specs followed: UEFI 2.10 section 5 (GPT), the MBR/EBR layout (Linux ``block/partitions/
msdos.c``), ext4 superblock (kernel ``fs/ext4/ext4.h``), XFS superblock (``xfs_format.h``),
LVM2 label (``lib/format_text/layout.h``).
"""

from __future__ import annotations

import re
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from imageaudit.openers.direct.blockdev import (
    BlockDevice,
    DiskError,
    FileObject,
    LibyalDevice,
    Slice,
    libyal_reason,
)

SECTOR = 512
MAX_GPT_ENTRIES = 1024
MAX_LOGICAL = 128
EXTENDED_TYPES = (0x05, 0x0F, 0x85)
MAX_LVS = 256
MAX_LVM_METADATA = 1024 * 1024
MDA_MAGIC = b" LVM2 x[5A%r0N*>"

EXT_INCOMPAT_EXT4 = 0x0040 | 0x0080 | 0x0200 | 0x0400  # extents, 64bit, flex_bg, mmp...
EXT_RO_COMPAT_EXT4 = 0x0008 | 0x0020 | 0x0040 | 0x0400  # huge_file, dir_nlink, extra_isize, csum


@dataclass
class Volume:
    """One block device the disk holds, and what is on it."""

    device: str
    dev: BlockDevice
    fstype: str = "unknown"
    label: str = ""
    uuid: str = ""
    partuuid: str = ""
    partlabel: str = ""
    partition: bool = False


@dataclass
class Layout:
    volumes: list[Volume] = field(default_factory=list)
    table: str = "none"
    notes: list[str] = field(default_factory=list)

    @property
    def partitions(self) -> list[str]:
        return [v.device for v in self.volumes if v.partition]


def _gpt(disk: BlockDevice, name: str, notes: list[str]) -> list[Volume] | None:
    head = disk.pread(SECTOR, SECTOR)
    if head[:8] != b"EFI PART":
        return None
    entries_lba, count, entry_size = struct.unpack_from("<QII", head, 72)
    if count > MAX_GPT_ENTRIES or entry_size < 128 or entry_size > 4096 or entry_size % 8:
        raise DiskError(f"GPT with {count} entries of {entry_size} bytes is not supported")
    table = disk.pread(entries_lba * SECTOR, count * entry_size)
    if len(table) != count * entry_size:
        raise DiskError("GPT partition entries lie past the end of the disk")
    out: list[Volume] = []
    for i in range(count):
        raw = table[i * entry_size: i * entry_size + 128]
        if raw[:16] == bytes(16):
            continue
        first, last = struct.unpack_from("<QQ", raw, 32)
        device = f"{name}{i + 1}"
        if last < first or (last + 1) * SECTOR > disk.size:
            notes.append(f"{device}: GPT partition {first}-{last} lies outside the disk; skipped")
            continue
        part = Volume(
            device=device, dev=Slice(disk, first * SECTOR, (last - first + 1) * SECTOR),
            partuuid=str(uuid.UUID(bytes_le=raw[16:32])),
            partlabel=raw[56:128].decode("utf-16-le", "replace").split("\0", 1)[0],
            partition=True,
        )
        out.append(part)
    return out


def _mbr_entries(sector: bytes) -> list[tuple[int, int, int]]:
    """(type, start LBA, sectors) of the four entries of an MBR/EBR."""
    out = []
    for i in range(4):
        ptype = sector[446 + 16 * i + 4]
        start, count = struct.unpack_from("<II", sector, 446 + 16 * i + 8)
        out.append((ptype, start, count))
    return out


def _logicals(disk: BlockDevice, name: str, extended: int,
              add: Callable[[int, int, int], None], notes: list[str], logical: int) -> int:
    """Follow the EBR chain of the extended partition at sector ``extended``, numbering its
    logical partitions from ``logical``; return the next free number.

    A first EBR without the 55AA signature is an empty extended partition (as Linux reads
    it). Past that, the chain is the disk's word about which partitions exist: a link that
    loops, leaves the disk, lands on a sector that is no EBR, or runs past
    :data:`MAX_LOGICAL` EBRs is a :class:`DiskError`, never a shorter list of partitions
    (a partition fstab names could silently go missing with it).
    """
    seen: set[int] = set()
    ebr, came_from = extended, 0
    while True:
        if ebr in seen:
            raise DiskError(f"{name}: extended partition chain loops (EBR at sector "
                            f"{came_from} links back to sector {ebr})")
        if len(seen) >= MAX_LOGICAL:
            raise DiskError(f"{name}: extended partition chain is longer than "
                            f"{MAX_LOGICAL} EBRs")
        seen.add(ebr)
        if (ebr + 1) * SECTOR > disk.size:
            where = "the extended partition" if not came_from else f"the EBR at sector {came_from}"
            raise DiskError(f"{name}: {where} links to an EBR at sector {ebr}, past the end "
                            f"of the disk ({disk.size // SECTOR} sectors)")
        data = disk.pread(ebr * SECTOR, SECTOR)
        if len(data) < SECTOR or data[510:512] != b"\x55\xaa":
            if not came_from:
                notes.append(f"{name}: extended partition at sector {ebr} holds no EBR; "
                             "no logical partitions")
                return logical
            raise DiskError(f"{name}: the EBR at sector {came_from} links to sector {ebr}, "
                            "which is not an EBR (no 55AA signature)")
        first, second = _mbr_entries(data)[:2]
        if first[0] and first[0] not in EXTENDED_TYPES:
            add(logical, ebr + first[1], first[2])
            logical += 1
        if second[0] not in EXTENDED_TYPES or not second[2]:
            return logical  # as Linux: a link is an extended entry with sectors
        ebr, came_from = extended + second[1], ebr


def _mbr(disk: BlockDevice, name: str, notes: list[str]) -> list[Volume] | None:
    sector = disk.pread(0, SECTOR)
    if len(sector) < SECTOR or sector[510:512] != b"\x55\xaa":
        return None
    entries = _mbr_entries(sector)
    if any(t == 0xEE for t, _, _ in entries):
        return None  # protective MBR without a GPT header: nothing we can trust
    if not any(t for t, _, _ in entries):
        return None
    disk_id = struct.unpack_from("<I", sector, 440)[0]
    out: list[Volume] = []

    def add(number: int, start: int, count: int) -> None:  # numbered as Linux numbers them
        device = f"{name}{number}"
        if count == 0 or (start + count) * SECTOR > disk.size:
            notes.append(f"{device}: MBR partition {start}+{count} lies outside the disk; skipped")
            return
        out.append(Volume(device=device, dev=Slice(disk, start * SECTOR, count * SECTOR),
                          partuuid=f"{disk_id:08x}-{number:02x}", partition=True))

    logical = 5
    for i, (ptype, start, count) in enumerate(entries):
        if ptype == 0:
            continue
        if ptype not in EXTENDED_TYPES:
            add(i + 1, start, count)
            continue
        logical = _logicals(disk, name, start, add, notes, logical)
    return out


def _ext_type(sb: bytes) -> str:
    compat, incompat, ro_compat = struct.unpack_from("<III", sb, 0x5C)
    if incompat & EXT_INCOMPAT_EXT4 or ro_compat & EXT_RO_COMPAT_EXT4:
        return "ext4"
    return "ext3" if compat & 0x4 else "ext2"


def probe(vol: Volume) -> None:
    """Fill ``fstype``/``label``/``uuid`` of ``vol`` from its first 68 KiB."""
    head = vol.dev.pread(0, 0x11000)
    if len(head) >= 2048 and head[1024 + 0x38: 1024 + 0x3A] == b"\x53\xef":
        sb = head[1024:2048]
        vol.fstype = _ext_type(sb)
        vol.uuid = str(uuid.UUID(bytes=sb[0x68:0x78]))
        vol.label = sb[0x78:0x88].split(b"\0", 1)[0].decode("utf-8", "replace")
    elif head[:4] == b"XFSB":
        vol.fstype = "xfs"
        vol.uuid = str(uuid.UUID(bytes=head[32:48]))
        vol.label = head[108:120].split(b"\0", 1)[0].decode("utf-8", "replace")
    elif any(head[s * SECTOR: s * SECTOR + 8] == b"LABELONE" for s in range(4)):
        vol.fstype = "LVM2_member"
    elif head[0x10040:0x10048] == b"_BHRfS_M":
        vol.fstype = "btrfs"
    elif head[:6] == b"LUKS\xba\xbe":
        vol.fstype = "crypto_LUKS"
    elif head[4086:4096] in (b"SWAPSPACE2", b"SWAP-SPACE"):
        vol.fstype = "swap"
    elif head[:4] == b"hsqs":
        vol.fstype = "squashfs"


def lvm_metadata(pv: BlockDevice) -> str:
    """The current text metadata of an LVM2 PV (label, PV header, first metadata area)."""
    head = pv.pread(0, 4 * SECTOR)
    for s in range(4):
        if head[s * SECTOR: s * SECTOR + 8] == b"LABELONE":
            label = s * SECTOR
            break
    else:
        raise DiskError("LVM2 label not found")
    offset = struct.unpack_from("<I", head, label + 20)[0]
    if not 32 <= offset < SECTOR:
        raise DiskError(f"LVM2 PV header offset {offset} is invalid")
    area = pv.pread(label + offset, SECTOR * 4)
    pos = 40
    lists: list[list[tuple[int, int]]] = [[], []]
    for current in lists:  # data areas, then metadata areas, each ending with a zero entry
        while True:
            if pos + 16 > len(area) or len(current) > 8:
                raise DiskError("LVM2 PV header area list is too long")
            where, size = struct.unpack_from("<QQ", area, pos)
            pos += 16
            if where == 0:
                break
            current.append((where, size))
    if not lists[1]:
        raise DiskError("LVM2 PV has no metadata area on this disk")
    mda, mda_size = lists[1][0]
    header = pv.pread(mda, SECTOR)
    if header[4:20] != MDA_MAGIC:
        raise DiskError("LVM2 metadata area header has a bad magic")
    text_off, text_size = struct.unpack_from("<QQ", header, 40)
    if text_size > MAX_LVM_METADATA or text_off + text_size > mda_size:
        raise DiskError(f"LVM2 metadata of {text_size} bytes at {text_off} is not supported "
                        "(too large, or wrapped round its area)")
    return pv.pread(mda + text_off, text_size).decode("utf-8", "replace")


_SEGMENT_TYPE = re.compile(r'^\s*type\s*=\s*"([^"]*)"', re.M)
_STRIPES = re.compile(r"^\s*stripe_count\s*=\s*(\d+)", re.M)


def check_linear(text: str) -> None:
    """Refuse metadata with a segment that is not linear (one stripe of type striped)."""
    types = set(_SEGMENT_TYPE.findall(text))
    stripes = {int(n) for n in _STRIPES.findall(text)}
    if types - {"striped"} or stripes - {1}:
        raise DiskError(f"LVM2 volume group has segments other than linear "
                        f"(types {sorted(types)}, stripe counts {sorted(stripes)})")


def _lvm(pvs: list[Volume], notes: list[str]) -> list[Volume]:
    """Logical volumes of the one volume group the PVs of this disk make."""
    import pyvslvm  # type: ignore[import-not-found]

    for pv in pvs:
        check_linear(lvm_metadata(pv.dev))
    handle = pyvslvm.handle()
    objects = [FileObject(pv.dev) for pv in pvs]
    try:
        handle.open_file_object(objects[0])
        handle.open_physical_volume_files_as_file_objects(objects)
        vg = handle.get_volume_group()
        name = vg.get_name()
        out: list[Volume] = []
        count = vg.get_number_of_logical_volumes()
        if count > MAX_LVS:
            raise DiskError(f"LVM volume group {name} with {count} logical volumes")
        for i in range(count):
            lv = vg.get_logical_volume(i)
            out.append(Volume(device=f"/dev/{name}/{lv.get_name()}",
                              dev=LibyalDevice(lv, lv.get_size(), f"LV {lv.get_name()}")))
        return out
    except OSError as exc:
        raise DiskError(f"libvslvm cannot read the LVM2 volume group: "
                        f"{libyal_reason(exc)}") from exc


def discover(disk: BlockDevice, name: str = "/dev/sda",
             log: Callable[[str], None] | None = None) -> Layout:
    """Every volume on ``disk``: partitions (or the whole disk), then LVs, each probed."""
    layout = Layout()
    parts = _gpt(disk, name, layout.notes)
    if parts is not None:
        layout.table = "gpt"
    else:
        parts = _mbr(disk, name, layout.notes)
        layout.table = "mbr" if parts is not None else "none"
    if parts is None:
        parts = [Volume(device=name, dev=disk)]
    for vol in parts:
        probe(vol)
    layout.volumes.extend(parts)
    pvs = [v for v in parts if v.fstype == "LVM2_member"]
    if pvs:
        lvs = _lvm(pvs, layout.notes)
        for lv in lvs:
            probe(lv)
        layout.volumes.extend(lvs)
    return layout
