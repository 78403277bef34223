"""The Python header check refuses unsafe disk images before qemu parses them."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from imageaudit.openers.formatcheck import UnsafeImageError, check_image, sniff

MiB = 1024 * 1024
needs_qemu_img = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="no qemu-img")


def qcow2_header(version: int = 3, backing: int = 0, incompat: int = 0,
                 size: int = 64 * MiB) -> bytes:
    head = b"QFI\xfb" + struct.pack(">IQIIQI", version, backing, 0, 16, size, 0)
    head += bytes(72 - len(head))
    if version == 3:
        head += struct.pack(">QQQII", incompat, 0, 0, 4, 104)
    return head.ljust(4096, b"\0")


def vmdk_sparse(descriptor: str, capacity_sectors: int = 131072) -> bytes:
    head = b"KDMV" + struct.pack("<IIQQQQ", 1, 3, capacity_sectors, 128, 1, 20)
    desc = descriptor.encode().ljust(20 * 512, b"\0")
    return head.ljust(512, b"\0") + desc


def descriptor(create: str = "monolithicSparse", extent: str = "disk.vmdk") -> str:
    return (
        "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n"
        f'createType="{create}"\n\n# Extent description\nRW 131072 SPARSE "{extent}"\n'
    )


def refused(tmp_path: Path, data: bytes, match: str, name: str = "img") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(UnsafeImageError) as info:
        check_image(path, use_qemu=False)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert match in message, message
    return message


def test_qcow2_backing_file(tmp_path: Path) -> None:
    refused(tmp_path, qcow2_header(backing=4096),
            "qcow2 image has a backing file (header bytes 8-15 are not zero)")


def test_qcow2_external_data_file_bit(tmp_path: Path) -> None:
    refused(tmp_path, qcow2_header(incompat=1 << 2),
            "qcow2 image uses an external data file (incompatible feature bit 2)")


def test_qcow2_unknown_incompatible_bits(tmp_path: Path) -> None:
    refused(tmp_path, qcow2_header(incompat=1 << 40),
            "qcow2 image has unknown incompatible feature bits 0x10000000000")


def test_qcow2_version_1(tmp_path: Path) -> None:
    refused(tmp_path, qcow2_header(version=1),
            "qcow2 version 1 is not supported (only 2 and 3)")


def test_qed(tmp_path: Path) -> None:
    refused(tmp_path, b"QED\0".ljust(4096, b"\0"), "QED images are not accepted")


def test_vmdk_extent_pointing_at_host_file(tmp_path: Path) -> None:
    refused(tmp_path, vmdk_sparse(descriptor(extent="/etc/passwd")),
            "VMDK extent '/etc/passwd' points at a host path")


def test_vmdk_text_descriptor_with_host_extent(tmp_path: Path) -> None:
    refused(tmp_path, descriptor(extent="/etc/passwd").encode(),
            "VMDK extent '/etc/passwd' points at a host path")


def test_vmdk_text_descriptor_names_another_file(tmp_path: Path) -> None:
    refused(tmp_path, descriptor(extent="other.vmdk").encode(),
            "VMDK descriptor file refers to extents outside the file ('other.vmdk')")


def test_vmdk_two_gb_max_extent_sparse(tmp_path: Path) -> None:
    refused(tmp_path, vmdk_sparse(descriptor(create="twoGbMaxExtentSparse")),
            "VMDK createType 'twoGbMaxExtentSparse' is not monolithicSparse/streamOptimized")


def test_iso_with_qcow2_header_is_a_polyglot(tmp_path: Path) -> None:
    data = bytearray(qcow2_header().ljust(0x9000, b"\0"))
    data[0x8001:0x8006] = b"CD001"
    refused(tmp_path, bytes(data), "looks like two formats at once (qcow2 + iso9660)")


def test_qcow2_carrying_a_vmdk_descriptor(tmp_path: Path) -> None:
    data = bytearray(qcow2_header())
    data[1024:1024 + 40] = b'# Disk DescriptorFile\ncreateType="x"\n'.ljust(40, b"\0")
    refused(tmp_path, bytes(data), "qcow2 header also carries a VMDK descriptor")


def test_qcow2_with_gpt_signature(tmp_path: Path) -> None:
    data = bytearray(qcow2_header())
    data[512:520] = b"EFI PART"
    refused(tmp_path, bytes(data), "looks like two formats at once (qcow2 + gpt)")


def test_virtual_size_over_cap(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(qcow2_header(size=3 * 1024**4))
    with pytest.raises(UnsafeImageError,
                       match=r"virtual size 3298534883328 bytes is over the cap of 2199023255552"):
        check_image(path, use_qemu=False)
    assert sniff(path, max_virtual_size=4 * 1024**4).virtual_size == 3 * 1024**4


def test_truncated_header(tmp_path: Path) -> None:
    refused(tmp_path, qcow2_header()[:40], "truncated qcow2 header (40 bytes)")
    refused(tmp_path, b"KDMV" + bytes(100), "truncated VMDK header (104 bytes)", name="v")


def test_raw_iso_and_byte_range(tmp_path: Path) -> None:
    data = bytearray(0x9000)
    data[0x8001:0x8006] = b"CD001"
    path = tmp_path / "cd.iso"
    path.write_bytes(bytes(data) + qcow2_header())
    assert sniff(path, length=0x9000).format == "raw"
    member = sniff(path, offset=0x9000, length=4096)
    assert (member.format, member.virtual_size) == ("qcow2", 64 * MiB)


@needs_qemu_img
@pytest.mark.parametrize(
    ("args", "fmt"),
    [
        (["-O", "qcow2"], "qcow2"),
        (["-O", "qcow2", "-o", "compat=0.10"], "qcow2"),
        (["-O", "vmdk"], "vmdk"),
        (["-O", "vmdk", "-o", "subformat=streamOptimized"], "vmdk"),
        (["-O", "vdi"], "vdi"),
        (["-O", "vhdx"], "vhdx"),
        (["-O", "vpc"], "vpc"),
        (["-O", "raw"], "raw"),
    ],
)
def test_real_images_pass_and_qemu_agrees(tmp_path: Path, args: list[str], fmt: str) -> None:
    raw = tmp_path / "src.raw"
    with raw.open("wb") as fh:
        fh.truncate(16 * MiB)
        fh.seek(510)
        fh.write(b"\x55\xaa")  # an (empty) MBR: a raw disk must look like one
    out = tmp_path / "out.img"
    subprocess.run(["qemu-img", "convert", "-f", "raw", *args, str(raw), str(out)], check=True)
    info = check_image(out)
    assert info.format == fmt
    assert info.virtual_size >= 16 * MiB


@needs_qemu_img
def test_real_backing_file_and_data_file_refused(tmp_path: Path) -> None:
    base = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "16M"], check=True)
    child = tmp_path / "child.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base),
                    str(child)], check=True)
    with pytest.raises(UnsafeImageError, match="has a backing file"):
        check_image(child)
    data = tmp_path / "data.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o",
                    f"data_file={tmp_path / 'host.raw'}", str(data), "16M"], check=True)
    with pytest.raises(UnsafeImageError, match="external data file"):
        check_image(data)


def test_raw_without_partition_table_or_filesystem_is_refused(tmp_path: Path) -> None:
    zeros = tmp_path / "zeros.img"
    with zeros.open("wb") as fh:
        fh.truncate(4 * MiB)
    with pytest.raises(UnsafeImageError) as err:
        sniff(zeros)
    assert "unsupported format: not a VM disk image" in str(err.value)
    ext4 = tmp_path / "fs.img"
    subprocess.run(["mkfs.ext4", "-q", str(ext4), "8M"], check=True)
    assert sniff(ext4).format == "raw"
