"""The unit directories of a systemd image: which file each unit name loads, and the links.

The directories are walked in precedence order, once each (``/lib`` is ``/usr/lib`` on a
merged-``/usr`` system): the first entry for a name wins, as a unit file, a mask (a link to
``/dev/null``) or an alias (a link to another unit name). Links in ``.wants``/``.requires``/
``.upholds`` directories are enablement; ``.d`` directories hold drop-ins. Aliases and
templates are followed (bounded) to find the file systemd would load for a name, and what a
unit pulls in is its links and its ``Wants=``/``Requires=``/``Upholds=`` lines.

Follows systemd.unit(5) (unit search path, aliases, drop-ins, templates, masking).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from imageaudit.facts.base import CollectContext
from imageaudit.facts.conftext import MalformedLine, canonical, read_config
from imageaudit.facts.services.systemd_units import (
    DEP_KEYS,
    ParsedUnit,
    parse_unit_file,
    split_template,
    unit_kind,
)
from imageaudit.imagefs import FileStat, FileType, ImageFSError
from imageaudit.model import Source

# Highest precedence first; /run is volatile and never part of an image at rest.
UNIT_DIRS = (
    "/etc/systemd/system",
    "/usr/local/lib/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
)
DEP_DIR_SUFFIXES = {".wants": "wants", ".requires": "requires", ".upholds": "upholds"}
MAX_ENTRIES = 20_000  # directory entries looked at across all unit directories
MAX_ALIAS_HOPS = 16


@dataclass(frozen=True, slots=True)
class EnableLink:
    """A symlink in ``<unit>.wants/`` (or ``.requires/``, ``.upholds/``): real enablement."""

    unit: str  # the unit name the link stands for (its file name)
    wanted_by: str  # the unit whose directory holds the link
    kind: str  # wants | requires | upholds
    path: str
    target: str | None  # link target as written; None for a regular file in the directory
    source: Source


@dataclass
class UnitEntry:
    """The winning directory entry for a unit name."""

    path: str
    kind: str  # file | mask | alias
    target: str | None = None  # alias: the unit name pointed at


class UnitLoader:
    """The unit directories of an image, walked once, then asked about unit names.

    :meth:`load` walks them and :meth:`index` sorts the links; :meth:`file_of`,
    :meth:`canonical_name`, :meth:`parse` and :meth:`dependencies` then answer per name.
    """

    def __init__(self, ctx: CollectContext) -> None:
        self.ctx = ctx
        self.entries: dict[str, UnitEntry] = {}
        self.links: list[EnableLink] = []
        self.drop_ins: dict[str, dict[str, str]] = {}
        self.malformed: list[MalformedLine] = []
        self.parsed: dict[str, ParsedUnit] = {}
        self.seen_entries = 0
        self.present = False

    def _listdir(self, path: str) -> list[str]:
        try:
            names = self.ctx.fs.listdir(path)
        except ImageFSError:
            return []
        room = MAX_ENTRIES - self.seen_entries
        if len(names) > room:
            self.ctx.error("services", f"more than {MAX_ENTRIES} systemd entries", path)
            names = names[: max(room, 0)]
        self.seen_entries += len(names)
        return names

    def _lstat(self, path: str) -> FileStat | None:
        try:
            return self.ctx.fs.lstat(path)
        except ImageFSError:
            return None

    def load(self) -> None:
        done: set[str] = set()
        for directory in UNIT_DIRS:
            if not self.ctx.fs.is_dir(directory):
                continue
            canon = canonical(self.ctx, directory)
            if canon in done:  # /lib -> usr/lib on merged-/usr systems
                continue
            done.add(canon)
            self.present = True
            for name in self._listdir(directory):
                self._entry(directory, name)

    def _entry(self, directory: str, name: str) -> None:
        path = posixpath.join(directory, name)
        st = self._lstat(path)
        if st is None:
            return
        dep_suffix = next((s for s in DEP_DIR_SUFFIXES if name.endswith(s)), None)
        if dep_suffix and self.ctx.fs.is_dir(path):
            wanted_by = name[: -len(dep_suffix)]
            for link in self._listdir(path):
                self._link(path, link, wanted_by, DEP_DIR_SUFFIXES[dep_suffix])
            return
        if name.endswith(".d") and self.ctx.fs.is_dir(path):
            unit = name[:-2]
            slot = self.drop_ins.setdefault(unit, {})
            for conf in self._listdir(path):
                if conf.endswith(".conf"):
                    slot.setdefault(conf, posixpath.join(path, conf))  # higher dir wins
            return
        if unit_kind(name) is None or name in self.entries:
            return
        if st.type is FileType.SYMLINK:
            target = st.link_target or ""
            if target == "/dev/null":
                self.entries[name] = UnitEntry(path, "mask")
                return
            base = posixpath.basename(target)
            if base != name and unit_kind(base) is not None:
                self.entries[name] = UnitEntry(path, "alias", base)
                return
        if self.ctx.fs.is_file(path):
            self.entries[name] = UnitEntry(path, "file")

    def _link(self, directory: str, name: str, wanted_by: str, kind: str) -> None:
        path = posixpath.join(directory, name)
        st = self._lstat(path)
        if st is None or unit_kind(name) is None:
            return
        target = st.link_target if st.type is FileType.SYMLINK else None
        self.links.append(EnableLink(name, wanted_by, kind, path, target, Source(path)))

    def index(self) -> None:
        """Links by the unit holding them and by the (canonical) unit they name."""
        self.by_wanted_by: dict[str, list[EnableLink]] = {}
        self.by_unit: dict[str, list[EnableLink]] = {}
        for link in self.links:
            self.by_wanted_by.setdefault(link.wanted_by, []).append(link)
            self.by_unit.setdefault(self.canonical_name(link.unit), []).append(link)

    def file_of(self, name: str) -> str | None:
        """The unit file systemd would load for ``name`` (aliases and templates followed)."""
        current = name
        for _ in range(MAX_ALIAS_HOPS):
            entry = self.entries.get(current)
            if entry is None:
                template, _inst = split_template(current)
                if template is not None and template in self.entries:
                    current = template
                    continue
                return None
            if entry.kind == "mask":
                return None
            if entry.kind == "file":
                return entry.path
            current = entry.target or ""
        return None

    def canonical_name(self, name: str) -> str:
        current = name
        for _ in range(MAX_ALIAS_HOPS):
            entry = self.entries.get(current)
            if entry is None or entry.kind != "alias" or entry.target is None:
                return current
            current = entry.target
        return current

    def parse(self, name: str) -> ParsedUnit:
        if name in self.parsed:
            return self.parsed[name]
        merged = ParsedUnit()
        paths: list[str] = []
        path = self.file_of(name)
        if path is not None:
            paths.append(path)
        template, _inst = split_template(name)
        for unit in (template, name):
            if unit is not None:
                paths.extend(v for _k, v in sorted(self.drop_ins.get(unit, {}).items()))
        for p in paths:
            text = read_config(self.ctx, p)
            if text is None:
                continue
            for key, vals in parse_unit_file(text, p, self.malformed).values.items():
                merged.values.setdefault(key, []).extend(vals)
        self.parsed[name] = merged
        return merged

    def dependencies(self, name: str) -> list[str]:
        names = [name, self.canonical_name(name)]
        template, _inst = split_template(name)
        if template is not None:
            names.append(template)
        deps = [link.unit for n in names for link in self.by_wanted_by.get(n, [])]
        parsed = self.parse(name)
        for key in DEP_KEYS:
            for value, _line, _path in parsed.values.get(("Unit", key), []):
                deps.extend(value.split())
        return deps
