"""Saved firewall configuration and its default input policy, per mechanism.

Mechanisms: ``iptables``/``ip6tables`` (iptables-persistent ``/etc/iptables/rules.v4``,
``rules.v6``; RHEL ``/etc/sysconfig/iptables``, ``ip6tables``), ``nftables``
(``/etc/nftables.conf`` and its includes), ``firewalld`` (default zone) and ``ufw``. Each gets
a :class:`FirewallSummary`: present, input default policy (``accept``, ``drop``, ``reject``,
``unknown``), rule count and sources; the parsed chains and zones are kept too. Whether the
firewall's service is enabled is a services fact, not recorded here.

How a summary's policy is derived (the daemon's semantics, not a judgement):

- iptables: the ``:INPUT`` policy of ``*filter``; files that disagree give ``unknown``.
- nftables: base chains ``type filter hook input``; ``drop`` when any drops (a packet must pass
  every base chain on the hook), ``accept`` otherwise (nft's default), ``unknown`` when none.
- firewalld: the default zone's ``target`` (``DefaultZone`` absent means ``public``);
  ``default`` and ``%%REJECT%%`` reject; ``unknown`` when the zone file is missing.
- ufw: ``DEFAULT_INPUT_POLICY`` of ``/etc/default/ufw``; ``enabled`` from ``ufw.conf``.

Follows iptables-save(8)/iptables-restore(8), nft(8), firewalld.conf(5),
firewalld.zone(5) and ufw(8) ("ufw-framework").
"""

from __future__ import annotations

from dataclasses import dataclass

from imageaudit.facts.base import CollectContext, Collector
from imageaudit.facts.conftext import (
    MalformedLine,
    numbered_lines,
    parse_shell_vars,
    read_config,
    split_words,
)
from imageaudit.facts.firewall.firewalld import FirewalldFacts, FirewalldZone, collect_firewalld
from imageaudit.facts.firewall.nftables import NFT_MAIN, NftChain, NftParser, chains
from imageaudit.facts.textlines import glibc_lines
from imageaudit.model import Source

IPTABLES_FILES = {
    "iptables": ("/etc/iptables/rules.v4", "/etc/sysconfig/iptables"),
    "ip6tables": ("/etc/iptables/rules.v6", "/etc/sysconfig/ip6tables"),
}
UFW_CONF = "/etc/ufw/ufw.conf"
UFW_DEFAULT = "/etc/default/ufw"
UFW_RULES = ("/etc/ufw/user.rules", "/etc/ufw/user6.rules")
_POLICY = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject"}
_ZONE_POLICY = {"ACCEPT": "accept", "DROP": "drop", "%%REJECT%%": "reject", "REJECT": "reject",
                "default": "reject"}


@dataclass(frozen=True, slots=True)
class IptablesChain:
    table: str
    name: str
    policy: str | None  # ACCEPT/DROP as written; None for a user chain ("-")
    rules: int
    catch_all: str | None  # target of the last rule with no match (``-A INPUT -j REJECT``)
    source: Source


@dataclass(frozen=True, slots=True)
class UfwFacts:
    present: bool
    enabled: str | None  # ENABLED= of ufw.conf as written
    default_input_policy: str | None  # DEFAULT_INPUT_POLICY= of /etc/default/ufw
    user_rules: int  # -A ufw-user-input / ufw6-user-input lines
    sources: tuple[Source, ...]


@dataclass(frozen=True, slots=True)
class FirewallSummary:
    mechanism: str  # iptables | ip6tables | nftables | firewalld | ufw
    present: bool
    input_policy: str | None  # accept | drop | reject | unknown; None when not present
    rules: int
    enabled: bool | None  # only ufw records this in its own configuration
    sources: tuple[Source, ...]


@dataclass(frozen=True, slots=True)
class FirewallFacts:
    summaries: tuple[FirewallSummary, ...]
    iptables: tuple[IptablesChain, ...]  # chains of every iptables file, with their sources
    nftables: tuple[NftChain, ...]
    firewalld: FirewalldFacts
    ufw: UfwFacts
    malformed: tuple[MalformedLine, ...]

    def summary(self, mechanism: str) -> FirewallSummary | None:
        return next((s for s in self.summaries if s.mechanism == mechanism), None)


@dataclass
class _Chain:
    source: Source
    policy: str | None = None
    rules: int = 0
    catch_all: str | None = None


def parse_iptables_save(text: str, path: str, bad: list[MalformedLine]) -> list[IptablesChain]:
    """Chains of an iptables-save file: policies, rule counts, last match-less rule."""
    table = ""
    found: dict[tuple[str, str], _Chain] = {}  # insertion order = file order
    for number, raw in numbered_lines(text):
        line = raw.strip()
        src = Source(path, number)
        if not line or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith("*"):
            table = line[1:].strip()
            continue
        if line.startswith(":"):
            fields = line[1:].split()
            if len(fields) < 2:
                bad.append(MalformedLine("chain line without a policy", raw, src))
                continue
            chain = found.setdefault((table, fields[0]), _Chain(src))
            chain.policy, chain.source = (None if fields[1] == "-" else fields[1]), src
            continue
        words = split_words(line)
        if words is None or len(words) < 2 or words[0] not in ("-A", "-I", "--append"):
            bad.append(MalformedLine("not an iptables-save line", raw, src))
            continue
        chain = found.setdefault((table, words[1]), _Chain(src))
        chain.rules += 1
        match = words[2:]
        chain.catch_all = match[1] if len(match) >= 2 and match[0] == "-j" else None
    return [
        IptablesChain(t, name, c.policy, c.rules, c.catch_all, c.source)
        for (t, name), c in found.items()
    ]


def _iptables(ctx: CollectContext, mechanism: str, bad: list[MalformedLine],
              all_chains: list[IptablesChain]) -> FirewallSummary:
    sources: list[Source] = []
    policies: set[str] = set()
    rules = 0
    for path in IPTABLES_FILES[mechanism]:
        text = read_config(ctx, path)
        if text is None:
            continue
        found = parse_iptables_save(text, path, bad)
        all_chains.extend(found)
        sources.append(Source(path))
        for chain in found:
            if chain.table == "filter":
                rules += chain.rules
                if chain.name == "INPUT" and chain.policy is not None:
                    policies.add(_POLICY.get(chain.policy.upper(), "unknown"))
                    sources.append(chain.source)
    policy = policies.pop() if len(policies) == 1 else "unknown"
    return FirewallSummary(mechanism, bool(sources), policy if sources else None, rules, None,
                           tuple(sources))


def _nftables(ctx: CollectContext, bad: list[MalformedLine]) -> tuple[FirewallSummary,
                                                                     list[NftChain]]:
    parser = NftParser(ctx)
    statements = []
    for path in NFT_MAIN:
        statements.extend(parser.parse_file(path, 0, None))
    bad.extend(parser.guard.malformed)
    found = chains(statements)
    inputs = [c for c in found if c.type == "filter" and c.hook == "input"]
    policy: str | None = None
    if parser.guard.files:
        policies = {(c.policy or "accept").lower() for c in inputs}
        policy = "unknown" if not inputs else "drop" if "drop" in policies else (
            "accept" if policies == {"accept"} else "unknown")
    sources = [Source(f) for f in parser.guard.files] + [c.source for c in inputs]
    summary = FirewallSummary("nftables", bool(parser.guard.files), policy,
                              sum(c.rules for c in found), None, tuple(sources))
    return summary, found


def _firewalld_summary(facts: FirewalldFacts) -> FirewallSummary:
    if not facts.present:
        return FirewallSummary("firewalld", False, None, 0, None, ())
    name = facts.default_zone or "public"  # firewalld.conf(5) default
    zone: FirewalldZone | None = next((z for z in facts.zones if z.name == name), None)
    sources = [facts.default_zone_source] if facts.default_zone_source else []
    if zone is None:
        return FirewallSummary("firewalld", True, "unknown", 0, None, tuple(sources))
    policy = _ZONE_POLICY.get(zone.target or "default", "unknown")
    rules = len(zone.services) + len(zone.ports) + zone.rich_rules + zone.forward_ports
    return FirewallSummary("firewalld", True, policy, rules, None, (*sources, zone.source))


def _ufw(ctx: CollectContext, bad: list[MalformedLine]) -> UfwFacts:
    values: dict[str, tuple[str, Source]] = {}
    sources: list[Source] = []
    for path in (UFW_CONF, UFW_DEFAULT):
        text = read_config(ctx, path)
        if text is None:
            continue
        sources.append(Source(path))
        settings, malformed = parse_shell_vars(text, path)
        bad.extend(malformed)
        values.update({s.key: (s.value, s.source) for s in settings})
    rules = 0
    for path in UFW_RULES:
        text = read_config(ctx, path)
        if text is None:
            continue
        sources.append(Source(path))
        rules += sum(
            1 for line in glibc_lines(text)  # read by iptables-restore (C, newline only)
            if line.startswith(("-A ufw-user-input", "-A ufw6-user-input"))
        )
    enabled = values.get("ENABLED")
    policy = values.get("DEFAULT_INPUT_POLICY")
    return UfwFacts(
        present=any(s.path == UFW_CONF for s in sources),
        enabled=enabled[0] if enabled else None,
        default_input_policy=policy[0] if policy else None,
        user_rules=rules,
        sources=tuple(sources) + tuple(v[1] for v in (enabled, policy) if v),
    )


def _ufw_summary(ufw: UfwFacts) -> FirewallSummary:
    if not ufw.present:
        return FirewallSummary("ufw", False, None, 0, None, ufw.sources)
    policy = _POLICY.get((ufw.default_input_policy or "").upper(), "unknown")
    enabled = None if ufw.enabled is None else ufw.enabled.lower() == "yes"
    return FirewallSummary("ufw", True, policy, ufw.user_rules, enabled, ufw.sources)


def collect(ctx: CollectContext) -> FirewallFacts:
    """Summaries and parsed configuration of every firewall mechanism in the image."""
    bad: list[MalformedLine] = []
    ipt_chains: list[IptablesChain] = []
    summaries = [_iptables(ctx, m, bad, ipt_chains) for m in ("iptables", "ip6tables")]
    nft_summary, nft_chains = _nftables(ctx, bad)
    firewalld = collect_firewalld(ctx)
    ufw = _ufw(ctx, bad)
    summaries += [nft_summary, _firewalld_summary(firewalld), _ufw_summary(ufw)]
    return FirewallFacts(
        summaries=tuple(summaries),
        iptables=tuple(ipt_chains),
        nftables=tuple(nft_chains),
        firewalld=firewalld,
        ufw=ufw,
        malformed=tuple(bad),  # firewalld keeps its own
    )


COLLECTOR = Collector(
    name="firewall",
    patterns=(
        "/etc/iptables/rules.v4", "/etc/iptables/rules.v6", "/etc/sysconfig/iptables",
        "/etc/sysconfig/ip6tables", "/etc/nftables.conf", "/etc/sysconfig/nftables.conf",
        "/etc/nftables.d/*", "/etc/firewalld/firewalld.conf", "/etc/firewalld/zones/*.xml",
        "/usr/lib/firewalld/zones/*.xml", "/etc/ufw/ufw.conf", "/etc/default/ufw",
        "/etc/ufw/user.rules", "/etc/ufw/user6.rules",
    ),
    collect=collect,
)
