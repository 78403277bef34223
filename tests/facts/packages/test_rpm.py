"""rpm inventory from real databases: SQLite written by the host's rpm, Berkeley DB hash
files written by ``db_load`` (checked with rpm's own ``bdb_ro`` backend), and ndb files
written here from rpm's layout (Debian's rpm has no ndb backend to write or check one).
"""

from __future__ import annotations

import shutil
import sqlite3
import struct
import subprocess
import time
import zlib
from pathlib import Path

import pytest

from imageaudit.facts.base import CollectContext
from imageaudit.facts.packages import PackagesFacts, collect
from imageaudit.facts.packages.bdb import BDBError, iter_hash_items
from imageaudit.facts.packages.model import InstalledPackage, PackageDatabase, PackageError
from imageaudit.facts.packages.rpm_header import HeaderError, parse_header
from imageaudit.model import Source
from imageaudit.openers.directory import DirectoryFS
from tests.scenario import Symlink, write_tree

pytestmark = pytest.mark.skipif(
    not (shutil.which("rpmbuild") and shutil.which("rpm") and shutil.which("db_load")),
    reason="needs rpm, rpmbuild and db_load (Debian packages rpm, db-util)",
)

SPECS = {
    "hello": """Name: hello
Version: 2.1
Release: 3.el9
Epoch: 4
Summary: t
License: MIT
BuildArch: noarch
%description
t
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/etc/hello
echo x > %{buildroot}/usr/bin/hello
echo y > %{buildroot}/etc/hello/hello.conf
%files
/usr/bin/hello
%dir /etc/hello
/etc/hello/hello.conf
""",
    "libtiny": """Name: libtiny
Version: 0.9.1
Release: 1
Summary: t
License: MIT
BuildArch: x86_64
%description
t
%install
mkdir -p %{buildroot}/usr/lib/libtiny
for i in $(seq 1 40); do echo $i > %{buildroot}/usr/lib/libtiny/module-number-$i.so; done
%files
/usr/lib/libtiny
""",
    "meta": """Name: meta
Version: 1
Release: 0
Summary: t
License: MIT
BuildArch: noarch
%description
t
%files
""",
}

HELLO_PATHS = frozenset({"/etc/hello", "/etc/hello/hello.conf", "/usr/bin/hello"})
TINY_PATHS = frozenset(
    {"/usr/lib/libtiny"} | {f"/usr/lib/libtiny/module-number-{i}.so" for i in range(1, 41)}
)


def expected(path: str) -> tuple[InstalledPackage, ...]:
    src = Source(path)
    return (
        InstalledPackage("hello", "2.1", 4, "3.el9", "noarch", "hello", "2.1-3.el9", "rpm",
                         "installed", src, 3, HELLO_PATHS),
        InstalledPackage("libtiny", "0.9.1", None, "1", "x86_64", "libtiny", "0.9.1-1", "rpm",
                         "installed", src, 41, TINY_PATHS),
        InstalledPackage("meta", "1", None, "0", "noarch", "meta", "1-0", "rpm", "installed",
                         src, 0, frozenset()),
    )  # fmt: skip


@pytest.fixture(scope="session")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real rpmdb.sqlite: three tiny rpms built and installed ``--justdb`` by host rpm."""
    top = tmp_path_factory.mktemp("rpmbuild")
    rpms: list[Path] = []
    for name, spec in SPECS.items():
        spec_path = top / f"{name}.spec"
        spec_path.write_text(spec)
        subprocess.run(
            ["rpmbuild", "-bb", "--nodeps", "--define", f"_topdir {top}", str(spec_path)],
            check=True, capture_output=True,
        )  # fmt: skip
    rpms = sorted(top.glob("RPMS/*/*.rpm"))
    dbpath = tmp_path_factory.mktemp("rpmdb")
    rpm = ["rpm", "--dbpath", str(dbpath)]
    subprocess.run([*rpm, "--initdb"], check=True, capture_output=True)
    subprocess.run(
        [*rpm, "-i", "--nodeps", "--justdb", "--noscripts", "--ignorearch", "--ignoreos",
         *map(str, rpms)],
        check=True, capture_output=True,
    )  # fmt: skip
    return dbpath / "rpmdb.sqlite"


def headers(sqlite_path: Path) -> list[tuple[int, bytes]]:
    conn = sqlite3.connect(f"file:{sqlite_path}?mode=ro&immutable=1", uri=True)
    try:
        return list(conn.execute("SELECT hnum, blob FROM Packages ORDER BY hnum"))
    finally:
        conn.close()


def write_bdb(target: Path, rows: list[tuple[int, bytes]], pagesize: int, lorder: int) -> Path:
    """A Berkeley DB hash ``Packages`` as rpm's bdb backend keeps it, written by db_load."""
    lines = ["VERSION=3", "format=bytevalue", "type=hash", f"db_pagesize={pagesize}",
             f"db_lorder={lorder}", "HEADER=END"]  # fmt: skip
    # Key 0 is rpm's instance counter: a record that is not a header.
    counter = (len(rows) + 1).to_bytes(4, "little")
    for key, value in [(0, counter), *rows]:
        lines += [" " + key.to_bytes(4, "little").hex(), " " + value.hex()]
    lines.append("DATA=END")
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["db_load", str(target)], input="\n".join(lines).encode() + b"\n", check=True)
    return target


def write_ndb(target: Path, rows: list[tuple[int, bytes]]) -> Path:
    """An ndb ``Packages.db`` laid out as rpm's rpmpkg.c writes it (one slot page)."""
    slots = bytearray()
    blobs = bytearray()
    blkoff = 4096 // 16
    for pkgidx, blob in rows:
        head = struct.pack("<4sIII", b"BlbS", pkgidx, 1700000000, len(blob))
        body = head + blob
        pad = -(len(body) + 12) % 16
        body += b"\0" * pad
        body += struct.pack("<II4s", zlib.adler32(body), len(blob), b"BlbE")
        slots += struct.pack("<4sIII", b"Slot", pkgidx, blkoff, len(body) // 16)
        blobs += body
        blkoff += len(body) // 16
    header = struct.pack("<4sIIII12x", b"RpmP", 0, 1, 1, len(rows) + 1)
    page = header + slots
    page += b"Slot" + b"\0" * 12
    page += (b"Slot" + b"\0" * 12) * ((4096 - len(page)) // 16)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(bytes(page) + bytes(blobs))
    return target


def host_rpm_query(dbpath: Path, backend: str) -> list[str]:
    out = subprocess.run(
        ["rpm", "--dbpath", str(dbpath), "--define", f"_db_backend {backend}", "-qa", "--qf",
         "%{NAME} %{EPOCHNUM} %{VERSION} %{RELEASE} %{ARCH} %{SOURCERPM}\\n"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return sorted(out.splitlines())


def as_query_lines(facts: PackagesFacts) -> list[str]:
    return sorted(
        f"{p.name} {p.epoch or 0} {p.version} {p.release} {p.arch} "
        f"{p.source_name}-{p.source_version}.src.rpm"
        for p in facts.packages
    )


def collect_tree(root: Path) -> PackagesFacts:
    return collect(CollectContext(fs=DirectoryFS(root)))


def test_sqlite_database(sqlite_db: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_tree({"/var/lib/rpm/rpmdb.sqlite": sqlite_db.read_bytes()}, root)
    facts = collect_tree(root)
    assert facts.packages == expected("/var/lib/rpm/rpmdb.sqlite")
    assert facts.databases == (
        PackageDatabase("rpm", "rpm-sqlite", "/var/lib/rpm/rpmdb.sqlite", 3),
    )
    assert facts.errors == ()
    assert as_query_lines(facts) == host_rpm_query(sqlite_db.parent, "sqlite")
    assert [p.name for p in facts.owners("/etc/hello/hello.conf")] == ["hello"]


def test_sqlite_through_sysimage_symlink_counted_once(sqlite_db: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_tree(
        {
            "/usr/lib/sysimage/rpm/rpmdb.sqlite": sqlite_db.read_bytes(),
            "/var/lib/rpm": Symlink("../../usr/lib/sysimage/rpm"),
        },
        root,
    )
    facts = collect_tree(root)
    assert facts.packages == expected("/usr/lib/sysimage/rpm/rpmdb.sqlite")
    assert facts.databases == (
        PackageDatabase("rpm", "rpm-sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite", 3),
    )


@pytest.mark.parametrize(("pagesize", "lorder"), [(512, 1234), (65536, 4321)])
def test_bdb_database(sqlite_db: Path, tmp_path: Path, pagesize: int, lorder: int) -> None:
    # 512-byte pages put every header on overflow pages; 64 KiB pages keep them on-page.
    root = tmp_path / "root"
    bdb = write_bdb(root / "var/lib/rpm/Packages", headers(sqlite_db), pagesize, lorder)
    facts = collect_tree(root)
    assert facts.packages == expected("/var/lib/rpm/Packages")
    assert facts.databases == (PackageDatabase("rpm", "rpm-bdb", "/var/lib/rpm/Packages", 3),)
    assert facts.errors == ()
    assert as_query_lines(facts) == host_rpm_query(bdb.parent, "bdb_ro")


def test_ndb_database(sqlite_db: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_ndb(root / "usr/lib/sysimage/rpm/Packages.db", headers(sqlite_db))
    facts = collect_tree(root)
    assert facts.packages == expected("/usr/lib/sysimage/rpm/Packages.db")
    assert facts.databases == (
        PackageDatabase("rpm", "rpm-ndb", "/usr/lib/sysimage/rpm/Packages.db", 3),
    )
    assert facts.errors == ()


def test_newest_format_is_read_and_stale_one_listed(sqlite_db: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    rows = headers(sqlite_db)
    write_bdb(root / "var/lib/rpm/Packages", rows[:1], 4096, 1234)
    (root / "var/lib/rpm/rpmdb.sqlite").write_bytes(sqlite_db.read_bytes())
    facts = collect_tree(root)
    assert [p.name for p in facts.packages] == ["hello", "libtiny", "meta"]
    assert facts.databases == (
        PackageDatabase("rpm", "rpm-sqlite", "/var/lib/rpm/rpmdb.sqlite", 3),
        PackageDatabase("rpm", "rpm-bdb", "/var/lib/rpm/Packages", 0, used=False,
                        note="not read: /var/lib/rpm/rpmdb.sqlite is preferred"),
    )  # fmt: skip


# -- malformed databases: error facts, quickly, never an exception ---------------------------


def sqlite_with(tmp_path: Path, rows: list[tuple[int, object]], schema: str | None = None) -> Path:
    path = tmp_path / "made.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(schema or "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB)")
    if schema is None:
        conn.executemany("INSERT INTO Packages VALUES (?, ?)", rows)
    conn.commit()
    conn.close()
    return path


def run_on(tmp_path: Path, path: str, data: bytes) -> PackagesFacts:
    root = tmp_path / "root"
    write_tree({path: data}, root)
    start = time.monotonic()
    facts = collect_tree(root)
    assert time.monotonic() - start < 5
    return facts


def test_header_index_count_past_data(sqlite_db: Path, tmp_path: Path) -> None:
    good = next(b for _, b in headers(sqlite_db) if parse_header(b).string(1000) == "hello")
    il = struct.unpack(">I", good[:4])[0]
    bad = struct.pack(">II", il + 1000, 64) + good[8:]
    db = sqlite_with(tmp_path, [(1, good), (2, bad), (3, "text, not a blob")])
    facts = run_on(tmp_path, "/var/lib/rpm/rpmdb.sqlite", db.read_bytes())
    src = Source("/var/lib/rpm/rpmdb.sqlite")
    assert [p.name for p in facts.packages] == ["hello"]
    need = 8 + 16 * (il + 1000) + 64
    assert facts.errors == (
        PackageError("rpm", src, f"record 2: index count {il + 1000} and data length 64 need "
                     f"{need} bytes, blob has {len(bad)}"),
        PackageError("rpm", src, "record 3: blob is str"),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"\0\0", "header of 2 bytes is shorter than its 8-byte preamble"),
        (struct.pack(">II", 0, 0), "index count 0 out of range"),
        (struct.pack(">II", 1, 4) + struct.pack(">iIiI", 1000, 6, 9, 1) + b"abcd",
         "tag 1000: offset 9 outside 4 bytes of data"),
        (struct.pack(">II", 1, 4) + struct.pack(">iIiI", 1000, 6, 0, 1) + b"abcd",
         "string at data offset 0 is not terminated"),
        (struct.pack(">II", 1, 4) + struct.pack(">iIiI", 1117, 8, 0, 3) + b"a\0b\0",
         "string at data offset 4 is not terminated"),
        (struct.pack(">II", 1, 4) + struct.pack(">iIiI", 1116, 4, 0, 2) + b"abcd",
         "tag 1116: 2 values of 4 bytes run past the data"),
        (struct.pack(">II", 1, 4) + struct.pack(">iIiI", 1000, 77, 0, 1) + b"abcd",
         "tag 1000: unknown type 77"),
    ],
)  # fmt: skip
def test_header_bounds(blob: bytes, message: str) -> None:
    with pytest.raises(HeaderError) as info:
        parse_header(blob)
    assert str(info.value) == message


def test_garbage_sqlite(tmp_path: Path) -> None:
    facts = run_on(tmp_path, "/var/lib/rpm/rpmdb.sqlite", b"\x00\xffgarbage" * 5000)
    assert facts.packages == ()
    assert facts.errors == (
        PackageError("rpm", Source("/var/lib/rpm/rpmdb.sqlite"),
                     "rpm-sqlite database: file is not a database"),
    )  # fmt: skip


def test_sqlite_packages_view_is_refused(tmp_path: Path) -> None:
    schema = "CREATE VIEW Packages AS SELECT 1 AS hnum, zeroblob(10) AS blob"
    db = sqlite_with(tmp_path, [], schema)
    facts = run_on(tmp_path, "/var/lib/rpm/rpmdb.sqlite", db.read_bytes())
    assert facts.errors == (
        PackageError("rpm", Source("/var/lib/rpm/rpmdb.sqlite"),
                     "rpm-sqlite database: no Packages table"),
    )  # fmt: skip


def bdb_bytes(sqlite_db: Path, tmp_path: Path) -> bytes:
    return write_bdb(tmp_path / "bdb" / "Packages", headers(sqlite_db), 512, 1234).read_bytes()


def test_bdb_bucket_page_out_of_bounds(sqlite_db: Path, tmp_path: Path) -> None:
    data = bytearray(bdb_bytes(sqlite_db, tmp_path))
    last = struct.unpack_from("<I", data, 32)[0]
    struct.pack_into("<I", data, 96, 5000)  # spares[0]: bucket 0 now lives at page 5000
    facts = run_on(tmp_path, "/var/lib/rpm/Packages", bytes(data))
    assert facts.packages == ()
    assert facts.errors == (
        PackageError("rpm", Source("/var/lib/rpm/Packages"),
                     f"rpm-bdb database: page 5000 out of bounds (last page {last})"),
    )  # fmt: skip


def test_bdb_truncated_keeps_nothing_invented(sqlite_db: Path, tmp_path: Path) -> None:
    data = bdb_bytes(sqlite_db, tmp_path)
    facts = run_on(tmp_path, "/var/lib/rpm/Packages", data[: len(data) // 2])
    assert len(facts.errors) == 1
    assert facts.errors[0].message.startswith("rpm-bdb database: page ")
    assert facts.errors[0].message.endswith(
        f"lies past the end of the file ({len(data) // 2} bytes)"
    )
    assert all(p.name in ("hello", "libtiny", "meta") for p in facts.packages)


def test_bdb_overflow_loop(tmp_path: Path) -> None:
    # Meta page + one hash page whose only value is an overflow chain looping on itself.
    psize = 512
    meta = bytearray(psize)
    struct.pack_into("<IIII", meta, 12, 0x061561, 9, psize, 0)
    struct.pack_into("<I", meta, 32, 2)  # last page
    struct.pack_into("<III", meta, 72, 0, 0, 0)  # max bucket 0
    struct.pack_into("<I", meta, 96, 1)  # bucket 0 -> page 1
    page = bytearray(psize)
    struct.pack_into("<I", page, 8, 1)
    struct.pack_into("<HH", page, 20, 2, 0)
    page[25] = 13
    key = b"\x01" + b"\x01\0\0\0"
    koff = psize - len(key)
    voff = koff - 12
    page[koff:] = key
    page[voff:koff] = b"\x03\0\0\0" + struct.pack("<II", 2, 1000)
    struct.pack_into("<HH", page, 26, koff, voff)
    ov = bytearray(psize)
    struct.pack_into("<III", ov, 8, 2, 0, 2)  # next page is itself
    struct.pack_into("<H", ov, 22, 100)
    ov[25] = 7
    with pytest.raises(BDBError) as info:
        list(iter_hash_items(bytes(meta + page + ov)))
    assert str(info.value) == "overflow chain loops at page 2"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "file of 0 bytes is shorter than a metadata page"),
        (b"\xff" * 4096, "not a Berkeley DB hash database (bad magic)"),
        (b"\0" * 12 + struct.pack("<I", 0x053162) + b"\0" * 496,
         "a Berkeley DB btree, not the hash database rpm writes"),
    ],
)  # fmt: skip
def test_bdb_not_hash(data: bytes, message: str) -> None:
    with pytest.raises(BDBError) as info:
        list(iter_hash_items(data))
    assert str(info.value) == message


def test_ndb_bad_checksum_is_one_error(sqlite_db: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    path = write_ndb(root / "var/lib/rpm/Packages.db", headers(sqlite_db))
    data = bytearray(path.read_bytes())
    data[4096 + 40] ^= 0xFF  # inside the first blob
    path.write_bytes(bytes(data))
    facts = collect_tree(root)
    assert [p.name for p in facts.packages] == ["hello", "meta"]  # record 1 is libtiny
    assert facts.errors == (
        PackageError("rpm", Source("/var/lib/rpm/Packages.db"),
                     "record 1: package 1: adler32 checksum mismatch"),
    )  # fmt: skip


def test_ndb_slot_past_file(sqlite_db: Path, tmp_path: Path) -> None:
    data = bytearray(write_ndb(tmp_path / "Packages.db", headers(sqlite_db)).read_bytes())
    struct.pack_into("<I", data, 32 + 12, 100_000)  # first slot: block count
    facts = run_on(tmp_path, "/var/lib/rpm/Packages.db", bytes(data))
    assert facts.packages == ()
    assert facts.errors == (
        PackageError("rpm", Source("/var/lib/rpm/Packages.db"),
                     "rpm-ndb database: package 1: blocks 256+100000 run past the file"),
    )  # fmt: skip
