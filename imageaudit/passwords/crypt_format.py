"""Read a crypt(5) hash string: its algorithm and cost parameters, never salt or digest.

The one place that parses hash strings. Two readers use it with their own policy: the
accounts collector (:mod:`imageaudit.facts.accounts.password_field`) describes every field
leniently, problems included; the verifier (:mod:`imageaudit.passwords.cost`) takes only a
hash whose whole string has its algorithm's format (:func:`parse_setting`) and costs it
before anything runs it. Pure string work with no imports from the package, so the verifier
does not load the collectors.

Follows crypt(5) of libxcrypt 4.4 and its sources' parameter encodings (crypt-sha256/sha512
``rounds=``, crypt-bcrypt cost, alg-yescrypt-common ``decode64_uint32``, crypt-scrypt ``$7$``
N/r/p, crypt-des BSDi ``_`` count, crypt-sunmd5 ``,rounds=``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ATOI64 = {c: i for i, c in enumerate(ITOA64)}
B64_CHARS = frozenset(ITOA64)

SHA_ROUNDS_DEFAULT = 5000
SHA_ROUNDS_MIN = 1000
SHA_ROUNDS_MAX = 999_999_999
MD5CRYPT_ROUNDS = 1000
SUNMD5_BASIC_ROUNDS = 4096


class MalformedHash(ValueError):
    """A parameter of the hash cannot be read; the message says which."""


PREFIXES: tuple[tuple[str, str], ...] = (
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


def algorithm_of(value: str) -> str:
    """The algorithm a hash claims by its prefix (or shape, for DES and BSDi), or ``unknown``."""
    for prefix, name in PREFIXES:
        if value.startswith(prefix):
            return name
    if len(value) == 13 and all(c in B64_CHARS for c in value):
        return "descrypt"
    if value.startswith("_") and len(value) == 20:
        return "bsdicrypt"
    return "unknown"


def decode64_uint32(text: str, pos: int, minimum: int) -> tuple[int, int]:
    """yescrypt's variable-length number: the first character says how many follow.

    The 64 symbols are split into ranges of shrinking width (48, 8, 4, 2, 1, 1); the range
    holding the first character gives the count of extra characters (0..5) and the high bits,
    each extra character adds 6 lower bits, and every shorter encoding's span is added first.
    Returns the number and the position after it.
    """
    if pos >= len(text) or text[pos] not in ATOI64:
        raise MalformedHash("bad parameter character")
    c = ATOI64[text[pos]]
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
        if pos >= len(text) or text[pos] not in ATOI64:
            raise MalformedHash("truncated parameter")
        bits -= 6
        value += ATOI64[text[pos]] << bits
        pos += 1
    return value, pos


def decode_le(text: str, pos: int, chars: int, what: str = "parameter") -> int:
    """Little-endian base-64 integer of ``chars`` characters (scrypt r/p, BSDi count)."""
    chunk = text[pos : pos + chars]
    if len(chunk) != chars or any(c not in ATOI64 for c in chunk):
        raise MalformedHash(f"bad {what}")
    return sum(ATOI64[c] << (6 * i) for i, c in enumerate(chunk))


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """Cost parameters of scrypt and yescrypt (N = 2^n_log2)."""

    n_log2: int
    r: int
    p: int
    t: int = 0
    g: int = 0
    rom: bool = False
    classic: bool = True  # scrypt or yescrypt-WORM: p lanes run one after the other


_YESCRYPT_RW = 2
_YESCRYPT_MAX_FLAVOR = _YESCRYPT_RW + (0x3FC >> 2)


def yescrypt_params(params: str) -> ScryptParams:
    """Decode the parameter field of ``$y$``/``$gy$`` (the text between the prefix and ``$``)."""
    flavor, pos = decode64_uint32(params, 0, 0)
    if flavor > _YESCRYPT_MAX_FLAVOR:
        raise MalformedHash("unknown yescrypt flavor")
    n_log2, pos = decode64_uint32(params, pos, 1)
    r, pos = decode64_uint32(params, pos, 1)
    p, t, g, rom = 1, 0, 0, False
    if pos < len(params):
        have, pos = decode64_uint32(params, pos, 1)
        if have & 1:
            p, pos = decode64_uint32(params, pos, 2)
        if have & 2:
            t, pos = decode64_uint32(params, pos, 1)
        if have & 4:
            g, pos = decode64_uint32(params, pos, 1)
        if have & 8:
            _, pos = decode64_uint32(params, pos, 1)
            rom = True
    if pos != len(params):
        raise MalformedHash("trailing yescrypt parameters")
    return ScryptParams(n_log2, r, p, t, g, rom, classic=flavor < _YESCRYPT_RW)


def yescrypt_field(value: str, algorithm: str) -> str:
    """The parameter field of a yescrypt hash: from after the prefix up to the next ``$``."""
    start = 3 if algorithm == "yescrypt" else 4
    end = value.find("$", start)
    if end < 0:
        raise MalformedHash("no end to the yescrypt parameters")
    return value[start:end]


def scrypt_params(params: str) -> ScryptParams:
    """Decode ``$7$`` parameters: N as one character, then r and p as 30-bit numbers."""
    if not params or params[0] not in ATOI64:
        raise MalformedHash("bad scrypt N")
    n_log2 = ATOI64[params[0]]
    r = decode_le(params, 1, 5, "scrypt parameter")
    p = decode_le(params, 6, 5, "scrypt parameter")
    if n_log2 < 1 or r < 1 or p < 1:
        raise MalformedHash("scrypt parameters out of range")
    return ScryptParams(n_log2, r, p)


def bsdi_count(value: str) -> int:
    """The iteration count of a BSDi ``_`` hash (four characters after the underscore)."""
    return decode_le(value, 1, 4, "BSDi iteration count")


_SHA_ROUNDS_LENIENT = re.compile(r"rounds=([0-9]+)\$")
_BCRYPT_COST_LENIENT = re.compile(r"\$2[abxy]\$([0-9]{2})\$")


def sha_rounds_field(value: str) -> str | None:
    """The digits of a sha-crypt ``rounds=`` parameter as written, ``None`` if there is none."""
    body = value[3:]
    if not body.startswith("rounds="):
        return None
    m = _SHA_ROUNDS_LENIENT.match(body)
    if m is None:
        raise MalformedHash("malformed rounds= parameter")
    digits = m.group(1).lstrip("0") or "0"
    if len(digits) > 12:
        # Far past any real count (glibc clamps at 999,999,999), and int() of thousands of
        # digits from a hostile shadow line would raise or burn CPU.
        raise MalformedHash(f"rounds= has {len(digits)} digits; not a usable count")
    return m.group(1)


def bcrypt_cost(value: str) -> int:
    """The two-digit log2 cost of a bcrypt hash, whatever follows it."""
    m = _BCRYPT_COST_LENIENT.match(value)
    if m is None:
        raise MalformedHash("malformed bcrypt cost")
    return int(m.group(1))


# --- strict: the whole string must have its algorithm's format -------------------------------

_FORMATS: dict[str, re.Pattern[str]] = {
    "sha256crypt": re.compile(r"\$5\$(?:rounds=([^$]*)\$)?[^$]*\$[./0-9A-Za-z]+"),
    "sha512crypt": re.compile(r"\$6\$(?:rounds=([^$]*)\$)?[^$]*\$[./0-9A-Za-z]+"),
    "bcrypt": re.compile(r"\$2[abxy]\$([0-9]{2})\$[./0-9A-Za-z]{53}"),
    "yescrypt": re.compile(r"\$y\$([./0-9A-Za-z]+)\$[./0-9A-Za-z]*\$[./0-9A-Za-z]{43}"),
    "gost-yescrypt": re.compile(r"\$gy\$([./0-9A-Za-z]+)\$[./0-9A-Za-z]*\$[./0-9A-Za-z]{43}"),
    "scrypt": re.compile(r"\$7\$([./0-9A-Za-z]{11})[^$]*\$[./0-9A-Za-z]{43}"),
    "md5crypt": re.compile(r"\$1\$[^$]{0,8}\$[./0-9A-Za-z]{22}"),
    "descrypt": re.compile(r"[./0-9A-Za-z]{13}"),
    "bsdicrypt": re.compile(r"_[./0-9A-Za-z]{19}"),
    "sha1crypt": re.compile(r"\$sha1\$([0-9]+)\$[./0-9A-Za-z]{0,64}\$[./0-9A-Za-z]{28}"),
    "sunmd5": re.compile(r"\$md5(?:,rounds=([0-9]+))?\$[^$]*\$\$?[./0-9A-Za-z]{22}"),
    "nthash": re.compile(r"\$3\$\$[0-9a-f]{32}"),
}


@dataclass(frozen=True, slots=True)
class Setting:
    """A well-formed hash: its algorithm and cost parameters as written."""

    algorithm: str
    rounds: int | None = None  # sha-crypt, BSDi count, sha1crypt, SunMD5 (basic + extra)
    log2_cost: int | None = None  # bcrypt
    scrypt: ScryptParams | None = None  # scrypt, yescrypt, gost-yescrypt


def strict_rounds(text: str, algorithm: str) -> int:
    """A rounds number as libxcrypt accepts it: ASCII digits, no leading zero."""
    if not text.isascii() or not text.isdigit() or len(text) > 12 or text.startswith("0"):
        raise MalformedHash(f"{algorithm} rounds field {text[:20]!r} is not a number")
    return int(text)


def parse_setting(value: str) -> Setting | None:
    """Strict reading: ``None`` unless the whole string has its algorithm's format.

    Raises :class:`MalformedHash` when the format matches but a parameter cannot be read.
    """
    algorithm = algorithm_of(value)
    pattern = _FORMATS.get(algorithm)
    m = pattern.fullmatch(value) if pattern is not None else None
    if m is None:
        return None
    if algorithm in ("sha256crypt", "sha512crypt"):
        given = m.group(1)
        rounds = SHA_ROUNDS_DEFAULT if given is None else strict_rounds(given, algorithm)
        return Setting(algorithm, rounds=rounds)
    if algorithm == "bcrypt":
        return Setting(algorithm, log2_cost=int(m.group(1)))
    if algorithm in ("yescrypt", "gost-yescrypt"):
        return Setting(algorithm, scrypt=yescrypt_params(m.group(1)))
    if algorithm == "scrypt":
        return Setting(algorithm, scrypt=scrypt_params(m.group(1)))
    if algorithm == "bsdicrypt":
        return Setting(algorithm, rounds=bsdi_count(value))
    if algorithm == "sha1crypt":
        return Setting(algorithm, rounds=strict_rounds(m.group(1), algorithm))
    if algorithm == "sunmd5":
        extra = 0 if m.group(1) is None else strict_rounds(m.group(1), algorithm)
        return Setting(algorithm, rounds=SUNMD5_BASIC_ROUNDS + extra)
    return Setting(algorithm)
