"""The libguestfs opener shows the same tree as DirectoryFS, for every disk layout and format.

All images share one appliance (the ``shared_vms`` session fixture): a launch costs tens of
seconds under TCG, so this module adds no launch of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from imageaudit.openers.directory import DirectoryFS
from imageaudit.openers.guestfs import GuestfsFS
from tests.builders.compare import snapshot, without_fs_extras
from tests.builders.vm import SHARED_IMAGES, STANDARD, directory_of, sha256_file

pytestmark = [pytest.mark.guestfs, pytest.mark.slow]

@pytest.mark.parametrize("name", list(SHARED_IMAGES))
def test_same_tree_as_directory(name: str, shared_vms: Any, tmp_path: Path) -> None:
    fs, _path, _sha = shared_vms[name]
    layout, _fmt = SHARED_IMAGES[name]
    with DirectoryFS(directory_of(STANDARD, layout, tmp_path / "root")) as ref:
        expected = without_fs_extras(snapshot(ref))
    got = without_fs_extras(snapshot(fs))
    diffs = [p for p in sorted(expected.keys() | got.keys()) if expected.get(p) != got.get(p)]
    assert not diffs, [(p, expected.get(p), got.get(p)) for p in diffs[:10]]


def test_open_info(shared_vms: Any) -> None:
    fs: GuestfsFS = shared_vms["sepvar-vmdk"][0]
    assert (fs.info.kind, fs.info.format) == ("vm", "vmdk")
    mounts = fs.info.details["mountpoints"]
    assert isinstance(mounts, dict) and sorted(mounts) == ["/", "/var"]
    assert fs.info.details["tcg"] in (True, False)
    lvm: GuestfsFS = shared_vms["lvm-qcow2"][0]
    assert lvm.info.details["mountpoints"] == {"/": "/dev/vgaudit/root"}
    xfs: GuestfsFS = shared_vms["xfs-vhdx"][0]
    assert xfs.info.details["filesystems"] and set(
        xfs.info.details["filesystems"].values()  # type: ignore[attr-defined]
    ) == {"xfs"}


def test_views_remount_when_interleaved(shared_vms: Any) -> None:
    a: GuestfsFS = shared_vms["qcow2"][0]
    b: GuestfsFS = shared_vms["sepvar-vmdk"][0]
    for _ in range(2):
        assert a.read("/etc/fstab").text().startswith("LABEL=auditroot")
        assert b.read("/etc/fstab").text().startswith("UUID=")
        assert b.read("/var/log/syslog").data == b"log\n"


def test_prefetch_serves_reads_and_respects_cap(shared_vms: Any) -> None:
    fs: GuestfsFS = shared_vms["vdi"][0]
    fs.prefetch(["/etc/*", "/usr/bin/*"], limit=1000)
    # /etc: os-release, debian_version, hostname, passwd, shadow, fstab (alt-shadow is
    # shadow again; the escapes resolve to nothing); /usr/bin: sh, passwd, passwd2.
    assert fs.info.details["prefetch_files"] == 9
    shadow = fs.read("/etc/alt-shadow")
    assert shadow.data == b"root:*:19000:0:99999:7:::\n"
    big = fs.read("/usr/bin/passwd", limit=500)
    assert (len(big.data), big.size, big.truncated) == (500, 200_004, True)
    full = fs.read("/usr/bin/passwd2", limit=300_000)
    assert full.data == b"\x7fELF" + bytes(200_000)


def test_images_unchanged(shared_vms: Any) -> None:
    for _fs, path, before in shared_vms.values():
        assert sha256_file(path) == before, path
