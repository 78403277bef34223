"""Disks for the direct reader's tests, built once per session from the STANDARD scenario.

The ext4 layouts (simple, sepvar) are built without any appliance; the LVM and XFS layouts
need one writable libguestfs launch the first time (then they are cached like every test
disk), so tests over them skip without libguestfs.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.builders.vm import STANDARD, build_disk

# name -> (layout, format as tests.builders.vm.FORMATS names it)
EXT_IMAGES = {
    "raw": ("simple", "raw"),
    "qcow2": ("simple", "qcow2"),
    "vmdk": ("simple", "vmdk"),
    "vmdk-stream": ("simple", "vmdk-stream"),
    "vdi": ("simple", "vdi"),
    "vhdx": ("simple", "vhdx"),
    "vpc": ("simple", "vpc"),
    "sepvar-vmdk": ("sepvar", "vmdk"),
}
APPLIANCE_BUILT = {"lvm-qcow2": ("lvm", "qcow2"), "xfs-vhdx": ("xfs", "vhdx")}


def _disk(layout: str, fmt: str) -> Path:
    return build_disk(STANDARD, layout, fmt)  # type: ignore[arg-type]


def compressed_twin(src: Path, out: Path, algorithm: str = "zlib") -> Path:
    """``qemu-img convert -c`` of ``src``: every cluster qemu can compress is compressed."""
    if not out.exists():
        subprocess.run(["qemu-img", "convert", "-q", "-c", "-O", "qcow2", "-o",
                        f"compression_type={algorithm}", str(src), str(out)], check=True)
    return out


@pytest.fixture(scope="session")
def direct_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{name: path}`` of every ext4 image, plus compressed (deflate and zstd) qcow2 twins."""
    images = {n: _disk(lay, fmt) for n, (lay, fmt) in EXT_IMAGES.items()}
    tmp = tmp_path_factory.mktemp("direct-images")
    images["qcow2-deflate"] = compressed_twin(images["raw"], tmp / "deflate.qcow2")
    images["qcow2-zstd"] = compressed_twin(images["raw"], tmp / "zstd.qcow2", "zstd")
    return images


@pytest.fixture(scope="session")
def appliance_built_images() -> dict[str, Path]:
    pytest.importorskip("guestfs")
    return {n: _disk(lay, fmt) for n, (lay, fmt) in APPLIANCE_BUILT.items()}
