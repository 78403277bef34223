"""Open container images (docker-archive, OCI layout, ``docker://``) as a :class:`ContainerFS`.

Layers are streamed header by header (:mod:`imageaudit.openers.layers`), never extracted.
Each layer is applied to an in-memory tree with overlay semantics:

- whiteouts of a layer (``.wh.NAME``, ``.wh..wh..opq``) are applied first, to lower layers
  only, wherever they sit in the tar; whiteout files never appear in the tree;
- member paths are literal: a member ``d/f`` under a ``d`` that a lower layer made a symlink
  replaces that symlink by a directory (as overlayfs shows it); nothing is ever written
  "through" a link;
- a hardlink takes the data of the entry named by its archive-root-relative target.

Specs: opencontainers/image-spec layer.md (changesets, whiteouts), POSIX pax/ustar.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import IO

from imageaudit.imagefs import FileStat, FileType, ImageFSError, OpenInfo, TreeImageFS
from imageaudit.openers.docker_daemon import save_image
from imageaudit.openers.layers import (
    Budget,
    ContainerImageError,
    ContainerLimits,
    DecompressedLayer,
    PlainLayer,
    sniff_compression,
)
from imageaudit.openers.oci import (
    Archive,
    DirArchive,
    ImagePlan,
    LayerRef,
    TarArchive,
    config_details,
    plan_docker_archive,
    plan_oci_layout,
    verify_blob,
)
from imageaudit.openers.tarheaders import TarMember, TarReader

__all__ = [
    "ContainerFS",
    "ContainerImageError",
    "ContainerLimits",
    "open_container",
]

_TYPES = {
    "file": FileType.REGULAR, "symlink": FileType.SYMLINK, "dir": FileType.DIRECTORY,
    "chardev": FileType.CHAR_DEVICE, "blockdev": FileType.BLOCK_DEVICE, "fifo": FileType.FIFO,
}  # fmt: skip
_OPAQUE = ".wh..wh..opq"


def _join(parts: tuple[str, ...] | list[str]) -> str:
    return "/" + "/".join(parts)


class ContainerFS(TreeImageFS):
    """The merged root filesystem of a container image, metadata in memory."""

    def __init__(self, info: OpenInfo, limits: ContainerLimits | None = None) -> None:
        super().__init__(info)
        self.limits = limits or ContainerLimits()
        self.budget = Budget(self.limits)
        self._data: dict[str, tuple[int, int]] = {}  # path -> (host fd, offset of the bytes)
        self._inode: dict[str, int] = {}
        self._groups: dict[int, set[str]] = {}
        self._next_inode = 0
        self._spool: IO[bytes] | None = None
        self._archive: Archive | None = None
        self._owned: list[IO[bytes]] = []

    # -- reading ------------------------------------------------------------------------

    def _read_canonical(self, path: str, limit: int, offset: int = 0) -> bytes:
        loc = self._data.get(path)
        st = self.nodes.get(path)
        if loc is None or st is None:
            raise ImageFSError(f"{path}: no data in the image")
        fd, start = loc
        want = max(0, min(limit, self.limits.max_read, st.size - offset))
        chunks: list[bytes] = []
        got = 0
        while got < want:
            chunk = os.pread(fd, min(want - got, 1 << 20), start + offset + got)
            if not chunk:
                raise ContainerImageError(path, "file data is cut short in its layer")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        if self._archive is not None:
            self._archive.close()
            self._archive = None
        for f in self._owned:
            f.close()
        self._owned = []

    # -- building -----------------------------------------------------------------------

    def load(self, plan: ImagePlan, archive: Archive, spool_dir: str | None = None) -> None:
        """Verify and apply every layer of ``plan`` in order (lowest first)."""
        self._archive = archive
        for layer in plan.layers:
            self._load_layer(layer, spool_dir)
        self._finish()

    def _spool_file(self, spool_dir: str | None) -> IO[bytes]:
        if self._spool is None:
            # Closed in close(): it lives as long as the tree that points into it.
            self._spool = tempfile.TemporaryFile(  # noqa: SIM115
                dir=spool_dir, prefix="imageaudit-layer-"
            )
            self._owned.append(self._spool)
        return self._spool

    def _load_layer(self, layer: LayerRef, spool_dir: str | None) -> None:
        limits, budget, blob, label = self.limits, self.budget, layer.blob, layer.label
        if blob.size > limits.max_layer_compressed:
            raise ContainerImageError(label, f"layer of {blob.size} bytes is over the cap")
        budget.compressed += blob.size
        if budget.compressed > limits.max_image_compressed:
            raise ContainerImageError(label, "image is over the compressed-size cap")
        verify_blob(blob, layer.digest, layer.size, label)
        kind = sniff_compression(os.pread(blob.fd, 6, blob.start))
        if kind == "unsupported":
            raise ContainerImageError(label, "layer compression is not gzip, zstd or none")
        blob.pos = 0
        if kind == "none":
            if layer.diff_id is not None and layer.diff_id != layer.digest:
                verify_blob(blob, layer.diff_id, None, label)  # uncompressed: diff_id = digest
            plain = PlainLayer(blob, label, budget)
            members = self._scan(TarReader(plain, label, budget), label)
            self._apply(members, blob.fd, blob.start, label)
            return
        spool = self._spool_file(spool_dir)
        alg = layer.diff_id.split(":", 1)[0] if layer.diff_id else None
        packed = DecompressedLayer(blob, kind, spool, label, budget, alg)
        members = self._scan(TarReader(packed, label, budget), label)
        packed.drain()
        if packed.hasher is not None and layer.diff_id is not None:
            got = f"{alg}:{packed.hasher.hexdigest()}"
            if got != layer.diff_id:
                raise ContainerImageError(
                    label, f"uncompressed digest {got} does not match diff_id {layer.diff_id}"
                )
        spool.flush()
        self._apply(members, spool.fileno(), packed.spool_base, label)

    def _scan(self, reader: TarReader, label: str) -> list[tuple[tuple[str, ...], TarMember]]:
        out = []
        for m in reader.members():
            if m.kind == "skip":
                continue
            parts = self._clean(m.name, label)
            if parts is not None:
                out.append((parts, m))
        return out

    def _clean(self, name: str, label: str, quiet: bool = False) -> tuple[str, ...] | None:
        """Normalised components of a member name; ``None`` (and a note) if it escapes."""
        if name.startswith("/") and not quiet:
            self.budget.note(f"{label}: absolute member name {name!r} taken as relative")
        parts: list[str] = []
        for part in name.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    if not quiet:
                        self.budget.note(
                            f"{label}: member {name!r} climbs out of the root; skipped"
                        )
                    return None
                parts.pop()
                continue
            parts.append(part)
        if len(parts) > self.limits.max_path_depth:
            raise ContainerImageError(
                label, f"member path deeper than {self.limits.max_path_depth}"
            )
        return tuple(parts)

    def _apply(
        self,
        members: list[tuple[tuple[str, ...], TarMember]],
        fd: int,
        base: int,
        label: str,
    ) -> None:
        adds = []
        for parts, m in members:
            last = parts[-1] if parts else ""
            if not last.startswith(".wh."):
                adds.append((parts, m))
                continue
            parent = _join(parts[:-1])
            if last == _OPAQUE:
                parent_st = self.nodes.get(parent)
                if parent_st is not None and parent_st.is_dir:
                    for child in list(self.children.get(parent, ())):
                        self._remove(posixpath.join(parent, child))
            elif last.startswith(".wh..wh."):
                self.budget.note(f"{label}: {m.name!r}: unknown whiteout metadata ignored")
            elif last[4:] in ("", ".", ".."):
                self.budget.note(f"{label}: {m.name!r}: meaningless whiteout ignored")
            else:
                target = posixpath.join(parent, last[4:])
                if target in self.nodes:
                    self._remove(target)
        for parts, m in adds:
            self._add(parts, m, fd, base, label)

    def _insert(self, path: str, st: FileStat, inode: int | None = None) -> None:
        self.nodes[path] = st
        parent, name = posixpath.split(path)
        self.children[parent].add(name)
        if st.is_dir:
            self.children.setdefault(path, set())
            return
        if inode is None:
            inode = self._next_inode
            self._next_inode += 1
        self._inode[path] = inode
        self._groups.setdefault(inode, set()).add(path)

    def _remove(self, top: str) -> None:
        """Drop ``top`` and everything under it (iteratively)."""
        stack = [top]
        while stack:
            path = stack.pop()
            self.nodes.pop(path, None)
            self._data.pop(path, None)
            inode = self._inode.pop(path, None)
            if inode is not None:
                group = self._groups[inode]
                group.discard(path)
                if not group:
                    del self._groups[inode]
            for child in self.children.pop(path, ()):
                stack.append(posixpath.join(path, child))
        parent, name = posixpath.split(top)
        self.children.get(parent, set()).discard(name)

    def _ensure_parents(self, parts: tuple[str, ...], label: str) -> None:
        for i in range(1, len(parts)):
            prefix = _join(parts[:i])
            st = self.nodes.get(prefix)
            if st is not None and st.is_dir:
                continue
            if st is not None:
                self.budget.note(
                    f"{label}: {prefix} ({st.type.value}) replaced by a directory "
                    f"to hold {_join(parts)}"
                )
                self._remove(prefix)
            self._insert(prefix, FileStat(prefix, FileType.DIRECTORY, 0o755, 0, 0, 0))

    def _add(self, parts: tuple[str, ...], m: TarMember, fd: int, base: int, label: str) -> None:
        path = _join(parts)
        if not parts:
            if m.kind == "dir":
                self.nodes["/"] = FileStat(
                    "/", FileType.DIRECTORY, m.mode, m.uid, m.gid, 0, m.mtime
                )
            else:
                self.budget.note(f"{label}: non-directory member for the root ignored")
            return
        self._ensure_parents(parts, label)
        if m.kind == "hardlink":
            self._add_hardlink(path, m, label)
            return
        ftype = _TYPES[m.kind]
        size = m.size if ftype is FileType.REGULAR else 0
        target = None
        if ftype is FileType.SYMLINK:
            target = m.linkname
            size = len(target.encode("utf-8", "surrogateescape"))
        st = FileStat(path, ftype, m.mode, m.uid, m.gid, size, m.mtime, target)
        existing = self.nodes.get(path)
        if existing is not None and existing.is_dir and st.is_dir:
            self.nodes[path] = st  # a directory again: new attributes, lower children stay
            return
        if existing is not None:
            self._remove(path)
        self._insert(path, st)
        if ftype is FileType.REGULAR:
            self._data[path] = (fd, base + m.offset)

    def _add_hardlink(self, path: str, m: TarMember, label: str) -> None:
        tparts = self._clean(m.linkname, label, quiet=True)  # noted below if unusable
        target = _join(tparts) if tparts is not None else None
        tst = self.nodes.get(target) if target is not None else None
        if target is None or tst is None or tst.is_dir or target == path:
            self.budget.note(f"{label}: hardlink {m.name!r} -> {m.linkname!r} has no usable target")
            return
        data = self._data.get(target)
        inode = self._inode.get(target)
        if path in self.nodes:
            self._remove(path)
        self._insert(path, replace(tst, path=path), inode)
        if data is not None:
            self._data[path] = data

    def _finish(self) -> None:
        for group in self._groups.values():
            if len(group) > 1:
                for path in group:
                    self.nodes[path] = replace(self.nodes[path], nlink=len(group))
        for path, names in self.children.items():
            subdirs = sum(1 for n in names if self.nodes[posixpath.join(path, n)].is_dir)
            self.nodes[path] = replace(self.nodes[path], nlink=2 + subdirs)
        self.info.notes.extend(self.budget.notes)
        if self.budget.dropped_notes:
            self.info.notes.append(f"{self.budget.dropped_notes} more notes not shown")


FORMATS = ("docker-archive", "oci-layout", "docker-daemon")


def open_container(
    path_or_ref: str,
    limits: ContainerLimits | None = None,
    spool_dir: str | None = None,
    fmt: str | None = None,
) -> ContainerFS:
    """Open a docker-archive (tar or dir), an OCI layout (dir or tar) or ``docker://NAME``.

    ``fmt`` (one of :data:`FORMATS`) is how to read it; by default
    :func:`imageaudit.openers.detect.container_format` decides.
    ``spool_dir`` is where private, unlinked temporary files go (decompressed layers, the
    output of ``docker save``); the system temporary directory by default.
    """
    limits = limits or ContainerLimits()
    if fmt is None:
        from imageaudit.openers.detect import container_format

        fmt = container_format(path_or_ref)
    if fmt not in FORMATS:
        raise ContainerImageError(
            path_or_ref, "not a docker-archive, an OCI image layout or a docker:// reference"
        )
    budget = Budget(limits)
    saved: IO[bytes] | None = None
    archive: Archive
    try:
        if fmt == "docker-daemon":
            saved = save_image(path_or_ref, limits, spool_dir)
            archive = TarArchive(saved.fileno(), path_or_ref, budget, own_fd=False)
        elif Path(path_or_ref).is_dir():
            archive = DirArchive(path_or_ref, budget)
        else:
            archive = TarArchive(
                os.open(path_or_ref, os.O_RDONLY | os.O_CLOEXEC), path_or_ref, budget
            )
    except BaseException:
        if saved is not None:
            saved.close()
        raise
    fs: ContainerFS | None = None
    try:
        plan = plan_oci_layout(archive) if fmt == "oci-layout" else plan_docker_archive(archive)
        info = OpenInfo(
            kind="container",
            format=fmt,
            source=path_or_ref,
            details=config_details(plan),
        )
        fs = ContainerFS(info, limits)
        fs.budget = budget
        if saved is not None:
            fs._owned.append(saved)
        fs.load(plan, archive, spool_dir)
    except BaseException:
        if fs is not None:
            fs.close()
        else:
            archive.close()
            if saved is not None:
                saved.close()
        raise
    return fs
