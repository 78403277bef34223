"""Catalogue load benchmark: 10,000 images and 50,000 reports in PostgreSQL, concurrent clients
on loopback publishing reports and fetching VO image lists; prints median and p95 latencies.

    .venv/bin/python bench/catalogue_load.py [--db postgresql://...] [--clients 8]

Without ``--db`` a private PostgreSQL is started (tests/builders/postgres.py). The goal from
issue 5: both medians under 100 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from integrations.appdb.catalogue import Principal  # noqa: E402
from integrations.appdb.db import Image, Report, Version, Vo  # noqa: E402
from integrations.appdb.process import CatalogueProcess  # noqa: E402
from integrations.appdb.server import open_catalogue  # noqa: E402
from tests.appdb.helpers import add_auditor, body  # noqa: E402
from tests.builders.postgres import create_database, running_postgres  # noqa: E402
from tests.builders.reports import make_report  # noqa: E402


def sha(i: int) -> str:
    return hashlib.sha512(f"image-{i}".encode()).hexdigest()


def seed(url: str, images: int, reports: int, vos: int) -> None:
    cat = open_catalogue(url)
    now = datetime.now(UTC).replace(microsecond=0)
    levels = json.dumps(["basic", "standard", "hardened"])
    body = json.dumps(make_report(sha(0), "basic"))
    with cat.session() as s:
        s.execute(insert(Vo), [{"id": v + 1, "name": f"vo{v:02d}", "min_level": None}
                               for v in range(vos)])
        s.execute(insert(Image), [{"id": i + 1, "identifier": f"img-{i:05d}", "appliance_id": None,
                                   "vo_id": i % vos + 1, "current_version_id": i + 1}
                                  for i in range(images)])
        s.execute(insert(Version), [{
            "id": i + 1, "image_id": i + 1, "version": "1.0", "title": f"Image {i}",
            "description": "benchmark image", "uri": f"https://img.example.org/{i}.qcow2",
            "size": 2**30, "sha512": sha(i), "format": "qcow2", "hypervisor": "QEMU,KVM",
            "arch": "x86_64", "os": "Linux", "osname": "Debian", "osversion": "12",
            "comments": "", "extra": "{}", "expires": None, "created": now}
            for i in range(images)])
        batch = []
        for r in range(reports):
            i = r % images
            batch.append({
                "report_id": hashlib.sha256(f"r{r}".encode()).hexdigest(), "version_id": i + 1,
                "level": random.choice(["none", "basic", "standard", "hardened"]),
                "levels": levels, "ruleset_version": "sha256:x", "levels_version": "sha256:y",
                "tool_version": "bench",
                "issued": now - timedelta(days=reports // images - r // images),
                "expires": now + timedelta(days=30), "source": "bench", "received": now,
                "body": body})
            if len(batch) == 5000:
                s.execute(insert(Report), batch)
                batch = []
        if batch:
            s.execute(insert(Report), batch)
    cat.create_token("bench", "auditor", Principal("bench", "admin"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db")
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--reports", type=int, default=50_000)
    ap.add_argument("--vos", type=int, default=20)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=400, help="per kind")
    args = ap.parse_args()
    with ExitStack() as stack:
        url = args.db
        if url is None:
            server = stack.enter_context(running_postgres())
            url = create_database(server, "bench")
        t0 = time.monotonic()
        seed(url, args.images, args.reports, args.vos)
        print(f"seeded {args.images} images, {args.reports} reports, {args.vos} VOs "
              f"in {time.monotonic() - t0:.1f} s")
        cat = open_catalogue(url)
        token = cat.create_token("load", "auditor", Principal("bench", "admin"))
        add_auditor(cat, "load")  # reports are signed with the helpers' auditor key
        log = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "catalogue.log"
        base = stack.enter_context(CatalogueProcess(url, log, cwd=ROOT)).url
        print(f"{args.clients} concurrent clients on loopback, {args.requests} requests per kind")
        results = {"publish": run(base, token, args, publish=True),
                   "image.list": run(base, token, args, publish=False)}
        cold = cold_lists(base, token, args)
    failed = False
    for name, (lat, extra) in results.items():
        med, p95 = statistics.median(lat), sorted(lat)[int(len(lat) * 0.95) - 1]
        print(f"{name:11s} median {med * 1000:6.1f} ms  p95 {p95 * 1000:6.1f} ms  {extra}")
        failed |= med >= 0.1
    print(f"image.list uncached (after a change, 1 client) median "
          f"{statistics.median(cold) * 1000:.1f} ms")
    print("FAIL: a median is 100 ms or more" if failed else "OK: both medians under 100 ms")
    return 1 if failed else 0


def cold_lists(base: str, token: str, args: argparse.Namespace) -> list[float]:
    """Each list fetched right after a publish, so the server renders it afresh."""
    auth = {"Authorization": f"Bearer {token}"}
    out = []
    with httpx.Client(base_url=base, timeout=60) as c:
        for n in range(40):
            i = random.randrange(args.images)
            # A distinct issue time makes a distinct report (the catalogue recomputes the id).
            report = make_report(sha(i), "basic", issued=timedelta(seconds=-100_000 - n))
            c.post("/api/v1/reports", json=body(report), headers=auth)
            t = time.perf_counter()
            assert c.get(f"/api/v1/vos/vo{i % args.vos:02d}/image.list").status_code == 200
            out.append(time.perf_counter() - t)
    return out


def run(base: str, token: str, args: argparse.Namespace, *,
        publish: bool) -> tuple[list[float], str]:
    auth = {"Authorization": f"Bearer {token}"}
    bodies = []
    if publish:
        for n in range(args.requests):
            i = random.randrange(args.images)
            report = make_report(sha(i), random.choice(["none", "basic", "standard"]),
                                 issued=timedelta(seconds=-60 - n))
            bodies.append(body(report))
    sizes: list[int] = []

    def one(n: int, client: httpx.Client) -> float:
        t = time.perf_counter()
        if publish:
            r = client.post("/api/v1/reports", json=bodies[n], headers=auth)
            assert r.status_code == 201, r.text
        else:
            r = client.get(f"/api/v1/vos/vo{n % args.vos:02d}/image.list")
            assert r.status_code == 200, r.text
            sizes.append(len(json.loads(r.content)["hv:imagelist"]["hv:images"]))
        return time.perf_counter() - t

    clients = [httpx.Client(base_url=base, timeout=60) for _ in range(args.clients)]
    with ThreadPoolExecutor(args.clients) as pool:
        lat = list(pool.map(lambda n: one(n, clients[n % args.clients]), range(args.requests)))
    for c in clients:
        c.close()
    extra: Any = f"({statistics.mean(sizes):.0f} listed images per list)" if sizes else ""
    return lat, extra


if __name__ == "__main__":
    raise SystemExit(main())
