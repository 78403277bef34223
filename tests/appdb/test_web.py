"""The operators' page in headless Chromium: level badges, a suspended image and its reason,
an image never audited told apart from one that failed, hostile image strings escaped,
findings on the image page, search and filters."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from integrations.appdb.catalogue import Catalogue
from integrations.appdb.db import utcnow
from integrations.appdb.imagelist import parse_imagelist
from tests.appdb.helpers import (
    ADMIN,
    add_auditor,
    image_entry,
    imagelist,
    live_server,
    sha512_of,
    store_report,
)
from tests.builders.reports import make_report

HOSTILE = '<img src=x onerror="alert(1)">'


def dump_dom(url: str, profile: Path) -> str:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (scripts/bootstrap.sh --test installs it)")
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}",
         "--dump-dom", url], capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-500:]
    return proc.stdout.decode()


@pytest.fixture
def populated(sqlite_catalogue: Catalogue) -> Catalogue:
    images = [image_entry("img-good", sha512_of("good"), "fedcloud", "Good " + HOSTILE),
              image_entry("img-bad", sha512_of("bad"), "fedcloud", "Bad"),
              image_entry("img-held", sha512_of("held"), "fedcloud", "Held"),
              image_entry("img-new", sha512_of("new"), "fedcloud", "New")]
    data = imagelist(images, dn="/CN=e", ca="/CN=ca")
    sqlite_catalogue.import_imagelist(parse_imagelist(data, ca_dir=None, now=utcnow()), ADMIN)
    add_auditor(sqlite_catalogue)
    for name, level in (("good", "standard"), ("bad", "none"), ("held", "hardened")):
        store_report(sqlite_catalogue, make_report(sha512_of(name), level))
    sqlite_catalogue.suspend("img-held", "root password " + HOSTILE, ADMIN)
    return sqlite_catalogue


def test_index_shows_badges_and_suspension(populated: Catalogue, tmp_path: Path) -> None:
    with live_server(populated) as url:
        dom = dump_dom(url + "/", tmp_path / "profile")
    assert '<span class="badge level-standard" data-level="standard">standard</span>' in dom
    assert '<span class="badge level-none" data-level="none">none</span>' in dom
    assert '<span class="badge level-hardened" data-level="hardened">hardened</span>' in dom
    assert '<span class="badge suspended" data-state="suspended">suspended</span>' in dom
    assert ('<span class="reason">suspended: root password &lt;img src=x onerror="alert(1)"&gt;'
            '</span>' in dom)
    assert "Good &lt;img src=x onerror=\"alert(1)\"&gt;" in dom
    assert "<img" not in dom


def test_image_page_lists_findings_and_search_filters(populated: Catalogue, tmp_path: Path) -> None:
    with live_server(populated) as url:
        page = dump_dom(url + "/images/img-bad", tmp_path / "p1")
        found = dump_dom(url + "/?q=held", tmp_path / "p2")
    assert "<code>password_default</code>" in page
    assert "Could not evaluate: check `explodes` failed" in page
    assert 'data-image="img-held"' in found
    assert 'data-image="img-good"' not in found


def test_never_audited_is_not_a_failure(populated: Catalogue, tmp_path: Path) -> None:
    with live_server(populated) as url:
        dom = dump_dom(url + "/?state=never-audited", tmp_path / "p1")
        failed = dump_dom(url + "/?state=below-minimum&vo=fedcloud", tmp_path / "p2")
    assert 'data-image="img-new"' in dom
    assert '<span class="no-level" data-level="" title="no unexpired report">no level</span>' in dom
    assert ('<span class="badge never-audited" data-state="never-audited">never audited</span>'
            in dom)
    assert '<span class="reason">it has no report</span>' in dom
    assert '<option value="never-audited" selected="">never audited</option>' in dom
    assert [i for i in ("img-good", "img-bad", "img-held") if f'data-image="{i}"' in dom] == []
    assert 'data-image="img-bad"' in failed and 'data-image="img-new"' not in failed
    assert ('<span class="badge below-minimum" data-state="below-minimum">below the VO\'s '
            'minimum</span>' in failed)
