"""Check types over enabled services: legacy clear-text services, TFTP, anonymous FTP, firewall.

"Enabled" follows :mod:`imageaudit.checks.activity`: init-system enablement for VM and
directory images, the entrypoint/command for container images (installed counts when the
command is a process supervisor or absent).
"""

from __future__ import annotations

import posixpath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from imageaudit.checks import MissingPolicy, check_type
from imageaudit.checks.activity import (
    SERVICES,
    Activity,
    ServiceIdentity,
    active,
    container_command,
    describe,
    enabled_activity,
)
from imageaudit.checks.exposure_shares import other_ftp_anonymous
from imageaudit.findings import CheckResult, Rule, code
from imageaudit.model import Evidence, Severity, Status


def _known(values: list[str]) -> list[str]:
    unknown = [v for v in values if v not in SERVICES]
    if unknown:
        raise ValueError(f"unknown service(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(SERVICES))}")
    return values


def _evidence(acts: list[Activity], observed: str, expected: str) -> Evidence:
    src = next((a.source for a in acts if a.source is not None), None)
    return Evidence(path=src.path if src else None, line=src.line if src else None,
                    observed=observed, expected=expected)


class ServiceEnabledParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    services: list[str] = Field(
        min_length=1, description="service keys (`telnet`, `rsh`, `rlogin`, `rexec`, `nfs`, "
        "`rpcbind`, `samba`, ... see `imageaudit.checks.activity.SERVICES`)")
    risk: str = Field(default="", description="what the service exposes, appended to each "
                      "message")

    _check = field_validator("services")(_known)


@check_type("service_enabled", params_model=ServiceEnabledParams, missing=MissingPolicy.ERROR,
            needs=("services",))
def service_enabled(facts: Any, params: ServiceEnabledParams, rule: Rule) -> list[CheckResult]:
    """Fails once per listed service that runs: enabled (VM, directory) or started by the
    container's command (installed, for containers run through a process supervisor).

    inetd/xinetd entries count only when inetd/xinetd itself is enabled. The resource is the
    service key; the message names every mechanism that starts it.

    Missing fact: without the services facts enablement is unknown; ``error``.
    """
    results = []
    for key in params.services:
        ident = SERVICES[key]
        acts = active(facts, ident)
        if not acts:
            continue
        risk = f"; {params.risk}" if params.risk else ""
        results.append(CheckResult(
            Status.FAIL, f"{ident.label} is enabled: {describe(acts)}{risk}", resource=key,
            evidence=_evidence(acts, "enabled", "not enabled")))
    return results


class TftpParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    create_severity: Severity = Field(
        default=Severity.CRITICAL,
        description="severity when anyone can upload (`--create`, or a world-writable root)")


def _create_flag(words: list[str]) -> bool:
    for word in words:
        if word == "--create":
            return True
        if word.startswith("-") and not word.startswith("--") and word[1:].isalpha() and (
                "c" in word[1:]):
            return True
    return False


def _tftp_dirs(words: list[str]) -> list[str]:
    return [w for w in words if w.startswith("/") and posixpath.basename(w) not in (
        "in.tftpd", "tftpd", "atftpd")]


def _tftp_words(facts: Any, acts: list[Activity]) -> list[tuple[list[str], str]]:
    """Option words of every way in.tftpd is started, each with where they came from."""
    found: list[tuple[list[str], str]] = []
    listeners = getattr(facts, "listeners", None)
    if listeners is not None:
        for daemon in listeners.get("tftp"):
            for s in daemon.settings:
                if s.key in ("TFTP_OPTIONS", "TFTP_DIRECTORY"):
                    found.append((s.value.split(), str(s.source)))
    services = facts.services
    for act in acts:
        if act.mechanism == "inetd":
            found += [(list(e.args), str(e.source)) for e in services.inetd.entries
                      if e.source == act.source]
        elif act.mechanism == "xinetd":
            found += [(a.value.split(), str(a.source)) for x in services.xinetd.services
                      if x.source == act.source for a in x.attributes if a.key == "server_args"]
        elif act.mechanism == "systemd":
            names = {act.unit, act.unit.rsplit(".", 1)[0] + ".service",
                     _activates(services, act.unit)}
            found += [(line.split(), unit.path or unit.name) for unit in services.systemd.units
                      if unit.name in names for line in unit.exec_start]
        elif act.mechanism == "container":
            found.append((container_command(facts.image.details) or [], "the container's command"))
    return found


def _activates(services: Any, unit: str) -> str | None:
    """The service a socket unit starts (``Service=``), if recorded."""
    found = next((u for u in services.systemd.units if u.name == unit), None)
    return found.activates if found is not None else None


@check_type("tftp_enabled", params_model=TftpParams, missing=MissingPolicy.ERROR,
            needs=("services",))
def tftp_enabled(facts: Any, params: TftpParams, rule: Rule) -> list[CheckResult]:
    """Fails when a TFTP server runs (TFTP has no authentication at all).

    The severity rises to ``create_severity`` when anyone can write: ``--create``/``-c`` in
    the options (``/etc/default/tftpd-hpa``, inetd/xinetd arguments, the unit's
    ``ExecStart=`` or the container's command), or a served directory that is world-writable
    (``Facts.files``).

    Missing fact: without the services facts enablement is unknown; ``error``.
    """
    ident = SERVICES["tftp"]
    acts = active(facts, ident)
    if not acts:
        return []
    found = _tftp_words(facts, acts)
    worse = [f"{code('--create')} lets anyone upload new files ({where})"
             for words, where in found if _create_flag(words)][:1]
    files = getattr(facts, "files", None)
    if files is not None:
        wanted = {d for words, _where in found for d in _tftp_dirs(words)}
        for d in files.world_writable_dirs:
            if d.path in wanted:
                worse.append(f"the served directory {code(d.path)} is world-writable "
                             f"(mode {d.mode:04o})")
    message = (f"{ident.label} is enabled: {describe(acts)}; anyone on the network can read "
               "the served files without authentication")
    if worse:
        message += ", and " + " and ".join(worse)
    return [CheckResult(
        Status.FAIL, message, resource="tftp",
        evidence=_evidence(acts, "enabled" + (" with uploads" if worse else ""), "not enabled"),
        severity=params.create_severity if worse else None)]


class FtpParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    upload_severity: Severity = Field(
        default=Severity.CRITICAL,
        description="severity when anonymous users may also upload or write")


_TRUE = frozenset({"YES", "TRUE", "1"})


def _vsftpd_bool(daemon: Any, key: str) -> tuple[bool, Any]:
    setting = daemon.last(key)
    return (setting is not None and setting.value.strip().upper() in _TRUE), setting


@check_type("ftp_anonymous", params_model=FtpParams, missing=MissingPolicy.ERROR,
            needs=("services", "listeners"))
def ftp_anonymous(facts: Any, params: FtpParams, rule: Rule) -> list[CheckResult]:
    """Fails when vsftpd, ProFTPD or Pure-FTPd runs and allows anonymous logins.

    vsftpd: ``anonymous_enable=YES`` (off when absent, vsftpd 3.0 and later); the severity
    rises to ``upload_severity`` when anonymous users can write: ``write_enable=YES``
    together with ``anon_upload_enable``, ``anon_mkdir_write_enable`` or
    ``anon_other_write_enable``. ProFTPD: an ``<Anonymous>`` block (not one with
    ``AnonRequirePassword on`` or a ``<Limit LOGIN>`` ``DenyAll``); ``upload_severity`` when
    a ``<Limit>`` of a write command in it has ``AllowAll``. Pure-FTPd: no ``NoAnonymous
    yes`` while an ``ftp`` account exists; ``upload_severity`` with
    ``AnonymousCanCreateDirs yes``.

    Missing fact: without services or listeners facts; ``error``.
    """
    acts = active(facts, SERVICES["vsftpd"])
    results = other_ftp_anonymous(facts, params.upload_severity)
    for daemon in facts.listeners.get("vsftpd") if acts else ():
        anon, setting = _vsftpd_bool(daemon, "anonymous_enable")
        if not anon:
            continue
        write, write_setting = _vsftpd_bool(daemon, "write_enable")
        uploads = [
            s for s in (_vsftpd_bool(daemon, k) for k in (
                "anon_upload_enable", "anon_mkdir_write_enable", "anon_other_write_enable"))
            if s[0]
        ]
        message = (f"vsftpd allows anonymous logins ({code(setting.key + '=' + setting.value)}, "
                   f"{setting.source}) and is enabled: {describe(acts)}")
        worse = bool(write and uploads)
        if worse:
            up = uploads[0][1]
            message += (f"; anonymous users can also write ({code(up.key + '=' + up.value)}, "
                        f"{up.source}, with {code('write_enable=' + write_setting.value)}, "
                        f"{write_setting.source})")
        results.append(CheckResult(
            Status.FAIL, message, resource="vsftpd",
            evidence=Evidence(path=setting.source.path, line=setting.source.line,
                              observed=f"{setting.key}={setting.value}",
                              expected="anonymous_enable=NO"),
            severity=params.upload_severity if worse else None))
    return results


FIREWALLS: dict[str, ServiceIdentity] = {
    "iptables": ServiceIdentity("iptables", ("netfilter-persistent", "iptables",
                                             "iptables-persistent")),
    "ip6tables": ServiceIdentity("ip6tables", ("netfilter-persistent", "ip6tables")),
    "nftables": ServiceIdentity("nftables", ("nftables",)),
    "firewalld": ServiceIdentity("firewalld", ("firewalld",)),
    "ufw": ServiceIdentity("ufw", ("ufw",)),
}
_DENY = frozenset({"drop", "reject"})


def _firewall_state(facts: Any, summary: Any) -> tuple[bool, str]:
    """Whether one mechanism denies by default and is started; a short description."""
    policy = summary.input_policy or "unknown"
    if summary.mechanism in ("iptables", "ip6tables") and policy == "accept":
        # "-A INPUT -j DROP" as the last rule denies by default whatever the policy says
        paths = {s.path for s in summary.sources}
        catch = {c.catch_all.lower() for c in facts.firewall.iptables
                 if c.table == "filter" and c.name == "INPUT" and c.catch_all
                 and c.source.path in paths}
        if catch and catch <= _DENY:
            policy = catch.pop()
    started = bool(enabled_activity(facts.services, FIREWALLS[summary.mechanism]))
    if summary.mechanism == "ufw" and summary.enabled is not True:
        started = False
    state = f"{summary.mechanism}: input policy {policy}, {'enabled' if started else 'not enabled'}"
    return policy in _DENY and started, state


class FirewallParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    services: list[str] = Field(
        min_length=1, description="service keys whose being enabled calls for a firewall")

    _check = field_validator("services")(_known)


@check_type("firewall_default_deny", params_model=FirewallParams, missing=MissingPolicy.ERROR,
            needs=("services", "firewall"))
def firewall_default_deny(facts: Any, params: FirewallParams, rule: Rule) -> list[CheckResult]:
    """Fails when listed network services are enabled and no enabled firewall denies by default.

    A firewall counts when its saved configuration drops or rejects input by default
    (iptables ``:INPUT DROP`` or a final match-less ``-j DROP``/``REJECT``, an nftables input
    base chain with ``policy drop``, a firewalld default zone with a ``DROP``/``REJECT``
    target, ufw ``DEFAULT_INPUT_POLICY="DROP"``) *and* its service is enabled (ufw also
    needs ``ENABLED=yes``). The message lists the enabled services; passes when none is.

    Missing fact: without the services or firewall facts; ``error``.
    """
    running = [(key, active(facts, SERVICES[key])) for key in params.services]
    running = [(k, a) for k, a in running if a]
    if not running:
        return []
    states = [_firewall_state(facts, s) for s in facts.firewall.summaries if s.present]
    if any(ok for ok, _ in states):
        return []
    names = ", ".join(code(k) for k, _ in running)
    seen = "; ".join(s for _, s in states) or "no firewall configuration found"
    return [CheckResult(
        Status.FAIL,
        f"No enabled firewall denies incoming traffic by default while network services are "
        f"enabled: {names} ({seen})",
        resource="firewall",
        evidence=Evidence(observed=seen, expected="an enabled firewall with a drop/reject "
                          "input policy"))]
