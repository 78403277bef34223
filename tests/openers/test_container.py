"""ContainerFS against DirectoryFS on the same scenarios, in every input format and layering."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from imageaudit.imagefs import FileType, ImageFSError
from imageaudit.openers.container import (
    ContainerImageError,
    ContainerLimits,
    open_container,
)
from imageaudit.openers.detect import container_format
from imageaudit.openers.directory import DirectoryFS
from tests.builders.compare import assert_same_tree
from tests.builders.container import (
    Layer,
    docker_archive,
    docker_archive_members,
    layer_tar,
    oci_layout,
    oci_layout_members,
    write_outer_tar,
)
from tests.scenario import Dir, Fifo, File, Hardlink, Scenario, Symlink, write_tree

SCENARIO: Scenario = {
    "/etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    "/etc/shadow": File("root:*:19000:0:99999:7:::\n", mode=0o640, gid=42),
    "/etc/ssh/sshd_config": "PermitRootLogin no\n",
    "/etc/alt": Symlink("/etc/shadow"),
    "/etc/rel": Symlink("../../../../etc/shadow"),
    "/bin": Symlink("usr/bin"),
    "/usr/bin/tool": File(b"\x7fELF" + bytes(range(256)) * 300, mode=0o755),
    "/usr/bin/tool2": Hardlink("/usr/bin/tool"),
    "/usr/share/empty": File(b""),
    "/home/app": Dir(mode=0o700, uid=1000, gid=1000),
    "/home/app/.profile": File("export X=1\n", uid=1000, gid=1000, mode=0o600),
    "/tmp": Dir(mode=0o1777),
    "/run/ctl": Fifo(mode=0o600),
    "/dangling": Symlink("/nowhere/at/all"),
}

Build = Callable[[Scenario | list[Layer], Path], Path]
FORMATS: dict[str, tuple[Build, str]] = {
    "docker-legacy": (lambda s, p: docker_archive(s, p), "docker-archive"),
    "docker-legacy-gzip": (lambda s, p: docker_archive(s, p, compression="gzip"), "docker-archive"),
    "docker-blobs": (lambda s, p: docker_archive(s, p, layout="blobs"), "docker-archive"),
    "oci-dir-gzip": (lambda s, p: oci_layout(s, p), "oci-layout"),
    "oci-dir-none": (lambda s, p: oci_layout(s, p, compression="none"), "oci-layout"),
    "oci-dir-zstd": (lambda s, p: oci_layout(s, p, compression="zstd"), "oci-layout"),
    "oci-tar-gzip": (lambda s, p: oci_layout(s, p, as_tar=True), "oci-layout"),
    "oci-tar-zstd": (lambda s, p: oci_layout(s, p, as_tar=True, compression="zstd"), "oci-layout"),
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_same_tree_as_directory(fmt: str, tmp_path: Path) -> None:
    build, expected = FORMATS[fmt]
    image = build(SCENARIO, tmp_path / "image")
    assert container_format(str(image)) == expected
    with (
        open_container(str(image), spool_dir=str(tmp_path)) as fs,
        DirectoryFS(write_tree(SCENARIO, tmp_path / "root")) as ref,
    ):
        assert_same_tree(ref, fs)
        assert fs.read("/etc/alt").data == b"root:*:19000:0:99999:7:::\n"
        assert fs.stat("/bin/tool2").nlink == 2
        assert fs.lstat("/run/ctl").type is FileType.FIFO
        assert (fs.info.kind, fs.info.format, fs.info.notes) == ("container", expected, [])


def _layers(markers_last: bool) -> list[Layer]:
    lower: Scenario = {
        "/etc/passwd": "root:x:0:0::/root:/bin/sh\n",
        "/etc/old": "old\n",
        "/opt/app/a": "a",
        "/opt/app/sub/b": "b",
        "/opt/keep": "keep",
        "/var/lib/x/y": "y",
        "/data/f": "in a dir",
        "/srv": File("a file", mode=0o600),
        "/usr/bin/tool": File(b"v1", mode=0o755),
        "/usr/bin/alias": Hardlink("/usr/bin/tool"),
    }
    upper = Layer(
        {
            "/opt/app/c": "c",
            "/data": File("now a file"),
            "/srv/sub/file": "dir replaced the file",
            "/etc/new": "new",
            "/etc/same-layer": "whiteout in the same layer does not hide me",
            "/usr/bin/tool": File(b"v2", mode=0o755),
        },
        whiteouts=("/etc/old", "/var/lib/x", "/etc/same-layer", "/not/there"),
        opaque=("/opt/app",),
        markers_last=markers_last,
    )
    top = Layer({"/usr/bin/later": Hardlink("/usr/bin/alias")})
    return [Layer(lower), upper, top]


EXPECTED_MERGED: Scenario = {
    "/etc/passwd": "root:x:0:0::/root:/bin/sh\n",
    "/etc/new": "new",
    "/etc/same-layer": "whiteout in the same layer does not hide me",
    "/opt/app/c": "c",
    "/opt/keep": "keep",
    "/var/lib": Dir(),
    "/data": File("now a file"),
    "/srv/sub/file": "dir replaced the file",
    "/usr/bin/tool": File(b"v2", mode=0o755),
    "/usr/bin/alias": File(b"v1", mode=0o755),
    "/usr/bin/later": Hardlink("/usr/bin/alias"),
}


@pytest.mark.parametrize("markers_last", [False, True], ids=["markers-first", "markers-last"])
@pytest.mark.parametrize("fmt", ["docker-legacy", "oci-dir-gzip", "oci-tar-zstd"])
def test_layers_whiteouts_and_opaque_dirs(fmt: str, markers_last: bool, tmp_path: Path) -> None:
    build, _ = FORMATS[fmt]
    image = build(_layers(markers_last), tmp_path / "image")
    with (
        open_container(str(image), spool_dir=str(tmp_path)) as fs,
        DirectoryFS(write_tree(EXPECTED_MERGED, tmp_path / "root")) as ref,
    ):
        assert_same_tree(ref, fs)
        assert fs.info.details["layers"] == 3
        assert not fs.exists("/.wh.old") and fs.listdir("/etc") == ["new", "passwd", "same-layer"]
        assert fs.stat("/usr/bin/later").nlink == 2  # alias + later; tool was replaced


def test_config_facts_in_details(tmp_path: Path) -> None:
    config: dict[str, object] = {
        "User": "app:app",
        "Env": ["PATH=/usr/bin", "SECRET_TOKEN=abc"],
        "ExposedPorts": {"8080/tcp": {}, "22/tcp": {}},
        "Entrypoint": ["/usr/bin/tool"],
        "Cmd": None,
        "WorkingDir": "/srv",
        "Labels": {"org.opencontainers.image.vendor": "X", "bad": 1},
    }
    image = oci_layout(SCENARIO, tmp_path / "image", config=config)
    with open_container(str(image)) as fs:
        digest = json.loads((image / "index.json").read_text())["manifests"][0]["digest"]
        manifest = json.loads((image / "blobs" / "sha256" / digest[7:]).read_text())
        assert fs.info.details == {
            "layers": 1,
            "image_id": manifest["config"]["digest"],
            "config_digest": manifest["config"]["digest"],
            "os": "linux",
            "architecture": "amd64",
            "user": "app:app",
            "env": ["PATH=/usr/bin", "SECRET_TOKEN=abc"],
            "exposed_ports": ["22/tcp", "8080/tcp"],
            "entrypoint": ["/usr/bin/tool"],
            "cmd": None,
            "working_dir": "/srv",
            "labels": {"org.opencontainers.image.vendor": "X"},
        }


def test_platform_is_chosen_from_index_and_nested_index(tmp_path: Path) -> None:
    arm: Scenario = {"/etc/arch": "arm64\n"}
    amd: Scenario = {"/etc/arch": "amd64\n"}
    for nested in (False, True):
        image = oci_layout(
            amd, tmp_path / f"img{nested}", other_platforms={"linux/arm64": arm}, nested=nested
        )
        with open_container(str(image)) as fs:
            assert fs.read("/etc/arch").data == b"amd64\n"
            assert fs.info.details["architecture"] == "amd64"


def test_no_amd64_among_several_platforms_is_an_error(tmp_path: Path) -> None:
    members = oci_layout_members({"/a": "x"}, other_platforms={"linux/arm64": {"/b": "y"}})
    members["index.json"] = members["index.json"].replace(b'"amd64"', b'"riscv64"')
    image = write_outer_tar(members, tmp_path / "image.tar")
    with pytest.raises(ContainerImageError) as err:
        open_container(str(image))
    assert str(err.value) == "index.json: no linux/amd64 image among 2 (linux/arm64, linux/riscv64)"


def test_detect_refuses_what_is_not_an_image(tmp_path: Path) -> None:
    plain = tmp_path / "root.tar"
    plain.write_bytes(layer_tar(Layer({"/etc/passwd": "x"})))
    junk = tmp_path / "disk.qcow2"
    junk.write_bytes(b"QFI\xfb" + bytes(1020))
    (tmp_path / "emptydir").mkdir()
    for path in (plain, junk, tmp_path / "emptydir", tmp_path / "absent"):
        assert container_format(str(path)) is None
    with pytest.raises(ContainerImageError) as err:
        open_container(str(plain))
    assert str(err.value) == (
        f"{plain}: not a docker-archive, an OCI image layout or a docker:// reference"
    )


def test_docker_archive_directory_and_shared_layer_symlink(tmp_path: Path) -> None:
    """Old docker save links a layer shared by two ids: ``<id2>/layer.tar -> ../<id1>/...``."""
    members = docker_archive_members([Layer({"/a": "1"}), Layer({"/b": "2"})])
    manifest = json.loads(members["manifest.json"])
    first, second = manifest[0]["Layers"]
    buf = tmp_path / "image.tar"
    with tarfile.open(buf, "w") as tar:
        for name, data in sorted(members.items()):
            if name == second:
                ti = tarfile.TarInfo(name)
                ti.type = tarfile.SYMTYPE
                ti.linkname = "../" + first
                tar.addfile(ti)
                continue
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    # The second layer now has the first's bytes, which the config's diff_ids refuse...
    with pytest.raises(ContainerImageError) as err:
        open_container(str(buf))
    assert err.value.where == second and "digest mismatch" in err.value.reason
    # ...and when both layers are truly the same, the link is followed inside the archive.
    members = docker_archive_members([Layer({"/a": "1"}), Layer({"/a": "1"})])
    out = tmp_path / "unpacked"
    for name, data in members.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    assert container_format(str(out)) == "docker-archive"
    with open_container(str(out)) as fs:
        assert fs.read("/a").data == b"1"


def test_multi_member_gzip_layer_and_device_nodes(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind in (("dev/null", tarfile.CHRTYPE), ("dev/sda", tarfile.BLKTYPE)):
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.devmajor, ti.devminor = kind, 0o666, 1, 3
            tar.addfile(ti)
        data = b"hello from the second gzip member\n" * 1000
        ti = tarfile.TarInfo("etc/motd")
        ti.size = len(data)
        tar.addfile(ti, io.BytesIO(data))
    raw = buf.getvalue()
    packed = gzip.compress(raw[:700], mtime=0) + gzip.compress(raw[700:], mtime=0)
    image = docker_archive([Layer(raw=packed)], tmp_path / "image.tar")
    with open_container(str(image)) as fs:
        assert fs.read("/etc/motd").data == data
        assert [fs.lstat(p).type for p in ("/dev/null", "/dev/sda")] == [
            FileType.CHAR_DEVICE,
            FileType.BLOCK_DEVICE,
        ]
        with pytest.raises(ImageFSError) as rerr:
            fs.read("/dev/null")
        assert str(rerr.value) == "/dev/null: not a regular file (chardev)"


def test_per_file_read_cap(tmp_path: Path) -> None:
    image = oci_layout({"/big": File(b"x" * 10_000)}, tmp_path / "image")
    with open_container(str(image), ContainerLimits(max_read=100)) as fs:
        assert fs.read("/big").data == b"x" * 100
        assert fs.read("/big", limit=10).data == b"x" * 10


def test_layer_and_image_caps(tmp_path: Path) -> None:
    layers = [Layer({"/a": File(b"a" * 5000)}), Layer({"/b": File(b"b" * 5000)})]
    image = oci_layout(layers, tmp_path / "image", compression="none")
    cases = [
        (ContainerLimits(max_layers=1), "2 layers is over the cap"),
        (ContainerLimits(max_layer_compressed=1000), "layer of 10240 bytes is over the cap"),
        (ContainerLimits(max_image_compressed=15000), "image is over the compressed-size cap"),
        (ContainerLimits(max_image_uncompressed=15000), "image is over the uncompressed-size cap"),
        (ContainerLimits(max_members=1), "more than 1 tar members"),
    ]
    for limits, reason in cases:
        with pytest.raises(ContainerImageError) as err:
            open_container(str(image), limits)
        assert err.value.reason == reason


def test_builders_are_deterministic(tmp_path: Path) -> None:
    layers = _layers(markers_last=True)
    one = docker_archive(layers, tmp_path / "one.tar", compression="gzip").read_bytes()
    two = docker_archive(layers, tmp_path / "two.tar", compression="gzip").read_bytes()
    assert one == two
    assert oci_layout_members(layers, compression="zstd") == oci_layout_members(
        layers, compression="zstd"
    )
