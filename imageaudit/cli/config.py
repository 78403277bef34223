"""Option values from a configuration file and from environment variables, for every option of
every command, found by walking the parser rather than listed option by option.

Precedence: the command line, then ``IMAGEAUDIT_<COMMAND>_<OPTION>`` (``IMAGEAUDIT_SCAN_REQUIRE``),
then ``IMAGEAUDIT_<OPTION>`` (``IMAGEAUDIT_REQUIRE``), then the configuration file's section of
the command (``scan: {require: standard}``), then its top-level keys (``require: standard``),
then the built-in default. The file is ``--config FILE``, else ``$IMAGEAUDIT_CONFIG``, else
``imageaudit.yaml`` in the current directory when there is one. Its keys are long option names
(``skip-rule`` or ``skip_rule``); an unknown key is a usage error naming the file and the key.
A repeatable option takes a YAML list (or, from the environment, a comma-separated list); an
on/off option takes ``true``/``false`` (``1``/``0``, ``yes``/``no``, ``on``/``off``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from imageaudit.errors import UsageError

CONFIG_ENV = "IMAGEAUDIT_CONFIG"
CONFIG_FILE = "imageaudit.yaml"
ENV_PREFIX = "IMAGEAUDIT_"
# Variables that already mean something else than the option of the same name: ``--trivy``
# is on/off, $IMAGEAUDIT_TRIVY the trivy binary to run.
RESERVED_ENV = frozenset({"IMAGEAUDIT_TRIVY"})
_NOT_CONFIGURABLE = frozenset({"help", "version", "config"})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class _Unset(list[Any]):
    """The default of an option that the environment or the file may set: a list, so that
    ``append`` actions given on the command line still work on (a copy of) it."""


@dataclass(frozen=True)
class _Found:
    value: Any
    where: str  # "environment variable X" or "FILE: key a.b"


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` on the top-level parser (read before parsing, anywhere on the line)."""
    parser.add_argument(
        "--config", metavar="FILE",
        help=f"option values for every command (default: ${CONFIG_ENV}, else ./{CONFIG_FILE} "
             "when present); see 'Configuration' below")


EPILOG = (
    "Configuration: every long option of every command can also be set by the environment, "
    "IMAGEAUDIT_<COMMAND>_<OPTION> or IMAGEAUDIT_<OPTION> (IMAGEAUDIT_SCAN_REQUIRE=standard, "
    "IMAGEAUDIT_SKIP_RULE=hygiene_logs,hygiene_machine_id), or by a YAML file (--config FILE, "
    f"${CONFIG_ENV}, or ./{CONFIG_FILE}) whose keys are long option names, at the top level or "
    "under a command (scan: {require: standard}). The command line wins over the environment, "
    "the environment over the file, the file over the defaults. $IMAGEAUDIT_TRIVY names the "
    "trivy binary, not --trivy."
)


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
          ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, (*path, name))


def _options(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.Action]]:
    """``(long name, action)`` of every configurable option of ``parser``."""
    for action in parser._actions:
        longs = [s for s in action.option_strings if s.startswith("--")]
        if not longs or action.dest in _NOT_CONFIGURABLE or action.nargs == argparse.SUPPRESS:
            continue
        if action.help == argparse.SUPPRESS:
            continue  # an old spelling, hidden from --help: only current names are configured
        if action.nargs == 0 and not isinstance(action.const, bool):
            continue  # count, store_const of something else: nothing a file could say
        yield longs[0][2:], action


def _key(name: str) -> str:
    return name.replace("_", "-").lower()


def _env_name(path: Sequence[str], option: str) -> str:
    parts = [*path, option]
    return ENV_PREFIX + "_".join(p.replace("-", "_").upper() for p in parts)


def _split_argv(argv: Sequence[str]) -> tuple[list[str], str | None]:
    """``argv`` without ``--config FILE`` (accepted anywhere before ``--``), and FILE."""
    rest: list[str] = []
    config: str | None = None
    items = iter(argv)
    for item in items:
        if item == "--":
            rest.append(item)
            rest.extend(items)
            break
        if item == "--config":
            config = next(items, None)
            if config is None:
                raise UsageError("--config needs a FILE")
        elif item.startswith("--config="):
            config = item.split("=", 1)[1]
        else:
            rest.append(item)
    return rest, config


def _load_file(path: Path) -> dict[str, Any]:
    from imageaudit.rules import describe_yaml_error

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: cannot read the configuration: "
                         f"{describe_yaml_error(exc)}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: a configuration file holds one mapping of option names")
    return raw


def _check_keys(path: Path, section: Mapping[Any, Any], prefix: tuple[str, ...],
                tree: dict[tuple[str, ...], argparse.ArgumentParser]) -> None:
    """Every key names an option of a command at or under ``prefix``, or a command section."""
    for raw_key, value in section.items():
        key = _key(str(raw_key))
        where = ".".join((*prefix, str(raw_key)))
        if isinstance(value, dict):
            if (*prefix, key) not in tree:
                raise UsageError(f"{path}: key {where}: no command "
                                 f"'{' '.join((*prefix, key))}' (a section names a command)")
            _check_keys(path, value, (*prefix, key), tree)
            continue
        known = any(name == key for p, parser in tree.items() if p[:len(prefix)] == prefix
                    for name, _ in _options(parser))
        if not known:
            scope = f"command '{' '.join(prefix)}'" if prefix else "any command"
            raise UsageError(f"{path}: unknown key {where}: no option --{key} of {scope}")


def _from_file(path: Path | None, data: Mapping[Any, Any], cmd: tuple[str, ...], option: str
               ) -> _Found | None:
    if path is None:
        return None
    for depth in range(len(cmd), -1, -1):
        section: Any = data
        for part in cmd[:depth]:
            nxt = {_key(str(k)): v for k, v in section.items()}.get(part)
            section = nxt if isinstance(nxt, dict) else None
            if section is None:
                break
        if section is None:
            continue
        for raw_key, value in section.items():
            # an empty value (``require:``) leaves the option to the built-in default
            if _key(str(raw_key)) == option and value is not None and not isinstance(value, dict):
                return _Found(value, f"{path}: key {'.'.join((*cmd[:depth], str(raw_key)))}")
    return None


def _from_env(env: Mapping[str, str], cmd: tuple[str, ...], option: str) -> _Found | None:
    for depth in range(len(cmd), -1, -1):
        name = _env_name(cmd[:depth], option)
        if name in env and name not in RESERVED_ENV:
            return _Found(env[name], f"environment variable {name}")
    return None


def _bool(found: _Found) -> bool:
    if isinstance(found.value, bool):
        return found.value
    text = str(found.value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise UsageError(f"{found.where}: {found.value!r} is not true or false")


def _strings(found: _Found) -> list[str]:
    value = found.value
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str) and found.where.startswith("environment"):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(value)]


def _apply(parser: argparse.ArgumentParser, ns: argparse.Namespace, option: str,
           action: argparse.Action, found: _Found) -> None:
    """Set ``action``'s value in ``ns`` as if ``found`` had been given on the command line."""
    flag = f"--{option}"
    setattr(ns, action.dest, None)
    try:
        if action.nargs == 0:
            on = _bool(found)
            if on:
                action(parser, ns, None, flag)
            else:
                setattr(ns, action.dest, not action.const)
        elif isinstance(action, argparse._AppendAction) or getattr(action, "repeatable", False):
            for item in _strings(found):
                action(parser, ns, parser._get_values(action, [item]), flag)
        elif action.nargs in ("+", "*") or isinstance(action.nargs, int):
            action(parser, ns, parser._get_values(action, _strings(found)), flag)
        else:
            if isinstance(found.value, list | dict):
                raise UsageError(f"{found.where}: {flag} takes one value, not a list")
            text = str(found.value).lower() if isinstance(found.value, bool) else str(found.value)
            action(parser, ns, parser._get_values(action, [text]), flag)
    except argparse.ArgumentError as exc:
        raise UsageError(f"{found.where}: {flag}: {exc.message}") from None


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None,
               env: Mapping[str, str] | None = None,
               cwd: Path | None = None) -> argparse.Namespace:
    """Parse ``argv`` with values from the environment and the configuration file filled in
    for the options the command line left out (see the module docstring)."""
    import sys

    env = os.environ if env is None else env
    argv, config_arg = _split_argv(sys.argv[1:] if argv is None else argv)
    path: Path | None = None
    if config_arg is not None:
        path = Path(config_arg)
    elif env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV])
    elif (Path(cwd or Path.cwd()) / CONFIG_FILE).is_file():
        path = Path(cwd or Path.cwd()) / CONFIG_FILE
    tree = dict(_walk(parser))
    data: dict[str, Any] = {}
    if path is not None:
        data = _load_file(path)
        _check_keys(path, data, (), tree)
    pending: dict[tuple[str, ...], list[tuple[str, argparse.Action, _Found]]] = {}
    for cmd, sub in tree.items():
        for option, action in _options(sub):
            # An option that says the environment must not set it (where a catalogue named by a
            # variable would change what the command does) is left to the line and the file.
            from_env = getattr(action, "from_environment", True)
            found = ((_from_env(env, cmd, option) if from_env else None)
                     or _from_file(path, data, cmd, option))
            if found is None:
                continue
            pending.setdefault(cmd, []).append((option, action, found))
            action.default = _Unset()
            action.required = False  # the value comes from elsewhere; checked after parsing
    ns = parser.parse_args(argv)
    cmd = ()
    for path_so_far, sub in _chosen(parser, ns):
        cmd = path_so_far
        for option, action, found in pending.get(cmd, ()):
            value = getattr(ns, action.dest, None)
            if isinstance(value, _Unset):
                if value:  # an append option given on the command line
                    setattr(ns, action.dest, list(value))
                else:
                    _apply(sub, ns, option, action, found)
    return ns


def _chosen(parser: argparse.ArgumentParser, ns: argparse.Namespace
            ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """The parsers of the command the user ran, from the top one down."""
    path: tuple[str, ...] = ()
    current: argparse.ArgumentParser | None = parser
    while current is not None:
        yield path, current
        nxt = None
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                name = getattr(ns, action.dest, None) if action.dest else None
                if isinstance(name, str) and name in action.choices:
                    nxt = action.choices[name]
                    path = (*path, name)
        current = nxt


__all__ = ["CONFIG_ENV", "CONFIG_FILE", "EPILOG", "RESERVED_ENV", "add_config_option",
           "parse_args"]
