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

# Keys whose values name the opener rather than the image.
OPENER_KEYS = {"image", "timings", "kind", "schema"}


def comparable(facts: Facts) -> dict[str, Any]:
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in OPENER_KEYS}
        if isinstance(value, list):
            return [strip(v) for v in value]
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
    # The layered image adds /opt/old/keep.txt, which the reference tree does not have.
    for family in ("files",):
        got.pop(family, None)
    ref = {k: v for k, v in reference.items() if k != "files"}
    assert got == ref
