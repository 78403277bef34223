"""A report's ``inventory`` (its image's packages and hashed files), checked and stored beside it
so that campaigns find in seconds the images that hold a package or a file.

The inventory comes from the publisher, so it is checked whole before anything is stored: every
field's type, every string's length and characters, every hash's form, and the counts; the first
problem refuses the report (422) with the place it was found (``inventory.files[12].sha256``).
The strings the database indexes (package and source names, file names) are held to
1,024 bytes of UTF-8: a 255-byte file name with every byte escaped (``\\xNN``, as reports write
undecodable bytes) fits, and an index entry stays under PostgreSQL's limit. Tab and newline,
which reports keep in names, are accepted; other control characters are not.

An inventory describes the content of an image, which its SHA-512 names: it is stored once,
from the first accepted report that carries one, and later reports of the same content (a
re-published report, a newer audit, the same file registered under another image) add nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from integrations.appdb.db import Inventory, InventoryFile, InventoryPackage, Version, utcnow

MAX_PACKAGES = 50_000
MAX_FILES = 200_000
MAX_TEXT = 4096
MAX_INDEXED_BYTES = 1024
MAX_KEY = 255
MAX_EXAMPLES = 100
MAX_LIMITS = 32
MAX_COUNT = 2**31 - 1
MAX_SIZE = 2**62
INSERT_CHUNK = 5000
KINDS = frozenset({"elf", "exec", "script", "persistence", "writable", "home"})
HASHES = {"sha256": 64, "sha1": 40, "md5": 32}
_HEX = {name: re.compile(f"[0-9a-f]{{{length}}}") for name, length in HASHES.items()}
# Reports escape control characters but tab and newline; PostgreSQL text holds neither NUL nor
# a lone surrogate (what a JSON "\udc80" becomes), so no string may have those.
_BAD_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")
# A file name may hold any character but NUL (and a lone surrogate, which is not text).
_BAD_PATH = re.compile(r"[\x00\ud800-\udfff]")
_MANAGER = re.compile(r"[a-z][a-z0-9._-]{0,31}")


class InventoryInvalid(ValueError):
    """The inventory is malformed; the message names the field."""


@dataclass(frozen=True, slots=True)
class ParsedInventory:
    """A checked inventory: rows for the two tables (without their version) and the totals."""

    packages: tuple[dict[str, Any], ...]
    files: tuple[dict[str, Any], ...]
    complete: bool
    not_hashed: int


def _text(obj: Mapping[str, Any], key: str, where: str, *, limit: int = MAX_TEXT,
          required: bool = False, indexed: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise InventoryInvalid(f"{where}.{key} is missing")
        return None
    if not isinstance(value, str):
        raise InventoryInvalid(f"{where}.{key} is not a string")
    if required and not value:
        raise InventoryInvalid(f"{where}.{key} is empty")
    if len(value) > limit:
        raise InventoryInvalid(f"{where}.{key} is longer than {limit} characters")
    if _BAD_TEXT.search(value):
        raise InventoryInvalid(f"{where}.{key} has a control character or is not valid Unicode")
    if indexed and len(value.encode("utf-8")) > MAX_INDEXED_BYTES:
        raise InventoryInvalid(f"{where}.{key} is longer than {MAX_INDEXED_BYTES} bytes")
    return value


def _count(value: object, where: str, limit: int = MAX_COUNT) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
        raise InventoryInvalid(f"{where} is not a count from 0 to {limit}")
    return value


def _list(inv: Mapping[str, Any], key: str, limit: int) -> list[Any]:
    value = inv.get(key)
    if not isinstance(value, list):
        raise InventoryInvalid(f"inventory.{key} is missing or not a list")
    if len(value) > limit:
        raise InventoryInvalid(f"inventory has {len(value):,} {key}; at most {limit:,} are "
                               "accepted")
    return value


def _package(item: object, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InventoryInvalid(f"{where} is not an object")
    manager = _text(item, "manager", where, limit=32, required=True)
    assert manager is not None
    if not _MANAGER.fullmatch(manager):
        raise InventoryInvalid(f"{where}.manager {manager!r} is not a package manager's name")
    return {
        "name": _text(item, "name", where, required=True, indexed=True),
        "version": _text(item, "version", where, required=True),
        "arch": _text(item, "arch", where),
        "source_name": _text(item, "source_name", where, indexed=True) or None,
        "source_version": _text(item, "source_version", where) or None,
        "manager": manager,
        "ecosystem": _text(item, "ecosystem", where) or None,
        "purl": _text(item, "purl", where),
    }


def _file(item: object, where: str, seen: set[str]) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InventoryInvalid(f"{where} is not an object")
    path = item.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise InventoryInvalid(f"{where}.path is missing or not an absolute path")
    if len(path) > MAX_TEXT:
        raise InventoryInvalid(f"{where}.path is longer than {MAX_TEXT} characters")
    if _BAD_PATH.search(path):
        raise InventoryInvalid(f"{where}.path has a NUL or is not valid Unicode")
    basename = path.rsplit("/", 1)[1]
    if not basename or len(basename.encode("utf-8")) > MAX_INDEXED_BYTES:
        raise InventoryInvalid(f"{where}.path does not end in a file name of 1 to "
                               f"{MAX_INDEXED_BYTES} bytes")
    if path in seen:
        raise InventoryInvalid(f"{where}.path {path[:200]!r} is listed twice")
    seen.add(path)
    row: dict[str, Any] = {"path": path, "basename": basename}
    for name, pattern in _HEX.items():
        value = item.get(name)
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise InventoryInvalid(f"{where}.{name} is not {HASHES[name]} lowercase hex digits")
        row[name] = value
    size = item.get("size")
    row["size"] = None if size is None else _count(size, f"{where}.size", MAX_SIZE)
    kinds = item.get("kinds")
    if kinds is None:
        kinds = []
    if not isinstance(kinds, list) or len(kinds) > len(KINDS) or not all(
            isinstance(k, str) and k in KINDS for k in kinds):
        raise InventoryInvalid(f"{where}.kinds is not a list of {', '.join(sorted(KINDS))}")
    row["kinds"] = ",".join(sorted(set(kinds)))
    return row


def parse_inventory(raw: object) -> ParsedInventory | None:
    """The checked inventory of a report (``report.get("inventory")``); None when it has none.

    InventoryInvalid names the first problem; nothing of a malformed inventory is kept.
    """
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InventoryInvalid("inventory is not an object")
    packages = _list(raw, "packages", MAX_PACKAGES)
    files = _list(raw, "files", MAX_FILES)
    complete = raw.get("complete")
    if not isinstance(complete, bool):
        raise InventoryInvalid("inventory.complete is missing or not true/false")
    not_hashed = 0
    nh = raw.get("not_hashed")
    if nh is not None:
        if not isinstance(nh, dict):
            raise InventoryInvalid("inventory.not_hashed is not an object")
        not_hashed = _count(nh.get("count"), "inventory.not_hashed.count")
        examples = nh.get("examples") or []
        if not isinstance(examples, list) or len(examples) > MAX_EXAMPLES:
            raise InventoryInvalid("inventory.not_hashed.examples is not a list of at most "
                                   f"{MAX_EXAMPLES}")
        for i, ex in enumerate(examples):
            where = f"inventory.not_hashed.examples[{i}]"
            if not isinstance(ex, dict):
                raise InventoryInvalid(f"{where} is not an object")
            path = ex.get("path")
            if not isinstance(path, str) or len(path) > MAX_TEXT or _BAD_PATH.search(path):
                raise InventoryInvalid(f"{where}.path is not a path")
            _text(ex, "reason", where)
    limits = raw.get("limits")
    if limits is not None:
        if not isinstance(limits, dict) or len(limits) > MAX_LIMITS:
            raise InventoryInvalid(f"inventory.limits is not an object of at most {MAX_LIMITS} "
                                   "numbers")
        for key, value in limits.items():
            if len(key) > MAX_KEY:
                raise InventoryInvalid("inventory.limits has a name longer than "
                                       f"{MAX_KEY} characters")
            _count(value, f"inventory.limits.{key}", MAX_SIZE)
    seen: set[str] = set()
    return ParsedInventory(
        packages=tuple(_package(p, f"inventory.packages[{i}]") for i, p in enumerate(packages)),
        files=tuple(_file(f, f"inventory.files[{i}]", seen) for i, f in enumerate(files)),
        complete=complete, not_hashed=not_hashed)


def stored_for(s: Session, sha512: str) -> int | None:
    """The version whose inventory describes the content ``sha512``, if one was stored."""
    found: int | None = s.scalar(
        select(Inventory.version_id).join(Version, Version.id == Inventory.version_id)
        .where(Version.sha512 == sha512).limit(1))
    return found


def store_inventory(s: Session, version_id: int, sha512: str, report_id: str,
                    inv: ParsedInventory) -> bool:
    """Store ``inv`` for the version (in the caller's transaction) unless the content already
    has an inventory; True when stored.

    The rows go in as multi-row inserts of :data:`INSERT_CHUNK`; a concurrent report of the
    same version that stored first leaves this one's inventory out, not the report.
    """
    if stored_for(s, sha512) is not None:
        return False
    try:
        with s.begin_nested():
            s.add(Inventory(version_id=version_id, report_id=report_id, complete=inv.complete,
                            not_hashed=inv.not_hashed, packages=len(inv.packages),
                            files=len(inv.files), stored=utcnow()))
            s.flush()
            for table, rows in ((InventoryPackage, inv.packages), (InventoryFile, inv.files)):
                for start in range(0, len(rows), INSERT_CHUNK):
                    chunk = [{**row, "version_id": version_id}
                             for row in rows[start:start + INSERT_CHUNK]]
                    s.execute(insert(table), chunk)
    except IntegrityError:
        return False
    return True
