"""Find the config and layer blobs of a docker-archive or an OCI image layout, and verify them.

Both formats are read from an :class:`Archive`: an outer tar read in place (members are
``pread`` at their offsets, nothing is extracted) or a directory walked with ``O_NOFOLLOW``
so a planted symlink cannot lead to a host file. Blob paths are built only from digests that
passed :data:`DIGEST_RE`; member names from ``manifest.json`` are resolved inside the archive.

Specs: opencontainers/image-spec (image-layout.md, image-index.md, manifest.md,
descriptor.md, config.md), moby ``image/spec`` (docker save, ``manifest.json``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat as stat_mod
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from imageaudit.imagefs import normalize
from imageaudit.openers.directory import FILE_FLAGS, parent_dir
from imageaudit.openers.layers import Budget, ContainerImageError, RangeFile
from imageaudit.openers.tarheaders import TarReader

DIGEST_RE = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
_NAME_DIGEST_RE = re.compile(r"^(?:blobs/sha256/([0-9a-f]{64})|([0-9a-f]{64})\.json)$")
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
_MAX_HOPS = 40


class Archive(ABC):
    """Named regular files of an image archive (outer tar or directory)."""

    def __init__(self, label: str, budget: Budget) -> None:
        self.label = label
        self.budget = budget

    @abstractmethod
    def member(self, name: str) -> RangeFile | None:
        """Where the bytes of regular file ``name`` are; ``None`` when it is absent."""

    @abstractmethod
    def close(self) -> None:
        """Close the host file descriptors held."""

    def read_bytes(self, name: str) -> bytes:
        """The whole member ``name``, capped at ``max_json``."""
        blob = self.member(name)
        if blob is None:
            raise ContainerImageError(self.label, f"{name} is missing")
        return self.read_whole(blob, name)

    def read_whole(self, blob: RangeFile, name: str) -> bytes:
        """Every byte of ``blob`` (member ``name``), capped at ``max_json``."""
        if blob.size > self.budget.limits.max_json:
            raise ContainerImageError(name, f"{blob.size} bytes is over the cap for metadata")
        data = blob.read(blob.size)
        if len(data) != blob.size:
            raise ContainerImageError(name, "short read")
        return data


def parse_json(data: bytes, where: str) -> object:
    """JSON from the image; nesting bombs and bad encodings become a clear error."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ContainerImageError(where, "JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ContainerImageError(where, f"not valid JSON ({exc})") from None


class TarArchive(Archive):
    """An uncompressed outer tar (docker save output, OCI layout tar), indexed by headers."""

    def __init__(self, fd: int, label: str, budget: Budget, own_fd: bool = True) -> None:
        super().__init__(label, budget)
        self.fd = fd
        self.own_fd = own_fd
        size = os.fstat(fd).st_size
        self.entries: dict[str, tuple[str, int, int, str]] = {}
        reader = TarReader(RangeFile(fd, 0, size), label, budget)
        for m in reader.members():
            key = normalize(m.name)
            self.entries[key] = (m.kind, m.offset, m.size, m.linkname)

    def member(self, name: str) -> RangeFile | None:
        path = normalize(name)
        for _ in range(_MAX_HOPS):
            entry = self.entries.get(path)
            if entry is None:
                return None
            kind, offset, size, link = entry
            if kind == "file":
                return RangeFile(self.fd, offset, size)
            if kind == "symlink":  # old docker save links shared layers: ../<id>/layer.tar
                base = "/" if link.startswith("/") else path.rsplit("/", 1)[0] or "/"
                path = normalize(base + "/" + link)
            elif kind == "hardlink":
                path = normalize(link)
            else:
                return None
        raise ContainerImageError(self.label, f"{name}: too many links inside the archive")

    def close(self) -> None:
        if self.own_fd and self.fd >= 0:
            os.close(self.fd)
        self.fd = -1


class DirArchive(Archive):
    """An image archive already unpacked in a directory (OCI layout dir, docker save dir)."""

    def __init__(self, root: str, budget: Budget) -> None:
        super().__init__(root, budget)
        self.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.fds: list[int] = []

    def member(self, name: str) -> RangeFile | None:
        path = normalize(name)
        if path == "/":
            return None
        try:
            with parent_dir(self.root_fd, path) as (fd, last):
                ffd = os.open(last, FILE_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ContainerImageError(
                name, f"cannot open inside {self.label} ({exc.strerror}; a symlink?)"
            ) from None
        st = os.fstat(ffd)
        if not stat_mod.S_ISREG(st.st_mode):
            os.close(ffd)
            raise ContainerImageError(name, "not a regular file")
        self.fds.append(ffd)
        return RangeFile(ffd, 0, st.st_size)

    def close(self) -> None:
        for fd in [*self.fds, self.root_fd]:
            if fd >= 0:
                os.close(fd)
        self.fds = []
        self.root_fd = -1


def verify_blob(blob: RangeFile, digest: str | None, size: int | None, where: str) -> None:
    """Size first, then the digest over the bytes as stored; a mismatch names the blob."""
    if size is not None and blob.size != size:
        raise ContainerImageError(where, f"size is {blob.size}, manifest says {size}")
    if digest is None:
        return
    if not DIGEST_RE.match(digest):
        raise ContainerImageError(where, f"unsupported or malformed digest {digest[:80]!r}")
    alg = digest.split(":", 1)[0]
    hasher = hashlib.new(alg)
    pos = 0
    while pos < blob.size:
        chunk = os.pread(blob.fd, min(1 << 20, blob.size - pos), blob.start + pos)
        if not chunk:
            raise ContainerImageError(where, "short read while hashing")
        hasher.update(chunk)
        pos += len(chunk)
    got = f"{alg}:{hasher.hexdigest()}"
    if got != digest:
        raise ContainerImageError(where, f"digest mismatch: content is {got}, expected {digest}")


@dataclass(frozen=True, slots=True)
class LayerRef:
    """One layer blob and what it must hash to."""

    label: str
    blob: RangeFile
    digest: str | None  # of the stored bytes, when the format says it
    size: int | None
    diff_id: str | None  # of the uncompressed tar (config rootfs.diff_ids)
    media_type: str | None


@dataclass
class ImagePlan:
    """What an opener needs to build the tree: parsed config and verified-to-be layers."""

    format: str
    config: dict[str, object]
    config_digest: str
    layers: list[LayerRef]
    repo_tags: list[str] = field(default_factory=list)


def _as_dict(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ContainerImageError(where, "expected a JSON object")
    return value


def _diff_ids(config: dict[str, object], where: str, count: int) -> list[str | None]:
    rootfs = config.get("rootfs")
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(ids, list):
        return [None] * count
    if len(ids) != count or not all(isinstance(i, str) and DIGEST_RE.match(i) for i in ids):
        raise ContainerImageError(where, f"rootfs.diff_ids do not match the {count} layers")
    return list(ids)


def plan_docker_archive(arch: Archive) -> ImagePlan:
    """docker save output: ``manifest.json`` → config → layer members (first image only)."""
    limits = arch.budget.limits
    manifest = parse_json(arch.read_bytes("manifest.json"), "manifest.json")
    if not isinstance(manifest, list) or not manifest:
        raise ContainerImageError("manifest.json", "expected a non-empty list")
    entry = _as_dict(manifest[0], "manifest.json")
    if len(manifest) > 1:
        arch.budget.note(f"manifest.json lists {len(manifest)} images; the first is read")
    config_name = entry.get("Config")
    layers = entry.get("Layers")
    if not isinstance(config_name, str) or not isinstance(layers, list):
        raise ContainerImageError("manifest.json", "Config or Layers missing")
    if len(layers) > limits.max_layers:
        raise ContainerImageError("manifest.json", f"{len(layers)} layers is over the cap")
    data = arch.read_bytes(config_name)
    config_digest = "sha256:" + hashlib.sha256(data).hexdigest()
    claimed = _NAME_DIGEST_RE.match(config_name)
    if claimed and "sha256:" + (claimed.group(1) or claimed.group(2)) != config_digest:
        raise ContainerImageError(config_name, f"digest mismatch: content is {config_digest}")
    config = _as_dict(parse_json(data, config_name), config_name)
    diff_ids = _diff_ids(config, config_name, len(layers))
    refs = []
    for name, diff_id in zip(layers, diff_ids, strict=True):
        if not isinstance(name, str):
            raise ContainerImageError("manifest.json", "a layer name is not a string")
        blob = arch.member(name)
        if blob is None:
            raise ContainerImageError(name, "layer listed in manifest.json is missing")
        m = _NAME_DIGEST_RE.match(name)
        digest = f"sha256:{m.group(1)}" if m and m.group(1) else None
        refs.append(LayerRef(name, blob, digest, None, diff_id, None))
    tags = entry.get("RepoTags")
    repo_tags = [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []
    return ImagePlan("docker-archive", config, config_digest, refs, repo_tags)


def _blob_path(desc: dict[str, object], where: str) -> tuple[str, str, int]:
    digest, size = desc.get("digest"), desc.get("size")
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
        raise ContainerImageError(where, f"malformed digest {str(digest)[:80]!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ContainerImageError(where, f"descriptor {digest} has no valid size")
    alg, hexpart = digest.split(":", 1)
    return f"blobs/{alg}/{hexpart}", digest, size


def _read_blob_json(arch: Archive, desc: dict[str, object], where: str) -> tuple[object, str]:
    path, digest, size = _blob_path(desc, where)
    if size > arch.budget.limits.max_json:
        raise ContainerImageError(path, f"{size} bytes is over the cap for metadata")
    blob = arch.member(path)
    if blob is None:
        raise ContainerImageError(path, f"blob for {where} is missing")
    verify_blob(blob, digest, size, path)
    # Parse the very bytes just verified: opening the member again would, in a directory,
    # read a second file handle that need not hold what was hashed.
    return parse_json(arch.read_whole(blob, path), path), digest


def _platform(desc: dict[str, object]) -> str:
    plat = desc.get("platform")
    if not isinstance(plat, dict):
        return "?"
    return f"{plat.get('os', '?')}/{plat.get('architecture', '?')}"


def _pick(manifests: object, where: str) -> dict[str, object]:
    if not isinstance(manifests, list) or not manifests:
        raise ContainerImageError(where, "no manifests listed")
    if len(manifests) > 4096:
        raise ContainerImageError(where, "too many manifests listed")
    cands = [d for d in manifests if isinstance(d, dict)]
    # BuildKit attaches attestations as unknown/unknown manifests next to the image.
    cands = [d for d in cands if _platform(d) != "unknown/unknown"]
    if len(cands) == 1:
        return cands[0]
    for d in cands:
        if _platform(d) == "linux/amd64":
            return d
    seen = ", ".join(sorted({_platform(d) for d in cands}))
    raise ContainerImageError(where, f"no linux/amd64 image among {len(cands)} ({seen})")


def plan_oci_layout(arch: Archive) -> ImagePlan:
    """OCI layout: ``index.json`` → (nested indexes, linux/amd64) → manifest → blobs."""
    limits = arch.budget.limits
    if arch.member("oci-layout") is None:
        arch.budget.note("oci-layout file is missing")
    doc = _as_dict(parse_json(arch.read_bytes("index.json"), "index.json"), "index.json")
    where = "index.json"
    depth = 0
    while True:
        desc = _pick(doc.get("manifests"), where)
        data, digest = _read_blob_json(arch, desc, where)
        where = digest
        body = _as_dict(data, where)
        if desc.get("mediaType") in INDEX_TYPES or "manifests" in body:
            depth += 1
            if depth > limits.max_index_depth:
                raise ContainerImageError(where, "image indexes nested too deeply")
            doc = body
            continue
        manifest = body
        break
    cdesc = _as_dict(manifest.get("config"), f"{where} config")
    cdata, config_digest = _read_blob_json(arch, cdesc, f"{where} config")
    config = _as_dict(cdata, config_digest)
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise ContainerImageError(where, "manifest has no layers list")
    if len(layers) > limits.max_layers:
        raise ContainerImageError(where, f"{len(layers)} layers is over the cap")
    diff_ids = _diff_ids(config, config_digest, len(layers))
    refs = []
    for ldesc, diff_id in zip(layers, diff_ids, strict=True):
        ld = _as_dict(ldesc, where)
        path, digest, size = _blob_path(ld, where)
        blob = arch.member(path)
        if blob is None:
            raise ContainerImageError(path, "layer blob is missing")
        mt = ld.get("mediaType")
        refs.append(
            LayerRef(path, blob, digest, size, diff_id, mt if isinstance(mt, str) else None)
        )
    return ImagePlan("oci-layout", config, config_digest, refs)


def archive_names(path: str, budget: Budget) -> set[str] | None:
    """Top-level member names of a tar or directory (for :func:`detect`); ``None`` if neither."""
    p = Path(path)
    if p.is_dir():
        return {child.name for child in p.iterdir()}
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode):
            return None
        reader = TarReader(RangeFile(fd, 0, st.st_size), path, budget)
        names = set()
        for m in reader.members():
            name = normalize(m.name).lstrip("/")
            if "/" not in name:
                names.add(name)
        return names
    except ContainerImageError:
        return None
    finally:
        os.close(fd)


def _strings(value: object) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def config_details(plan: ImagePlan) -> dict[str, object]:
    """Facts from the image config that rules use (user, env, ports...), JSON-able."""
    config = plan.config
    inner = config.get("config")
    cfg = inner if isinstance(inner, dict) else {}
    ports = cfg.get("ExposedPorts")
    labels = cfg.get("Labels")
    user = cfg.get("User")
    workdir = cfg.get("WorkingDir")
    details: dict[str, object] = {
        "layers": len(plan.layers),
        "image_id": plan.config_digest,
        "config_digest": plan.config_digest,
        "os": config.get("os") if isinstance(config.get("os"), str) else None,
        "architecture": (
            config.get("architecture") if isinstance(config.get("architecture"), str) else None
        ),
        "user": user if isinstance(user, str) else None,
        "env": _strings(cfg.get("Env")) or [],
        "exposed_ports": sorted(str(p) for p in ports) if isinstance(ports, dict) else [],
        "entrypoint": _strings(cfg.get("Entrypoint")),
        "cmd": _strings(cfg.get("Cmd")),
        "working_dir": workdir if isinstance(workdir, str) else None,
        "labels": (
            {str(k): v for k, v in labels.items() if isinstance(v, str)}
            if isinstance(labels, dict)
            else {}
        ),
    }
    if plan.repo_tags:
        details["repo_tags"] = plan.repo_tags
    return details
