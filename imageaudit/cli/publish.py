"""Command line of the publisher: ``imageaudit publish``, ``imageaudit outbox list|flush``,
``imageaudit keys generate``, and what ``imageaudit scan --publish --catalogue URL`` calls once
the reports are made. Reports are signed with the auditor's Ed25519 key (``--signing-key`` or
``$IMAGEAUDIT_SIGNING_KEY``), which the catalogue must have registered for the token's holder.

Exit codes follow :mod:`imageaudit.cli.main`: ``0`` every report is with the catalogue, ``1`` the
catalogue could not be reached (reports kept in the outbox, sent by the next publish or
``outbox flush``), ``2`` the catalogue refused a report for good (unknown image, wrong token,
invalid report) or a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from imageaudit.cli.catalogue_options import (
    add_catalogue_option,
    add_publish_flag,
    add_token_option,
    required_catalogue,
)
from imageaudit.errors import UsageError
from imageaudit.helptext import add_command

# The names the options' help texts show. The rest of the publisher (HTTP, signing, the
# results store) is imported by the commands that use it.
from imageaudit.publish import TOKEN_ENV
from imageaudit.signing import KEY_ENV

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from imageaudit.publish import PublishResult, RetryPolicy
    from imageaudit.store import ResultsStore

# A report is a few MB at most; refuse to load something far larger by mistake.
MAX_REPORT_BYTES = 256 * 1024 * 1024
EXIT_OK, EXIT_UNREACHABLE, EXIT_REFUSED = 0, 1, 2


class _HasToJson(Protocol):
    def to_json(self) -> dict[str, Any]: ...



def resolve_token(token: str | None) -> str | None:
    """``--token`` when given, else ``$IMAGEAUDIT_CATALOGUE_TOKEN`` (keeps it off argv)."""
    return token or os.environ.get(TOKEN_ENV) or None


def resolve_signing_key(path: str | Path | None) -> Ed25519PrivateKey:
    """The auditor's key from ``--signing-key`` or ``$IMAGEAUDIT_SIGNING_KEY``; a usage error
    when neither is given or the file is not an Ed25519 private key (the catalogue refuses
    unsigned reports, so nothing is sent without one)."""
    from imageaudit.signing import SigningError, load_private_key

    chosen = path or os.environ.get(KEY_ENV)
    if not chosen:
        raise UsageError(f"no signing key: give --signing-key FILE or set {KEY_ENV} "
                         "(make one with: imageaudit keys generate FILE)")
    try:
        return load_private_key(chosen)
    except SigningError as exc:
        raise UsageError(str(exc)) from exc


def _open_store(url: str | None) -> ResultsStore:
    from imageaudit.store import ResultsStore, StoreError

    try:
        return ResultsStore.open(url)
    except StoreError as exc:
        raise UsageError(str(exc)) from exc


def _load_report(path: str) -> dict[str, Any]:
    file = Path(path)
    try:
        if file.stat().st_size > MAX_REPORT_BYTES:
            raise UsageError(f"{path}: larger than {MAX_REPORT_BYTES} bytes; not a report")
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise UsageError(f"{path}: not JSON ({exc})") from exc
    schema = data.get("schema") if isinstance(data, dict) else None
    if not isinstance(schema, str) or not schema.startswith("imageaudit-report/"):
        raise UsageError(f"{path}: not an imageaudit JSON report (scan --format json)")
    report: dict[str, Any] = data
    return report


def exit_code(results: Sequence[PublishResult]) -> int:
    """0 all delivered, 2 any refused for good, else 1 (something kept for later)."""
    from imageaudit.publish import Outcome

    if any(r.outcome is Outcome.FAILED for r in results):
        return EXIT_REFUSED
    if any(r.outcome is Outcome.QUEUED for r in results):
        return EXIT_UNREACHABLE
    return EXIT_OK


def _say(result: PublishResult, err: TextIO) -> None:
    # Human messages go to stderr (STYLE.md); stdout stays for machine output.
    print(result.message if result.ok else f"imageaudit: {result.message}", file=err)


def _warn_plain_http(url: str, err: TextIO) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "::1", "localhost"):
        print(f"imageaudit: warning: the token is sent unencrypted to {url}; use https",
              file=err)


def _policy(args: argparse.Namespace) -> RetryPolicy:
    from imageaudit.publish import RetryPolicy

    tries = getattr(args, "tries", None)
    backoff = getattr(args, "backoff", None)
    timeout = getattr(args, "timeout", None)
    default = RetryPolicy()
    if tries is not None and tries < 1:
        raise UsageError("--tries must be at least 1")
    return RetryPolicy(
        tries=tries if tries is not None else default.tries,
        first_delay=backoff if backoff is not None else default.first_delay,
        timeout=timeout if timeout is not None else default.timeout,
    )


def publish_reports(reports: Sequence[Mapping[str, Any] | _HasToJson], catalogue: str,
                    token: str | None, store_url: str | None = None, *,
                    policy: RetryPolicy | None = None, sources: Sequence[str | None] = (),
                    err: TextIO | None = None, signing_key: str | Path | None = None) -> int:
    """Publish finished reports (``Report`` objects or their JSON) to the catalogue, signed with
    ``signing_key`` (default ``$IMAGEAUDIT_SIGNING_KEY``); print one line per report on
    stderr; return the exit code. This is what ``scan --publish`` calls.

    ``sources`` (optional, per report) is what the results store records as the report's
    source; by default the report's own ``image.source``.
    """
    from imageaudit.publish import PublishError, catalogue_base, check_token, publish

    err = err or sys.stderr
    datas = [report if isinstance(report, Mapping) else report.to_json() for report in reports]
    refusals = unpublishable_reports(datas, sources)
    if refusals:
        # Refused before anything is stored or queued: the outbox holds only what may go.
        raise UsageError("; ".join(refusals))
    token = resolve_token(token)
    try:
        _warn_plain_http(catalogue_base(catalogue), err)
        check_token(token)
    except PublishError as exc:
        raise UsageError(str(exc)) from exc
    key = resolve_signing_key(signing_key)
    results: list[PublishResult] = []
    with _open_store(store_url) as store:
        for i, data in enumerate(datas):
            source = sources[i] if i < len(sources) else None
            try:
                result = publish(data, catalogue, token, store, policy=policy, source=source,
                                 key=key)
            except PublishError as exc:
                raise UsageError(str(exc)) from exc
            for earlier in result.flushed:
                _say(earlier, err)
            _say(result, err)
            results.extend((*result.flushed, result))
    return exit_code(results)


def unpublishable_reports(reports: Sequence[Mapping[str, Any]],
                          sources: Sequence[str | None] = ()) -> list[str]:
    """``SOURCE: reason`` for each report no catalogue could take (a directory scan)."""
    from imageaudit.publish import report_source, unpublishable

    refusals = []
    for i, data in enumerate(reports):
        reason = unpublishable(data)
        if reason is not None:
            source = sources[i] if i < len(sources) else None
            refusals.append(f"{source or report_source(data)}: {reason}")
    return refusals


def refuse_unpublishable_inputs(specs: Sequence[str], input_kind: str) -> None:
    """Before ``scan --publish`` scans: a UsageError for an input that is a directory (a root
    filesystem), whose report no catalogue could take. Inputs that cannot be opened are left
    to the scan, which says why."""
    from imageaudit.openers import OpenError
    from imageaudit.openers.detect import detect_input
    from imageaudit.publish import DIRECTORY_REFUSAL

    refused = []
    for spec in specs:
        try:
            kind = detect_input(spec, input_kind)
        except OpenError:
            continue
        if kind == "directory":
            refused.append(f"--publish: {spec}: {DIRECTORY_REFUSAL}")
    if refused:
        raise UsageError("; ".join(refused))


def cmd_publish(args: argparse.Namespace) -> int:
    """``imageaudit publish REPORT.json... --catalogue URL``."""
    catalogue = required_catalogue(args, "publish")
    reports = [_load_report(path) for path in args.report]
    return publish_reports(reports, catalogue, args.token, args.store,
                           policy=_policy(args), signing_key=args.signing_key)


def _when(value: object) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if hasattr(value, "strftime") else "-"


def cmd_outbox_list(args: argparse.Namespace) -> int:
    """``imageaudit outbox list``: pending and failed entries (``--all``: sent ones too)."""
    from imageaudit.store import OutboxState

    states = None if args.all else (OutboxState.PENDING, OutboxState.FAILED)
    with _open_store(args.store) as store:
        entries = store.entries(states=states)
    if args.format == "json":
        rows = [
            {
                "report_id": e.report_id,
                "catalogue": e.catalogue_url,
                "state": e.state.value,
                "attempts": e.attempts,
                "last_error": e.last_error,
                "next_attempt": _when(e.next_attempt) if e.next_attempt else None,
                "sent_at": _when(e.sent_at) if e.sent_at else None,
            }
            for e in entries
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not entries:
        print("outbox empty" if args.all else "nothing pending or failed in the outbox")
        return EXIT_OK
    from imageaudit.report.table import write_table

    write_table(sys.stdout, ("Report", "State", "Catalogue", "Tries", "Sent / last error"), (
        (e.report_id[:12], e.state.value, e.catalogue_url, e.attempts,
         _when(e.sent_at) if e.state is OutboxState.SENT and e.sent_at else e.last_error or "")
        for e in entries))
    return EXIT_OK


def cmd_outbox_flush(args: argparse.Namespace) -> int:
    """``imageaudit outbox flush [--catalogue URL]``: send what is pending (one try each)."""
    from imageaudit.publish import ONE_TRY, PublishError, catalogue_base, flush_outbox
    from imageaudit.store import OutboxState, display_url

    token = resolve_token(args.token)
    key = resolve_signing_key(args.signing_key)
    with _open_store(args.store) as store:
        if args.catalogue:
            try:
                urls = [catalogue_base(args.catalogue)]
            except PublishError as exc:
                raise UsageError(str(exc)) from exc
        else:
            wanted = (OutboxState.PENDING, OutboxState.FAILED) if args.retry_failed else (
                OutboxState.PENDING,
            )
            urls = sorted({e.catalogue_url for e in store.entries(states=wanted)})
            if len(urls) > 1:
                raise UsageError(
                    "reports are queued for several catalogues ("
                    + ", ".join(urls)
                    + "); choose one with --catalogue (each has its own token)"
                )
        if args.retry_failed:
            for url in urls:
                store.retry_failed(url)
        results: list[PublishResult] = []
        for url in urls:
            try:
                results.extend(flush_outbox(store, url, token or "", policy=ONE_TRY, key=key))
            except PublishError as exc:
                raise UsageError(str(exc)) from exc
        for result in results:
            _say(result, sys.stderr)
        pending = store.count(OutboxState.PENDING)
        if not results:
            print("nothing to send" + (f" ({pending} pending)" if pending else ""),
                  file=sys.stderr)
        elif pending:
            print(f"{pending} report(s) still pending in {display_url(store.url)}",
                  file=sys.stderr)
    return exit_code(results)


def cmd_keys_generate(args: argparse.Namespace) -> int:
    """``imageaudit keys generate KEY_FILE``: a new Ed25519 pair; prints the key id."""
    from imageaudit.signing import SigningError, generate_keypair

    private = Path(args.key_file)
    public = Path(args.public) if args.public else private.with_name(private.name + ".pub")
    try:
        kid = generate_keypair(private, public)
    except SigningError as exc:
        raise UsageError(str(exc)) from exc
    print(kid)
    print(f"private key {private} (keep it secret), public key {public}: register it with "
          f"imageaudit catalogue auditor add NAME --public-key {public}", file=sys.stderr)
    return EXIT_OK


def _signing_key_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--signing-key", metavar="FILE",
        help=f"the auditor's Ed25519 private key that signs reports (default: ${KEY_ENV})",
    )


def _store_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store", metavar="URL",
        help="results database: sqlite:///FILE, postgresql://... or a file path "
        "(default: $XDG_DATA_HOME/imageaudit/results.db)",
    )


def _token_option(p: argparse.ArgumentParser) -> None:
    add_token_option(p, "catalogue bearer token with the auditor role")


PUBLISH_CODES = {
    0: "every report is with the catalogue",
    1: "the catalogue could not be reached (reports kept in the outbox)",
    2: "the catalogue refused a report for good, or a usage error",
}


def add_scan_arguments(parser: argparse.ArgumentParser) -> None:
    """``--publish``, ``--catalogue URL``, ``--token``, ``--signing-key``, ``--store`` for the
    scan and batch parsers."""
    add_publish_flag(parser, "publish each report to the --catalogue (through the outbox)")
    add_catalogue_option(parser, "catalogue base URL to --publish to")
    _token_option(parser)
    _signing_key_option(parser)
    _store_option(parser)


def add_parsers(subparsers: Any) -> None:
    """Add ``publish``, ``outbox`` and ``keys`` to the ``imageaudit`` sub-command parsers."""
    p = add_command(
        subparsers, "publish",
        "send JSON reports to a catalogue (kept in the outbox when it is down)",
        exit_codes=PUBLISH_CODES,
        examples=["imageaudit publish report.json --catalogue https://catalogue.example.org "
                  "--signing-key alice.key"])
    p.add_argument("report", nargs="+", metavar="REPORT.json")
    add_catalogue_option(p, "catalogue base URL")
    _token_option(p)
    _signing_key_option(p)
    _store_option(p)
    from imageaudit.publish import RetryPolicy

    policy = RetryPolicy()
    p.add_argument("--tries", type=int, default=policy.tries, help="attempts per report")
    p.add_argument("--backoff", type=float, default=policy.first_delay, metavar="SECONDS",
                   help="first wait between attempts, doubled each time")
    p.add_argument("--timeout", type=float, default=policy.timeout, metavar="SECONDS",
                   help="per request")
    p.set_defaults(func=cmd_publish)

    p = add_command(subparsers, "outbox", "reports waiting to be sent to a catalogue",
                    exit_codes=PUBLISH_CODES,
                    examples=["imageaudit outbox list", "imageaudit outbox flush"])
    osub = p.add_subparsers(dest="outbox_command", required=True)
    o = add_command(osub, "list", "pending and failed reports",
                    examples=["imageaudit outbox list --all --format json"])
    o.add_argument("--all", action="store_true", help="sent reports too")
    o.add_argument("--format", choices=["text", "json"], default="text")
    _store_option(o)
    o.set_defaults(func=cmd_outbox_list)
    o = add_command(osub, "flush", "send every pending report now", exit_codes=PUBLISH_CODES,
                    examples=["imageaudit outbox flush --catalogue "
                              "https://catalogue.example.org --retry-failed"])
    add_catalogue_option(o, "only this catalogue (needed when several have pending reports)",
                         env=False)
    o.add_argument("--retry-failed", action="store_true",
                   help="also resend reports the catalogue refused (after fixing the cause)")
    _token_option(o)
    _signing_key_option(o)
    _store_option(o)
    o.set_defaults(func=cmd_outbox_flush)

    p = add_command(subparsers, "keys", "the auditor's report-signing key",
                    examples=["imageaudit keys generate alice.key"])
    ksub = p.add_subparsers(dest="keys_command", required=True)
    k = add_command(ksub, "generate", "make an Ed25519 key pair (KEY_FILE and KEY_FILE.pub)",
                    examples=["imageaudit keys generate alice.key --public alice.pub"])
    k.add_argument("key_file", metavar="KEY_FILE", help="private key file to create (mode 0600)")
    k.add_argument("--public", metavar="FILE", help="public key file (default: KEY_FILE.pub)")
    k.set_defaults(func=cmd_keys_generate)


__all__ = [
    "add_parsers",
    "add_scan_arguments",
    "cmd_keys_generate",
    "cmd_outbox_flush",
    "cmd_outbox_list",
    "cmd_publish",
    "exit_code",
    "publish_reports",
    "refuse_unpublishable_inputs",
    "resolve_signing_key",
    "resolve_token",
    "unpublishable_reports",
]
