"""``--opener``: VM disks and OVAs are read by the direct reader unless libguestfs is chosen, and
libguestfs reads, under ``auto``, what the direct reader does not, saying why in one note."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imageaudit.openers import open_image
from imageaudit.openers.direct import DirectUnsupported
from tests.builders.vm import STANDARD, build_disk, build_ova

IMAGEAUDIT = Path(sys.executable).with_name("imageaudit")


def _without_libguestfs(tmp_path: Path) -> dict[str, str]:
    """The environment of a machine where the libguestfs Python module is not installed."""
    shadow = tmp_path / "no-guestfs"
    shadow.mkdir()
    (shadow / "guestfs.py").write_text(
        "raise ImportError('No module named guestfs', name='guestfs')\n")
    return {**os.environ, "PYTHONPATH": str(shadow)}


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(IMAGEAUDIT), *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_vm_disk_and_ova_read_without_libguestfs(tmp_path: Path) -> None:
    disk = build_disk(STANDARD, "simple", "qcow2")
    ova = build_ova(build_disk(STANDARD, "simple", "vmdk-stream"), tmp_path / "vm.ova")
    env = _without_libguestfs(tmp_path)
    for image, fmt in ((disk, "qcow2"), (ova, "ova")):
        for opener in ("auto", "direct"):
            ran = _cli("facts", str(image), "--opener", opener, "--format", "json", "-q",
                       "-o", str(tmp_path / "facts.json"), env=env)
            assert ran.returncode == 0, ran.stderr
            facts = json.loads((tmp_path / "facts.json").read_text())
            assert (facts["image"]["format"], facts["image"]["details"]["opener"]) == (
                fmt, "direct")
            assert facts["errors"] == []
            assert [a["name"] for a in facts["accounts"]["passwd"]][:1] == ["root"]
    ran = _cli("facts", str(disk), "--opener", "guestfs", "-q", env=env)
    assert ran.returncode == 2
    assert "libguestfs is not available to this Python" in ran.stderr


def test_ova_through_the_direct_reader_keeps_the_ova_checks(tmp_path: Path) -> None:
    ova = build_ova(build_disk(STANDARD, "simple", "vmdk-stream"), tmp_path / "vm.ova")
    with open_image(str(ova)) as fs:
        assert (fs.info.kind, fs.info.format, fs.info.source) == ("vm", "ova", str(ova))
        assert fs.info.details["opener"] == "direct"
        assert fs.info.notes[-1] == "manifest verified for 2 members"
        assert fs.info.details["disks"] == [f"{ova}:disk1.vmdk"]
        assert fs.read("/etc/hostname").data == b"audit\n"


def _btrfs_disk(tmp_path: Path) -> Path:
    """A GPT disk whose one partition holds btrfs with a small root tree."""
    if shutil.which("mkfs.btrfs") is None:
        pytest.fail("mkfs.btrfs is missing: scripts/bootstrap.sh --test installs btrfs-progs")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("on-btrfs\n")
    (root / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    fs_image = tmp_path / "fs.btrfs"
    with fs_image.open("wb") as fh:
        fh.truncate(128 << 20)
    subprocess.run(["mkfs.btrfs", "-q", "--rootdir", str(root), str(fs_image)], check=True)
    disk = tmp_path / "btrfs.raw"
    with disk.open("wb") as fh:
        fh.truncate(130 << 20)
    subprocess.run(["sfdisk", "-q", str(disk)], input="label: gpt\nstart=2048, type=linux\n",
                   text=True, check=True)
    subprocess.run(["dd", f"if={fs_image}", f"of={disk}", "bs=1M", "seek=1", "conv=notrunc",
                    "status=none"], check=True)
    return disk


def test_direct_refuses_btrfs_with_the_reason(tmp_path: Path) -> None:
    disk = _btrfs_disk(tmp_path)
    reason = r"not read by the direct reader: .*the disk holds btrfs"
    with pytest.raises(DirectUnsupported, match=reason):
        open_image(str(disk), opener="direct")


@pytest.mark.guestfs
@pytest.mark.slow
def test_auto_hands_btrfs_to_libguestfs_with_a_note(tmp_path: Path) -> None:
    disk = _btrfs_disk(tmp_path)
    with open_image(str(disk)) as fs:
        assert fs.read("/etc/hostname").data == b"on-btrfs\n"
        assert fs.info.notes[0].startswith("read through libguestfs: ")
        assert "the disk holds btrfs" in fs.info.notes[0]
        assert fs.info.details.get("opener") != "direct"
