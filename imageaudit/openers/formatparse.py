"""Pure header parsing for :mod:`imageaudit.openers.formatcheck` (no I/O but a read callback).

Each parser gets ``read(pos, size) -> bytes`` over the image's byte range and its length, and
returns ``(virtual_size, details)`` or raises :class:`Refused` with the reason. Nothing here
trusts a field before bounds-checking it; every read is of a fixed, small size.
"""

from __future__ import annotations

import re
import struct
import uuid
from collections.abc import Callable

Reader = Callable[[int, int], bytes]
Result = tuple[str, int, dict[str, object]]

QCOW2_MAGIC = b"QFI\xfb"
QED_MAGIC = b"QED\x00"
VMDK_MAGIC = b"KDMV"
VDI_SIGNATURE = 0xBEDA107F
VHDX_MAGIC = b"vhdxfile"
VPC_COOKIE = b"conectix"
ISO_MAGIC = b"CD001"
GPT_MAGIC = b"EFI PART"
VMDK_DESCRIPTOR_MARK = b"# Disk DescriptorFile"

# qcow2 incompatible feature bits qemu 7.2 knows: dirty, corrupt, external data file,
# compression type, extended L2. Bit 2 is refused on its own: it names a host file.
QCOW2_INCOMPAT_DATA_FILE = 1 << 2
QCOW2_INCOMPAT_KNOWN = 0b11111
VMDK_CREATE_TYPES = ("monolithicSparse", "streamOptimized")
MAX_VMDK_DESCRIPTOR = 64 * 1024

_VHDX_METADATA_REGION = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
_VHDX_FILE_PARAMETERS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B").bytes_le
_VHDX_VIRTUAL_DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8").bytes_le
_VHDX_PARENT_LOCATOR = uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C").bytes_le


class Refused(Exception):
    """The header is unsafe or malformed; the message is the reason."""


def _need(data: bytes, size: int, what: str) -> bytes:
    if len(data) < size:
        raise Refused(f"truncated {what} header ({len(data)} of {size} bytes)")
    return data


def parse_qcow2(read: Reader, length: int) -> tuple[int, dict[str, object]]:
    head = read(0, 112)
    _need(head, 72, "qcow2")
    version, backing_off, backing_size, cluster_bits, size, crypt = struct.unpack_from(
        ">IQIIQI", head, 4
    )
    if version not in (2, 3):
        raise Refused(f"qcow2 version {version} is not supported (only 2 and 3)")
    if backing_off != 0 or backing_size != 0:
        raise Refused("qcow2 image has a backing file (header bytes 8-15 are not zero)")
    if not 9 <= cluster_bits <= 21:
        raise Refused(f"qcow2 cluster_bits {cluster_bits} out of range 9..21")
    if crypt != 0:
        raise Refused(f"qcow2 image is encrypted (crypt_method {crypt})")
    details: dict[str, object] = {"qcow2_version": version, "cluster_size": 1 << cluster_bits}
    if version == 3:
        _need(head, 104, "qcow2 v3")
        incompat, _compat, _autoclear, _refcount_order, header_len = struct.unpack_from(
            ">QQQII", head, 72
        )
        if incompat & QCOW2_INCOMPAT_DATA_FILE:
            raise Refused("qcow2 image uses an external data file (incompatible feature bit 2)")
        unknown = incompat & ~QCOW2_INCOMPAT_KNOWN
        if unknown:
            raise Refused(f"qcow2 image has unknown incompatible feature bits {unknown:#x}")
        if header_len < 104 or header_len > (1 << cluster_bits):
            raise Refused(f"qcow2 header_length {header_len} is invalid")
        details["incompatible_features"] = incompat
    _no_text_descriptor(read, min(1 << cluster_bits, 4096), "qcow2")
    return size, details


def _no_text_descriptor(read: Reader, span: int, fmt: str) -> None:
    head = read(0, span)
    if VMDK_DESCRIPTOR_MARK in head or b"createType" in head:
        raise Refused(f"{fmt} header also carries a VMDK descriptor (looks like two formats)")


_EXTENT_RE = re.compile(
    r'^(RW|RDONLY|NOACCESS)\s+(\d+)\s+(\w+)(?:\s+"([^"]*)"(?:\s+(\d+))?)?\s*$'
)
_KEY_RE = re.compile(r'^([A-Za-z0-9_.]+)\s*=\s*"?([^"]*)"?\s*$')


def parse_vmdk_descriptor(text: str, embedded: bool) -> dict[str, object]:
    """Check a VMDK descriptor: create type, extents, no parent link."""
    keys: dict[str, str] = {}
    extents: list[tuple[str, str]] = []
    for raw in text.split("\n"):
        line = raw.strip().rstrip("\x00")
        if not line or line.startswith("#"):
            continue
        m = _EXTENT_RE.match(line)
        if m:
            extents.append((m.group(3), m.group(4) or ""))
            continue
        k = _KEY_RE.match(line)
        if k:
            keys[k.group(1)] = k.group(2)
    create = keys.get("createType")
    if create not in VMDK_CREATE_TYPES:
        raise Refused(f"VMDK createType {create!r} is not monolithicSparse/streamOptimized")
    if "parentFileNameHint" in keys or keys.get("parentCID", "ffffffff").lower() != "ffffffff":
        raise Refused("VMDK descriptor links a parent disk (parentFileNameHint/parentCID)")
    for _kind, fname in extents:
        if "/" in fname or "\\" in fname:
            raise Refused(f"VMDK extent {fname!r} points at a host path")
    if not embedded:
        names = ", ".join(repr(f) for _, f in extents) or "none"
        raise Refused(f"VMDK descriptor file refers to extents outside the file ({names})")
    if len(extents) != 1 or extents[0][0] != "SPARSE":
        raise Refused(f"VMDK descriptor must name exactly one SPARSE extent, found {extents}")
    return {"create_type": create, "extent": extents[0][1]}


def parse_vmdk(read: Reader, length: int) -> tuple[int, dict[str, object]]:
    head = _need(read(0, 512), 512, "VMDK sparse")
    version, _flags, capacity, _grain, desc_off, desc_size = struct.unpack_from(
        "<IIQQQQ", head, 4
    )
    if version not in (1, 2, 3):
        raise Refused(f"VMDK sparse version {version} is not supported")
    if desc_off == 0 or desc_size == 0:
        raise Refused("VMDK sparse extent has no embedded descriptor")
    if desc_size * 512 > MAX_VMDK_DESCRIPTOR:
        raise Refused(f"VMDK descriptor of {desc_size} sectors is too large")
    if desc_off * 512 + desc_size * 512 > length:
        raise Refused("truncated VMDK: descriptor lies past the end of the file")
    text = read(desc_off * 512, desc_size * 512).split(b"\x00", 1)[0]
    details = parse_vmdk_descriptor(text.decode("utf-8", "replace"), embedded=True)
    return capacity * 512, details


def parse_vdi(read: Reader, length: int) -> tuple[int, dict[str, object]]:
    head = _need(read(0, 0x180), 0x180, "VDI")
    version, _hsize, image_type = struct.unpack_from("<III", head, 0x44)
    if image_type not in (1, 2):
        raise Refused(f"VDI image type {image_type} is not dynamic/fixed (differencing?)")
    (disk_size,) = struct.unpack_from("<Q", head, 0x170)
    return disk_size, {"vdi_version": version, "vdi_type": image_type}


def parse_vhdx(read: Reader, length: int) -> tuple[int, dict[str, object]]:
    region = _need(read(192 * 1024, 4096), 4096, "VHDX region table")
    if region[:4] != b"regi":
        raise Refused("VHDX region table signature missing")
    (count,) = struct.unpack_from("<I", region, 8)
    if count > 2047:
        raise Refused(f"VHDX region table with {count} entries")
    meta_off = meta_len = None
    for i in range(count):
        guid = region[16 + 32 * i: 32 + 32 * i]
        off, ln = struct.unpack_from("<QI", region, 32 + 32 * i)
        if guid == _VHDX_METADATA_REGION:
            meta_off, meta_len = off, ln
    if meta_off is None or meta_len is None or meta_len < 64 or meta_off + meta_len > length:
        raise Refused("VHDX metadata region missing or outside the file")
    table = _need(read(meta_off, 64 * 1024), 32, "VHDX metadata table")
    if table[:8] != b"metadata":
        raise Refused("VHDX metadata table signature missing")
    (entries,) = struct.unpack_from("<H", table, 10)
    vsize: int | None = None
    for i in range(min(entries, 2047)):
        base = 32 + 32 * i
        if base + 32 > len(table):
            raise Refused("truncated VHDX metadata table")
        guid = table[base: base + 16]
        item_off, item_len = struct.unpack_from("<II", table, base + 16)
        if guid == _VHDX_PARENT_LOCATOR:
            raise Refused("VHDX image is differencing (has a parent locator)")
        if guid == _VHDX_VIRTUAL_DISK_SIZE and item_len >= 8:
            (vsize,) = struct.unpack("<Q", _need(read(meta_off + item_off, 8), 8, "VHDX size"))
        if guid == _VHDX_FILE_PARAMETERS and item_len >= 8:
            _bs, flags = struct.unpack("<II", _need(read(meta_off + item_off, 8), 8, "VHDX"))
            if flags & 2:
                raise Refused("VHDX image is differencing (HasParent flag)")
    if vsize is None:
        raise Refused("VHDX metadata has no virtual disk size")
    return vsize, {}


def parse_vpc(footer: bytes) -> tuple[int, dict[str, object]]:
    _need(footer, 512, "VHD footer")
    (current,) = struct.unpack_from(">Q", footer, 48)
    (disk_type,) = struct.unpack_from(">I", footer, 60)
    if disk_type not in (2, 3):
        raise Refused(f"VHD disk type {disk_type} is not fixed/dynamic (differencing?)")
    return current, {"vhd_type": "fixed" if disk_type == 2 else "dynamic"}


def magics(read: Reader, length: int) -> list[str]:
    """Every format signature present, in a fixed order (used to spot polyglots)."""
    head = read(0, 1024)
    found: list[str] = []
    if head[:4] == QCOW2_MAGIC:
        found.append("qcow2")
    if head[:4] == QED_MAGIC:
        found.append("qed")
    if head[:4] == VMDK_MAGIC:
        found.append("vmdk")
    if head[:len(VMDK_DESCRIPTOR_MARK)] == VMDK_DESCRIPTOR_MARK:
        found.append("vmdk-descriptor")
    if len(head) >= 0x44 and struct.unpack_from("<I", head, 0x40)[0] == VDI_SIGNATURE:
        found.append("vdi")
    if head[:8] == VHDX_MAGIC:
        found.append("vhdx")
    if head[:8] == VPC_COOKIE or (length >= 512 and read(length - 512, 8) == VPC_COOKIE):
        found.append("vpc")
    if any(read(off, 5) == ISO_MAGIC for off in (0x8001, 0x8801, 0x9001)):
        found.append("iso9660")
    if head[512:520] == GPT_MAGIC:
        found.append("gpt")
    if head[510:512] == b"\x55\xaa":
        found.append("mbr")
    return found


_CONTAINERS = ("qcow2", "qed", "vmdk", "vmdk-descriptor", "vdi", "vhdx", "vpc")

# (offset, bytes, name) of filesystems and volume formats a whole-disk raw image may start with.
_FS_SIGNATURES = (
    (1080, b"\x53\xef", "ext2/3/4"),
    (0, b"XFSB", "xfs"),
    (0x10040, b"_BHRfS_M", "btrfs"),
    (512, b"LABELONE", "lvm2"),
    (0, b"hsqs", "squashfs"),
    (3, b"NTFS    ", "ntfs"),
    (0, b"LUKS\xba\xbe", "luks"),
)


def filesystem_signature(read: Reader, length: int) -> str | None:
    """The filesystem a partition-less raw image holds, if its signature is there.

    A raw file with no partition table, no ISO volume and none of these is not a disk image
    (random bytes, a text file whose size happens to be a whole number of sectors): refusing
    it here saves the user a 30 s appliance launch that could only end in "no filesystem".
    """
    for offset, magic, name in _FS_SIGNATURES:
        if offset + len(magic) <= length and read(offset, len(magic)) == magic:
            return name
    return None


def detect(read: Reader, length: int) -> Result:
    """``(qemu format, virtual size, details)`` of the byte range, or :class:`Refused`."""
    if length < 512:
        head = read(0, 8)
        for magic, name in ((QCOW2_MAGIC, "qcow2"), (VMDK_MAGIC, "VMDK"), (QED_MAGIC, "QED")):
            if head[:4] == magic:
                raise Refused(f"truncated {name} header ({length} bytes)")
    found = magics(read, length)
    containers = [m for m in found if m in _CONTAINERS]
    others = [m for m in found if m not in _CONTAINERS]
    if len(containers) > 1 or (containers and others):
        raise Refused(f"looks like two formats at once ({' + '.join(found)})")
    fmt = containers[0] if containers else "raw"
    details: dict[str, object]
    if fmt == "qed":
        raise Refused("QED images are not accepted")
    if fmt == "qcow2":
        vsize, details = parse_qcow2(read, length)
    elif fmt == "vmdk":
        vsize, details = parse_vmdk(read, length)
    elif fmt == "vmdk-descriptor":
        parse_vmdk_descriptor(read(0, MAX_VMDK_DESCRIPTOR).decode("utf-8", "replace"), False)
        raise AssertionError("unreachable: a descriptor file is always refused")
    elif fmt == "vdi":
        vsize, details = parse_vdi(read, length)
    elif fmt == "vhdx":
        vsize, details = parse_vhdx(read, length)
    elif fmt == "vpc":
        head = read(0, 512)
        footer = head if head[:8] == VPC_COOKIE else read(length - 512, 512)
        vsize, details = parse_vpc(footer)
    else:
        # No disk is a part-sector long: this is no image (a text file, random bytes).
        fs = None if length % 512 else filesystem_signature(read, length)
        if length % 512 or not (set(others) & {"gpt", "mbr", "iso9660"} or fs):
            raise Refused(
                "unsupported format: not a VM disk image (qcow2, vmdk, vdi, vhdx, vhd, ova, raw), "
                "container archive, OCI layout or root directory"
            )
        vsize, details = length, {"content": [*others, *([fs] if fs else [])]}
    return fmt, vsize, details
