"""A daemon's command line as its systemd unit starts it (listeners helpers).

For daemons whose exposure is set by command-line flags (dockerd ``-H``, kubelet
``--anonymous-auth``, x11vnc ``-nopw``...): the unit file systemd would load (first in
``/etc``, ``/usr/local/lib``, ``/lib``, ``/usr/lib``) and its drop-ins (``<unit>.d/*.conf``,
one per file name, ``/etc`` first), read as systemd.unit(5) and systemd.service(5) say:
``ExecStart=`` reset by an empty assignment, ``Environment=`` and ``EnvironmentFile=``
variables expanded in ``$NAME``/``${NAME}`` words (systemd.service(5) "Command lines"). Each
flag becomes a setting keyed by the option (``parse_options``), with the line it came from.
"""

from __future__ import annotations

import posixpath
import re
import shlex

from imageaudit.facts.base import CollectContext
from imageaudit.facts.conftext import (
    glob_files,
    parse_options,
    parse_shell_vars,
    read_config,
    readable_or_broken,
    split_words,
)
from imageaudit.facts.listeners.directory import capped
from imageaudit.facts.listeners.model import DaemonBuilder
from imageaudit.facts.services.systemd_loader import UNIT_DIRS
from imageaudit.facts.services.systemd_units import ParsedUnit, list_values, parse_unit_file
from imageaudit.imagefs import ImageFSError
from imageaudit.model import Source

MAX_DROP_INS = 64
_VAR = re.compile(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$")


def unit_dirs(ctx: CollectContext) -> dict[str, frozenset[str]]:
    """The names in each unit directory (listed once, then asked per unit name)."""
    names: dict[str, frozenset[str]] = {}
    for directory in UNIT_DIRS:
        try:
            names[directory] = frozenset(ctx.fs.listdir(directory))
        except ImageFSError:
            names[directory] = frozenset()
    return names


def unit_files(ctx: CollectContext, name: str,
               listed: dict[str, frozenset[str]] | None = None) -> list[str]:
    """The unit file systemd loads for ``name``, then its drop-ins in reading order."""
    listed = listed if listed is not None else unit_dirs(ctx)
    main = next((posixpath.join(d, name) for d in UNIT_DIRS if name in listed[d]
                 and readable_or_broken(ctx, posixpath.join(d, name))), None)
    drops: dict[str, str] = {}
    for directory in UNIT_DIRS:
        if f"{name}.d" not in listed[directory]:
            continue
        for path in glob_files(ctx, posixpath.join(directory, f"{name}.d", "*.conf")):
            drops.setdefault(posixpath.basename(path), path)
    ordered = capped(ctx, [drops[k] for k in sorted(drops)], f"drop-ins of {name}",
                     MAX_DROP_INS)
    return ([main] if main else []) + ordered


def _env(ctx: CollectContext, out: DaemonBuilder, parsed: ParsedUnit,
         ) -> dict[str, tuple[str, Source]]:
    env: dict[str, tuple[str, Source]] = {}
    for value, _line, _path in parsed.values.get(("Service", "EnvironmentFile"), []):
        target = value.lstrip("-").strip()
        if not target.startswith("/"):
            continue
        text = read_config(ctx, target)
        if text is None:
            continue
        out.files.append(target)
        settings, malformed = parse_shell_vars(text, target)
        out.malformed.extend(malformed)
        for s in settings:
            out.settings.append(s)
            env[s.key] = (s.value, s.source)
    for value, line, path in parsed.values.get(("Service", "Environment"), []):
        for word in split_words(value) or []:
            name, sep, val = word.partition("=")
            if sep:
                env[name] = (val, Source(path, line))
                out.add(name, val, Source(path, line), "Environment")
    return env


def collect_unit(ctx: CollectContext, out: DaemonBuilder, names: tuple[str, ...],
                 options: dict[str, str],
                 listed: dict[str, frozenset[str]] | None = None) -> None:
    """Flags of the first of ``names`` that has a unit file, recorded into ``out``.

    ``ExecStart`` lines are kept as settings (section ``systemd``); every flag after the
    program is a setting keyed by ``options[flag]`` or the flag as written.
    """
    listed = listed if listed is not None else unit_dirs(ctx)
    for name in names:
        files = unit_files(ctx, name, listed)
        if not files:
            continue
        parsed = ParsedUnit()
        for path in files:
            text = read_config(ctx, path)
            if text is None:
                continue
            out.files.append(path)
            one = parse_unit_file(text, path, [])
            for key, values in one.values.items():
                parsed.values.setdefault(key, []).extend(values)
        env = _env(ctx, out, parsed)
        for value, line, path in list_values(parsed, "Service", "ExecStart"):
            source = Source(path, line)
            out.add("ExecStart", value, source, "systemd")
            words = split_words(value.lstrip("@-:+!")) or value.split()
            command_flags(out, words[1:], source, options, env)
        return


def command_flags(out: DaemonBuilder, words: list[str], source: Source,
                  options: dict[str, str],
                  env: dict[str, tuple[str, Source]] | None = None) -> None:
    """Record the flags of ``words`` (variables expanded from ``env``) as settings."""
    env = env or {}
    group: list[str] = []
    for word in words:
        match = _VAR.match(word)
        if match and match.group(1) in env:
            value, where = env[match.group(1)]
            out.settings.extend(parse_options(group, options, source))
            group = []
            out.settings.extend(parse_options(split_words(value) or [], options, where))
            continue
        group.append(word)
    out.settings.extend(parse_options(group, options, source))


def shell_words(value: str) -> list[str]:
    """Words of a command line, quotes removed; split on blanks when quoting is unbalanced."""
    try:
        return shlex.split(value)
    except ValueError:
        return value.split()
