"""Classify a password hash and read its cost *before* anything tries to verify it.

A hash in a hostile image can be a denial of service: ``$6$rounds=999999999$`` or a yescrypt
N of 2^30 takes minutes and gigabytes per guess. :func:`analyse_hash` reads the cost
parameters from the string alone, estimates the time and memory of one guess, and says
whether the hash may be verified under :class:`CostCaps`.

Follows crypt(5) of libxcrypt 4.4, and libxcrypt's ``alg-yescrypt-common.c`` for the
variable-length base-64 encoding of yescrypt parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ATOI64 = {c: i for i, c in enumerate(ITOA64)}
MIB = 1024 * 1024

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


class _Malformed(ValueError):
    pass


def _decode_uint32(text: str, pos: int, minimum: int) -> tuple[int, int]:
    """yescrypt's variable-length number: the first character says how many follow.

    The 64 symbols are split into ranges of shrinking width (48, 8, 4, 2, 1, 1); the range
    holding the first character gives the count of extra characters (0..5) and the high bits,
    each extra character adds 6 lower bits, and every shorter encoding's span is added first.
    """
    if pos >= len(text) or text[pos] not in _ATOI64:
        raise _Malformed("bad parameter character")
    c = _ATOI64[text[pos]]
    pos += 1
    start, end, extra, bits = 0, 47, 0, 0
    value = minimum
    while c > end:
        value += (end + 1 - start) << bits
        start = end + 1
        end = start + (62 - end) // 2
        extra += 1
        bits += 6
    value += (c - start) << bits
    for _ in range(extra):
        if pos >= len(text) or text[pos] not in _ATOI64:
            raise _Malformed("truncated parameter")
        bits -= 6
        value += _ATOI64[text[pos]] << bits
        pos += 1
    return value, pos


def _decode_fixed30(text: str, pos: int) -> tuple[int, int]:
    """scrypt ``$7$``: 30-bit numbers as 5 characters, least significant first."""
    chunk = text[pos : pos + 5]
    if len(chunk) != 5 or any(c not in _ATOI64 for c in chunk):
        raise _Malformed("bad scrypt parameter")
    return sum(_ATOI64[c] << (6 * i) for i, c in enumerate(chunk)), pos + 5


@dataclass(frozen=True, slots=True)
class _ScryptParams:
    n_log2: int
    r: int
    p: int
    t: int = 0
    g: int = 0
    rom: bool = False
    classic: bool = True  # scrypt or yescrypt-WORM: p lanes run one after the other


_YESCRYPT_RW = 2
_YESCRYPT_MAX_FLAVOR = _YESCRYPT_RW + (0x3FC >> 2)


def _yescrypt_params(params: str) -> _ScryptParams:
    flavor, pos = _decode_uint32(params, 0, 0)
    if flavor > _YESCRYPT_MAX_FLAVOR:
        raise _Malformed("unknown yescrypt flavor")
    n_log2, pos = _decode_uint32(params, pos, 1)
    r, pos = _decode_uint32(params, pos, 1)
    p, t, g, rom = 1, 0, 0, False
    if pos < len(params):
        have, pos = _decode_uint32(params, pos, 1)
        if have & 1:
            p, pos = _decode_uint32(params, pos, 2)
        if have & 2:
            t, pos = _decode_uint32(params, pos, 1)
        if have & 4:
            g, pos = _decode_uint32(params, pos, 1)
        if have & 8:
            _, pos = _decode_uint32(params, pos, 1)
            rom = True
    if pos != len(params):
        raise _Malformed("trailing yescrypt parameters")
    return _ScryptParams(n_log2, r, p, t, g, rom, classic=flavor < _YESCRYPT_RW)


def _scrypt_params(params: str) -> _ScryptParams:
    if not params or params[0] not in _ATOI64:
        raise _Malformed("bad scrypt N")
    n_log2 = _ATOI64[params[0]]
    r, pos = _decode_fixed30(params, 1)
    p, pos = _decode_fixed30(params, pos)
    if n_log2 < 1 or r < 1 or p < 1:
        raise _Malformed("scrypt parameters out of range")
    return _ScryptParams(n_log2, r, p)


def _scrypt_family(algorithm: str, prm: _ScryptParams, caps: CostCaps) -> HashAnalysis:
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


_SHA_CRYPT = re.compile(r"\$([56])\$(?:rounds=([^$]*)\$)?[^$]*\$[./0-9A-Za-z]+")
_BCRYPT = re.compile(r"\$(2[abxy])\$([0-9]{2})\$[./0-9A-Za-z]{53}")
_YESCRYPT = re.compile(r"\$(y|gy)\$([./0-9A-Za-z]+)\$[./0-9A-Za-z]*\$[./0-9A-Za-z]{43}")
_SCRYPT = re.compile(r"\$7\$([./0-9A-Za-z]{11})[^$]*\$[./0-9A-Za-z]{43}")
_MD5CRYPT = re.compile(r"\$1\$[^$]{0,8}\$[./0-9A-Za-z]{22}")
_DES = re.compile(r"[./0-9A-Za-z]{13}")
_BSDI = re.compile(r"_([./0-9A-Za-z]{4})[./0-9A-Za-z]{4}[./0-9A-Za-z]{11}")
_SHA1CRYPT = re.compile(r"\$sha1\$([0-9]+)\$[./0-9A-Za-z]{0,64}\$[./0-9A-Za-z]{28}")
_SUNMD5 = re.compile(r"\$md5(?:,rounds=([0-9]+))?\$[^$]*\$\$?[./0-9A-Za-z]{22}")
_NT = re.compile(r"\$3\$\$[0-9a-f]{32}")


def _rounds(text: str, algorithm: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 12 or text.startswith("0"):
        raise _Malformed(f"{algorithm} rounds field {text[:20]!r} is not a number")
    return int(text)


def _analyse_value(value: str, caps: CostCaps) -> HashAnalysis:
    if m := _SHA_CRYPT.fullmatch(value):
        algorithm = "sha512crypt" if m.group(1) == "6" else "sha256crypt"
        rounds = 5000 if m.group(2) is None else _rounds(m.group(2), algorithm)
        per_round = _SEC_PER_SHA512_ROUND if m.group(1) == "6" else _SEC_PER_SHA256_ROUND
        seconds = max(rounds, 1000) * per_round * caps.cost_scale
        reason = None
        if rounds > caps.max_sha_crypt_rounds:
            reason = f"{algorithm} rounds={rounds} exceeds the cap of {caps.max_sha_crypt_rounds}"
        return _costed(algorithm, f"rounds={rounds}", seconds, 0, reason, caps)
    if m := _BCRYPT.fullmatch(value):
        cost = int(m.group(2))
        seconds = (1 << cost) * _SEC_PER_BCRYPT_ITERATION * caps.cost_scale
        reason = None
        if cost > caps.max_bcrypt_cost:
            reason = (
                f"bcrypt cost {cost} (2^{cost} iterations) exceeds the cap of "
                f"{caps.max_bcrypt_cost}"
            )
        return _costed("bcrypt", f"cost={cost}", seconds, 0, reason, caps)
    if m := _YESCRYPT.fullmatch(value):
        algorithm = "yescrypt" if m.group(1) == "y" else "gost-yescrypt"
        return _scrypt_family(algorithm, _yescrypt_params(m.group(2)), caps)
    if m := _SCRYPT.fullmatch(value):
        return _scrypt_family("scrypt", _scrypt_params(m.group(1)), caps)
    if _MD5CRYPT.fullmatch(value):
        return _costed("md5crypt", "1000 iterations", _SEC_PER_MD5CRYPT, 0, None, caps)
    if _DES.fullmatch(value):
        return _costed("des", "25 iterations", _SEC_PER_DES, 0, None, caps)
    if _NT.fullmatch(value):
        return _costed("nt", "single MD4", _SEC_PER_DES, 0, None, caps)
    other: tuple[str, int, float] | None = None
    if m := _BSDI.fullmatch(value):
        other = (
            "bsdicrypt",
            sum(_ATOI64[c] << (6 * i) for i, c in enumerate(m.group(1))),
            _SEC_PER_BSDI_ROUND,
        )
    elif m := _SHA1CRYPT.fullmatch(value):
        other = ("sha1crypt", _rounds(m.group(1), "sha1crypt"), _SEC_PER_SHA1CRYPT_ROUND)
    elif m := _SUNMD5.fullmatch(value):
        extra = 0 if m.group(1) is None else _rounds(m.group(1), "sunmd5")
        other = ("sunmd5", 4096 + extra, _SEC_PER_SUNMD5_ROUND)
    if other is None:
        return HashAnalysis("unknown", "unknown", skip_reason="unrecognised hash format")
    algorithm, rounds, per_round = other
    reason = None
    if rounds > caps.max_other_rounds:
        reason = f"{algorithm} rounds={rounds} exceeds the cap of {caps.max_other_rounds}"
    seconds = max(rounds, 1) * per_round * caps.cost_scale
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
    if "\0" in value or any(c.isspace() for c in value):
        return HashAnalysis("unknown", "unknown", skip_reason="hash contains NUL or whitespace")
    return _analyse_safely(value, caps)


def _analyse_safely(value: str, caps: CostCaps) -> HashAnalysis:
    try:
        return _analyse_value(value, caps)
    except _Malformed as exc:
        return HashAnalysis("unknown", "unknown", skip_reason=f"malformed hash: {exc}")
