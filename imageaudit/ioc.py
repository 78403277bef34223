"""Indicators of compromise: the file hashes, names and paths a security team hands over after an
incident, read once for every consumer (a catalogue campaign, ``scan --ioc``).

What the file *is* is decided by its content, never its name:

- a MISP event (``{"Event": {...}}``), a list of events, or what MISP's REST search returns
  (``{"response": [{"Event": ...}]}`` from events, ``{"response": {"Attribute": [...]}}`` from
  attributes). Attributes are read from ``Event.Attribute`` and ``Event.Object[].Attribute``; the
  types used are ``sha256``, ``sha1``, ``md5``, ``filename``, the composites ``filename|<hash>``
  and ``malware-sample`` (``filename|md5``), and a ``file`` object's ``fullpath``. Proposals
  (``ShadowAttribute``) are not indicators, revoked attributes and objects (``deleted``) are left
  out, and with ``only_to_ids`` so are attributes not flagged for detection (``to_ids``).
- a MISP feed: a directory with ``manifest.json`` (event UUID -> metadata) and one
  ``<uuid>.json`` per event, as MISP instances publish them (or the path of its manifest). Only
  UUID keys name files, so a manifest cannot reach outside its directory; an entry's
  ``integrity:sha256``, when present, must be the event file's SHA-256. The feed's optional
  ``hashes.csv`` is not read: its lines are MD5 digests *of attribute values* (MISP's fast
  correlation lookup), not hashes of files.
- a CSV: a header naming ``type`` and ``value`` (MISP types; MISP's own CSV export has these and
  more, ``to_ids`` among them), or columns among ``sha256, sha1, md5, filename, name, path``; or
  no header and one value per row, a hash by its length in hex (32, 40, 64) and otherwise a file
  name. Lines starting with ``#`` are comments.

Hostile input is bounded (file and total bytes, events, indicators, provenance per value, text
lengths); a value that is not understood is skipped with its reason, and only a file that is none
of the formats, or breaks a bound that would make the result silently partial, is an
:class:`IocError`.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import posixpath
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

MiB = 1 << 20

Kind = Literal["sha256", "sha1", "md5", "name", "path"]

HASH_LENGTHS: Mapping[str, int] = MappingProxyType({"md5": 32, "sha1": 40, "sha256": 64})
_KIND_OF_LENGTH = {length: kind for kind, length in HASH_LENGTHS.items()}
_HEX = re.compile(r"[0-9a-f]+")
# What a file name in a list without a header may hold: no spaces, quotes or markup, so that a
# text file that is not a list of indicators (prose, YAML, HTML) is not read as file names.
_PLAIN_NAME = re.compile(r"[^\s\x00-\x1f\x7f\"'`<>{}|;=,]+")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)

MAX_SKIPPED_EXAMPLES = 100
MAX_SOURCES_PER_VALUE = 10
MAX_IGNORED_KEYS = 100
NAME_MAX = 255
PATH_MAX = 4096
_TEXT_MAX = 256  # the MISP core format's bound on an event's info

# Header words of the column CSV, and the kind each column gives (a file column is a name, or a
# path when its value holds a slash).
_COLUMNS: Mapping[str, str] = MappingProxyType({
    "sha256": "sha256", "sha1": "sha1", "md5": "md5",
    "filename": "file", "name": "file", "path": "file",
})


@dataclass(frozen=True, slots=True)
class Limits:
    """How much an indicator source may make this reader read and hold."""

    max_file_bytes: int = 64 * MiB
    max_total_bytes: int = 1024 * MiB
    max_events: int = 10_000
    max_indicators: int = 1_000_000


LIMITS = Limits()


class IocError(Exception):
    """``path`` is not a source of indicators this reader knows, or breaks one of its bounds."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Match:
    """One indicator a file matched: its kind, its value as the source wrote it, and where the
    source says it came from (MISP events, or ``file:line`` of a CSV).

    ``paired_with`` is set on a name or path the source gave only together with hashes (MISP's
    ``filename|sha256``…): those hashes, as ``algorithm:hex``. Such a name alone is weak evidence
    (``sshd|<hash>`` names every sshd); a file with one of the hashes matched them as well.
    """

    kind: Kind
    value: str
    provenance: tuple[str, ...]
    paired_with: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Indicators:
    """Every indicator read from one source.

    Hashes are lowercase hex of their algorithm's length. ``names`` are base names and ``paths``
    values holding a slash, both as written; a path that does not start with ``/`` (``~/x``,
    ``etc/cron.d/x``) matches at the end of a path. ``provenance`` maps each value (hashes
    lowercased) to where it came from, and ``paired`` each name or path the source gave only in a
    composite (``filename|sha256``) to the hashes it came with. ``skipped`` holds up to 100
    examples of what was not understood, ``skipped_total`` how many there were; ``ignored``
    counts what was understood and left out on purpose (other attribute types, revoked
    attributes, ``to_ids`` false).
    """

    source: str
    sha256: frozenset[str] = frozenset()
    sha1: frozenset[str] = frozenset()
    md5: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    paths: frozenset[str] = frozenset()
    provenance: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    paired: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    skipped: tuple[str, ...] = ()
    skipped_total: int = 0
    ignored: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    _absolute: Mapping[str, str] = field(init=False, repr=False, compare=False)
    _relative: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        absolute: dict[str, str] = {}
        relative: dict[str, str] = {}
        for written in sorted(self.paths):
            key = _normal_path(written)
            if key.startswith("/"):
                absolute.setdefault(key, written)
            elif key:
                relative.setdefault(key, written)
        object.__setattr__(self, "_absolute", MappingProxyType(absolute))
        object.__setattr__(self, "_relative", MappingProxyType(relative))

    @property
    def count(self) -> int:
        return len(self.sha256) + len(self.sha1) + len(self.md5) + len(self.names) + len(self.paths)

    def matches(self, *, sha256: str | None = None, sha1: str | None = None,
                md5: str | None = None, path: str | None = None) -> list[Match]:
        """The indicators a file with these hashes at this path matches: hashes first, then the
        path, then its base name."""
        found: list[Match] = []
        hashes: tuple[tuple[Kind, str | None, frozenset[str]], ...] = (
            ("sha256", sha256, self.sha256), ("sha1", sha1, self.sha1), ("md5", md5, self.md5))
        for kind, value, known in hashes:
            if value and value.lower() in known:
                found.append(self._match(kind, value.lower()))
        if path:
            normal = _normal_path(path)
            if normal in self._absolute:
                found.append(self._match("path", self._absolute[normal]))
            parts = normal.strip("/").split("/")
            for start in range(len(parts)):
                written = self._relative.get("/".join(parts[start:]))
                if written is not None:
                    found.append(self._match("path", written))
            name = posixpath.basename(normal)
            if name in self.names:
                found.append(self._match("name", name))
        return found

    def _match(self, kind: Kind, value: str) -> Match:
        return Match(kind, value, self.provenance.get(value, ()), self.paired.get(value, ()))


def load_indicators(path: Path, *, only_to_ids: bool = False,
                    limits: Limits = LIMITS) -> Indicators:
    """Read the indicators of ``path``: a MISP event JSON, a MISP feed directory or a CSV."""
    builder = _Builder(str(path), limits, only_to_ids)
    if path.is_dir():
        _read_feed(path, builder)
        return builder.build()
    try:
        data = _read_bounded(path, limits.max_file_bytes, follow=True, where=path)
    except FileNotFoundError:
        raise IocError(path, "no such file or directory") from None
    text = _text(data, path)
    if text.lstrip()[:1] in ("{", "["):
        document = _parse_json(text, path)
        if _is_manifest(document):
            _read_feed(path.parent, builder)
            return builder.build()
        builder.add_bytes(len(data), path)
        _read_misp(document, path, builder)
    else:
        builder.add_bytes(len(data), path)
        _read_csv(text, path, builder)
    return builder.build()


# -- building ---------------------------------------------------------------------------------

class _Builder:
    """Collects indicators, their provenance and what was skipped, within the limits."""

    def __init__(self, source: str, limits: Limits, only_to_ids: bool) -> None:
        self.source = source
        self.limits = limits
        self.only_to_ids = only_to_ids
        self.sets: dict[str, set[str]] = {k: set() for k in ("sha256", "sha1", "md5", "name",
                                                             "path")}
        self.sources: dict[str, dict[str, None]] = {}
        self.more_sources: dict[str, int] = {}
        self.alone: set[str] = set()
        self.pairs: dict[str, dict[str, None]] = {}
        self.skipped: list[str] = []
        self.skipped_total = 0
        self.ignored: dict[str, int] = {}
        self.total_bytes = 0
        self.events = 0
        self.indicators = 0

    def add_bytes(self, n: int, where: Path) -> None:
        self.total_bytes += n
        if self.total_bytes > self.limits.max_total_bytes:
            raise IocError(where, f"more than {self.limits.max_total_bytes} bytes of indicators "
                                  "in all")

    def add_event(self, where: Path | str) -> None:
        self.events += 1
        if self.events > self.limits.max_events:
            raise IocError(where, f"more than {self.limits.max_events} events")

    def skip(self, where: str, reason: str) -> str:
        message = f"{where}: {reason}"
        self.skipped_total += 1
        if len(self.skipped) < MAX_SKIPPED_EXAMPLES:
            self.skipped.append(message)
        return message

    def ignore(self, reason: str) -> None:
        if reason not in self.ignored and len(self.ignored) >= MAX_IGNORED_KEYS:
            reason = "other types"
        self.ignored[reason] = self.ignored.get(reason, 0) + 1

    def add(self, kind: str, value: str, origin: str) -> None:
        known = self.sets[kind]
        if value not in known:
            self.indicators += 1
            if self.indicators > self.limits.max_indicators:
                raise IocError(self.source, f"more than {self.limits.max_indicators} indicators")
            known.add(value)
        sources = self.sources.setdefault(value, {})
        if origin in sources:
            return
        if len(sources) < MAX_SOURCES_PER_VALUE:
            sources[origin] = None
        else:
            self.more_sources[value] = self.more_sources.get(value, 0) + 1

    def add_hash(self, kind: str, raw: str, where: str, origin: str) -> None:
        value = raw.strip().lower()
        if len(value) != HASH_LENGTHS[kind] or not _HEX.fullmatch(value):
            self.skip(where, f"{kind} {_show(raw)} is not {HASH_LENGTHS[kind]} hex digits")
            return
        self.add(kind, value, origin)

    def add_file(self, raw: str, where: str, origin: str, paired: str | None = None) -> None:
        """A file name, or a path when it holds a slash; as written, apart from outer spaces.
        ``paired`` is the ``algorithm:hex`` a composite gave it with."""
        value = raw.strip()
        kind = "path" if "/" in value else "name"
        size = len(value.encode("utf-8", "surrogatepass"))
        if not value:
            self.skip(where, "empty file name")
            return
        if "\x00" in value:
            self.skip(where, f"file name {_show(value)} holds a NUL byte")
            return
        if size > (PATH_MAX if kind == "path" else NAME_MAX):
            self.skip(where, f"{kind} {_show(value)} is longer than "
                             f"{PATH_MAX if kind == 'path' else NAME_MAX} bytes")
            return
        if _normal_path(value).strip("/") in ("", ".."):
            self.skip(where, f"{kind} {_show(value)} names no file")
            return
        self.add(kind, value, origin)
        if paired is None:
            self.alone.add(value)
        else:
            pairs = self.pairs.setdefault(value, {})
            if len(pairs) < MAX_SOURCES_PER_VALUE:
                pairs[_printable(paired, 200)] = None

    def build(self) -> Indicators:
        provenance: dict[str, tuple[str, ...]] = {}
        for value, sources in self.sources.items():
            listed = tuple(sources)
            more = self.more_sources.get(value, 0)
            provenance[value] = (*listed, f"and {more} more") if more else listed
        return Indicators(
            source=self.source,
            sha256=frozenset(self.sets["sha256"]),
            sha1=frozenset(self.sets["sha1"]),
            md5=frozenset(self.sets["md5"]),
            names=frozenset(self.sets["name"]),
            paths=frozenset(self.sets["path"]),
            provenance=MappingProxyType(provenance),
            paired=MappingProxyType({value: tuple(pairs) for value, pairs in self.pairs.items()
                                     if value not in self.alone}),
            skipped=tuple(self.skipped),
            skipped_total=self.skipped_total,
            ignored=MappingProxyType(dict(self.ignored)),
        )


def _attribute(attr: Mapping[str, Any], where: str, origin: str, builder: _Builder,
               object_name: str | None = None) -> None:
    """One MISP attribute (from an event, an object, an attribute search or a CSV row)."""
    written = attr.get("type")
    value = attr.get("value")
    if not isinstance(written, str) or not written.strip() or not isinstance(value, str):
        builder.skip(where, "attribute without a type and a string value")
        return
    kind = written.strip().lower()
    if _flag(attr.get("deleted")):
        builder.ignore("deleted")
        return
    if builder.only_to_ids and not _flag(attr.get("to_ids")):
        builder.ignore("to_ids false")
        return
    if kind in HASH_LENGTHS:
        builder.add_hash(kind, value, where, origin)
    elif kind == "filename":
        builder.add_file(value, where, origin)
    elif kind.startswith("filename|") or kind == "malware-sample":
        hash_kind = "md5" if kind == "malware-sample" else kind.partition("|")[2]
        name, bar, digest = value.rpartition("|")
        if not bar:
            builder.skip(where, f"{_show(kind)} value {_show(value)} has no '|'")
            return
        builder.add_file(name, where, origin, paired=f"{hash_kind}:{digest.strip().lower()}")
        if hash_kind in HASH_LENGTHS:
            builder.add_hash(hash_kind, digest, where, origin)
        else:
            builder.ignore(f"the {_printable(hash_kind, 64)} of {_printable(kind, 64)}")
    elif kind == "text" and object_name == "file" and attr.get("object_relation") == "fullpath":
        builder.add_file(value, where, origin)
    else:
        builder.ignore(f"type {_printable(kind, 64)}")


def _flag(value: object) -> bool:
    """A MISP boolean: JSON true/false, and the "1"/"0" (or 1/0) older exports and CSV use."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return False


# -- MISP JSON ----------------------------------------------------------------------------------

def _is_manifest(document: object) -> bool:
    """A feed's manifest.json: an object of event UUIDs, each with the event's info."""
    return (isinstance(document, dict) and bool(document)
            and "Event" not in document and "response" not in document
            and all(isinstance(k, str) and _UUID.fullmatch(k) for k in document)
            and all(isinstance(v, dict) and "info" in v for v in document.values()))


def _events(document: object, path: Path) -> Iterator[object]:
    """The events of a MISP document, each still wrapped as ``{"Event": ...}`` or bare."""
    if isinstance(document, list):
        yield from document
    elif isinstance(document, dict) and "Event" in document:
        yield document
    elif isinstance(document, dict) and isinstance(document.get("response"), list):
        yield from document["response"]
    elif isinstance(document, dict) and _is_bare_event(document):
        yield document
    else:
        raise IocError(path, "JSON, but not a MISP event, list of events, search response or "
                             "feed manifest")


def _is_bare_event(document: Mapping[str, Any]) -> bool:
    return ("uuid" in document or "info" in document) and (
        isinstance(document.get("Attribute"), list) or isinstance(document.get("Object"), list))


def _read_misp(document: object, path: Path, builder: _Builder) -> None:
    if isinstance(document, dict) and isinstance(document.get("response"), dict):
        attributes = document["response"].get("Attribute")
        if not isinstance(attributes, list):
            raise IocError(path, "a MISP search response without events or attributes")
        _read_attribute_search(attributes, path, builder)
        return
    entries = 0
    events = 0
    for index, wrapped in enumerate(_events(document, path)):
        entries += 1
        builder.add_event(path)
        event = wrapped.get("Event") if isinstance(wrapped, dict) and "Event" in wrapped \
            else wrapped
        if not isinstance(event, dict) or not (event is not wrapped or _is_bare_event(event)):
            builder.skip(f"{path} entry #{index + 1}", "not a MISP event")
            continue
        events += 1
        _read_event(event, str(path), builder)
    if entries and not events:
        raise IocError(path, "JSON, but none of its entries is a MISP event")


def _read_event(event: Mapping[str, Any], where: str, builder: _Builder,
                fallback_info: object = None) -> None:
    origin = _event_origin(event, fallback_info)
    uuid = event.get("uuid")
    where = f"{where} event {_printable(uuid, 40) if isinstance(uuid, str) else 'without uuid'}"
    attributes = event.get("Attribute", [])
    objects = event.get("Object", [])
    if not isinstance(attributes, list) or not isinstance(objects, list):
        builder.skip(where, "Attribute or Object is not a list")
        return
    for attr in attributes:
        _one_attribute(attr, where, origin, builder)
    for obj in objects:
        if not isinstance(obj, dict):
            builder.skip(where, "an Object that is not a JSON object")
            continue
        inner = obj.get("Attribute", [])
        if not isinstance(inner, list):
            builder.skip(where, "an Object whose Attribute is not a list")
            continue
        if _flag(obj.get("deleted")):
            for _ in inner:
                builder.ignore("deleted")
            continue
        name = obj.get("name") if isinstance(obj.get("name"), str) else None
        for attr in inner:
            _one_attribute(attr, f"{where} object {_show(name or '?', 64)}", origin, builder,
                           name)


def _one_attribute(attr: object, where: str, origin: str, builder: _Builder,
                   object_name: str | None = None) -> None:
    if not isinstance(attr, dict):
        builder.skip(where, "an attribute that is not a JSON object")
        return
    uuid = attr.get("uuid")
    label = f"{where} attribute {_show(uuid, 40)}" if isinstance(uuid, str) else where
    _attribute(attr, label, origin, builder, object_name)


def _read_attribute_search(attributes: list[Any], path: Path, builder: _Builder) -> None:
    """``/attributes/restSearch``: attributes, each naming its event (``Event`` or event_id)."""
    for attr in attributes:
        if not isinstance(attr, dict):
            builder.skip(str(path), "an attribute that is not a JSON object")
            continue
        event = attr.get("Event")
        if isinstance(event, dict):
            origin = _event_origin(event, None)
        elif isinstance(attr.get("event_id"), str | int):
            origin = f"MISP event id {_show(str(attr['event_id']), 20)}"
        else:
            origin = f"MISP search {path}"
        object_name = attr.get("Object", {}).get("name") if isinstance(attr.get("Object"),
                                                                       dict) else None
        _one_attribute(attr, str(path), origin, builder,
                       object_name if isinstance(object_name, str) else None)


def _event_origin(event: Mapping[str, Any], fallback_info: object) -> str:
    """``MISP event <uuid> "<info>" (<creator org>)``, printable and bounded."""
    uuid = event.get("uuid")
    info = event.get("info") if isinstance(event.get("info"), str) else fallback_info
    orgc = event.get("Orgc")
    org = orgc.get("name") if isinstance(orgc, dict) else None
    text = "MISP event " + (_printable(uuid, 40) if isinstance(uuid, str) else "without uuid")
    if isinstance(info, str) and info.strip():
        text += f" \"{_printable(info.strip(), _TEXT_MAX)}\""
    if isinstance(org, str) and org.strip():
        text += f" ({_printable(org.strip(), 80)})"
    return text


# -- MISP feed ----------------------------------------------------------------------------------

def _read_feed(directory: Path, builder: _Builder) -> None:
    manifest_path = directory / "manifest.json"
    try:
        raw = _read_bounded(manifest_path, builder.limits.max_file_bytes, follow=False,
                            where=manifest_path)
    except FileNotFoundError:
        raise IocError(directory, "a directory, but not a MISP feed (no manifest.json)") from None
    except _SymbolicLink:
        raise IocError(manifest_path, "a symbolic link, not followed in a feed") from None
    builder.add_bytes(len(raw), manifest_path)
    manifest = _parse_json(_text(raw, manifest_path), manifest_path)
    if not isinstance(manifest, dict):
        raise IocError(manifest_path, "not a JSON object of event UUIDs")
    if len(manifest) > builder.limits.max_events:
        raise IocError(manifest_path, f"lists {len(manifest)} events, more than "
                                      f"{builder.limits.max_events}")
    for key, meta in manifest.items():
        where = f"{manifest_path} entry {_show(key, 40)}"
        if not _UUID.fullmatch(key):
            builder.skip(where, "not an event UUID, so it names no event file")
            continue
        builder.add_event(manifest_path)
        event_path = directory / f"{key}.json"
        try:
            data = _read_bounded(event_path, builder.limits.max_file_bytes, follow=False,
                                 where=event_path)
        except FileNotFoundError:
            builder.skip(where, f"{event_path.name} is missing")
            continue
        except _SymbolicLink:
            builder.skip(where, f"{event_path.name} is a symbolic link, not followed in a feed")
            continue
        except IocError as err:
            builder.skip(where, err.reason)
            continue
        builder.add_bytes(len(data), event_path)
        meta = meta if isinstance(meta, dict) else {}
        expected = meta.get("integrity:sha256")
        if isinstance(expected, str) and hashlib.sha256(data).hexdigest() != expected.lower():
            builder.skip(where, f"{event_path.name} does not have the SHA-256 the manifest gives")
            continue
        try:
            document = _parse_json(_text(data, event_path), event_path)
        except IocError as err:
            builder.skip(where, err.reason)
            continue
        event = document.get("Event") if isinstance(document, dict) and "Event" in document \
            else document
        if not isinstance(event, dict):
            builder.skip(where, f"{event_path.name} is not a MISP event")
            continue
        uuid = event.get("uuid")
        if not isinstance(uuid, str) or uuid.lower() != key.lower():
            builder.skip(where, f"{event_path.name} holds event {_show(uuid, 40)}, not {key}")
            continue
        _read_event(event, str(event_path), builder, fallback_info=meta.get("info"))


# -- CSV ------------------------------------------------------------------------------------------

def _read_csv(text: str, path: Path, builder: _Builder) -> None:
    # Comment lines become empty lines, so that the reader's line numbers stay the file's.
    lines = ("\n" if line.lstrip().startswith("#") else line
             for line in text.splitlines(keepends=True))
    reader = csv.reader(lines)
    rows = _csv_rows(reader, path)
    first = next(rows, None)
    if first is None:
        return
    line, cells = first
    header = [c.strip().lower() for c in cells]
    if "type" in header and "value" in header:
        _read_typed_csv(header, rows, path, builder)
    elif any(h in _COLUMNS for h in header):
        _read_column_csv(header, line, rows, path, builder)
    else:
        _read_plain_csv(_chain(first, rows), path, builder)


def _csv_rows(reader: Any, path: Path) -> Iterator[tuple[int, list[str]]]:
    """Non-empty rows with the line each ends on; a malformed CSV names its line."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise IocError(path, f"line {reader.line_num}: {err}") from None
        if any(cell.strip() for cell in row):
            yield reader.line_num, row


def _chain(first: tuple[int, list[str]],
           rest: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
    yield first
    yield from rest


def _read_typed_csv(header: list[str], rows: Iterable[tuple[int, list[str]]], path: Path,
                    builder: _Builder) -> None:
    """``type,value`` rows of MISP types, as MISP's CSV export writes them."""
    column = {name: i for i, name in reversed(list(enumerate(header)))}
    flagged = "to_ids" in column
    for line, cells in rows:
        row = {name: cells[i] for name, i in column.items() if i < len(cells)}
        attr: dict[str, Any] = {"type": row.get("type", "").strip(), "value": row.get("value"),
                                "object_relation": row.get("object_relation", "").strip(),
                                # A list without the column is one the user chose whole.
                                "to_ids": row.get("to_ids", "") if flagged else True}
        origin = f"{path}:{line}"
        info = row.get("event_info", "").strip()
        if info:
            origin += f" \"{_printable(info, _TEXT_MAX)}\""
        object_name = row.get("object_name", "").strip() or None
        _attribute(attr, f"{path}:{line}", origin, builder, object_name)


def _read_column_csv(header: list[str], header_line: int, rows: Iterable[tuple[int, list[str]]],
                     path: Path, builder: _Builder) -> None:
    """Columns among sha256, sha1, md5, filename, name, path; each filled cell an indicator."""
    for name in header:
        if name and name not in _COLUMNS:
            builder.skip(f"{path}:{header_line}", f"column {_show(name, 64)} is not read")
    for line, cells in rows:
        where = f"{path}:{line}"
        for name, cell in zip(header, cells, strict=False):
            kind = _COLUMNS.get(name)
            if kind is None or not cell.strip():
                continue
            if kind == "file":
                builder.add_file(cell, where, where)
            else:
                builder.add_hash(kind, cell, where, where)
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
            builder.skip(where, "more cells than the header names")


def _read_plain_csv(rows: Iterable[tuple[int, list[str]]], path: Path,
                    builder: _Builder) -> None:
    """One value per row, a hash by its length and otherwise a file name; ``  # …`` after a
    value is a comment. A file most of whose rows are not indicators is not a list of them."""
    data = 0
    for line, cells in rows:
        data += 1
        where = f"{path}:{line}"
        filled = [c for c in cells if c.strip()]
        if len(filled) != 1:
            builder.skip(where, f"{len(filled)} values on one row of a list without a header")
            continue
        value = re.sub(r"\s+#.*\Z", "", filled[0].strip())
        hexadecimal = _HEX.fullmatch(value.lower()) is not None
        if hexadecimal and len(value) in _KIND_OF_LENGTH:
            builder.add_hash(_KIND_OF_LENGTH[len(value)], value, where, where)
        elif hexadecimal and len(value) >= 32:
            builder.skip(where, f"{_show(value)} looks like a hash of {len(value) * 4} bits, "
                                "not an md5, sha1 or sha256")
        elif not _PLAIN_NAME.fullmatch(value):
            builder.skip(where, f"{_show(value)} is neither a hash nor a file name without "
                                "spaces, quotes or markup (such a name needs a filename column)")
        else:
            builder.add_file(value, where, where)
    if data and builder.skipped_total * 2 > data:
        raise IocError(path, f"not a list of indicators: {builder.skipped_total} of {data} rows "
                             f"not understood, first {builder.skipped[0]}")


# -- reading --------------------------------------------------------------------------------------

class _SymbolicLink(Exception):
    """A file that must not be a symbolic link is one."""


def _read_bounded(path: Path, limit: int, *, follow: bool, where: Path) -> bytes:
    """A regular file's bytes, at most ``limit``. Inside a feed symbolic links are not followed,
    and nothing but a regular file (no FIFO, no device) is opened for reading."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as err:
        if err.errno == errno.ELOOP and not follow:
            raise _SymbolicLink(str(path)) from None
        raise IocError(where, f"cannot open: {err.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise IocError(where, "not a regular file")
        if info.st_size > limit:
            raise IocError(where, f"{info.st_size} bytes, more than {limit}")
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, min(MiB, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise IocError(where, f"more than {limit} bytes")
        return b"".join(chunks)
    except OSError as err:
        raise IocError(where, f"cannot read: {err.strerror}") from None
    finally:
        os.close(fd)


def _text(data: bytes, path: Path) -> str:
    if b"\x00" in data:
        raise IocError(path, "binary content, not a MISP event, MISP feed or CSV")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise IocError(path, f"not UTF-8 text at byte {err.start}, so not a MISP event, MISP "
                             "feed or CSV") from None


def _parse_json(text: str, path: Path) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise IocError(path, f"not valid JSON: {err.msg} at line {err.lineno} column "
                             f"{err.colno}") from None
    except RecursionError:
        raise IocError(path, "JSON nested too deeply") from None


# -- text -----------------------------------------------------------------------------------------

def _normal_path(value: str) -> str:
    """A path for comparison: ``~/`` and ``./`` dropped from the front, repeated slashes and
    ``.`` components removed; ``..`` is kept as written."""
    if value.startswith("~/"):
        value = value[2:]
    absolute = value.startswith("/")
    parts = [p for p in value.split("/") if p not in ("", ".")]
    return ("/" if absolute else "") + "/".join(parts)


def _printable(text: str, limit: int) -> str:
    cleaned = "".join(c if c.isprintable() else "?" for c in text[: limit + 1])
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def _show(value: object, limit: int = 80) -> str:
    """A value for a message: quoted, printable and short."""
    return repr(_printable(str(value), limit))
