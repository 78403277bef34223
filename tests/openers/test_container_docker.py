"""``docker://NAME:TAG`` through a real, private dockerd (``docker import`` of a scenario tree)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imageaudit.openers.container import ContainerImageError, open_container
from imageaudit.openers.detect import container_format
from imageaudit.openers.directory import DirectoryFS
from tests.builders.compare import assert_same_tree
from tests.builders.container import Layer, layer_tar
from tests.builders.docker_daemon import docker_daemon  # noqa: F401 - the fixture
from tests.scenario import Dir, Fifo, File, Hardlink, Scenario, Symlink, write_tree

pytestmark = pytest.mark.docker

SCENARIO: Scenario = {
    "/etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    "/etc/shadow": File("root:*:19000:0:99999:7:::\n", mode=0o640, gid=42),
    "/bin": Symlink("usr/bin"),
    "/usr/bin/tool": File(b"\x7fELF" + bytes(range(256)) * 50, mode=0o755),
    "/usr/bin/tool2": Hardlink("/usr/bin/tool"),
    "/home/app": Dir(mode=0o700, uid=1000, gid=1000),
    "/tmp": Dir(mode=0o1777),
    "/run/ctl": Fifo(mode=0o600),
}


def test_docker_ref_reads_the_imported_tree(
    docker_daemon: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import docker

    tarball = tmp_path / "tree.tar"
    tarball.write_bytes(layer_tar(Layer(SCENARIO)))
    client = docker.DockerClient(base_url=docker_daemon)
    try:
        client.api.import_image_from_file(
            str(tarball),
            repository="imageaudit-test",
            tag="t1",
            changes=["USER app", "EXPOSE 8080/tcp", "ENV MODE=test"],
        )
    finally:
        client.close()
    monkeypatch.setenv("DOCKER_HOST", docker_daemon)
    assert container_format("docker://imageaudit-test:t1") == "docker-daemon"
    with (
        open_container("docker://imageaudit-test:t1", spool_dir=str(tmp_path)) as fs,
        DirectoryFS(write_tree(SCENARIO, tmp_path / "root")) as ref,
    ):
        assert_same_tree(ref, fs)
        assert (fs.info.kind, fs.info.format, fs.info.source) == (
            "container",
            "docker-daemon",
            "docker://imageaudit-test:t1",
        )
        details = fs.info.details
        assert details["layers"] == 1
        assert details["user"] == "app"
        assert details["exposed_ports"] == ["8080/tcp"]
        assert "MODE=test" in details["env"]  # type: ignore[operator]
        assert details["repo_tags"] == ["imageaudit-test:t1"]
        assert details["os"] == "linux"


def test_docker_ref_missing_image_is_a_clear_error(
    docker_daemon: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", docker_daemon)
    with pytest.raises(ContainerImageError) as err:
        open_container("docker://imageaudit-test:absent", spool_dir=str(tmp_path))
    assert str(err.value) == (
        "docker://imageaudit-test:absent: image imageaudit-test:absent not found in the daemon"
    )
