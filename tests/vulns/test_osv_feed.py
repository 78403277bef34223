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


def test_a_missing_osv_source_is_refused_before_any_download(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds"
    missing = tmp_path / "debian-osv-all.zip"
    (tmp_path / "www").mkdir()
    with serve(tmp_path / "www") as (url, counts):
        done = _cli("feeds", "sync", "--debian", "bookworm", "--debian-mirror", url,
                    "--debian-security-mirror", url, "--osv", str(missing),
                    "--feeds", str(feeds))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"imageaudit: error: --osv {missing}: no such file or directory\n"
    assert counts == {}  # not one request to the Debian mirror
    assert not feeds.exists()


def test_every_bad_argument_is_named_and_nothing_is_fetched(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("not a directory\n")
    not_a_zip = tmp_path / "records.txt"
    not_a_zip.write_text("not a zip\n")
    (tmp_path / "www").mkdir()
    with serve(tmp_path / "www") as (url, counts):
        done = _cli("feeds", "sync", "--debian", "bookworm-security", "--alpine", "3.19",
                    "--alpine-mirror", url, "--debian-mirror", url,
                    "--osv", str(not_a_zip), "--osv", "ftp://example.org/all.zip",
                    "--rpm", "rocky-9", "--feeds", str(not_a_dir / "feeds"))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "imageaudit: error: --debian bookworm-security: not a release codename such as "
        "bookworm (the -security and -updates suites are added to it)",
        "imageaudit: error: --alpine 3.19: not an Alpine branch such as v3.19 or edge",
        "imageaudit: error: --rpm rocky-9: expected RELEASE=URL (e.g. rocky-9=https://...)",
        f"imageaudit: error: --osv {not_a_zip}: neither a zip file nor a directory",
        "imageaudit: error: --osv ftp://example.org/all.zip: only http:// and https:// URLs "
        "are fetched; give a local file without a scheme",
        f"imageaudit: error: --feeds {not_a_dir / 'feeds'}: {not_a_dir} is not a directory",
    ]
    assert counts == {}


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
