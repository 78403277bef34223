"""Indicators of compromise read from a MISP event, a MISP feed and CSV lists, by content, with
where each came from; what is not understood is skipped with its reason, and hostile sources are
bounded."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from imageaudit.ioc import IocError, Limits, load_indicators

DATA = Path(__file__).parent / "data" / "ioc"
EVENT = DATA / "misp-event.json"
FEED = DATA / "feed"
EVENT_UUID = "4a2b7c1e-93d5-4f60-8a1e-2c7d9e0f5b34"
FEED_A = "3f0b1c2d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
FEED_B = "c6d7e8f9-0a1b-4c2d-9e3f-4a5b6c7d8e9f"


def h(algorithm: str, text: str) -> str:
    """The test data's hashes are those of short words, so that a reader can recompute them."""
    return hashlib.new(algorithm, text.encode()).hexdigest()


def _event() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(EVENT.read_text())
    return loaded


def _write(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document))
    return path


def _feed_copy(tmp_path: Path) -> Path:
    feed = tmp_path / "feed"
    shutil.copytree(FEED, feed)
    return feed


def _manifest(feed: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((feed / "manifest.json").read_text())
    return loaded


# -- a MISP event ------------------------------------------------------------------------------

def test_misp_event_attributes_objects_and_composites() -> None:
    got = load_indicators(EVENT)
    assert got.sha256 == {h("sha256", "xmrig"), h("sha256", "kdevtmpfsi"),
                          h("sha256", "kworkerds")}
    assert got.sha1 == {h("sha1", "context"), h("sha1", "kworkerds")}
    # md5 attribute, malware-sample (filename|md5) and filename|md5 each give an md5
    assert got.md5 == {h("md5", "xmrig"), h("md5", "dota3"), h("md5", "libprocesshider")}
    # composites give their file name; filename|sha512 its name only (no sha512 is kept)
    assert got.names == {"kdevtmpfsi", "dota3.tar.gz", "kinsing", "ld.so.preload", "kworkerds"}
    # a filename attribute holding a slash, and a file object's fullpath, are paths
    assert got.paths == {"/tmp/.X11-unix/.rsync/c/tsm", "/usr/local/lib/libprocesshider.so"}
    assert got.count == 3 + 2 + 3 + 5 + 2
    assert got.ignored["the sha512 of filename|sha512"] == 1
    assert got.ignored["type ip-dst"] == 1


def test_misp_event_leaves_out_revoked_attributes_objects_and_proposals() -> None:
    got = load_indicators(EVENT)
    everything = got.sha256 | got.sha1 | got.md5
    assert h("sha256", "deleted") not in everything  # "deleted": true
    assert h("sha256", "revoked-object") not in everything  # in an object with "deleted": true
    assert h("sha256", "proposal") not in everything  # a ShadowAttribute, not an attribute
    assert got.ignored["deleted"] == 2


def test_misp_event_bad_hash_is_skipped_with_its_reason() -> None:
    got = load_indicators(EVENT)
    assert got.skipped_total == 1
    bad = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"
    assert got.skipped == (f"{EVENT} event {EVENT_UUID} attribute "
                           f"'6f1d2b3c-0000-4000-8000-000000000008': sha256 '{bad}' is not 64 "
                           "hex digits",)


def test_misp_event_upper_case_hash_is_read_lower_case() -> None:
    event = _event()
    assert event["Event"]["Attribute"][0]["value"] == h("sha256", "xmrig").upper()
    assert h("sha256", "xmrig") in load_indicators(EVENT).sha256


def test_provenance_names_event_info_and_creator() -> None:
    got = load_indicators(EVENT)
    expected = (f'MISP event {EVENT_UUID} "Cryptominer dropped on cloud VMs through a weak SSH '
                'password" (EGI CSIRT)')
    assert got.provenance[h("sha256", "xmrig")] == (expected,)
    assert got.provenance["/usr/local/lib/libprocesshider.so"] == (expected,)


def test_only_to_ids_leaves_out_attributes_not_meant_for_detection() -> None:
    every = load_indicators(EVENT)
    got = load_indicators(EVENT, only_to_ids=True)
    assert h("sha1", "context") in every.sha1 and h("sha1", "context") not in got.sha1
    assert "kworkerds" in every.names and "kworkerds" not in got.names
    assert "ld.so.preload" not in got.names and h("md5", "libprocesshider") not in got.md5
    assert "/usr/local/lib/libprocesshider.so" not in got.paths
    assert h("sha256", "kworkerds") in got.sha256  # to_ids true inside the object
    assert got.ignored["to_ids false"] == 6


def test_to_ids_as_older_exports_write_it(tmp_path: Path) -> None:
    event = _event()
    attributes = event["Event"]["Attribute"]
    attributes[0]["to_ids"] = "0"
    attributes[1]["to_ids"] = "1"
    got = load_indicators(_write(tmp_path / "e.json", event), only_to_ids=True)
    assert h("sha256", "xmrig") not in got.sha256
    assert h("md5", "xmrig") in got.md5


def test_search_responses_and_lists_of_events(tmp_path: Path) -> None:
    event = _event()
    expected = load_indicators(EVENT)
    for shape in ({"response": [event]}, [event], event["Event"]):
        got = load_indicators(_write(tmp_path / "search.json", shape))
        assert (got.sha256, got.sha1, got.md5, got.names, got.paths) == (
            expected.sha256, expected.sha1, expected.md5, expected.names, expected.paths)


def test_attribute_search_response(tmp_path: Path) -> None:
    attributes = [
        {"type": "sha256", "value": h("sha256", "xmrig"), "to_ids": True, "event_id": "1842",
         "Event": {"uuid": EVENT_UUID, "info": "Cryptominer", "id": "1842"}},
        {"type": "filename", "value": "kinsing", "to_ids": True, "event_id": "77"},
        {"type": "text", "value": "/usr/bin/.sshd", "to_ids": False, "object_relation": "fullpath",
         "event_id": "77", "Object": {"name": "file"}},
    ]
    got = load_indicators(_write(tmp_path / "a.json", {"response": {"Attribute": attributes}}))
    assert got.sha256 == {h("sha256", "xmrig")} and got.names == {"kinsing"}
    assert got.paths == {"/usr/bin/.sshd"}
    assert got.provenance[h("sha256", "xmrig")] == (f'MISP event {EVENT_UUID} "Cryptominer"',)
    assert got.provenance["kinsing"] == ("MISP event id '77'",)


# -- a MISP feed -------------------------------------------------------------------------------

def test_feed_directory_reads_every_event_in_the_manifest() -> None:
    got = load_indicators(FEED)
    assert got.sha256 == {h("sha256", "feed-a1"), h("sha256", "feed-b2")}
    assert got.sha1 == {h("sha1", "feed-a2")}
    assert got.md5 == {h("md5", "feed-b1")}
    assert got.names == {"sshd"} and got.paths == {"/etc/cron.d/0systemd"}
    assert h("sha256", "feed-b-deleted") not in got.sha256
    assert got.skipped == () and got.ignored["deleted"] == 1
    assert got.provenance[h("md5", "feed-b1")] == (
        f'MISP event {FEED_B} "Cron persistence of a cryptominer" (CIRCL)',)
    assert got.provenance["sshd"] == (
        f'MISP event {FEED_A} "Backdoored sshd in a shared VM image" (CIRCL)',)


def test_feed_hashes_csv_is_not_read_as_file_hashes() -> None:
    # Its lines are MD5 digests of attribute values, MISP's correlation lookup, not file hashes.
    digests = {line.split(",")[0] for line in (FEED / "hashes.csv").read_text().splitlines()}
    assert h("md5", h("sha256", "feed-a1")) in digests
    assert not digests & load_indicators(FEED).md5


def test_feed_read_through_its_manifest_file() -> None:
    assert load_indicators(FEED / "manifest.json").sha256 == load_indicators(FEED).sha256


def test_feed_with_only_to_ids() -> None:
    got = load_indicators(FEED, only_to_ids=True)
    assert h("sha256", "feed-b2") not in got.sha256 and "/etc/cron.d/0systemd" not in got.paths
    assert h("sha256", "feed-a1") in got.sha256


def test_feed_manifest_key_that_is_not_a_uuid_is_refused(tmp_path: Path) -> None:
    feed = _feed_copy(tmp_path)
    outside = _event()
    outside["Event"]["uuid"] = "../outside"
    outside["Event"]["Attribute"] = [{"type": "sha256", "value": h("sha256", "outside")}]
    _write(tmp_path / "outside.json", outside)
    manifest = _manifest(feed)
    manifest["../outside"] = dict(manifest[FEED_A])
    _write(feed / "manifest.json", manifest)
    got = load_indicators(feed)
    assert h("sha256", "outside") not in got.sha256
    assert h("sha256", "feed-a1") in got.sha256  # the other events are still read
    assert got.skipped_total == 1
    assert "'../outside'" in got.skipped[0] and "not an event UUID" in got.skipped[0]


def test_feed_event_file_that_is_a_symbolic_link_is_not_followed(tmp_path: Path) -> None:
    feed = _feed_copy(tmp_path)
    target = tmp_path / "elsewhere.json"
    shutil.move(feed / f"{FEED_A}.json", target)
    (feed / f"{FEED_A}.json").symlink_to(target)
    got = load_indicators(feed)
    assert h("sha256", "feed-a1") not in got.sha256
    assert "symbolic link" in got.skipped[0]


def test_feed_event_whose_integrity_hash_differs_is_skipped(tmp_path: Path) -> None:
    feed = _feed_copy(tmp_path)
    assert "integrity:sha256" in _manifest(feed)[FEED_A]
    event = json.loads((feed / f"{FEED_A}.json").read_text())
    event["Event"]["Attribute"].append({"type": "sha256", "value": h("sha256", "slipped in")})
    _write(feed / f"{FEED_A}.json", event)
    got = load_indicators(feed)
    assert h("sha256", "slipped in") not in got.sha256 and h("sha256", "feed-a1") not in got.sha256
    assert "SHA-256 the manifest gives" in got.skipped[0]


def test_feed_event_file_missing_or_for_another_event_is_skipped(tmp_path: Path) -> None:
    feed = _feed_copy(tmp_path)
    (feed / f"{FEED_A}.json").unlink()
    event = json.loads((feed / f"{FEED_B}.json").read_text())
    event["Event"]["uuid"] = FEED_A
    _write(feed / f"{FEED_B}.json", event)
    got = load_indicators(feed)
    assert got.count == 0 and got.skipped_total == 2
    assert any(f"{FEED_A}.json is missing" in s for s in got.skipped)
    assert any(f"holds event '{FEED_A}', not {FEED_B}" in s for s in got.skipped)


def test_feed_with_more_events_than_the_cap_is_refused() -> None:
    with pytest.raises(IocError, match="lists 2 events, more than 1"):
        load_indicators(FEED, limits=Limits(max_events=1))


def test_feed_event_larger_than_the_file_cap_is_skipped(tmp_path: Path) -> None:
    feed = _feed_copy(tmp_path)
    small = (feed / f"{FEED_A}.json").stat().st_size
    big = (feed / f"{FEED_B}.json").stat().st_size
    manifest = (feed / "manifest.json").stat().st_size
    assert small < big and manifest < big
    got = load_indicators(feed, limits=Limits(max_file_bytes=big - 1))
    assert h("sha256", "feed-a1") in got.sha256 and h("md5", "feed-b1") not in got.md5
    assert f"{big} bytes, more than {big - 1}" in got.skipped[0]


def test_feed_larger_than_the_total_cap_is_refused(tmp_path: Path) -> None:
    total = sum(p.stat().st_size for p in FEED.iterdir() if p.name != "hashes.csv")
    assert load_indicators(FEED, limits=Limits(max_total_bytes=total)).count == 6
    with pytest.raises(IocError, match="bytes of indicators in all"):
        load_indicators(FEED, limits=Limits(max_total_bytes=total - 1))


def test_directory_without_manifest_is_not_a_feed(tmp_path: Path) -> None:
    with pytest.raises(IocError, match=r"not a MISP feed \(no manifest.json\)"):
        load_indicators(tmp_path)


# -- CSV ---------------------------------------------------------------------------------------

def test_csv_with_misp_type_and_value_columns() -> None:
    path = DATA / "misp-export.csv"
    got = load_indicators(path)
    assert got.sha256 == {h("sha256", "xmrig")} and got.sha1 == {h("sha1", "context")}
    assert got.md5 == {h("md5", "kdevtmpfsi")} and got.names == {"kdevtmpfsi"}
    assert got.paths == {"/usr/local/lib/libprocesshider.so"}  # a file object's fullpath
    assert got.ignored["type ip-dst"] == 1
    assert got.skipped == (f"{path}:7: md5 '{h('md5', 'xmrig')[:31]}' is not 32 hex digits",)
    assert got.provenance[h("sha256", "xmrig")] == (f"{path}:2",)
    assert got.paired["kdevtmpfsi"] == (f"md5:{h('md5', 'kdevtmpfsi')}",)
    assert h("sha1", "context") not in load_indicators(path, only_to_ids=True).sha1


def test_csv_with_indicator_columns() -> None:
    path = DATA / "columns.csv"
    got = load_indicators(path)
    assert got.sha256 == {h("sha256", "xmrig")} and got.md5 == {h("md5", "dota3")}
    assert got.names == {"xmrig", "name with spaces.sh"}
    assert got.paths == {"/tmp/.X11-unix/.rsync/c/tsm"}
    assert got.provenance["/tmp/.X11-unix/.rsync/c/tsm"] == (f"{path}:4",)
    assert got.skipped == (
        f"{path}:2: column 'comment' is not read",
        f"{path}:5: sha256 '{h('sha256', 'kworkerds')[:60]}' is not 64 hex digits")


def test_csv_without_header_infers_each_value() -> None:
    path = DATA / "plain.txt"
    got = load_indicators(path)
    assert got.sha256 == {h("sha256", "xmrig")}
    assert got.sha1 == {h("sha1", "kdevtmpfsi")}  # its "# the dropper" is a comment
    assert got.md5 == {h("md5", "dota3")}  # written in capitals
    assert got.names == {"kinsing"} and got.paths == {"/etc/cron.d/0systemd"}
    assert got.provenance["kinsing"] == (f"{path}:6",)
    assert got.skipped_total == 1 and "a hash of 512 bits" in got.skipped[0]


def test_skipped_examples_are_bounded_and_counted(tmp_path: Path) -> None:
    rows = ["sha256"] + [f"{i:063x}" for i in range(150)] + [h("sha256", "kept")]
    path = tmp_path / "many.csv"
    path.write_text("\n".join(rows))
    got = load_indicators(path)
    assert got.sha256 == {h("sha256", "kept")}
    assert (len(got.skipped), got.skipped_total) == (100, 150)


# -- what is not a source of indicators ----------------------------------------------------------

@pytest.mark.parametrize(("content", "reason"), [
    (b"\x7fELF\x02\x01\x01\x00\x00", "binary content"),
    (b"\xff\xfe#\x00 \x00", "binary content"),
    (b"\x7fELF\x02\x01\x01\n", "not a list of indicators"),
    (b"caf\xe9 latin-1\n", "not UTF-8 text at byte 3"),
    (b'{"name": "imageaudit", "version": 1}', "JSON, but not a MISP event"),
    (b'[{"name": "a"}, {"name": "b"}]', "none of its entries is a MISP event"),
    (b'{"Event": [1, 2', "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply"),
    (b"images:\n  - name: centos\n    sha512: abc\n  - name: debian\n", "not a list of indicators"),
    (b"The incident report follows.\nSee the attached list, please.\n", "not a list of indicat"),
])
def test_a_file_that_is_no_indicator_format_is_an_error(tmp_path: Path, content: bytes,
                                                        reason: str) -> None:
    path = tmp_path / "indicators.csv"
    path.write_bytes(content)
    with pytest.raises(IocError, match=reason) as raised:
        load_indicators(path)
    assert raised.value.path == str(path)


def test_missing_file_fifo_and_oversized_file_are_errors(tmp_path: Path) -> None:
    with pytest.raises(IocError, match="no such file"):
        load_indicators(tmp_path / "absent.json")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(IocError, match="not a regular file"):
        load_indicators(fifo)
    size = EVENT.stat().st_size
    with pytest.raises(IocError, match=f"{size} bytes, more than {size - 1}"):
        load_indicators(EVENT, limits=Limits(max_file_bytes=size - 1))


def test_more_indicators_than_the_cap_is_an_error() -> None:
    assert load_indicators(EVENT, limits=Limits(max_indicators=15)).count == 15
    with pytest.raises(IocError, match="more than 14 indicators"):
        load_indicators(EVENT, limits=Limits(max_indicators=14))


def test_provenance_per_value_is_bounded(tmp_path: Path) -> None:
    events = []
    for i in range(12):
        uuid = f"00000000-0000-4000-8000-{i:012d}"
        events.append({"Event": {"uuid": uuid, "info": f"incident {i}", "Attribute": [
            {"type": "sha256", "value": h("sha256", "xmrig"), "to_ids": True}]}})
    got = load_indicators(_write(tmp_path / "events.json", events))
    sources = got.provenance[h("sha256", "xmrig")]
    assert len(sources) == 11 and sources[-1] == "and 2 more"
    assert sources[0] == 'MISP event 00000000-0000-4000-8000-000000000000 "incident 0"'


def test_event_info_is_made_printable(tmp_path: Path) -> None:
    event = {"Event": {"uuid": EVENT_UUID, "info": "evil\x1b[2J\ninfo", "Attribute": [
        {"type": "filename", "value": "kinsing"}]}}
    got = load_indicators(_write(tmp_path / "e.json", event))
    assert got.provenance["kinsing"] == (f'MISP event {EVENT_UUID} "evil?[2J?info"',)


# -- matching ----------------------------------------------------------------------------------

def test_matches_by_hash_path_and_name() -> None:
    got = load_indicators(EVENT)
    matches = got.matches(sha256=h("sha256", "xmrig").upper(), path="/tmp/.X11-unix/.rsync/c/tsm")
    assert [(m.kind, m.value) for m in matches] == [
        ("sha256", h("sha256", "xmrig")), ("path", "/tmp/.X11-unix/.rsync/c/tsm")]
    assert matches[0].provenance == got.provenance[h("sha256", "xmrig")]
    assert [(m.kind, m.value) for m in got.matches(path="//tmp/./.X11-unix/.rsync/c/tsm")] == [
        ("path", "/tmp/.X11-unix/.rsync/c/tsm")]
    assert got.matches(sha256=h("sha256", "ls"), sha1=h("sha1", "ls"), md5=h("md5", "ls"),
                       path="/usr/bin/ls") == []


def test_a_name_given_only_with_a_hash_says_so() -> None:
    got = load_indicators(EVENT)
    (named,) = got.matches(path="/var/tmp/kdevtmpfsi", sha256=h("sha256", "benign"))
    assert (named.kind, named.value) == ("name", "kdevtmpfsi")
    assert named.paired_with == (f"sha256:{h('sha256', 'kdevtmpfsi')}",)
    (alone,) = got.matches(path="/opt/kworkerds")  # a filename attribute of its own
    assert (alone.kind, alone.paired_with) == ("name", ())


def test_relative_path_matches_at_the_end_of_a_path(tmp_path: Path) -> None:
    path = tmp_path / "paths.csv"
    path.write_text("path\netc/cron.d/0systemd\n~/.config/autostart/gnome.desktop\n")
    got = load_indicators(path)
    assert [m.value for m in got.matches(path="/etc/cron.d/0systemd")] == ["etc/cron.d/0systemd"]
    assert [m.value for m in got.matches(path="/home/vo/.config/autostart/gnome.desktop")] == [
        "~/.config/autostart/gnome.desktop"]
    assert got.matches(path="/etc/xcron.d/0systemd") == []
