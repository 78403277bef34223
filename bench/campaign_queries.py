"""Campaign queries on a large catalogue: 10,000 image versions of 500 packages each (5 million
package rows) and 1 million hashed files, on SQLite and PostgreSQL; prints each query's time.

    .venv/bin/python bench/campaign_queries.py [--versions N] [--packages N] [--files N]
                                               [--backend sqlite|postgresql|both] [--db URL]

The rows are written straight into the inventory tables (the publish path would spend its time
verifying 10,000 reports, which is not what is measured here); the queries run through
:mod:`integrations.appdb.campaigns` as the CLI and the API run them. A package name is shared by
every version that holds it (a pool of 3,000 names, Debian-like versions, a few builds each);
file hashes are distinct but for a few planted indicators. The goal: every query under 1 s.
Exits 1 when one is slower.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from integrations.appdb.campaigns import (  # noqa: E402
    CampaignResult,
    query_endorser,
    query_indicators,
    query_package,
)
from integrations.appdb.catalogue import Catalogue  # noqa: E402
from integrations.appdb.db import (  # noqa: E402
    Appliance,
    Endorser,
    Image,
    Inventory,
    Version,
    Vo,
    utcnow,
)
from integrations.appdb.server import open_catalogue  # noqa: E402

TARGET_S = 1.0
POOL = 3000
CHUNK = 20_000
PLANTED = 50  # versions holding the planted indicator files


def sha512(i: int) -> str:
    return hashlib.sha512(f"image-{i}".encode()).hexdigest()


def hexdigest(kind: str, value: str) -> str:
    return hashlib.new(kind, value.encode()).hexdigest()


def package_rows(versions: int, per_version: int, seed: int = 7) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(seed)
    names = ["openssl", "libssl3", "libc6", "bash", "zlib1g"] + [f"pkg{i}" for i in
                                                                  range(POOL - 5)]
    sources = {"libssl3": "openssl", "libc6": "glibc", "zlib1g": "zlib"}
    for vid in range(1, versions + 1):
        chosen = names[:5] + rng.sample(names[5:], per_version - 5)
        for name in chosen:
            build = rng.randint(1, 4)
            upstream = "3.0.11" if sources.get(name, name) == "openssl" else "2.36"
            version = f"{upstream}-{build}~deb12u{rng.randint(1, 3)}"
            if rng.random() < 0.02:
                version = "1:" + version
            yield (vid, name, version, "amd64", sources.get(name, name), version, "dpkg",
                   "Debian:12", None)


def file_rows(versions: int, total: int) -> Iterator[tuple[Any, ...]]:
    per_version = max(1, total // versions)
    n = 0
    for vid in range(1, versions + 1):
        for j in range(per_version):
            n += 1
            planted = vid <= PLANTED and j == 0
            seed = "planted" if planted else f"file-{n}"
            name = "evil.so" if planted else f"lib{j}.so"
            yield (vid, f"/usr/lib/x86_64-linux-gnu/{name}", name, hexdigest("sha256", seed),
                   hexdigest("sha1", seed), hexdigest("md5", seed), 4096, "elf")


PKG_COLS = ("version_id", "name", "version", "arch", "source_name", "source_version", "manager",
            "ecosystem", "purl")
FILE_COLS = ("version_id", "path", "basename", "sha256", "sha1", "md5", "size", "kinds")


def bulk(cat: Catalogue, table: str, cols: tuple[str, ...], rows: Iterator[tuple[Any, ...]]
         ) -> int:
    """Load rows: COPY on PostgreSQL, executemany on SQLite."""
    count = 0
    raw = cat.engine.raw_connection()
    try:
        cur = raw.cursor()
        if cat.engine.dialect.name == "postgresql":
            with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in rows:
                    copy.write_row(row)
                    count += 1
        else:
            marks = ", ".join("?" for _ in cols)
            sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})"
            batch: list[tuple[Any, ...]] = []
            for row in rows:
                batch.append(row)
                if len(batch) >= CHUNK:
                    cur.executemany(sql, batch)
                    count += len(batch)
                    batch.clear()
            cur.executemany(sql, batch)
            count += len(batch)
        raw.commit()
    finally:
        raw.close()
    return count


def seed(cat: Catalogue, versions: int, per_version: int, files: int) -> None:
    now = utcnow()
    with cat.session() as s:
        s.execute(insert(Vo), [{"id": v + 1, "name": f"vo{v:02d}", "min_level": None}
                               for v in range(20)])
        s.execute(insert(Endorser), [{"id": e + 1, "dn": f"/DC=org/CN=Endorser {e}",
                                      "ca": "/CN=CA", "name": f"Endorser {e}",
                                      "email": f"e{e}@example.org"} for e in range(100)])
        s.execute(insert(Appliance), [{"id": e + 1, "identifier": f"list-{e}",
                                       "title": f"list {e}", "endorser_id": e + 1,
                                       "source_uri": "https://example.org/", "list_version": "1",
                                       "imported_at": now} for e in range(100)])
        # Two versions per image: the current one and the one before.
        images = versions // 2
        s.execute(insert(Image), [{"id": i + 1, "identifier": f"img-{i:05d}",
                                   "appliance_id": i % 100 + 1, "vo_id": i % 20 + 1,
                                   "current_version_id": 2 * i + 2} for i in range(images)])
        s.execute(insert(Version), [{
            "id": v + 1, "image_id": v // 2 + 1, "version": str(v % 2 + 1), "title": f"Image {v}",
            "description": "", "uri": f"https://img.example.org/{v}.qcow2", "size": 2**30,
            "sha512": sha512(v + 1), "format": "qcow2", "hypervisor": "QEMU", "arch": "x86_64",
            "os": "Linux", "osname": "Debian", "osversion": "12", "comments": "", "extra": "{}",
            "expires": None, "created": now} for v in range(images * 2)])
        s.execute(insert(Inventory), [{"version_id": v + 1, "report_id": f"r{v}", "complete": True,
                                       "not_hashed": 0, "packages": per_version,
                                       "files": files // versions, "stored": now}
                                      for v in range(images * 2)])
    started = time.perf_counter()
    n = bulk(cat, "inventory_packages", PKG_COLS, package_rows(versions, per_version))
    print(f"  {n:,} package rows in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    n = bulk(cat, "inventory_files", FILE_COLS, file_rows(versions, files))
    print(f"  {n:,} file rows in {time.perf_counter() - started:.0f} s")
    with cat.engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def timed(label: str, run: Callable[[], CampaignResult], repeat: int = 5) -> float:
    run()  # warm the caches once, as a server's would be
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    best, med = min(times), statistics.median(times)
    print(f"  {label:<58} {len(result.hits):>6} hits  median {med * 1000:7.1f} ms  "
          f"best {best * 1000:7.1f} ms")
    return med


def queries(cat: Catalogue) -> list[float]:
    evil = {"sha256": hexdigest("sha256", "planted"), "sha1": hexdigest("sha1", "planted"),
            "md5": hexdigest("md5", "planted")}
    misses = [hexdigest("sha256", f"absent-{i}") for i in range(5000)]
    return [
        timed("package openssl << 3.0.11-2~deb12u1 (every version holds it)",
              lambda: query_package(cat, "openssl", "<< 3.0.11-2~deb12u1")),
        timed("package pkg1234 (any version, ~1/6 of the versions)",
              lambda: query_package(cat, "pkg1234")),
        timed("package glibc by source, >= 2.36-3~deb12u1",
              lambda: query_package(cat, "glibc", ">= 2.36-3~deb12u1")),
        timed("package nosuchpackage", lambda: query_package(cat, "nosuchpackage")),
        timed("IOC one sha256", lambda: query_indicators(cat, sha256={evil["sha256"]})),
        timed("IOC sha1 + md5 + file name",
              lambda: query_indicators(cat, sha1={evil["sha1"]}, md5={evil["md5"]},
                                       names={"evil.so"})),
        timed("IOC 5,000 sha256 (one present)",
              lambda: query_indicators(cat, sha256={evil["sha256"], *misses})),
        timed("IOC path", lambda: query_indicators(
            cat, paths={"/usr/lib/x86_64-linux-gnu/evil.so"})),
        timed("endorser DN (1/100 of the images)",
              lambda: query_endorser(cat, "/DC=org/CN=Endorser 7")),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--packages", type=int, default=500)
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--db", help="an empty database to use instead (one backend)")
    args = parser.parse_args()
    slow = []
    with ExitStack() as stack:
        urls: list[tuple[str, str]] = []
        if args.db:
            urls.append((args.db.split(":", 1)[0], args.db))
        else:
            if args.backend in ("sqlite", "both"):
                tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="campaign-bench-"))
                urls.append(("sqlite", f"sqlite:///{tmp}/catalogue.db"))
            if args.backend in ("postgresql", "both"):
                from tests.builders.postgres import create_database, running_postgres

                server = stack.enter_context(running_postgres())
                urls.append(("postgresql", create_database(server, "campaigns")))
        for name, url in urls:
            print(f"{name}: {args.versions:,} versions x {args.packages} packages, "
                  f"{args.files:,} files")
            cat = open_catalogue(url)
            seed(cat, args.versions, args.packages, args.files)
            slow += [t for t in queries(cat) if t > TARGET_S]
    if slow:
        print(f"{len(slow)} queries slower than {TARGET_S} s")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
