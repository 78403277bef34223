"""Build container images (docker-archive, OCI layout dir/tar) from scenario descriptions.

Everything is deterministic: fixed mtimes, sorted members, gzip without a timestamp, so the
same description always gives the same bytes and digests. A single scenario is one layer; a
list of :class:`Layer` gives several, with whiteouts and opaque directories where asked.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from tests.scenario import Dir, Fifo, File, Hardlink, Scenario, Symlink, entries

MTIME = 1_700_000_000
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TYPES = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}


@dataclass(frozen=True)
class Layer:
    """One layer: entries, plus paths whited out and directories made opaque for lower layers.

    ``markers_last`` puts the whiteout files after the layer's other entries in the tar (the
    opener must apply them first all the same). ``raw`` is a ready-made tar used as is.
    """

    tree: Scenario = field(default_factory=dict)
    whiteouts: tuple[str, ...] = ()
    opaque: tuple[str, ...] = ()
    markers_last: bool = False
    raw: bytes | None = None


Layers = Sequence[Layer] | Scenario


def as_layers(spec: Layers) -> list[Layer]:
    """A scenario mapping is one layer; a sequence of :class:`Layer` is taken as is."""
    if isinstance(spec, Mapping):
        return [Layer(spec)]
    return list(spec)


def _info(name: str, kind: bytes, mode: int, uid: int = 0, gid: int = 0) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.uid, ti.gid = uid, gid
    ti.mtime = MTIME
    ti.uname = ti.gname = ""
    return ti


def layer_tar(layer: Layer) -> bytes:
    """The uncompressed tar of one layer."""
    if layer.raw is not None:
        return layer.raw
    items: list[tuple[tarfile.TarInfo, bytes | None]] = []
    for path, entry in entries(layer.tree):
        name = path.lstrip("/")
        if isinstance(entry, File):
            ti = _info(name, tarfile.REGTYPE, entry.mode, entry.uid, entry.gid)
            ti.size = len(entry.data)
            items.append((ti, entry.data))
        elif isinstance(entry, Dir):
            items.append((_info(name, tarfile.DIRTYPE, entry.mode, entry.uid, entry.gid), None))
        elif isinstance(entry, Symlink):
            ti = _info(name, tarfile.SYMTYPE, 0o777, entry.uid, entry.gid)
            ti.linkname = entry.target
            items.append((ti, None))
        elif isinstance(entry, Hardlink):
            ti = _info(name, tarfile.LNKTYPE, 0o644)
            ti.linkname = entry.target.lstrip("/")
            items.append((ti, None))
        elif isinstance(entry, Fifo):
            items.append((_info(name, tarfile.FIFOTYPE, entry.mode), None))
    markers: list[tuple[tarfile.TarInfo, bytes | None]] = []
    for path in layer.opaque:
        name = path.strip("/") + "/.wh..wh..opq"
        markers.append((_info(name, tarfile.REGTYPE, 0o644), b""))
    for path in layer.whiteouts:
        head, _, tail = path.strip("/").rpartition("/")
        name = f"{head}/.wh.{tail}" if head else f".wh.{tail}"
        markers.append((_info(name, tarfile.REGTYPE, 0o644), b""))
    ordered = items + markers if layer.markers_last else markers + items
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for ti, data in ordered:
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def compress(data: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(data)
    return data


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_config(
    diff_ids: Sequence[str], config: Mapping[str, object] | None = None, arch: str = "amd64"
) -> bytes:
    """An image config JSON (rootfs.diff_ids filled in)."""
    doc = {
        "architecture": arch,
        "os": "linux",
        "config": dict(config or {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/sh"]}),
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
    }
    return json.dumps(doc, sort_keys=True).encode()


def write_outer_tar(members: Mapping[str, bytes], out: Path) -> Path:
    """A deterministic plain tar of named blobs (sorted)."""
    with tarfile.open(out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(members):
            ti = _info(name, tarfile.REGTYPE, 0o644)
            ti.size = len(members[name])
            tar.addfile(ti, io.BytesIO(members[name]))
    return out


@dataclass
class _Image:
    blobs: dict[str, bytes]  # digest -> bytes
    config_digest: str
    manifest_digest: str
    layer_digests: list[str]
    diff_ids: list[str]


def _diff_id(tar: bytes) -> str:
    """Digest of the uncompressed tar, also for a ``raw`` layer that is already compressed."""
    if tar.startswith(b"\x1f\x8b"):
        return sha256(gzip.decompress(tar))
    if tar.startswith(b"\x28\xb5\x2f\xfd"):
        return sha256(zstandard.ZstdDecompressor().decompressobj().decompress(tar))
    return sha256(tar)


def _image(
    spec: Layers,
    compression: str,
    config: Mapping[str, object] | None,
    arch: str = "amd64",
    diff_ids_override: Sequence[str] | None = None,
) -> _Image:
    blobs: dict[str, bytes] = {}
    tars = [layer_tar(layer) for layer in as_layers(spec)]
    diff_ids = list(diff_ids_override) if diff_ids_override else [_diff_id(t) for t in tars]
    packed = [compress(t, compression) for t in tars]
    layer_digests = [sha256(p) for p in packed]
    blobs.update(zip(layer_digests, packed, strict=True))
    cfg = image_config(diff_ids, config, arch)
    blobs[sha256(cfg)] = cfg
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(cfg), "size": len(cfg)},
        "layers": [
            {"mediaType": LAYER_TYPES[compression], "digest": d, "size": len(p)}
            for d, p in zip(layer_digests, packed, strict=True)
        ],
    }
    mdata = json.dumps(manifest, sort_keys=True).encode()
    blobs[sha256(mdata)] = mdata
    return _Image(blobs, sha256(cfg), sha256(mdata), layer_digests, diff_ids)


def _blob_name(digest: str) -> str:
    return "blobs/" + digest.replace(":", "/")


def _descriptor(
    digest: str, data: bytes, media_type: str, platform: str | None
) -> dict[str, object]:
    desc: dict[str, object] = {"mediaType": media_type, "digest": digest, "size": len(data)}
    if platform is not None:
        os_name, arch = platform.split("/")
        desc["platform"] = {"os": os_name, "architecture": arch}
    return desc


def oci_layout_members(
    spec: Layers,
    *,
    compression: str = "gzip",
    config: Mapping[str, object] | None = None,
    other_platforms: Mapping[str, Layers] | None = None,
    nested: bool = False,
    diff_ids: Sequence[str] | None = None,
) -> dict[str, bytes]:
    """Member name -> bytes of an OCI image layout holding the image (linux/amd64).

    ``diff_ids`` replaces the computed ones in the config (to forge a mismatch).
    """
    image = _image(spec, compression, config, "amd64", diff_ids)
    blobs = dict(image.blobs)
    descs = [
        _descriptor(
            image.manifest_digest,
            blobs[image.manifest_digest],
            OCI_MANIFEST,
            "linux/amd64" if other_platforms else None,
        )
    ]
    for platform, other in (other_platforms or {}).items():
        extra = _image(other, compression, config, platform.split("/")[1])
        blobs.update(extra.blobs)
        descs.append(
            _descriptor(extra.manifest_digest, blobs[extra.manifest_digest], OCI_MANIFEST, platform)
        )
    index: dict[str, object] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descs}
    if nested:
        inner = json.dumps(index, sort_keys=True).encode()
        blobs[sha256(inner)] = inner
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [_descriptor(sha256(inner), inner, OCI_INDEX, None)],
        }
    members = {_blob_name(d): data for d, data in blobs.items()}
    members["index.json"] = json.dumps(index, sort_keys=True).encode()
    members["oci-layout"] = b'{"imageLayoutVersion":"1.0.0"}'
    return members


def oci_layout(spec: Layers, out: Path, *, as_tar: bool = False, **kwargs: object) -> Path:
    """Write an OCI layout as directory ``out`` (or as tar file ``out`` when ``as_tar``)."""
    members = oci_layout_members(spec, **kwargs)  # type: ignore[arg-type]
    if as_tar:
        return write_outer_tar(members, out)
    for name, data in members.items():
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return out


def docker_archive_members(
    spec: Layers,
    *,
    layout: str = "legacy",
    compression: str = "none",
    config: Mapping[str, object] | None = None,
    tag: str = "imageaudit-test:latest",
    diff_ids: Sequence[str] | None = None,
) -> dict[str, bytes]:
    """Member name -> bytes of a ``docker save`` archive.

    ``layout="legacy"``: ``<id>/layer.tar`` and ``<config hex>.json`` (Docker < 25);
    ``layout="blobs"``: ``blobs/sha256/...`` plus ``index.json``/``oci-layout`` (Docker >= 25).
    """
    image = _image(spec, compression, config, "amd64", diff_ids)
    cfg = image.blobs[image.config_digest]
    members: dict[str, bytes] = {}
    if layout == "blobs":
        members.update({_blob_name(d): data for d, data in image.blobs.items()})
        config_name = _blob_name(image.config_digest)
        layer_names = [_blob_name(d) for d in image.layer_digests]
        mdesc = _descriptor(
            image.manifest_digest, image.blobs[image.manifest_digest], OCI_MANIFEST, None
        )
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [mdesc]}
        members["index.json"] = json.dumps(index, sort_keys=True).encode()
        members["oci-layout"] = b'{"imageLayoutVersion":"1.0.0"}'
    else:
        config_name = image.config_digest.split(":", 1)[1] + ".json"
        members[config_name] = cfg
        layer_names = []
        for digest, diff_id in zip(image.layer_digests, image.diff_ids, strict=True):
            layer_id = hashlib.sha256(diff_id.encode()).hexdigest()
            layer_names.append(f"{layer_id}/layer.tar")
            members[f"{layer_id}/layer.tar"] = image.blobs[digest]
            members[f"{layer_id}/VERSION"] = b"1.0"
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": layer_names}]
    members["manifest.json"] = json.dumps(manifest, sort_keys=True).encode()
    return members


def docker_archive(spec: Layers, out: Path, **kwargs: object) -> Path:
    """Write a ``docker save`` style tar at ``out``."""
    return write_outer_tar(docker_archive_members(spec, **kwargs), out)  # type: ignore[arg-type]
