from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from imageaudit.facts.base import CollectContext
from imageaudit.facts.os import OSFacts, OSReleaseEntry, OSValue, collect
from imageaudit.facts.os_sources import elf_architecture
from imageaudit.facts.textlines import MalformedLine
from imageaudit.model import Source
from imageaudit.openers.directory import DirectoryFS
from tests.builders.debian import debian_root_dir  # noqa: F401 - pytest fixture
from tests.scenario import File, Symlink, write_tree


def elf(machine: int, bits: int = 64, little: bool = True) -> bytes:
    """The first 20 bytes of an ELF header plus padding, as a real binary starts."""
    order: Literal["little", "big"] = "little" if little else "big"
    ident = b"\x7fELF" + bytes([bits // 32, 1 if little else 2, 1]) + b"\0" * 9
    return ident + (2).to_bytes(2, order) + machine.to_bytes(2, order) + b"\0" * 44


def collect_tree(scenario: dict[str, object], tmp_path: Path) -> OSFacts:
    root = write_tree(scenario, tmp_path / "root")  # type: ignore[arg-type]
    return collect(CollectContext(fs=DirectoryFS(root)))


OS_RELEASE = """\
NAME="Rocky Linux"
VERSION="9.3 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID='9.3'
# a comment
PRETTY_NAME="Rocky \\"Linux\\" 9.3"
not an assignment
ANSI_COLOR=0\\;32
"""


def test_os_release_elf_and_hostname(tmp_path: Path) -> None:
    facts = collect_tree(
        {
            "/etc/os-release": Symlink("../usr/lib/os-release"),
            "/usr/lib/os-release": OS_RELEASE,
            "/etc/redhat-release": "Rocky Linux release 9.3 (Blue Onyx)\n",
            "/bin": Symlink("usr/bin"),
            "/usr/bin/sh": Symlink("bash"),
            "/usr/bin/bash": File(elf(62), mode=0o755),
            "/etc/hostname": "# set by cloud-init\n\nbuilder01\n",
        },
        tmp_path,
    )
    src = "/etc/os-release"
    assert facts == OSFacts(
        kind="directory",
        id=OSValue("rocky", Source(src, 3)),
        id_like=OSValue("rhel centos fedora", Source(src, 4)),
        name=OSValue("Rocky Linux", Source(src, 1)),
        version=OSValue("9.3 (Blue Onyx)", Source(src, 2)),
        version_id=OSValue("9.3", Source(src, 5)),
        codename=OSValue("Blue Onyx", Source("/etc/redhat-release", 1)),
        pretty_name=OSValue('Rocky "Linux" 9.3', Source(src, 7)),
        architecture=OSValue("x86_64", Source("/bin/sh")),
        hostname=OSValue("builder01", Source("/etc/hostname", 3)),
        os_release_path=src,
        os_release=(
            OSReleaseEntry("NAME", "Rocky Linux", Source(src, 1)),
            OSReleaseEntry("VERSION", "9.3 (Blue Onyx)", Source(src, 2)),
            OSReleaseEntry("ID", "rocky", Source(src, 3)),
            OSReleaseEntry("ID_LIKE", "rhel centos fedora", Source(src, 4)),
            OSReleaseEntry("VERSION_ID", "9.3", Source(src, 5)),
            OSReleaseEntry("PRETTY_NAME", 'Rocky "Linux" 9.3', Source(src, 7)),
            OSReleaseEntry("ANSI_COLOR", "0;32", Source(src, 9)),
        ),
        release_files=(
            OSValue("Rocky Linux release 9.3 (Blue Onyx)", Source("/etc/redhat-release", 1)),
        ),
        malformed=(
            MalformedLine(Source(src, 8), "not a KEY=value assignment", "not an assignment"),
        ),
    )
    assert facts.id_like_list == ("rhel", "centos", "fedora")
    assert facts.is_like("rhel") and facts.is_like("rocky") and not facts.is_like("debian")


def test_usr_lib_os_release_and_env_elf(tmp_path: Path) -> None:
    facts = collect_tree(
        {
            "/usr/lib/os-release": 'ID=fedora\nVERSION_ID=39\nVERSION_CODENAME=""\n',
            "/usr/bin/env": File(elf(183), mode=0o755),
        },
        tmp_path,
    )
    assert facts.os_release_path == "/usr/lib/os-release"
    assert facts.id == OSValue("fedora", Source("/usr/lib/os-release", 1))
    assert facts.codename == OSValue("", Source("/usr/lib/os-release", 3))
    assert facts.architecture == OSValue("aarch64", Source("/usr/bin/env"))
    assert facts.hostname is None


def test_redhat_release_fallback_and_rpm_platform(tmp_path: Path) -> None:
    facts = collect_tree(
        {
            "/etc/redhat-release": "CentOS Linux release 7.9.2009 (Core)\n",
            "/etc/rpm/platform": "x86_64-redhat-linux\n",
            "/bin/sh": "#!/not/an/elf\n",
        },
        tmp_path,
    )
    src = Source("/etc/redhat-release", 1)
    assert (facts.id, facts.name, facts.version_id, facts.codename, facts.pretty_name) == (
        OSValue("centos", src),
        OSValue("CentOS Linux", src),
        OSValue("7.9.2009", src),
        OSValue("Core", src),
        OSValue("CentOS Linux release 7.9.2009 (Core)", src),
    )
    assert facts.os_release_path is None
    assert facts.architecture == OSValue("x86_64", Source("/etc/rpm/platform", 1))


def test_lsb_release_and_debian_version_and_dpkg_arch(tmp_path: Path) -> None:
    facts = collect_tree(
        {
            "/etc/lsb-release": (
                "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\n"
                'DISTRIB_DESCRIPTION="Ubuntu 22.04.3 LTS"\n'
            ),
            "/etc/debian_version": "bookworm/sid\n",
            "/var/lib/dpkg/status": "Package: dpkg\nArchitecture: arm64\nVersion: 1.21\n",
        },
        tmp_path,
    )
    lsb = "/etc/lsb-release"
    assert facts.id == OSValue("Ubuntu", Source(lsb, 1))
    assert facts.version_id == OSValue("22.04", Source(lsb, 2))
    assert facts.codename == OSValue("jammy", Source(lsb, 3))
    assert facts.pretty_name == OSValue("Ubuntu 22.04.3 LTS", Source(lsb, 4))
    assert facts.release_files == (OSValue("bookworm/sid", Source("/etc/debian_version", 1)),)
    assert facts.architecture == OSValue("aarch64", Source("/var/lib/dpkg/status", 1))


def test_alpine_release_and_apk_arch(tmp_path: Path) -> None:
    facts = collect_tree({"/etc/alpine-release": "3.19.1\n", "/etc/apk/arch": "x86\n"}, tmp_path)
    src = Source("/etc/alpine-release", 1)
    assert (facts.id, facts.version_id) == (OSValue("alpine", src), OSValue("3.19.1", src))
    assert facts.architecture == OSValue("i386", Source("/etc/apk/arch", 1))


def test_empty_files_are_facts(tmp_path: Path) -> None:
    facts = collect_tree({"/etc/os-release": "", "/etc/hostname": ""}, tmp_path)
    assert facts == OSFacts(
        kind="directory",
        hostname=OSValue("", Source("/etc/hostname")),
        os_release_path="/etc/os-release",
    )


def test_nothing_at_all(tmp_path: Path) -> None:
    assert collect_tree({"/tmp/x": ""}, tmp_path) == OSFacts(kind="directory")


def test_unterminated_quote_and_garbage(tmp_path: Path) -> None:
    text = b'ID="debian\n\xff\xfe\x00garbage\nVERSION_ID=12\n'
    facts = collect_tree({"/etc/os-release": text}, tmp_path)
    src = "/etc/os-release"
    assert facts.id == OSValue("debian", Source(src, 1))
    assert facts.version_id == OSValue("12", Source(src, 3))
    assert facts.malformed == (
        MalformedLine(Source(src, 1), "unterminated quote", 'ID="debian'),
        MalformedLine(Source(src, 2), "not a KEY=value assignment", "\ufffd\ufffd\x00garbage"),
    )


@pytest.mark.parametrize(
    ("header", "arch"),
    [
        (elf(62), "x86_64"),
        (elf(3, bits=32), "i386"),
        (elf(183), "aarch64"),
        (elf(40, bits=32), "arm"),
        (elf(21, little=False), "ppc64"),
        (elf(21), "ppc64le"),
        (elf(22, little=False), "s390x"),
        (elf(8, bits=32), "mipsel"),
        (elf(8, little=False), "mips64"),
        (elf(243), "riscv64"),
        (elf(9999), None),
        (b"\x7fELF\x03\x01", None),
        (b"#!/bin/sh\n" * 4, None),
    ],
)
def test_elf_architecture(header: bytes, arch: str | None) -> None:
    assert elf_architecture(header) == arch


@pytest.mark.network
@pytest.mark.slow
def test_real_debian_root(debian_root_dir: Path) -> None:  # noqa: F811
    facts = collect(CollectContext(fs=DirectoryFS(debian_root_dir)))
    assert facts.id == OSValue("debian", Source("/etc/os-release", 6))
    assert facts.version_id == OSValue("12", Source("/etc/os-release", 3))
    assert facts.codename == OSValue("bookworm", Source("/etc/os-release", 5))
    assert facts.architecture is not None and facts.architecture.source == Source("/bin/sh")
    assert facts.release_files[0].source == Source("/etc/debian_version", 1)
    assert facts.malformed == ()
