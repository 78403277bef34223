"""The parent side: check the header, start the confined parser child, hold the tree it sends.

:func:`open_direct` opens the image once (``O_NOFOLLOW``), runs the pure-Python header check
of :mod:`imageaudit.openers.formatcheck` on *that* descriptor (no second open of the path
that could be swapped in between), and hands the descriptor to the child, which never sees a
path. The tree comes back in bounded frames and fills a :class:`TreeImageFS`; reads are
requests to the child, answered in chunks of at most :data:`~.protocol.MAX_READ_CHUNK`.

Any failure of the child (an error it reports, a crash, a signal from an rlimit or the
seccomp filter, a timeout, a malformed frame) is one :class:`DirectError` naming the image
and the reason; the child is then killed and reaped, and nothing is left behind. The open and
each read request have wall-clock bounds (:class:`Limits`, by default from
:data:`OPEN_TIMEOUT_ENV` and :data:`READ_TIMEOUT_ENV`); a child killed for any reason serves
no further read, each one a :class:`DirectError` saying why.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path

from imageaudit.imagefs import (
    DEFAULT_WALK_LIMIT,
    FileStat,
    FileType,
    ImageFSError,
    OpenInfo,
    TreeImageFS,
    env_seconds,
)
from imageaudit.openers.direct import protocol as proto
from imageaudit.openers.direct.confine import Settings
from imageaudit.openers.formatcheck import (
    DEFAULT_MAX_VIRTUAL_SIZE,
    UnsafeImageError,
    byte_range,
    sniff_fd,
)

LOG = logging.getLogger(__name__)

DEFAULT_MAX_READ_BYTES = 16 * 1024**3
STDERR_KEEP = 4096
# Wall-clock bounds, in seconds, from the environment: the whole open (container, volumes,
# filesystems, the walk of the tree) and each read request after it. Past one, the child is
# killed and the open or the read is one DirectError; the image serves no further read.
OPEN_TIMEOUT_ENV = "IMAGEAUDIT_DIRECT_OPEN_TIMEOUT"
READ_TIMEOUT_ENV = "IMAGEAUDIT_DIRECT_READ_TIMEOUT"
DEFAULT_OPEN_TIMEOUT = 600.0
DEFAULT_READ_TIMEOUT = 120.0


class DirectError(ImageFSError):
    """The direct reader could not open or read the image; the message says which and why."""


class UnsafeDisk(DirectError, UnsafeImageError):
    """The header check refused the disk (backing file, oversized...): it is refused whatever
    reads it, so ``auto`` never hands it to libguestfs."""


class DirectUnsupported(DirectError):
    """The image is sound but holds what the direct reader does not read (btrfs, LUKS, ...).

    ``reason`` is the short why, for the one-line note when falling back to libguestfs.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Limits:
    max_entries: int = DEFAULT_WALK_LIMIT
    max_virtual_size: int = DEFAULT_MAX_VIRTUAL_SIZE
    max_read_bytes: int = DEFAULT_MAX_READ_BYTES
    open_timeout: float = field(
        default_factory=lambda: env_seconds(OPEN_TIMEOUT_ENV, DEFAULT_OPEN_TIMEOUT))
    read_timeout: float = field(
        default_factory=lambda: env_seconds(READ_TIMEOUT_ENV, DEFAULT_READ_TIMEOUT))
    confine: Settings = field(default_factory=Settings)


_SIGNALS = {
    signal.SIGSYS: "a system call outside the seccomp allow-list",
    signal.SIGXCPU: "the CPU-time limit",
    signal.SIGSEGV: "a crash (segmentation fault) in a parser",
    signal.SIGABRT: "an abort in a parser",
    signal.SIGKILL: "SIGKILL (memory exhausted, or stopped after a timeout)",
    signal.SIGBUS: "a bus error in a parser",
}


class _Child:
    """The running parser child and the pipes to it."""

    def __init__(self, fd: int, config: dict[str, object], label: str) -> None:
        self.label = label
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-m", "imageaudit.openers.direct.child"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=(fd,), env=env, start_new_session=True,
        )
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr
        self.out = self.proc.stdout.fileno()
        self.err_tail = b""
        self.stopped: str | None = None  # why the child was killed, once it was
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()
        self.send(proto.frame(b"C", json.dumps(config).encode()))

    def _read_stderr(self) -> None:
        stream = self.proc.stderr
        assert stream is not None
        while chunk := stream.read1(65536):  # type: ignore[attr-defined]
            self.err_tail = (self.err_tail + chunk)[-STDERR_KEEP:]
            if LOG.isEnabledFor(logging.DEBUG):
                for line in chunk.decode("utf-8", "replace").splitlines():
                    LOG.debug("%s: parser: %s", self.label, line)

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        if self.stopped is not None:
            raise DirectError(f"{self.label}: the parser is no longer running "
                              f"({self.stopped})")
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise self.failure(f"cannot talk to the parser: {exc}") from None

    def _exact(self, n: int, deadline: float, what: str) -> bytes:
        out = bytearray()
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill(f"it did not answer {what}")
                raise DirectError(f"{self.label}: the parser did not answer {what}; "
                                  "it was stopped")
            ready, _, _ = select.select([self.out], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.out, min(n - len(out), 1 << 20))
            if not chunk:
                raise self.failure("the parser stopped")
            out += chunk
        return bytes(out)

    def frame(self, deadline: float, what: str) -> tuple[bytes, bytes]:
        """The next frame, by ``deadline`` (``time.monotonic``); ``what`` names the bound."""
        try:
            kind, length = proto.parse_head(self._exact(proto.HEAD_SIZE, deadline, what))
        except proto.ProtocolError as exc:
            self.kill("malformed answer")
            raise DirectError(f"{self.label}: malformed answer from the parser: {exc}") from exc
        return kind, self._exact(length, deadline, what) if length else b""

    def failure(self, what: str) -> DirectError:
        code = self.kill(what)
        why = ""
        if code is not None and code < 0:
            sig = -code
            why = f": killed by {_SIGNALS.get(signal.Signals(sig), signal.Signals(sig).name)}"
        elif code:
            why = f": exit status {code}"
        tail = self.err_tail.decode("utf-8", "replace").strip().splitlines()
        last = f" ({tail[-1][:300]})" if tail else ""
        return DirectError(f"{self.label}: {what}{why}{last}")

    def kill(self, why: str = "closed") -> int | None:
        if self.stopped is None:
            self.stopped = why
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return None
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        self._drain.join(timeout=1)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return code

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            try:
                self.proc.stdin.close()  # end of requests: the child exits by itself
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()


def _close_child(child: _Child) -> None:
    child.kill()


class DirectFS(TreeImageFS):
    """A VM disk's root filesystem as the confined parser child read it."""

    def __init__(self, info: OpenInfo, child: _Child, limits: Limits) -> None:
        super().__init__(info)
        self._child = child
        self._handles: dict[str, int] = {}
        self._limits = limits
        self._closed = False
        self._finalizer = weakref.finalize(self, _close_child, child)

    def _add(self, rec: proto.Record) -> None:
        parent, _, name = rec.path.rpartition("/")
        parent = parent or "/"
        if parent not in self.children:
            raise DirectError(f"{self.info.source}: the parser sent {rec.path!r} before its "
                              "directory")
        ftype = FileType.from_mode(rec.mode)
        self.nodes[rec.path] = FileStat(
            path=rec.path, type=ftype, mode=rec.mode & 0o7777, uid=rec.uid, gid=rec.gid,
            size=rec.size, mtime=rec.mtime, link_target=rec.link, nlink=rec.nlink)
        self.children[parent].add(name)
        if ftype is FileType.DIRECTORY:
            self.children.setdefault(rec.path, set())
        if ftype is FileType.REGULAR and rec.handle >= 0:
            self._handles[rec.path] = rec.handle

    def _set_root(self, rec: proto.Record) -> None:
        self.nodes["/"] = FileStat(path="/", type=FileType.DIRECTORY, mode=rec.mode & 0o7777,
                                   uid=rec.uid, gid=rec.gid, size=rec.size, mtime=rec.mtime,
                                   nlink=rec.nlink)

    def _load(self) -> dict[str, object]:
        deadline = time.monotonic() + self._limits.open_timeout
        bound = (f"with the tree within the open bound of {self._limits.open_timeout:g} s "
                 f"(${OPEN_TIMEOUT_ENV})")
        count = 0
        while True:
            kind, payload = self._child.frame(deadline, bound)
            if kind == b"T":
                try:
                    for rec in _records(payload):
                        count += 1
                        if count > self._limits.max_entries + 1:
                            raise DirectError(f"{self.info.source}: the parser sent more "
                                              "entries than the cap")
                        if rec.path == "/":
                            self._set_root(rec)
                        else:
                            self._add(rec)
                except proto.ProtocolError as exc:
                    self._child.kill("malformed tree")
                    raise DirectError(f"{self.info.source}: malformed tree from the parser: "
                                      f"{exc}") from exc
                continue
            if kind == b"I":
                try:
                    details = json.loads(payload)
                except ValueError:
                    details = None
                if not isinstance(details, dict):
                    raise DirectError(f"{self.info.source}: malformed details from the parser")
                return details
            raise _answer_error(self._child, self.info.source, kind, payload)

    def _read_canonical(self, path: str, limit: int, offset: int = 0) -> bytes:
        if self._closed:
            raise DirectError(f"{self.info.source}: the image is closed")
        handle = self._handles.get(path)
        if handle is None:
            raise ImageFSError(f"{path}: not a regular file in the image")
        chunks: list[bytes] = []
        pos, remaining = offset, limit
        while remaining > 0:
            want = min(remaining, proto.MAX_READ_CHUNK)
            self._child.send(proto.encode_read(handle, pos, want))
            kind, payload = self._child.frame(
                time.monotonic() + self._limits.read_timeout,
                f"a read of {path} within {self._limits.read_timeout:g} s "
                f"(${READ_TIMEOUT_ENV})")
            if kind == b"E":
                raise ImageFSError(f"{path}: cannot read: "
                                   f"{payload.decode('utf-8', 'replace')[:500]}")
            if kind != b"D":
                raise _answer_error(self._child, self.info.source, kind, payload)
            if len(payload) > want:
                self._child.kill("it sent more than was asked")
                raise DirectError(f"{self.info.source}: the parser sent more than was asked")
            if not payload:
                break
            chunks.append(payload)
            pos += len(payload)
            remaining -= len(payload)
        return b"".join(chunks)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._child.close()
        self._finalizer.detach()


def _records(payload: bytes) -> list[proto.Record]:
    return list(proto.decode_records(payload))


def _answer_error(child: _Child, source: str, kind: bytes, payload: bytes) -> DirectError:
    text = payload.decode("utf-8", "replace")[:proto.MAX_ERROR_BYTES]
    if kind == b"U":
        child.kill("it does not read this image")
        return DirectUnsupported(f"{source}: not read by the direct reader: {text}", text)
    if kind == b"E":
        child.kill(f"it failed: {text[:300]}")
        return DirectError(f"{source}: {text}")
    child.kill(f"unexpected answer {kind!r}")
    return DirectError(f"{source}: unexpected answer {kind!r} from the parser")


def open_direct(path: str | Path, *, offset: int = 0, length: int | None = None,
                limits: Limits | None = None, source: str | None = None) -> DirectFS:
    """Open a VM disk (or a disk at ``offset``/``length`` inside a file, e.g. an OVA member)
    with the confined direct reader. Raises :class:`DirectError` (or
    :class:`DirectUnsupported` for what libguestfs may still read)."""
    limits = limits or Limits()
    label = source or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as exc:
        raise DirectError(f"{label}: cannot open: {exc.strerror}") from exc
    try:
        try:
            length = byte_range(fd, label, offset, length)
            header = sniff_fd(fd, label, offset, length, limits.max_virtual_size)
        except UnsafeImageError as exc:
            raise UnsafeDisk(str(exc)) from None
        config = {
            "fd": fd, "offset": offset, "length": length, "format": header.format,
            "max_entries": limits.max_entries, "max_read_bytes": limits.max_read_bytes,
            "confine": asdict(limits.confine),
        }
        start = time.monotonic()
        child = _Child(fd, config, label)
    finally:
        os.close(fd)  # the child holds its own copy
    info = OpenInfo(kind="vm", format=header.format, source=label)
    fs = DirectFS(info, child, limits)
    try:
        details = fs._load()
    except BaseException:
        child.kill("the open failed")  # at once: a child still sending would hold close()
        fs.close()
        raise
    notes = details.pop("notes", [])
    if isinstance(notes, list):
        info.notes.extend(str(n) for n in notes)
    problems = details.pop("confinement_problems", [])
    if isinstance(problems, list):
        info.notes.extend(f"confinement: {p}" for p in problems)
    info.details.update(details)
    info.details["opener"] = "direct"
    info.details["virtual_size"] = header.virtual_size
    info.details["total_open_s"] = round(time.monotonic() - start, 3)
    return fs
