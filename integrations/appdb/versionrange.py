"""Version ranges of a campaign (``<< 3.0.15-1~deb12u1``, ``>= 2.36, << 2.36-9+deb12u3``), judged
in the order of the package's own manager (dpkg, rpm or apk: :mod:`imageaudit.vulns.versions`).

The operators are dpkg's: ``<<`` strictly older, ``<=``, ``=``, ``>=``, ``>>`` strictly newer;
several, separated by commas, must all hold. dpkg's deprecated ``<`` and ``>`` (which mean
``<=`` and ``>=``) are refused rather than guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from imageaudit.vulns.versions import compare

MAX_RANGE = 1024
MAX_CONSTRAINTS = 8
MAX_BOUND = 255
OPERATORS: dict[str, Callable[[int], bool]] = {
    "<<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    "=": lambda c: c == 0,
    ">=": lambda c: c >= 0,
    ">>": lambda c: c > 0,
}
_CONSTRAINT = re.compile(r"(<<|<=|>=|>>|=|<|>)\s*([^\s,]+)")


class RangeInvalid(ValueError):
    """The range is not a list of ``OP VERSION``; the message says which part."""


@dataclass(frozen=True, slots=True)
class Constraint:
    """One ``OP VERSION`` of a range."""

    op: str
    bound: str

    def __str__(self) -> str:
        return f"{self.op} {self.bound}"


def parse_range(text: str) -> tuple[Constraint, ...]:
    """The constraints of ``text`` (all must hold); RangeInvalid when it is not a range."""
    if len(text) > MAX_RANGE:
        raise RangeInvalid(f"the version range is longer than {MAX_RANGE} characters")
    parts = [p.strip() for p in text.split(",")]
    if not any(parts):
        raise RangeInvalid("the version range is empty")
    if len(parts) > MAX_CONSTRAINTS:
        raise RangeInvalid(f"more than {MAX_CONSTRAINTS} constraints in the version range")
    out = []
    for part in parts:
        match = _CONSTRAINT.fullmatch(part)
        if match is None:
            raise RangeInvalid(f"{part[:80]!r} is not OP VERSION (OP: << <= = >= >>)")
        op, bound = match.groups()
        if op in ("<", ">"):
            raise RangeInvalid(f"{part[:80]!r}: write {op * 2} (strictly) or {op}= "
                               f"(dpkg's old {op} means {op}=)")
        if len(bound) > MAX_BOUND or not bound.isprintable():
            raise RangeInvalid(f"{bound[:80]!r} is not a version")
        out.append(Constraint(op, bound))
    return tuple(out)


def fix_of(constraints: tuple[Constraint, ...]) -> str | None:
    """The version that fixes what a range describes, when it says so: ``<< V`` alone."""
    if len(constraints) == 1 and constraints[0].op == "<<":
        return constraints[0].bound
    return None


def within(manager: str, version: str, constraints: tuple[Constraint, ...]) -> bool:
    """Whether ``version`` satisfies every constraint in ``manager``'s order.

    ValueError when the manager is unknown or a version is not one of its versions.
    """
    return all(OPERATORS[c.op](compare(manager, version, c.bound)) for c in constraints)
