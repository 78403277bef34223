"""Check types over exposed network daemons: SNMP communities, NTP mode 7, open DNS resolvers.

Each daemon is judged only when it runs (see :mod:`imageaudit.checks.activity`); its
configuration comes from ``Facts.listeners``. Database daemons are in
:mod:`imageaudit.checks.exposure_db`.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from imageaudit.checks import MissingPolicy, check_type
from imageaudit.checks.activity import SERVICES, active, describe
from imageaudit.findings import CheckResult, Rule, code
from imageaudit.model import Evidence, Severity, Status

LOOPBACK_NAMES = frozenset({"localhost", "localhost4", "localhost6", "ip6-localhost"})


def is_loopback(address: str) -> bool:
    """True for a loopback address or name (``127.0.0.1``, ``[::1]``, ``localhost``, CIDRs)."""
    addr = address.strip().strip("[]").lower()
    if addr in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_network(addr, strict=False).is_loopback
    except ValueError:
        return False


# --- SNMP -----------------------------------------------------------------------------------

class SnmpParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    communities: list[str] = Field(
        default_factory=lambda: ["public", "private"],
        description="well-known community strings to look for (compared exactly)")
    write_severity: Severity = Field(
        default=Severity.CRITICAL, description="severity when the community grants write access")


_TRANSPORTS = frozenset({"udp", "tcp", "udp6", "tcp6", "dtlsudp", "tlstcp"})


def _agent_host(value: str) -> str | None:
    """The host of an ``agentAddress`` spec; ``""`` for all interfaces, ``None`` for unix."""
    spec = value.strip()
    head, sep, rest = spec.partition(":")
    if sep and head.lower() == "unix":
        return None
    if sep and head.lower() in _TRANSPORTS:
        spec = rest
    if spec.startswith("["):
        host = spec[1:spec.index("]")] if "]" in spec else spec[1:]
    elif spec.count(":") == 1:
        host = spec.split(":")[0]
    else:
        host = spec
    return "" if host.isdigit() or not host else host


def _snmp_agent_local(daemon: Any) -> bool:
    """Whether every ``agentAddress`` is loopback or a unix socket (absent: all interfaces)."""
    values = [a for s in daemon.values("agentaddress") for a in s.value.split(",") if a.strip()]
    hosts = [_agent_host(v) for v in values]
    return bool(values) and all(h is None or (h and is_loopback(h)) for h in hosts)


def _snmp_writes(daemon: Any, secname: str) -> bool:
    groups = {s.value.split()[0] for s in daemon.values("group")
              if len(s.value.split()) >= 3 and s.value.split()[2] == secname}
    for access in daemon.values("access"):
        words = access.value.split()
        if len(words) >= 7 and words[0] in groups and words[6].lower() != "none":
            return True
    return False


@check_type("snmp_default_community", params_model=SnmpParams, missing=MissingPolicy.ERROR,
            needs=("services", "listeners"))
def snmp_default_community(facts: Any, params: SnmpParams, rule: Rule) -> list[CheckResult]:
    """Fails once per snmpd community line granting a well-known community to remote hosts.

    Only when snmpd runs and listens beyond loopback (``agentAddress``; all interfaces when
    absent). Communities limited to ``localhost``/loopback sources pass. ``rwcommunity`` (or a
    ``com2sec`` name whose ``group``/``access`` lines have a write view) raises the severity
    to ``write_severity``. The resource is ``directive community``.

    Missing fact: without services or listeners facts; ``error``.
    """
    acts = active(facts, SERVICES["snmpd"])
    if not acts:
        return []
    results = []
    for daemon in facts.listeners.get("snmpd"):
        if _snmp_agent_local(daemon):
            continue
        for acc in facts.listeners.snmp_access:
            if acc.community not in params.communities:
                continue
            network = acc.network or "default"
            if network != "default" and is_loopback(network):
                continue
            writes = acc.directive.startswith("rw") or (
                acc.security_name is not None and _snmp_writes(daemon, acc.security_name))
            who = "any host" if network == "default" else f"hosts in {code(network)}"
            mode = "read-write" if writes else "read-only"
            results.append(CheckResult(
                Status.FAIL,
                f"snmpd grants {mode} access to {who} with the well-known community "
                f"{code(acc.community)} ({acc.directive}, {acc.source}); snmpd is enabled: "
                f"{describe(acts)}",
                resource=f"{acc.directive} {acc.community}",
                evidence=Evidence(path=acc.source.path, line=acc.source.line,
                                  observed=f"{acc.directive} {acc.community} {network}",
                                  expected="a secret community or SNMPv3 users"),
                severity=params.write_severity if writes else None))
    return results


# --- NTP ------------------------------------------------------------------------------------

class NtpParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_CLOSING_FLAGS = frozenset({"noquery", "ignore"})


def _default_restrict(restricts: Any, family: str) -> Any:
    """The last ``restrict default`` (or all-zero mask) line that covers ``family``."""
    found = None
    for r in restricts:
        fam = {"-4": "IPv4", "-6": "IPv6"}.get(r.family or "")
        if fam is not None and fam != family:
            continue
        zero = r.address in ("0.0.0.0", "::") and r.mask in ("0.0.0.0", "::")
        if r.address == "default" or zero:
            if zero and (":" in r.address) != (family == "IPv6"):
                continue
            found = r
    return found


@check_type("ntp_mode7", params_model=NtpParams, missing=MissingPolicy.ERROR,
            needs=("services", "listeners"))
def ntp_mode7(facts: Any, params: NtpParams, rule: Rule) -> list[CheckResult]:
    """Fails when ntpd runs and answers mode 7 (``monlist``) queries from any host.

    That is: for IPv4 or IPv6 the default restriction (``restrict default``, ``restrict -4
    default``...; the last one wins) lacks ``noquery``/``ignore`` *and* monitoring is not
    switched off with ``disable monitor``. NTPsec (``/etc/ntpsec/ntp.conf``) has no mode 7
    and passes; chrony is not ntpd.

    Missing fact: without services or listeners facts; ``error``.
    """
    acts = active(facts, SERVICES["ntpd"])
    if not acts:
        return []
    results = []
    for daemon in facts.listeners.get("ntpd"):
        paths = [f.path for f in daemon.files]
        if paths and all(p.startswith("/etc/ntpsec/") for p in paths):
            continue
        disabled = [s for s in daemon.values("disable") if "monitor" in s.value.split()]
        if disabled:
            continue
        open_families = []
        for family in ("IPv4", "IPv6"):
            r = _default_restrict(facts.listeners.ntp_restrict, family)
            if r is None:
                open_families.append(f"no default restriction for {family}")
            elif not set(r.flags) & _CLOSING_FLAGS:
                flags = " ".join(r.flags) or "no flags"
                open_families.append(f"the {family} default restriction has no "
                                     f"{code('noquery')} ({flags}, {r.source})")
        if not open_families:
            continue
        where = paths[0] if paths else "no ntp.conf"
        results.append(CheckResult(
            Status.FAIL,
            f"ntpd answers mode 7 (monlist) queries from any host: {'; '.join(open_families)}, "
            f"and monitoring is not disabled (no {code('disable monitor')}); ntpd is enabled: "
            f"{describe(acts)}",
            resource="ntpd",
            evidence=Evidence(path=where if paths else None, observed="; ".join(open_families),
                              expected="restrict default ... noquery, or disable monitor")))
    return results


# --- DNS ------------------------------------------------------------------------------------

class DnsParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    default_acl_severity: Severity = Field(
        default=Severity.MODERATE,
        description="severity when recursion is only limited by BIND's default "
        "`{ localnets; localhost; }` (every host on the machine's networks)")


_UNIVERSAL = frozenset({"any", "0.0.0.0/0", "::/0"})


def acl_verdict(value: str) -> str:
    """``open``, ``closed`` or ``restricted`` for a BIND address match list (first match)."""
    words = value.replace("{", " ").replace("}", " ").replace(";", " ").split()
    for word in words:
        neg = word.startswith("!")
        base = word.lstrip("!")
        if base in _UNIVERSAL:
            return "closed" if neg else "open"
        if base == "none" and not neg:
            return "closed"
    return "restricted"


def _listen_local(settings: list[Any]) -> bool:
    v4 = [s for s in settings if s.key == "listen-on"]
    v6 = [s for s in settings if s.key == "listen-on-v6"]
    if not v4 or not v6:  # listen-on defaults to every IPv4, listen-on-v6 to every IPv6
        return False
    for s in (v4[-1], v6[-1]):
        words = s.value.replace("{", " ").replace("}", " ").replace(";", " ").split()
        addrs = [w for i, w in enumerate(words) if w not in ("port", "dscp")
                 and (i == 0 or words[i - 1] not in ("port", "dscp"))]
        if not all(a == "none" or is_loopback(a) for a in addrs):
            return False
    return True


def _scopes(daemon: Any) -> list[tuple[str, list[Any]]]:
    options = [s for s in daemon.settings if s.section == "options"]
    views = sorted({s.section for s in daemon.settings
                    if s.section and s.section.startswith("view ") and " zone " not in s.section})
    if not views:
        return [("options", options)]
    return [(v, options + [s for s in daemon.settings if s.section == v]) for v in views]


@check_type("dns_open_resolver", params_model=DnsParams, missing=MissingPolicy.ERROR,
            needs=("services", "listeners"))
def dns_open_resolver(facts: Any, params: DnsParams, rule: Rule) -> list[CheckResult]:
    """Fails once per BIND scope (``options`` or each ``view``) that recurses for any client.

    ``recursion`` defaults to yes. Who may recurse is ``allow-recursion``, else
    ``allow-query-cache``, else ``allow-query`` (BIND's fallback chain), else the default
    ``{ localnets; localhost; }``: an ``any`` list fails at the rule's severity, the default
    fails at ``default_acl_severity``, an explicit narrower list passes (ACL names are taken
    as restrictions). A server listening only on loopback (``listen-on`` and
    ``listen-on-v6``) passes. Only when named runs.

    Missing fact: without services or listeners facts; ``error``.
    """
    acts = active(facts, SERVICES["bind"])
    if not acts:
        return []
    results = []
    for daemon in facts.listeners.get("bind"):
        for scope, settings in _scopes(daemon):
            def last(key: str, settings: list[Any] = settings) -> Any:
                found = [s for s in settings if s.key == key]
                return found[-1] if found else None

            rec = last("recursion")
            if rec is not None and rec.value.strip().lower() in ("no", "false", "0"):
                continue
            if _listen_local(settings):
                continue
            acl = next((s for s in (last(k) for k in (
                "allow-recursion", "allow-query-cache", "allow-query")) if s is not None), None)
            verdict = acl_verdict(acl.value) if acl is not None else "default"
            if verdict in ("closed", "restricted"):
                continue
            if acl is not None:
                who = (f"any client ({code(acl.key + ' ' + acl.value)}, {acl.source})")
                severity = None
            else:
                who = ("every host on the machine's networks: no allow-recursion, "
                       "allow-query-cache or allow-query, so BIND's default "
                       f"{code('{ localnets; localhost; }')} applies")
                severity = params.default_acl_severity
            results.append(CheckResult(
                Status.FAIL,
                f"BIND named resolves recursively for {who} in {code(scope)}; named is "
                f"enabled: {describe(acts)}",
                resource=scope,
                evidence=Evidence(path=acl.source.path if acl else None,
                                  line=acl.source.line if acl else None,
                                  observed=f"{acl.key} {acl.value}" if acl else "no ACL",
                                  expected="allow-recursion { trusted networks; }"),
                severity=severity))
    return results
