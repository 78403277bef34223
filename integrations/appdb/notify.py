"""Acting on a saved campaign: tell each endorser about their affected image versions, and
withdraw the affected images from the VO image lists.

``notify_campaign`` runs the campaign again (so the mail names what is affected now), groups the
hits by endorser e-mail and sends each endorser one message about the versions they were not
told about yet. The notification log (table ``notifications``: one row per campaign, address
and version) makes it idempotent: a row is written *before* the message goes out and marked sent
after, so a re-run never sends twice, a newly affected version gets its own message, and a run
interrupted between the two is reported rather than repeated. ``withdraw_campaign`` suspends,
like ``catalogue suspend`` and audited the same way, every image whose current version the
campaign finds: the image lists drop it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from integrations.appdb.campaigns import Hit, RunOutcome, run_campaign
from integrations.appdb.catalogue import Catalogue
from integrations.appdb.db import Campaign, Notification, utcnow
from integrations.appdb.mail import MailError, SmtpSettings, compose, send, valid_address
from integrations.appdb.principal import Principal


@dataclass
class NotifyOutcome:
    """What ``campaign notify`` did (or, dry, would do)."""

    run: RunOutcome
    messages: list[tuple[str, EmailMessage, tuple[Hit, ...]]] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    already: int = 0  # hits whose endorser was told before
    interrupted: int = 0  # hits of a run stopped between logging and sending: not repeated
    no_address: list[Hit] = field(default_factory=list)


def _about(run: RunOutcome) -> str:
    return run.result.query.describe()


def notify_campaign(cat: Catalogue, ref: str, who: Principal, *, settings: SmtpSettings | None,
                    deadline: date, catalogue_url: str | None, dry_run: bool,
                    feeds: Path | None = None) -> NotifyOutcome:
    """Tell each endorser, once, about their versions the campaign finds now.

    ``settings`` may be None only with ``dry_run``. A connection or login failure raises
    :class:`MailError` after the log rows of that attempt were removed, so that a later run
    sends them.
    """
    run = run_campaign(cat, ref, who, feeds=feeds)
    outcome = NotifyOutcome(run=run)
    with cat.sessions() as s:
        campaign_id = s.scalar(select(Campaign.id).where(Campaign.name == run.campaign.name))
        logged = {(n.endorser_email, n.version_id): n.sent_at is not None
                  for n in s.scalars(select(Notification)
                                     .where(Notification.campaign_id == campaign_id))}
    by_address: dict[str, list[Hit]] = defaultdict(list)
    for hit in run.result.hits:
        address = (hit.endorser_email or "").strip()
        if not valid_address(address):
            outcome.no_address.append(hit)
            continue
        seen = logged.get((address, hit.version_id))
        if seen is True:
            outcome.already += 1
        elif seen is False:
            outcome.interrupted += 1
        else:
            by_address[address].append(hit)
    sender = settings.sender if settings is not None else "imageaudit@localhost"
    for address, hits in sorted(by_address.items()):
        message = compose(sender=sender, to=address, name=hits[0].endorser_name,
                          campaign=run.campaign.name, about=_about(run),
                          hits=[h.to_json() for h in hits], deadline=deadline,
                          catalogue_url=catalogue_url)
        outcome.messages.append((address, message, tuple(hits)))
    if dry_run or not outcome.messages:
        return outcome
    if settings is None:
        raise MailError("no SMTP settings to send with")
    rows = _log(cat, campaign_id, outcome.messages)
    try:
        results = send(settings, [m for _, m, _ in outcome.messages])
    except MailError:
        _forget(cat, [row for ids in rows.values() for row in ids])
        raise
    with cat.session() as s:
        for (address, message, _hits), error in zip(outcome.messages, results, strict=True):
            if error is None:
                s.execute(update(Notification).where(Notification.id.in_(rows[address]))
                          .values(sent_at=utcnow(), message_id=str(message["Message-ID"])[:255]))
                outcome.sent.append(address)
            else:
                s.execute(delete(Notification).where(Notification.id.in_(rows[address])))
                outcome.refused.append((address, error))
        cat.audit(s, who, "campaign.notify", "campaign", run.campaign.name,
                  sent=len(outcome.sent), refused=len(outcome.refused))
    return outcome


def _log(cat: Catalogue, campaign_id: int | None,
         messages: list[tuple[str, EmailMessage, tuple[Hit, ...]]]) -> dict[str, list[int]]:
    """Write the log rows (not yet sent) before sending; their ids per address."""
    rows: dict[str, list[int]] = {}
    with cat.session() as s:
        for address, _message, hits in messages:
            ids = []
            for version_id in sorted({h.version_id for h in hits}):
                note = Notification(campaign_id=campaign_id, endorser_email=address,
                                    version_id=version_id)
                try:
                    with s.begin_nested():
                        s.add(note)
                        s.flush()
                except IntegrityError:
                    continue  # a concurrent notifier took it
                ids.append(note.id)
            rows[address] = ids
    return rows


def _forget(cat: Catalogue, ids: list[int]) -> None:
    with cat.session() as s:
        s.execute(delete(Notification).where(Notification.id.in_(ids)))


@dataclass
class WithdrawOutcome:
    run: RunOutcome
    suspended: list[str] = field(default_factory=list)  # image ids suspended now
    already: list[str] = field(default_factory=list)  # suspended before
    not_current: list[Hit] = field(default_factory=list)  # affected but no longer listed


def withdraw_campaign(cat: Catalogue, ref: str, who: Principal, *, reason: str, dry_run: bool,
                      feeds: Path | None = None) -> WithdrawOutcome:
    """Suspend every image whose current version the campaign finds (audited as ``catalogue
    suspend``); a version that is not its image's current one is listed nowhere already."""
    run = run_campaign(cat, ref, who, feeds=feeds)
    outcome = WithdrawOutcome(run=run)
    images: dict[str, Hit] = {}
    for hit in run.result.hits:
        if not hit.current:
            outcome.not_current.append(hit)
        else:
            images.setdefault(hit.image_id, hit)
    text = f"campaign {run.campaign.name}: {reason}"
    for image_id, hit in sorted(images.items()):
        if hit.suspended:
            outcome.already.append(image_id)
            continue
        if not dry_run:
            cat.suspend(image_id, text, who)
        outcome.suspended.append(image_id)
    return outcome


__all__ = ["NotifyOutcome", "WithdrawOutcome", "notify_campaign", "withdraw_campaign"]
