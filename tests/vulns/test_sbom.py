"""CycloneDX SBOM of the inventory: purls, schema validity, the ``sbom`` command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from imageaudit.cli.sbom import add_parsers
from imageaudit.facts import collect_facts
from imageaudit.facts.os import OSFacts, OSValue
from imageaudit.facts.packages.model import InstalledPackage
from imageaudit.model import Source
from imageaudit.openers.directory import DirectoryFS
from imageaudit.report.sbom import build_sbom, purl_for, render_sbom, sbom_of_facts
from tests.scenario import write_tree
from tests.vulns import osv_data as data


def _pkg(manager: str, name: str, version: str, epoch: int | None, release: str | None,
         arch: str | None) -> InstalledPackage:
    return InstalledPackage(name=name, version=version, epoch=epoch, release=release, arch=arch,
                            source_name=None, source_version=None, manager=manager,  # type: ignore[arg-type]
                            status=None, source=Source("/db"))


def _os(ident: str, version: str) -> OSFacts:
    src = Source("/etc/os-release")
    return OSFacts(kind="vm", id=OSValue(ident, src), version_id=OSValue(version, src))


def test_purls() -> None:
    login = _pkg("dpkg", "login", "4.13+dfsg1", 1, "1+deb12u1", "amd64")
    assert purl_for(login, _os("debian", "12")).to_string() == (
        "pkg:deb/debian/login@4.13%2Bdfsg1-1%2Bdeb12u1?arch=amd64&distro=debian-12&epoch=1"
    )
    bash = _pkg("rpm", "bash", "5.1.8", None, "6.el9", "x86_64")
    assert purl_for(bash, _os("rocky", "9.3")).to_string() == (
        "pkg:rpm/rocky/bash@5.1.8-6.el9?arch=x86_64&distro=rocky-9.3"
    )
    ssl = _pkg("rpm", "openssl-libs", "3.0.7", 1, "24.el9", "x86_64")
    assert purl_for(ssl, _os("rhel", "9.3")).to_string() == (
        "pkg:rpm/redhat/openssl-libs@3.0.7-24.el9?arch=x86_64&distro=rhel-9.3&epoch=1"
    )
    busybox = _pkg("apk", "busybox", "1.36.1-r15", None, None, "x86_64")
    assert purl_for(busybox, _os("alpine", "3.19.1")).to_string() == (
        "pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1"
    )


def test_sbom_is_valid_cyclonedx_with_unique_refs(tmp_path: Path) -> None:
    tree = dict(data.BOOKWORM_TREE)
    tree["/var/lib/dpkg/status"] = data.dpkg_status(
        ("libc6", "2.36-9+deb12u1", "glibc"), ("libc6", "2.36-9+deb12u1", "glibc"),
    ) + "\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1.0-1\n"
    write_tree(tree, tmp_path / "root")
    with DirectoryFS(tmp_path / "root") as fs:
        facts = collect_facts(fs)
    text = sbom_of_facts(facts, sha512="ab" * 64)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    doc = json.loads(text)
    refs = sorted(c["bom-ref"] for c in doc["components"])
    assert refs == [
        "os:debian-12",
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u1?arch=amd64&distro=debian-12",
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u1?arch=amd64&distro=debian-12#2",
    ]  # the config-files package is not installed, so not listed
    assert doc["metadata"]["component"]["hashes"] == [{"alg": "SHA-512", "content": "ab" * 64}]


def test_sbom_command_writes_a_file(tmp_path: Path) -> None:
    write_tree(data.BOOKWORM_TREE, tmp_path / "root")
    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers(dest="command"))
    out = tmp_path / "sbom.json"
    args = parser.parse_args(["sbom", str(tmp_path / "root"), "-o", str(out), "-q"])
    assert args.func(args) == 0
    doc = json.loads(out.read_text())
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.6"
    assert sorted(c["name"] for c in doc["components"]) == [
        "bash", "debian", "libc-bin", "libc6", "zlib1g"
    ]


def test_render_refuses_unknown_format() -> None:
    bom = build_sbom([], None)
    try:
        render_sbom(bom, "spdx")
    except ValueError as exc:
        assert str(exc) == "unknown SBOM format 'spdx' (known: cyclonedx-json)"
    else:
        raise AssertionError("no error")
