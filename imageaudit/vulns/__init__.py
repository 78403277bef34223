"""Package judgement against distribution feeds: version order, update feeds, matching.

- :mod:`~imageaudit.vulns.versions`: dpkg/rpm/apk version comparison.
- :mod:`~imageaudit.vulns.sync`: HTTP cache and dated snapshot directories.
- :mod:`~imageaudit.vulns.feeds_debian`, ``feeds_rpm``, ``feeds_apk``: the update feeds.
- :mod:`~imageaudit.vulns.match`: :func:`~imageaudit.vulns.match.assess`, run by
  ``scan --feeds``; its result (:class:`~imageaudit.vulns.model.VulnerabilityFacts`) becomes
  ``facts.vulnerabilities``.
- :mod:`~imageaudit.vulns.security_suite`: the security channel of the image's release
  (``<release>-security``) as an advisory source.
- :mod:`~imageaudit.cli.feeds`: ``imageaudit feeds sync|show``.
"""

from __future__ import annotations

import os
from pathlib import Path


def default_feeds_dir() -> Path:
    """Where ``feeds sync`` writes and ``scan --feeds`` and campaigns read by default:
    ``$XDG_CACHE_HOME/imageaudit/feeds`` (``~/.cache/imageaudit/feeds``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "imageaudit" / "feeds"
