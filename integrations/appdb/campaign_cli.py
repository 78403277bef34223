"""``imageaudit catalogue campaign query|list|show|run``: the security team's searches.

Like the other catalogue commands they act on the database (``--db``) or, with
``--catalogue URL`` and ``--token`` (a reader's for queries, an operator's to save or run),
through a running catalogue. Building the parser imports nothing beyond argparse and the
shared help text; each command imports what it runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imageaudit.helptext import add_command, add_deprecated

if TYPE_CHECKING:
    from integrations.appdb.campaigns import CampaignResult, Hit, RunOutcome
    from integrations.appdb.schemas import CampaignQuery

EXIT_REFUSED = 2
CODES = {0: "done", 1: "internal failure",
         2: "usage error, or the catalogue refused (the reason is printed)"}
MAX_ANSWER = 256 * 1024 * 1024
MAX_IOC_FILE = 8 * 1024 * 1024


def _fail(message: str) -> int:
    print(f"imageaudit: error: {message}", file=sys.stderr)
    return EXIT_REFUSED


def _feeds(args: argparse.Namespace) -> Path:
    """``--feeds``, else the cache ``imageaudit feeds sync`` fills by default."""
    from imageaudit.vulns import default_feeds_dir

    return Path(args.feeds) if args.feeds else default_feeds_dir()


def _query(args: argparse.Namespace) -> CampaignQuery:
    """The query of the command line (ValueError, with pydantic's reasons, when invalid)."""
    from integrations.appdb.campaigns import read_indicator_file
    from integrations.appdb.schemas import CampaignQuery

    ioc = None
    if args.ioc:
        ioc, notes = read_indicator_file(Path(args.ioc), only_to_ids=args.only_to_ids)
        for note in notes:
            print(f"imageaudit: {note}", file=sys.stderr)
    return CampaignQuery(package=args.package, affected=args.affected, cve=args.cve,
                         osv_id=args.osv_id, endorser_dn=args.endorser_dn, ioc=ioc)


def _params(args: argparse.Namespace) -> str:
    pairs = [(k, getattr(args, k)) for k in ("package", "affected", "cve", "osv_id",
                                              "endorser_dn") if getattr(args, k)]
    if args.ioc and args.only_to_ids:
        pairs.append(("only_to_ids", "true"))
    return urllib.parse.urlencode(pairs)


def _call(args: argparse.Namespace, method: str, path: str, body: bytes | None = None,
          ctype: str = "application/json") -> tuple[int, Any]:
    from integrations.appdb.cli_common import _remote

    return _remote(args.catalogue, args.token, method, path, body, ctype, limit=MAX_ANSWER)


def _hit(doc: dict[str, Any]) -> Hit:
    """A hit as the API sent it."""
    from integrations.appdb.campaigns import Hit
    from integrations.appdb.schemas import parse_time
    from integrations.appdb.sites import SiteHolding

    held = tuple(SiteHolding(str(x["site"]), int(x["copies"]), int(x["instances"]),
                             parse_time(x["reported"])) for x in doc.get("sites") or ())
    return Hit(version_id=0, image_id=doc["image_id"], version=doc["version"],
               title=doc.get("title", ""), sha512=doc["sha512"], vos=tuple(doc["vos"]),
               endorser_dn=doc.get("endorser_dn"), endorser_name=doc.get("endorser_name"),
               endorser_email=doc.get("endorser_email"), level=doc["level"],
               listed=bool(doc["listed"]), current=bool(doc.get("current")),
               suspended=bool(doc.get("suspended")), matched=tuple(doc.get("matched") or ()),
               fix=doc.get("fix"), sites=held)


def _print(result: CampaignResult, fmt: str, *, hits: tuple[Hit, ...] | None = None,
           title: str | None = None) -> None:
    from dataclasses import replace

    from integrations.appdb.campaign_output import render_csv, render_json, render_table

    shown = result if hits is None else replace(result, hits=hits)
    if fmt == "json":
        sys.stdout.write(render_json(shown))
    elif fmt == "csv":
        sys.stdout.write(render_csv(shown))
    else:
        render_table(shown, sys.stdout, title=title)


def _print_run(outcome: RunOutcome, fmt: str) -> None:
    c = outcome.campaign
    if fmt == "json":
        doc = {"campaign": c.model_dump(), "affected": [h.to_json() for h in outcome.result.hits],
               "newly_affected": [h.to_json() for h in outcome.new]}
        print(json.dumps(doc, indent=1, ensure_ascii=False))
        return
    if fmt == "csv":
        _print(outcome.result, fmt, hits=outcome.new)
        return
    what = "affected (first run)" if outcome.first else "newly affected since the last run"
    _print(outcome.result, fmt, hits=outcome.new, title=f"campaign {c.name}: {what}")
    print(f"campaign {c.name}: {len(outcome.result.hits)} affected, {len(outcome.new)} new")


def cmd_query(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from integrations.appdb.cli_common import _local, _open, _target
    from integrations.appdb.principal import CatalogueError
    from integrations.appdb.schemas import error_sentence

    remote = _target(args)
    try:
        if remote and args.ioc and not args.save:
            # The catalogue reads the indicator file; the other filters go along as parameters.
            from integrations.appdb.schemas import CampaignQuery

            query = CampaignQuery.model_construct(**{k: getattr(args, k) for k in (
                "package", "affected", "cve", "osv_id", "endorser_dn")})
        else:
            query = _query(args)
    except ValidationError as exc:
        return _fail(error_sentence(exc.errors()))
    except CatalogueError as exc:
        return _fail(exc.message)
    if remote:
        return _remote_query(args, query)
    from integrations.appdb.campaigns import run_query, save_campaign

    cat = _open(args.db)
    try:
        if args.save:
            outcome = save_campaign(cat, args.save, query, _local(), feeds=_feeds(args))
            _print_run(outcome, args.format)
            return 0
        result: CampaignResult = run_query(cat, query, feeds=_feeds(args))
    except CatalogueError as exc:
        return _fail(exc.message)
    _print(result, args.format)
    return 0


def _remote_query(args: argparse.Namespace, query: CampaignQuery) -> int:
    from integrations.appdb.campaigns import CampaignResult, RunOutcome
    from integrations.appdb.schemas import CampaignInfo

    if args.save:
        body = json.dumps({"name": args.save,
                           "query": query.model_dump(exclude_none=True)}).encode()
        status, doc = _call(args, "POST", "/campaigns", body)
        if status != 201:
            return _fail(f"catalogue answered {status}: {doc.get('detail')}")
        hits = tuple(_hit(h) for h in doc["affected"])
        _print_run(RunOutcome(CampaignInfo.model_validate(doc["campaign"]),
                              CampaignResult(query, hits), tuple(_hit(h) for h in
                                                                  doc["newly_affected"]),
                              first=True), args.format)
        return 0
    if args.ioc:
        try:
            with Path(args.ioc).open("rb") as fh:
                data = fh.read(MAX_IOC_FILE + 1)
        except OSError as exc:
            return _fail(f"cannot read {args.ioc}: {exc.strerror or exc}")
        if len(data) > MAX_IOC_FILE:
            return _fail(f"{args.ioc} is larger than {MAX_IOC_FILE} bytes")
        params = _params(args)
        status, doc = _call(args, "POST", "/campaigns/ioc" + (f"?{params}" if params else ""),
                            data, "application/octet-stream")
    else:
        status, doc = _call(args, "GET", f"/campaigns?{_params(args)}")
    if status != 200:
        return _fail(f"catalogue answered {status}: {doc.get('detail')}")
    _print(CampaignResult(query, tuple(_hit(h) for h in doc)), args.format)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from integrations.appdb.cli_common import _open, _target
    from integrations.appdb.schemas import CampaignInfo, CampaignQuery

    if _target(args):
        status, doc = _call(args, "GET", "/campaigns/saved")
        if status != 200:
            return _fail(f"catalogue answered {status}: {doc.get('detail')}")
        found = [CampaignInfo.model_validate(c) for c in doc]
    else:
        from integrations.appdb.campaigns import campaigns

        found = campaigns(_open(args.db))
    if args.format == "json":
        print(json.dumps([c.model_dump() for c in found], indent=1, ensure_ascii=False))
        return 0
    for c in found:
        last = c.runs[-1] if c.runs else None
        ran = (f"last run {last.at}: {last.affected} affected, {last.newly_affected} new"
               if last else "never run")
        query = CampaignQuery.model_validate(c.query).describe()
        print(f"{c.name}  {query}  (saved {c.created} by {c.created_by}; {ran})")
    if not found:
        print("no saved campaigns", file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from integrations.appdb.cli_common import _open, _target
    from integrations.appdb.principal import CatalogueError
    from integrations.appdb.schemas import CampaignInfo, CampaignQuery

    if _target(args):
        status, doc = _call(args, "GET",
                            f"/campaigns/saved/{urllib.parse.quote(args.campaign, safe='')}")
        if status != 200:
            return _fail(f"catalogue answered {status}: {doc.get('detail')}")
        info = CampaignInfo.model_validate(doc)
    else:
        from integrations.appdb.campaigns import campaign

        try:
            info = campaign(_open(args.db), args.campaign)
        except CatalogueError as exc:
            return _fail(exc.message)
    if args.format == "json":
        print(json.dumps(info.model_dump(), indent=1, ensure_ascii=False))
        return 0
    print(f"campaign {info.name}: {CampaignQuery.model_validate(info.query).describe()}")
    print(f"saved {info.created} by {info.created_by}")
    for run in info.runs:
        print(f"  run {run.at} by {run.by}: {run.affected} affected, {run.newly_affected} new")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from integrations.appdb.campaigns import CampaignResult, RunOutcome
    from integrations.appdb.cli_common import _local, _open, _target
    from integrations.appdb.principal import CatalogueError
    from integrations.appdb.schemas import CampaignInfo, CampaignQuery

    if _target(args):
        name = urllib.parse.quote(args.campaign, safe="")
        status, doc = _call(args, "POST", f"/campaigns/saved/{name}/runs", b"{}")
        if status != 200:
            return _fail(f"catalogue answered {status}: {doc.get('detail')}")
        info = CampaignInfo.model_validate(doc["campaign"])
        query = CampaignQuery.model_validate(info.query)
        outcome = RunOutcome(info, CampaignResult(query, tuple(_hit(h) for h in doc["affected"])),
                             tuple(_hit(h) for h in doc["newly_affected"]),
                             first=len(info.runs) == 1)
    else:
        from integrations.appdb.campaigns import run_campaign

        try:
            outcome = run_campaign(_open(args.db), args.campaign, _local(), feeds=_feeds(args))
        except CatalogueError as exc:
            return _fail(exc.message)
    _print_run(outcome, args.format)
    return 0


def add_campaign_parsers(sub: Any, remote_opts: Any, db_opt: Any) -> None:
    """Add ``campaign`` and its subcommands under ``catalogue``."""
    c = add_command(sub, "campaign", "find the image versions a vulnerability or an "
                                     "indicator affects, and their endorsers",
                    exit_codes=CODES,
                    examples=["imageaudit catalogue campaign query --cve CVE-2024-6387 "
                              "--save regresshion"])
    csub = c.add_subparsers(dest="campaign_command", required=True)

    def fmt(q: argparse.ArgumentParser) -> None:
        q.add_argument("--format", choices=["table", "json", "csv"], default="table",
                       help="how the hits are printed")

    def feeds(q: argparse.ArgumentParser) -> None:
        q.add_argument("--feeds", metavar="DIR",
                       help="feed snapshot resolving --cve/--osv-id (imageaudit feeds sync "
                            "--osv; default: the cache feeds sync fills)")

    s = add_command(csub, "query", "image versions with a package, an advisory's packages, "
                                   "files matching indicators, or from an endorser "
                                   "(every filter given must hold)",
                    exit_codes=CODES,
                    examples=["imageaudit catalogue campaign query --package openssh-server "
                              "--affected '<< 1:9.2p1-2+deb12u3'",
                              "imageaudit catalogue campaign query --ioc event.json --catalogue "
                              "https://catalogue.example.org"])
    s.add_argument("--package", metavar="NAME", help="binary or source package name")
    s.add_argument("--affected", metavar="RANGE",
                   help="versions of --package, in its manager's order: '<< 3.0.15-1~deb12u1', "
                        "'>= 2.0, << 2.3' (operators << <= = >= >>)")
    s.add_argument("--cve", metavar="CVE-YYYY-N", help="packages an OSV record names for it")
    s.add_argument("--osv-id", metavar="ID", help="an OSV record's id (DSA-5514-1, …)")
    s.add_argument("--ioc", metavar="FILE_OR_DIR",
                   help="indicators of compromise (file hashes, names, paths): a MISP event, "
                        "a MISP feed directory or a CSV")
    s.add_argument("--only-to-ids", action="store_true",
                   help="with --ioc: only MISP attributes flagged for detection (to_ids)")
    s.add_argument("--endorser-dn", metavar="DN", help="versions this endorser endorsed")
    s.add_argument("--save", metavar="NAME", help="save the query as a campaign and record "
                                                  "this first run")
    feeds(s)
    fmt(s)
    remote_opts(s)
    s.set_defaults(func=cmd_query)

    s = add_command(csub, "list", "saved campaigns and their last run", exit_codes=CODES,
                    examples=["imageaudit catalogue campaign list --format json"])
    s.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    remote_opts(s)
    s.set_defaults(func=cmd_list)

    s = add_command(csub, "show", "a saved campaign's query and runs", exit_codes=CODES,
                    examples=["imageaudit catalogue campaign show regresshion"])
    s.add_argument("campaign", metavar="CAMPAIGN", help="its name (or id)")
    s.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    remote_opts(s)
    s.set_defaults(func=cmd_show)

    s = add_command(csub, "run", "run a saved campaign again; shows the image versions "
                                 "newly affected since its last run", exit_codes=CODES,
                    examples=["imageaudit catalogue campaign run regresshion --format csv"])
    s.add_argument("campaign", metavar="CAMPAIGN", help="its name (or id)")
    feeds(s)
    fmt(s)
    remote_opts(s)
    s.set_defaults(func=cmd_run)

    add_action_parsers(csub, db_opt)


def cmd_notify(args: argparse.Namespace) -> int:
    """``campaign notify CAMPAIGN``: one mail per endorser, never twice (local catalogue)."""
    from datetime import date, timedelta

    from integrations.appdb.cli_common import _local, _open
    from integrations.appdb.db import utcnow
    from integrations.appdb.mail import MailError, SmtpSettings
    from integrations.appdb.notify import notify_campaign
    from integrations.appdb.principal import CatalogueError

    deadline = (date.fromisoformat(args.deadline) if args.deadline
                else utcnow().date() + timedelta(days=args.days))
    try:
        settings = None if args.dry_run and not args.smtp_host else SmtpSettings.from_options(
            host=args.smtp_host, sender=args.mail_from, port=args.smtp_port,
            security=args.smtp_security, user=args.smtp_user,
            password_file=args.smtp_password_file)
        outcome = notify_campaign(_open(args.db), args.campaign, _local(), settings=settings,
                                  deadline=deadline, catalogue_url=args.catalogue_url,
                                  dry_run=args.dry_run, feeds=_feeds(args))
    except (CatalogueError, MailError) as exc:
        return _fail(getattr(exc, "message", None) or str(exc))
    if args.dry_run:
        for _address, message, _hits in outcome.messages:
            print(message.as_string())
    for address in outcome.sent:
        print(f"notified {address}", file=sys.stderr)
    for address, why in outcome.refused:
        print(f"not notified {address}: {why}", file=sys.stderr)
    for hit in outcome.no_address:
        print(f"no endorser e-mail for {hit.image_id} version {hit.version}", file=sys.stderr)
    if outcome.interrupted:
        print(f"{outcome.interrupted} notification(s) of an interrupted run were not sent "
              "again (they may have gone out)", file=sys.stderr)
    count = len(outcome.messages) if args.dry_run else len(outcome.sent)
    verb = "would send" if args.dry_run else "sent"
    print(f"campaign {args.campaign}: {verb} {count} message(s); {outcome.already} "
          "version(s) already notified", file=sys.stderr)
    return 1 if outcome.refused else 0


def cmd_withdraw(args: argparse.Namespace) -> int:
    """``campaign withdraw CAMPAIGN --reason``: suspend the affected images (local)."""
    from integrations.appdb.cli_common import _local, _open
    from integrations.appdb.notify import withdraw_campaign
    from integrations.appdb.principal import CatalogueError

    try:
        outcome = withdraw_campaign(_open(args.db), args.campaign, _local(), reason=args.reason,
                                    dry_run=args.dry_run, feeds=_feeds(args))
    except CatalogueError as exc:
        return _fail(exc.message)
    verb = "would suspend" if args.dry_run else "suspended"
    for image_id in outcome.suspended:
        print(f"{verb} {image_id}")
    for image_id in outcome.already:
        print(f"already suspended {image_id}")
    for hit in outcome.not_current:
        print(f"not listed anyway: {hit.image_id} version {hit.version} (not its current one)")
    return 0


def add_action_parsers(csub: Any, db_opt: Any) -> None:
    """``campaign notify`` and ``campaign withdraw`` (on the catalogue's own database)."""
    s = add_command(
        csub, "notify", "mail each endorser their affected image versions (never twice)",
        exit_codes={0: "every endorser with an address was notified (or --dry-run)",
                    1: "a mail server refused a message",
                    2: "usage error, or the catalogue refused"},
        examples=["imageaudit catalogue campaign notify regresshion --dry-run",
                  "imageaudit catalogue campaign notify regresshion --smtp-host smtp.example.org "
                  "--mail-from csirt@example.org --catalogue https://catalogue.example.org"],
        description="Runs the saved campaign again and mails each endorser one message listing "
                    "their affected image versions, what was found, the fix and the deadline. "
                    "A version an endorser was told about is not mailed again; newly affected "
                    "ones are. SMTP settings default to $IMAGEAUDIT_SMTP_HOST, _PORT, _SECURITY, "
                    "_USER, _PASSWORD_FILE and $IMAGEAUDIT_MAIL_FROM.")
    s.add_argument("campaign", metavar="CAMPAIGN", help="its name (or id)")
    s.add_argument("--dry-run", action="store_true", help="print the mails, send nothing")
    s.add_argument("--deadline", metavar="YYYY-MM-DD", help="date to act by")
    s.add_argument("--days", type=int, default=7,
                   help="deadline in days from today, without --deadline (default: 7, the EGI "
                        "deadline for a critical vulnerability)")
    s.add_argument("--catalogue", dest="catalogue_url", metavar="URL",
                   help="the catalogue named in the mail for the reports")
    add_deprecated(s, "--catalogue-url", "catalogue_url", "--catalogue", metavar="URL")
    s.add_argument("--smtp-host")
    s.add_argument("--smtp-port", type=int)
    s.add_argument("--smtp-security", choices=("starttls", "tls", "none"),
                   help="default: starttls")
    s.add_argument("--smtp-user")
    s.add_argument("--smtp-password-file", metavar="FILE")
    s.add_argument("--mail-from", metavar="ADDRESS")
    s.add_argument("--feeds", metavar="DIR", help="feed snapshot for --cve/--osv-id campaigns")
    db_opt(s)
    s.set_defaults(func=cmd_notify)

    s = add_command(csub, "withdraw", "suspend the images whose current version the "
                                      "campaign finds (they leave the VO image lists)",
                    exit_codes=CODES,
                    examples=["imageaudit catalogue campaign withdraw regresshion "
                              "--reason 'CVE-2024-6387' --dry-run"])
    s.add_argument("campaign", metavar="CAMPAIGN", help="its name (or id)")
    s.add_argument("--reason", required=True, help="recorded with each suspension")
    s.add_argument("--dry-run", action="store_true", help="say what would be suspended")
    s.add_argument("--feeds", metavar="DIR", help="feed snapshot for --cve/--osv-id campaigns")
    db_opt(s)
    s.set_defaults(func=cmd_withdraw)
