"""Classify a password field and read its cost parameters, without running any hash.

The raw field is kept on the record for the password checker (``metadata={"internal": True}``,
so it never reaches JSON output, and ``repr=False`` so it never reaches a log line); the
``description`` names the algorithm and cost only, never salt or digest.

Follows: shadow(5), crypt(5) and the libxcrypt sources' parameter encodings
(crypt-sha256/sha512 ``rounds=``, crypt-bcrypt cost, alg-yescrypt-common ``decode64_uint32``,
crypt-scrypt ``$7$`` N/r/p, crypt-des BSDi ``_`` count).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ATOI64 = {c: i for i, c in enumerate(ITOA64)}
_B64_CHARS = frozenset(ITOA64)

SHA_ROUNDS_DEFAULT = 5000
SHA_ROUNDS_MIN = 1000
SHA_ROUNDS_MAX = 999_999_999
MD5CRYPT_ROUNDS = 1000


class PasswordState(enum.StrEnum):
    EMPTY = "empty"  # "" : no password at all
    LOCKED = "locked"  # "!", "!!", "*", or "!"/"*" before a hash
    HASH = "hash"  # a usable hash (algorithm may be "unknown")
    SHADOWED = "shadowed"  # "x" in passwd: the real field lives in shadow


@dataclass(frozen=True, slots=True)
class PasswordHash:
    """What a password field holds, with cost parameters but no salt or digest."""

    state: PasswordState
    algorithm: str | None = None
    rounds: int | None = None  # sha-crypt effective rounds, md5crypt 1000, BSDi count
    rounds_explicit: bool = False
    log2_cost: int | None = None  # bcrypt
    n: int | None = None  # yescrypt / scrypt N
    r: int | None = None
    p: int | None = None
    memory_bytes: int | None = None  # 128 * N * r for yescrypt / scrypt
    problems: tuple[str, ...] = ()
    description: str = ""
    raw: str = field(default="", repr=False, metadata={"internal": True})


_PREFIXES: tuple[tuple[str, str], ...] = (
    ("$1$", "md5crypt"),
    ("$5$", "sha256crypt"),
    ("$6$", "sha512crypt"),
    ("$y$", "yescrypt"),
    ("$gy$", "gost-yescrypt"),
    ("$2a$", "bcrypt"),
    ("$2b$", "bcrypt"),
    ("$2x$", "bcrypt"),
    ("$2y$", "bcrypt"),
    ("$7$", "scrypt"),
    ("$sha1$", "sha1crypt"),
    ("$md5", "sunmd5"),
    ("$3$", "nthash"),
)


def classify_password(value: str, in_passwd: bool = False) -> PasswordHash:
    """Classify a shadow (or passwd, with ``in_passwd``) password field."""
    if value == "":
        return PasswordHash(state=PasswordState.EMPTY, description="empty password", raw=value)
    if in_passwd and value == "x":
        return PasswordHash(
            state=PasswordState.SHADOWED, description="password in shadow file", raw=value
        )
    if value[0] in "!*":
        rest = value.lstrip("!*")
        if not rest:
            return PasswordHash(
                state=PasswordState.LOCKED, description=f"locked ({value})", raw=value
            )
        inner = _classify_hash(rest)
        return _replace_state(inner, PasswordState.LOCKED, value)
    return _classify_hash(value)


def _replace_state(inner: PasswordHash, state: PasswordState, raw: str) -> PasswordHash:
    return PasswordHash(
        state=state,
        algorithm=inner.algorithm,
        rounds=inner.rounds,
        rounds_explicit=inner.rounds_explicit,
        log2_cost=inner.log2_cost,
        n=inner.n,
        r=inner.r,
        p=inner.p,
        memory_bytes=inner.memory_bytes,
        problems=inner.problems,
        description=f"locked, {inner.description}",
        raw=raw,
    )


def _classify_hash(value: str) -> PasswordHash:
    algorithm = "unknown"
    for prefix, name in _PREFIXES:
        if value.startswith(prefix):
            algorithm = name
            break
    else:
        if len(value) == 13 and all(c in _B64_CHARS for c in value):
            algorithm = "descrypt"
        elif value.startswith("_") and len(value) == 20:
            algorithm = "bsdicrypt"
    if algorithm in ("sha256crypt", "sha512crypt"):
        return _sha_crypt(value, algorithm)
    if algorithm == "bcrypt":
        return _bcrypt(value)
    if algorithm in ("yescrypt", "gost-yescrypt"):
        return _yescrypt(value, algorithm)
    if algorithm == "scrypt":
        return _scrypt(value)
    if algorithm == "bsdicrypt":
        return _bsdi(value)
    rounds = MD5CRYPT_ROUNDS if algorithm == "md5crypt" else None
    desc = algorithm if algorithm != "unknown" else "unrecognised hash format"
    return PasswordHash(
        state=PasswordState.HASH, algorithm=algorithm, rounds=rounds, description=desc, raw=value
    )


_ROUNDS_RE = re.compile(r"rounds=([0-9]+)\$")


def _sha_crypt(value: str, algorithm: str) -> PasswordHash:
    body = value[3:]
    problems: list[str] = []
    rounds = SHA_ROUNDS_DEFAULT
    explicit = False
    if body.startswith("rounds="):
        m = _ROUNDS_RE.match(body)
        if m is None:
            problems.append("malformed rounds= parameter")
        else:
            explicit = True
            given = int(m.group(1))
            rounds = min(max(given, SHA_ROUNDS_MIN), SHA_ROUNDS_MAX)
            if given != rounds:
                # glibc clamps; libxcrypt refuses the hash outright.
                problems.append(f"rounds={given} out of range, glibc clamps to {rounds}")
            elif m.group(1).startswith("0"):
                problems.append("rounds= with a leading zero (libxcrypt refuses it)")
    note = "" if explicit else " (default)"
    return PasswordHash(
        state=PasswordState.HASH,
        algorithm=algorithm,
        rounds=rounds,
        rounds_explicit=explicit,
        problems=tuple(problems),
        description=f"{algorithm}, rounds={rounds}{note}",
        raw=value,
    )


_BCRYPT_RE = re.compile(r"\$2[abxy]\$([0-9]{2})\$")


def _bcrypt(value: str) -> PasswordHash:
    m = _BCRYPT_RE.match(value)
    if m is None:
        return PasswordHash(
            state=PasswordState.HASH,
            algorithm="bcrypt",
            problems=("malformed bcrypt cost",),
            description="bcrypt, cost unreadable",
            raw=value,
        )
    cost = int(m.group(1))
    problems = () if 4 <= cost <= 31 else (f"bcrypt cost {cost} outside 04..31",)
    return PasswordHash(
        state=PasswordState.HASH,
        algorithm="bcrypt",
        log2_cost=cost,
        problems=problems,
        description=f"bcrypt, cost={cost}",
        raw=value,
    )


def _decode_yescrypt_uint32(src: str, pos: int, minimum: int) -> tuple[int, int] | None:
    """libxcrypt/yescrypt ``decode64_uint32``: a variable-length big-endian-ish integer."""
    if pos >= len(src) or src[pos] not in _ATOI64:
        return None
    c = _ATOI64[src[pos]]
    pos += 1
    start, end, chars, bits = 0, 47, 1, 0
    value = minimum
    while c > end:
        value += (end + 1 - start) << bits
        start = end + 1
        end = start + (62 - end) // 2
        chars += 1
        bits += 6
    value += (c - start) << bits
    for _ in range(chars - 1):
        if pos >= len(src) or src[pos] not in _ATOI64:
            return None
        bits -= 6
        value += _ATOI64[src[pos]] << bits
        pos += 1
    return value, pos


def _yescrypt(value: str, algorithm: str) -> PasswordHash:
    prefix_len = 3 if algorithm == "yescrypt" else 4
    params = _yescrypt_params(value, prefix_len)
    if params is None:
        return PasswordHash(
            state=PasswordState.HASH,
            algorithm=algorithm,
            problems=("malformed yescrypt parameters",),
            description=f"{algorithm}, parameters unreadable",
            raw=value,
        )
    n, r, p = params
    return PasswordHash(
        state=PasswordState.HASH,
        algorithm=algorithm,
        n=n,
        r=r,
        p=p,
        memory_bytes=128 * n * r,
        description=f"{algorithm}, N={n} r={r} p={p}",
        raw=value,
    )


def _yescrypt_params(value: str, pos: int) -> tuple[int, int, int] | None:
    flavor = _decode_yescrypt_uint32(value, pos, 0)
    if flavor is None or flavor[0] > 2 + (0x3FC >> 2):
        return None
    n_log2 = _decode_yescrypt_uint32(value, flavor[1], 1)
    if n_log2 is None or n_log2[0] > 63:
        return None
    r = _decode_yescrypt_uint32(value, n_log2[1], 1)
    if r is None:
        return None
    pos, p = r[1], 1
    if pos < len(value) and value[pos] != "$":
        have = _decode_yescrypt_uint32(value, pos, 1)
        if have is None:
            return None
        pos = have[1]
        if have[0] & 1:
            p_dec = _decode_yescrypt_uint32(value, pos, 2)
            if p_dec is None:
                return None
            p, pos = p_dec
    if pos >= len(value) or value[pos] != "$":
        return None
    return 1 << n_log2[0], r[0], p


def _decode_le(src: str, pos: int, chars: int) -> int | None:
    """Little-endian base-64 integer of ``chars`` characters (scrypt r/p, BSDi count)."""
    if pos + chars > len(src):
        return None
    value = 0
    for i in range(chars):
        c = src[pos + i]
        if c not in _ATOI64:
            return None
        value |= _ATOI64[c] << (6 * i)
    return value


def _scrypt(value: str) -> PasswordHash:
    n_log2 = _ATOI64.get(value[3:4], -1) if len(value) > 3 else -1
    r = _decode_le(value, 4, 5)
    p = _decode_le(value, 9, 5)
    if n_log2 < 1 or r is None or p is None or r == 0 or p == 0:
        return PasswordHash(
            state=PasswordState.HASH,
            algorithm="scrypt",
            problems=("malformed scrypt parameters",),
            description="scrypt, parameters unreadable",
            raw=value,
        )
    n = 1 << n_log2
    return PasswordHash(
        state=PasswordState.HASH,
        algorithm="scrypt",
        n=n,
        r=r,
        p=p,
        memory_bytes=128 * n * r,
        description=f"scrypt, N={n} r={r} p={p}",
        raw=value,
    )


def _bsdi(value: str) -> PasswordHash:
    count = _decode_le(value, 1, 4)
    if count is None or count == 0:
        return PasswordHash(
            state=PasswordState.HASH,
            algorithm="bsdicrypt",
            problems=("malformed BSDi iteration count",),
            description="bsdicrypt, count unreadable",
            raw=value,
        )
    return PasswordHash(
        state=PasswordState.HASH,
        algorithm="bsdicrypt",
        rounds=count,
        rounds_explicit=True,
        description=f"bsdicrypt, rounds={count}",
        raw=value,
    )
