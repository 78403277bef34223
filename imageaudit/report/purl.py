"""Package URLs (purl) of installed packages, in the shape trivy writes:
``pkg:deb/debian/login@4.13-1?arch=amd64&distro=debian-12&epoch=1`` (the version without the
epoch, the epoch as a qualifier). Used by the SBOM and by a report's inventory.

Spec: package-url specification (types ``deb``, ``rpm``, ``apk``).
"""

from __future__ import annotations

from typing import Any

from packageurl import PackageURL

from imageaudit.facts.os import os_value
from imageaudit.facts.packages.model import InstalledPackage

_PURL_TYPE = {"dpkg": "deb", "rpm": "rpm", "apk": "apk"}
# os-release IDs whose purl namespace differs from the ID (purl-spec "rpm" namespaces).
_NAMESPACE = {"rhel": "redhat", "ol": "oracle", "opensuse-leap": "opensuse",
              "opensuse-tumbleweed": "opensuse", "sles": "suse", "sled": "suse"}  # fmt: skip
_DEFAULT_NAMESPACE = {"dpkg": "debian", "rpm": "rpm", "apk": "alpine"}


def purl_for(pkg: InstalledPackage, os_facts: Any = None) -> PackageURL:
    """The package URL of one installed package on the image's release."""
    ident = (os_value(os_facts, "id") or "").lower()
    version_id = os_value(os_facts, "version_id")
    namespace = _NAMESPACE.get(ident, ident) or _DEFAULT_NAMESPACE[pkg.manager]
    if pkg.manager == "dpkg" and ident not in ("debian", "ubuntu"):
        namespace = "ubuntu" if "ubuntu" in (os_value(os_facts, "id_like") or "") else "debian"
    version = pkg.version + (f"-{pkg.release}" if pkg.release else "")
    qualifiers: dict[str, str] = {}
    if pkg.arch:
        qualifiers["arch"] = pkg.arch
    if ident and version_id:
        qualifiers["distro"] = f"{ident}-{version_id}"
    if pkg.epoch:
        qualifiers["epoch"] = str(pkg.epoch)
    return PackageURL(
        type=_PURL_TYPE[pkg.manager],
        namespace=namespace,
        name=pkg.name,
        version=version,
        qualifiers=qualifiers,
    )


__all__ = ["purl_for"]
