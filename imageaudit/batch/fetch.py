"""Bring a remote image, or a small document (an image list, catalogue JSON), to the batch cache.

A batch run audits whole catalogues: thousands of images of gigabytes each, on servers nobody
here controls, fetched by several workers at once. So every download is bounded (bytes, time,
attempts), resumable (a transfer cut in the middle goes on with a ``Range`` request from the
bytes already on disk, in the same run or a later one), checked (the SHA-512 the catalogue
registered, computed over the whole file) and content-addressed; two workers fetching the same
file take turns on a lock instead of writing into the same part file. Connection errors,
timeouts, 408, 429 and 5xx are retried with exponential backoff and jitter; any other answer is
final. Every problem with the network, the server, a size or a checksum leaves as a
:class:`FetchError` whose message names the URL and the reason.

The cache directory::

    partial/<name>.part   a download in progress (and <name>.lock while a worker holds it)
    sha512/<hex>          a finished file whose SHA-512 was given and matched
    url/<sha256 of URL>   a finished file fetched without a known SHA-512

A finished file is used again without any network access. One under ``url/`` is only what the
URL served when it was fetched: without a SHA-512 nothing tells a newer file from it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx

from imageaudit.findings import printable
from imageaudit.httpclient import (
    FetchError,
    Final,
    Transient,
    check_url,
    content_length,
    error_text,
    fetch_bytes,
    from_httpx,
    http_client,
    rate_deadline,
    shown,
    status_error,
    too_slow,
    with_retries,
)

__all__ = ["FetchError", "check_url", "fetch", "fetch_bytes", "http_client", "shown"]

CHUNK = 1024 * 1024
_SHA512 = re.compile(r"^[0-9a-f]{128}$")
_CONTENT_RANGE = re.compile(r"^bytes ([0-9]{1,19})-([0-9]{1,19})/([0-9]{1,19}|\*)$")
_UNSATISFIED_RANGE = re.compile(r"^bytes \*/([0-9]{1,19})$")

@dataclass(slots=True)
class _Part:
    """The part file of one download, how many bytes it holds and their SHA-512 so far.

    ``carried`` says that bytes in it came from an earlier run, which may have fetched another
    version of the file; ``validator`` is the ETag or Last-Modified of the answer those bytes
    came from in this run, sent as ``If-Range`` when resuming.
    """

    path: Path
    file: BinaryIO
    size: int
    digest: hashlib._Hash
    carried: bool
    validator: str | None = None

    @classmethod
    def open(cls, path: Path, max_bytes: int) -> _Part:
        """Open (or create) the part and hash what it already holds."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        file = os.fdopen(fd, "r+b")
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(f"{path} is not a regular file")
            digest, size = hashlib.sha512(), 0
            while chunk := file.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
        except BaseException:
            file.close()
            raise
        part = cls(path, file, size, digest, carried=size > 0)
        if size > max_bytes:
            part.reset()
        return part

    def reset(self) -> None:
        """Empty the part: the next answer starts the file over."""
        self.file.seek(0)
        self.file.truncate()
        self.size, self.digest, self.carried, self.validator = 0, hashlib.sha512(), False, None

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.digest.update(data)
        self.size += len(data)

    def discard(self) -> None:
        self.file.close()
        with suppress(FileNotFoundError):
            self.path.unlink()

    def finish(self, final: Path) -> None:
        """Make the part the finished file ``final`` (flushed to disk first)."""
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        final.parent.mkdir(parents=True, exist_ok=True)
        self.path.replace(final)


def _is_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


@contextmanager
def _locked(lock: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``lock`` (created if needed, removed on release).

    The file is removed by its holder, so a waiter that locked a file another worker has just
    removed tries again on the path's new file.
    """
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                now = lock.lstat()
            except FileNotFoundError:
                now = None
            held = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
            break
        os.close(fd)
    try:
        yield
    finally:
        with suppress(FileNotFoundError):
            lock.unlink()
        os.close(fd)


def _begin(response: httpx.Response, part: _Part, asked: bool, max_bytes: int) -> int | None:
    """Check the answer's status and ranges against the part; the file's total size when the
    answer tells it. On 200 the part starts over; -1 means the part is already complete."""
    status = response.status_code
    if status == 416 and asked:
        whole = _UNSATISFIED_RANGE.match(response.headers.get("Content-Range", "").strip())
        if whole is not None and int(whole.group(1)) == part.size:
            return -1  # everything was there; only the answer to it was lost
        asked_from = part.size
        part.reset()
        raise Transient(f"HTTP 416 for Range bytes={asked_from}-: starting over")
    if status == 206:
        found = _CONTENT_RANGE.match(response.headers.get("Content-Range", "").strip())
        if found is None or int(found.group(1)) != part.size:
            said, asked_from = response.headers.get("Content-Range", "none"), part.size
            part.reset()
            raise Transient(f"answered Range bytes={asked_from}- with Content-Range "
                             f"{printable(said)[:80]!r}: starting over")
        total: int | None = None if found.group(3) == "*" else int(found.group(3))
        if total is None:
            remaining = content_length(response)
            total = None if remaining is None else part.size + remaining
    elif status == 200:
        part.reset()
        total = content_length(response)
    else:
        raise status_error(response)
    if total is not None and total > max_bytes:
        raise Final(f"is {total} bytes, more than the limit of {max_bytes}")
    validator = response.headers.get("ETag", "")
    if not validator or validator.startswith("W/"):
        validator = response.headers.get("Last-Modified", "")
    if validator and len(validator) <= 200 and validator.isprintable():
        part.validator = validator
    return total


def _attempt(http: httpx.Client, url: str, part: _Part, max_bytes: int, timeout: float) -> None:
    """One GET of ``url`` into ``part``, from where the part ends."""
    headers = {"Accept-Encoding": "identity"}
    asked = part.size > 0
    if asked:
        headers["Range"] = f"bytes={part.size}-"
        if part.validator:
            headers["If-Range"] = part.validator
    started = time.monotonic()
    try:
        with http.stream("GET", url, headers=headers) as response:
            total = _begin(response, part, asked, max_bytes)
            if total == -1:
                return
            deadline = rate_deadline(timeout, (max_bytes if total is None else total) - part.size)
            # As the network gives it: a chunk size would hold back bytes when the body is cut.
            for chunk in response.iter_raw():
                if part.size + len(chunk) > max_bytes:
                    raise Final(f"sent more than the limit of {max_bytes} bytes")
                part.write(chunk)
                if time.monotonic() > deadline:
                    raise too_slow(started, part.size)
    except httpx.HTTPError as exc:
        raise from_httpx(exc) from exc
    except httpx.InvalidURL as exc:
        raise Final(error_text(exc)) from exc
    if total is not None and part.size != total:
        raise Transient(f"the body ended at byte {part.size} of {total}")


def fetch(url: str, cache_dir: Path, *, expected_sha512: str | None, max_bytes: int,
          timeout: float = 60.0, attempts: int = 5, client: httpx.Client | None = None) -> Path:
    """The cached file of ``url``: ``cache_dir/sha512/<hex>`` when ``expected_sha512`` is given
    (and the download matched it), else ``cache_dir/url/<sha256 of url>``.

    A finished file already in the cache is returned without network access. Otherwise the
    download streams into ``partial/`` under a lock (a second worker waits, then finds the
    file), resumes from a part left by an earlier attempt or run, and is refused beyond
    ``max_bytes``. ``timeout`` bounds each connect, read and write; ``attempts`` the tries.
    """
    check_url(url)
    if max_bytes < 0:
        raise ValueError(f"max_bytes must not be negative, not {max_bytes}")
    expected = None
    if expected_sha512 is not None:
        expected = expected_sha512.strip().lower()
        if not _SHA512.match(expected):
            raise FetchError(f"{shown(url)}: expected SHA-512 {expected_sha512[:40]!r} is not "
                             "128 hex digits")
        name = expected
        final = cache_dir / "sha512" / name
    else:
        name = hashlib.sha256(url.encode("utf-8")).hexdigest()
        final = cache_dir / "url" / name
    try:
        if _is_file(final):
            return final
        (cache_dir / "partial").mkdir(parents=True, exist_ok=True)
        with _locked(cache_dir / "partial" / f"{name}.lock"):
            if _is_file(final):  # the worker that held the lock fetched it
                return final
            own = client is None
            http = http_client(timeout) if client is None else client
            try:
                _download(http, url, cache_dir / "partial" / f"{name}.part", final,
                          expected, max_bytes, timeout, attempts)
            finally:
                if own:
                    http.close()
    except OSError as exc:
        raise FetchError(f"{shown(url)}: cannot use the cache {cache_dir}: "
                         f"{exc.strerror or error_text(exc)}") from exc
    return final


def _download(http: httpx.Client, url: str, part_path: Path, final: Path, expected: str | None,
              max_bytes: int, timeout: float, attempts: int) -> None:
    """Fetch into the part (resuming it), check it, and make it ``final``. The part is kept
    after a transient failure, for a later run to resume; any other failure removes it."""
    part = _Part.open(part_path, max_bytes)
    keep = False

    def once() -> None:
        _attempt(http, url, part, max_bytes, timeout)

    try:
        for again in (False, True):
            try:
                with_retries(url, attempts, once)
            except FetchError as exc:
                keep = exc.transient
                raise
            actual = part.digest.hexdigest()
            if expected is None or actual == expected:
                part.finish(final)
                return
            if part.carried and not again:
                # Bytes an earlier run left may be of an older file at the URL: once more, all
                # of it from the server.
                part.reset()
                continue
            raise FetchError(f"{shown(url)}: SHA-512 mismatch: expected {expected[:16]}..., "
                             f"got {actual[:16]}...")
    except Exception:
        if keep:
            part.file.close()
        else:
            part.discard()
        raise
    except BaseException:
        part.file.close()
        raise
