"""Fetching images into the batch cache from a real HTTP server on 127.0.0.1: checksums, retries,
resuming with Range, size caps, the cache, and two workers fetching the same file."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from imageaudit import __version__, httpclient
from imageaudit.batch.fetch import FetchError, fetch, fetch_bytes
from tests.batch.httpserver import FileServer

DATA = os.urandom(300_000)
SHA = hashlib.sha512(DATA).hexdigest()
CUT = 100_000


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(httpclient, "BACKOFF_FIRST", 0.01)
    monkeypatch.setattr(httpclient, "BACKOFF_JITTER", 0.01)


@pytest.fixture
def srv() -> Iterator[FileServer]:
    with FileServer({"/img.qcow2": DATA, "/list.json": b'{"images": []}'}) as server:
        yield server


def left(cache: Path) -> list[str]:
    """Every file in the cache, relative to it."""
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())


def test_plain_fetch_is_checked_and_content_addressed(srv: FileServer, tmp_path: Path) -> None:
    path = fetch(srv.url("/img.qcow2"), tmp_path, expected_sha512=SHA, max_bytes=10**6,
                 timeout=5)
    assert path == tmp_path / "sha512" / SHA
    assert path.read_bytes() == DATA
    assert left(tmp_path) == [f"sha512/{SHA}"]
    [seen] = srv.gets()
    assert (seen.range, seen.user_agent) == (None, f"imageaudit/{__version__}")


def test_without_a_checksum_the_file_is_named_by_its_url(srv: FileServer, tmp_path: Path) -> None:
    url = srv.url("/img.qcow2")
    path = fetch(url, tmp_path, expected_sha512=None, max_bytes=10**6, timeout=5)
    assert path == tmp_path / "url" / hashlib.sha256(url.encode()).hexdigest()
    assert path.read_bytes() == DATA


def test_wrong_checksum_is_refused_and_nothing_is_left(srv: FileServer, tmp_path: Path) -> None:
    other = hashlib.sha512(b"another image").hexdigest()
    with pytest.raises(FetchError) as err:
        fetch(srv.url("/img.qcow2"), tmp_path, expected_sha512=other, max_bytes=10**6,
              timeout=5)
    assert str(err.value) == (f"{srv.url('/img.qcow2')}: SHA-512 mismatch: expected "
                              f"{other[:16]}..., got {SHA[:16]}...")
    assert left(tmp_path) == []
    assert len(srv.gets()) == 1


def test_404_fails_at_once_naming_url_and_status(srv: FileServer, tmp_path: Path) -> None:
    url = srv.url("/missing.img")
    with pytest.raises(FetchError) as err:
        fetch(url, tmp_path, expected_sha512=SHA, max_bytes=10**6, timeout=5)
    assert str(err.value) == f"{url}: HTTP 404 Not Found"
    assert not err.value.transient
    assert len(srv.gets()) == 1
    assert left(tmp_path) == []


def test_503_twice_then_success(srv: FileServer, tmp_path: Path) -> None:
    srv.fail_next(2)
    path = fetch(srv.url("/img.qcow2"), tmp_path, expected_sha512=SHA, max_bytes=10**6,
                 timeout=5)
    assert path.read_bytes() == DATA
    assert len(srv.gets()) == 3


def test_attempts_run_out(srv: FileServer, tmp_path: Path) -> None:
    srv.fail_next(5)
    url = srv.url("/img.qcow2")
    with pytest.raises(FetchError) as err:
        fetch(url, tmp_path, expected_sha512=SHA, max_bytes=10**6, timeout=5, attempts=3)
    assert str(err.value) == (f"{url}: HTTP 503 Service Unavailable "
                              "(gave up after 3 attempts)")
    assert err.value.transient
    assert len(srv.gets()) == 3


def test_connection_refused_is_retried_then_named(tmp_path: Path) -> None:
    with FileServer() as gone:
        url = gone.url("/img.qcow2")
    with pytest.raises(FetchError, match=r"^http://127\.0\.0\.1:\d+/img\.qcow2: cannot "
                                         r"connect: .*\(gave up after 2 attempts\)$"):
        fetch(url, tmp_path, expected_sha512=SHA, max_bytes=10**6, timeout=5, attempts=2)


def test_body_cut_in_the_middle_resumes_with_range(srv: FileServer, tmp_path: Path) -> None:
    srv.cut_next(CUT)
    path = fetch(srv.url("/img.qcow2"), tmp_path, expected_sha512=SHA, max_bytes=10**6,
                 timeout=5)
    assert path.read_bytes() == DATA
    assert [r.range for r in srv.gets()] == [None, f"bytes={CUT}-"]
    assert left(tmp_path) == [f"sha512/{SHA}"]


def test_part_left_by_an_earlier_run_is_resumed(srv: FileServer, tmp_path: Path) -> None:
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / f"{SHA}.part").write_bytes(DATA[:CUT])
    path = fetch(srv.url("/img.qcow2"), tmp_path, expected_sha512=SHA, max_bytes=10**6,
                 timeout=5)
    assert path.read_bytes() == DATA
    assert [r.range for r in srv.gets()] == [f"bytes={CUT}-"]


def test_stale_part_from_an_earlier_run_is_fetched_again(srv: FileServer,
                                                         tmp_path: Path) -> None:
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / f"{SHA}.part").write_bytes(b"x" * CUT)
    path = fetch(srv.url("/img.qcow2"), tmp_path, expected_sha512=SHA, max_bytes=10**6,
                 timeout=5)
    assert path.read_bytes() == DATA
    assert [r.range for r in srv.gets()] == [f"bytes={CUT}-", None]


def test_complete_part_is_finished_on_416(srv: FileServer, tmp_path: Path) -> None:
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / f"{SHA}.part").write_bytes(DATA)
    path = fetch(srv.url("/img.qcow2"), tmp_path, expected_sha512=SHA, max_bytes=10**6,
                 timeout=5)
    assert path.read_bytes() == DATA
    assert [r.range for r in srv.gets()] == [f"bytes={len(DATA)}-"]


def test_server_ignoring_range_still_gives_the_right_file(srv: FileServer,
                                                          tmp_path: Path) -> None:
    srv.ignore_range = True
    srv.cut_next(CUT)
    path = fetch(srv.url("/img.qcow2"), tmp_path, expected_sha512=SHA, max_bytes=10**6,
                 timeout=5)
    assert path.read_bytes() == DATA
    assert [r.range for r in srv.gets()] == [None, f"bytes={CUT}-"]


def test_size_cap_by_content_length(srv: FileServer, tmp_path: Path) -> None:
    url = srv.url("/img.qcow2")
    with pytest.raises(FetchError) as err:
        fetch(url, tmp_path, expected_sha512=SHA, max_bytes=1000, timeout=5)
    assert str(err.value) == f"{url}: is {len(DATA)} bytes, more than the limit of 1000"
    assert len(srv.gets()) == 1
    assert left(tmp_path) == []


def test_size_cap_while_streaming(srv: FileServer, tmp_path: Path) -> None:
    srv.send_length = False
    url = srv.url("/img.qcow2")
    with pytest.raises(FetchError) as err:
        fetch(url, tmp_path, expected_sha512=SHA, max_bytes=1000, timeout=5)
    assert str(err.value) == f"{url}: sent more than the limit of 1000 bytes"
    assert len(srv.gets()) == 1
    assert left(tmp_path) == []


def test_body_without_length_is_accepted_up_to_the_cap(srv: FileServer, tmp_path: Path) -> None:
    srv.send_length = False
    path = fetch(srv.url("/img.qcow2"), tmp_path, expected_sha512=SHA, max_bytes=len(DATA),
                 timeout=5)
    assert path.read_bytes() == DATA


def test_cache_hit_makes_no_request(srv: FileServer, tmp_path: Path) -> None:
    url = srv.url("/img.qcow2")
    first = fetch(url, tmp_path, expected_sha512=SHA, max_bytes=10**6, timeout=5)
    assert len(srv.gets()) == 1
    again = fetch(url, tmp_path, expected_sha512=SHA.upper(), max_bytes=10**6, timeout=5)
    assert again == first
    assert len(srv.requests) == 1


def test_two_threads_fetching_one_url_get_one_good_file(srv: FileServer, tmp_path: Path) -> None:
    srv.delay = 0.5  # the second worker arrives while the first is fetching
    url = srv.url("/img.qcow2")
    start = threading.Barrier(2)
    got: list[Path | BaseException] = []

    def worker() -> None:
        start.wait()
        try:
            got.append(fetch(url, tmp_path, expected_sha512=SHA, max_bytes=10**6, timeout=5))
        except BaseException as exc:  # reported by the assertion below
            got.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert got == [tmp_path / "sha512" / SHA] * 2
    assert (tmp_path / "sha512" / SHA).read_bytes() == DATA
    assert len(srv.gets()) == 1
    assert left(tmp_path) == [f"sha512/{SHA}"]


def test_too_many_redirects_fail_at_once(srv: FileServer, tmp_path: Path) -> None:
    srv.redirects = {"/loop": "/loop"}
    with pytest.raises(FetchError) as err:
        fetch(srv.url("/loop"), tmp_path, expected_sha512=SHA, max_bytes=10**6, timeout=5)
    assert str(err.value) == f"{srv.url('/loop')}: more than 5 redirects"
    assert len(srv.gets()) == 6


def test_redirect_is_followed(srv: FileServer, tmp_path: Path) -> None:
    srv.redirects = {"/latest": "/img.qcow2"}
    path = fetch(srv.url("/latest"), tmp_path, expected_sha512=SHA, max_bytes=10**6, timeout=5)
    assert path.read_bytes() == DATA


def test_url_must_be_http(tmp_path: Path) -> None:
    with pytest.raises(FetchError) as err:
        fetch("file:///etc/passwd", tmp_path, expected_sha512=SHA, max_bytes=10, timeout=5)
    assert str(err.value) == "file:///etc/passwd: not an http or https URL"


def test_credentials_are_not_shown(srv: FileServer, tmp_path: Path) -> None:
    url = srv.url("/missing").replace("http://", "http://user:secret@")
    with pytest.raises(FetchError) as err:
        fetch(url, tmp_path, expected_sha512=None, max_bytes=10, timeout=5)
    assert "secret" not in str(err.value)
    assert str(err.value).startswith("http://***@127.0.0.1:")


def test_fetch_bytes_retries_and_caps(srv: FileServer) -> None:
    srv.fail_next(1)
    assert fetch_bytes(srv.url("/list.json"), max_bytes=100, timeout=5) == b'{"images": []}'
    assert len(srv.gets()) == 2
    with pytest.raises(FetchError) as err:
        fetch_bytes(srv.url("/list.json"), max_bytes=10, timeout=5)
    assert str(err.value) == f"{srv.url('/list.json')}: is 14 bytes (Content-Length), more " \
                             "than the limit of 10"
    srv.send_length = False
    with pytest.raises(FetchError, match=r": sent more than the limit of 10 bytes$"):
        fetch_bytes(srv.url("/list.json"), max_bytes=10, timeout=5)
    with pytest.raises(FetchError, match=r"/nothing: HTTP 404 Not Found$"):
        fetch_bytes(srv.url("/nothing"), max_bytes=10, timeout=5)
