"""Secrets kept out of the facts as they are written out.

Collectors keep what they read whole, for the checks to judge (an empty ``requirepass``
differs from a set one; a dropper's shape needs its whole command line). What leaves the
process (``imageaudit facts``, a report's messages) shows the place of a secret, never its
value: a dataclass field names one of these functions in its ``shown`` metadata and
:func:`imageaudit.model.to_jsonable` writes the field through it.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

# Credentials a command line or a value may carry: URL user:password@, curl/wget options,
# authentication headers, NAME=value where the name says password, token, secret or key,
# login=user:password (squid's cache_peer and the like).
_CREDENTIALS = (
    (re.compile(r"(://)[^/\s:@]{1,256}:[^/\s@]{1,256}@"), r"\1***@"),
    (re.compile(r"(\s(-u|--user|--password|--pass|--http-password|--ftp-password)[ =])\S{1,512}"),
     r"\1***"),
    (re.compile(r"(?i)\b((authorization|x-api-key|private-token|cookie):[ \t]*)[^'\"]{1,512}"),
     r"\1***"),
    (re.compile(r"(?i)\b([a-z_]{0,32}(pass(word|wd)?|token|secret|api_?key)[a-z_]{0,32}=)\S{1,512}"),
     r"\1***"),
    (re.compile(r"(?i)\b(login=[^\s:]{1,256}:)\S{1,512}"), r"\1***"),
)
# Long tokens mixing lower case, upper case and digits: keys and encoded payloads.
_TOKEN = re.compile(r"[A-Za-z0-9+/=_]{32,}")
_MIXED = (re.compile(r"[a-z]"), re.compile(r"[A-Z]"), re.compile(r"[0-9]"))
# Setting names whose value is a secret (redis requirepass and masterauth, slapd rootpw,
# Jupyter's token, password, passwd, secret, api_key...).
_SECRET_KEY = re.compile(
    r"(?i)(pass(word|wd|phrase)?|pw|secret|token|auth|credentials?|api_?key)(_maps?)?$"
    r"|password|passwd|secret|token"
)
# A value naming where the secret is rather than holding it: a path, or a map type and path.
_REFERENCE = re.compile(r"^([a-z0-9_]{1,32}:)?/")


def mask_credentials(text: str) -> str:
    """``text`` with the credentials it carries replaced by ``***`` and long tokens cut."""
    for pattern, replacement in _CREDENTIALS:
        text = pattern.sub(replacement, text)
    return _TOKEN.sub(_cut_token, text)


def _cut_token(m: re.Match[str]) -> str:
    token = m.group(0)
    if all(p.search(token) for p in _MIXED):
        return token[:6] + "…"
    return token


def shown_masked(value: str, record: Any) -> str:
    """A command line as written out: its credentials masked."""
    return mask_credentials(value)


def shown_setting(value: str, record: Any) -> str:
    """A daemon setting's value as written out: whole unless its key names a secret.

    An empty value stays empty (that no password is set is the fact); a value that names a
    file or a lookup table is kept; any other value of a secret key is ``***``.
    """
    key = getattr(record, "key", "")
    if value and isinstance(key, str) and _SECRET_KEY.search(key) and not _REFERENCE.match(value):
        return MASK
    return mask_credentials(value)
