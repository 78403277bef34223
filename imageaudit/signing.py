"""Auditor signatures over reports: Ed25519 over the canonical report, checked by the catalogue.

The signed text is a fixed context line followed by the report's canonical JSON (sorted keys,
no spaces, UTF-8: :func:`imageaudit.store.canonical_json`), the same text whose SHA-256 is the
report id. The context line keeps a report signature from being valid for anything else the
same key might ever sign. A signature travels beside the report, never inside it, so signing
does not change the report or its id::

    {"algorithm": "ed25519", "key_id": "sha256:<hex of the raw public key>", "value": "<base64>"}

Keys are PEM files: the private key PKCS#8 (unencrypted, mode 0600), the public key
SubjectPublicKeyInfo; an OpenSSH ``ssh-ed25519`` public key line is accepted too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from imageaudit.store import canonical_json

ALGORITHM = "ed25519"
KEY_ENV = "IMAGEAUDIT_SIGNING_KEY"
CONTEXT = b"imageaudit-report-signature/1\n"
# A key file is a few hundred bytes; refuse to read something far larger by mistake.
MAX_KEY_BYTES = 64 * 1024


class SigningError(Exception):
    """A key could not be read or made, or a signature is missing, malformed or wrong."""


def canonical_bytes(report: Mapping[str, Any]) -> bytes:
    """The canonical JSON of a report as UTF-8: what is hashed into its id and signed."""
    return canonical_json(report).encode("utf-8")


def report_digest(report: Mapping[str, Any]) -> str:
    """The report id: SHA-256 hex of the canonical JSON."""
    return hashlib.sha256(canonical_bytes(report)).hexdigest()


def key_id(public: Ed25519PublicKey) -> str:
    """``sha256:<hex>`` of the raw 32-byte public key: how a signature names its key."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"sha256:{hashlib.sha256(raw).hexdigest()}"


def public_pem(public: Ed25519PublicKey) -> str:
    """The public key as PEM text (what the catalogue stores)."""
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise SigningError(f"cannot read key {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_KEY_BYTES:
        raise SigningError(f"{path} is larger than {MAX_KEY_BYTES} bytes; not a key")
    return data


def load_private_key(path: Path | str) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM file (unencrypted PKCS#8 or OpenSSH)."""
    path = Path(path)
    data = _read(path)
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key: object = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SigningError(f"{path}: not an unencrypted Ed25519 private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{path}: not an Ed25519 private key")
    return key


def parse_public_key(data: bytes, name: str = "public key") -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo) or an OpenSSH line."""
    try:
        if data.lstrip().startswith(b"ssh-"):
            key: object = serialization.load_ssh_public_key(data.strip())
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SigningError(f"{name}: not an Ed25519 public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError(f"{name}: not an Ed25519 public key")
    return key


def load_public_key(path: Path | str) -> Ed25519PublicKey:
    """An Ed25519 public key from a file."""
    path = Path(path)
    return parse_public_key(_read(path), str(path))


def generate_keypair(private_path: Path, public_path: Path) -> str:
    """Write a new key pair (private key mode 0600, never over an existing file); its key id."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    try:
        # O_EXCL: never replace a key someone already registered; 0600 from the first byte.
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise SigningError(f"{private_path} exists; not overwriting a key") from exc
    except OSError as exc:
        raise SigningError(f"cannot create {private_path}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "wb") as fh:
        fh.write(private)
    try:
        with public_path.open("x", encoding="ascii") as fh:
            fh.write(public_pem(key.public_key()))
    except FileExistsError as exc:
        raise SigningError(f"{public_path} exists; not overwriting a key") from exc
    except OSError as exc:
        raise SigningError(f"cannot create {public_path}: {exc.strerror or exc}") from exc
    return key_id(key.public_key())


def sign_report(report: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, str]:
    """The signature object for ``report``."""
    value = key.sign(CONTEXT + canonical_bytes(report))
    return {"algorithm": ALGORITHM, "key_id": key_id(key.public_key()),
            "value": base64.b64encode(value).decode("ascii")}


def verify_report(report: Mapping[str, Any], signature: Mapping[str, Any],
                  public: Ed25519PublicKey) -> None:
    """Raise :class:`SigningError` unless ``signature`` is ``public``'s over ``report``."""
    if signature.get("algorithm") != ALGORITHM:
        raise SigningError(f"signature algorithm must be {ALGORITHM}")
    if signature.get("key_id") != key_id(public):
        raise SigningError("signature key_id does not name this key")
    value = signature.get("value")
    try:
        raw = base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SigningError("signature value is not base64") from exc
    try:
        public.verify(raw, CONTEXT + canonical_bytes(report))
    except InvalidSignature as exc:
        raise SigningError("the signature does not verify against the report") from exc


__all__ = [
    "ALGORITHM",
    "KEY_ENV",
    "SigningError",
    "canonical_bytes",
    "generate_keypair",
    "key_id",
    "load_private_key",
    "load_public_key",
    "parse_public_key",
    "public_pem",
    "report_digest",
    "sign_report",
    "verify_report",
]
