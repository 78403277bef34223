"""Classify a password hash and read its cost *before* anything tries to verify it.

A hash in a hostile image can be a denial of service: ``$6$rounds=999999999$`` or a yescrypt
N of 2^30 takes minutes and gigabytes per guess. :func:`analyse_hash` reads the cost
parameters from the string alone, estimates the time and memory of one guess, and says
whether the hash may be verified under :class:`CostCaps`.

The string is read by :mod:`imageaudit.passwords.crypt_format` (shared with the accounts collector);
only a hash whose whole string has its algorithm's format is costed. This module holds the
caps and the cost estimates.

Follows crypt(5) of libxcrypt 4.4, and libxcrypt's ``alg-yescrypt-common.c`` for the
variable-length base-64 encoding of yescrypt parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from imageaudit.passwords.crypt_format import ITOA64, MalformedHash, ScryptParams, parse_setting

MIB = 1024 * 1024
# str.isspace() as one regex scan: a generator over every character of 100k hashes is slow.
_WHITESPACE = re.compile(r"\s")

# Seconds per unit of work, measured with libxcrypt 4.4 on the reference machine
# (SECURITY.md: yescrypt default ≈ 30 ms, sha512crypt ≈ 2 ms, bcrypt 10 ≈ 60 ms per guess).
_SEC_PER_SHA512_ROUND = 0.4e-6
_SEC_PER_SHA256_ROUND = 0.45e-6
_SEC_PER_BCRYPT_ITERATION = 60e-3 / 1024
_SEC_PER_YESCRYPT_BLOCK = 30e-3 / (4096 * 32)  # per unit of N * r
_SEC_PER_SCRYPT_BLOCK = 0.4e-6
_SEC_PER_MD5CRYPT = 0.2e-3
_SEC_PER_DES = 0.1e-3
_SEC_PER_BSDI_ROUND = 0.2e-6
_SEC_PER_SHA1CRYPT_ROUND = 1e-6
_SEC_PER_SUNMD5_ROUND = 2e-6

_SHA_CRYPT_PER_ROUND = {
    "sha512crypt": _SEC_PER_SHA512_ROUND,
    "sha256crypt": _SEC_PER_SHA256_ROUND,
}
_OTHER_PER_ROUND = {
    "bsdicrypt": _SEC_PER_BSDI_ROUND,
    "sha1crypt": _SEC_PER_SHA1CRYPT_ROUND,
    "sunmd5": _SEC_PER_SUNMD5_ROUND,
}

Kind = Literal["empty", "locked", "hash", "unknown"]


@dataclass(frozen=True, slots=True)
class CostCaps:
    """Above these a hash is skipped and reported, never verified."""

    max_sha_crypt_rounds: int = 100_000
    max_bcrypt_cost: int = 12
    max_yescrypt_n_log2: int = 16
    max_memory_bytes: int = 64 * MIB
    max_parallelism: int = 16
    max_other_rounds: int = 1_000_000  # bsdicrypt, sha1crypt, SunMD5
    max_guess_seconds: float = 0.5
    max_hash_length: int = 512
    cost_scale: float = 1.0  # multiplies the built-in estimates; raise on slower hosts


@dataclass(frozen=True, slots=True)
class HashAnalysis:
    """What a hash field is, what one guess costs, and whether it may be verified."""

    kind: Kind
    algorithm: str
    cost: str | None = None
    guess_seconds: float = 0.0
    memory_bytes: int = 0
    skip_reason: str | None = None

    @property
    def verifiable(self) -> bool:
        return self.kind == "hash" and self.skip_reason is None


def _scrypt_family(algorithm: str, prm: ScryptParams, caps: CostCaps) -> HashAnalysis:
    n = 1 << prm.n_log2 if prm.n_log2 < 64 else 1 << 63
    memory = 128 * prm.r * n
    lanes = prm.p if prm.classic else 1
    per_block = _SEC_PER_SCRYPT_BLOCK if algorithm == "scrypt" else _SEC_PER_YESCRYPT_BLOCK
    seconds = n * prm.r * lanes * (prm.t + 1) * per_block * caps.cost_scale
    cost = f"N=2^{prm.n_log2} r={prm.r} p={prm.p}" + (f" t={prm.t}" if prm.t else "")
    reason = None
    if prm.rom:
        reason = f"{algorithm} hash needs a ROM (NROM parameter) that is not available"
    elif prm.g:
        reason = f"{algorithm} hash upgrades (g={prm.g}) are not supported"
    elif prm.n_log2 > caps.max_yescrypt_n_log2:
        reason = f"{algorithm} N=2^{prm.n_log2} exceeds the cap of 2^{caps.max_yescrypt_n_log2}"
    elif memory > caps.max_memory_bytes:
        reason = (
            f"{algorithm} needs {_mib(memory)} per guess (128*r*N), over the cap of "
            f"{_mib(caps.max_memory_bytes)}"
        )
    elif prm.p > caps.max_parallelism:
        reason = f"{algorithm} p={prm.p} exceeds the cap of {caps.max_parallelism}"
    return _costed(algorithm, cost, seconds, memory, reason, caps)


def _mib(n: int) -> str:
    return f"{n / MIB:g} MiB"


def _costed(
    algorithm: str, cost: str, seconds: float, memory: int, reason: str | None, caps: CostCaps
) -> HashAnalysis:
    if reason is None and seconds > caps.max_guess_seconds:
        reason = (
            f"{algorithm} ({cost}) would take about {seconds:.3g} s per guess, over the cap of "
            f"{caps.max_guess_seconds:g} s"
        )
    return HashAnalysis("hash", algorithm, cost, seconds, memory, reason)


# crypt_format names two algorithms differently from what this module has always reported.
_REPORTED_NAMES = {"descrypt": "des", "nthash": "nt"}


def _analyse_value(value: str, caps: CostCaps) -> HashAnalysis:
    setting = parse_setting(value)
    if setting is None:
        return HashAnalysis("unknown", "unknown", skip_reason="unrecognised hash format")
    algorithm = _REPORTED_NAMES.get(setting.algorithm, setting.algorithm)
    if setting.scrypt is not None:
        return _scrypt_family(algorithm, setting.scrypt, caps)
    if setting.log2_cost is not None:
        cost = setting.log2_cost
        seconds = (1 << cost) * _SEC_PER_BCRYPT_ITERATION * caps.cost_scale
        reason = None
        if cost > caps.max_bcrypt_cost:
            reason = (
                f"bcrypt cost {cost} (2^{cost} iterations) exceeds the cap of "
                f"{caps.max_bcrypt_cost}"
            )
        return _costed("bcrypt", f"cost={cost}", seconds, 0, reason, caps)
    if algorithm == "md5crypt":
        return _costed("md5crypt", "1000 iterations", _SEC_PER_MD5CRYPT, 0, None, caps)
    if algorithm == "des":
        return _costed("des", "25 iterations", _SEC_PER_DES, 0, None, caps)
    if algorithm == "nt":
        return _costed("nt", "single MD4", _SEC_PER_DES, 0, None, caps)
    assert setting.rounds is not None
    rounds = setting.rounds
    if algorithm in _SHA_CRYPT_PER_ROUND:
        seconds = max(rounds, 1000) * _SHA_CRYPT_PER_ROUND[algorithm] * caps.cost_scale
        reason = None
        if rounds > caps.max_sha_crypt_rounds:
            reason = f"{algorithm} rounds={rounds} exceeds the cap of {caps.max_sha_crypt_rounds}"
        return _costed(algorithm, f"rounds={rounds}", seconds, 0, reason, caps)
    reason = None
    if rounds > caps.max_other_rounds:
        reason = f"{algorithm} rounds={rounds} exceeds the cap of {caps.max_other_rounds}"
    seconds = max(rounds, 1) * _OTHER_PER_ROUND[algorithm] * caps.cost_scale
    return _costed(algorithm, f"rounds={rounds}", seconds, 0, reason, caps)


def analyse_hash(value: str, caps: CostCaps | None = None) -> HashAnalysis:
    """Classify a shadow password field and read its cost; never runs the hash.

    Empty and locked fields are not verifiable; a locked field (``!``, ``!!``, ``*``, or ``!``
    before a hash) still names the algorithm of what follows the lock marks.
    """
    caps = caps or CostCaps()
    if value == "":
        return HashAnalysis("empty", "none", skip_reason="empty password field: nothing to verify")
    if len(value) > caps.max_hash_length:
        return HashAnalysis(
            "unknown",
            "unknown",
            skip_reason=f"hash field of {len(value)} characters exceeds {caps.max_hash_length}",
        )
    if value[0] in "!*":
        inner = value.lstrip("!*")
        algorithm = _analyse_safely(inner, caps).algorithm if inner else "none"
        return HashAnalysis(
            "locked", algorithm, skip_reason=f"account is locked (field starts with {value[0]!r})"
        )
    if "\0" in value or _WHITESPACE.search(value):
        return HashAnalysis("unknown", "unknown", skip_reason="hash contains NUL or whitespace")
    return _analyse_safely(value, caps)


def _analyse_safely(value: str, caps: CostCaps) -> HashAnalysis:
    try:
        return _analyse_value(value, caps)
    except MalformedHash as exc:
        return HashAnalysis("unknown", "unknown", skip_reason=f"malformed hash: {exc}")


__all__ = ["ITOA64", "MIB", "CostCaps", "HashAnalysis", "Kind", "analyse_hash"]
