"""Version ordering of the three package managers: dpkg, rpm and apk.

- dpkg: ``python-debian``'s :func:`debian.debian_support.version_compare` (deb-version(7)).
- rpm: rpm's ``rpmvercmp`` segment comparison from ``univers`` (tilde and caret included),
  applied to an ``[epoch:]version[-release]`` split made the way rpm's ``parseEVR`` makes it
  (release after the *last* dash; an epoch only when all-digit).
- apk: no maintained Python library implements apk-tools' order, and Debian ships no apk
  binary to call; :func:`apk_compare` follows the algorithm of apk-tools 2.12+ ``version.c``
  (``digit{.digit}...{letter}{_suffix{#}}...{~hash}{-r#}``), tested against its documented
  cases rather than a reference binary.

Specs: deb-version(7); rpm-version(7) / rpm's ``rpmvio.c``/``rpmvercmp.c``; apk-package(5).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cmp_to_key, partial
from typing import Any, Literal, cast

from debian.debian_support import version_compare as _dpkg_compare
from univers.rpm import vercmp as _univers_vercmp

_rpm_segment_compare = cast(Callable[[str, str], int], _univers_vercmp)

Manager = Literal["dpkg", "rpm", "apk"]


def compare(manager: str, a: str, b: str) -> int:
    """-1, 0 or 1 as version ``a`` is older than, equal to or newer than ``b``.

    Raises ValueError for an unknown manager or a string that is not a version of its kind.
    """
    if manager == "dpkg":
        return dpkg_compare(a, b)
    if manager == "rpm":
        return rpm_compare(a, b)
    if manager == "apk":
        return apk_compare(a, b)
    raise ValueError(f"unknown package manager {manager!r}")


def comparer(manager: str) -> Callable[[str, str], int]:
    """:func:`compare` bound to ``manager``: ``cmp(a, b)`` is -1, 0 or 1."""
    return partial(compare, manager)


def sort_key(manager: str) -> Callable[[str], Any]:
    """A ``key=`` for :func:`sorted` ordering version strings of ``manager``."""
    return cmp_to_key(comparer(manager))


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


# --- dpkg -------------------------------------------------------------------------------

def dpkg_compare(a: str, b: str) -> int:
    """dpkg's order (``dpkg --compare-versions``); ValueError for an invalid version."""
    return _sign(_dpkg_compare(a, b))


# --- rpm --------------------------------------------------------------------------------

def split_evr(evr: str) -> tuple[str | None, str, str | None]:
    """``[epoch:]version[-release]`` -> (epoch, version, release) as rpm's parseEVR splits it.

    The epoch is the all-digit text before the first ``:`` (rpm ignores a non-numeric one);
    the release is the text after the last ``-``.
    """
    epoch: str | None = None
    rest = evr
    head, colon, tail = evr.partition(":")
    if colon and _ASCII_DIGITS.fullmatch(head):
        epoch, rest = head, tail
    elif colon and head == "":
        epoch, rest = "0", tail
    version, dash, release = rest.rpartition("-")
    if not dash:
        return epoch, rest, None
    return epoch, version, release


# rpm's isalnum/isdigit are ASCII-only: any other character (and any control character)
# separates segments exactly as '.' does.
_NON_ASCII = re.compile(r"[^\x20-\x7e]")
_ASCII_DIGITS = re.compile(r"[0-9]+")


def rpmvercmp(a: str, b: str) -> int:
    """rpm's segment comparison of two version (or release) strings."""
    return _sign(_rpm_segment_compare(_NON_ASCII.sub(".", a), _NON_ASCII.sub(".", b)))


def rpm_compare(a: str, b: str) -> int:
    """rpm's order of two ``[epoch:]version[-release]`` strings (``rpm.vercmp``).

    A missing epoch counts as 0; a missing release sorts before any release (even an empty
    one), as ``rpm.vercmp`` of rpm 4.18 does.
    """
    ea, va, ra = split_evr(a)
    eb, vb, rb = split_evr(b)
    result = _sign(int(ea or "0") - int(eb or "0"))
    if result:
        return result
    result = rpmvercmp(va, vb)
    if result or ra == rb:
        return result
    if ra is None or rb is None:
        return -1 if ra is None else 1
    return rpmvercmp(ra, rb)


# --- apk --------------------------------------------------------------------------------

# Token kinds in the order apk-tools ranks them: a version that goes on with a later kind
# of token where the other has ended (or has an earlier kind) is older.
_INITIAL, _DIGIT, _LETTER, _SUFFIX, _SUFFIX_NO, _HASH, _REVISION, _END, _INVALID = range(9)
# Pre-release suffixes rank below "no suffix" (0), post-release ones above it.
_SUFFIXES = {"alpha": -4, "beta": -3, "pre": -2, "rc": -1, "cvs": 1, "svn": 2, "git": 3,
             "hg": 4, "p": 5}
_DIGITS = re.compile(r"[0-9]*")
_LOWER = re.compile(r"[a-z]*")
_HEX = re.compile(r"[0-9a-fA-F]*")

_Token = tuple[int, str, int]  # kind, text, value (number or suffix rank)


def _apk_tokens(version: str) -> list[_Token]:
    """The tokens of an apk version; the last one is END or INVALID."""
    tokens: list[_Token] = []
    text = _DIGITS.match(version, 0)
    assert text is not None
    pos = text.end()
    if pos == 0:
        return [(_INVALID, "", 0)]
    tokens.append((_INITIAL, text.group(), int(text.group())))
    kind = _INITIAL
    while True:
        if pos >= len(version):
            tokens.append((_END, "", 0))
            return tokens
        char = version[pos]
        token: _Token | None = None
        if "a" <= char <= "z" and kind <= _DIGIT:
            token = (_LETTER, char, ord(char))
            pos += 1
        elif (char == "." and kind <= _DIGIT) or (char.isascii() and char.isdigit()):
            start = pos + 1 if char == "." else pos
            nxt = {_INITIAL: _DIGIT, _DIGIT: _DIGIT, _SUFFIX: _SUFFIX_NO}.get(kind)
            if char == "." and kind > _DIGIT:
                nxt = None
            digits = _DIGITS.match(version, start)
            assert digits is not None
            if nxt is not None and digits.group():
                token = (nxt, digits.group(), int(digits.group()))
                pos = digits.end()
        elif char == "_" and kind <= _SUFFIX_NO:
            word = _LOWER.match(version, pos + 1)
            assert word is not None
            if word.group() in _SUFFIXES:
                token = (_SUFFIX, word.group(), _SUFFIXES[word.group()])
                pos = word.end()
        elif char == "~" and kind < _HASH:
            digest = _HEX.match(version, pos + 1)
            assert digest is not None
            if digest.group():
                token = (_HASH, digest.group(), 0)
                pos = digest.end()
        elif char == "-" and kind < _REVISION and version.startswith("-r", pos):
            digits = _DIGITS.match(version, pos + 2)
            assert digits is not None
            if digits.group():
                token = (_REVISION, digits.group(), int(digits.group()))
                pos = digits.end()
        if token is None:
            tokens.append((_INVALID, "", 0))
            return tokens
        tokens.append(token)
        kind = token[0]


def apk_valid(version: str) -> bool:
    """Whether ``version`` is a well-formed apk version."""
    return _apk_tokens(version)[-1][0] == _END


def _bytes_order(a: str, b: str) -> int:
    # apk_blob_sort: bytewise on the common length, then the shorter first.
    return _sign((a > b) - (a < b))


def _apk_token_compare(a: _Token, b: _Token) -> int:
    kind = a[0]
    if kind == _DIGIT and (a[1].startswith("0") or b[1].startswith("0")):
        # A component with a leading zero is a fraction: compared as text (Gentoo's rule).
        return _bytes_order(a[1], b[1])
    if kind in (_INITIAL, _DIGIT, _SUFFIX_NO, _REVISION, _LETTER, _SUFFIX):
        return _sign(a[2] - b[2])
    return _bytes_order(a[1], b[1])


def apk_compare(a: str, b: str) -> int:
    """apk-tools' order of two versions (``apk version -t a b``).

    Invalid versions compare as far as they parse, as apk does.
    """
    ta, tb = _apk_tokens(a), _apk_tokens(b)
    index = 0
    while True:
        ka, kb = ta[index], tb[index]
        if ka[0] != kb[0] or ka[0] >= _END:
            break
        result = _apk_token_compare(ka, kb)
        if result:
            return result
        index += 1
    if ka[0] == kb[0]:
        return 0
    # Equal so far: the longer one is newer, unless it goes on with a pre-release suffix.
    if ka[0] == _SUFFIX and ka[2] < 0:
        return -1
    if kb[0] == _SUFFIX and kb[2] < 0:
        return 1
    return -1 if ka[0] > kb[0] else 1
