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

import email.utils
import fcntl
import hashlib
import os
import re
import stat
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, TypeVar

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from imageaudit import __version__
from imageaudit.findings import printable

USER_AGENT = f"imageaudit/{__version__}"
MAX_REDIRECTS = 5
MAX_URL = 8192
CHUNK = 1024 * 1024
# The wait after failed attempt n is BACKOFF_FIRST * 2**(n-1), at most BACKOFF_MAX, plus up to
# BACKOFF_JITTER at random (so that workers that failed together do not retry together). A
# server's Retry-After is honoured up to BACKOFF_MAX. Read at each call: tests lower them.
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0
BACKOFF_JITTER = 1.0
# An attempt may take its timeout plus the time the bytes still due need at this rate; slower
# is cut and retried (resuming). Bounds a server that sends one byte per read timeout.
MIN_RATE = 64 * 1024
SHOWN_URL = 200

_SHA512 = re.compile(r"^[0-9a-f]{128}$")
_CONTENT_RANGE = re.compile(r"^bytes ([0-9]{1,19})-([0-9]{1,19})/([0-9]{1,19}|\*)$")
_UNSATISFIED_RANGE = re.compile(r"^bytes \*/([0-9]{1,19})$")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")
T = TypeVar("T")


class FetchError(Exception):
    """A URL could not be fetched; the message names the URL and why (status, size, SHA-512).

    ``transient`` is true when the attempts ran out on failures that may pass (connection,
    timeout, 408, 429, 5xx), so that a later run may succeed; false when the server refused.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class _Transient(Exception):
    """A failure another attempt may not meet (the reason, and the server's Retry-After)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class _Final(Exception):
    """A failure another attempt would meet again (the reason)."""


def shown(url: str) -> str:
    """``url`` as messages show it: credentials hidden, printable, at most SHOWN_URL chars."""
    text = " ".join(printable(_USERINFO.sub(r"\1***@", url)).split())
    return text if len(text) <= SHOWN_URL else text[:SHOWN_URL] + "..."


def check_url(url: str) -> str:
    """``url`` when it is an absolute http(s) URL with a host; else FetchError."""
    try:
        parts = urllib.parse.urlsplit(url)
        host, scheme = parts.hostname, parts.scheme.lower()
    except ValueError:  # a malformed [IPv6] netloc
        host, scheme = None, ""
    if (len(url) > MAX_URL or scheme not in ("http", "https") or not host
            or any(c.isspace() or not c.isprintable() for c in url)):
        raise FetchError(f"{shown(url)}: not an http or https URL")
    return url


def http_client(timeout: float = 60.0) -> httpx.Client:
    """The client batch fetches share: imageaudit's User-Agent, at most MAX_REDIRECTS redirects
    (http and https), ``timeout`` seconds for each connect, read and write."""
    return httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=True,
                        max_redirects=MAX_REDIRECTS, headers={"User-Agent": USER_AGENT})


def _said(exc: BaseException) -> str:
    text = " ".join(printable(str(exc)).split())
    return text[:200] if text else type(exc).__name__


def _from_httpx(exc: Exception) -> Exception:
    """The transient or final failure an httpx exception stands for."""
    if isinstance(exc, httpx.TimeoutException):
        return _Transient(f"timed out ({type(exc).__name__})")
    if isinstance(exc, httpx.TooManyRedirects):
        return _Final(f"more than {MAX_REDIRECTS} redirects")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return _Final(f"redirected to a URL that is not http or https ({_said(exc)})")
    if isinstance(exc, httpx.LocalProtocolError | httpx.DecodingError | httpx.InvalidURL):
        return _Final(_said(exc))
    if isinstance(exc, httpx.ConnectError):
        return _Transient(f"cannot connect: {_said(exc)}")
    if isinstance(exc, httpx.TransportError):  # read/write errors, a body cut short, proxies
        return _Transient(_said(exc))
    return _Final(_said(exc))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit() and len(value) < 10:
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _status_error(response: httpx.Response) -> Exception:
    """408, 429 and 5xx are transient; any other status the caller did not expect is final."""
    status = response.status_code
    phrase = " ".join(printable(response.reason_phrase).split())[:60]
    reason = f"HTTP {status} {phrase}".rstrip()
    if status in (408, 429) or 500 <= status <= 599:
        return _Transient(reason, _retry_after(response))
    return _Final(reason)


def _length(response: httpx.Response) -> int | None:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() and len(value) < 20 else None


def _wait(state: RetryCallState) -> float:
    backoff = (wait_exponential(multiplier=BACKOFF_FIRST, max=BACKOFF_MAX)
               + wait_random(0, BACKOFF_JITTER))
    delay = float(backoff(state))
    exc = state.outcome.exception() if state.outcome is not None else None
    if isinstance(exc, _Transient) and exc.retry_after is not None:
        delay = max(delay, min(exc.retry_after, BACKOFF_MAX))
    return delay


def _with_retries(url: str, attempts: int, once: Callable[[], T]) -> T:
    """``once()`` up to ``attempts`` times while it fails transiently; FetchError otherwise."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    retrying = Retrying(stop=stop_after_attempt(attempts), wait=_wait,
                        retry=retry_if_exception_type(_Transient), reraise=True)
    try:
        return retrying(once)
    except _Transient as exc:
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        raise FetchError(f"{shown(url)}: {exc} (gave up after {tries})",
                         transient=True) from exc
    except _Final as exc:
        raise FetchError(f"{shown(url)}: {exc}") from exc


def _deadline(timeout: float, remaining: int) -> float:
    return time.monotonic() + timeout + remaining / MIN_RATE


def _too_slow(started: float, size: int) -> _Transient:
    return _Transient(f"slower than {MIN_RATE // 1024} KiB/s ({size} bytes in "
                      f"{time.monotonic() - started:.0f} s)")


# --- small documents ---------------------------------------------------------------------------

def fetch_bytes(url: str, *, max_bytes: int, timeout: float = 60.0,
                client: httpx.Client | None = None, attempts: int = 5) -> bytes:
    """The body of ``url`` (an image list, catalogue JSON), at most ``max_bytes`` of it, with
    the retry policy of :func:`fetch`; FetchError naming the URL otherwise."""
    check_url(url)
    if max_bytes < 0:
        raise ValueError(f"max_bytes must not be negative, not {max_bytes}")
    own = client is None
    http = http_client(timeout) if client is None else client

    def once() -> bytes:
        started = time.monotonic()
        try:
            with http.stream("GET", url) as response:
                if response.status_code != 200:
                    raise _status_error(response)
                declared = _length(response)
                if declared is not None and declared > max_bytes:
                    raise _Final(f"is {declared} bytes (Content-Length), more than the limit "
                                 f"of {max_bytes}")
                deadline = _deadline(timeout, declared if declared is not None else max_bytes)
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise _Final(f"sent more than the limit of {max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise _too_slow(started, len(body))
                return bytes(body)
        except httpx.HTTPError as exc:
            raise _from_httpx(exc) from exc
        except httpx.InvalidURL as exc:
            raise _Final(_said(exc)) from exc

    try:
        return _with_retries(url, attempts, once)
    finally:
        if own:
            http.close()


# --- images ------------------------------------------------------------------------------------

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
        raise _Transient(f"HTTP 416 for Range bytes={asked_from}-: starting over")
    if status == 206:
        found = _CONTENT_RANGE.match(response.headers.get("Content-Range", "").strip())
        if found is None or int(found.group(1)) != part.size:
            said, asked_from = response.headers.get("Content-Range", "none"), part.size
            part.reset()
            raise _Transient(f"answered Range bytes={asked_from}- with Content-Range "
                             f"{printable(said)[:80]!r}: starting over")
        total: int | None = None if found.group(3) == "*" else int(found.group(3))
        if total is None:
            remaining = _length(response)
            total = None if remaining is None else part.size + remaining
    elif status == 200:
        part.reset()
        total = _length(response)
    else:
        raise _status_error(response)
    if total is not None and total > max_bytes:
        raise _Final(f"is {total} bytes, more than the limit of {max_bytes}")
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
            deadline = _deadline(timeout, (max_bytes if total is None else total) - part.size)
            # As the network gives it: a chunk size would hold back bytes when the body is cut.
            for chunk in response.iter_raw():
                if part.size + len(chunk) > max_bytes:
                    raise _Final(f"sent more than the limit of {max_bytes} bytes")
                part.write(chunk)
                if time.monotonic() > deadline:
                    raise _too_slow(started, part.size)
    except httpx.HTTPError as exc:
        raise _from_httpx(exc) from exc
    except httpx.InvalidURL as exc:
        raise _Final(_said(exc)) from exc
    if total is not None and part.size != total:
        raise _Transient(f"the body ended at byte {part.size} of {total}")


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
                         f"{exc.strerror or _said(exc)}") from exc
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
                _with_retries(url, attempts, once)
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
