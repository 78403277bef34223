"""What the catalogue's command modules share (``cli`` and ``campaign_cli``): the local
operator, opening the database, calling a running catalogue, choosing between the two."""

from __future__ import annotations

import argparse
import getpass
import json
from typing import TYPE_CHECKING, Any

from integrations.appdb import API_PREFIX

if TYPE_CHECKING:
    from integrations.appdb.catalogue import Catalogue, Principal

FETCH_TIMEOUT = 60


def _local() -> Principal:
    from integrations.appdb.catalogue import Principal

    return Principal(f"cli:{getpass.getuser()}", "admin")


def _open(url: str) -> Catalogue:
    from integrations.appdb.server import open_catalogue

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
    if args.url and not args.token:
        raise SystemExit("imageaudit: error: --url needs --token")
    return bool(args.url)


__all__ = ["FETCH_TIMEOUT", "_local", "_open", "_remote", "_target"]
