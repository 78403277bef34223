"""Private keys: which files to sniff, and what a sniffed file holds (never the key itself).

Heuristic (bounded; documented here because it decides what is *not* looked at):

- only regular files from the shared walk, never symlinks (their targets are walked too);
- never a file larger than :data:`MAX_KEY_FILE` (64 KiB) — a key file is a few KiB;
- a file is *named* like a key when its extension is one of :data:`KEY_SUFFIXES`, its name is
  one of :data:`KEY_NAMES` or starts with ``id_`` (not ``.pub``), or matches ``*_key``:
  such files are read whole (≤ 64 KiB);
- otherwise it is sniffed only when it sits under a home, ``/root``, ``/etc``, ``/opt``,
  ``/srv``, ``/var/lib`` or ``/usr/local`` (package databases and caches excluded, see
  :data:`SKIP_PREFIXES`), is at most :data:`MAX_SNIFF_FILE` (16 KiB), and only its first
  :data:`SNIFF_BYTES` (4 KiB) are read — the rest only if a PEM ``-----BEGIN`` shows there;
- at most :data:`MAX_SNIFFED` files and :data:`MAX_SNIFF_TOTAL` bytes per image; past that
  the list is marked truncated.

PKCS#12 (``.p12``/``.pfx``) is recognised by extension only (its encryption is not read).
Follows RFC 7468 (PEM), RFC 1421 (``Proc-Type``), RFC 5208/5958 (PKCS#8), OpenSSH
PROTOCOL.key, PuTTY PPK format (puttygen docs, appendix C).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import posixpath
import re
import struct
from dataclasses import dataclass

from imageaudit.imagefs import FileStat

MAX_KEY_FILE = 64 * 1024
MAX_SNIFF_FILE = 16 * 1024
SNIFF_BYTES = 4 * 1024
MAX_SNIFFED = 20_000
MAX_SNIFF_TOTAL = 128 * 1024 * 1024
MAX_KEYS_PER_FILE = 16
KEY_SUFFIXES = (".pem", ".key", ".ppk", ".p12", ".pfx", ".priv", ".private", ".asc", ".sk")
KEY_NAMES = frozenset({"identity", "privkey", "private_key", "hostkey", "userkey"})
PKCS12_SUFFIXES = (".p12", ".pfx")
SNIFF_PREFIXES = ("/root", "/home", "/etc", "/opt", "/srv", "/var/lib", "/usr/local")
SKIP_PREFIXES = (
    "/var/lib/dpkg",
    "/var/lib/rpm",
    "/var/lib/apt",
    "/var/lib/yum",
    "/var/lib/dnf",
    "/var/lib/apk",
    "/var/lib/pacman",
    "/usr/local/lib/python",
    "/usr/local/share",
    "/etc/ssl/certs",
    "/etc/pki/ca-trust/extracted",
)
HOST_KEY_RE = re.compile(r"^/etc/ssh/ssh_host_[^/]*_key$")
_PEM_RE = re.compile(rb"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY( BLOCK)?-----")
_PEM_END = re.compile(rb"-----END [A-Z0-9 ]*-----")
_OPENSSH_MAGIC = b"openssh-key-v1\x00"


@dataclass(frozen=True, slots=True)
class KeyBlock:
    """One private key found in a file's bytes."""

    kind: str  # "rsa", "ec", "dsa", "pkcs8", "openssh", "pgp", "putty", "pkcs12", ...
    encrypted: bool | None  # None: cannot tell without the password / parsing
    algorithm: str | None  # e.g. "ssh-ed25519" where the format names it in clear
    fingerprint: str | None  # digest of the public part or of the encoded block
    line: int | None


def wants_read(st: FileStat, homes: tuple[str, ...]) -> tuple[bool, bool]:
    """(sniff this file?, read it whole?) for one walked entry."""
    if not st.is_file or st.size == 0 or st.size > MAX_KEY_FILE:
        return False, False
    name = posixpath.basename(st.path).lower()
    stem = name.rsplit(".", 1)[0]
    if (
        name.endswith(KEY_SUFFIXES)
        or stem in KEY_NAMES
        or (name.startswith("id_") and not name.endswith(".pub"))
        or (name.endswith("_key") and not name.endswith(".pub"))
        or HOST_KEY_RE.match(st.path)
    ):
        return True, True
    if st.size > MAX_SNIFF_FILE or any(_under(st.path, p) for p in SKIP_PREFIXES):
        return False, False
    if any(_under(st.path, p) for p in (*SNIFF_PREFIXES, *homes)):
        return True, False
    return False, False


def _under(path: str, top: str) -> bool:
    return top != "/" and (path == top or path.startswith(top + "/"))


def _line_of(data: bytes, pos: int) -> int:
    return data.count(b"\n", 0, pos) + 1


def find_keys(path: str, data: bytes) -> list[KeyBlock]:
    """Every private key in ``data`` (PEM blocks, PuTTY, PKCS#12 by name), at most 16."""
    found: list[KeyBlock] = []
    if path.lower().endswith(PKCS12_SUFFIXES):
        found.append(KeyBlock("pkcs12", None, None, "sha256:" + _hex(data), None))
    if data.startswith(b"PuTTY-User-Key-File-"):
        found.append(_putty(data))
    for m in _PEM_RE.finditer(data):
        if len(found) >= MAX_KEYS_PER_FILE:
            break
        end = _PEM_END.search(data, m.end())
        body = data[m.end() : end.start() if end else len(data)]
        label = m.group(1).decode("ascii").strip()
        found.append(_pem(label, bool(m.group(2)), body, _line_of(data, m.start())))
    return found


def _hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _pem(label: str, block: bool, body: bytes, line: int) -> KeyBlock:
    lines = body.replace(b"\r", b"").strip().split(b"\n")
    count = 0
    if b":" in lines[0]:  # RFC 1421 headers end at the first empty line
        while count < len(lines) and lines[count].strip():
            count += 1
    headers = b"\n".join(lines[:count])
    try:
        der = base64.b64decode(b"".join(b"".join(lines[count:]).split()), validate=False)
    except (binascii.Error, ValueError):
        der = b""
    fingerprint = "sha256:" + _hex(der) if der else None
    if block:  # PGP "PRIVATE KEY BLOCK": S2K usage is deep in the packet; not parsed
        return KeyBlock("pgp", None, None, fingerprint, line)
    if label == "OPENSSH":
        return _openssh(der, line)
    if label == "ENCRYPTED":
        return KeyBlock("pkcs8", True, None, fingerprint, line)
    if label == "":
        return KeyBlock("pkcs8", False, None, fingerprint, line)
    encrypted = b"Proc-Type:" in headers and b"ENCRYPTED" in headers
    return KeyBlock(label.lower().replace(" ", "-"), encrypted, None, fingerprint, line)


def _ssh_string(blob: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 4 > len(blob):
        raise ValueError("short")
    (n,) = struct.unpack(">I", blob[pos : pos + 4])
    if pos + 4 + n > len(blob):
        raise ValueError("short")
    return blob[pos + 4 : pos + 4 + n], pos + 4 + n


def _openssh(blob: bytes, line: int) -> KeyBlock:
    """PROTOCOL.key: magic, cipher, kdf, kdfoptions, nkeys, public key blobs (in clear)."""
    if not blob.startswith(_OPENSSH_MAGIC):
        return KeyBlock("openssh", None, None, None, line)
    try:
        cipher, pos = _ssh_string(blob, len(_OPENSSH_MAGIC))
        kdf, pos = _ssh_string(blob, pos)
        _opts, pos = _ssh_string(blob, pos)
        pos += 4  # number of keys
        public, pos = _ssh_string(blob, pos)
        algorithm, _ = _ssh_string(public, 0)
    except (ValueError, struct.error):
        return KeyBlock("openssh", None, None, None, line)
    digest = base64.b64encode(hashlib.sha256(public).digest()).decode().rstrip("=")
    encrypted = cipher != b"none" or kdf != b"none"
    return KeyBlock(
        "openssh", encrypted, algorithm.decode("ascii", "replace"), "SHA256:" + digest, line
    )


def _putty(data: bytes) -> KeyBlock:
    # Only sniffs the header of a PuTTY key to name it; no judgement rests on its line ends.
    head = data[:512].decode("ascii", "replace").splitlines()
    algorithm = head[0].split(":", 1)[1].strip() if ":" in head[0] else None
    encrypted: bool | None = None
    for line in head[1:4]:
        if line.startswith("Encryption:"):
            encrypted = line.split(":", 1)[1].strip() != "none"
    return KeyBlock("putty", encrypted, algorithm, None, 1)
