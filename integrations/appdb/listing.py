"""The listing rule: whether an image's current version goes into its VO's image list, and, when
it does not, why (the reason the catalogue gives with every image it withdrew, so that a cloud
site knows what to contain and the security team reads why).

One rule answers both questions, so the reason and the listing can never disagree.
"""

from __future__ import annotations

from datetime import datetime

from integrations.appdb.schemas import format_time

# The one reason that is not a withdrawal: a version never audited is not listed yet (a cloud
# site's agent leaves its copies alone). Reasons are joined with REASONS_SEPARATOR.
NEVER_AUDITED = "it has no report"
REASONS_SEPARATOR = "; "


def meets(level: str, levels: list[str], minimum: str) -> bool:
    """True when ``level`` is at or above ``minimum`` in ``levels`` (ordered lowest first)."""
    if minimum == "none":
        return True
    if level == "none" or level not in levels or minimum not in levels:
        return False
    return levels.index(level) >= levels.index(minimum)


def unlisted_reasons(*, suspended: bool, level: str | None, levels: list[str],
                     expires: datetime | None, minimum: str, now: datetime,
                     suspension_reason: str | None = None, vo: str | None = None,
                     report_expired: datetime | None = None) -> list[str]:
    """Why an image's current version is not listed, one sentence per reason (empty: listed).

    ``level`` is None when the version has no unexpired report; ``report_expired`` is then when
    its last report expired (None: it never had one). ``expires`` is the version's own expiry
    (the image list entry's), ``minimum`` the VO's minimum level.
    """
    reasons = []
    if suspended:
        reasons.append(f"suspended: {suspension_reason}" if suspension_reason else "suspended")
    if expires is not None and expires <= now:
        reasons.append(f"its image list entry expired at {format_time(expires)}")
    whose = f"VO {vo}'s" if vo else "the VO's"
    if level is None:
        reasons.append(f"its certification expired at {format_time(report_expired)}"
                       if report_expired is not None else NEVER_AUDITED)
    elif level == "none" and minimum != "none":
        reasons.append(f"its report grants no level ({whose} minimum is {minimum})")
    elif not meets(level, levels, minimum):
        reasons.append(f"level {level} does not reach {whose} minimum {minimum}")
    return reasons


def listed_now(*, suspended: bool, level: str | None, levels: list[str],
               expires: datetime | None, minimum: str, now: datetime) -> bool:
    """The listing rule for an image's current version: not suspended, an unexpired report
    (``level`` None when there is none), the version itself not expired, and the report's
    level at or above the VO's ``minimum``."""
    return not unlisted_reasons(suspended=suspended, level=level, levels=levels,
                                expires=expires, minimum=minimum, now=now)


# An image's state on the catalogue's page, from the listing rule's own inputs: what an operator
# needs to tell apart (an image nobody audited yet is not an image that failed).
SUSPENDED = "suspended"
LISTED = "listed"
NEVER_AUDITED_STATE = "never-audited"
CERTIFICATION_EXPIRED = "certification-expired"
INCOMPLETE = "incomplete"  # the audit could not evaluate what the VO's minimum level needs
BELOW_MINIMUM = "below-minimum"
UNLISTED = "unlisted"  # none of the above (its image list entry expired)
STATES = (LISTED, SUSPENDED, BELOW_MINIMUM, INCOMPLETE, NEVER_AUDITED_STATE,
          CERTIFICATION_EXPIRED, UNLISTED)


def listing_state(*, listed: bool, suspended: bool, level: str | None,
                  report_expired: datetime | None, minimum_met: bool,
                  minimum_unevaluated: bool) -> str:
    """The image's state (one of :data:`STATES`); ``listed`` is the listing rule's answer.

    ``level`` is None when the version has no unexpired report (``report_expired``: when its
    last one expired, None when it never had one); ``minimum_met`` says whether that level
    reaches the VO's minimum; ``minimum_unevaluated`` that every rule blocking the minimum
    could not be evaluated (ERROR): the audit could not decide, it did not find a failure.
    """
    if suspended:
        return SUSPENDED
    if listed:
        return LISTED
    if level is None:
        return NEVER_AUDITED_STATE if report_expired is None else CERTIFICATION_EXPIRED
    if not minimum_met:
        return INCOMPLETE if minimum_unevaluated else BELOW_MINIMUM
    return UNLISTED


def only_unevaluated(levels: object, minimum: str) -> tuple[str, ...]:
    """The rules that block the level ``minimum`` in the report's certification ``levels`` (its
    ``certification.levels`` list) when none of them was evaluated (all ERROR); else ``()``."""
    if not isinstance(levels, list):
        return ()
    for lv in levels:
        if isinstance(lv, dict) and lv.get("name") == minimum:
            blocking, unevaluated = lv.get("blocking"), lv.get("unevaluated")
            if (not lv.get("granted") and isinstance(blocking, list) and blocking
                    and isinstance(unevaluated, list) and set(blocking) <= set(unevaluated)):
                return tuple(str(rule) for rule in blocking)
            return ()
    return ()
