"""Classify a password field and read its cost parameters, without running any hash.

The raw field is kept on the record for the password checker (``metadata={"internal": True}``,
so it never reaches JSON output, and ``repr=False`` so it never reaches a log line); the
``description`` names the algorithm and cost only, never salt or digest.

The hash string itself is read by :mod:`imageaudit.passwords.crypt_format`, shared with the password
verifier; this module only decides what to record and which problems to name.

Follows: shadow(5), crypt(5) and the libxcrypt sources' parameter encodings
(crypt-sha256/sha512 ``rounds=``, crypt-bcrypt cost, alg-yescrypt-common ``decode64_uint32``,
crypt-scrypt ``$7$`` N/r/p, crypt-des BSDi ``_`` count).
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field, replace

from imageaudit.passwords.crypt_format import (
    MD5CRYPT_ROUNDS,
    SHA_ROUNDS_DEFAULT,
    SHA_ROUNDS_MAX,
    SHA_ROUNDS_MIN,
    MalformedHash,
    ScryptParams,
    algorithm_of,
    bcrypt_cost,
    bsdi_count,
    scrypt_params,
    sha_rounds_field,
    yescrypt_field,
    yescrypt_params,
)


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


def classify_password(value: str, in_passwd: bool = False) -> PasswordHash:
    """Classify a shadow (or passwd, with ``in_passwd``) password field."""
    if len(value) <= 2:
        # "x", "!", "*", "!!", "": the same few values on every line of a large image.
        return _classify_short(value, in_passwd)
    return _classify(value, in_passwd)


@functools.lru_cache(maxsize=512)
def _classify_short(value: str, in_passwd: bool) -> PasswordHash:
    return _classify(value, in_passwd)


def _classify(value: str, in_passwd: bool) -> PasswordHash:
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
        return replace(
            inner, state=PasswordState.LOCKED, description=f"locked, {inner.description}", raw=value
        )
    return _classify_hash(value)


def _classify_hash(value: str) -> PasswordHash:
    algorithm = algorithm_of(value)
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


def _unreadable(value: str, algorithm: str, problem: str, what: str) -> PasswordHash:
    return PasswordHash(
        state=PasswordState.HASH,
        algorithm=algorithm,
        problems=(problem,),
        description=f"{algorithm}, {what} unreadable",
        raw=value,
    )


def _sha_crypt(value: str, algorithm: str) -> PasswordHash:
    problems: list[str] = []
    rounds = SHA_ROUNDS_DEFAULT
    explicit = False
    try:
        written = sha_rounds_field(value)
    except MalformedHash as exc:
        written = None
        problems.append(str(exc))
    if written is not None:
        explicit = True
        given = int(written)
        rounds = min(max(given, SHA_ROUNDS_MIN), SHA_ROUNDS_MAX)
        if given != rounds:
            # glibc clamps; libxcrypt refuses the hash outright.
            problems.append(f"rounds={given} out of range, glibc clamps to {rounds}")
        elif written.startswith("0"):
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


def _bcrypt(value: str) -> PasswordHash:
    try:
        cost = bcrypt_cost(value)
    except MalformedHash as exc:
        return _unreadable(value, "bcrypt", str(exc), "cost")
    problems = () if 4 <= cost <= 31 else (f"bcrypt cost {cost} outside 04..31",)
    return PasswordHash(
        state=PasswordState.HASH,
        algorithm="bcrypt",
        log2_cost=cost,
        problems=problems,
        description=f"bcrypt, cost={cost}",
        raw=value,
    )


def _yescrypt(value: str, algorithm: str) -> PasswordHash:
    try:
        params = yescrypt_params(yescrypt_field(value, algorithm))
    except MalformedHash:
        params = None
    if params is None or params.n_log2 > 63:
        return _unreadable(value, algorithm, "malformed yescrypt parameters", "parameters")
    return _scrypt_family(value, algorithm, params)


def _scrypt(value: str) -> PasswordHash:
    try:
        params = scrypt_params(value[3:14])
    except MalformedHash:
        return _unreadable(value, "scrypt", "malformed scrypt parameters", "parameters")
    return _scrypt_family(value, "scrypt", params)


def _scrypt_family(value: str, algorithm: str, params: ScryptParams) -> PasswordHash:
    n = 1 << params.n_log2
    return PasswordHash(
        state=PasswordState.HASH,
        algorithm=algorithm,
        n=n,
        r=params.r,
        p=params.p,
        memory_bytes=128 * n * params.r,
        description=f"{algorithm}, N={n} r={params.r} p={params.p}",
        raw=value,
    )


def _bsdi(value: str) -> PasswordHash:
    try:
        count = bsdi_count(value)
    except MalformedHash:
        count = 0
    if count == 0:
        return _unreadable(value, "bsdicrypt", "malformed BSDi iteration count", "count")
    return PasswordHash(
        state=PasswordState.HASH,
        algorithm="bsdicrypt",
        rounds=count,
        rounds_explicit=True,
        description=f"bsdicrypt, rounds={count}",
        raw=value,
    )
