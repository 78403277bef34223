"""libxcrypt through ctypes, and the child process that verifies password candidates.

The child is started by :mod:`imageaudit.passwords.verify` as ``python -I -S crypt_worker.py``: it
uses the standard library only, so it runs without site-packages and without importing
``imageaudit``. Before it loads libxcrypt it limits its own address space and CPU time, so a
hash that slipped past the cost caps can at worst kill this process, never the auditor.

Protocol: one JSON object per line on stdin, ``{"setting": str, "phrases": [str, ...]}``;
one JSON object per line on stdout, ``{"match": int | null, "rejected": int, "errno": int}``,
after a first ``{"ready": true}`` line once the limits are set and libxcrypt is loaded.
Strings come from the image and may hold lone surrogates (bytes decoded with
``surrogateescape``); they are encoded back to the original bytes here.

Follows crypt(3), crypt_gensalt(3) and crypt(5) of libxcrypt 4.4.
"""

from __future__ import annotations

import ctypes
import hmac
import json
import resource
import sys
from collections.abc import Sequence

LIBCRYPT = "libcrypt.so.1"
# sizeof(struct crypt_data) in libxcrypt (crypt.h: CRYPT_DATA_INTERNAL_SIZE and friends).
CRYPT_DATA_SIZE = 32768
CRYPT_GENSALT_OUTPUT_SIZE = 192
MAX_REQUEST_BYTES = 1 << 20


class LibXCrypt:
    """A thin binding to ``crypt_rn`` and ``crypt_gensalt_rn`` from libxcrypt."""

    def __init__(self, path: str = LIBCRYPT) -> None:
        self._lib = ctypes.CDLL(path, use_errno=True)
        self._crypt_rn = self._lib.crypt_rn
        self._crypt_rn.restype = ctypes.c_char_p
        self._crypt_rn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
        self._gensalt_rn = self._lib.crypt_gensalt_rn
        self._gensalt_rn.restype = ctypes.c_char_p
        self._gensalt_rn.argtypes = [
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        self._data = ctypes.create_string_buffer(CRYPT_DATA_SIZE)

    def crypt(self, phrase: bytes, setting: bytes) -> bytes | None:
        """Hash ``phrase`` with ``setting``; ``None`` when libxcrypt fails.

        libxcrypt marks failure with ``NULL`` from ``crypt_rn`` or, in other entry points,
        with a string starting with ``*``: both are failures, never a hash to compare.
        """
        if b"\0" in phrase or b"\0" in setting:
            return None
        ctypes.set_errno(0)
        out = self._crypt_rn(phrase, setting, self._data, CRYPT_DATA_SIZE)
        if out is None or out.startswith(b"*"):
            return None
        return bytes(out)

    def gensalt(self, prefix: bytes, count: int = 0, rbytes: bytes | None = None) -> bytes:
        """A setting string for ``prefix`` (e.g. ``b"$y$"``); ``count`` 0 means the default cost."""
        out = ctypes.create_string_buffer(CRYPT_GENSALT_OUTPUT_SIZE)
        nrbytes = len(rbytes) if rbytes is not None else 0
        res = self._gensalt_rn(prefix, count, rbytes, nrbytes, out, CRYPT_GENSALT_OUTPUT_SIZE)
        if res is None or res.startswith(b"*"):
            raise ValueError(f"crypt_gensalt_rn refused prefix {prefix!r} with count {count}")
        return bytes(res)

    def hash(self, phrase: bytes, prefix: bytes, count: int = 0) -> bytes:
        """Hash ``phrase`` with a fresh salt for ``prefix`` (used to build test data)."""
        out = self.crypt(phrase, self.gensalt(prefix, count))
        if out is None:
            raise ValueError(f"crypt_rn failed for prefix {prefix!r}")
        return out

    @staticmethod
    def errno() -> int:
        return ctypes.get_errno()


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def verify(lib: LibXCrypt, setting: str, phrases: Sequence[str]) -> dict[str, int | None]:
    """Try each phrase against ``setting``; report the first match and how many failed."""
    stored = _encode(setting)
    rejected = 0
    last_errno = 0
    for index, phrase in enumerate(phrases):
        out = lib.crypt(_encode(phrase), stored)
        if out is None:
            rejected += 1
            last_errno = lib.errno()
            continue
        if hmac.compare_digest(out, stored):
            return {"match": index, "rejected": rejected, "errno": last_errno}
    return {"match": None, "rejected": rejected, "errno": last_errno}


def _limit(address_space: int, cpu_seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _parse_args(argv: Sequence[str]) -> tuple[int, int]:
    opts = dict(zip(argv[::2], argv[1::2], strict=False))
    return int(opts["--address-space"]), int(opts["--cpu-seconds"])


def main(argv: Sequence[str]) -> int:
    """Run the verification loop until stdin closes."""
    address_space, cpu_seconds = _parse_args(argv)
    _limit(address_space, cpu_seconds)
    lib = LibXCrypt()
    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    # Tell the parent we are ready, so its wall clock per job excludes our start-up.
    stdout.write(b'{"ready": true}\n')
    stdout.flush()
    while True:
        line = stdin.readline(MAX_REQUEST_BYTES)
        if not line:
            return 0
        try:
            request = json.loads(line)
            setting = request["setting"]
            phrases = request["phrases"]
            if not isinstance(setting, str) or not isinstance(phrases, list):
                raise TypeError("setting must be a string and phrases a list")
            reply: dict[str, object] = dict(
                verify(lib, setting, [p for p in phrases if isinstance(p, str)])
            )
        except (ValueError, KeyError, TypeError) as exc:
            reply = {"error": f"bad request: {exc}"}
        stdout.write(json.dumps(reply).encode("ascii") + b"\n")
        stdout.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
