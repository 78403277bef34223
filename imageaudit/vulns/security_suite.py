"""The security channel of the image's release as an advisory source.

A distribution publishes a security fix as a new build in its security channel: Debian's
``<release>-security`` suite (security.debian.org; every upload there goes with a DSA or DLA),
Ubuntu's ``<release>-security`` pocket (USNs), an rpm repository of security errata given with
``feeds sync --rpm-security``. So an installed package older than the channel's build has a
security fix available, even when no advisory id is at hand; and an image whose packages are
all at or above the channel's builds has every published fix installed. The channel's index
was verified at sync time (signed ``InRelease`` and the ``SHA256`` of each ``Packages`` file).

Alpine publishes no separate security channel (fixes go to ``main``), so its advisories come
from OSV (``feeds sync --osv .../Alpine/all.zip``).

:func:`security_matcher` is listed in ``imageaudit.vulns.match.ADVISORY_MATCHERS``: it turns
the pending updates of the security channel into advisory matches of source ``security``, or
records why the snapshot cannot tell (:data:`SOURCE` problem naming the ``feeds sync`` to run).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from imageaudit.findings import code
from imageaudit.vulns.match import release_keys
from imageaudit.vulns.model import (
    CHANNEL_SOURCE,
    AdvisoryMatch,
    FeedProblem,
    PendingUpdate,
    VulnerabilityFacts,
)
from imageaudit.vulns.sync import Snapshot

SOURCE = CHANNEL_SOURCE
OSV_DUMP = "https://osv-vulnerabilities.storage.googleapis.com/{ecosystem}/all.zip"
_CHANNELS = "security_channels"
_PACKAGE_FORMATS = ("deb-packages", "rpm-primary", "apk-index")


def sync_hint(release_key: str | None) -> str:
    """The ``feeds sync`` command that brings the advisory source of ``release_key``
    (``debian:bookworm``, ``rpm:rocky-9``...) into a snapshot."""
    if release_key is None:
        return "run imageaudit feeds sync for the image's release, then scan --feeds DIR"
    kind, _sep, name = release_key.partition(":")
    if kind in ("debian", "ubuntu"):
        command = f"imageaudit feeds sync --{kind} {name}"
    elif kind == "rpm":
        command = (f"imageaudit feeds sync --rpm-security {name}=URL (a repository of the "
                   "release's security updates) or --osv with its OSV dump")
    elif kind == "alpine":
        command = f"imageaudit feeds sync --osv {OSV_DUMP.format(ecosystem='Alpine')}"
    else:
        command = "imageaudit feeds sync"
    return f"run {command}, then scan --feeds DIR"


def _match(update: PendingUpdate, installed: str) -> AdvisoryMatch:
    if update.matched_by == "source":
        offered = f"source {code(update.source_name)} {code(update.available_version)}"
    else:
        offered = code(update.available_version)
    return AdvisoryMatch(
        id=update.suite,
        package=update.package,
        installed_version=installed,
        fixed_version=update.available_version,
        severity=None,
        source=SOURCE,
        summary=f"{update.suite} has {offered}",  # a sentence part, as messages quote it
        source_name=update.source_name,
        feed=update.suite,
    )


def _installed_version(facts: Any, update: PendingUpdate) -> str:
    """The binary package's installed version (a source match carries the source version)."""
    packages = getattr(getattr(facts, "packages", None), "packages", ())
    for pkg in packages:
        if (pkg.name, pkg.manager, pkg.arch) == (update.package, update.manager, update.arch):
            return str(pkg.full_version)
    return update.installed_version


def _missing(facts: Any, snapshot: Snapshot, result: VulnerabilityFacts) -> str:
    keys = release_keys(getattr(facts, "os", None))
    if not keys:
        return ("the image names no release (no os-release ID and VERSION_ID), so no security "
                "channel applies")
    # rpm keys run from the point release (rocky-9.3) to the major one (rocky-9) that
    # repositories are named after.
    key = keys[-1] if keys[0].startswith("rpm:") else keys[0]
    if key.startswith("alpine:"):
        return f"Alpine has no separate security channel; {sync_hint(key)}"
    used = [f for f in snapshot.feeds if f.info in result.feeds]
    if used:
        key = used[0].release
        suites = ", ".join(f.info.suite for f in used)
        return (f"the feed snapshot {snapshot.directory} has no security channel of the "
                f"image's release {key} (only {suites}); {sync_hint(key)}")
    have = ", ".join(sorted({f.release for f in snapshot.feeds
                             if f.format in _PACKAGE_FORMATS})) or "none"
    return (f"the feed snapshot {snapshot.directory} has no security channel of the image's "
            f"release {key} (its releases: {have}); {sync_hint(key)}")


def security_matcher(facts: Any, snapshot: Snapshot,
                     result: VulnerabilityFacts) -> VulnerabilityFacts:
    """``result`` with one advisory match per pending update of the release's security channel,
    or with a :data:`SOURCE` problem when the snapshot has no such channel for the image."""
    channels = [f for f in snapshot.feeds if f.info in result.feeds and f.security
                and f.format in _PACKAGE_FORMATS]
    if not channels:
        problem = FeedProblem(SOURCE, _missing(facts, snapshot, result))
        return dataclasses.replace(result, problems=(*result.problems, problem))
    # Not with_advisories: these matches restate the pending updates, they must not annotate
    # them as if an advisory named the fix.
    matches = tuple(_match(u, _installed_version(facts, u)) for u in result.pending if u.security)
    sources = result.sources if SOURCE in result.sources else (*result.sources, SOURCE)
    extra = (*result.extra, (_CHANNELS, [f.info.suite for f in channels]))
    return dataclasses.replace(result, advisories=(*result.advisories, *matches), sources=sources,
                               extra=extra)


def security_channels(result: VulnerabilityFacts) -> list[str]:
    """The security channels (suite names) :func:`security_matcher` judged the image by."""
    return [str(s) for key, value in result.extra if key == _CHANNELS for s in value]
