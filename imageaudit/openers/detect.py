"""Decide once what kind of image an input is, or refuse an input that reads as two.

Every input is sniffed here and nowhere else; :func:`imageaudit.openers.open_image` then opens
it with the one opener for that kind. The user can name the kind (``--input-kind``), which
skips the sniffing; ``auto`` (the default) decides by content, never by file name:

- ``docker://REF`` is a reference to an image in the Docker daemon (``docker``).
- A directory holding an image-layout marker at its top (``oci-layout``, ``index.json`` or
  ``manifest.json``) is an image layout; a directory without one is a root filesystem
  (``directory``). A directory holding a marker *and* a top-level name of a Linux root
  (:data:`ROOT_NAMES`, or any name starting with ``lib``) reads as both: refused.
- A file is read three ways, headers only: as a container archive (a tar whose top level holds
  ``manifest.json`` or ``index.json``), as an OVA (a tar holding a top-level ``.ovf``) and as
  a disk image (the format check's header sniff: a qcow2/vmdk/vdi/vhdx/vhd header, or a raw
  image with a partition table, ISO volume or filesystem signature). One view: that kind.
  Two or more (a polyglot): refused. None: a disk image, so the format check explains why not.
- A container archive (tar or directory) holding both ``manifest.json`` and ``index.json``
  (``docker save`` since Docker 25 writes both) is read both ways; the two must name the same
  image (same config digest and, layer by layer, the same ``diff_id`` or the same blob), and
  the docker-archive view is used. Otherwise it is refused.

A refusal is one line naming the input, both readings and the ``--input-kind`` values that
choose between them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from imageaudit.imagefs import ImageFSError
from imageaudit.openers.docker_daemon import PREFIX as DOCKER_PREFIX
from imageaudit.openers.docker_daemon import image_name
from imageaudit.openers.docker_daemon import shown as _shown
from imageaudit.openers.formatcheck import check_image
from imageaudit.openers.layers import Budget, ContainerImageError, ContainerLimits
from imageaudit.openers.oci import (
    Archive,
    DirArchive,
    ImagePlan,
    TarArchive,
    archive_names,
    plan_docker_archive,
    plan_oci_layout,
)
from imageaudit.openers.ova import ova_members

AUTO = "auto"
INPUT_KINDS = (AUTO, "vm", "ova", "docker-archive", "oci", "directory", "docker")
LAYOUT_MARKERS = ("oci-layout", "index.json", "manifest.json")
# Top-level names of a Linux root (FHS 3.0, plus what systemd images add); none of them is
# ever written by docker save, skopeo, buildah or podman into an image layout.
ROOT_NAMES = frozenset({
    "bin", "boot", "dev", "etc", "home", "media", "mnt", "opt", "proc", "root", "run", "sbin",
    "srv", "sys", "tmp", "usr", "var",
})  # fmt: skip

# The OpenInfo.format of a container opened each way.
CONTAINER_FORMATS = {"docker-archive": "docker-archive", "oci": "oci-layout"}
_READINGS = {
    "vm": "a VM disk image",
    "ova": "an OVA",
    "docker-archive": "a docker-archive (manifest.json)",
    "oci": "an OCI image layout (index.json)",
    "directory": "a root filesystem",
}


class OpenError(ImageFSError):
    """The image cannot be opened; the message names it and says why."""


class AmbiguousInput(OpenError):
    """The input reads as more than one kind of image; ``--input-kind`` must choose."""

    def __init__(self, spec: str, detail: str, kinds: Iterable[str]) -> None:
        choose = " or ".join(f"--input-kind {k}" for k in kinds)
        super().__init__(f"{_shown(spec)}: ambiguous input: {detail}; choose with {choose}")


def _root_names(names: Iterable[str]) -> list[str]:
    return sorted(n for n in names if n in ROOT_NAMES or n.startswith("lib"))


def _names(directory: Path) -> set[str]:
    try:
        return {child.name for child in directory.iterdir()}
    except OSError as exc:
        raise OpenError(f"{_shown(str(directory))}: cannot list: {exc.strerror}") from exc


def _detect_directory(spec: str, path: Path) -> str:
    names = _names(path)
    markers = [m for m in LAYOUT_MARKERS if m in names]
    if not markers:
        return "directory"
    roots = _root_names(names)
    if roots:
        kinds = ["docker-archive"] if "manifest.json" in markers else []
        kinds += ["oci"] if set(markers) - {"manifest.json"} else []
        raise AmbiguousInput(
            spec,
            f"it holds image-layout markers ({', '.join(markers)}) and a root filesystem "
            f"({', '.join(roots[:4])}{', ...' if len(roots) > 4 else ''})",
            [*kinds, "directory"],
        )
    return container_kind(spec, names)


def container_kind(spec: str, names: set[str] | None = None) -> str:
    """``docker-archive`` or ``oci`` for a container archive (tar or directory).

    With both ``manifest.json`` and ``index.json`` present the two readings are compared
    (:func:`_same_image`); they must agree, and then the docker-archive reading is used.
    """
    if names is None:
        names = archive_names(spec, Budget(ContainerLimits(max_members=100_000))) or set()
    docker, oci = "manifest.json" in names, "index.json" in names or "oci-layout" in names
    if docker and oci:
        _check_views_agree(spec)
        return "docker-archive"
    if docker:
        return "docker-archive"
    if oci:
        return "oci"
    raise OpenError(
        f"{_shown(spec)}: not a docker-archive or an OCI image layout "
        "(no manifest.json or index.json at its top)"
    )


def container_format(spec: str) -> str | None:
    """How the container opener reads ``spec`` (``docker-daemon``, ``docker-archive``,
    ``oci-layout``), or ``None`` for what is no container image; :func:`container_kind`
    decides between the two archive readings."""
    if spec.startswith(DOCKER_PREFIX):
        return "docker-daemon"
    names = archive_names(spec, Budget(ContainerLimits(max_members=100_000)))
    if not names or not (set(LAYOUT_MARKERS) & names):
        return None
    return CONTAINER_FORMATS[container_kind(spec, names)]


def _check_views_agree(spec: str) -> None:
    budget = Budget(ContainerLimits())
    archive: Archive
    if Path(spec).is_dir():
        archive = DirArchive(spec, budget)
    else:
        archive = TarArchive(os.open(spec, os.O_RDONLY | os.O_CLOEXEC), spec, budget)
    try:
        plans: dict[str, ImagePlan] = {}
        for kind, plan in (("docker-archive", plan_docker_archive), ("oci", plan_oci_layout)):
            try:
                plans[kind] = plan(archive)
            except ContainerImageError as exc:
                raise AmbiguousInput(
                    spec,
                    f"it holds both manifest.json and index.json, and reading it as "
                    f"{_READINGS[kind]} fails ({_shown(str(exc))})",
                    ("docker-archive", "oci"),
                ) from exc
        if not _same_image(plans["docker-archive"], plans["oci"]):
            a, b = plans["docker-archive"].config_digest, plans["oci"].config_digest
            raise AmbiguousInput(
                spec,
                f"its manifest.json names image {a} and its index.json image {b}"
                if a != b
                else "its manifest.json and index.json name the same config but different layers",
                ("docker-archive", "oci"),
            )
    finally:
        archive.close()


def _same_image(a: ImagePlan, b: ImagePlan) -> bool:
    """Same config bytes, and each layer bound to the same content both ways."""
    if a.config_digest != b.config_digest or len(a.layers) != len(b.layers):
        return False
    for x, y in zip(a.layers, b.layers, strict=True):
        # Layers are verified against the config's diff_ids when read, so one config with
        # diff_ids pins the content; without them only the very same blob is the same layer.
        if x.diff_id is not None and x.diff_id == y.diff_id:
            continue
        here, there = x.blob, y.blob
        same_place = (here.fd, here.start, here.size) == (there.fd, there.start, there.size)
        if x.label != y.label and not same_place:
            return False
    return True


def is_vm_disk(spec: str) -> bool:
    """A disk image that passes the header check (no qemu run); a raw file only when it
    carries a partition table or an ISO 9660 volume."""
    try:
        info = check_image(Path(spec), use_qemu=False)
    except ImageFSError:
        return False
    return info.format != "raw" or bool(info.details.get("content", ()))


def is_ova(spec: str) -> bool:
    """A tar whose members include a top-level ``.ovf``."""
    try:
        return any(n.endswith(".ovf") and "/" not in n for n in ova_members(spec))
    except ImageFSError:
        return False


def _detect_file(spec: str) -> str:
    names = archive_names(spec, Budget(ContainerLimits(max_members=100_000))) or set()
    container = [k for k, m in (("docker-archive", "manifest.json"), ("oci", "index.json"))
                 if m in names]  # fmt: skip
    vm = [k for k, seen in (("ova", is_ova(spec)), ("vm", is_vm_disk(spec))) if seen]
    if container and vm:
        readings = " and as ".join(
            [f"a container archive ({', '.join(k for k in LAYOUT_MARKERS if k in names)})"]
            + [_READINGS[k] for k in vm]
        )
        raise AmbiguousInput(spec, f"it reads as {readings}", [*container, *vm])
    if container:
        return container_kind(spec, names)
    if len(vm) > 1:
        raise AmbiguousInput(spec, "it reads as an OVA and as a VM disk image", vm)
    return vm[0] if vm else "vm"  # nothing recognised: the format check says what it is not


def detect_input(spec: str, kind: str = AUTO) -> str:
    """The kind of image ``spec`` is (one of :data:`INPUT_KINDS` but ``auto``).

    ``kind`` other than ``auto`` is the user's choice and is taken as is (after checking that
    it can apply: a ``docker://`` reference for ``docker``); ``auto`` sniffs as the module
    docstring says and raises :class:`AmbiguousInput` for an input that reads as two kinds.
    """
    if kind not in INPUT_KINDS:
        raise OpenError(f"unknown input kind {kind!r} (kinds: {', '.join(INPUT_KINDS)})")
    if is_daemon_input(spec, kind):
        if not spec.startswith(DOCKER_PREFIX):
            raise OpenError(f"{_shown(spec)}: --input-kind docker takes docker://REFERENCE")
        image_name(spec)  # validated before anything talks to a daemon
        return "docker"
    path = Path(spec)
    if not path.exists():
        raise OpenError(f"{_shown(spec)}: no such file or directory")
    if kind != AUTO:
        return kind
    if path.is_dir():
        return _detect_directory(spec, path)
    if not path.is_file():
        raise OpenError(f"{_shown(spec)}: not a regular file or directory")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise OpenError(f"{_shown(spec)}: cannot read: {exc.strerror}") from exc
    return _detect_file(spec)


def is_daemon_input(spec: str, kind: str = AUTO) -> bool:
    """Whether ``spec`` names an image in the Docker daemon (no file to hash)."""
    return kind == "docker" or (kind == AUTO and spec.startswith(DOCKER_PREFIX))


__all__ = [
    "AUTO",
    "INPUT_KINDS",
    "AmbiguousInput",
    "OpenError",
    "container_format",
    "container_kind",
    "detect_input",
    "is_daemon_input",
    "is_ova",
    "is_vm_disk",
]
