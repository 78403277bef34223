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
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url.rstrip("/") + API_PREFIX + path, data=body, method=method,
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=FETCH_TIMEOUT) as resp:
            return resp.status, json.loads(resp.read(limit) or b"null")
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read(1 << 20)).get("detail")
        except ValueError:
            detail = exc.reason
        return exc.code, {"detail": detail}


def _target(args: argparse.Namespace) -> bool:
    if args.url and not args.token:
        raise SystemExit("imageaudit: error: --url needs --token")
    return bool(args.url)


__all__ = ["FETCH_TIMEOUT", "_local", "_open", "_remote", "_target"]
