"""The direct reader and the libguestfs opener agree: same tree, same layout, same facts.

Every guestfs view comes from the session's one shared appliance (``shared_vms``); each
direct view opens the very same file (or its raw or compressed twin) in a few tenths of a
second. Unlike the comparison with a host directory, nothing is left out here: directory
sizes, link counts and mtimes come from the same disk both ways and must agree.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from imageaudit.facts import collect_facts
from imageaudit.imagefs import ImageFS
from imageaudit.openers.direct import open_direct
from tests.openers.direct.conftest import compressed_twin

pytestmark = [pytest.mark.guestfs, pytest.mark.slow]

SHARED = ("qcow2", "vmdk-stream", "vdi", "sepvar-vmdk", "lvm-qcow2", "xfs-vhdx", "weak-qcow2",
          "clean-qcow2", "debian-qcow2")
LAYOUT_KEYS = ("partitions", "filesystems", "mountpoints", "os roots", "virtual_size")


def _one_drive(value: object) -> object:
    """Device names as a one-drive appliance gives them: the shared appliance holds many
    drives (``/dev/sdb1``, ``/dev/sdi``, ...); the direct reader always names its disk sda."""
    if isinstance(value, str):
        return re.sub(r"^/dev/sd[a-z]+", "/dev/sda", value)
    if isinstance(value, list):
        return [_one_drive(v) for v in value]
    if isinstance(value, dict):
        return {_one_drive(k): _one_drive(v) for k, v in value.items()}
    return value


def _metadata(fs: ImageFS) -> dict[str, tuple[object, ...]]:
    return {st.path: (st.type.value, st.mode, st.uid, st.gid, st.size, st.mtime,
                      st.link_target, st.nlink) for st in fs.walk("/")}


def _facts(fs: ImageFS) -> dict[str, Any]:
    data: dict[str, Any] = collect_facts(fs).to_json()
    data.pop("image", None)
    data.pop("timings", None)
    return data


@pytest.mark.parametrize("name", SHARED)
def test_same_tree_and_layout(name: str, shared_vms: Any) -> None:
    if name not in shared_vms:
        pytest.skip(f"{name} is not among the shared images here")
    gfs, path, _sha = shared_vms[name]
    with open_direct(path) as dfs:
        want, got = _metadata(gfs), _metadata(dfs)
        diffs = [p for p in sorted(want.keys() | got.keys()) if want.get(p) != got.get(p)]
        assert not diffs, [(p, want.get(p), got.get(p)) for p in diffs[:10]]
        for key in LAYOUT_KEYS:
            assert dfs.info.details[key] == _one_drive(gfs.info.details[key]), key
        assert dfs.read("/etc/passwd").data == gfs.read("/etc/passwd").data


def _twins(path: Path, tmp: Path) -> dict[str, Path]:
    raw = tmp / f"{path.stem}.raw"
    if not raw.exists():
        import subprocess

        subprocess.run(["qemu-img", "convert", "-q", "-f", "qcow2", "-O", "raw", str(path),
                        str(raw)], check=True)
    return {"qcow2": path, "raw": raw,
            "qcow2-deflate": compressed_twin(path, tmp / f"{path.stem}-deflate.qcow2"),
            "qcow2-zstd": compressed_twin(path, tmp / f"{path.stem}-zstd.qcow2", "zstd")}


@pytest.mark.parametrize("name", ["weak-qcow2", "debian-qcow2"])
def test_same_facts_plain_raw_and_compressed(name: str, shared_vms: Any,
                                             tmp_path_factory: pytest.TempPathFactory) -> None:
    if name not in shared_vms:
        pytest.skip(f"{name} is not among the shared images here")
    gfs, path, _sha = shared_vms[name]
    want = _facts(gfs)
    for kind, image in _twins(path, tmp_path_factory.mktemp(name)).items():
        with open_direct(image) as dfs:
            if kind.startswith("qcow2-"):
                assert int(dfs.info.details["compressed_clusters"]) > 0  # type: ignore[call-overload]
            got = _facts(dfs)
        diffs = [k for k in sorted(want.keys() | got.keys()) if want.get(k) != got.get(k)]
        assert not diffs, (kind, diffs)
