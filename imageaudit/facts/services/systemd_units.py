"""systemd unit names and unit files: the type from a name, templates, key=value settings.

A unit file is read as systemd reads it: ``[Section]`` headers, ``Key=value`` lines,
comments starting with ``#`` or ``;``, a trailing backslash joining the next line. Every
value is kept with its line and file, in order, so that drop-ins can be appended and a
list-like setting can be reset by an empty assignment. Which file is read for a unit is the
loader's (:mod:`.systemd_loader`).

Follows systemd.unit(5) (unit names, templates and instances, file syntax), systemd.syntax(7)
and systemd.service(5) (``ExecStart=`` reset by an empty assignment).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from imageaudit.facts.conftext import MalformedLine, systemd_lines
from imageaudit.model import Source

UNIT_KINDS = frozenset(
    {
        "service", "socket", "target", "timer", "mount", "automount", "path",
        "swap", "slice", "scope", "device",
    }
)
DEP_KEYS = {"Wants": "wants", "Requires": "requires", "Upholds": "upholds"}


@dataclass
class ParsedUnit:
    """Every value of a unit file (and its drop-ins), by (section, key), in reading order."""

    values: dict[tuple[str, str], list[tuple[str, int, str]]] = field(default_factory=dict)


def unit_kind(name: str) -> str | None:
    """The unit type from its suffix, ``None`` for anything else."""
    base, dot, suffix = name.rpartition(".")
    return suffix if dot and base and suffix in UNIT_KINDS else None


def split_template(name: str) -> tuple[str | None, str | None]:
    """``("getty@.service", "tty1")`` for an instance, ``(None, None)`` otherwise."""
    base, _dot, suffix = name.rpartition(".")
    prefix, at, instance = base.partition("@")
    if not at or not instance:
        return None, None
    return f"{prefix}@.{suffix}", instance


def parse_unit_file(text: str, path: str, malformed: list[MalformedLine]) -> ParsedUnit:
    """Section/key/value triples of a unit file (continuation lines joined)."""
    parsed = ParsedUnit()
    section = ""
    pending = ""
    start = 0
    for number, raw in enumerate(systemd_lines(text), start=1):
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            malformed.append(MalformedLine("not a key=value line", raw, Source(path, start)))
            continue
        parsed.values.setdefault((section, key.strip()), []).append(
            (value.strip(), start, path)
        )
    return parsed


def list_values(parsed: ParsedUnit, section: str, key: str) -> list[tuple[str, int, str]]:
    """Values of a list-like setting; an empty assignment resets what came before."""
    out: list[tuple[str, int, str]] = []
    for item in parsed.values.get((section, key), []):
        if item[0] == "":
            out = []
        else:
            out.append(item)
    return out


def last_value(parsed: ParsedUnit, section: str, key: str) -> str | None:
    """The value of a single-valued setting (its last assignment), ``None`` if unset."""
    vals = parsed.values.get((section, key), [])
    return vals[-1][0] if vals else None
