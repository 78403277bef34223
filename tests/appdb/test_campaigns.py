"""Campaigns on SQLite and PostgreSQL: reports carrying inventories published through the real
publish path, then the image versions found by package version range (dpkg, rpm and apk orders),
by source name, by CVE or OSV id through an OSV snapshot written by ``imageaudit feeds sync``,
by file hash, name or path, and by endorser; saved campaigns re-run from the command line."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from imageaudit.cli.main import main as imageaudit_main
from integrations.appdb.campaigns import (
    CampaignResult,
    query_advisory,
    query_endorser,
    query_indicators,
    query_package,
    run_query,
)
from integrations.appdb.catalogue import Catalogue, CatalogueError
from integrations.appdb.db import utcnow
from integrations.appdb.imagelist import parse_imagelist
from integrations.appdb.imagelist_write import Endorser, image_list
from integrations.appdb.schemas import CampaignQuery
from tests.appdb.helpers import ADMIN, add_auditor, image_entry, sha512_of, store_report
from tests.builders.inventory import hashed_file, inventory, package, report_with

ALICE = Endorser(dn="/DC=org/DC=example/CN=Alice Endorser", ca="/DC=org/CN=Test CA",
                 creator="Alice Endorser", email="alice@example.org")
BOB = Endorser(dn="/DC=org/DC=example/CN=Bob Builder", ca="/DC=org/CN=Test CA",
               creator="Bob Builder", email="bob@example.org")
SHA = {name: sha512_of(name) for name in ("deb-1", "deb-2", "epoch", "rocky", "alpine")}
MINER, SSHD = b"cryptominer payload", b"sshd as rocky builds it"

INVENTORIES: dict[str, dict[str, Any]] = {
    "deb-1": inventory(
        [package("openssl", "3.0.11-1~deb12u2"),
         package("libssl3", "3.0.11-1~deb12u2", source="openssl"),
         package("libc6", "2.36-9+deb12u1", source="glibc")],
        [hashed_file("/usr/bin/ls", b"ls"),
         hashed_file("/var/tmp/.x/kworker", MINER, ("elf", "exec", "writable"))]),
    "deb-2": inventory(
        [package("openssl", "3.0.15-1~deb12u1"),
         package("libssl3", "3.0.15-1~deb12u1", source="openssl"),
         package("libc6", "2.36-9+deb12u3", source="glibc")],
        [hashed_file("/usr/bin/ls", b"ls")]),
    "epoch": inventory(
        [package("openssl", "1:3.0.9-1"),
         # a binNMU: the binary's version is not its source's
         package("libc6", "2.36-9+deb12u1+b1", source="glibc", source_version="2.36-9+deb12u1")],
        [], complete=False, not_hashed=1),
    "rocky": inventory(
        [package("openssl-libs", "1:3.0.7-27.el9", manager="rpm", source="openssl",
                 arch="x86_64"),
         package("cryptography", "41.0.7", manager="pip", ecosystem="PyPI", arch=None)],
        [hashed_file("/usr/sbin/sshd", SSHD)]),
    "alpine": inventory(
        [package("libcrypto3", "3.1.4-r5", manager="apk", source="openssl", arch="x86_64"),
         package("busybox", "1.36.1-r15", manager="apk", arch="x86_64")],
        [hashed_file("/etc/periodic/daily/update.sh", MINER, ("script", "persistence"))]),
}


def listing(endorser: Endorser, ident: str, images: list[dict[str, Any]]) -> bytes:
    doc = image_list(images, identifier=ident, title=f"{endorser.creator}'s images",
                     description="campaign test images", endorser=endorser,
                     source="https://endorser.example.org/",
                     uri=f"https://endorser.example.org/{ident}", valid=timedelta(days=7))
    return json.dumps(doc).encode()


def register(cat: Catalogue, data: bytes) -> None:
    cat.import_imagelist(parse_imagelist(data, ca_dir=None, now=utcnow()), ADMIN)


ALICE_LIST = "0b7c6d52-1111-4f2e-9a6b-0c1d2e3f4a5b"
BOB_LIST = "0b7c6d52-2222-4f2e-9a6b-0c1d2e3f4a5b"


def populate(cat: Catalogue) -> None:
    """Alice: img-deb (1.0, then 2.0 current) and img-epoch; Bob: img-rocky, img-alpine and
    img-copy, which is img-deb 1.0's very file registered again. Every version gets a report
    with its inventory (deb-1's binds to img-copy, the newest version with its SHA-512)."""
    register(cat, listing(ALICE, ALICE_LIST, [
        image_entry("img-deb", SHA["deb-1"], "fedcloud", "Debian 12", "1.0"),
        image_entry("img-epoch", SHA["epoch"], "fedcloud", "Debian with epochs")]))
    register(cat, listing(BOB, BOB_LIST, [
        image_entry("img-rocky", SHA["rocky"], "othervo", "Rocky 9"),
        image_entry("img-alpine", SHA["alpine"], "othervo", "Alpine 3.19"),
        image_entry("img-copy", SHA["deb-1"], "othervo", "Debian 12 again")]))
    register(cat, listing(ALICE, ALICE_LIST, [
        image_entry("img-deb", SHA["deb-2"], "fedcloud", "Debian 12", "2.0"),
        image_entry("img-epoch", SHA["epoch"], "fedcloud", "Debian with epochs")]))
    add_auditor(cat)
    for name, inv in INVENTORIES.items():
        store_report(cat, report_with(SHA[name], "basic", inv))


@pytest.fixture
def populated(catalogue: Catalogue) -> Catalogue:
    populate(catalogue)
    return catalogue


def found(result: CampaignResult) -> set[tuple[str, str]]:
    return {(h.image_id, h.version) for h in result.hits}


DEB_OLD, DEB_NEW, EPOCH = ("img-deb", "1.0"), ("img-deb", "2.0"), ("img-epoch", "1.0")
ROCKY, ALPINE, COPY = ("img-rocky", "1.0"), ("img-alpine", "1.0"), ("img-copy", "1.0")


def by_range(cat: Catalogue, name: str, affected: str | None,
             endorser: Endorser | None = None) -> set[tuple[str, str]]:
    query = CampaignQuery(package=name, affected=affected,
                          endorser_dn=endorser.dn if endorser else None)
    return found(run_query(cat, query))


def test_version_ranges_in_each_managers_order(populated: Catalogue) -> None:
    cat = populated
    # dpkg: the fix itself is not affected; the same file under another image is
    assert by_range(cat, "openssl", "<< 3.0.15-1~deb12u1") == {DEB_OLD, COPY}
    assert by_range(cat, "openssl", "<< 3.0.15-1~deb12u1", ALICE) == {DEB_OLD}
    # ~ sorts before everything, even the end of the version
    assert by_range(cat, "openssl", "<< 3.0.15-1", ALICE) == {DEB_OLD, DEB_NEW}
    assert by_range(cat, "openssl", "<= 3.0.15-1~deb12u1", ALICE) == {DEB_OLD, DEB_NEW}
    # an epoch outranks any upstream version
    assert by_range(cat, "openssl", ">> 3.0.99", ALICE) == {EPOCH}
    assert by_range(cat, "openssl", ">= 1:3.0.9-1, << 1:3.0.10", ALICE) == {EPOCH}
    # rpm: 3.0.7 < 3.0.10 (not as text), a release that goes on is newer, = is exact
    assert by_range(cat, "openssl-libs", "<< 1:3.0.10-1.el9") == {ROCKY}
    assert by_range(cat, "openssl-libs", "<< 1:3.0.7-27.el9_1") == {ROCKY}
    assert by_range(cat, "openssl-libs", "<< 1:3.0.7-27.el9") == set()
    assert by_range(cat, "openssl-libs", "= 1:3.0.7-27.el9") == {ROCKY}
    assert by_range(cat, "openssl-libs", "<< 3.0.10") == set()  # the epoch again
    # apk: -r5 < -r10 (not as text), _rc1 before the release
    assert by_range(cat, "libcrypto3", "<< 3.1.4-r10") == {ALPINE}
    assert by_range(cat, "libcrypto3", "<< 3.1.4_rc1") == set()
    assert by_range(cat, "libcrypto3", ">> 3.1.4_rc1, << 3.1.4-r6") == {ALPINE}
    assert by_range(cat, "busybox", None) == {ALPINE}


def test_what_cannot_be_compared_is_said(populated: Catalogue) -> None:
    result = query_package(populated, "cryptography", "<< 42")
    assert (result.hits, result.unjudged) == ((), 1)
    assert result.warnings == ("1 package(s) not judged: pip packages have no version order "
                               "here (dpkg, rpm, apk have)",)
    assert found(query_package(populated, "cryptography")) == {ROCKY}


def test_source_name_matches(populated: Catalogue) -> None:
    result = query_package(populated, "openssl")
    assert found(result) == {DEB_OLD, DEB_NEW, EPOCH, ROCKY, ALPINE, COPY}
    rocky = next(h for h in result.hits if h.image_id == "img-rocky")
    assert rocky.matched == ({"kind": "package", "name": "openssl-libs",
                              "version": "1:3.0.7-27.el9", "manager": "rpm", "via": "source",
                              "source_name": "openssl", "source_version": "1:3.0.7-27.el9",
                              "ecosystem": "Rocky Linux:9", "arch": "x86_64"},)
    old = next(h for h in result.hits if (h.image_id, h.version) == DEB_OLD)
    assert [(m["name"], m["via"]) for m in old.matched] == [("openssl", "binary"),
                                                            ("libssl3", "source")]
    # found by source name, a package is judged by its source version (binNMUs differ)
    assert by_range(populated, "glibc", "= 2.36-9+deb12u1") == {DEB_OLD, COPY, EPOCH}
    assert by_range(populated, "libc6", "= 2.36-9+deb12u1") == {DEB_OLD, COPY}
    assert by_range(populated, "libssl3", None) == {DEB_OLD, DEB_NEW, COPY}


def test_hit_says_who_and_where(populated: Catalogue) -> None:
    populated.suspend("img-deb", "being replaced", ADMIN)
    result = query_package(populated, "openssl", "<< 3.0.15-1~deb12u1")
    assert [h.to_json() for h in result.hits] == [
        {"image_id": "img-copy", "version": "1.0", "title": "Debian 12 again",
         "sha512": SHA["deb-1"], "vos": ["othervo"], "endorser_dn": BOB.dn,
         "endorser_name": "Bob Builder", "endorser_email": "bob@example.org", "level": "basic",
         "listed": True, "current": True, "suspended": False,
         "matched": [
             {"kind": "package", "name": "openssl", "version": "3.0.11-1~deb12u2",
              "manager": "dpkg", "via": "binary", "source_name": "openssl",
              "source_version": "3.0.11-1~deb12u2", "ecosystem": "Debian:12", "arch": "amd64",
              "fixed": "3.0.15-1~deb12u1"},
             {"kind": "package", "name": "libssl3", "version": "3.0.11-1~deb12u2",
              "manager": "dpkg", "via": "source", "source_name": "openssl",
              "source_version": "3.0.11-1~deb12u2", "ecosystem": "Debian:12", "arch": "amd64",
              "fixed": "3.0.15-1~deb12u1"}],
         "fix": "3.0.15-1~deb12u1", "sites": []},
        # the old version of img-deb: no report of its own (the file's went to img-copy),
        # not current, and its image is suspended
        {"image_id": "img-deb", "version": "1.0", "title": "Debian 12", "sha512": SHA["deb-1"],
         "vos": ["fedcloud"], "endorser_dn": ALICE.dn, "endorser_name": "Alice Endorser",
         "endorser_email": "alice@example.org", "level": "none", "listed": False,
         "current": False, "suspended": True, "matched": result.hits[0].to_json()["matched"],
         "fix": "3.0.15-1~deb12u1", "sites": []}]


def write_osv_snapshot(tmp: Path) -> Path:
    """OSV records about two made-up vulnerabilities, synced by ``imageaudit feeds sync``."""
    records: list[dict[str, Any]] = [
        {"schema_version": "1.6.0", "id": "DSA-9001-1", "modified": "2099-01-01T00:00:00Z",
         "upstream": ["CVE-2099-0001"], "affected": [
             {"package": {"ecosystem": "Debian:12", "name": "openssl"},
              "ranges": [{"type": "ECOSYSTEM",
                          "events": [{"introduced": "0"}, {"fixed": "3.0.15-1~deb12u1"}]}]},
             {"package": {"ecosystem": "Debian:11", "name": "openssl"},
              "ranges": [{"type": "ECOSYSTEM",
                          "events": [{"introduced": "0"}, {"fixed": "1.1.1w-0+deb11u2"}]}]}]},
        {"schema_version": "1.6.0", "id": "ALPINE-CVE-2099-0001",
         "modified": "2099-01-01T00:00:00Z", "upstream": ["CVE-2099-0001"], "affected": [
             {"package": {"ecosystem": "Alpine:v3.19", "name": "openssl"},
              "ranges": [{"type": "ECOSYSTEM",
                          "events": [{"introduced": "0"}, {"fixed": "3.1.4-r6"}]}]}]},
        {"schema_version": "1.6.0", "id": "RLSA-2099:0001", "modified": "2099-01-01T00:00:00Z",
         "aliases": ["CVE-2099-0001"], "affected": [
             {"package": {"ecosystem": "Rocky Linux:9", "name": "openssl"},
              "ranges": [{"type": "ECOSYSTEM",
                          "events": [{"introduced": "0"}, {"fixed": "1:3.0.7-28.el9"}]}]}]},
        {"schema_version": "1.6.0", "id": "DSA-9002-1", "modified": "2099-01-01T00:00:00Z",
         "upstream": ["CVE-2099-0002"], "affected": [
             {"package": {"ecosystem": "Debian:12", "name": "glibc"},
              "ranges": [{"type": "ECOSYSTEM",
                          "events": [{"introduced": "0"}, {"fixed": "2.36-9+deb12u3"}]}]}]},
    ]
    src = tmp / "osv"
    src.mkdir()
    for rec in records:
        (src / f"{rec['id'].replace(':', '_')}.json").write_text(json.dumps(rec))
    feeds = tmp / "feeds"
    assert imageaudit_main(["feeds", "sync", "--osv", str(src), "--dir", str(feeds)]) == 0
    return feeds


def test_advisories_through_an_osv_snapshot(populated: Catalogue, tmp_path: Path) -> None:
    feeds = write_osv_snapshot(tmp_path)
    result = query_advisory(populated, feeds, cve="CVE-2099-0001")
    assert result.advisories == ("ALPINE-CVE-2099-0001", "DSA-9001-1", "RLSA-2099:0001")
    # Debian judged by source (deb-2 and the epoch are fixed), Rocky and Alpine each by its own
    # ecosystem's record and order
    assert {(h.image_id, h.version, h.fix) for h in result.hits} == {
        (*DEB_OLD, "3.0.15-1~deb12u1"), (*COPY, "3.0.15-1~deb12u1"),
        (*ROCKY, "1:3.0.7-28.el9"), (*ALPINE, "3.1.4-r6")}
    alpine = next(h for h in result.hits if h.image_id == "img-alpine")
    assert [(m["name"], m["via"], m["advisory"], m["fixed"]) for m in alpine.matched] == [
        ("libcrypto3", "source", "ALPINE-CVE-2099-0001", "3.1.4-r6")]
    result = query_advisory(populated, feeds, osv_id="DSA-9002-1")
    assert {(h.image_id, h.version, h.fix) for h in result.hits} == {
        (*DEB_OLD, "2.36-9+deb12u3"), (*COPY, "2.36-9+deb12u3"), (*EPOCH, "2.36-9+deb12u3")}
    both = run_query(populated, CampaignQuery(cve="CVE-2099-0001", endorser_dn=BOB.dn),
                     feeds=feeds)
    assert found(both) == {COPY, ROCKY, ALPINE}

    with pytest.raises(CatalogueError) as err:
        query_advisory(populated, feeds, cve="CVE-2099-9999")
    assert (err.value.status, err.value.message) == (
        404, f"no OSV record names CVE-2099-9999 in the feed snapshot "
             f"{(feeds / 'snapshots').resolve()}/{(feeds / 'latest').read_text().strip()}")
    with pytest.raises(CatalogueError) as err:
        run_query(populated, CampaignQuery(cve="CVE-2099-0001"))
    assert err.value.status == 409
    with pytest.raises(CatalogueError) as err:
        query_advisory(populated, tmp_path / "nowhere", cve="CVE-2099-0001")
    assert err.value.message.startswith("no usable feed snapshot: ")


def test_indicators_by_hash_name_and_path(populated: Catalogue) -> None:
    import hashlib

    miner = {k: hashlib.new(k, MINER).hexdigest() for k in ("sha256", "sha1", "md5")}
    result = query_indicators(populated, sha256={miner["sha256"]},
                              provenance={miner["sha256"]: ("MISP event 4242", "CSIRT-2099-1")})
    assert found(result) == {DEB_OLD, COPY, ALPINE}
    alpine = next(h for h in result.hits if h.image_id == "img-alpine")
    assert alpine.matched == ({"kind": "file", "path": "/etc/periodic/daily/update.sh",
                               "by": "sha256", "indicator": miner["sha256"],
                               "provenance": ["MISP event 4242", "CSIRT-2099-1"]},)
    assert found(query_indicators(populated, sha1={hashlib.sha1(SSHD).hexdigest()})) == {ROCKY}
    assert found(query_indicators(populated, md5={miner["md5"]})) == {DEB_OLD, COPY, ALPINE}
    by_name = query_indicators(populated, names={"kworker"})
    assert found(by_name) == {DEB_OLD, COPY}
    assert by_name.hits[0].matched[0]["by"] == "name"
    assert found(query_indicators(populated, paths={"/etc/periodic/daily/update.sh"})) == {ALPINE}
    assert found(query_indicators(populated, paths={"/etc/update.sh"})) == set()
    # more indicators than one IN list holds
    many = {hashlib.sha256(str(i).encode()).hexdigest() for i in range(2500)}
    assert found(query_indicators(populated, sha256=many | {miner["sha256"]},
                                  sha1={miner["sha1"]})) == {DEB_OLD, COPY, ALPINE}


def misp_event(path: Path) -> Path:
    """A MISP event: the miner as ``filename|sha256``, an sshd named with a hash no image has,
    and the md5 of Rocky's sshd not flagged for detection."""
    import hashlib

    attrs = [("filename|sha256", f"update.sh|{hashlib.sha256(MINER).hexdigest()}", True),
             ("filename|sha1", f"sshd|{hashlib.sha1(b'another sshd').hexdigest()}", True),
             ("md5", hashlib.md5(SSHD).hexdigest(), False)]
    event = {"Event": {"uuid": "5e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b",
                       "info": "Cryptominer in shared images", "Attribute": [
                           {"type": t, "category": "Payload delivery", "to_ids": ids,
                            "value": v} for t, v, ids in attrs]}}
    path.write_text(json.dumps(event))
    return path


def test_indicator_files_as_scan_reads_them(populated: Catalogue, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from integrations.appdb.campaigns import read_indicator_file

    event = misp_event(tmp_path / "event.json")
    ioc, notes = read_indicator_file(event)
    assert notes == ()
    result = run_query(populated, CampaignQuery(ioc=ioc))
    # the sshd named only with another hash is not evidence against Rocky's sshd; its md5 is
    assert found(result) == {DEB_OLD, COPY, ALPINE, ROCKY}
    alpine = next(h for h in result.hits if h.image_id == "img-alpine")
    origin = ['MISP event 5e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b "Cryptominer in shared images"']
    assert [(m["by"], m["provenance"]) for m in alpine.matched] == [("sha256", origin),
                                                                    ("name", origin)]
    assert alpine.matched[1]["paired_with"][0].startswith("sha256:")
    rocky = next(h for h in result.hits if h.image_id == "img-rocky")
    assert [m["by"] for m in rocky.matched] == ["md5"]
    assert "2 file name(s) or path(s) came only with hashes" in result.warnings[0]
    ioc, _ = read_indicator_file(event, only_to_ids=True)
    assert found(run_query(populated, CampaignQuery(ioc=ioc))) == {DEB_OLD, COPY, ALPINE}

    # a CSV: a file name anywhere, and a relative path matching the end of a path
    sheet = tmp_path / "iocs.csv"
    sheet.write_text("sha256,filename,path\n,kworker,\n,,periodic/daily/update.sh\n")
    from integrations.appdb.cli import main

    db = populated.engine.url.render_as_string(hide_password=False)
    assert main(["catalogue", "campaign", "query", "--ioc", str(sheet), "--format", "json",
                 "--db", db]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert {(h["image_id"], h["matched"][0]["by"], h["matched"][0]["provenance"][0])
            for h in hits} == {("img-deb", "name", f"{sheet}:2"),
                               ("img-copy", "name", f"{sheet}:2"),
                               ("img-alpine", "path", f"{sheet}:3")}
    sheet.write_text("<html>not indicators</html>\n")
    assert main(["catalogue", "campaign", "query", "--ioc", str(sheet), "--db", db]) == 2
    assert capsys.readouterr().err.startswith(f"imageaudit: error: indicators refused: {sheet}: ")


def test_endorser_finds_every_version_in_every_vo(populated: Catalogue) -> None:
    assert found(query_endorser(populated, ALICE.dn)) == {DEB_OLD, DEB_NEW, EPOCH}
    bob = query_endorser(populated, BOB.dn)
    assert found(bob) == {ROCKY, ALPINE, COPY}
    assert {h.endorser_email for h in bob.hits} == {"bob@example.org"}
    assert bob.hits[0].matched == ({"kind": "endorser", "dn": BOB.dn},)
    assert query_endorser(populated, "/CN=nobody").hits == ()


def test_saved_campaign_shows_only_newly_affected(populated: Catalogue,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from integrations.appdb.cli import main

    db = populated.engine.url.render_as_string(hide_password=False)
    assert main(["catalogue", "campaign", "query", "--package", "openssl", "--affected",
                 "<< 3.0.15-1~deb12u1", "--save", "old-openssl", "--format", "json",
                 "--db", db]) == 0
    first = json.loads(capsys.readouterr().out)
    assert [h["image_id"] for h in first["newly_affected"]] == ["img-copy", "img-deb"]
    assert first["campaign"]["runs"][0]["newly_affected"] == 2

    assert main(["catalogue", "campaign", "run", "old-openssl", "--format", "json",
                 "--db", db]) == 0
    assert json.loads(capsys.readouterr().out)["newly_affected"] == []

    # a new image with the old openssl is registered and audited
    register(populated, listing(BOB, BOB_LIST, [
        image_entry("img-late", sha512_of("late"), "othervo", "Late Debian")]))
    store_report(populated, report_with(sha512_of("late"), "basic", inventory(
        [package("openssl", "3.0.13-1~deb12u1")])))
    assert main(["catalogue", "campaign", "run", "old-openssl", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "img-late" in out and "img-deb" not in out
    assert "campaign old-openssl: 3 affected, 1 new" in out
    assert main(["catalogue", "campaign", "run", "old-openssl", "--format", "csv",
                 "--db", db]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "image_id,version,title,sha512,vos,endorser_dn,endorser_name,endorser_email,level,"
        "listed,current,suspended,matched,fix,sites"]

    assert main(["catalogue", "campaign", "list", "--db", db]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith("old-openssl  package openssl << 3.0.15-1~deb12u1  (saved ")
    assert "last run " in listed and ": 3 affected, 0 new)" in listed
    assert main(["catalogue", "campaign", "show", "old-openssl", "--format", "json",
                 "--db", db]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["query"] == {"package": "openssl", "affected": "<< 3.0.15-1~deb12u1"}
    assert [(r["affected"], r["newly_affected"]) for r in shown["runs"]] == [
        (2, 2), (2, 0), (3, 1), (3, 0)]

    assert main(["catalogue", "campaign", "query", "--package", "openssl", "--save",
                 "old-openssl", "--db", db]) == 2
    assert capsys.readouterr().err == "imageaudit: error: campaign old-openssl exists already\n"
    assert main(["catalogue", "campaign", "run", "nope", "--db", db]) == 2
    assert capsys.readouterr().err == "imageaudit: error: no campaign nope\n"
    assert main(["catalogue", "campaign", "query", "--package", "openssl", "--affected",
                 "< 3.0", "--db", db]) == 2
    assert capsys.readouterr().err == (
        "imageaudit: error: '< 3.0': write << (strictly) or <= (dpkg's old < means <=)\n")
    assert main(["catalogue", "campaign", "query", "--affected", "<< 3", "--db", db]) == 2
    assert "affected (a version range) needs a package" in capsys.readouterr().err
