"""How an sshd option applies to connections: the global value and the ``Match`` overrides.

Not a check module: helpers for :mod:`imageaudit.checks.ssh`, :mod:`imageaudit.checks.ssh_legacy`
and the empty-password check.

sshd applies, for each keyword, the first value among the ``Match`` blocks a connection
satisfies, else the global value. So the blocks *before* the first unconditional block that
sets the keyword apply to some connections, that unconditional block applies to every other
connection (the global value never does), and later blocks are dead for that keyword.
A block is unconditional when it matches everyone: ``Match all``, or every criterion a bare
``*`` (``Match Address *``, ``Match User *``), or an address list of ``0.0.0.0/0``/``::/0``.
Follows: sshd_config(5) "Match", OpenSSH servconf.c ``match_cfg_line``.
"""

from __future__ import annotations

from dataclasses import dataclass

from imageaudit.checks import MissingFact, NotApplicable
from imageaudit.facts.sshd import SshdFacts, SshdMatchBlock
from imageaudit.findings import code
from imageaudit.model import Evidence, Source

_CRITERIA = {
    "all": "All",
    "user": "User",
    "group": "Group",
    "host": "Host",
    "address": "Address",
    "localaddress": "LocalAddress",
    "localport": "LocalPort",
    "rdomain": "RDomain",
    "invalid-user": "Invalid-User",
}
_EVERY_ADDRESS = frozenset({"0.0.0.0/0", "::/0"})


@dataclass(frozen=True, slots=True)
class Setting:
    """One value of a keyword and whom it applies to."""

    keyword: str
    value: str
    source: Source | None  # None: the built-in default
    block: SshdMatchBlock | None = None
    default_note: str = ""

    @property
    def everyone(self) -> bool:
        return self.block is None or unconditional(self.block)

    @property
    def resource(self) -> str:
        """The keyword, plus the ``Match`` condition when it is one."""
        if self.block is None:
            return self.keyword
        return f"{self.keyword} ({block_text(self.block)})"

    def is_(self, *values: str) -> bool:
        """The value (first word, case-insensitive) is one of ``values``."""
        first = self.value.split()[0].lower() if self.value.split() else ""
        return first in {v.lower() for v in values}

    def where(self) -> str:
        """``(`Keyword value`, /etc/ssh/sshd_config line 3)`` and the like, for a message."""
        setting = code(f"{self.keyword} {self.value}")
        if self.block is not None:
            return f"({setting} in Match block {code(block_text(self.block))}, {self.source})"
        if self.source is None:
            return f"({setting}, not set: {self.default_note})"
        return f"({setting}, {self.source})"

    def evidence(self, expected: str) -> Evidence:
        """Path and line of the setting (the config file for a default), value observed."""
        if self.source is None:
            return Evidence(observed=f"{self.keyword} {self.value} (default)", expected=expected)
        return Evidence(
            path=self.source.path,
            line=self.source.line,
            observed=f"{self.keyword} {self.value}",
            expected=expected,
        )


def sshd_of(facts: object) -> SshdFacts:
    """``facts.sshd`` or :class:`MissingFact`."""
    sshd = getattr(facts, "sshd", None)
    if sshd is None:
        raise MissingFact("sshd")
    if not isinstance(sshd, SshdFacts):
        raise MissingFact("sshd", "unexpected sshd record")
    return sshd


def installed_sshd(facts: object) -> SshdFacts:
    """:func:`sshd_of`, or :class:`NotApplicable` when the image has no sshd."""
    sshd = sshd_of(facts)
    if not sshd.installed:
        raise NotApplicable(
            "Not applicable: the image has no sshd (no sshd binary, no /etc/ssh/sshd_config)"
        )
    return sshd


def block_text(block: SshdMatchBlock) -> str:
    """``Match User admin Address 10.0.0.0/8`` with canonical criterion names."""
    words = ["Match"]
    for name, pattern in block.criteria:
        words.append(_CRITERIA.get(name, name))
        if pattern:
            words.append(pattern)
    return " ".join(words)


def unconditional(block: SshdMatchBlock) -> bool:
    """Whether the block matches every connection (see the module docstring)."""
    if not block.criteria:
        return False
    for name, pattern in block.criteria:
        if name == "all":
            continue
        items = [p.strip() for p in pattern.split(",") if p.strip()]
        if not items or any(p.startswith("!") for p in items):
            return False
        if "*" in items:
            continue
        if name in ("address", "localaddress") and set(items) & _EVERY_ADDRESS:
            continue
        return False
    return True


def settings(sshd: SshdFacts, keyword: str) -> list[Setting]:
    """Every value of ``keyword`` that some connection gets, in the order sshd applies them.

    The last item applies to everyone not matched before (global, default or an
    unconditional block); the items before it come from conditional ``Match`` blocks. Empty
    when the option is neither set nor has a known default.
    """
    out: list[Setting] = []
    for block in sshd.match_blocks:
        directive = block.first(keyword)
        if directive is None:
            continue
        out.append(Setting(directive.keyword, " ".join(directive.args), directive.source, block))
        if unconditional(block):
            return out
    option = sshd.option(keyword)
    if option is not None:
        source = None if option.default else (option.sources[0] if option.sources else None)
        out.append(Setting(option.keyword, option.value, source, None, sshd.defaults_note))
    return out


def global_setting(sshd: SshdFacts, keyword: str) -> Setting | None:
    """The value everyone not matched by a conditional block gets."""
    found = settings(sshd, keyword)
    return found[-1] if found and found[-1].everyone else None
