"""``imageaudit demo``: the whole product on the built-in example, on a fresh machine.

Builds (or reuses) a weak and a clean example VM image, scans both, writes their reports,
registers them in a local catalogue on SQLite through a HEPiX image list, makes an auditor
signing key and registers it with the catalogue, starts the catalogue on 127.0.0.1, publishes
both (signed) reports and shows that the weak image is withdrawn from the VO's image list while
the clean one stays.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from imageaudit.example import build_examples
from imageaudit.pipeline import ScanOptions, scan_images

VO = "demo.example.org"
AUDITOR = "demo-auditor"
# Where the demo list says the images are: the README's tour serves the demo's directory there
# (``python3 -m http.server 8000 --directory out``) to audit the list with ``imageaudit batch``.
IMAGES_URL = "http://127.0.0.1:8000"


def say(message: str) -> None:
    print(f"imageaudit demo: {message}", file=sys.stderr, flush=True)


def _cli(*args: str) -> str:
    """Run an imageaudit sub-command in a child process; its stdout, or a clear failure."""
    proc = subprocess.run(
        [sys.executable, "-m", "imageaudit", *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"imageaudit {' '.join(args[:2])} failed: {proc.stderr.strip()}")
    return proc.stdout


def image_list(images: dict[str, Path], out: Path) -> Path:
    """An (unsigned) HEPiX image list naming the example images with their real SHA-512s."""
    from integrations.appdb.imagelist_write import Endorser, image_entry
    from integrations.appdb.imagelist_write import image_list as build_list

    entries = [
        image_entry(f"imageaudit-example-{name}", path, title=f"imageaudit {name} example",
                    description=f"the built-in {name} example image", fmt="qcow2", vo=VO,
                    uri=f"{IMAGES_URL}/{path.name}")
        for name, path in images.items()
    ]
    endorser = Endorser(dn="/CN=imageaudit demo endorser", ca="/CN=imageaudit demo CA",
                        creator="imageaudit demo", email="demo@example.org")
    doc = build_list(entries, identifier="6f1c3c55-0d5e-4d3a-9a55-1d2b7e0de001",
                     title="imageaudit demo", description="the built-in example images",
                     endorser=endorser, source="imageaudit demo",
                     uri=f"{IMAGES_URL}/image.list")
    out.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return out


@contextlib.contextmanager
def catalogue(db: str, log: Path) -> Iterator[str]:
    """A catalogue server on 127.0.0.1 for the duration of the block; yields its URL."""
    from integrations.appdb.process import CatalogueProcess

    log.unlink(missing_ok=True)
    with CatalogueProcess(db, log) as server:
        yield server.url


def _get_json(url: str) -> Any:
    from imageaudit.httpclient import fetch_bytes

    return json.loads(fetch_bytes(url, max_bytes=1 << 20, timeout=10, attempts=3))


def run(out: Path, serve: bool, progress: bool = True) -> int:
    """The demo; returns 0 when the weak image is withdrawn and the clean one listed."""
    from imageaudit.cli.publish import publish_reports

    out.mkdir(parents=True, exist_ok=True)
    say(f"building the example images in {out}/ (reused when present)")
    disks = build_examples(out)
    reports = {}
    for name, disk in disks.items():
        say(f"scanning {disk} (the {name} example)")
        pairs: list[tuple[str, str | None]] = [
            ("json", str(out / f"{name}.report.json")),
            ("html", str(out / f"{name}.report.html")),
            ("sarif", str(out / f"{name}.report.sarif")),
        ]
        outcome = scan_images([str(disk)], pairs, ScanOptions(require="basic", progress=progress))
        reports[name] = outcome.reports[0]

    db_file = out / "catalogue.db"
    db_file.unlink(missing_ok=True)
    db = f"sqlite:///{db_file.resolve()}"
    listing = image_list(disks, out / "example.image.list.json")
    say(f"registering both images in a local catalogue ({db_file}) from {listing}")
    _cli("catalogue", "import-imagelist", str(listing), "--db", db)
    created = _cli("catalogue", "token", "create", "--role", "auditor", "--name", AUDITOR,
                   "--db", db)
    token = created.strip().split()[-1]
    key = out / "auditor.key"
    for old in (key, out / "auditor.key.pub"):
        old.unlink(missing_ok=True)
    _cli("keys", "generate", str(key))
    _cli("catalogue", "auditor", "add", AUDITOR, "--public-key", f"{key}.pub", "--db", db)
    say(f"auditor {AUDITOR}: reports are signed with {key}")
    store = f"sqlite:///{(out / 'results.db').resolve()}"
    with catalogue(db, out / "catalogue.log") as url:
        say(f"catalogue running at {url}; publishing both reports")
        code = publish_reports(list(reports.values()), url, token, store, signing_key=key)
        if code != 0:
            say("publishing failed (see above)")
            return 1
        listed = _get_json(f"{url}/api/v1/vos/{VO}/image.list")["hv:imagelist"]["hv:images"]
        ids = sorted(e["hv:image"]["dc:identifier"] for e in listed)
        for name, report in reports.items():
            ident = f"imageaudit-example-{name}"
            state = "LISTED" if ident in ids else "WITHDRAWN"
            say(f"  {ident}: level {report.certification.level} -> {state} in {VO}'s image list")
        say("look at:")
        for name in disks:
            say(f"  {out / (name + '.report.html')}   the {name} image's report")
        say(f"  {url}/   the catalogue's web page (image list: {url}/api/v1/vos/{VO}/image.list)")
        ok = ids == ["imageaudit-example-clean"]
        if serve and os.isatty(sys.stdin.fileno()):
            say("the catalogue keeps running; press Ctrl-C to stop it")
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
    return 0 if ok else 1
