"""Hostile disks end in one clear line naming the image and the reason, within a time bound,
with the parser child reaped; the image is never changed."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from imageaudit.openers.direct import DirectError, DirectUnsupported, Limits, open_direct
from imageaudit.openers.direct.confine import Settings
from tests.builders.vm import sha256_file

CLUSTER = 65536


def _children_alive() -> list[int]:
    """Our own parser children still running (or not reaped)."""
    me = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = stat.rsplit(")", 1)[1].split()[1]
        if ppid == me and b"imageaudit.openers.direct.child" in cmd:
            found.append(int(entry.name))
    return found


def _refused(image: Path, pattern: str, limits: Limits | None = None) -> DirectError:
    before = sha256_file(image)
    start = time.monotonic()
    with pytest.raises(DirectError, match=pattern) as info:
        fs = open_direct(image, limits=limits)
        fs.close()
    assert time.monotonic() - start < 30
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(image)), message
    assert _children_alive() == []
    assert sha256_file(image) == before
    return info.value


def _qcow2_fields(path: Path) -> tuple[int, int]:
    """(L1 table offset, L2 table offset of L1[0]) of a qcow2 made by qemu-img."""
    head = path.read_bytes()[:112]
    l1_off = struct.unpack_from(">Q", head, 40)[0]
    with path.open("rb") as fh:
        fh.seek(l1_off)
        l2 = struct.unpack(">Q", fh.read(8))[0] & 0x00FFFFFFFFFFFE00
    return l1_off, l2


def _patched(src: Path, out: Path, edit: Callable[[Path], None]) -> Path:
    shutil.copyfile(src, out)
    edit(out)
    return out


def _write(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def test_truncated_l2_table(direct_images: dict[str, Path], tmp_path: Path) -> None:
    src = direct_images["qcow2"]
    _l1, l2 = _qcow2_fields(src)

    def cut(p: Path) -> None:
        os.truncate(p, l2 + 100)

    _refused(_patched(src, tmp_path / "cut-l2.qcow2", cut), r"L2 table .* past the end")


def test_truncated_l1_table(direct_images: dict[str, Path], tmp_path: Path) -> None:
    src = direct_images["qcow2"]
    l1, _l2 = _qcow2_fields(src)

    def cut(p: Path) -> None:
        os.truncate(p, l1 + 4)

    _refused(_patched(src, tmp_path / "cut-l1.qcow2", cut), r"L1 table .* past the end")


def test_cluster_past_eof(direct_images: dict[str, Path], tmp_path: Path) -> None:
    src = direct_images["qcow2"]
    _l1, l2 = _qcow2_fields(src)
    far = (src.stat().st_size + 100 * CLUSTER) // CLUSTER * CLUSTER
    image = _patched(src, tmp_path / "far.qcow2",
                     lambda p: _write(p, l2, struct.pack(">Q", (1 << 63) | far)))
    _refused(image, r"data cluster at .* past the end of the file")


@pytest.mark.parametrize("case", ["data-is-l2", "data-is-l1", "l2-is-l1"])
def test_self_referencing_cluster(case: str, direct_images: dict[str, Path],
                                  tmp_path: Path) -> None:
    src = direct_images["qcow2"]
    l1, l2 = _qcow2_fields(src)
    # An L2 entry naming the L2 table itself or the L1 table, or an L1 entry naming the L1
    # table as an L2 table: metadata read as data (or as more metadata) is refused.
    where, target = {"data-is-l2": (l2, l2), "data-is-l1": (l2, l1),
                     "l2-is-l1": (l1, l1)}[case]
    image = _patched(src, tmp_path / f"{case}.qcow2",
                     lambda p: _write(p, where, struct.pack(">Q", (1 << 63) | target)))
    _refused(image, r"qcow2 (data cluster|L2 table) at .* (is also an L2 table|overlaps)")


def test_absurd_virtual_size(direct_images: dict[str, Path], tmp_path: Path) -> None:
    image = _patched(direct_images["qcow2"], tmp_path / "huge.qcow2",
                     lambda p: _write(p, 24, struct.pack(">Q", 8 * 1024**6)))
    _refused(image, r"virtual size \d+ bytes is over the cap")


def test_l1_too_small_for_virtual_size(direct_images: dict[str, Path], tmp_path: Path) -> None:
    image = _patched(direct_images["qcow2"], tmp_path / "smalll1.qcow2",
                     lambda p: _write(p, 24, struct.pack(">Q", 1024**4)))
    _refused(image, r"L1 table of 1 entries is too small")


def test_corrupt_compressed_cluster(direct_images: dict[str, Path], tmp_path: Path) -> None:
    src = direct_images["qcow2-deflate"]
    _l1, l2 = _qcow2_fields(src)
    entry = struct.unpack(">Q", src.read_bytes()[l2: l2 + 8])[0]
    assert entry & (1 << 62), "cluster 0 of the deflate twin is compressed"
    offset = entry & ((1 << 54) - 1)
    image = _patched(src, tmp_path / "badz.qcow2", lambda p: _write(p, offset, b"\xff" * 64))
    _refused(image, r"compressed cluster 0 .* does not decode")


def _ext4(tmp_path: Path, name: str, *debugfs: str) -> Path:
    tree = tmp_path / f"{name}-tree"
    for d in ("etc", "a/b", "d"):
        (tree / d).mkdir(parents=True, exist_ok=True)
    (tree / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (tree / "etc/big").write_text("hi\n")
    (tree / "d/f").write_text("x\n")
    image = tmp_path / f"{name}.ext4"
    with image.open("wb") as fh:
        fh.truncate(16 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), str(image)], check=True)
    for request in debugfs:
        subprocess.run(["debugfs", "-w", "-R", request, str(image)], check=True,
                       capture_output=True)
    return image


def test_ext4_directory_loop_is_noted_not_followed(tmp_path: Path) -> None:
    image = _ext4(tmp_path, "loop", "link /a /a/b/loop")
    with open_direct(image) as fs:
        assert "1 directory loops not followed" in fs.info.notes
        assert fs.is_dir("/a/b/loop")
        assert fs.listdir("/a/b/loop") == []  # not descended into
        walked = [st.path for st in fs.walk("/")]
        assert len(walked) < 20


def _inode(image: Path, path: str) -> int:
    out = subprocess.run(["debugfs", "-R", f"stat {path}", str(image)], check=True,
                         capture_output=True, text=True).stdout
    return int(out.split("Inode:", 1)[1].split()[0])


@pytest.mark.parametrize(("victim", "directory", "entries"),
                         [("/etc/big", "/etc", 2), ("/d/f", "/d", 1), ("/a", "/", 4)])
def test_inode_with_absurd_size(victim: str, directory: str, entries: int,
                                tmp_path: Path) -> None:
    """The chosen behaviour: the whole open fails, naming the image, the directory (path and
    inode) and which of its entries libfsext refuses; never a tree without the file."""
    image = _ext4(tmp_path, "size", f"sif {victim} size 0x7fffffffffffffff")
    ino = _inode(image, directory)
    err = _refused(image, rf"^{image}: /dev/sda: directory {re.escape(directory)} \(inode "
                          rf"{ino}\) cannot be listed: entry \d of {entries}: invalid inode - "
                          r"data size value out of bounds; ")
    assert type(err) is DirectError


def test_btrfs_is_unsupported_not_an_error(tmp_path: Path) -> None:
    if shutil.which("mkfs.btrfs") is None:
        pytest.skip("mkfs.btrfs (btrfs-progs) is not installed")
    image = tmp_path / "btrfs.raw"
    with image.open("wb") as fh:
        fh.truncate(128 << 20)
    subprocess.run(["mkfs.btrfs", "-q", str(image)], check=True)
    err = _refused(image, r"not read by the direct reader")
    assert isinstance(err, DirectUnsupported) and "btrfs" in err.reason


def test_child_out_of_memory_is_one_clear_error(direct_images: dict[str, Path]) -> None:
    limits = Limits(confine=Settings(address_space=8 * 1024**2))
    _refused(direct_images["qcow2"], r"ran out of memory \(address-space limit", limits)


def test_confinement_is_applied_and_reported(direct_images: dict[str, Path]) -> None:
    with open_direct(direct_images["qcow2"]) as fs:
        applied = fs.info.details["confinement"]
        assert isinstance(applied, dict)
        assert applied["rlimits"] is True and applied["no_new_privs"] is True
        assert applied["seccomp"] == "kill-by-default allow-list"
        if os.geteuid() == 0:
            assert applied["user"] == "nobody"
            assert applied["netns"] == "netns"
    assert _children_alive() == []


def test_seccomp_filter_kills_an_open(tmp_path: Path) -> None:
    """After the filter, a system call off the list (here openat) kills the process."""
    pytest.importorskip("seccomp")
    code = (
        "from imageaudit.openers.direct import confine\n"
        "confine.apply_seccomp(confine.load_seccomp())\n"
        "open('/etc/hostname').read()\n"
    )
    import sys

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert proc.returncode == -31, proc  # SIGSYS
