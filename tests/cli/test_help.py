"""Every ``--help`` of the command line says its exit codes, gives an example, and shows each
option's default and choices."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from imageaudit.cli.main import build_parser
from imageaudit.helptext import shown_default


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("imageaudit",)
          ) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(" ".join(path), parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _walk(child, (*path, name))
    return found


PARSERS = _walk(build_parser())


def _action_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    formatter = parser._get_formatter()
    formatter.add_argument(action)
    return " ".join(formatter.format_help().split())


def test_every_command_is_walked() -> None:
    names = {name for name, _ in PARSERS}
    assert {"imageaudit scan", "imageaudit feeds sync", "imageaudit feeds show",
            "imageaudit catalogue serve", "imageaudit catalogue campaign notify",
            "imageaudit cloud contain", "imageaudit outbox flush",
            "imageaudit rules validate"} <= names


@pytest.mark.parametrize("name,parser", PARSERS, ids=[name for name, _ in PARSERS])
def test_help_has_exit_codes_and_an_example(name: str, parser: argparse.ArgumentParser) -> None:
    text = parser.format_help()
    assert "exit codes:" in text, name
    assert "\nexample:\n  imageaudit " in text or "\nexamples:\n  imageaudit " in text, name
    assert "  0  " in text and "  2  " in text, name


@pytest.mark.parametrize("name,parser", PARSERS, ids=[name for name, _ in PARSERS])
def test_help_shows_defaults_and_choices(name: str, parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:
            continue
        text = _action_help(parser, action)
        default = shown_default(action)
        if default is not None:
            assert default in text, f"{name} {action.option_strings}: {text!r}"
        if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
            for choice in action.choices:
                assert str(choice) in text, f"{name} {action.option_strings}: {text!r}"


def test_help_never_shows_none_or_false() -> None:
    for name, parser in PARSERS:
        text = parser.format_help()
        assert "default: None" not in text and "default: False" not in text, name


def test_scan_help_on_the_real_command_line() -> None:
    done = subprocess.run([sys.executable, "-m", "imageaudit", "scan", "--help"],
                          capture_output=True, text=True, check=True)
    assert "  3  an image is below --require or was not audited" in done.stdout
    assert "outputs:" in done.stdout
    assert "--expiry-days EXPIRY_DAYS" in done.stdout
    assert "(default: 30)" in done.stdout
    assert "imageaudit scan image.qcow2 --require standard" in done.stdout
