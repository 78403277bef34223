"""The direct reader shows the same tree as DirectoryFS for every format and layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from imageaudit.openers.direct import open_direct
from imageaudit.openers.directory import DirectoryFS
from tests.builders.compare import snapshot, without_fs_extras
from tests.builders.vm import CANARY_HOST_PATH, STANDARD, directory_of, sha256_file
from tests.openers.direct.conftest import APPLIANCE_BUILT, EXT_IMAGES


def _check(image: Path, layout: str, tmp_path: Path) -> None:
    before = sha256_file(image)
    tree = directory_of(STANDARD, layout, tmp_path / "root")  # type: ignore[arg-type]
    with DirectoryFS(tree) as ref:
        expected = without_fs_extras(snapshot(ref))
    with open_direct(image) as fs:
        got = without_fs_extras(snapshot(fs))
        assert fs.info.kind == "vm"
        assert fs.info.details["opener"] == "direct"
    diffs = [p for p in sorted(expected.keys() | got.keys()) if expected.get(p) != got.get(p)]
    assert not diffs, [(p, expected.get(p), got.get(p)) for p in diffs[:10]]
    assert sha256_file(image) == before  # read-only


@pytest.mark.parametrize("name", [*EXT_IMAGES, "qcow2-deflate", "qcow2-zstd"])
def test_same_tree_as_directory(name: str, direct_images: dict[str, Path],
                                tmp_path: Path) -> None:
    _check(direct_images[name], EXT_IMAGES.get(name, ("simple", ""))[0], tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(APPLIANCE_BUILT))
def test_lvm_and_xfs_same_tree_as_directory(name: str, appliance_built_images: dict[str, Path],
                                            tmp_path: Path) -> None:
    _check(appliance_built_images[name], APPLIANCE_BUILT[name][0], tmp_path)


def test_open_details(direct_images: dict[str, Path]) -> None:
    with open_direct(direct_images["sepvar-vmdk"]) as fs:
        d = fs.info.details
        assert (fs.info.format, d["partition_table"]) == ("vmdk", "mbr")
        assert d["mountpoints"] == {"/": "/dev/sda1", "/var": "/dev/sda2"}
        assert d["filesystems"] == {"/dev/sda1": "ext4", "/dev/sda2": "ext4"}
        assert d["partitions"] == ["/dev/sda1", "/dev/sda2"]
        assert fs.read("/var/log/syslog").data == b"log\n"
    with open_direct(direct_images["qcow2-deflate"]) as fs:
        assert int(fs.info.details["compressed_clusters"]) > 0  # type: ignore[call-overload]


def test_compressed_twins_read_like_the_original(direct_images: dict[str, Path]) -> None:
    """The libqcow trap: compressed clusters must decode, never read as zeros."""
    with open_direct(direct_images["raw"]) as plain:
        want = snapshot(plain, mtime=True)
    for name in ("qcow2-deflate", "qcow2-zstd"):
        with open_direct(direct_images[name]) as fs:
            assert snapshot(fs, mtime=True) == want, name


def test_symlinks_to_host_paths_never_leak(direct_images: dict[str, Path]) -> None:
    Path(CANARY_HOST_PATH).write_text("HOST-CANARY-direct")
    try:
        with open_direct(direct_images["qcow2"]) as fs:
            for link in ("/etc/host-escape", "/etc/rel-escape"):
                assert fs.resolve(link) == CANARY_HOST_PATH
                assert not fs.exists(link)
    finally:
        Path(CANARY_HOST_PATH).unlink(missing_ok=True)


def test_reads_are_bounded(direct_images: dict[str, Path]) -> None:
    with open_direct(direct_images["vdi"]) as fs:
        big = fs.read("/usr/bin/passwd", limit=500)
        assert (len(big.data), big.size, big.truncated) == (500, 200_004, True)
        whole = fs.read("/usr/bin/passwd", limit=1 << 20)
        assert whole.data[:4] == b"\x7fELF" and len(whole.data) == 200_004
        assert fs.read("/usr/bin/passwd2").data == whole.data  # a hardlink: same bytes


def test_disk_read_in_place_inside_an_ova(direct_images: dict[str, Path],
                                          tmp_path: Path) -> None:
    """An OVA member is opened at its byte range: nothing extracted, the same tree."""
    import tarfile

    from tests.builders.vm import build_ova

    ova = build_ova(direct_images["vmdk-stream"], tmp_path / "vm.ova")
    with tarfile.open(ova) as tf:
        member = tf.getmember("disk1.vmdk")
    with open_direct(direct_images["vmdk-stream"]) as whole:
        want = snapshot(whole, mtime=True)
    with open_direct(ova, offset=member.offset_data, length=member.size,
                     source=f"{ova}:disk1.vmdk") as fs:
        assert fs.info.source.endswith(":disk1.vmdk") and fs.info.format == "vmdk"
        assert snapshot(fs, mtime=True) == want
