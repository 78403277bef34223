"""MBR extended partitions: the root on a logical partition is read like the directory of the
same tree; an EBR chain that loops, leaves the disk or never ends is one clear error."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from imageaudit.example import make_ext4
from imageaudit.openers.direct import open_direct
from tests.builders.vm import ROOT_UUID, STANDARD, directory_of
from tests.openers.direct.test_hostile import _refused, _write
from tests.openers.direct.test_same_tree import _check

MiB = 1024 * 1024
SECTOR = 512
# primary 1, extended 2 holding logical 5 (a data filesystem) and logical 6 (the OS root)
P1, EXTENDED, L5, L6 = 2048, 10240, 12288, 22528
L5_SIZE, L6_SIZE = 8192, 112640
EBR2 = L5 + L5_SIZE  # where sfdisk puts the second EBR: right after logical 5


def _table(disk: Path) -> None:
    with disk.open("wb") as fh:
        fh.truncate(80 * MiB)
    script = (f"label: dos\nstart={P1}, size=8192, type=83\n"
              f"start={EXTENDED}, size={L6 + L6_SIZE - EXTENDED}, type=5\n"
              f"start={L5}, size={L5_SIZE}, type=83\nstart={L6}, size={L6_SIZE}, type=83\n")
    subprocess.run(["sfdisk", "-q", str(disk)], input=script, text=True, check=True)


def _ebr_link(disk: Path, ebr: int) -> tuple[int, int, int]:
    """(type, start relative to the extended partition, sectors) of an EBR's link entry."""
    with disk.open("rb") as fh:
        fh.seek(ebr * SECTOR + 446 + 16)
        raw = fh.read(16)
    return raw[4], *struct.unpack_from("<II", raw, 8)


def _set_link(disk: Path, ebr: int, ptype: int, relative: int, sectors: int) -> None:
    entry = bytes(4) + bytes([ptype]) + bytes(3) + struct.pack("<II", relative, sectors)
    _write(disk, ebr * SECTOR + 446 + 16, entry)


@pytest.fixture(scope="module")
def extended_disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("mbr-extended")
    disk = work / "extended.raw"
    _table(disk)
    assert _ebr_link(disk, EXTENDED) == (5, EBR2 - EXTENDED, L6 + L6_SIZE - EBR2)
    assert _ebr_link(disk, EBR2)[0] == 0  # the chain ends at logical 6
    tree = directory_of(STANDARD, "simple", work / "tree")  # type: ignore[arg-type]
    data = work / "data-tree"
    (data / "not-an-os").mkdir(parents=True)
    for fs, src, sectors, label, uuid in (
            (work / "p1.fs", data, 8192, "plain", None),
            (work / "l5.fs", data, L5_SIZE, "logical5", None),
            (work / "l6.fs", tree, L6_SIZE, "auditroot", ROOT_UUID)):
        make_ext4(src, fs, sectors * SECTOR, label=label, uuid=uuid)
    with disk.open("r+b") as out:
        for fs, start in ((work / "p1.fs", P1), (work / "l5.fs", L5), (work / "l6.fs", L6)):
            out.seek(start * SECTOR)
            out.write(fs.read_bytes())
    return disk


def test_root_on_a_logical_partition_reads_like_the_directory(extended_disk: Path,
                                                               tmp_path: Path) -> None:
    _check(extended_disk, "simple", tmp_path)
    with open_direct(extended_disk) as fs:
        d = fs.info.details
        assert d["partition_table"] == "mbr"
        assert d["partitions"] == ["/dev/sda1", "/dev/sda5", "/dev/sda6"]
        assert d["filesystems"] == {"/dev/sda1": "ext4", "/dev/sda5": "ext4",
                                    "/dev/sda6": "ext4"}
        assert d["mountpoints"] == {"/": "/dev/sda6"}
        assert fs.info.notes == []


def test_the_same_disk_as_qcow2(extended_disk: Path, tmp_path: Path) -> None:
    image = tmp_path / "extended.qcow2"
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2",
                    str(extended_disk), str(image)], check=True)
    _check(image, "simple", tmp_path)


@pytest.fixture
def table_only(tmp_path: Path) -> Path:
    """The same partition table with no filesystem: the chain is read before any mount."""
    disk = tmp_path / "chain.raw"
    _table(disk)
    return disk


def test_ebr_linking_to_itself(table_only: Path) -> None:
    _set_link(table_only, EBR2, 5, EBR2 - EXTENDED, 2048)
    _refused(table_only, rf"/dev/sda: extended partition chain loops \(EBR at sector {EBR2} "
                         rf"links back to sector {EBR2}\)")


def test_ebr_linking_back_to_the_first(table_only: Path) -> None:
    # Relative start 0 with sectors is a link to the extended partition's own EBR, not an end.
    _set_link(table_only, EBR2, 5, 0, 2048)
    _refused(table_only, rf"chain loops \(EBR at sector {EBR2} links back to sector "
                         rf"{EXTENDED}\)")


def test_ebr_linking_past_the_disk(table_only: Path) -> None:
    _set_link(table_only, EBR2, 5, 0x7FFFFF00, 2048)
    _refused(table_only, rf"the EBR at sector {EBR2} links to an EBR at sector "
                         rf"{EXTENDED + 0x7FFFFF00}, past the end of the disk \(163840 sectors\)")


def test_extended_partition_past_the_disk(table_only: Path) -> None:
    _write(table_only, 446 + 16 + 8, struct.pack("<I", 1 << 30))
    _refused(table_only, rf"the extended partition links to an EBR at sector {1 << 30}, past")


def test_ebr_linking_to_a_sector_that_is_no_ebr(table_only: Path) -> None:
    _set_link(table_only, EBR2, 5, 40000, 2048)  # inside logical 6: zeros, no signature
    _refused(table_only, rf"the EBR at sector {EBR2} links to sector {EXTENDED + 40000}, "
                         r"which is not an EBR")


def test_endless_chain_is_cut_by_an_error(tmp_path: Path) -> None:
    """EBRs on consecutive sectors, each naming no partition and linking to the next: a few
    KiB that would otherwise be walked for every sector of the disk."""
    disk = tmp_path / "endless.raw"
    sectors = 4096
    table = bytearray(sectors * SECTOR)
    struct.pack_into("<B", table, 446 + 4, 0x05)
    struct.pack_into("<II", table, 446 + 8, 1, sectors - 1)
    table[510:512] = b"\x55\xaa"
    for ebr in range(1, sectors - 1):
        base = ebr * SECTOR
        table[base + 446 + 16 + 4] = 0x05
        struct.pack_into("<II", table, base + 446 + 16 + 8, ebr, 1)  # next sector
        table[base + 510: base + 512] = b"\x55\xaa"
    disk.write_bytes(bytes(table))
    _refused(disk, r"/dev/sda: extended partition chain is longer than 128 EBRs")
