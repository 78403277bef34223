"""The end-of-life table and the image's place in it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from imageaudit.facts.os import OSFacts, OSValue
from imageaudit.model import Source
from imageaudit.vulns.eol import (
    EOLTableError,
    eol_status,
    find_distribution,
    load_eol_table,
    release_eol,
)


def _os(ident: str, version: str, name: str = "") -> OSFacts:
    src = Source("/etc/os-release")
    return OSFacts(kind="vm", id=OSValue(ident, src), version_id=OSValue(version, src),
                   name=OSValue(name, src) if name else None)


def test_every_release_cites_a_distribution_page() -> None:
    table = load_eol_table()
    names = {d.name for d in table.distributions}
    assert {"Debian", "Ubuntu", "Red Hat Enterprise Linux", "Rocky Linux", "AlmaLinux",
            "CentOS Linux", "CentOS Stream", "Fedora", "Alpine Linux",
            "SUSE Linux Enterprise Server"} <= names
    for dist in table.distributions:
        for rel in dist.releases:
            assert rel.source.startswith("https://"), rel


@pytest.mark.parametrize(
    ("ident", "version", "name", "label", "eol"),
    [
        ("debian", "12", "", "Debian 12 (bookworm)", "2028-06-30"),
        ("debian", "9.13", "", "Debian 9 (stretch)", "2022-06-30"),
        ("ubuntu", "22.04", "", "Ubuntu 22.04 (jammy)", "2027-04-01"),
        ("rhel", "9.4", "", "Red Hat Enterprise Linux 9", "2032-05-31"),
        ("centos", "8", "CentOS Stream", "CentOS Stream 8", "2024-05-31"),
        ("centos", "8", "CentOS Linux", "CentOS Linux 8", "2021-12-31"),
        ("alpine", "3.19.1", "", "Alpine Linux 3.19", "2025-11-01"),
        ("sles", "15.5", "", "SUSE Linux Enterprise Server 15.5 (15 SP5)", "2024-12-31"),
    ],
)
def test_release_lookup(ident: str, version: str, name: str, label: str, eol: str) -> None:
    table = load_eol_table()
    dist = find_distribution(_os(ident, version, name), table)
    assert dist is not None
    release = release_eol(_os(ident, version, name), dist)
    assert release is not None
    assert (release.label, release.eol.isoformat()) == (label, eol)


def test_unknown_distribution_and_release() -> None:
    table = load_eol_table()
    assert find_distribution(_os("arch", "rolling"), table) is None
    dist = find_distribution(_os("debian", "99"), table)
    assert dist is not None and release_eol(_os("debian", "99"), dist) is None


def test_status_past_near_supported() -> None:
    table = load_eol_table()
    dist = find_distribution(_os("debian", "12"), table)
    assert dist is not None
    release = release_eol(_os("debian", "12"), dist)
    assert release is not None
    on = dt.date.fromisoformat
    assert eol_status(release, on("2028-07-01")).state == "past"
    last_day = eol_status(release, on("2028-06-30"))
    assert (last_day.state, last_day.days_left) == ("near", 0)
    assert eol_status(release, on("2028-04-01")).state == "near"
    assert eol_status(release, on("2028-04-01"), warn_days=30).state == "supported"
    assert eol_status(release, on("2026-01-01")).state == "supported"


def test_malformed_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "eol.yaml"
    path.write_text(
        "distributions:\n  - {name: X, ids: [x], source: https://x.example/,\n"
        "     releases: [{version: '1', eol: soon}]}\n"
    )
    with pytest.raises(EOLTableError, match=r"releases\[0\]: `eol` is not a date"):
        load_eol_table(path)
