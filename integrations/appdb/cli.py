"""``imageaudit catalogue ...``: serve, import image lists, suspend, tokens, auditors' keys,
campaigns (``campaign_cli``).

Commands act on the database directly (``--db``, default ``$IMAGEAUDIT_CATALOGUE_DB`` or
``sqlite:///catalogue.db``) or, with ``--url`` and ``--token``, through a running catalogue.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from integrations.appdb import (
    AUTH_FAILURES,
    AUTH_WINDOW,
    DEFAULT_MIN_LEVEL,
    default_db,
)
from integrations.appdb.campaign_cli import add_campaign_parsers
from integrations.appdb.cli_common import FETCH_TIMEOUT, _local, _open, _remote, _target
from integrations.appdb.schemas import ROLES

if TYPE_CHECKING:
    pass

# Building the parser imports only the names above (the schemas for ROLES, the token roles,
# and the campaign commands' parser, which imports nothing more):
# the service, its database layer and the image-list reader are imported by the commands that
# use them, so that every other imageaudit command starts without them.
EXIT_REFUSED = 2


def _fail(message: str) -> int:
    print(f"imageaudit: error: {message}", file=sys.stderr)
    return EXIT_REFUSED


def _read_source(src: str) -> bytes:
    from imageaudit.httpclient import fetch_bytes
    from integrations.appdb.imagelist import MAX_LIST_BYTES

    if src.startswith(("http://", "https://")):
        return fetch_bytes(src, max_bytes=MAX_LIST_BYTES, timeout=FETCH_TIMEOUT, attempts=3)
    with Path(src).open("rb") as fh:
        return fh.read(MAX_LIST_BYTES + 1)


def cmd_serve(args: argparse.Namespace) -> int:
    from integrations.appdb.server import serve

    try:
        serve(args.db, host=args.host, port=args.port, sign_cert=args.sign_cert,
              sign_key=args.sign_key, ca_dir=args.ca_dir, base_url=args.base_url,
              min_level=args.min_level, levels_files=args.levels,
              auth_failures=args.auth_failures, auth_window=args.auth_window,
              feeds=args.feeds)
    except ValueError as exc:
        return _fail(str(exc))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from imageaudit.httpclient import FetchError
    from integrations.appdb.catalogue import CatalogueError
    from integrations.appdb.db import utcnow
    from integrations.appdb.imagelist import ImageListError, parse_imagelist

    try:
        data = _read_source(args.source)
        ca = Path(args.verify_with) if args.verify_with else None
        il = parse_imagelist(data, ca_dir=ca, now=utcnow())
    except FetchError as exc:
        return _fail(f"cannot read the image list: {exc}")
    except OSError as exc:
        return _fail(f"cannot read {args.source}: {exc.strerror or exc}")
    except ImageListError as exc:
        return _fail(f"image list refused: {exc}")
    if _target(args):
        status, doc = _remote(args.url, args.token, "POST", "/imagelists", data, "text/plain")
        if status != 201:
            return _fail(f"catalogue answered {status}: {doc.get('detail')}")
    else:
        try:
            doc = _open(args.db).import_imagelist(il, _local(), vo=args.vo).model_dump()
        except CatalogueError as exc:
            return _fail(exc.message)
    print(f"imported image list {doc['list_identifier']} "
          f"({'signed by ' + str(doc['signer']) if doc['signed'] else 'unsigned'}): "
          f"{len(doc['images'])} image(s)")
    return 0


def cmd_suspend(args: argparse.Namespace, lift: bool = False) -> int:
    from integrations.appdb.catalogue import CatalogueError

    if _target(args):
        body = None if lift else json.dumps({"reason": args.reason}).encode()
        status, doc = _remote(args.url, args.token, "DELETE" if lift else "POST",
                              f"/images/{args.image_id}/suspension", body)
        if status != 200:
            return _fail(f"catalogue answered {status}: {doc.get('detail')}")
    else:
        cat = _open(args.db)
        try:
            if lift:
                cat.unsuspend(args.image_id, _local())
            else:
                cat.suspend(args.image_id, args.reason, _local())
        except CatalogueError as exc:
            return _fail(exc.message)
    print(f"{args.image_id}: {'suspension lifted' if lift else 'suspended'}")
    return 0


def cmd_unsuspend(args: argparse.Namespace) -> int:
    return cmd_suspend(args, lift=True)


def cmd_token_create(args: argparse.Namespace) -> int:
    token = _open(args.db).create_token(args.name or args.role, args.role, _local())
    print(token)
    return 0


def cmd_auditor_add(args: argparse.Namespace) -> int:
    from imageaudit.signing import MAX_KEY_BYTES
    from integrations.appdb.catalogue import CatalogueError

    try:
        with Path(args.public_key).open("rb") as fh:
            pem = fh.read(MAX_KEY_BYTES)
    except OSError as exc:
        return _fail(f"cannot read {args.public_key}: {exc.strerror or exc}")
    try:
        kid = _open(args.db).add_auditor_key(args.name, pem, _local())
    except CatalogueError as exc:
        return _fail(exc.message)
    print(f"auditor {args.name}: key {kid} registered")
    return 0


def cmd_auditor_list(args: argparse.Namespace) -> int:
    keys = _open(args.db).auditor_keys()
    if args.format == "json":
        print(json.dumps([k.model_dump() for k in keys], indent=2))
        return 0
    if not keys:
        print("no auditor keys registered", file=sys.stderr)
        return 0
    from imageaudit.report.table import write_table

    write_table(sys.stdout, ("Auditor", "Key", "Added", "State"), (
        (k.auditor, k.key_id, k.created, "revoked" if k.revoked else "active") for k in keys))
    return 0


def cmd_auditor_revoke(args: argparse.Namespace) -> int:
    from integrations.appdb.catalogue import CatalogueError

    try:
        _open(args.db).revoke_auditor_key(args.key_id, _local())
    except CatalogueError as exc:
        return _fail(exc.message)
    print(f"key {args.key_id} revoked")
    return 0


def add_parsers(subparsers: Any) -> None:
    """Add ``catalogue`` and its subcommands to the imageaudit command line."""
    p = subparsers.add_parser("catalogue", help="the AppDB-like image catalogue service")
    sub = p.add_subparsers(dest="catalogue_command", required=True)

    def db_opt(q: argparse.ArgumentParser) -> None:
        q.add_argument("--db", default=default_db(), metavar="URL",
                       help="sqlite:///FILE or postgresql://... (default: %(default)s)")

    def remote_opts(q: argparse.ArgumentParser) -> None:
        db_opt(q)
        q.add_argument("--url", help="act through a running catalogue at URL instead of --db")
        q.add_argument("--token", help="bearer token for --url")

    s = sub.add_parser("serve", help="serve the catalogue (API, image lists, web page)")
    db_opt(s)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--sign-cert", type=Path,
                   help="PEM certificate to sign image lists with (sites' atrope reads only "
                        "signed lists)")
    s.add_argument("--sign-key", type=Path, help="PEM key of --sign-cert")
    s.add_argument("--ca-dir", type=Path,
                   help="CA directory verifying image lists posted to the API")
    s.add_argument("--base-url",
                   help="public URL of the catalogue, used in image lists "
                        "(default: http://HOST:PORT of the bind address)")
    s.add_argument("--min-level", default=DEFAULT_MIN_LEVEL,
                   help="level an image needs to be listed when its VO sets none")
    s.add_argument("--levels", type=Path, action="append", default=[], metavar="FILE",
                   help="a levels file reports may be certified under, besides the shipped "
                        "one (repeatable)")
    s.add_argument("--auth-failures", type=int, default=AUTH_FAILURES, metavar="N",
                   help="wrong tokens from one address before it gets 429 (default %(default)s)")
    s.add_argument("--auth-window", type=float, default=AUTH_WINDOW, metavar="SECONDS",
                   help="window for --auth-failures (default %(default)s)")
    s.add_argument("--feeds", type=Path, metavar="DIR",
                   help="feed snapshot (imageaudit feeds sync --osv) resolving the CVEs and OSV "
                        "ids of campaigns")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("import-imagelist", help="import a HEPiX image list (plain or signed)")
    s.add_argument("source", metavar="FILE_OR_URL")
    s.add_argument("--verify-with", metavar="CA_DIR", help="hashed CA directory (openssl rehash)")
    s.add_argument("--vo", help="VO of images without ad:vo")
    remote_opts(s)
    s.set_defaults(func=cmd_import)

    s = sub.add_parser("suspend", help="withdraw an image from every image list")
    s.add_argument("image_id")
    s.add_argument("--reason", required=True)
    remote_opts(s)
    s.set_defaults(func=cmd_suspend)

    s = sub.add_parser("unsuspend", help="lift an image's suspension")
    s.add_argument("image_id")
    remote_opts(s)
    s.set_defaults(func=cmd_unsuspend)

    t = sub.add_parser("token", help="manage API tokens")
    tsub = t.add_subparsers(dest="token_command", required=True)
    s = tsub.add_parser("create", help="create a token and print it (shown only once)")
    s.add_argument("--role", required=True, choices=ROLES)
    s.add_argument("--name", help="who holds it (default: the role)")
    db_opt(s)
    s.set_defaults(func=cmd_token_create)

    add_campaign_parsers(sub, remote_opts, db_opt)

    a = sub.add_parser("auditor", help="auditors' report-signing keys")
    asub = a.add_subparsers(dest="auditor_command", required=True)
    s = asub.add_parser("add", help="register an auditor's Ed25519 public key "
                                    "(imageaudit keys generate); NAME is the auditor token's name")
    s.add_argument("name", metavar="NAME")
    s.add_argument("--public-key", required=True, metavar="FILE", help="PEM or OpenSSH public key")
    db_opt(s)
    s.set_defaults(func=cmd_auditor_add)
    s = asub.add_parser("list", help="registered keys")
    s.add_argument("--format", choices=["text", "json"], default="text")
    db_opt(s)
    s.set_defaults(func=cmd_auditor_list)
    s = asub.add_parser("revoke", help="refuse reports signed with a key from now on")
    s.add_argument("key_id", metavar="KEY_ID")
    db_opt(s)
    s.set_defaults(func=cmd_auditor_revoke)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m integrations.appdb.cli``) until wired into imageaudit."""
    parser = argparse.ArgumentParser(prog="imageaudit")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
