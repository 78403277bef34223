"""Check types over shared file systems: NFS exports and Samba shares.

These judge the export table and ``smb.conf`` whether or not the server is enabled: a share
written into the image is published intent, and enabling the server later needs no edit of
them. What the server's being enabled means is the ``service`` rules' business.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from imageaudit.checks import MissingPolicy, check_type
from imageaudit.findings import CheckResult, Rule, code
from imageaudit.model import Evidence, Severity, Status


class WideParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_ipv4_prefix: int = Field(default=8, ge=0, le=32,
                                 description="IPv4 networks this wide or wider count as any host")
    max_ipv6_prefix: int = Field(default=32, ge=0, le=128,
                                 description="IPv6 networks this wide or wider count as any host")


def world_reason(entry: Any, siblings: list[Any], wide: WideParams) -> str | None:
    """Why ``entry``'s client is every host (a sentence fragment), or ``None``."""
    if entry.no_client_given:
        return (f"the line names no client, so exportfs exports it to every host "
                f"({entry.source})")
    if entry.world_via_space:
        named = [s.client for s in siblings if not s.world_via_space]
        # A line may name any number of hosts: quote a few, so each message stays bounded.
        hosts = " ".join(named[:_QUOTED_HOSTS]) + (" ..." if len(named) > _QUOTED_HOSTS else "")
        opts = ",".join(entry.options)
        written = f"{entry.path} {hosts} ({opts})" if hosts else f"{entry.path} ({opts})"
        return (f"the space before {code('(' + opts + ')')} in {code(written)} "
                f"({entry.source}) makes those options apply to every host ({code('*')}), "
                "not to the host before it, which gets the defaults")
    client = entry.client
    if client and set(client) <= set("*?."):
        return f"the client {code(client)} matches every host ({entry.source})"
    try:
        net = ipaddress.ip_network(client, strict=False)
    except ValueError:
        return None
    limit = wide.max_ipv4_prefix if net.version == 4 else wide.max_ipv6_prefix
    if net.prefixlen <= limit:
        return (f"the network {code(client)} covers {net.num_addresses} addresses "
                f"({entry.source})")
    return None


_QUOTED_HOSTS = 5
# Objects a check lists one by one; the rest become one FAIL, so that a table of 100,000
# lines costs one cheap test per line, not a message each (the engine keeps 200 results).
LISTED = 199


class _Lines:
    """The entries of each exports line, indexed once on first use (looking through every
    entry for each entry was quadratic in the size of the table)."""

    def __init__(self, facts: Any) -> None:
        self._facts = facts
        self._index: dict[Any, list[Any]] | None = None

    def of(self, entry: Any) -> list[Any]:
        if self._index is None:
            self._index = {}
            for e in self._facts.exports.entries:
                self._index.setdefault(e.source, []).append(e)
        return self._index[entry.source]


def _is_world(entry: Any, wide: WideParams) -> bool:
    """Whether ``entry``'s client is every host (as :func:`world_reason`, without the words)."""
    if entry.no_client_given or entry.world_via_space:
        return True
    client = entry.client
    if client and set(client) <= set("*?."):
        return True
    try:
        net = ipaddress.ip_network(client, strict=False)
    except ValueError:
        return False
    return net.prefixlen <= (wide.max_ipv4_prefix if net.version == 4 else wide.max_ipv6_prefix)


def _resource(entry: Any) -> str:
    return f"{entry.path} {entry.client}"


def _writable(entry: Any) -> bool:
    return "rw" in entry.effective_options


@check_type("nfs_export_world_writable", params_model=WideParams, missing=MissingPolicy.ERROR,
            needs=("exports",))
def nfs_export_world_writable(facts: Any, params: WideParams, rule: Rule) -> list[CheckResult]:
    """Fails once per export client that is every host and has ``rw`` in effect.

    Every host: ``*`` (or any name made of wildcards only), a network at least as wide as
    the ``max_*_prefix`` parameters, a line with no client, and the space trap
    (``/srv host (rw)`` gives ``host`` the defaults and everyone ``rw``), which the message
    spells out with the line. A malformed exports line gives ERROR (we cannot tell what
    exportfs makes of it), so the rule never passes over it. The resource is
    ``path client``.

    Missing fact: without the exports facts; ``error``.
    """
    results: list[CheckResult] = []
    lines = _Lines(facts)
    more = 0
    for entry in facts.exports.entries:
        if not _writable(entry) or not _is_world(entry, params):
            continue
        if len(results) >= LISTED:
            more += 1
            continue
        why = world_reason(entry, lines.of(entry) if entry.world_via_space else [], params)
        results.append(CheckResult(
            Status.FAIL, f"NFS export {code(entry.path)} is writable by every host: {why}",
            resource=_resource(entry),
            evidence=Evidence(path=entry.source.path, line=entry.source.line,
                              observed=f"{entry.client}({','.join(entry.effective_options)})",
                              expected="named hosts or networks, or ro")))
    if more:
        results.append(_more(more, "export clients are writable by every host", None))
    bad_lines = facts.exports.malformed
    for bad in bad_lines[:LISTED]:
        results.append(CheckResult(
            Status.ERROR,
            f"Could not evaluate {bad.source}: {bad.reason} ({code(bad.text.strip())})",
            resource=str(bad.source),
            evidence=Evidence(path=bad.source.path, line=bad.source.line, observed=bad.text)))
    if len(bad_lines) > LISTED:
        rest = len(bad_lines) - LISTED
        results.append(CheckResult(
            Status.ERROR, f"Could not evaluate {rest} more malformed exports lines "
            "(not listed one by one)",
            evidence=Evidence(observed=f"{rest} more malformed lines")))
    return results


def _more(count: int, what: str, severity: Severity | None) -> CheckResult:
    """One FAIL standing for the ``count`` objects past :data:`LISTED`."""
    return CheckResult(
        Status.FAIL, f"{count} more NFS {what} (not listed one by one)",
        evidence=Evidence(observed=f"{count} more failing objects"), severity=severity)


class ExportOptionParams(WideParams):
    option: str = Field(description="the export option that fails (`no_root_squash`...)")
    risk: str = Field(default="", description="what the option allows, for the message")
    world_writable_severity: Severity | None = Field(
        default=None, description="severity when the same client is every host with `rw`")


@check_type("nfs_export_option", params_model=ExportOptionParams, missing=MissingPolicy.ERROR,
            needs=("exports",))
def nfs_export_option(facts: Any, params: ExportOptionParams, rule: Rule) -> list[CheckResult]:
    """Fails once per export client whose effective options include ``option``.

    Effective options are nfs-utils' defaults with the line's options applied in order, so a
    later ``root_squash`` cancels an earlier ``no_root_squash``. When the client is every host
    with ``rw`` (as ``nfs_export_world_writable`` judges it) the severity becomes
    ``world_writable_severity``. The resource is ``path client``.

    Missing fact: without the exports facts; ``error``.
    """
    results: list[CheckResult] = []
    lines = _Lines(facts)
    more = 0
    worst: Severity | None = None
    for entry in facts.exports.entries:
        if params.option not in entry.effective_options:
            continue
        escalate = (params.world_writable_severity is not None and _writable(entry)
                    and _is_world(entry, params))
        if len(results) >= LISTED:
            more += 1
            worst = params.world_writable_severity if escalate else worst
            continue
        risk = f"; {params.risk}" if params.risk else ""
        message = (f"NFS export {code(entry.path)} to {code(entry.client)} has "
                   f"{code(params.option)} ({entry.source}){risk}")
        if escalate:
            why = world_reason(entry, lines.of(entry) if entry.world_via_space else [], params)
            message += f", and it is writable by every host: {why}"
        results.append(CheckResult(
            Status.FAIL, message, resource=_resource(entry),
            evidence=Evidence(path=entry.source.path, line=entry.source.line,
                              observed=",".join(entry.effective_options),
                              expected=f"no {params.option}"),
            severity=params.world_writable_severity if escalate else None))
    if more:
        results.append(_more(more, f"export clients have {code(params.option)}", worst))
    return results


class SambaGuestParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    writable_severity: Severity = Field(
        default=Severity.CRITICAL, description="severity when guests can also write")


def _param(share: Any, glob: Any, name: str) -> Any:
    own = [p for p in share.params if p.canonical == name]
    inherited = [p for p in glob.params if p.canonical == name]
    return (own or inherited or [None])[-1]


_MAPPING = frozenset({"bad user", "bad password", "bad uid"})


@check_type("samba_guest_share", params_model=SambaGuestParams, missing=MissingPolicy.ERROR,
            needs=("samba",))
def samba_guest_share(facts: Any, params: SambaGuestParams, rule: Rule) -> list[CheckResult]:
    """Fails once per available share that guests reach without a password.

    A share is guest-accessible with ``guest ok``/``public``/``guest only`` (set on it or in
    ``[global]``), unless ``valid users`` leaves out the guest account or ``invalid users``
    names it. It is writable for guests when ``read only = no`` (or a synonym) or the guest
    account is in ``write list``; printer shares never count as writable. Writable raises the
    severity to ``writable_severity``. ``map to guest = Bad User``/``Bad Password`` is named
    in the message (failed logins then land on the guest account too); ``hosts allow`` is
    quoted. When shares may be hidden from us (``include = registry``, ``registry shares``,
    ``config backend = registry``, an include with ``%`` substitutions or a relative path,
    ``config file =``) the rule gives ERROR "could not evaluate" besides any failure; it never
    passes then. Usershares are judged by ``samba_usershare_guest``.

    Missing fact: without the samba facts; ``error``.
    """
    samba = facts.samba
    if not samba.present:
        return []
    g = samba.globals
    results: list[CheckResult] = []
    for share in samba.shares:
        if not share.available or not (share.guest_ok or share.guest_only):
            continue
        ga = g.guest_account
        if (share.valid_users and ga not in share.valid_users) or ga in share.invalid_users:
            continue
        guest = _param(share, g, "guest only") if share.guest_only else None
        guest = guest or _param(share, g, "guest ok")
        setting = f"{code(guest.name + ' = ' + guest.value)}, {guest.source}" if guest else ""
        where = f" ({code(share.path)})" if share.path else ""
        message = f"Samba share {code(share.name)}{where} is open to guests without a password " \
                  f"({setting})"
        writable = not share.printable and (share.writable or ga in share.write_list)
        if writable:
            ro = _param(share, g, "read only")
            how = (f"{code(ro.name + ' = ' + ro.value)}, {ro.source}" if ro and share.writable
                   else f"the guest account {code(ga)} is in {code('write list')}")
            message += f" and guests can write to it ({how})"
        if g.map_to_guest.lower() in _MAPPING:
            message += (f"; {code('map to guest = ' + g.map_to_guest)} also sends failed "
                        "logins to the guest account")
        if share.hosts_allow:
            message += f"; only hosts matching {code(' '.join(share.hosts_allow))} may connect"
        results.append(CheckResult(
            Status.FAIL, message, resource=share.name,
            evidence=Evidence(path=guest.source.path if guest else share.source.path,
                              line=guest.source.line if guest else share.source.line,
                              observed="guest ok" + (", writable" if writable else ""),
                              expected="guest ok = no"),
            severity=params.writable_severity if writable else None))
    if samba.hidden_shares_possible:
        results.append(CheckResult(
            Status.ERROR,
            "Could not evaluate every Samba share: "
            + "; ".join(samba.hidden_shares_possible),
            resource=samba.files[0] if samba.files else "smb.conf",
            evidence=Evidence(path=samba.files[0] if samba.files else None,
                              observed="; ".join(samba.hidden_shares_possible),
                              expected="every share defined in files inside the image")))
    return results
