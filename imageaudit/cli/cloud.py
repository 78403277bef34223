"""``imageaudit cloud plan|contain|release|sync``: act on a cloud when an image is withdrawn.

Nothing is changed without ``contain``/``release``/``sync`` and a confirmation (``--yes``, or an
answer on a terminal); nothing is ever deleted. Exit codes: ``0`` every step is done (or was
already), ``1`` a step failed or was not taken (the action log says why), ``2`` a usage error,
a refusal or an unconfirmed change.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from imageaudit.cli.catalogue_options import (
    add_catalogue_option,
    add_publish_flag,
    add_token_option,
    publish_catalogue,
    required_catalogue,
)
from imageaudit.errors import UsageError
from imageaudit.helptext import add_command

if TYPE_CHECKING:
    from imageaudit.cloud.model import ContainOptions, Found, ImageQuery, Record, Target
    from imageaudit.cloud.provider import Provider

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2

EXAMPLES = [
    "imageaudit cloud plan --cloud mysite 3fa85f64-5717-4562-b3fc-2c963f66afa6 "
    "--catalogue https://catalogue.example.org",
    'imageaudit cloud contain --cloud mysite IMAGE --incident EGI-2026-12 '
    '--reason "default root password" --yes',
    "imageaudit cloud release --cloud mysite --incident EGI-2026-12 --yes",
    "imageaudit cloud sync --cloud aws:incident@eu-west-1 --catalogue https://catalogue.example.org",
]
EXIT_CODES = {
    EXIT_OK: "every step done or already in effect (or only planned)",
    EXIT_FAILED: "a step failed or was not taken (the reasons are printed and in the action "
                 "log), or the catalogue could not be told",
    EXIT_REFUSED: "usage errors, refusals, and changes not confirmed (no terminal and no --yes)",
}


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub, "cloud", "find an image's copies and instances on a cloud and contain them",
        exit_codes=EXIT_CODES, examples=EXAMPLES,
        description="Find every copy of a withdrawn image on an OpenStack or AWS cloud and the "
                    "instances started from it; contain them as the incident procedure asks "
                    "(image deactivated/disabled; each instance snapshotted, then paused or "
                    "stopped, then locked), verifying each step by reading it back. Plans by "
                    "default; never deletes.")
    csub = p.add_subparsers(dest="cloud_command", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--cloud", required=True, metavar="NAME",
                       help="a clouds.yaml entry (OpenStack; $OS_CLIENT_CONFIG_FILE or the usual "
                            "places), or aws:PROFILE@REGION (aws:@REGION: default credentials)")
        q.add_argument("--log", metavar="FILE",
                       help="action log, JSON Lines (default: "
                            "$XDG_STATE_HOME/imageaudit/cloud/CLOUD/INCIDENT.jsonl)")
        q.add_argument("--wait-timeout", type=float, default=600.0, metavar="SECONDS",
                       help="longest wait for a snapshot or a state change (default: "
                            "%(default)g)")

    def isolation(q: argparse.ArgumentParser) -> None:
        g = q.add_mutually_exclusive_group()
        g.add_argument("--suspend", dest="instance_action", action="store_const",
                       const="suspend", help="suspend instances (memory to disk) instead of "
                                             "pausing them")
        g.add_argument("--stop", dest="instance_action", action="store_const", const="stop",
                       help="stop instances (memory lost) instead of pausing them")
        q.set_defaults(instance_action="pause")
        q.add_argument("--deregister", action="store_true",
                       help="AWS: also deregister the AMI after disabling it (NOT reversible)")

    def image_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("image", metavar="IMAGE",
                       help="a catalogue image id (with --catalogue) or an image file's SHA-512, "
                            "a Glance image id or name, or an AMI id")
        add_catalogue_option(q, "catalogue to resolve IMAGE in (its SHA-512 and identifier) "
                                "and to --publish to", env=False)

    def publishing(q: argparse.ArgumentParser) -> None:
        add_publish_flag(q, "send the action log to the --catalogue as the image's containment "
                            "record (needs an operator token)")
        add_token_option(q, "operator token for --publish")
        q.add_argument("--site", metavar="NAME",
                       help="this cloud's name in the catalogue (default: the clouds.yaml "
                            "entry, or aws-PROFILE-REGION)")

    q = add_command(csub, "plan", "print what contain would do; changes nothing",
                    exit_codes=EXIT_CODES, examples=EXAMPLES[:1])
    common(q)
    image_args(q)
    isolation(q)
    q.add_argument("--incident", default="unnamed", help="incident id the plan is judged for")
    q.set_defaults(func=cmd_plan)

    q = add_command(csub, "contain", "contain an image's copies and instances",
                    exit_codes=EXIT_CODES, examples=EXAMPLES[1:2])
    common(q)
    image_args(q)
    isolation(q)
    q.add_argument("--incident", required=True, help="incident id (tags, lock reason, log)")
    q.add_argument("--reason", required=True, help="why, in words (kept on every object)")
    q.add_argument("--yes", action="store_true", help="act without asking")
    publishing(q)
    q.set_defaults(func=cmd_contain)

    q = add_command(csub, "release", "undo what contain did for an incident (from its log)",
                    exit_codes=EXIT_CODES, examples=EXAMPLES[2:3])
    common(q)
    q.add_argument("--incident", required=True, help="incident id contain was given")
    add_catalogue_option(q, "catalogue to --publish to", env=False)
    q.add_argument("--yes", action="store_true", help="act without asking")
    publishing(q)
    q.set_defaults(func=cmd_release)

    q = add_command(
        csub, "sync", "contain on this cloud every image the catalogue has withdrawn",
        exit_codes=EXIT_CODES, examples=EXAMPLES[3:],
        description="The site agent: contains, on this cloud, every image the catalogue has "
                    "withdrawn (plan unless --yes), and reports to the catalogue which images the "
                    "site holds copies of and how many instances run from each. Run it from "
                    "cron or a systemd timer.")
    common(q)
    isolation(q)
    add_catalogue_option(q, "the catalogue whose withdrawn images are contained")
    q.add_argument("--vo", help="only this VO's images")
    q.add_argument("--site", metavar="NAME",
                   help="this cloud's name in the catalogue (default: the clouds.yaml entry, "
                        "or aws-PROFILE-REGION)")
    add_token_option(q, "operator token, to report holdings and containment")
    q.add_argument("--yes", action="store_true", help="act (default: print the plan)")
    q.set_defaults(func=cmd_sync)


# -- helpers ----------------------------------------------------------------------------------


def _target(args: argparse.Namespace) -> Target:
    from imageaudit.cloud.model import parse_target

    return parse_target(args.cloud)


def _connect(target: Target) -> Provider:
    from imageaudit.cloud.run import connect

    return connect(target)


def _query(args: argparse.Namespace) -> tuple[ImageQuery, str]:
    """IMAGE as a query, and the label the log and the catalogue know it by."""
    from imageaudit.cloud import catalogue
    from imageaudit.cloud.run import image_query

    if args.catalogue:
        from imageaudit.cloud.site_client import CatalogueCallError

        try:
            known = catalogue.lookup(args.catalogue, args.image)
        except CatalogueCallError as exc:
            raise UsageError(f"--catalogue: {exc}") from None
        if known is not None:
            return image_query(args.image, sha512=known.sha512,
                               identifiers=(known.image_id,)), known.image_id
    query = image_query(args.image)
    return query, query.sha512 or args.image


def _options(args: argparse.Namespace, incident: str, reason: str) -> ContainOptions:
    from imageaudit.cloud.model import ContainOptions, check_incident

    if not 0 < args.wait_timeout <= 86_400:
        raise UsageError("--wait-timeout: between 0 and 86400 seconds")
    return ContainOptions(incident=check_incident(incident), reason=reason,
                          instance_action=args.instance_action,
                          deregister=bool(getattr(args, "deregister", False)),
                          wait_timeout=args.wait_timeout)


def _log_path(args: argparse.Namespace, incident: str) -> Path:
    from imageaudit.cloud.actionlog import default_log

    return Path(args.log) if args.log else default_log(args.cloud, incident)


def _summary(found: Found, label: str, cloud: str) -> None:
    n_inst = sum(len(v) for v in found.instances.values())
    print(f"{cloud}: {len(found.images)} cop{'y' if len(found.images) == 1 else 'ies'} of "
          f"{label}, {n_inst} instance{'' if n_inst == 1 else 's'} started from "
          f"{'it' if len(found.images) == 1 else 'them'}")
    for note in found.notes:
        print(f"note: {note}", file=sys.stderr)


def _ask(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _exit(records: list[Record]) -> int:
    bad = [r for r in records if r.result in ("failed", "skipped")]
    if bad:
        print(f"{len(bad)} step{'' if len(bad) == 1 else 's'} failed or not taken: see the "
              "reasons above and in the action log", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _publishing(args: argparse.Namespace) -> tuple[str, str, str] | None:
    """(catalogue URL, token, site name) when ``--publish`` asks to send the containment
    record; checked before anything changes on the cloud. None without ``--publish``."""
    from imageaudit.cli.publish import resolve_token

    url = publish_catalogue(args)
    if url is None:
        return None
    token = resolve_token(args.token)
    if not token:
        raise UsageError("--publish needs --token or $IMAGEAUDIT_CATALOGUE_TOKEN")
    return url, token, _site(args)


def _publish(to: tuple[str, str, str] | None, image: str, records: list[Record]) -> int:
    from imageaudit.cloud import catalogue
    from imageaudit.cloud.site_client import CatalogueCallError

    if to is None or not records:
        return EXIT_OK
    url, token, site = to
    try:
        new, old = catalogue.send_records(url, token, site, image, records)
    except CatalogueCallError as exc:
        print(f"imageaudit: error: containment record not sent: {exc}; the action log keeps "
              "it: send it again with the same command", file=sys.stderr)
        return EXIT_FAILED
    print(f"containment record sent to {url}: {new} new, {old} already there")
    return EXIT_OK


# -- commands ---------------------------------------------------------------------------------


def cmd_plan(args: argparse.Namespace) -> int:
    from imageaudit.cloud.run import contain
    from imageaudit.cloud.steps import print_record

    target = _target(args)
    options = _options(args, args.incident, "plan")
    query, label = _query(args)
    provider = _connect(target)
    outcome = contain(provider, query, options, act=False, log=None,
                      image_label=label, echo=None)
    _summary(outcome.found, query.describe(), target.name)
    for r in outcome.records:
        print_record(r)
    if outcome.records:
        print("nothing was changed (plan); contain --yes takes these steps")
    return _exit(outcome.records)


def cmd_contain(args: argparse.Namespace) -> int:
    from imageaudit.cloud.actionlog import ActionLog
    from imageaudit.cloud.run import contain
    from imageaudit.cloud.steps import print_record

    target = _target(args)
    options = _options(args, args.incident, args.reason)
    publishing = _publishing(args)
    query, label = _query(args)
    if publishing and not (query.sha512 or query.identifiers):
        raise UsageError("--publish: the catalogue knows images by id or SHA-512; give IMAGE as "
                         "a SHA-512, or as a catalogue image id with --catalogue")
    provider = _connect(target)
    found = provider.find(query)
    _summary(found, query.describe(), target.name)
    if not found.images and not any(found.instances.values()):
        return EXIT_OK
    if not args.yes:
        plan = contain(provider, query, options, act=False, log=None,
                       image_label=label, found=found)
        for r in plan.records:
            print_record(r)
        if not any(r.result == "planned" for r in plan.records):
            print("nothing to do: every step is already taken")
            return _exit(plan.records)
        if not _ask(f"take these steps on {target.name}?"):
            print("nothing was changed: confirm on a terminal or give --yes", file=sys.stderr)
            return EXIT_REFUSED
    log = ActionLog(_log_path(args, options.incident))
    outcome = contain(provider, query, options, act=True, log=log,
                      image_label=label, found=found, echo=print_record)
    print(f"action log: {log.path}")
    sent = _publish(publishing, label, outcome.records)
    return _exit(outcome.records) or sent


def _site(args: argparse.Namespace) -> str:
    from imageaudit.cloud.model import CLOUD_NAME_RE, site_name

    site = args.site or site_name(_target(args))
    if not CLOUD_NAME_RE.match(site):
        raise UsageError(f"--site {site!r}: a site name is letters, digits, '.', '_', '-'")
    return site


def cmd_release(args: argparse.Namespace) -> int:
    from imageaudit.cloud.actionlog import ActionLog
    from imageaudit.cloud.model import check_incident
    from imageaudit.cloud.run import release
    from imageaudit.cloud.steps import print_record

    target = _target(args)
    incident = check_incident(args.incident)
    publishing = _publishing(args)
    log = ActionLog(_log_path(args, incident))
    if not log.path.exists():
        raise UsageError(f"no action log at {log.path}: release undoes what contain logged "
                         "(give --log FILE)")
    records = list(log.records())
    provider = _connect(target)
    if not args.yes:
        plan = release(provider, records, incident, act=False, log=None, echo=print_record)
        if not any(r.result == "planned" for r in plan):
            print("nothing to undo")
            return _exit(plan)
        if not _ask(f"take these steps on {target.name}?"):
            print("nothing was changed: confirm on a terminal or give --yes", file=sys.stderr)
            return EXIT_REFUSED
    done = release(provider, records, incident, act=True, log=log, echo=print_record)
    print(f"action log: {log.path}")
    sent = _publish(publishing, done[0].image, done) if done else EXIT_OK
    return _exit(done) or sent


def cmd_sync(args: argparse.Namespace) -> int:
    from imageaudit.cli.publish import resolve_token
    from imageaudit.cloud.site_client import CatalogueCallError
    from imageaudit.cloud.sync import sync

    target = _target(args)
    catalogue_url = required_catalogue(args, "cloud sync")
    token = resolve_token(args.token)
    provider = _connect(target)
    try:
        result = sync(provider, catalogue_url, act=args.yes, vo=args.vo,
                      site=_site(args), token=token,
                      log_for=lambda incident: _log_path(args, incident),
                      state=_log_path(args, "sync").parent,
                      instance_action=args.instance_action, wait_timeout=args.wait_timeout)
    except CatalogueCallError as exc:
        print(f"imageaudit: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_FAILED if result.failed else EXIT_OK
