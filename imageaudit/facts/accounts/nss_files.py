"""passwd, shadow, group and gshadow lines exactly as glibc's ``files`` NSS module reads them.

``login``, ``su``, ``sshd`` and ``pam_unix`` learn an account from ``getpwnam`` and its
password from ``getspnam``; both read the files through glibc's nss_files, which:

- splits on ``\\n`` only and ends a line at its first NUL byte (``fgets``, C strings);
- drops leading whitespace (glibc 2.30+ leaves a copy of the line's last characters
  behind when it does, reproduced here) and skips blank lines and lines starting with ``#``;
- reads numeric fields with ``strtoul`` (leading whitespace and a sign allowed) and *skips
  the whole line* when a number is malformed or over 32 bits, or a required field is
  missing, so that a later line of the same name becomes the first;
- returns the *first* valid line of a name (``getpwnam``/``getspnam``/``getgrnam``), and
  never returns ``+``/``-`` (NIS compat) lines from the files backend.

A line the parser rejects is not an account to any of these programs: it is reported as a
malformed line with the reason, never turned into an entry. Checked against the host's own
``fgetpwent``/``fgetspent``/``fgetgrent``/``fgetsgent`` by the hostile tests (glibc 2.36).

Follows glibc ``nss/nss_readline.c`` (``__nss_readline``), ``nss/nss_files/files-parse.c``
(``STRING_FIELD``, ``INT_FIELD``, ``INT_FIELD_MAYBE_NULL``, ``strtou32``, ``parse_list``),
``nss/nss_files/files-pwd.c``, ``shadow/sgetspent_r.c``, ``nss/nss_files/files-grp.c``,
``gshadow/sgetsgent_r.c``, and the name lookups of ``files-pwd.c``/``files-spwd.c``.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import re
from collections.abc import Iterator
from typing import NamedTuple

# isspace() in the C locale.
C_SPACE = " \t\n\v\f\r"
_ULONG_MAX = (1 << 64) - 1
_U32_MAX = 0xFFFFFFFF
# 100k accounts of ~100 bytes a line are read whole; a hostile file is still bounded.
ACCOUNT_DB_LIMIT = 32 << 20
# The everyday shapes, read without the field-by-field walk (same result, a fraction of the
# time on 100k accounts); anything else takes the general path.
_PASSWD_FAST = re.compile(r"([^:+-][^:]*|):([^:]*):([0-9]{1,9}):([0-9]{1,9}):([^:]*):([^:]*):(.*)")
_SHADOW_FAST = re.compile(r"([^:+-][^:]*|):([^:]*)" + r":([0-9]{0,9})" * 6 + r":[0-9]{0,9}")
_GROUP_FAST = re.compile(r"([^:+-][^:]*|):([^:]*):([0-9]{1,9}):([^:]*)")


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while many acyclic records are built.

    Each account makes a few objects, and the collector's passes over them cost more than
    the parsing (2.4 s against 0.9 s for 100k accounts). Nothing built here forms a cycle:
    nothing is left for later but the pass itself.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Rejected(NamedTuple):
    """A line nss_files skips (or, for ``+``/``-`` lines, never returns from a lookup)."""

    reason: str


def nss_lines(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` for each line nss_files hands to its parser.

    The line ends at its first NUL, leading C whitespace is dropped, and blank lines and
    ``#`` comments are skipped, as ``__nss_readline`` does.
    """
    lines = text.split("\n")
    last = len(lines) - 1  # the only piece not followed by a newline
    for i, raw in enumerate(lines):
        if i < last and raw and raw[0] not in C_SPACE and raw[0] != "#" and "\0" not in raw:
            yield i + 1, raw  # the everyday line
            continue
        if i == last and not raw:
            break
        line = _readline(raw, newline=i < last)
        if line is not None:
            yield i + 1, line


def _readline(raw: str, newline: bool) -> str | None:
    """One line through ``fgets`` and ``__nss_readline``; ``None`` when it is skipped."""
    buf = raw + ("\n" if newline else "") + "\0"  # what fgets leaves in the buffer
    c = buf[: buf.index("\0")]
    skip = len(c) - len(c.lstrip(C_SPACE))
    if skip == len(c) or c[skip] == "#":
        return None
    if skip:
        # glibc 2.30+ moves the text down over the whitespace without its terminating NUL,
        # so the last ``skip`` characters of the old text stay after it: "  a:...:/bin/sh"
        # without a final newline reads as shell "/bin/shsh". Reproduced, not corrected.
        n = len(c) - skip
        buf = buf[skip : skip + n] + buf[n:]
        c = buf[: buf.index("\0")]
    return c.split("\n", 1)[0]


def strtou32(text: str) -> int | None:
    """A numeric field as nss_files reads it: the value, or ``None`` when glibc rejects it.

    The field must be a number and nothing else: ``strtoul`` accepts leading whitespace and a
    ``+`` or ``-`` sign (``-N`` wraps modulo 2**64), and a value that does not fit in 32 bits
    rejects the line (so ``-1`` does, and ``-18446744073709551615`` is 1).
    """
    if text.isascii() and text.isdigit():
        value = int(text)
        return value if value <= _U32_MAX else None
    i = len(text) - len(text.lstrip(C_SPACE))
    negative = False
    if text[i : i + 1] in ("+", "-"):
        negative = text[i] == "-"
        i += 1
    digits = text[i:]
    if not digits or not (digits.isascii() and digits.isdigit()):
        return None
    value = int(digits)
    if value > _ULONG_MAX:
        return None
    if negative:
        value = (-value) & _ULONG_MAX
    return value if value <= _U32_MAX else None


def _maybe_null(fields: list[str], k: int) -> int | Rejected | None:
    """``INT_FIELD_MAYBE_NULL`` on field ``k``: a number, ``None`` (empty), or rejected.

    glibc refuses the line when the field is missing or is an empty *last* field (the text
    ends where a number was still expected); an empty field followed by ``:`` is "unset".
    """
    if k >= len(fields) or (not fields[k] and k == len(fields) - 1):
        return Rejected(f"{len(fields)} fields, field {k + 1} missing")
    if not fields[k]:
        return None
    value = strtou32(fields[k])
    if value is None:
        return Rejected(f"field {k + 1} is not a number")
    return value


def _signed(value: int | None) -> int | None:
    """The ``(long int) (int)`` cast glibc applies to shadow's day counts."""
    if value is None:
        return None
    return value - (1 << 32) if value >= 1 << 31 else value


def _nis(name: str) -> bool:
    return name[:1] in ("+", "-")


class PasswdFields(NamedTuple):
    name: str
    password: str
    uid: int
    gid: int
    gecos: str
    home: str
    shell: str


def parse_passwd(line: str) -> PasswdFields | Rejected:
    """One ``nss_lines`` line of ``/etc/passwd`` as ``getpwent`` reads it."""
    m = _PASSWD_FAST.fullmatch(line)
    if m is not None:
        name, password, uid, gid, gecos, home, shell = m.groups()
        return PasswdFields(name, password, int(uid), int(gid), gecos, home, shell)
    f = line.split(":")
    if _nis(f[0]):
        return Rejected("NIS compat entry")
    if len(f) < 4:
        return Rejected(f"{len(f)} fields, uid or gid missing")
    uid, gid = strtou32(f[2]), strtou32(f[3])
    if uid is None or gid is None:
        return Rejected("uid or gid not a number")
    rest = [*f[4:], "", ""]
    # The shell is the rest of the line, colons included.
    return PasswdFields(f[0], f[1], uid, gid, rest[0], rest[1], ":".join(f[6:]))


class ShadowFields(NamedTuple):
    name: str
    password: str
    # None: the field is empty (glibc's -1, "not set").
    last_change: int | None
    min_days: int | None
    max_days: int | None
    warn_days: int | None
    inactive_days: int | None
    expire_date: int | None


def parse_shadow(line: str) -> ShadowFields | Rejected:
    """One ``nss_lines`` line of ``/etc/shadow`` as ``getspent`` reads it.

    Valid lines have the 9 fields of shadow(5), or 8, or the old 5-field form (whitespace
    after the fifth); every numeric field is empty or a number that fits 32 bits.
    """
    m = _SHADOW_FAST.fullmatch(line)
    if m is not None:
        g = m.groups()
        d = [int(v) if v else None for v in g[2:]]
        return ShadowFields(g[0], g[1], d[0], d[1], d[2], d[3], d[4], d[5])
    f = line.split(":")
    if _nis(f[0]):
        return Rejected("NIS compat entry")
    if len(f) < 2:
        return Rejected("1 field, expected 9")
    numbers: list[int | None] = []
    for k in (2, 3, 4):
        value = _maybe_null(f, k)
        if isinstance(value, Rejected):
            return value
        numbers.append(value)
    if ":".join(f[5:]).lstrip(C_SPACE):
        # The newer form: whitespace before the warning field is skipped first.
        f = [*f[:5], f[5].lstrip(C_SPACE), *f[6:]]
        for k in (5, 6, 7):
            value = _maybe_null(f, k)
            if isinstance(value, Rejected):
                return value
            numbers.append(value)
        # The flag field (reserved) must still be empty or a number, and be the last.
        if len(f) > 9:
            return Rejected(f"{len(f)} fields, expected 9")
        if len(f) > 8 and f[8] and strtou32(f[8]) is None:
            return Rejected("field 9 is not a number")
    else:
        numbers.extend((None, None, None))
    n = [_signed(v) for v in numbers]
    return ShadowFields(f[0], f[1], n[0], n[1], n[2], n[3], n[4], n[5])


def _list(text: str) -> tuple[str, ...]:
    """``parse_list``: comma-separated, leading whitespace dropped, empty items skipped."""
    out = []
    for item in text.split(","):
        item = item.lstrip(C_SPACE)
        if item:
            out.append(item)
    return tuple(out)


class GroupFields(NamedTuple):
    name: str
    password: str
    gid: int
    members: tuple[str, ...]


def parse_group(line: str) -> GroupFields | Rejected:
    """One ``nss_lines`` line of ``/etc/group`` as ``getgrent`` reads it."""
    m = _GROUP_FAST.fullmatch(line)
    if m is not None:
        name, password, gid, members = m.groups()
        return GroupFields(name, password, int(gid), _list(members) if members else ())
    f = line.split(":")
    if _nis(f[0]):
        return Rejected("NIS compat entry")
    if len(f) < 3:
        return Rejected(f"{len(f)} fields, gid missing")
    gid = strtou32(f[2])
    if gid is None:
        return Rejected("gid not a number")
    return GroupFields(f[0], f[1], gid, _list(":".join(f[3:])))


class GShadowFields(NamedTuple):
    name: str
    password: str
    admins: tuple[str, ...]
    members: tuple[str, ...]


def parse_gshadow(line: str) -> GShadowFields | Rejected:
    """One ``nss_lines`` line of ``/etc/gshadow`` as ``getsgent`` reads it (any field count)."""
    f = line.split(":")
    if _nis(f[0]):
        return Rejected("NIS compat entry")
    rest = [*f[1:], "", ""]
    return GShadowFields(f[0], rest[0], _list(rest[1]), _list(":".join(f[3:])))


# The accounts, files and credentials collectors each read passwd and group: the last text of
# each is parsed once. One entry only, so what stays in memory is bounded by the read cap.
@functools.lru_cache(maxsize=1)
def passwd_file(text: str) -> tuple[tuple[int, PasswdFields | Rejected], ...]:
    """``(line number, entry or rejection)`` of every line of an ``/etc/passwd`` text."""
    return tuple((lineno, parse_passwd(line)) for lineno, line in nss_lines(text))


@functools.lru_cache(maxsize=1)
def group_file(text: str) -> tuple[tuple[int, GroupFields | Rejected], ...]:
    """``(line number, entry or rejection)`` of every line of an ``/etc/group`` text."""
    return tuple((lineno, parse_group(line)) for lineno, line in nss_lines(text))
