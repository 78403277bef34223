"""Hostile vmdk, vdi, vhd and vhdx: the qemu-img images of the shared scenario with a byte or
two edited. A block or grain the maps put past the end of the file, an absurd geometry, a
descriptor naming a second extent: each ends in one clear line naming the image and the
reason (never zeros read in place of the missing data), the child reaped."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import uuid
from pathlib import Path

import pytest

from imageaudit.openers.formatcheck import UnsafeImageError, check_image
from tests.openers.direct.test_hostile import _patched, _refused, _write

SECTOR = 512
FAR = 0x7FFFFF00  # a sector (vmdk) or block (vhd) number far past any test image


# --- VMDK (monolithicSparse) ------------------------------------------------------------

def _vmdk_header(path: Path) -> dict[str, int]:
    head = path.read_bytes()[:512]
    (magic, _version, _flags, capacity, grain, desc_off, desc_size, gtes, rgd,
     gd) = struct.unpack_from("<4sIIQQQQIQQ", head, 0)
    assert magic == b"KDMV"
    return {"capacity": capacity, "grain": grain, "desc_off": desc_off,
            "desc_size": desc_size, "gtes": gtes, "rgd": rgd, "gd": gd}


def _u32(path: Path, offset: int) -> int:
    with path.open("rb") as fh:
        fh.seek(offset)
        return int(struct.unpack("<I", fh.read(4))[0])


def test_vmdk_grain_past_eof(direct_images: dict[str, Path], tmp_path: Path) -> None:
    src = direct_images["vmdk"]
    h = _vmdk_header(src)

    def edit(p: Path) -> None:
        # Grain 0 (the partition table) in both grain directories' first grain table.
        for directory in (h["gd"], h["rgd"]):
            table = _u32(p, directory * SECTOR)
            assert _u32(p, table * SECTOR) != 0, "grain 0 is allocated"
            _write(p, table * SECTOR, struct.pack("<I", FAR))

    image = _patched(src, tmp_path / "grain-far.vmdk", edit)
    _refused(image, rf"vmdk: cannot read 512 bytes at 512: .*offset: {FAR * SECTOR} ")


def test_vmdk_grain_table_past_eof(direct_images: dict[str, Path], tmp_path: Path) -> None:
    src = direct_images["vmdk"]
    h = _vmdk_header(src)

    def edit(p: Path) -> None:
        for directory in (h["gd"], h["rgd"]):
            _write(p, directory * SECTOR, struct.pack("<I", FAR))

    image = _patched(src, tmp_path / "gt-far.vmdk", edit)
    err = _refused(image, rf"vmdk: cannot read .*grain table.*offset: {FAR * SECTOR} ")
    assert len(str(err)) < 600  # libyal's whole chain of frames is not the message


def _descriptor(src: Path) -> str:
    h = _vmdk_header(src)
    raw = src.read_bytes()[h["desc_off"] * SECTOR: (h["desc_off"] + h["desc_size"]) * SECTOR]
    return raw.split(b"\0", 1)[0].decode()


def _header_check_refuses(image: Path, pattern: str) -> None:
    """Refused by formatcheck (headers and qemu-img alike) and, with its very words, by the
    direct reader, before any parser child starts."""
    with pytest.raises(UnsafeImageError, match=pattern) as sniffed:
        check_image(image, use_qemu=False)
    with pytest.raises(UnsafeImageError, match=pattern):
        check_image(image)
    err = _refused(image, pattern)
    assert str(err) == str(sniffed.value)


def test_vmdk_embedded_descriptor_naming_a_second_extent(direct_images: dict[str, Path],
                                                         tmp_path: Path) -> None:
    src = direct_images["vmdk"]
    text = _descriptor(src)
    two = re.sub(r'(RW \d+ SPARSE "[^"]*")', r'\1\nRW 131072 SPARSE "second.vmdk"', text)
    assert two != text
    h = _vmdk_header(src)
    assert len(two) < h["desc_size"] * SECTOR
    image = _patched(src, tmp_path / "two-extents.vmdk",
                     lambda p: _write(p, h["desc_off"] * SECTOR, two.encode()))
    _header_check_refuses(image, r"VMDK descriptor must name exactly one SPARSE extent, "
                                 r"found .*'second\.vmdk'")


def test_vmdk_descriptor_file_naming_an_extent_file(direct_images: dict[str, Path],
                                                    tmp_path: Path) -> None:
    """A text descriptor beside a real sparse extent: the extent is another file, refused."""
    extent = tmp_path / "disk-s001.vmdk"
    shutil.copyfile(direct_images["vmdk"], extent)
    image = tmp_path / "disk.vmdk"
    image.write_text(re.sub(r'SPARSE "[^"]*"', 'SPARSE "disk-s001.vmdk"', _descriptor(extent)))
    assert 'SPARSE "disk-s001.vmdk"' in image.read_text()
    _header_check_refuses(image, r"VMDK descriptor file refers to extents outside the file "
                                 r"\('disk-s001\.vmdk'\)")


# --- VDI --------------------------------------------------------------------------------

def _vdi(path: Path) -> dict[str, int]:
    head = path.read_bytes()[:0x190]
    bmap, data = struct.unpack_from("<II", head, 0x154)
    disk_size, block_size, _extra, blocks = struct.unpack_from("<QIII", head, 0x170)
    return {"bmap": bmap, "data": data, "disk_size": disk_size, "block_size": block_size,
            "blocks": blocks}


def test_vdi_block_map_entry_past_eof(direct_images: dict[str, Path], tmp_path: Path) -> None:
    src = direct_images["vdi"]
    v = _vdi(src)
    # The last data block the map may name lies past the end of this sparse image's file.
    last = v["blocks"] - 1
    assert v["data"] + last * v["block_size"] >= src.stat().st_size
    image = _patched(src, tmp_path / "entry-far.vdi",
                     lambda p: _write(p, v["bmap"], struct.pack("<I", last)))
    _refused(image, rf"VDI data block {last} at \d+\+512 lies past the end "
                    rf"\({src.stat().st_size} bytes\)")


def test_vdi_block_map_entry_over_the_block_count(direct_images: dict[str, Path],
                                                  tmp_path: Path) -> None:
    src = direct_images["vdi"]
    v = _vdi(src)
    image = _patched(src, tmp_path / "entry-huge.vdi",
                     lambda p: _write(p, v["bmap"], struct.pack("<I", FAR)))
    _refused(image, rf"VDI block 0 maps to data block {FAR}, past the {v['blocks']} the "
                    "image holds")


@pytest.mark.parametrize("size", [1 << 31, 3 << 20, 256])
def test_vdi_absurd_block_size(size: int, direct_images: dict[str, Path],
                               tmp_path: Path) -> None:
    image = _patched(direct_images["vdi"], tmp_path / f"bs-{size}.vdi",
                     lambda p: _write(p, 0x178, struct.pack("<I", size)))
    _refused(image, rf"VDI block size {size} is invalid")


def test_vdi_block_map_larger_than_the_file(direct_images: dict[str, Path],
                                            tmp_path: Path) -> None:
    src = direct_images["vdi"]
    v = _vdi(src)
    blocks = 1 << 22  # 16 MiB of map in a file of a few MiB, the data area moved past it

    def edit(p: Path) -> None:
        _write(p, 0x180, struct.pack("<I", blocks))
        _write(p, 0x158, struct.pack("<I", v["bmap"] + 4 * blocks))

    _refused(_patched(src, tmp_path / "bigmap.vdi", edit),
             rf"VDI block map at {v['bmap']}\+{4 * blocks} lies past the end "
             rf"\({src.stat().st_size} bytes\)")


def test_vdi_block_map_running_into_the_data(direct_images: dict[str, Path],
                                             tmp_path: Path) -> None:
    src = direct_images["vdi"]
    v = _vdi(src)
    image = _patched(src, tmp_path / "overlap.vdi",
                     lambda p: _write(p, 0x180, struct.pack("<I", 1 << 20)))
    _refused(image, rf"VDI block map of {1 << 20} entries at {v['bmap']} runs into the data "
                    rf"area at {v['data']}")


# --- VHD (vpc) and VHDX -----------------------------------------------------------------

def test_vhd_bat_entry_past_eof(direct_images: dict[str, Path], tmp_path: Path) -> None:
    src = direct_images["vpc"]
    data = src.read_bytes()
    footer = data[-512:]
    assert footer[:8] == b"conectix" and struct.unpack_from(">I", footer, 60)[0] == 3
    (dynamic,) = struct.unpack_from(">Q", footer, 16)
    assert data[dynamic: dynamic + 8] == b"cxsparse"
    (bat,) = struct.unpack_from(">Q", data, dynamic + 16)
    assert struct.unpack_from(">I", data, bat)[0] != 0xFFFFFFFF, "block 0 is allocated"
    image = _patched(src, tmp_path / "bat-far.vpc",
                     lambda p: _write(p, bat, struct.pack(">I", FAR)))
    _refused(image, rf"vpc: cannot read 512 bytes at 512: .*offset: {FAR * SECTOR} ")


VHDX_BAT = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08").bytes_le


def test_vhdx_bat_entry_past_eof(direct_images: dict[str, Path], tmp_path: Path) -> None:
    src = direct_images["vhdx"]
    region = src.read_bytes()[192 * 1024: 196 * 1024]
    assert region[:4] == b"regi"
    (count,) = struct.unpack_from("<I", region, 8)
    bats = [struct.unpack_from("<Q", region, 32 + 32 * i)[0] for i in range(count)
            if region[16 + 32 * i: 32 + 32 * i] == VHDX_BAT]
    assert len(bats) == 1
    (entry,) = struct.unpack_from("<Q", src.read_bytes(), bats[0])
    assert entry & 7 == 6, "block 0 is fully present"
    far_mib = 1 << 20  # a TiB into a file of a few MiB
    image = _patched(src, tmp_path / "bat-far.vhdx",
                     lambda p: _write(p, bats[0], struct.pack("<Q", far_mib << 20 | 6)))
    _refused(image, rf"vhdx: cannot read 512 bytes at 512: .*offset: {(far_mib << 20) + 512} ")


def test_qemu_img_agrees_the_edited_vdi_is_broken(direct_images: dict[str, Path],
                                                  tmp_path: Path) -> None:
    """qemu-img check is a second opinion that the edit makes a broken image, not one the
    direct reader merely misreads."""
    src = direct_images["vdi"]
    v = _vdi(src)
    image = _patched(src, tmp_path / "entry-huge.vdi",
                     lambda p: _write(p, v["bmap"], struct.pack("<I", FAR)))
    proc = subprocess.run(["qemu-img", "check", "-f", "vdi", str(image)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode != 0, proc.stdout
