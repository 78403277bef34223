"""Which OSV ecosystem an image's release is, and which release an OSV ecosystem names.

Both sides reduce to one key ``(family, release)``: ``("debian", "12")`` for ``Debian:12`` and
for an image whose os-release says ``ID=debian VERSION_ID=12``. Ecosystems that apply only
with a subscription (``Ubuntu:Pro:...``, Red Hat EUS/AUS/E4S streams) get no key: their fixes
are not in the release's own update channel.

Specs: OSV schema "Affected package ecosystems" (Debian, Ubuntu, Alpine, Rocky Linux,
AlmaLinux, Red Hat, SUSE, openSUSE), os-release(5).
"""

from __future__ import annotations

import re
from typing import Any

from imageaudit.facts.os import os_value

EcosystemKey = tuple[str, str]

_SIMPLE = {"Debian": "debian", "Rocky Linux": "rocky", "AlmaLinux": "almalinux"}
_SUSE_PRODUCT = re.compile(r"^(?:SUSE )?Linux Enterprise .*\s(\d+)(?: SP(\d+))?(?:-[A-Za-z]+)?$")
_MAJOR = re.compile(r"^(\d+)")
_MAJOR_MINOR = re.compile(r"^(\d+)\.(\d+)")


def ecosystem_key(ecosystem: str) -> EcosystemKey | None:
    """The ``(family, release)`` an OSV ``affected[].package.ecosystem`` names, if supported."""
    family, sep, rest = ecosystem.partition(":")
    if not sep or not rest:
        return None
    if family in _SIMPLE:
        return (_SIMPLE[family], rest)
    if family == "Ubuntu":
        parts = rest.split(":")
        if parts[0] == "Pro" or not _MAJOR_MINOR.match(parts[0]):
            return None
        return ("ubuntu", parts[0])
    if family == "Alpine":
        return ("alpine", rest[1:]) if rest.startswith("v") else None
    if family == "Red Hat":
        parts = rest.split(":")
        if len(parts) >= 2 and parts[0] == "enterprise_linux" and parts[1].isdigit():
            return ("redhat", parts[1])
        return None
    if family == "SUSE":
        match = _SUSE_PRODUCT.match(rest)
        if not match:
            return None
        major, sp = match.groups()
        return ("suse", f"{major}.{sp}" if sp else major)
    if family == "openSUSE":
        return ("opensuse", rest.lower())
    return None


def image_ecosystem(os_facts: Any) -> EcosystemKey | None:
    """The ``(family, release)`` key of the image's release, None when OSV has no such one."""
    ident = os_value(os_facts, "id")
    version = os_value(os_facts, "version_id")
    if ident is None or version is None:
        return None
    ident = ident.lower()
    major = _MAJOR.match(version)
    major_minor = _MAJOR_MINOR.match(version)
    if ident == "debian" and major:
        return ("debian", major.group(1))
    if ident == "ubuntu" and major_minor:
        return ("ubuntu", major_minor.group(0))
    if ident == "alpine" and major_minor:
        return ("alpine", major_minor.group(0))
    if ident in ("rocky", "almalinux", "rhel") and major:
        return ("redhat" if ident == "rhel" else ident, major.group(1))
    if ident in ("sles", "sled", "sles_sap") and major:
        return ("suse", major_minor.group(0) if major_minor else major.group(1))
    if ident == "opensuse-leap":
        return ("opensuse", f"leap {version}")
    if ident == "opensuse-tumbleweed":
        return ("opensuse", "tumbleweed")
    return None


def osv_name(key: EcosystemKey) -> str:
    """An OSV ecosystem string for a key, one that :func:`ecosystem_key` reads back to it
    (``("debian", "12")`` -> ``Debian:12``): how inventories name a package's ecosystem."""
    family, release = key
    simple = {v: k for k, v in _SIMPLE.items()}
    if family in simple:
        return f"{simple[family]}:{release}"
    if family == "ubuntu":
        return f"Ubuntu:{release}"
    if family == "alpine":
        return f"Alpine:v{release}"
    if family == "redhat":
        return f"Red Hat:enterprise_linux:{release}"
    if family == "suse":
        major, _, sp = release.partition(".")
        return f"SUSE:Linux Enterprise Server {major}" + (f" SP{sp}" if sp else "")
    if family == "opensuse":
        return f"openSUSE:{release}"
    return f"{family}:{release}"


def describe_key(key: EcosystemKey) -> str:
    """A human name for a key (``Debian 12``), for messages."""
    names = {
        "debian": "Debian",
        "ubuntu": "Ubuntu",
        "alpine": "Alpine",
        "rocky": "Rocky Linux",
        "almalinux": "AlmaLinux",
        "redhat": "Red Hat Enterprise Linux",
        "suse": "SUSE Linux Enterprise",
        "opensuse": "openSUSE",
    }
    return f"{names.get(key[0], key[0])} {key[1]}"
