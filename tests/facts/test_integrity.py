"""Package integrity (the offline debsums / rpm -V): the real Debian root verifies clean and
a changed library in a copy of it is found; rpm against the host's own ``rpm -Va``; the
size caps and the reuse of the filehashes digests."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from imageaudit.facts import Facts, collect_facts, integrity
from imageaudit.facts.base import CollectContext
from imageaudit.facts.filehashes import FileHash, FileHashesFacts
from imageaudit.model import Source, Status
from imageaudit.openers.directory import DirectoryFS
from tests.builders.debian import debian_root_dir  # noqa: F401 - pytest fixture
from tests.rules.cases_malware_integrity import LIBC, LS, PAM_UNIX, debian, md5
from tests.rules.harness import run_rule
from tests.scenario import write_tree

RULES = ("malware_package_modified", "malware_package_file_missing")
LIBPAM = "/usr/lib/x86_64-linux-gnu/libpam.so.0.85.1"


def facts_of(root: Path) -> Facts:
    with DirectoryFS(root) as fs:
        return collect_facts(fs)


def statuses(facts: Facts) -> dict[str, set[Status]]:
    return {rule: {f.status for f in run_rule(rule, facts)} for rule in RULES}


def copy_root(src: Path, dst: Path) -> None:
    """A real copy of ``src``: hard links would change the shared root's own link counts,
    which other tests compare across openers."""
    shutil.copytree(src, dst, symlinks=True)


def replace_file(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


@pytest.mark.network
@pytest.mark.slow
def test_real_debian_root_verifies(debian_root_dir: Path) -> None:  # noqa: F811
    start = time.perf_counter()
    facts = facts_of(debian_root_dir)
    elapsed = time.perf_counter() - start
    found = facts.integrity
    assert found is not None
    assert found.databases == ("/var/lib/dpkg/info",)
    assert found.packages > 100 and found.verified > 1500
    assert (found.changed, found.missing, found.unverified_count) == ((), (), 0)
    # Most programs and libraries were hashed by filehashes already: not read twice.
    assert found.reused_digests > 500
    assert statuses(facts) == {rule: {Status.PASS} for rule in RULES}
    print(f"integrity: {facts.timings['collect.integrity']:.3f} s of {elapsed:.3f} s, "
          f"{found.verified} files, {found.reused_digests} reused, {found.bytes_read} bytes read")


@pytest.mark.network
@pytest.mark.slow
def test_changed_library_and_removed_program_in_a_copy(
    debian_root_dir: Path, tmp_path: Path  # noqa: F811
) -> None:
    root = tmp_path / "root"
    copy_root(debian_root_dir, root)
    original = (root / LIBPAM.lstrip("/")).read_bytes()
    patched = bytearray(original)
    patched[len(patched) // 2] ^= 0xFF
    replace_file(root / LIBPAM.lstrip("/"), bytes(patched))
    (root / "usr/bin/hostname").unlink()
    assert (debian_root_dir / LIBPAM.lstrip("/")).read_bytes() == original  # fixture untouched

    facts = facts_of(root)
    found = facts.integrity
    assert found is not None
    [changed] = found.changed
    assert (changed.path, changed.read_path, changed.package, changed.kind) == (
        "/lib/x86_64-linux-gnu/libpam.so.0.85.1", LIBPAM, "libpam0g:amd64", "library")
    assert changed.expected == hashlib.md5(original, usedforsecurity=False).hexdigest()
    assert changed.actual == hashlib.md5(patched, usedforsecurity=False).hexdigest()
    assert changed.source.path == "/var/lib/dpkg/info/libpam0g:amd64.md5sums"
    assert [(m.path, m.package) for m in found.missing] == [("/bin/hostname", "hostname")]
    if shutil.which("dpkg"):  # the host's own verification of the same copy agrees
        verify = subprocess.run(["dpkg", f"--root={root}", "--verify"], capture_output=True,
                                text=True).stdout.splitlines()
        assert sorted(verify) == sorted([
            "??5??????   /lib/x86_64-linux-gnu/libpam.so.0.85.1",
            "missing     /bin/hostname",
        ])
    modified = run_rule("malware_package_modified", facts)
    assert [(f.status, f.resource) for f in modified] == [(Status.FAIL, LIBPAM)]
    missing = run_rule("malware_package_file_missing", facts)
    assert [(f.status, f.resource) for f in missing] == [(Status.FAIL, "/bin/hostname")]


def collect_tree(tree: dict[str, object], root: Path) -> integrity.IntegrityFacts:
    write_tree(tree, root)  # type: ignore[arg-type]
    found = facts_of(root).integrity
    assert found is not None
    return found


def test_file_over_the_cap_is_unverified_not_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(integrity, "MAX_FILE_BYTES", 10)
    # /usr/bin/ls is not executable here, so filehashes does not hash it and integrity has to
    # read it; the PAM module and libc were hashed by filehashes and are compared anyway.
    facts = facts_of(write_tree(debian(), tmp_path / "root"))
    assert facts.integrity is not None
    assert facts.integrity.unverified == (
        integrity.Unverified("/usr/bin/ls", "larger than 10 bytes", "read", "coreutils"),)
    assert facts.integrity.verified == 2
    [result] = run_rule("malware_package_modified", facts)
    assert result.status is Status.ERROR
    assert result.message == ("Could not evaluate: 1 package files or digest lists could not "
                              "be verified (`/usr/bin/ls`: larger than 10 bytes)")
    # A size cap says nothing about whether the file is there.
    assert {f.status for f in run_rule("malware_package_file_missing", facts)} == {Status.PASS}


def test_total_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(integrity, "MAX_TOTAL_BYTES", len(LS) - 1)
    found = collect_tree(debian(), tmp_path / "root")
    assert [(u.path, u.reason) for u in found.unverified] == [
        ("/usr/bin/ls", f"over the {len(LS) - 1} bytes read per image")]


def test_digests_of_filehashes_are_reused(tmp_path: Path) -> None:
    """A file filehashes already hashed is not read again: its digests are taken as they are
    (here a planted digest shows it)."""
    write_tree(debian(), tmp_path / "root")
    ctx = CollectContext(fs=DirectoryFS(tmp_path / "root"))
    ctx.collected["filehashes"] = FileHashesFacts(files=(FileHash(
        "/usr/bin/ls", "0" * 64, "0" * 40, "f" * 32, len(LS), ("exec",), Source("/usr/bin/ls")),))
    found = integrity.collect(ctx)
    assert found.reused_digests == 1
    assert [(c.read_path, c.actual) for c in found.changed] == [("/usr/bin/ls", "f" * 32)]
    assert found.bytes_read == len(PAM_UNIX) + len(LIBC)


def test_conffile_inside_code_dirs_is_skipped(tmp_path: Path) -> None:
    tree = debian({"/usr/lib/tool/tool.conf": b"edited"}, extra={
        "/var/lib/dpkg/status": "Package: tool\nStatus: install ok installed\nVersion: 1\n"
                                "Conffiles:\n /usr/lib/tool/tool.conf 00\n",
        "/var/lib/dpkg/info/tool.list": "/usr/lib/tool/tool.conf\n",
        "/var/lib/dpkg/info/tool.md5sums": f"{md5(b'x')}  usr/lib/tool/tool.conf\n",
    })
    found = collect_tree(tree, tmp_path / "root")
    assert found.changed == () and found.skipped["configuration file"] == 1


def test_distroless_status_d(tmp_path: Path) -> None:
    """Distroless images keep one stanza file per package and its md5sums in status.d."""
    tree = {
        "/var/lib/dpkg/status.d/base": "Package: base-files\nVersion: 12\nArchitecture: amd64\n",
        "/var/lib/dpkg/status.d/base.md5sums": f"{md5(LS)}  usr/bin/ls\n{md5(b'x')}  usr/lib/y\n",
        "/usr/bin/ls": LS + b"changed",
        "/usr/lib/y": b"x",
    }
    found = collect_tree(tree, tmp_path / "root")
    assert found.databases == ("/var/lib/dpkg/status.d",)
    assert found.verified == 2
    assert [(c.path, c.package, c.source) for c in found.changed] == [
        ("/usr/bin/ls", "base", Source("/var/lib/dpkg/status.d/base.md5sums", 1))]


RPM_SPEC = """Name: tool
Version: 1
Release: 1
Summary: t
License: MIT
BuildArch: noarch
%description
t
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/lib/tool %{buildroot}/etc
echo tool > %{buildroot}/usr/bin/tool
echo conf > %{buildroot}/usr/lib/tool/tool.conf
echo state > %{buildroot}/usr/lib/tool/state
echo lib > %{buildroot}/usr/lib/tool/libtool.so
echo keep > %{buildroot}/usr/lib/tool/libkeep.so
echo etc > %{buildroot}/etc/tool.cfg
ln -s tool %{buildroot}/usr/bin/tool-link
touch %{buildroot}/usr/lib/tool/ghost
%files
/usr/bin/tool
/usr/bin/tool-link
%config /usr/lib/tool/tool.conf
%verify(not md5 size mtime) /usr/lib/tool/state
%ghost /usr/lib/tool/ghost
/usr/lib/tool/libtool.so
/usr/lib/tool/libkeep.so
/etc/tool.cfg
"""


@pytest.mark.skipif(not (shutil.which("rpmbuild") and shutil.which("rpm")),
                    reason="needs rpm and rpmbuild (Debian package rpm)")
def test_rpm_database_against_host_rpm_verify(tmp_path: Path) -> None:
    top = tmp_path / "build"
    top.mkdir()
    (top / "tool.spec").write_text(RPM_SPEC)
    subprocess.run(["rpmbuild", "-bb", "--nodeps", "--define", f"_topdir {top}",
                    str(top / "tool.spec")], check=True, capture_output=True)
    root = tmp_path / "root"
    rpm = ["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm"]
    subprocess.run([*rpm, "--initdb"], check=True, capture_output=True)
    subprocess.run([*rpm, "-i", "--nodeps", "--noscripts", "--ignorearch", "--ignoreos",
                    *map(str, top.glob("RPMS/*/*.rpm"))], check=True, capture_output=True)
    clean = facts_of(root)
    assert clean.integrity is not None
    assert clean.integrity.databases == ("/var/lib/rpm/rpmdb.sqlite",)
    assert clean.integrity.verified == 3  # tool, libtool.so, libkeep.so; /etc is not judged
    assert statuses(clean) == {rule: {Status.PASS} for rule in RULES}

    for name, extra in (("usr/bin/tool", b"x"), ("usr/lib/tool/state", b"y"),
                        ("usr/lib/tool/tool.conf", b"z")):
        path = root / name
        path.write_bytes(path.read_bytes() + extra)
    (root / "usr/lib/tool/libtool.so").unlink()
    verify = subprocess.run([*rpm, "-Va"], capture_output=True, text=True).stdout.splitlines()
    host_changed = {line.split()[-1] for line in verify if line[2] == "5" and " c " not in line}
    host_missing = {line.split()[-1] for line in verify if line.startswith("missing")}
    assert (host_changed, host_missing) == ({"/usr/bin/tool"}, {"/usr/lib/tool/libtool.so"})

    facts = facts_of(root)
    found = facts.integrity
    assert found is not None
    assert {c.path for c in found.changed} == host_changed
    assert {m.path for m in found.missing} == host_missing
    [changed] = found.changed
    assert (changed.package, changed.algorithm, changed.kind) == ("tool.noarch", "sha256",
                                                                  "program")
    assert found.skipped["configuration file"] == 1
    assert found.skipped["rpm %ghost file"] == 1
    assert found.skipped["rpm %verify without the digest"] == 1
    assert {f.resource for f in run_rule("malware_package_modified", facts)} == {"/usr/bin/tool"}
