"""OSV records through the whole path: ``feeds sync --osv`` into a snapshot, ``scan --feeds``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from imageaudit.vulns.sync import open_snapshot
from tests.scenario import write_tree
from tests.vulns.debrepo import serve
from tests.vulns.osv_data import ALL_RECORDS, BOOKWORM_TREE, write_dir, write_zip


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imageaudit", *args], capture_output=True, text=True, check=False
    )


def test_synced_osv_dump_drives_the_vulnerability_rule(tmp_path: Path) -> None:
    dump = write_zip(tmp_path / "debian-all.zip", ALL_RECORDS)
    extra = write_dir(tmp_path / "more", ALL_RECORDS[:1])
    feeds = tmp_path / "feeds"
    synced = _cli("feeds", "sync", "--osv", str(dump), "--osv", str(extra), "--dir", str(feeds))
    assert synced.returncode == 0, synced.stderr
    root = write_tree(BOOKWORM_TREE, tmp_path / "root")
    scan = _cli("scan", str(root), "--feeds", str(feeds), "--format", "json", "-q")
    assert scan.returncode == 0, scan.stderr
    report = json.loads(scan.stdout)
    failing = sorted(
        (f["resource"], f["severity"])
        for f in report["findings"]
        if f["rule_id"] == "vulnerable_package_fix_available" and f["status"] == "FAIL"
    )
    assert ("libc6", "high") in failing and ("libc-bin", "high") in failing
    messages = " ".join(f["message"] for f in report["findings"]
                        if f["rule_id"] == "vulnerable_package_fix_available")
    assert "DSA-5514-1" in messages and "2.36-9+deb12u3" in messages


def test_a_missing_osv_source_writes_no_snapshot(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds"
    done = _cli("feeds", "sync", "--osv", str(tmp_path / "nope.zip"), "--dir", str(feeds))
    assert done.returncode == 1
    assert f"--osv {tmp_path / 'nope.zip'}: no such file or directory" in done.stderr
    snapshots = feeds / "snapshots"
    assert not snapshots.exists() or not any(snapshots.iterdir())


def test_an_osv_dump_url_is_downloaded_into_the_snapshot(tmp_path: Path) -> None:
    www = tmp_path / "www"
    write_zip(www / "Debian" / "all.zip", ALL_RECORDS)
    feeds = tmp_path / "feeds"
    with serve(www) as (url, counts):
        done = _cli("feeds", "sync", "--osv", f"{url}/Debian/all.zip", "--dir", str(feeds))
    assert done.returncode == 0, done.stderr
    assert counts == {"200": 1}
    assert done.stdout.startswith(f"osv Debian/all.zip: {len(ALL_RECORDS)} records\n")
    snapshot = open_snapshot(feeds)
    [feed] = snapshot.feeds
    assert (feed.release, feed.format, feed.files) == ("osv", "osv", ("osv/01-all.zip",))
    assert (feed.info.url, feed.info.verified, feed.info.package_count) == (
        f"{url}/Debian/all.zip", False, len(ALL_RECORDS))
    assert feed.info.verification == (
        f"downloaded from {url}/Debian/all.zip (osv.dev does not sign its dumps)")
    assert snapshot.path("osv/01-all.zip").read_bytes() == (
        www / "Debian" / "all.zip").read_bytes()
