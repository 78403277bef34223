"""Auditors' signing keys: registered by an operator, looked up to verify a published report.

A report is the auditor's when it carries an Ed25519 signature (``imageaudit.signing``) by a
key registered here to that auditor and not revoked. The auditor's name ties the key to the
tokens: an ``auditor`` token may only publish reports signed by a key registered under the
token's own name (an ``admin`` token may relay any registered auditor's report).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from imageaudit.signing import SigningError, key_id, parse_public_key, public_pem, verify_report
from integrations.appdb.db import AuditorKey, utcnow
from integrations.appdb.schemas import AuditorKeyInfo, format_time


class KeyRefused(Exception):
    """A signature or key is refused; ``status`` is the HTTP answer (422 or 403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def register(s: Session, auditor: str, pem: bytes) -> AuditorKey:
    """Add ``pem`` (Ed25519, PEM or OpenSSH) as a key of ``auditor``."""
    try:
        public = parse_public_key(pem)
    except SigningError as exc:
        raise KeyRefused(422, str(exc)) from exc
    kid = key_id(public)
    if s.scalars(select(AuditorKey).where(AuditorKey.key_id == kid)).first() is not None:
        raise KeyRefused(409, f"key {kid} is already registered")
    row = AuditorKey(auditor=auditor, key_id=kid, public_key=public_pem(public),
                     created=utcnow(), revoked=False)
    s.add(row)
    try:
        s.flush()
    except IntegrityError as exc:  # a concurrent twin
        raise KeyRefused(409, f"key {kid} is already registered") from exc
    return row


def revoke(s: Session, kid: str) -> bool:
    """Revoke a key; False when no such key is registered."""
    row = s.scalars(select(AuditorKey).where(AuditorKey.key_id == kid)).first()
    if row is None:
        return False
    row.revoked = True
    return True


def listing(s: Session) -> list[AuditorKeyInfo]:
    """Every registered key, by auditor."""
    rows = s.scalars(select(AuditorKey).order_by(AuditorKey.auditor, AuditorKey.id)).all()
    return [AuditorKeyInfo(auditor=r.auditor, key_id=r.key_id, created=format_time(r.created),
                           revoked=r.revoked) for r in rows]


def verify_signer(sessions: Callable[[], Session], report: Mapping[str, Any],
                  signature: Mapping[str, Any] | None, principal_name: str,
                  principal_role: str) -> tuple[str, str]:
    """(auditor, key id) of a valid signature over ``report``; :class:`KeyRefused` otherwise.

    422 for a missing, malformed or wrong signature or an unknown or revoked key; 403 when an
    auditor token presents a report signed by another auditor's key.
    """
    if signature is None:
        raise KeyRefused(422, "report is not signed: the catalogue takes only reports signed "
                              "by a registered auditor key (imageaudit publish --signing-key)")
    kid = str(signature.get("key_id"))
    with sessions() as s:
        row = s.scalars(select(AuditorKey).where(AuditorKey.key_id == kid)).first()
    if row is None:
        raise KeyRefused(422, f"report signed with key {kid}, which is not registered "
                              "(imageaudit catalogue auditor add)")
    if row.revoked:
        raise KeyRefused(422, f"report signed with key {kid}, which is revoked")
    if principal_role != "admin" and row.auditor != principal_name:
        raise KeyRefused(403, f"report signed with a key of auditor {row.auditor}; the token "
                              f"is {principal_name}'s")
    try:
        verify_report(report, signature, parse_public_key(row.public_key.encode("ascii")))
    except SigningError as exc:
        raise KeyRefused(422, f"bad signature: {exc}") from exc
    return row.auditor, row.key_id
