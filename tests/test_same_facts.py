"""The same tree gives the same facts through every opener (directory, containers, VM disks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from imageaudit.facts import Facts, collect_facts
from imageaudit.openers import open_image
from imageaudit.openers.directory import DirectoryFS
from tests.builders.container import Layer, docker_archive, oci_layout
from tests.builders.example_tree import weak_scenario
from tests.scenario import File, write_tree

# Keys whose values name the opener rather than the image; and mtime, since the test writes
# the reference tree and the tree inside a cached disk at different times.
OPENER_KEYS = {"image", "timings", "kind", "schema", "mtime"}


def _under_dev(value: Any) -> bool:
    return isinstance(value, dict) and str(value.get("path", "")).startswith("/dev/")


def comparable(facts: Facts) -> dict[str, Any]:
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            # A directory's st_size is an artefact of the filesystem that holds it (4096 on
            # ext4, 0 in a tar), not a fact about the image.
            is_dir = value.get("type") == "dir"
            return {
                k: strip(v)
                for k, v in value.items()
                if k not in OPENER_KEYS and not (is_dir and k == "size")
            }
        if isinstance(value, list):
            # The cached Debian directory is unpacked without /dev (no device nodes on the host).
            return [strip(v) for v in value if not _under_dev(v)]
        return value

    data: dict[str, Any] = strip(facts.to_json())
    return data


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = write_tree(weak_scenario(), tmp_path_factory.mktemp("ref") / "root")
    with DirectoryFS(root) as fs:
        facts = collect_facts(fs)
    assert not facts.errors, facts.errors
    return comparable(facts)


def _layers() -> list[Layer]:
    tree = weak_scenario()
    lower = dict(tree)
    lower["/etc/removed.conf"] = File("gone\n")
    lower["/opt/old/secret.txt"] = File("old\n")
    lower["/opt/old/keep.txt"] = File("replaced\n")
    upper = {"/opt/old/keep.txt": File("kept\n")}
    return [
        Layer(lower),
        Layer(upper, whiteouts=("/etc/removed.conf",), opaque=("/opt/old",), markers_last=True),
    ]


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-layout", "oci-layout-tar"])
def test_containers_give_the_same_facts(
    fmt: str, reference: dict[str, Any], tmp_path: Path
) -> None:
    if fmt == "docker-archive":
        image = docker_archive(_layers(), tmp_path / "image.tar")
    else:
        image = oci_layout(_layers(), tmp_path / "oci", as_tar=fmt.endswith("tar"))
    with open_image(str(image)) as fs:
        assert fs.info.kind == "container"
        assert not fs.exists("/etc/removed.conf")
        assert fs.read("/opt/old/keep.txt").data == b"kept\n"
        assert not fs.exists("/opt/old/secret.txt")
        facts = collect_facts(fs)
    got = comparable(facts)
    # The layered image adds /opt/old/keep.txt, which the reference tree does not have: the
    # families that list or count every file differ by it, what they find does not.
    for family in ("files", "secretscan"):
        got.pop(family, None)
    ref = {k: v for k, v in reference.items() if k not in ("files", "secretscan")}
    assert got == ref
    assert comparable(facts)["secretscan"]["matches"] == reference["secretscan"]["matches"]


@pytest.mark.guestfs
@pytest.mark.slow
def test_vm_gives_the_same_facts(shared_vms: Any, tmp_path: Path) -> None:
    from tests.builders.vm import directory_of

    # The disk carries the /etc/fstab its layout needs: so does the reference here.
    with DirectoryFS(directory_of(weak_scenario(), "simple", tmp_path / "root")) as ref_fs:
        reference = comparable(collect_facts(ref_fs))
    fs, _, _ = shared_vms["weak-qcow2"]
    facts = collect_facts(fs)
    assert fs.info.kind == "vm"
    got = comparable(facts)
    assert got == reference


# --- a real distribution root through every opener -------------------------------------------


@pytest.fixture(scope="module")
def debian_reference() -> tuple[Path, dict[str, Any]]:
    from tests.builders.debian import debian_root

    try:
        root = debian_root()
    except Exception as exc:  # the first build needs the Debian mirror
        pytest.skip(f"no Debian root: {exc}")
    with DirectoryFS(root) as fs:
        facts = collect_facts(fs)
    assert facts.packages is not None and len(facts.packages.packages) > 80
    return root, comparable(facts)


@pytest.mark.network
@pytest.mark.slow
def test_debian_root_as_container_gives_the_same_facts(
    debian_reference: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    root, ref = debian_reference
    tarball = root.with_name(root.name + ".tar")
    image = docker_archive([Layer(raw=tarball.read_bytes())], tmp_path / "debian.tar")
    with open_image(str(image)) as fs:
        facts = collect_facts(fs)
    assert comparable(facts) == ref


@pytest.mark.network
@pytest.mark.guestfs
@pytest.mark.slow
def test_debian_root_as_qcow2_gives_the_same_facts(
    debian_reference: tuple[Path, dict[str, Any]], shared_vms: Any
) -> None:
    from tests.conftest import DEBIAN_QCOW2_ERROR

    if "debian-qcow2" not in shared_vms:
        pytest.skip(f"no Debian qcow2: {DEBIAN_QCOW2_ERROR}")
    _, ref = debian_reference
    fs, _, _ = shared_vms["debian-qcow2"]
    assert comparable(collect_facts(fs)) == ref
