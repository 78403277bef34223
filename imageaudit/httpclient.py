"""The HTTP client imageaudit's parts share: httpx with bounds, retried with tenacity.

Every server here is someone else's: a catalogue, a mirror, a site's image store. So each
exchange is bounded (bytes, time, attempts), says who it is (``User-Agent``), and leaves as
one error whose message names the URL (credentials hidden) and the reason. Connection errors,
timeouts, 408, 429 and 5xx may pass and are retried with exponential backoff and jitter,
honouring ``Retry-After``; any other answer is final. A request that carries a token never
follows a redirect: that would replay the token to another place.
"""

from __future__ import annotations

import email.utils
import json
import re
import socket
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from imageaudit import __version__
from imageaudit.findings import printable

USER_AGENT = f"imageaudit/{__version__}"
MAX_REDIRECTS = 5
MAX_URL = 8192
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


class Transient(Exception):
    """A failure another attempt may not meet (the reason, and the server's Retry-After)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class Final(Exception):
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


def http_client(timeout: float = 60.0, *, follow_redirects: bool = True) -> httpx.Client:
    """The client every request goes through: imageaudit's User-Agent, at most MAX_REDIRECTS
    redirects (http and https; none with ``follow_redirects=False``, for a request carrying a
    token), ``timeout`` seconds for each connect, read and write."""
    return httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=follow_redirects,
                        max_redirects=MAX_REDIRECTS, headers={"User-Agent": USER_AGENT})


def error_text(exc: BaseException) -> str:
    text = " ".join(printable(str(exc)).split())
    return text[:200] if text else type(exc).__name__


def from_httpx(exc: Exception) -> Exception:
    """The transient or final failure an httpx exception stands for."""
    if isinstance(exc, httpx.TimeoutException):
        return Transient(f"timed out ({type(exc).__name__})")
    if isinstance(exc, httpx.TooManyRedirects):
        return Final(f"more than {MAX_REDIRECTS} redirects")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return Final(f"redirected to a URL that is not http or https ({error_text(exc)})")
    if isinstance(exc, httpx.LocalProtocolError | httpx.DecodingError | httpx.InvalidURL):
        return Final(error_text(exc))
    if isinstance(exc, httpx.ConnectError):
        return Transient(f"cannot connect: {error_text(exc)}")
    if isinstance(exc, httpx.TransportError):  # read/write errors, a body cut short, proxies
        return Transient(error_text(exc))
    return Final(error_text(exc))


def retry_after(response: httpx.Response) -> float | None:
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


def status_error(response: httpx.Response) -> Exception:
    """408, 429 and 5xx are transient; any other status the caller did not expect is final."""
    status = response.status_code
    phrase = " ".join(printable(response.reason_phrase).split())[:60]
    reason = f"HTTP {status} {phrase}".rstrip()
    if status in (408, 429) or 500 <= status <= 599:
        return Transient(reason, retry_after(response))
    return Final(reason)


def content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() and len(value) < 20 else None


def backoff_wait(state: RetryCallState) -> float:
    backoff = (wait_exponential(multiplier=BACKOFF_FIRST, max=BACKOFF_MAX)
               + wait_random(0, BACKOFF_JITTER))
    delay = float(backoff(state))
    exc = state.outcome.exception() if state.outcome is not None else None
    if isinstance(exc, Transient) and exc.retry_after is not None:
        delay = max(delay, min(exc.retry_after, BACKOFF_MAX))
    return delay


def with_retries(url: str, attempts: int, once: Callable[[], T]) -> T:
    """``once()`` up to ``attempts`` times while it fails transiently; FetchError otherwise."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    retrying = Retrying(stop=stop_after_attempt(attempts), wait=backoff_wait,
                        retry=retry_if_exception_type(Transient), reraise=True)
    try:
        return retrying(once)
    except Transient as exc:
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        raise FetchError(f"{shown(url)}: {exc} (gave up after {tries})",
                         transient=True) from exc
    except Final as exc:
        raise FetchError(f"{shown(url)}: {exc}") from exc


def rate_deadline(timeout: float, remaining: int) -> float:
    return time.monotonic() + timeout + remaining / MIN_RATE


def too_slow(started: float, size: int) -> Transient:
    return Transient(f"slower than {MIN_RATE // 1024} KiB/s ({size} bytes in "
                      f"{time.monotonic() - started:.0f} s)")


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
                    raise status_error(response)
                declared = content_length(response)
                if declared is not None and declared > max_bytes:
                    raise Final(f"is {declared} bytes (Content-Length), more than the limit "
                                 f"of {max_bytes}")
                deadline = rate_deadline(timeout, declared if declared is not None else max_bytes)
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise Final(f"sent more than the limit of {max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise too_slow(started, len(body))
                return bytes(body)
        except httpx.HTTPError as exc:
            raise from_httpx(exc) from exc
        except httpx.InvalidURL as exc:
            raise Final(error_text(exc)) from exc

    try:
        return with_retries(url, attempts, once)
    finally:
        if own:
            http.close()


# --- requests that carry a token ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries: ``tries`` attempts, waiting ``first_delay`` then multiplying by
    ``factor`` between them (at most ``max_delay``); ``timeout`` for each attempt."""

    tries: int = 3
    first_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 60.0
    timeout: float = 10.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_delay, self.first_delay * self.factor ** (attempt - 1)))

    def retrying(self, again: Callable[[Any], bool],
                 sleep: Callable[[float], None] = time.sleep) -> Retrying:
        """A tenacity ``Retrying`` calling a function up to ``tries`` times while
        ``again(result)`` says its result may pass, waiting :meth:`delay` between calls; it
        returns the last result when the tries run out."""
        return Retrying(
            stop=stop_after_attempt(max(1, self.tries)),
            wait=lambda state: self.delay(state.attempt_number),
            retry=retry_if_result(again), sleep=sleep,
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        )


ONE_TRY = RetryPolicy(tries=1)


def transient(status: int | None) -> bool:
    """Whether a failure may pass: no answer, 408, 429 or 5xx."""
    return status is None or status >= 500 or status in (408, 429)


@dataclass(frozen=True, slots=True)
class Answer:
    """What a server answered to one request: ``status`` None when no answer came, then
    ``reason`` says why ("connection refused"); else the HTTP reason phrase and at most the
    asked number of bytes of the body."""

    status: int | None
    reason: str
    body: bytes = b""

    @property
    def detail(self) -> str:
        """The server's explanation from the body, printable and short."""
        return server_detail(self.body)


def _error_item(item: object) -> str:
    if isinstance(item, Mapping) and isinstance(item.get("msg"), str):
        loc = item.get("loc")
        where = ".".join(str(p) for p in loc) if isinstance(loc, list) else ""
        return f"{where}: {item['msg']}" if where else str(item["msg"])
    return json.dumps(item, ensure_ascii=False)


def server_detail(body: bytes) -> str:
    """The server's explanation from an error body (``detail``/``error``/``message``), made
    printable and short: the server is another party, its text goes to a terminal."""
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, Mapping):
        for key in ("detail", "error", "message"):
            value = data.get(key)
            if isinstance(value, str):
                text = value
                break
            if isinstance(value, list):  # pydantic-style [{"loc": [...], "msg": ...}]
                text = "; ".join(_error_item(item) for item in value[:5])
                break
            if value is not None:
                text = json.dumps(value, ensure_ascii=False)
                break
    text = " ".join(printable(text).split())
    return text[:200] + ("..." if len(text) > 200 else "")


def no_answer_reason(exc: BaseException) -> str:
    """Why no answer came, in a few words: "connection refused", "timed out", "host not
    found (...)", or the error's own text."""
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, TimeoutError):
            return "timed out"
        if isinstance(seen, socket.gaierror):
            return f"host not found ({seen.strerror})"
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "Temporary failure in name resolution" in text:
        return f"host not found ({text.split('] ')[-1]})"
    return " ".join(printable(text).split())[:200] or type(exc).__name__


def exchange(url: str, method: str, *, token: str | None = None, body: bytes | None = None,
             content_type: str = "application/json", timeout: float = 10.0,
             max_bytes: int = 64 * 1024) -> Answer:
    """One request to ``url`` with the bearer ``token``; never raises for network or HTTP
    errors, and never follows a redirect (it would replay the token elsewhere: a 3xx comes
    back as the answer). At most ``max_bytes`` of the body are read."""
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        headers["Content-Type"] = content_type
    try:
        with http_client(timeout, follow_redirects=False) as http, \
                http.stream(method, url, content=body, headers=headers) as response:
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) >= max_bytes:
                    break
            phrase = " ".join(printable(response.reason_phrase).split())[:60]
            return Answer(response.status_code, phrase, bytes(data[:max_bytes]))
    except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
        return Answer(None, no_answer_reason(exc))
