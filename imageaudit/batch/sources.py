"""What a batch audits: the inputs the user named, turned into one item per distinct image.

An input is an image list (a file or an ``http(s)://`` URL, plain or S/MIME signed), the
catalogue (``catalogue:URL`` or ``catalogue:URL/vo/NAME``), an OCI artefact
(``oci://REGISTRY/REPO:TAG`` or ``@sha256:…``), a directory of images, or one image path.
Images named by several inputs (two lists sharing an image) become one item naming every
input, so each image is audited once. An input that cannot be read (a list with a bad
signature, a catalogue that does not answer) is that input's error; the other inputs go on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from imageaudit.store import utcnow

CATALOGUE_PREFIX = "catalogue:"
OCI_PREFIX = "oci://"
# An image list is a document, never an image: bounded before anything parses it.
MAX_LIST_BYTES = 16 * 1024 * 1024
# A directory of images is listed, not walked: its own files only, and not too many.
MAX_DIRECTORY_ENTRIES = 100_000

_CATALOGUE = re.compile(r"^catalogue:(?P<url>https?://[^\s]+?)(?:/vo/(?P<vo>[A-Za-z0-9._-]{1,63}))?/?$")


class SourceError(Exception):
    """An input of a batch that cannot be turned into images; the message names it."""


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One image to audit.

    ``kind`` says how a worker reaches it: ``path`` (a local file or directory), ``http`` (a
    URL, fetched into the cache and checked against ``sha512``) or ``oci`` (an artefact in a
    registry). ``sha512`` is what the list or catalogue promises, when it promises one.
    """

    source: str
    kind: str
    locator: str
    inputs: tuple[str, ...]
    sha512: str | None = None
    size: int | None = None
    identifier: str | None = None
    vo: str | None = None
    title: str | None = None

    @property
    def dedup_key(self) -> str:
        if self.sha512:
            return f"sha512:{self.sha512}"
        if self.kind == "path":
            return f"path:{os.path.realpath(self.locator)}"
        return f"{self.kind}:{self.locator}"


@dataclass(frozen=True, slots=True)
class InputError:
    """An input that gave no images, and why."""

    input: str
    error: str


@dataclass(frozen=True, slots=True)
class Expanded:
    items: tuple[BatchItem, ...]
    errors: tuple[InputError, ...]
    notes: tuple[str, ...] = ()


def _looks_like_list(head: bytes) -> bool:
    text = head.lstrip()
    return text.startswith(b"{") or text[:64].lower().startswith(
        (b"mime-version:", b"content-type:")
    )


def _list_items(data: bytes, name: str, verify_with: Path | None) -> list[BatchItem]:
    from integrations.appdb.imagelist import ImageListError, parse_imagelist

    try:
        il = parse_imagelist(data, ca_dir=verify_with, now=utcnow())
    except ImageListError as exc:
        raise SourceError(f"{name}: image list refused: {exc}") from exc
    items = []
    for im in il.images:
        if not im.uri.startswith(("https://", "http://")):
            raise SourceError(f"{name}: image {im.identifier}: hv:uri is not an http(s) URL")
        items.append(BatchItem(
            source=im.uri, kind="http", locator=im.uri, inputs=(name,), sha512=im.sha512.lower(),
            size=im.size, identifier=im.identifier, vo=im.vo, title=im.title or None,
        ))
    return items


def _catalogue_items(spec: str) -> list[BatchItem]:
    from imageaudit.batch.catalogue import list_versions
    from imageaudit.batch.fetch import FetchError

    m = _CATALOGUE.match(spec)
    if m is None:
        raise SourceError(f"{spec}: expected catalogue:URL or catalogue:URL/vo/NAME")
    try:
        versions = list_versions(m.group("url"), m.group("vo"))
    except FetchError as exc:
        raise SourceError(f"{spec}: {exc}") from exc
    return [
        BatchItem(source=v.uri, kind="http", locator=v.uri, inputs=(spec,),
                  sha512=v.sha512.lower(), size=v.size, identifier=v.image_id, vo=v.vo,
                  title=v.title or None)
        for v in versions
    ]


def _is_image_file(path: Path) -> bool:
    from imageaudit.openers.detect import container_format, is_ova, is_vm_disk

    spec = str(path)
    try:
        return is_vm_disk(spec) or is_ova(spec) or container_format(spec) is not None
    except Exception:  # a file that no reader recognises is not an image of the directory
        return False


def _directory_items(spec: str, path: Path) -> tuple[list[BatchItem], list[str]]:
    """A directory that is itself an image (a root file system, an OCI layout) is one item;
    any other directory gives one item per image file directly inside it."""
    from imageaudit.openers import OpenError
    from imageaudit.openers.detect import detect_input

    try:
        if detect_input(spec) != "directory" or _root_like(path):
            return [BatchItem(source=spec, kind="path", locator=spec, inputs=(spec,))], []
    except OpenError:
        pass
    items: list[BatchItem] = []
    skipped = 0
    with os.scandir(path) as it:
        entries = sorted(
            (e for _, e in zip(range(MAX_DIRECTORY_ENTRIES + 1), it, strict=False)),
            key=lambda e: e.name,
        )
    if len(entries) > MAX_DIRECTORY_ENTRIES:
        raise SourceError(f"{spec}: more than {MAX_DIRECTORY_ENTRIES} entries")
    for entry in entries:
        if not entry.is_file() or entry.name.startswith("."):
            continue
        # A link in the directory (``latest.qcow2``) is read as the file it names: the image
        # readers open no symbolic link themselves.
        child = Path(os.path.realpath(entry.path))
        if _is_image_file(child):
            items.append(BatchItem(source=entry.path, kind="path", locator=str(child),
                                   inputs=(spec,)))
        else:
            skipped += 1
    notes = [f"{spec}: {skipped} file(s) that are not images skipped"] if skipped else []
    if not items:
        raise SourceError(f"{spec}: no VM disk, OVA or container archive in this directory")
    return items, notes


def _root_like(path: Path) -> bool:
    return (path / "etc").is_dir() and ((path / "usr").is_dir() or (path / "bin").is_dir())


def _expand_one(spec: str, verify_with: Path | None) -> tuple[list[BatchItem], list[str]]:
    from imageaudit.batch.fetch import FetchError, fetch_bytes

    if spec.startswith(CATALOGUE_PREFIX):
        return _catalogue_items(spec), []
    if spec.startswith(OCI_PREFIX):
        from imageaudit.batch.registry import RegistryError, parse_oci_ref

        try:
            ref = parse_oci_ref(spec)
        except RegistryError as exc:
            raise SourceError(str(exc)) from exc
        return [BatchItem(source=str(ref), kind="oci", locator=str(ref), inputs=(spec,))], []
    if spec.startswith(("https://", "http://")):
        try:
            data = fetch_bytes(spec, max_bytes=MAX_LIST_BYTES)
        except FetchError as exc:
            raise SourceError(f"{spec}: {exc}") from exc
        return _list_items(data, spec, verify_with), []
    if "://" in spec:
        raise SourceError(f"{spec}: unknown scheme (use a path, http(s)://, oci:// or "
                          "catalogue:URL)")
    path = Path(spec)
    if path.is_dir():
        return _directory_items(spec, path)
    if not path.is_file():
        raise SourceError(f"{spec}: no such file or directory")
    try:
        with path.open("rb") as fh:
            head = fh.read(512)
            if _looks_like_list(head):
                fh.seek(0)
                data = fh.read(MAX_LIST_BYTES + 1)
                if len(data) > MAX_LIST_BYTES:
                    raise SourceError(f"{spec}: image list larger than {MAX_LIST_BYTES} bytes")
                return _list_items(data, spec, verify_with), []
    except OSError as exc:
        raise SourceError(f"{spec}: cannot read: {exc.strerror}") from exc
    return [BatchItem(source=spec, kind="path", locator=spec, inputs=(spec,))], []


def merge(items: Iterable[BatchItem]) -> list[BatchItem]:
    """One item per distinct image, in first-seen order, naming every input that listed it."""
    merged: dict[str, BatchItem] = {}
    for item in items:
        key = item.dedup_key
        seen = merged.get(key)
        if seen is None:
            merged[key] = item
            continue
        inputs = seen.inputs + tuple(i for i in item.inputs if i not in seen.inputs)
        merged[key] = replace(seen, inputs=inputs, identifier=seen.identifier or item.identifier,
                              vo=seen.vo or item.vo, title=seen.title or item.title)
    return list(merged.values())


def expand(inputs: Sequence[str], *, verify_with: Path | None = None) -> Expanded:
    """Every image the inputs name, once each; an input that fails is an error, not a stop."""
    found: list[BatchItem] = []
    errors: list[InputError] = []
    notes: list[str] = []
    for spec in inputs:
        try:
            items, more = _expand_one(spec, verify_with)
        except SourceError as exc:
            errors.append(InputError(spec, str(exc)))
            continue
        found.extend(items)
        notes.extend(more)
    return Expanded(tuple(merge(found)), tuple(errors), tuple(notes))


__all__ = [
    "CATALOGUE_PREFIX",
    "OCI_PREFIX",
    "BatchItem",
    "Expanded",
    "InputError",
    "SourceError",
    "expand",
    "merge",
]
