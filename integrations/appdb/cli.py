"""``imageaudit catalogue ...``: serve, import image lists, suspend, tokens, auditors' keys,
campaigns (``campaign_cli``).

Commands act on the database directly (``--db``, default ``$IMAGEAUDIT_CATALOGUE_DB`` or
``sqlite:///$XDG_DATA_HOME/imageaudit/catalogue.db``) or, with ``--catalogue URL`` and
``--token``, through a running catalogue.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imageaudit.helptext import HelpFormatter, add_command
from integrations.appdb import AUTH_FAILURES, AUTH_WINDOW, DEFAULT_MIN_LEVEL, prepare_db
from integrations.appdb.campaign_cli import add_campaign_parsers
from integrations.appdb.cli_common import (
    FETCH_TIMEOUT,
    _local,
    _open,
    _remote,
    _target,
    add_db_option,
    add_remote_options,
)
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
    from imageaudit.store import display_url
    from integrations.appdb.server import serve

    prepare_db(args.db)
    print(f"imageaudit catalogue: database {display_url(args.db)}", file=sys.stderr)
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
        status, doc = _remote(args.catalogue, args.token, "POST", "/imagelists", data,
                              "text/plain")
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
        status, doc = _remote(args.catalogue, args.token, "DELETE" if lift else "POST",
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


CATALOGUE_CODES = {0: "done", 1: "internal failure",
                   2: "usage error, or the catalogue refused (the reason is printed)"}
SERVER = "https://catalogue.example.org"


def add_parsers(subparsers: Any) -> None:
    """Add ``catalogue`` and its subcommands to the imageaudit command line."""
    p = add_command(subparsers, "catalogue", "the AppDB-like image catalogue service",
                    exit_codes=CATALOGUE_CODES,
                    examples=["imageaudit catalogue serve --base-url " + SERVER,
                              "imageaudit catalogue suspend IMAGE_ID --reason 'default password' "
                              f"--catalogue {SERVER}"])
    sub = p.add_subparsers(dest="catalogue_command", required=True)

    s = add_command(sub, "serve", "serve the catalogue (API, image lists, web page)",
                    exit_codes={0: "stopped", 1: "internal failure",
                                2: "usage or configuration error"},
                    examples=["imageaudit catalogue serve --port 8080 --base-url " + SERVER,
                              "imageaudit catalogue serve --db postgresql://cat@dbhost/catalogue"])
    add_db_option(s)
    s.add_argument("--host", default="127.0.0.1", help="address to listen on")
    s.add_argument("--port", type=int, default=8080, help="port to listen on")
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
                   help="window for --auth-failures (default %(default)g)")
    s.add_argument("--feeds", type=Path, metavar="DIR",
                   help="feed snapshot (imageaudit feeds sync --osv) resolving the CVEs and OSV "
                        "ids of campaigns")
    s.set_defaults(func=cmd_serve)

    s = add_command(sub, "import-imagelist", "import a HEPiX image list (plain or signed)",
                    exit_codes=CATALOGUE_CODES,
                    examples=["imageaudit catalogue import-imagelist biomed.list --vo biomed",
                              "imageaudit catalogue import-imagelist https://host/signed.list "
                              "--verify-with /etc/grid-security/certificates"])
    s.add_argument("source", metavar="FILE_OR_URL", help="the image list")
    s.add_argument("--verify-with", metavar="CA_DIR", help="hashed CA directory (openssl rehash)")
    s.add_argument("--vo", help="VO of images without ad:vo")
    add_remote_options(s)
    s.set_defaults(func=cmd_import)

    s = add_command(sub, "suspend", "withdraw an image from every image list",
                    exit_codes=CATALOGUE_CODES,
                    examples=["imageaudit catalogue suspend IMAGE_ID --reason 'default password'"])
    s.add_argument("image_id", help="the catalogue's image id")
    s.add_argument("--reason", required=True, help="why, recorded with the suspension")
    add_remote_options(s)
    s.set_defaults(func=cmd_suspend)

    s = add_command(sub, "unsuspend", "lift an image's suspension", exit_codes=CATALOGUE_CODES,
                    examples=["imageaudit catalogue unsuspend IMAGE_ID"])
    s.add_argument("image_id", help="the catalogue's image id")
    add_remote_options(s)
    s.set_defaults(func=cmd_unsuspend)

    t = add_command(sub, "token", "manage API tokens",
                    examples=["imageaudit catalogue token create --role auditor --name alice"])
    tsub = t.add_subparsers(dest="token_command", required=True)
    s = add_command(tsub, "create", "create a token and print it (shown only once)",
                    examples=["imageaudit catalogue token create --role operator"])
    s.add_argument("--role", required=True, choices=ROLES, help="what the token may do")
    s.add_argument("--name", help="who holds it (default: the role)")
    add_db_option(s)
    s.set_defaults(func=cmd_token_create)

    add_campaign_parsers(sub, add_remote_options, add_db_option)

    a = add_command(sub, "auditor", "auditors' report-signing keys", exit_codes=CATALOGUE_CODES,
                    examples=["imageaudit catalogue auditor list"])
    asub = a.add_subparsers(dest="auditor_command", required=True)
    s = add_command(asub, "add", "register an auditor's Ed25519 public key "
                                 "(imageaudit keys generate); NAME is the auditor token's name",
                    exit_codes=CATALOGUE_CODES,
                    examples=["imageaudit catalogue auditor add alice --public-key alice.key.pub"])
    s.add_argument("name", metavar="NAME", help="the auditor token's name")
    s.add_argument("--public-key", required=True, metavar="FILE", help="PEM or OpenSSH public key")
    add_db_option(s)
    s.set_defaults(func=cmd_auditor_add)
    s = add_command(asub, "list", "registered keys",
                    examples=["imageaudit catalogue auditor list --format json"])
    s.add_argument("--format", choices=["text", "json"], default="text")
    add_db_option(s)
    s.set_defaults(func=cmd_auditor_list)
    s = add_command(asub, "revoke", "refuse reports signed with a key from now on",
                    exit_codes=CATALOGUE_CODES,
                    examples=["imageaudit catalogue auditor revoke KEY_ID"])
    s.add_argument("key_id", metavar="KEY_ID", help="as auditor list shows it")
    add_db_option(s)
    s.set_defaults(func=cmd_auditor_revoke)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m integrations.appdb.cli``) until wired into imageaudit."""
    parser = argparse.ArgumentParser(prog="imageaudit", formatter_class=HelpFormatter)
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
