"""OSV records in the real schema (shapes of the osv.dev Debian, Ubuntu, Alpine, Rocky Linux,
Red Hat and SUSE exports), and tiny dpkg/apk databases to match them against."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# DSA-5514-1 (glibc, "Looney Tunables"): the fix per release, as Debian published it.
DSA_5514_1: dict[str, Any] = {
    "schema_version": "1.6.0",
    "id": "DSA-5514-1",
    "modified": "2023-10-03T15:00:00Z",
    "published": "2023-10-03T00:00:00Z",
    "summary": "glibc - security update",
    "upstream": ["CVE-2023-4806", "CVE-2023-4911"],
    "affected": [
        {
            "package": {"ecosystem": "Debian:11", "name": "glibc",
                        "purl": "pkg:deb/debian/glibc?arch=source"},
            "ranges": [{"type": "ECOSYSTEM",
                        "events": [{"introduced": "0"}, {"fixed": "2.31-13+deb11u7"}]}],
        },
        {
            "package": {"ecosystem": "Debian:12", "name": "glibc",
                        "purl": "pkg:deb/debian/glibc?arch=source"},
            "ranges": [{"type": "ECOSYSTEM",
                        "events": [{"introduced": "0"}, {"fixed": "2.36-9+deb12u3"}]}],
        },
    ],
    "references": [{"type": "ADVISORY", "url": "https://www.debian.org/security/2023/dsa-5514"}],
}

# A Debian security-tracker record: urgency and a CVSS vector.
DEBIAN_CVE_2023_4911: dict[str, Any] = {
    "schema_version": "1.6.0",
    "id": "DEBIAN-CVE-2023-4911",
    "modified": "2024-01-01T00:00:00Z",
    "upstream": ["CVE-2023-4911"],
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}],
    "affected": [
        {
            "package": {"ecosystem": "Debian:12", "name": "glibc"},
            "ranges": [{"type": "ECOSYSTEM",
                        "events": [{"introduced": "0"}, {"fixed": "2.36-9+deb12u3"}]}],
            "ecosystem_specific": {"urgency": "high"},
        }
    ],
}

# An unfixed issue: no ``fixed`` event, affected versions enumerated.
DEBIAN_CVE_UNFIXED: dict[str, Any] = {
    "id": "DEBIAN-CVE-2024-58382",
    "modified": "2026-09-12T11:00:05Z",
    "upstream": ["CVE-2024-58382"],
    "affected": [
        {
            "package": {"ecosystem": "Debian:12", "name": "zlib"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
            "versions": ["1:1.2.13.dfsg-1"],
            "ecosystem_specific": {"urgency": "not yet assigned"},
        }
    ],
}

WITHDRAWN: dict[str, Any] = {
    "id": "DSA-9999-1",
    "modified": "2024-01-01T00:00:00Z",
    "withdrawn": "2024-01-02T00:00:00Z",
    "affected": [{"package": {"ecosystem": "Debian:12", "name": "zlib"},
                  "ranges": [{"type": "ECOSYSTEM",
                              "events": [{"introduced": "0"}, {"fixed": "9:9"}]}]}],
}

USN_6587_1: dict[str, Any] = {
    "id": "USN-6587-1",
    "modified": "2024-01-17T00:00:00Z",
    "upstream": ["CVE-2023-50495"],
    "severity": [{"type": "Ubuntu", "score": "medium"}],
    "affected": [
        {"package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "ncurses"},
         "ranges": [{"type": "ECOSYSTEM",
                     "events": [{"introduced": "0"}, {"fixed": "6.3-2ubuntu0.1"}]}],
         "versions": ["6.2+20201114-2build2", "6.3-2"]},
        {"package": {"ecosystem": "Ubuntu:Pro:22.04:LTS", "name": "ncurses"},
         "ranges": [{"type": "ECOSYSTEM",
                     "events": [{"introduced": "0"}, {"fixed": "6.3-2ubuntu0.1+esm1"}]}]},
    ],
}

ALPINE_CVE_2023_5678: dict[str, Any] = {
    "id": "ALPINE-CVE-2023-5678",
    "modified": "2024-01-01T00:00:00Z",
    "affected": [{"package": {"ecosystem": "Alpine:v3.19", "name": "openssl"},
                  "ranges": [{"type": "ECOSYSTEM",
                              "events": [{"introduced": "0"}, {"fixed": "3.1.4-r1"}]}]}],
}

RLSA_2024_1: dict[str, Any] = {
    "id": "RLSA-2024:0001",
    "modified": "2024-01-01T00:00:00Z",
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
    "affected": [{"package": {"ecosystem": "Rocky Linux:9", "name": "openssl-libs"},
                  "ranges": [{"type": "ECOSYSTEM",
                              "events": [{"introduced": "0"}, {"fixed": "1:3.0.7-25.el9_3"}]}]}],
}

RHSA_2025_9978: dict[str, Any] = {
    "id": "RHSA-2025:9978",
    "modified": "2026-03-18T11:30:33Z",
    "upstream": ["CVE-2025-32462"],
    "affected": [
        {"package": {"ecosystem": "Red Hat:enterprise_linux:9::baseos", "name": "sudo"},
         "ranges": [{"type": "ECOSYSTEM",
                     "events": [{"introduced": "0"}, {"fixed": "0:1.9.5p2-10.el9_6.1"}]}]},
        {"package": {"ecosystem": "Red Hat:rhel_eus:9.2::baseos", "name": "sudo"},
         "ranges": [{"type": "ECOSYSTEM",
                     "events": [{"introduced": "0"}, {"fixed": "0:1.9.5p2-9.el9_2.1"}]}]},
    ],
    "database_specific": {"severity": "Important"},
}

SUSE_SU: dict[str, Any] = {
    "id": "SUSE-SU-2024:0001-1",
    "modified": "2024-01-01T00:00:00Z",
    "affected": [
        {"package": {"ecosystem": "SUSE:Linux Enterprise Module for Basesystem 15 SP5",
                     "name": "gzip"},
         "ranges": [{"type": "ECOSYSTEM",
                     "events": [{"introduced": "0"}, {"fixed": "1.10-150200.10.1"}]}]},
    ],
}

ALL_RECORDS = (DSA_5514_1, DEBIAN_CVE_2023_4911, DEBIAN_CVE_UNFIXED, WITHDRAWN, USN_6587_1,
               ALPINE_CVE_2023_5678, RLSA_2024_1, RHSA_2025_9978, SUSE_SU)


def write_dir(root: Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """One ``<id>.json`` per record under ``root`` (as an unpacked dump)."""
    root.mkdir(parents=True, exist_ok=True)
    for rec in records:
        (root / f"{str(rec['id']).replace(':', '_')}.json").write_text(json.dumps(rec))
    return root


def write_zip(path: Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """An ``all.zip`` like osv.dev's per-ecosystem dumps."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for rec in records:
            archive.writestr(f"{str(rec['id']).replace(':', '_')}.json", json.dumps(rec))
    return path


def dpkg_status(*packages: tuple[str, str, str | None]) -> str:
    """A dpkg status file of (package, version, ``Source:`` field or None) stanzas."""
    stanzas = []
    for name, version, source in packages:
        lines = [f"Package: {name}", "Status: install ok installed", "Architecture: amd64",
                 f"Version: {version}"]
        if source:
            lines.append(f"Source: {source}")
        stanzas.append("\n".join(lines) + "\n")
    return "\n".join(stanzas)


BOOKWORM_OS_RELEASE = (
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
    'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
)

# A bookworm tree with glibc before and zlib at the DSA/CVE versions above.
BOOKWORM_TREE = {
    "/etc/os-release": BOOKWORM_OS_RELEASE,
    "/var/lib/dpkg/status": dpkg_status(
        ("libc6", "2.36-9+deb12u1", "glibc"),
        ("libc-bin", "2.36-9+deb12u1", "glibc"),
        ("zlib1g", "1:1.2.13.dfsg-1", "zlib"),
        ("bash", "5.2.15-2+b2", "bash (5.2.15-2)"),
    ),
}
