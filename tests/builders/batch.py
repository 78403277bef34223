"""Many distinct small images for batch tests and the batch benchmark: the example's weak and
clean trees, each copy with a file of its own, as qcow2 disks or docker archives."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from imageaudit.example import CLEAN, WEAK, File, Tree, build_disk, tree_digest, write_tree
from tests.builders.container import docker_archive


def variant(index: int) -> Tree:
    """The weak tree for even ``index``, the clean one for odd, with a file that makes it unique."""
    base = WEAK if index % 2 == 0 else CLEAN
    return {**base, "etc/imageaudit-variant": File(f"variant {index}\n")}


def build_image(index: int, directory: Path, kind: str = "qcow2") -> Path:
    """Build (or reuse, when built from the same tree) image ``index`` as ``qcow2`` or
    ``docker-archive``."""
    tree = variant(index)
    suffix = "qcow2" if kind == "qcow2" else "tar"
    out = directory / f"image-{index:04d}.{suffix}"
    stamp = out.with_name(out.name + ".spec")
    digest = tree_digest(tree) + kind
    if out.exists() and stamp.exists() and stamp.read_text() == digest:
        return out
    directory.mkdir(parents=True, exist_ok=True)
    if kind == "qcow2":
        with tempfile.TemporaryDirectory(prefix="imageaudit-tree-") as tmp:
            build_disk(write_tree(tree, Path(tmp) / "root"), out, size_mb=32)
    else:
        docker_archive(tree, out)
    stamp.write_text(digest)
    return out


def build_images(directory: Path, count: int, kinds: tuple[str, ...] = ("qcow2",)) -> list[Path]:
    """``count`` distinct images, the kinds taken in turn."""
    return [build_image(i, directory, kinds[i % len(kinds)]) for i in range(count)]


def sha512_of(path: Path) -> str:
    return hashlib.sha512(path.read_bytes()).hexdigest()


def image_list(entries: list[tuple[str, str, Path]], *, identifier: str = "a1b2c3d4-list",
               vo: str | None = None, dn: str = "/DC=org/CN=Test Endorser",
               ca: str = "/DC=org/CN=Test CA") -> bytes:
    """A plain (unsigned) HEPiX image list by endorser ``dn`` under ``ca``; ``entries`` are
    (identifier, uri, file), each listed with the file's real SHA-512 and size."""
    from integrations.appdb.imagelist_write import Endorser, image_entry
    from integrations.appdb.imagelist_write import image_list as build_list

    images = [image_entry(ident, path, title=f"image {ident}", description="", fmt="qcow2",
                          vo=vo, uri=uri) for ident, uri, path in entries]
    endorser = Endorser(dn=dn, ca=ca,
                        creator="Test Endorser", email="endorser@example.org")
    doc = build_list(images, identifier=identifier, title="batch test list", description="",
                     endorser=endorser, source="https://example.org/",
                     uri="https://example.org/image.list")
    return json.dumps(doc, indent=1).encode()
