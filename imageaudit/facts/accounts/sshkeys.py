"""Parse ``authorized_keys`` lines: options, key type, size, comment, SHA256 fingerprint.

The base64 blob is decoded in Python (RFC 4253 ``string``/``mpint`` fields); nothing is run.
Follows: sshd(8) "AUTHORIZED_KEYS FILE FORMAT", RFC 4253 section 6.6, RFC 5656 (ECDSA),
RFC 8709 (Ed25519), OpenSSH PROTOCOL.certkeys and PROTOCOL.u2f.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from imageaudit.model import Source

MAX_BLOB = 64 * 1024

KEY_TYPES = frozenset(
    {
        "ssh-rsa",
        "ssh-dss",
        "ssh-ed25519",
        "ssh-ed448",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ecdsa-sha2-nistp256@openssh.com",
        "sk-ssh-ed25519@openssh.com",
        "ssh-rsa-cert-v01@openssh.com",
        "ssh-dss-cert-v01@openssh.com",
        "ssh-ed25519-cert-v01@openssh.com",
        "ecdsa-sha2-nistp256-cert-v01@openssh.com",
        "ecdsa-sha2-nistp384-cert-v01@openssh.com",
        "ecdsa-sha2-nistp521-cert-v01@openssh.com",
        "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
        "sk-ssh-ed25519-cert-v01@openssh.com",
    }
)
_CURVE_BITS = {"nistp256": 256, "nistp384": 384, "nistp521": 521}


@dataclass(frozen=True, slots=True)
class AuthorizedKey:
    """One key line of an authorized_keys file."""

    source: Source
    account: str | None  # the passwd account whose home holds the file, if any
    options: tuple[str, ...]
    key_type: str
    bits: int | None
    curve: str | None
    comment: str
    fingerprint: str | None  # "SHA256:..." as ssh-keygen -l prints it
    problems: tuple[str, ...] = ()


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def string(self) -> bytes:
        if self.pos + 4 > len(self.data):
            raise ValueError("truncated key blob")
        size = int.from_bytes(self.data[self.pos : self.pos + 4], "big")
        self.pos += 4
        if self.pos + size > len(self.data):
            raise ValueError("truncated key blob")
        out = self.data[self.pos : self.pos + size]
        self.pos += size
        return out


def split_options(line: str) -> tuple[tuple[str, ...], str]:
    """Split the leading options field (commas, double quotes, ``\\"``) from the rest."""
    options: list[str] = []
    current: list[str] = []
    in_quote = False
    i = 0
    while i < len(line):
        c = line[i]
        if c == "\\" and in_quote and i + 1 < len(line) and line[i + 1] == '"':
            current.append('\\"')
            i += 2
            continue
        if c == '"':
            in_quote = not in_quote
        elif not in_quote and c in " \t":
            break
        if c == "," and not in_quote:
            options.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    options.append("".join(current))
    return tuple(options), line[i:].strip()


def parse_key_line(text: str, source: Source, account: str | None) -> AuthorizedKey | None:
    """One line; ``None`` for blank and comment lines. A bad key is a record with problems."""
    line = text.strip()
    if not line or line.startswith("#"):
        return None
    options: tuple[str, ...] = ()
    parts = line.split(None, 1)
    if parts[0] not in KEY_TYPES:
        options, rest = split_options(line)
        parts = rest.split(None, 1)
        if not parts:
            return AuthorizedKey(
                source, account, options, "", None, None, "", None, ("no key after options",)
            )
    key_type = parts[0]
    tail = parts[1].split(None, 1) if len(parts) > 1 else []
    blob_text = tail[0] if tail else ""
    comment = tail[1] if len(tail) > 1 else ""
    problems: list[str] = []
    if key_type not in KEY_TYPES:
        problems.append(f"unknown key type {key_type!r}")
    try:
        blob = base64.b64decode(blob_text.encode("ascii", errors="replace"), validate=True)
    except (binascii.Error, ValueError):
        blob = b""
    if not blob or len(blob) > MAX_BLOB:
        problems.append("key data is not valid base64" if not blob else "key data too large")
        return AuthorizedKey(
            source, account, options, key_type, None, None, comment, None, tuple(problems)
        )
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    bits: int | None = None
    curve: str | None = None
    try:
        blob_type, bits, curve = _key_size(blob)
        if blob_type != key_type:
            problems.append(f"key data is {blob_type!r}, line says {key_type!r}")
    except ValueError as exc:
        problems.append(str(exc))
    return AuthorizedKey(
        source=source,
        account=account,
        options=options,
        key_type=key_type,
        bits=bits,
        curve=curve,
        comment=comment,
        fingerprint=f"SHA256:{digest}",
        problems=tuple(problems),
    )


def _key_size(blob: bytes) -> tuple[str, int | None, str | None]:
    reader = _Reader(blob)
    blob_type = reader.string().decode("ascii", errors="replace")
    base = blob_type.replace("-cert-v01@openssh.com", "")
    if base != blob_type:
        reader.string()  # certificates carry a nonce before the public key
    if base == "ssh-rsa":
        reader.string()  # e
        return blob_type, _mpint_bits(reader.string()), None
    if base == "ssh-dss":
        return blob_type, _mpint_bits(reader.string()), None  # p
    if base in ("ssh-ed25519", "sk-ssh-ed25519@openssh.com"):
        return blob_type, 256, None
    if base == "ssh-ed448":
        return blob_type, 456, None
    if base.startswith(("ecdsa-sha2-", "sk-ecdsa-sha2-")):
        curve = reader.string().decode("ascii", errors="replace")
        return blob_type, _CURVE_BITS.get(curve), curve
    return blob_type, None, None


def _mpint_bits(value: bytes) -> int:
    return int.from_bytes(value, "big").bit_length()
