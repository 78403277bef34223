"""Records of what the update and advisory feeds say about an image's installed packages.

:func:`imageaudit.vulns.match.assess` builds a :class:`VulnerabilityFacts` from the image's
package facts and a feed snapshot directory; the pipeline attaches it as
``facts.vulnerabilities``. Advisory matching (OSV, trivy) and the end-of-life check add their
records to the same aggregate through :meth:`VulnerabilityFacts.with_advisories` and friends.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from imageaudit.model import Severity

# The advisory source that restates the security channel's pending updates
# (:mod:`imageaudit.vulns.security_suite`): no advisory of its own to annotate them with.
CHANNEL_SOURCE = "security"
FeedKind = Literal["debian", "ubuntu", "rpm", "apk", "osv", "trivy", "eol"]
MatchedBy = Literal["binary", "source"]


@dataclass(frozen=True, slots=True)
class FeedInfo:
    """One feed of the snapshot used for matching: where it came from and how it was checked.

    ``suite`` is the update channel (``bookworm-security``, ``el9-baseos``, ``v3.19/main``...);
    ``verified`` says whether the repository's signature/checksums were checked at sync time
    and ``verification`` how (``InRelease signed by ... ; Packages.xz SHA256``).
    """

    kind: FeedKind
    suite: str
    url: str
    fetched_at: str  # ISO 8601 UTC, when ``feeds sync`` downloaded or revalidated it
    verified: bool
    verification: str = ""
    package_count: int = 0


@dataclass(frozen=True, slots=True)
class PendingUpdate:
    """A newer build of an installed package that the distribution's update channel offers.

    ``matched_by`` is ``binary`` when the update feed lists the same binary package with a
    higher version, ``source`` when only the source package (and its version) is newer.
    ``security`` is True when the offering suite is a security channel. ``severity`` and
    ``advisories`` are filled when an advisory names the fixed version (else None / empty).
    """

    package: str
    arch: str | None
    manager: str
    installed_version: str
    available_version: str
    suite: str
    matched_by: MatchedBy
    security: bool
    source_name: str | None = None
    advisories: tuple[str, ...] = ()
    severity: Severity | None = None


@dataclass(frozen=True, slots=True)
class AdvisoryMatch:
    """An advisory (OSV record, trivy finding, DSA/USN/RHSA...) that affects an installed package.

    ``fixed_version`` is None when the advisory lists no fix yet. ``source`` says which matcher
    reported it (``osv``, ``trivy``); ``feed`` which database/file.
    """

    id: str
    package: str
    installed_version: str
    fixed_version: str | None
    severity: Severity | None
    source: str
    aliases: tuple[str, ...] = ()
    summary: str = ""
    cvss_score: float | None = None
    cvss_vector: str | None = None
    url: str | None = None
    source_name: str | None = None
    feed: str | None = None


@dataclass(frozen=True, slots=True)
class FeedProblem:
    """A feed that could not be used (missing for this release, unreadable, bad signature)."""

    feed: str
    message: str


@dataclass(frozen=True, slots=True)
class VulnerabilityFacts:
    """Installed packages matched against the user's feed snapshot.

    ``snapshot_date`` is the oldest ``fetched_at`` among the feeds used (ISO 8601 UTC) and
    ``snapshot_age_days`` its age when :func:`~imageaudit.vulns.match.assess` ran; None when no
    feed was usable. ``release`` is the feed release the image was matched to (``bookworm``,
    ``jammy``, ``el9``, ``v3.19``), None when the image's release has no feed in the snapshot.
    ``extra`` is a free-form place for later matchers (keep JSON-compatible values).
    """

    release: str | None
    feeds: tuple[FeedInfo, ...] = ()
    pending: tuple[PendingUpdate, ...] = ()
    advisories: tuple[AdvisoryMatch, ...] = ()
    problems: tuple[FeedProblem, ...] = ()
    snapshot_date: str | None = None
    snapshot_age_days: float | None = None
    sources: tuple[str, ...] = ()
    extra: tuple[tuple[str, Any], ...] = ()

    def pending_for(self, package: str) -> tuple[PendingUpdate, ...]:
        """The pending updates of one installed binary package."""
        return tuple(p for p in self.pending if p.package == package)

    def advisories_for(self, package: str) -> tuple[AdvisoryMatch, ...]:
        """The advisory matches of one installed binary package."""
        return tuple(a for a in self.advisories if a.package == package)

    def with_advisories(
        self, advisories: tuple[AdvisoryMatch, ...], source: str | None = None
    ) -> VulnerabilityFacts:
        """A copy with more advisory matches; pending updates gain the ids/severity of those
        advisories whose fixed version is the pending version or older (same package)."""
        merged = self.advisories + advisories
        pending = tuple(_annotate(p, merged) for p in self.pending)
        sources = self.sources + ((source,) if source and source not in self.sources else ())
        return dataclasses.replace(self, advisories=merged, pending=pending, sources=sources)


def _annotate(update: PendingUpdate, advisories: tuple[AdvisoryMatch, ...]) -> PendingUpdate:
    # Local import: versions imports nothing from here, but keep model import-light.
    from imageaudit.vulns.versions import compare

    ids: list[str] = list(update.advisories)
    severity = update.severity
    for adv in advisories:
        if (adv.package != update.package or adv.fixed_version is None
                or adv.source == CHANNEL_SOURCE):
            continue
        try:
            fixed_by_update = compare(update.manager, adv.fixed_version, update.available_version)
        except ValueError:
            continue
        if fixed_by_update > 0:
            continue
        if adv.id not in ids:
            ids.append(adv.id)
        if adv.severity is not None and (severity is None or adv.severity.rank > severity.rank):
            severity = adv.severity
    return dataclasses.replace(update, advisories=tuple(ids), severity=severity)
