"""Inputs that read as two kinds of image are refused unless ``--input-kind`` chooses.

A weak root directory that also holds a clean image's OCI layout must not be certified as the
clean image; a tar that is a docker-archive of one image and an OCI layout of another must not
be read one way silently; ``docker://`` references are checked before any daemon is contacted.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from imageaudit.openers import AmbiguousInput, open_image
from imageaudit.openers.detect import detect_input
from imageaudit.openers.docker_daemon import reference_error
from tests.builders.container import (
    docker_archive,
    docker_archive_members,
    oci_layout,
    oci_layout_members,
    write_outer_tar,
)
from tests.builders.example_tree import clean_scenario, weak_scenario
from tests.builders.vm import build_ova
from tests.clitext import diagnostics
from tests.scenario import write_tree

REPO = Path(__file__).resolve().parents[2]
CLEAN_OCI = "--input-kind oci or --input-kind directory"


def run_cli(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m imageaudit ARGS`` as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "imageaudit", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def scan_json(tmp_path: Path, *args: str) -> dict[str, object]:
    out = tmp_path / "report.json"
    done = run_cli("scan", "-q", "--format", "json", "-o", str(out), *args)
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(out.read_text())
    return report


def opened_as(report: dict[str, object]) -> tuple[object, object, dict[str, bool]]:
    image = report["image"]
    cert = report["certification"]
    assert isinstance(image, dict) and isinstance(cert, dict)
    levels = {lv["name"]: lv["granted"] for lv in cert["levels"]}
    return image["kind"], image["format"], levels


@pytest.fixture
def weak_root_with_clean_layout(tmp_path: Path) -> Path:
    root = write_tree(weak_scenario(), tmp_path / "root")
    oci_layout(clean_scenario(), root)  # index.json, oci-layout, blobs/ beside etc/, usr/ ...
    return root


def test_root_dir_holding_an_oci_layout_is_refused(weak_root_with_clean_layout: Path) -> None:
    done = run_cli("scan", str(weak_root_with_clean_layout))
    assert (done.returncode, done.stdout) == (2, "")
    assert diagnostics(done.stderr) == [
        f"imageaudit: error: {weak_root_with_clean_layout}: ambiguous input: it holds "
        "image-layout markers (oci-layout, index.json) and a root filesystem "
        f"(bin, etc, home, lib, ...); choose with {CLEAN_OCI}"
    ]


def image_facts(*args: str) -> dict[str, object]:
    done = run_cli("facts", "-q", "--format", "json", *args)
    assert done.returncode == 0, done.stderr
    image: dict[str, object] = json.loads(done.stdout)["image"]
    return image


def config_digest(*args: str) -> object:
    details = image_facts(*args)["details"]
    assert isinstance(details, dict)
    return details["config_digest"]


def test_input_kind_chooses_the_reading(weak_root_with_clean_layout: Path, tmp_path: Path) -> None:
    clean = oci_layout(clean_scenario(), tmp_path / "clean")
    as_dir = scan_json(tmp_path, "--input-kind", "directory", str(weak_root_with_clean_layout))
    as_oci = scan_json(tmp_path, "--input-kind", "oci", str(weak_root_with_clean_layout))
    assert opened_as(as_dir) == (
        "directory",
        "directory",
        {"basic": False, "standard": False, "hardened": False},
    )
    assert opened_as(as_oci) == opened_as(scan_json(tmp_path, str(clean)))
    assert opened_as(as_oci)[:2] == ("container", "oci-layout")
    assert config_digest("--input-kind", "oci", str(weak_root_with_clean_layout)) == (
        config_digest(str(clean))
    )


def test_facts_and_sbom_take_input_kind(weak_root_with_clean_layout: Path) -> None:
    for command in ("facts", "sbom"):
        done = run_cli(command, "-q", str(weak_root_with_clean_layout))
        assert done.returncode == 2 and "ambiguous input" in done.stderr, done.stderr
    facts = image_facts("--input-kind", "directory", str(weak_root_with_clean_layout))
    assert (facts["kind"], facts["format"]) == ("directory", "directory")
    help_text = run_cli("scan", "--help").stdout
    assert "--input-kind {auto,vm,ova,docker-archive,oci,directory,docker}" in help_text


def test_every_root_name_counts(tmp_path: Path) -> None:
    for name in ("etc", "usr", "var", "lib64", "libx32", "bin", "root"):
        d = tmp_path / name / "in"
        oci_layout(clean_scenario(), d)
        (d / name).symlink_to("usr/" + name)  # a usrmerge link is a root as much as a dir
        with pytest.raises(AmbiguousInput) as err:
            detect_input(str(d))
        assert f"a root filesystem ({name})" in str(err.value)


def test_ordinary_inputs_still_detect(tmp_path: Path) -> None:
    root = write_tree(weak_scenario(), tmp_path / "root")
    layout = oci_layout(clean_scenario(), tmp_path / "oci")
    oci_tar = oci_layout(clean_scenario(), tmp_path / "oci.tar", as_tar=True)
    legacy = docker_archive(clean_scenario(), tmp_path / "legacy.tar")
    # docker save since Docker 25: manifest.json and index.json naming the same image.
    both = docker_archive(clean_scenario(), tmp_path / "both.tar", layout="blobs")
    both_dir = tmp_path / "both-dir"
    for name, data in docker_archive_members(clean_scenario(), layout="blobs").items():
        (both_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (both_dir / name).write_bytes(data)
    got = {p.name: detect_input(str(p)) for p in (root, layout, oci_tar, legacy, both, both_dir)}
    assert got == {
        "root": "directory", "oci": "oci", "oci.tar": "oci", "legacy.tar": "docker-archive",
        "both.tar": "docker-archive", "both-dir": "docker-archive",
    }  # fmt: skip
    with open_image(str(root)) as fs:
        assert (fs.info.kind, fs.info.format) == ("directory", "directory")
    with open_image(str(layout)) as fs:
        assert (fs.info.kind, fs.info.format) == ("container", "oci-layout")


def test_ordinary_vm_inputs_still_detect(tmp_path: Path) -> None:
    qcow2 = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow2), "16M"], check=True)
    vmdk = tmp_path / "disk.vmdk"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=streamOptimized",
                    str(vmdk), "16M"], check=True)  # fmt: skip
    ova = build_ova(vmdk, tmp_path / "vm.ova")
    text = tmp_path / "notes.txt"
    text.write_text("not an image\n")
    got = {p.name: detect_input(str(p)) for p in (qcow2, ova, text)}
    assert got == {"disk.qcow2": "vm", "vm.ova": "ova", "notes.txt": "vm"}
    done = run_cli("scan", str(text))
    assert (done.returncode, diagnostics(done.stderr)) == (2, [
        f"imageaudit: error: {text}: unsupported format: not a VM disk image (qcow2, vmdk, vdi, "
        "vhdx, vhd, ova, raw), container archive, OCI layout or root directory"
    ])  # fmt: skip


@dataclass
class Mixed:
    tar: Path
    directory: Path
    docker_config: str
    oci_config: str


@pytest.fixture
def mixed(tmp_path: Path) -> Mixed:
    """A docker-archive of the weak image and an OCI layout of the clean one, in one input."""
    members = docker_archive_members(weak_scenario())
    members.update(oci_layout_members(clean_scenario()))
    directory = tmp_path / "mixed-dir"
    for name, data in members.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(data)
    docker_config = json.loads(members["manifest.json"])[0]["Config"]
    index = json.loads(members["index.json"])
    manifest = json.loads(members["blobs/" + index["manifests"][0]["digest"].replace(":", "/")])
    return Mixed(
        write_outer_tar(members, tmp_path / "mixed.tar"),
        directory,
        "sha256:" + docker_config.removesuffix(".json"),
        manifest["config"]["digest"],
    )


def test_docker_archive_and_oci_layout_of_different_images_are_refused(
    mixed: Mixed, tmp_path: Path
) -> None:
    expected = (
        f"ambiguous input: its manifest.json names image {mixed.docker_config} and its "
        f"index.json image {mixed.oci_config}; choose with --input-kind docker-archive or "
        "--input-kind oci"
    )
    done = run_cli("scan", str(mixed.tar))
    assert (done.returncode, diagnostics(done.stderr)) == (
        2,
        [f"imageaudit: error: {mixed.tar}: {expected}"],
    )
    with pytest.raises(AmbiguousInput) as err:
        detect_input(str(mixed.directory))
    assert str(err.value) == f"{mixed.directory}: {expected}"
    as_docker = scan_json(tmp_path, "--input-kind", "docker-archive", str(mixed.tar))
    assert opened_as(as_docker)[:2] == ("container", "docker-archive")
    assert opened_as(as_docker)[2]["basic"] is False
    for kind, digest in (("docker-archive", mixed.docker_config), ("oci", mixed.oci_config)):
        assert config_digest("--input-kind", kind, str(mixed.tar)) == digest
        assert config_digest("--input-kind", kind, str(mixed.directory)) == digest


def test_an_unreadable_second_view_is_refused(tmp_path: Path) -> None:
    members = docker_archive_members(weak_scenario())
    members["index.json"] = b'{"manifests": "nope"}'
    tar = write_outer_tar(members, tmp_path / "half.tar")
    with pytest.raises(AmbiguousInput) as err:
        detect_input(str(tar))
    assert str(err.value) == (
        f"{tar}: ambiguous input: it holds both manifest.json and index.json, and reading it "
        "as an OCI image layout (index.json) fails (index.json: no manifests listed); choose "
        "with --input-kind docker-archive or --input-kind oci"
    )


def _tar(out: Path, members: list[tuple[str, bytes]]) -> Path:
    """A plain tar with members in the order given (the first header starts the file)."""
    with tarfile.open(out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime = len(data), 1_700_000_000
            tar.addfile(ti, io.BytesIO(data))
    return out


def test_container_archive_that_is_also_an_ova_or_a_disk_is_refused(tmp_path: Path) -> None:
    docker = sorted(docker_archive_members(weak_scenario()).items())
    ova = _tar(tmp_path / "ova.tar", [("appliance.ovf", b"<Envelope/>"), *docker])
    # The first member's name puts the squashfs magic at offset 0: a raw disk to the sniff.
    disk = _tar(tmp_path / "disk.tar", [("hsqs", b"\0" * 4096), *docker])
    for path, reading, kind in ((ova, "an OVA", "ova"), (disk, "a VM disk image", "vm")):
        done = run_cli("scan", str(path))
        assert (done.returncode, diagnostics(done.stderr)) == (2, [
            f"imageaudit: error: {path}: ambiguous input: it reads as a container archive "
            f"(manifest.json) and as {reading}; choose with --input-kind docker-archive or "
            f"--input-kind {kind}"
        ])  # fmt: skip
    with open_image(str(disk), "docker-archive") as fs:
        assert fs.info.format == "docker-archive"


# -- docker:// references -------------------------------------------------------------------


class FakeDaemonSocket:
    """A unix socket where a daemon would listen: counts connections, answers none."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def daemon_socket(tmp_path: Path) -> Iterator[tuple[FakeDaemonSocket, dict[str, str]]]:
    listener = FakeDaemonSocket(tmp_path / "docker.sock")
    try:
        yield listener, {"DOCKER_HOST": f"unix://{tmp_path / 'docker.sock'}"}
    finally:
        listener.close()


PATH_RULE = "is not lowercase letters and digits separated by '.', '_', '__' or dashes"
BAD_REFERENCES = {
    "docker://../../containers/x/json": f"path component '..' {PATH_RULE}",
    "docker://a?b": "character '?' is not allowed in an image reference",
    "docker://%2e%2e": "character '%' is not allowed in an image reference",
    "docker://debian\n:12": "character '\\\\n' is not allowed in an image reference",
    "docker://debian 12": "character ' ' is not allowed in an image reference",
    "docker://Debian:12": f"path component 'Debian' {PATH_RULE}",
    "docker://": "the reference is empty",
    "docker://debian:-12": (
        "tag '-12' is not 1 to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'"
    ),
    "docker://debian@sha256:abc": (
        "digest 'sha256:abc' is not ALGORITHM:HEX with at least 32 hex digits"
    ),
}


@pytest.mark.parametrize("ref", sorted(BAD_REFERENCES))
def test_bad_docker_reference_is_refused_before_the_daemon(
    ref: str, daemon_socket: tuple[FakeDaemonSocket, dict[str, str]]
) -> None:
    listener, env = daemon_socket
    done = run_cli("scan", ref, env=env)
    shown = ref.replace("\n", "\\n")
    assert (done.returncode, diagnostics(done.stderr)) == (2, [
        f"imageaudit: error: {shown}: not a valid image reference: {BAD_REFERENCES[ref]}"
    ])  # fmt: skip
    assert listener.connections == 0


def test_good_docker_reference_reaches_the_daemon(
    daemon_socket: tuple[FakeDaemonSocket, dict[str, str]],
) -> None:
    listener, env = daemon_socket
    done = run_cli("scan", "docker://registry.example.org:5000/team/app:v1.2", env=env)
    assert done.returncode == 2
    assert "not a valid image reference" not in done.stderr
    assert listener.connections >= 1


def test_reference_grammar() -> None:
    good = [
        "debian", "debian:12", "library/debian:bookworm-slim", "localhost:5000/a/b",
        "registry.example.org:5000/a__b/c-d.e--f:v1.2_3", "[::1]:5000/x:t",
        "Registry.Example.ORG/x", "debian@sha256:" + "a" * 64,
        "debian:12@sha256:" + "0" * 64, "sha256:" + "f" * 64, "x:" + "t" * 128,
    ]  # fmt: skip
    assert {r: reference_error(r) for r in good} == dict.fromkeys(good)
    bad = ["a___b", "a.-b", "a//b", "/a", "a/", ":t", "x:" + "t" * 129, "reg:/x", "a" * 256]
    assert all(reference_error(r) is not None for r in bad)


def test_input_kind_docker_needs_a_reference(tmp_path: Path) -> None:
    image = docker_archive(weak_scenario(), tmp_path / "image.tar")
    done = run_cli("scan", "--input-kind", "docker", str(image))
    assert (done.returncode, diagnostics(done.stderr)) == (2, [
        f"imageaudit: error: {image}: --input-kind docker takes docker://REFERENCE"
    ])  # fmt: skip
