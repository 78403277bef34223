"""What every ``--help`` shares: a formatter that shows defaults and choices, an epilog with the
command's exit codes and examples, and deprecated option spellings that keep working.

Each command is added with :func:`add_command`, so no parser is left with argparse's bare
formatter. Building help imports nothing beyond argparse.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# The exit codes most commands share (imageaudit.errors); a command with a code of its own
# (3 for a blocked level) passes its own mapping.
EXIT_CODES: Mapping[int, str] = {
    0: "done",
    1: "internal failure",
    2: "usage or configuration error",
}
CATALOGUE_ENV = "IMAGEAUDIT_CATALOGUE"

# Stands for the missing help of an option whose default or choices are still to be shown
# (argparse prints no help line for a blank one).
_NO_HELP = "\x00"
# Actions whose ``default`` is not a value the user would pass: flags, constants, help.
_NO_DEFAULT_SHOWN = (
    argparse._StoreTrueAction,
    argparse._StoreFalseAction,
    argparse._StoreConstAction,
    argparse._AppendConstAction,
    argparse._CountAction,
    argparse._HelpAction,
    argparse._VersionAction,
    argparse._SubParsersAction,
)


def shown_default(action: argparse.Action) -> str | None:
    """The default as ``--help`` shows it, None when there is none worth showing (None, False,
    an empty list, a flag's or a suppressed default)."""
    if isinstance(action, _NO_DEFAULT_SHOWN) or action.help == argparse.SUPPRESS:
        return None
    return format_default(action.default)


def format_default(value: object) -> str | None:
    """``value`` as help text: floats without a trailing ``.0``, lists comma-joined."""
    if value is None or value is False or value is argparse.SUPPRESS:
        return None
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        items = [format_default(v) for v in value]
        return ",".join(i for i in items if i) or None
    text = str(value)
    return text or None


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions and epilogs as written; appends ``(default: X)`` to an option whose
    help does not already say its default, and its choices when a metavar hides them."""

    def _format_action(self, action: argparse.Action) -> str:
        if not action.help and action.help != argparse.SUPPRESS and self._extra(action):
            action = copy.copy(action)
            action.help = _NO_HELP
        return super()._format_action(action)

    def _format_args(self, action: argparse.Action, default_metavar: str) -> str:
        # A flag that still takes an old-style value shows as the flag it now is.
        if getattr(action, "flag_in_help", False):
            return ""
        return super()._format_args(action, default_metavar)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if getattr(action, "flag_in_help", False):
            return ", ".join(action.option_strings)
        return super()._format_action_invocation(action)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = "" if action.help == _NO_HELP else (action.help or "").strip()
        extra = self._extra(action, text)
        return f"{text} {extra}".strip() if extra else text

    @staticmethod
    def _extra(action: argparse.Action, text: str = "") -> str:
        parts = []
        if action.choices is not None and action.metavar is not None and not isinstance(
                action, argparse._SubParsersAction):
            parts.append("choices: " + ", ".join(str(c) for c in action.choices))
        default = shown_default(action)
        if default is not None and "default" not in text.lower():
            # %-escaped: argparse expands %(...)s in help strings.
            parts.append("default: " + default.replace("%", "%%"))
        return f"({'; '.join(parts)})" if parts else ""


def not_from_environment(action: argparse.Action) -> None:
    """Mark an option that no ``IMAGEAUDIT_<OPTION>`` variable may set
    (:mod:`imageaudit.cli.config`): one whose value changes what the command does, such as a
    catalogue URL that turns a local command into a remote one."""
    action.from_environment = False  # type: ignore[attr-defined]


def epilog(exit_codes: Mapping[int, str] = EXIT_CODES, examples: Sequence[str] = (),
           notes: str = "") -> str:
    """The end of a command's help: notes, exit codes (one per line) and examples."""
    lines = [notes.rstrip(), ""] if notes else []
    lines.append("exit codes:")
    # Meanings wrap to a terminal's width; examples do not, so that they paste whole.
    lines += [textwrap.fill(meaning, width=79, initial_indent=f"  {code}  ",
                            subsequent_indent=" " * (4 + len(str(code))))
              for code, meaning in sorted(exit_codes.items())]
    lines += ["", "examples:" if len(examples) > 1 else "example:"]
    lines += [f"  {example}" for example in examples]
    return "\n".join(lines) + "\n"


def add_command(subparsers: Any, name: str, help: str, *,
                examples: Sequence[str], exit_codes: Mapping[int, str] = EXIT_CODES,
                notes: str = "", description: str | None = None,
                **kwargs: Any) -> argparse.ArgumentParser:
    """``subparsers.add_parser`` with the shared formatter, the help as the description (unless
    one is given) and an epilog of exit codes and examples."""
    text = description or _sentence(help)
    if "\n" not in text:
        # Kept as written (the epilog's layout needs that), so wrapped here.
        text = textwrap.fill(text, width=79)
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help, description=text,
        epilog=epilog(exit_codes, examples, notes), formatter_class=HelpFormatter, **kwargs)
    return parser


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


class DeprecatedOption(argparse.Action):
    """An old spelling of an option: stores into the new option's ``dest`` and says once, on
    stderr, which spelling replaces it. Hidden from ``--help``."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, replacement: str,
                 **kwargs: Any) -> None:
        self.replacement = replacement
        kwargs.setdefault("help", argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if values is None:
            return
        warn_deprecated(option_string or self.dest, self.replacement)
        setattr(namespace, self.dest, values)


def warn_deprecated(old: str, new: str) -> None:
    """The one-line warning an old spelling gets."""
    print(f"imageaudit: warning: {old} is deprecated; use {new}", file=sys.stderr)


def add_deprecated(parser: argparse.ArgumentParser, old: str | Iterable[str], dest: str,
                   replacement: str, **kwargs: Any) -> None:
    """Accept ``old`` (an option string or several) as a hidden alias of ``replacement``."""
    names = [old] if isinstance(old, str) else list(old)
    parser.add_argument(*names, dest=dest, action=DeprecatedOption, replacement=replacement,
                        default=argparse.SUPPRESS, **kwargs)


def catalogue_from_env(value: str | None) -> str | None:
    """``--catalogue`` when given, else ``$IMAGEAUDIT_CATALOGUE`` (None when neither is)."""
    return value or os.environ.get(CATALOGUE_ENV) or None


__all__ = [
    "CATALOGUE_ENV",
    "EXIT_CODES",
    "DeprecatedOption",
    "HelpFormatter",
    "add_command",
    "add_deprecated",
    "catalogue_from_env",
    "epilog",
    "format_default",
    "shown_default",
    "warn_deprecated",
]
