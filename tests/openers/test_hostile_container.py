"""Hostile container images, built here: each ends in a clear error or a correct tree, in time.

A host canary file is planted outside every place the opener may read; an audit hook fails
any ``open`` outside the image, pytest's temporary directories and Python's own files, and
every read of every entry is checked for the canary's content.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import sys
import sysconfig
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imageaudit.imagefs import FileType, ImageFS, ImageFSError, NotFoundInImage
from imageaudit.openers.container import (
    ContainerFS,
    ContainerImageError,
    ContainerLimits,
    open_container,
)
from tests.builders.container import (
    Layer,
    docker_archive,
    oci_layout,
    oci_layout_members,
    sha256,
    write_outer_tar,
)
from tests.scenario import Entry, File, Symlink

CANARY = b"HOST-CANARY-7f3a9c: this must never be read from an image\n"
_RELATIVE_OK = re.compile(
    r"^(blobs|sha256|sha512|[0-9a-f]{64}|[0-9a-f]{128}|index\.json|oci-layout|manifest\.json)$"
)


class _Guard:
    """State of the process-wide audit hook (hooks cannot be removed, only disarmed)."""

    allowed: tuple[str, ...] = ()
    armed = False
    violations: list[str] = []  # noqa: RUF012 - one process-wide list on purpose


def _hook(event: str, args: tuple[object, ...]) -> None:
    if event != "open" or not _Guard.armed:
        return
    path = args[0]
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str):
        return  # an fd
    if not path.startswith("/"):
        if _RELATIVE_OK.match(path):  # dir_fd-relative opens inside an OCI layout
            return
    else:
        real = os.path.normpath(path)
        if any(real == a or real.startswith(a.rstrip("/") + "/") for a in _Guard.allowed):
            return
    _Guard.violations.append(path)
    raise PermissionError(f"audit: open of {path!r} outside the allowed places")


_INSTALLED = False


@pytest.fixture
def canary(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A host file outside pytest's temp dirs; opens outside allowed places fail the test."""
    global _INSTALLED
    fd, name = tempfile.mkstemp(prefix="imageaudit-canary-", dir="/tmp")
    os.write(fd, CANARY)
    os.close(fd)
    if not _INSTALLED:
        sys.addaudithook(_hook)
        _INSTALLED = True
    paths = sysconfig.get_paths()
    _Guard.allowed = (
        str(tmp_path_factory.getbasetemp()),
        str(Path(__file__).resolve().parents[2]),
        sys.prefix,
        sys.base_prefix,
        *(paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")),
        *(p for p in sys.path if p.startswith("/usr/")),
    )
    _Guard.violations = []
    _Guard.armed = True
    try:
        yield Path(name)
    finally:
        _Guard.armed = False
        Path(name).unlink()
    assert _Guard.violations == []


def _untouched(canary: Path) -> bool:
    """The canary still holds its content (read with the guard briefly off: we are the host)."""
    _Guard.armed = False
    try:
        return canary.read_bytes() == CANARY
    finally:
        _Guard.armed = True


def _read_everything(fs: ImageFS) -> None:
    """Read every entry through the public interface; the canary must never show up."""
    for st in fs.walk("/"):
        if st.type in (FileType.REGULAR, FileType.SYMLINK):
            try:
                data = fs.read(st.path).data
            except ImageFSError:
                continue
            assert CANARY not in data, st.path


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for ti, data in members:
            if data is not None:
                ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _ti(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mode = kind, link, 0o644
    return ti


def _open(image: Path, tmp_path: Path, limits: ContainerLimits | None = None) -> ContainerFS:
    return open_container(str(image), limits, spool_dir=str(tmp_path))


def test_dotdot_and_absolute_names_stay_inside(canary: Path, tmp_path: Path) -> None:
    raw = _tar(
        [
            (_ti("../../../.." + str(canary)), b"evil"),
            (_ti("a/../../escape"), b"evil"),
            (_ti("ok/../fine"), b"fine"),
            (_ti("/etc/passwd"), b"root:x:0:0::/:/bin/sh\n"),
        ]
    )
    with _open(docker_archive([Layer(raw=raw)], tmp_path / "i.tar"), tmp_path) as fs:
        assert sorted(st.path for st in fs.walk("/")) == ["/etc", "/etc/passwd", "/fine"]
        assert [n.split(": ", 1)[1] for n in fs.info.notes] == [
            f"member '../../../..{canary}' climbs out of the root; skipped",
            "member 'a/../../escape' climbs out of the root; skipped",
            "absolute member name '/etc/passwd' taken as relative",
        ]
        _read_everything(fs)
    assert _untouched(canary)


def test_symlink_escapes_resolve_inside_the_image(canary: Path, tmp_path: Path) -> None:
    scenario: dict[str, Entry | str] = {
        "/etc/shadow": Symlink("/../../../" + str(canary).lstrip("/")),
        "/etc/alt": Symlink(str(canary)),
        "/etc/rel": Symlink("../../../../../../../.." + str(canary)),
        "/etc/passwd": "root:x:0:0::/:/bin/sh\n",
    }
    with _open(oci_layout(scenario, tmp_path / "i"), tmp_path) as fs:
        for path in ("/etc/shadow", "/etc/alt", "/etc/rel"):
            with pytest.raises(NotFoundInImage):
                fs.read(path)
        _read_everything(fs)
    # The same name inside the image is the image's own file, never the host's.
    scenario[str(canary)] = File("image content\n")
    with _open(oci_layout(scenario, tmp_path / "j"), tmp_path) as fs:
        assert {fs.read(p).data for p in ("/etc/shadow", "/etc/alt", "/etc/rel")} == {
            b"image content\n"
        }
        _read_everything(fs)


def test_hardlink_escapes_are_dropped(canary: Path, tmp_path: Path) -> None:
    raw = _tar(
        [
            (_ti("etc/passwd"), b"root\n"),
            (_ti("x", tarfile.LNKTYPE, "../../../.." + str(canary)), None),
            (_ti("y", tarfile.LNKTYPE, str(canary)), None),
            (_ti("z", tarfile.LNKTYPE, "/etc/passwd"), None),
            (_ti("d", tarfile.LNKTYPE, "etc"), None),
        ]
    )
    with _open(oci_layout([Layer(raw=raw)], tmp_path / "i"), tmp_path) as fs:
        assert sorted(st.path for st in fs.walk("/")) == ["/etc", "/etc/passwd", "/z"]
        assert fs.read("/z").data == b"root\n" and fs.lstat("/z").nlink == 2
        assert [n.split(": ", 1)[1] for n in fs.info.notes] == [
            f"hardlink 'x' -> '../../../..{canary}' has no usable target",
            f"hardlink 'y' -> '{canary}' has no usable target",
            "hardlink 'd' -> 'etc' has no usable target",
        ]
        _read_everything(fs)


def test_cross_layer_symlink_does_not_redirect_writes(canary: Path, tmp_path: Path) -> None:
    layers = [
        Layer({"/etc/passwd": "root\n", "/dir/a": "a", "/dir2/b": "b"}),
        Layer({"/dir": Symlink("/etc"), "/dir2": Symlink(str(canary.parent))}),
        Layer(raw=_tar([(_ti("dir/passwd"), b"pwned\n"), (_ti("dir2/" + canary.name), b"x")])),
    ]
    with _open(docker_archive(layers, tmp_path / "i.tar"), tmp_path) as fs:
        assert fs.read("/etc/passwd").data == b"root\n"
        assert fs.lstat("/dir").type is FileType.DIRECTORY
        assert fs.listdir("/dir") == ["passwd"] and fs.listdir("/etc") == ["passwd"]
        assert fs.listdir("/dir2") == [canary.name]
        assert [n.split(": ", 1)[1] for n in fs.info.notes] == [
            "/dir (symlink) replaced by a directory to hold /dir/passwd",
            f"/dir2 (symlink) replaced by a directory to hold /dir2/{canary.name}",
        ]
        _read_everything(fs)
    assert _untouched(canary)


def test_whiteouts_through_a_symlinked_dir_do_not_reach_its_target(
    canary: Path, tmp_path: Path
) -> None:
    layers = [
        Layer({"/etc/passwd": "root\n", "/link": Symlink("/etc")}),
        Layer(
            raw=_tar(
                [
                    (_ti("link/.wh..wh..opq"), b""),
                    (_ti("link/.wh.passwd"), b""),
                    (_ti("etc/.wh.."), b""),
                    (_ti("etc/.wh...."), b""),
                    (_ti("etc/.wh..wh.plnk"), b""),
                ]
            )
        ),
    ]
    with _open(oci_layout(layers, tmp_path / "i"), tmp_path) as fs:
        assert fs.read("/link/passwd").data == b"root\n"
        assert fs.readlink("/link") == "/etc"
        assert [n.split(": ", 1)[1] for n in fs.info.notes] == [
            "'etc/.wh..': meaningless whiteout ignored",
            "'etc/.wh..wh.plnk': unknown whiteout metadata ignored",
        ]


def _bomb_layer(total: int) -> bytes:
    """gzip of a tar holding one file of ``total`` zero bytes, as concatenated members."""
    ti = _ti("zeros")
    ti.size = total
    header = ti.tobuf(format=tarfile.USTAR_FORMAT)
    chunk = 64 << 20
    zeros = gzip.compress(bytes(chunk), compresslevel=9, mtime=0)
    return gzip.compress(header, mtime=0) + zeros * (total // chunk)


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        (ContainerLimits(), "compression ratio over 200:1 (decompression bomb?)"),
        (
            ContainerLimits(max_ratio=10**9, max_layer_uncompressed=256 << 20),
            "uncompressed layer over the cap of 268435456",
        ),
    ],
    ids=["ratio", "size"],
)
def test_decompression_bomb_is_stopped_fast(
    canary: Path, tmp_path: Path, limits: ContainerLimits, reason: str
) -> None:
    blob = _bomb_layer(4 << 30)  # 4 GiB of zeros in ~4 MiB
    members = oci_layout_members([Layer(raw=blob)], compression="none", diff_ids=[sha256(b"")])
    image = write_outer_tar(members, tmp_path / "bomb.tar")
    assert image.stat().st_size < 8 << 20
    start = time.monotonic()
    with pytest.raises(ContainerImageError) as err:
        _open(image, tmp_path, limits)
    assert err.value.reason == reason
    assert err.value.where == "blobs/" + sha256(blob).replace(":", "/")
    assert time.monotonic() - start < 10


def _many_members(count: int) -> bytes:
    ti = _ti("f")
    header = ti.tobuf(format=tarfile.USTAR_FORMAT)
    piece = gzip.compress(header * 10_000, mtime=0)
    return piece * (count // 10_000) + gzip.compress(bytes(1024), mtime=0)


def test_a_million_tiny_members_hit_the_member_cap(canary: Path, tmp_path: Path) -> None:
    blob = _many_members(1_000_000)
    members = oci_layout_members([Layer(raw=blob)], compression="none", diff_ids=[sha256(b"")])
    image = write_outer_tar(members, tmp_path / "many.tar")
    start = time.monotonic()
    with pytest.raises(ContainerImageError) as err:
        _open(image, tmp_path, ContainerLimits(max_ratio=10**9))
    assert err.value.reason == "more than 500000 tar members"
    assert time.monotonic() - start < 30
    with pytest.raises(ContainerImageError) as err:  # default caps: the ratio stops it first
        _open(image, tmp_path)
    assert err.value.reason == "compression ratio over 200:1 (decompression bomb?)"


def test_deep_and_long_names_and_huge_pax_headers(canary: Path, tmp_path: Path) -> None:
    deep = _tar([(_ti("a/" * 300 + "f"), b"x")])
    long_name = _tar([(_ti("n" * 5000), b"x")])
    pax = _ti("pax")
    pax.type = tarfile.XHDTYPE
    pax.size = 2**31
    huge_pax = pax.tobuf(format=tarfile.USTAR_FORMAT)
    real_pax = _ti("big")
    real_pax.pax_headers = {"comment": "c" * (2 << 20)}
    big_records = io.BytesIO()
    with tarfile.open(fileobj=big_records, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(real_pax, io.BytesIO(b""))
    cases = {
        "deep": (deep, "member path deeper than 256"),
        "long": (long_name, "member name longer than the cap"),
        "huge-pax": (huge_pax, "PAX header of 2147483648 bytes is over the cap"),
        "big-pax": (
            big_records.getvalue(),
            f"PAX header of {(2 << 20) + 17} bytes is over the cap",
        ),
    }
    for name, (raw, reason) in cases.items():
        start = time.monotonic()
        with pytest.raises(ContainerImageError) as err:
            _open(oci_layout([Layer(raw=raw)], tmp_path / name), tmp_path)
        assert err.value.reason == reason, name
        assert time.monotonic() - start < 5


def test_digest_and_size_mismatches_name_the_blob(canary: Path, tmp_path: Path) -> None:
    scenario = {"/etc/passwd": "root\n"}
    image = oci_layout(scenario, tmp_path / "i")
    index = json.loads((image / "index.json").read_bytes())
    manifest_path = image / "blobs/sha256" / index["manifests"][0]["digest"][7:]
    layer = json.loads(manifest_path.read_bytes())["layers"][0]
    blob = image / "blobs/sha256" / layer["digest"][7:]
    good = blob.read_bytes()
    blob.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(ContainerImageError) as err:
        _open(image, tmp_path)
    assert err.value.where == f"blobs/sha256/{layer['digest'][7:]}"
    assert err.value.reason == (
        f"digest mismatch: content is {sha256(blob.read_bytes())}, expected {layer['digest']}"
    )
    blob.write_bytes(good + b"\0")
    with pytest.raises(ContainerImageError) as err:
        _open(image, tmp_path)
    assert err.value.reason == f"size is {len(good) + 1}, manifest says {len(good)}"
    # A forged diff_id is caught after decompression, before the tree is handed out.
    members = oci_layout_members(scenario, diff_ids=["sha256:" + "0" * 64])
    with pytest.raises(ContainerImageError) as err:
        _open(write_outer_tar(members, tmp_path / "d.tar"), tmp_path)
    assert err.value.reason.endswith(f"does not match diff_id sha256:{'0' * 64}")


def test_malformed_digests_and_planted_blob_symlinks(canary: Path, tmp_path: Path) -> None:
    image = oci_layout({"/a": "a"}, tmp_path / "i")
    index_path = image / "index.json"
    good_index = index_path.read_bytes()
    index = json.loads(good_index)
    index["manifests"][0]["digest"] = "sha256:../../../../" + str(canary)
    index_path.write_text(json.dumps(index))
    with pytest.raises(ContainerImageError) as err:
        _open(image, tmp_path)
    assert err.value.reason.startswith("malformed digest 'sha256:../../../../")
    index_path.write_bytes(good_index)
    digest = json.loads(good_index)["manifests"][0]["digest"]
    manifest = image / "blobs/sha256" / digest[7:]
    manifest.unlink()
    manifest.symlink_to(canary)
    with pytest.raises(ContainerImageError) as err:
        _open(image, tmp_path)
    assert err.value.where == f"blobs/sha256/{digest[7:]}"
    assert "a symlink?" in err.value.reason


def test_truncated_layers_and_json_bombs(canary: Path, tmp_path: Path) -> None:
    full = _tar([(_ti("etc/passwd"), b"r" * 3000)])
    truncated = full[:1500]
    with pytest.raises(ContainerImageError) as err:
        _open(oci_layout([Layer(raw=truncated)], tmp_path / "t"), tmp_path)
    assert err.value.reason == "truncated tar: no end-of-archive marker"
    packed = gzip.compress(full, mtime=0)
    cut_gzip = packed[: len(packed) // 2]
    image = docker_archive([Layer(raw=cut_gzip)], tmp_path / "g.tar", diff_ids=[sha256(full)])
    with pytest.raises(ContainerImageError) as err:
        _open(image, tmp_path)
    assert err.value.reason == "gzip stream is truncated"
    members = {"manifest.json": b"[" * 200_000}
    with pytest.raises(ContainerImageError) as err:
        _open(write_outer_tar(members, tmp_path / "j.tar"), tmp_path)
    assert str(err.value) == "manifest.json: JSON nested too deeply"
    members = {"manifest.json": b" " * (5 << 20)}
    with pytest.raises(ContainerImageError) as err:
        _open(write_outer_tar(members, tmp_path / "k.tar"), tmp_path)
    assert err.value.reason == f"{5 << 20} bytes is over the cap for metadata"


def test_index_nesting_is_capped(canary: Path, tmp_path: Path) -> None:
    members = oci_layout_members({"/a": "a"})
    for _ in range(6):
        inner = members["index.json"]
        members["blobs/" + sha256(inner).replace(":", "/")] = inner
        members["index.json"] = json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.index.v1+json",
                        "digest": sha256(inner),
                        "size": len(inner),
                    }
                ],
            }
        ).encode()
    with pytest.raises(ContainerImageError) as err:
        _open(write_outer_tar(members, tmp_path / "n.tar"), tmp_path)
    assert err.value.reason == "image indexes nested too deeply"
