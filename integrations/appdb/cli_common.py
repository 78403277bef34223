"""What the catalogue's command modules share (``cli`` and ``campaign_cli``): the local
operator, opening the database, calling a running catalogue, choosing between the two."""

from __future__ import annotations

import argparse
import getpass
import json
import os
from typing import TYPE_CHECKING, Any

from imageaudit.errors import UsageError
from imageaudit.helptext import add_deprecated, not_from_environment
from imageaudit.publish import TOKEN_ENV
from integrations.appdb import API_PREFIX, DB_ENV, default_db, prepare_db

if TYPE_CHECKING:
    from integrations.appdb.catalogue import Catalogue, Principal

FETCH_TIMEOUT = 60


def _local() -> Principal:
    from integrations.appdb.catalogue import Principal

    return Principal(f"cli:{getpass.getuser()}", "admin")


def _open(url: str) -> Catalogue:
    from integrations.appdb.server import open_catalogue

    prepare_db(url)
    return open_catalogue(url)


def _remote(url: str, token: str, method: str, path: str, body: bytes | None,
            ctype: str = "application/json", limit: int = 1 << 20) -> tuple[int, Any]:
    """One call to the catalogue's API at ``url``: (HTTP status, the answer's JSON; for an
    error, ``{"detail": ...}``). No redirect is followed (it would replay the token); no
    answer at all ends the command with the reason."""
    from imageaudit.httpclient import exchange, shown

    target = url.rstrip("/") + API_PREFIX + path
    answer = exchange(target, method, token=token, body=body, content_type=ctype,
                      timeout=FETCH_TIMEOUT, max_bytes=limit)
    if answer.status is None:
        raise SystemExit(f"imageaudit: error: {shown(target)}: no answer ({answer.reason})")
    if 200 <= answer.status < 300:
        try:
            return answer.status, json.loads(answer.body or b"null")
        except ValueError:
            raise SystemExit(f"imageaudit: error: {shown(target)}: HTTP {answer.status} but "
                             "the answer is not JSON") from None
    return answer.status, {"detail": answer.detail or f"HTTP {answer.status} {answer.reason}"}


def _target(args: argparse.Namespace) -> bool:
    """True when the command goes through a running catalogue (``--catalogue URL``), whose
    token (``--token`` or ``$IMAGEAUDIT_CATALOGUE_TOKEN``) is then in ``args.token``."""
    if not args.catalogue:
        return False
    args.token = args.token or os.environ.get(TOKEN_ENV)
    if not args.token:
        raise UsageError(f"--catalogue needs --token or ${TOKEN_ENV}")
    return True


def add_db_option(parser: argparse.ArgumentParser) -> None:
    """``--db URL``: the catalogue's own database."""
    parser.add_argument("--db", default=default_db(), metavar="URL",
                        help=f"sqlite:///FILE or postgresql://... (default: ${DB_ENV}, else "
                             "%(default)s)")


def add_remote_options(parser: argparse.ArgumentParser) -> None:
    """``--db``, or ``--catalogue URL`` and ``--token`` to act through a running catalogue
    (``--url`` is the old spelling of ``--catalogue``)."""
    add_db_option(parser)
    not_from_environment(parser.add_argument(
        "--catalogue", metavar="URL", help="act through the running catalogue at URL instead of "
        "--db"))
    add_deprecated(parser, "--url", "catalogue", "--catalogue", metavar="URL")
    parser.add_argument("--token", metavar="TOKEN",
                        help=f"bearer token for --catalogue (default: ${TOKEN_ENV})")


__all__ = ["FETCH_TIMEOUT", "_local", "_open", "_remote", "_target", "add_db_option",
           "add_remote_options"]
