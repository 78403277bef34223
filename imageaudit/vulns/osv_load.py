"""Stream OSV records out of directories and zip files (the osv.dev per-ecosystem dumps).

The dumps are ``<Ecosystem>/all.zip`` archives of one JSON record per member; unpacked they are
directories of ``*.json`` files. Both are read one record at a time, each member or file
capped in size, the number of records and the total bytes capped, symlinks never followed and
zips inside zips never opened. A record that cannot be read is reported, not raised.

Specs: OSV schema 1.6; osv.dev data dumps (``gs://osv-vulnerabilities/<ECOSYSTEM>/all.zip``);
zipfile (APPNOTE.TXT).
"""

from __future__ import annotations

import json
import os
import stat
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class OSVLoadError(Exception):
    """A path given as an OSV source that is neither a directory nor a readable zip."""


@dataclass(frozen=True, slots=True)
class OSVLimits:
    """Caps on what one load reads (a dump is data from the internet, not trusted)."""

    max_record_bytes: int = 32 * 1024 * 1024
    max_records: int = 3_000_000
    max_total_bytes: int = 64 * 1024 * 1024 * 1024
    max_zip_members: int = 3_000_000
    max_problems: int = 50


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One parsed JSON record and where it was read (``file`` or ``zip!member``)."""

    where: str
    data: dict[str, Any]


@dataclass
class LoadStats:
    """What a load read and what it could not (problems are capped, the count is not)."""

    files: int = 0
    records: int = 0
    bytes: int = 0
    unreadable: int = 0
    problems: list[str] | None = None
    truncated: bool = False

    def problem(self, message: str, limits: OSVLimits) -> None:
        self.unreadable += 1
        if self.problems is None:
            self.problems = []
        if len(self.problems) < limits.max_problems:
            self.problems.append(message)


def _parse(raw: bytes, where: str, stats: LoadStats, limits: OSVLimits) -> RawRecord | None:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        stats.problem(f"{where}: not a JSON document ({type(exc).__name__})", limits)
        return None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        stats.problem(f"{where}: not an OSV record (no `id`)", limits)
        return None
    return RawRecord(where, data)


def _budget(size: int, stats: LoadStats, limits: OSVLimits) -> bool:
    if stats.records >= limits.max_records or stats.bytes + size > limits.max_total_bytes:
        stats.truncated = True
        return False
    return True


def _from_zip(path: Path, stats: LoadStats, limits: OSVLimits) -> Iterator[RawRecord]:
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        stats.problem(f"{path}: not a readable zip file ({exc})", limits)
        return
    with archive:
        for count, info in enumerate(archive.infolist()):
            if count >= limits.max_zip_members:
                stats.truncated = True
                return
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            where = f"{path}!{info.filename}"
            if info.file_size > limits.max_record_bytes:
                stats.problem(f"{where}: larger than {limits.max_record_bytes} bytes", limits)
                continue
            if not _budget(info.file_size, stats, limits):
                return
            try:
                with archive.open(info) as member:
                    # The declared size may lie: never read more than the cap.
                    raw = member.read(limits.max_record_bytes + 1)
            except (OSError, zipfile.BadZipFile, EOFError, NotImplementedError) as exc:
                stats.problem(f"{where}: unreadable ({exc})", limits)
                continue
            if len(raw) > limits.max_record_bytes:
                stats.problem(f"{where}: larger than {limits.max_record_bytes} bytes", limits)
                continue
            stats.bytes += len(raw)
            record = _parse(raw, where, stats, limits)
            if record is not None:
                stats.records += 1
                yield record


def _read_file(path: Path, stats: LoadStats, limits: OSVLimits) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        stats.problem(f"{path}: unreadable ({exc.strerror})", limits)
        return None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            return None
        if st.st_size > limits.max_record_bytes:
            stats.problem(f"{path}: larger than {limits.max_record_bytes} bytes", limits)
            return None
        if not _budget(st.st_size, stats, limits):
            return None
        raw = handle.read(limits.max_record_bytes + 1)
    if len(raw) > limits.max_record_bytes:
        stats.problem(f"{path}: larger than {limits.max_record_bytes} bytes", limits)
        return None
    return raw


def _walk(top: Path) -> Iterator[Path]:
    """Regular files under ``top``, sorted per directory, symlinks neither listed nor followed."""
    stack = [top]
    while stack:
        directory = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name, reverse=True)
        except OSError:
            continue
        for entry in entries:
            if entry.is_symlink():
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                yield Path(entry.path)


def iter_records(
    sources: Sequence[Path], stats: LoadStats, limits: OSVLimits
) -> Iterator[RawRecord]:
    """Every OSV record in ``sources`` (directories of ``*.json``/``*.zip``, or zip files)."""
    for source in sources:
        if source.is_dir():
            files: Iterator[Path] = _walk(source)
        elif source.is_file():
            files = iter((source,))
        else:
            raise OSVLoadError(f"{source}: no such OSV directory or zip file")
        for path in files:
            if stats.truncated:
                return
            if path.suffix == ".zip":
                stats.files += 1
                yield from _from_zip(path, stats, limits)
            elif path.suffix == ".json":
                stats.files += 1
                raw = _read_file(path, stats, limits)
                if raw is None:
                    continue
                stats.bytes += len(raw)
                record = _parse(raw, str(path), stats, limits)
                if record is not None:
                    stats.records += 1
                    yield record
            elif source.is_file():
                raise OSVLoadError(f"{source}: an OSV source is a directory or a .zip file")
