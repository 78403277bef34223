"""The catalogue options every command spells the same way: ``--catalogue URL`` names the
catalogue, ``--publish`` (a flag) sends to it, ``--token`` authenticates.

``--publish URL``, the spelling before ``--catalogue`` existed, keeps working with a warning.
"""

from __future__ import annotations

import argparse
from typing import Any

from imageaudit.errors import UsageError
from imageaudit.helptext import (
    CATALOGUE_ENV,
    catalogue_from_env,
    not_from_environment,
    warn_deprecated,
)
from imageaudit.publish import TOKEN_ENV

_OLD_URL = "_publish_url"


class PublishFlag(argparse.Action):
    """``--publish`` as a flag; ``--publish URL`` (a value with ``://``) as the old spelling of
    ``--catalogue URL --publish``. Any other value is a mistake said plainly: it is most likely
    an image that argparse handed to ``--publish``."""

    flag_in_help = True

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs="?", const=True, default=False, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if isinstance(values, str):
            if "://" not in values:
                parser.error(f"{option_string} takes no value (the catalogue is --catalogue "
                             f"URL): put {values!r} before {option_string} or after --")
            warn_deprecated(f"{option_string} URL", f"--catalogue URL {option_string}")
            setattr(namespace, _OLD_URL, values)
        setattr(namespace, self.dest, True)


def add_catalogue_option(parser: argparse.ArgumentParser, help: str, *,
                         env: bool = True) -> None:
    """``--catalogue URL``; with ``env``, ``$IMAGEAUDIT_CATALOGUE`` stands in when it is not
    given (where the command needs a catalogue, never where naming one changes what it does)."""
    if env:
        help = f"{help} (default: ${CATALOGUE_ENV})"
    action = parser.add_argument("--catalogue", metavar="URL", help=help)
    if not env:
        not_from_environment(action)


def add_publish_flag(parser: argparse.ArgumentParser, help: str) -> None:
    """``--publish``: send to the ``--catalogue``."""
    parser.add_argument("--publish", action=PublishFlag, help=help)


def add_token_option(parser: argparse.ArgumentParser, help: str) -> None:
    """``--token``, the catalogue bearer token (default ``$IMAGEAUDIT_CATALOGUE_TOKEN``)."""
    parser.add_argument("--token", metavar="TOKEN", help=f"{help} (default: ${TOKEN_ENV})")


def catalogue_url(args: argparse.Namespace) -> str | None:
    """The catalogue the command names: ``--catalogue``, the old ``--publish URL``, else
    ``$IMAGEAUDIT_CATALOGUE``."""
    given = getattr(args, "catalogue", None) or getattr(args, _OLD_URL, None)
    return catalogue_from_env(given)


def required_catalogue(args: argparse.Namespace, why: str) -> str:
    """:func:`catalogue_url`, or a usage error saying ``why`` a catalogue is needed."""
    url = catalogue_url(args)
    if not url:
        raise UsageError(f"{why} needs --catalogue URL or ${CATALOGUE_ENV}")
    return url


def publish_catalogue(args: argparse.Namespace) -> str | None:
    """The catalogue to publish to when ``--publish`` is given, None when it is not."""
    if not getattr(args, "publish", False):
        return None
    return required_catalogue(args, "--publish")


__all__ = [
    "TOKEN_ENV",
    "PublishFlag",
    "add_catalogue_option",
    "add_publish_flag",
    "add_token_option",
    "catalogue_url",
    "publish_catalogue",
    "required_catalogue",
]
