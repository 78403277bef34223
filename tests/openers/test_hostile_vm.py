"""Hostile VM images: refused before any launch, and no host content through symlinks."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from imageaudit.imagefs import NotFoundInImage
from imageaudit.openers import open_image, ova
from imageaudit.openers.detect import is_ova, is_vm_disk
from imageaudit.openers.formatcheck import UnsafeImageError
from tests.builders.vm import (
    CANARY_HOST_PATH,
    CANARY_TEXT,
    SHARED_IMAGES,
    STANDARD,
    build_disk,
    build_ova,
    sha256_file,
)


def test_backing_file_refused_before_launch(tmp_path: Path) -> None:
    base = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "16M"], check=True)
    child = tmp_path / "child.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base),
                    str(child)], check=True)
    start = time.monotonic()
    with pytest.raises(UnsafeImageError, match=r"child\.qcow2: qcow2 image has a backing file"):
        open_image(str(child))
    assert time.monotonic() - start < 5  # refused in Python: no appliance was started
    assert is_vm_disk(str(child)) is False
    assert is_vm_disk(str(base)) is True


@pytest.mark.guestfs
@pytest.mark.slow
def test_symlinks_to_host_paths_never_leak(shared_vms: Any) -> None:
    Path(CANARY_HOST_PATH).write_text(CANARY_TEXT)
    try:
        # The images built from the STANDARD scenario carry the escaping links.
        for name in SHARED_IMAGES:
            fs, _path, _sha = shared_vms[name]
            for link in ("/etc/host-escape", "/etc/rel-escape"):
                with pytest.raises(NotFoundInImage):
                    fs.read(link)
                assert fs.resolve(link) == CANARY_HOST_PATH
            for st in fs.walk("/"):
                if st.is_file:
                    assert CANARY_TEXT.encode() not in fs.read(st.path).data
    finally:
        Path(CANARY_HOST_PATH).unlink(missing_ok=True)


def _stream_vmdk(tmp_path: Path) -> Path:
    raw = tmp_path / "d.raw"
    with raw.open("wb") as fh:
        fh.truncate(16 * 1024 * 1024)
    out = tmp_path / "d.vmdk"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o",
                    "subformat=streamOptimized", str(raw), str(out)], check=True)
    return out


def test_ova_href_leaving_the_archive_refused(tmp_path: Path) -> None:
    ova_path = build_ova(_stream_vmdk(tmp_path), tmp_path / "x.ova", href="../etc/passwd")
    assert is_ova(str(ova_path)) is True
    with pytest.raises(UnsafeImageError, match=r"OVF href '\.\./etc/passwd' leaves the archive"):
        ova.open_ova(ova_path)


def test_ova_manifest_mismatch_refused(tmp_path: Path) -> None:
    ova_path = build_ova(_stream_vmdk(tmp_path), tmp_path / "x.ova", corrupt_digest=True)
    with pytest.raises(UnsafeImageError,
                       match=r"x\.ova: SHA256 of disk1\.vmdk does not match the manifest"):
        ova.open_ova(ova_path)


def test_ova_entities_refused() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><Envelope>&a;</Envelope>'
    with pytest.raises(UnsafeImageError, match="OVF declares a DTD or entities"):
        ova.disk_hrefs(bomb, "bomb.ova")


@pytest.mark.guestfs
@pytest.mark.slow
def test_ova_disk_read_in_place(tmp_path: Path) -> None:
    disk = build_disk(STANDARD, "simple", "vmdk-stream")
    ova_path = build_ova(disk, tmp_path / "vm.ova")
    before = sha256_file(ova_path)
    with open_image(str(ova_path)) as fs:
        assert (fs.info.format, fs.info.notes[-1]) == ("ova", "manifest verified for 2 members")
        assert fs.read("/etc/hostname").data == b"audit\n"
        assert fs.info.details["disks"] == [f"{ova_path}:disk1.vmdk"]
    assert sha256_file(ova_path) == before
