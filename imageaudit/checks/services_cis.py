"""Check types over the daemons of the CIS Debian 12 / RHEL 9 "server services" sections.

- ``service_unneeded``: daemons a server image should not run at all, from a data table
  (``ruleset/data/cis-services.yaml``) giving their unit names, severity and CIS sections.
- ``cis_daemon_exposed``: daemons whose risk is in their configuration: what they listen on,
  whether they ask for a password, whether clients may write (rsync, squid, dovecot and
  Cyrus IMAP, CUPS, the mail transfer agents, dnsmasq, WebDAV and the file system root on
  Apache/nginx/lighttpd, the X server).

A daemon is judged only when it runs (see :mod:`imageaudit.checks.activity`); its settings
come from ``Facts.listeners`` (:mod:`imageaudit.facts.listeners.cis`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imageaudit.checks import MissingPolicy, check_type
from imageaudit.checks.activity import SERVICES, Activity, ServiceIdentity, active, describe
from imageaudit.checks.exposure import is_loopback
from imageaudit.facts.conftext import split_words
from imageaudit.findings import CheckResult, Rule, code
from imageaudit.model import Evidence, Severity, Status

# --- service_unneeded -----------------------------------------------------------------------


class TableEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(min_length=1)
    label: str = Field(min_length=1)
    units: list[str] = Field(default_factory=list)
    inetd: list[str] = Field(default_factory=list)
    programs: list[str] = Field(default_factory=list)
    severity: Severity | None = None
    risk: str = ""
    cis: list[str] = Field(default_factory=list)


class ServiceTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    services: list[TableEntry]


class TableError(Exception):
    """The daemon table could not be read or is not valid."""


@functools.lru_cache(maxsize=4)
def _table(path: Path, _stamp: tuple[int, int]) -> ServiceTable:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return ServiceTable.model_validate(raw)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValidationError) as exc:
        raise TableError(" ".join(str(exc).split())[:300]) from exc


def load_table(path: Path) -> ServiceTable:
    """The table at ``path`` (cached while its size and time stay the same)."""
    try:
        st = path.stat()
    except OSError as exc:
        raise TableError(exc.strerror or str(exc)) from exc
    return _table(path, (st.st_size, st.st_mtime_ns))


class UnneededParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    table: str = Field(default="data/cis-services.yaml",
                       description="the daemon table, relative to the rules tree")


def _evidence(acts: list[Activity], observed: str, expected: str) -> Evidence:
    src = next((a.source for a in acts if a.source is not None), None)
    return Evidence(path=src.path if src else None, line=src.line if src else None,
                    observed=observed, expected=expected)


@check_type("service_unneeded", params_model=UnneededParams, missing=MissingPolicy.ERROR,
            needs=("services",))
def service_unneeded(facts: Any, params: UnneededParams, rule: Rule) -> list[CheckResult]:
    """Fails once per table entry whose daemon runs, at the entry's severity.

    The table (YAML, ``version`` and ``services``) gives for each daemon its unit/script
    names, inetd/xinetd service names, program names (container commands), severity, the
    risk quoted in the message and the CIS recommendations naming it. "Runs" follows
    :mod:`imageaudit.checks.activity` (inetd entries only with their super-server enabled).
    A table that cannot be read is an ERROR.

    Missing fact: without the services facts enablement is unknown; ``error``.
    """
    path = rule.rules_dir / params.table
    try:
        table = load_table(path)
    except TableError as exc:
        return [CheckResult(Status.ERROR, f"Could not evaluate: the daemon table {path} could "
                            f"not be loaded: {exc}", evidence=Evidence(path=str(path)))]
    results = []
    for entry in table.services:
        ident = ServiceIdentity(entry.label, tuple(entry.units), tuple(entry.inetd),
                                tuple(entry.programs))
        acts = active(facts, ident)
        if not acts:
            continue
        risk = f"; {entry.risk}" if entry.risk else ""
        cis = f" ({entry.cis[0]})" if entry.cis else ""
        results.append(CheckResult(
            Status.FAIL, f"{entry.label} is enabled: {describe(acts)}{risk}{cis}",
            resource=entry.key, evidence=_evidence(acts, "enabled", "not enabled"),
            severity=entry.severity))
    return results


# --- daemon_exposed -------------------------------------------------------------------------

Daemon = Literal["rsync", "squid", "mail_access", "cups", "mta", "dnsmasq", "webdav", "webroot",
                 "x11"]

IDENTITIES: dict[str, ServiceIdentity] = {
    **{key: SERVICES[key] for key in ("rsync", "squid", "dovecot", "cyrus", "cups", "dnsmasq",
                                      "postfix", "exim4", "sendmail", "apache", "nginx",
                                      "lighttpd")},
    "x11": ServiceIdentity("the X server", ("gdm", "gdm3", "lightdm", "sddm", "xdm",
                                            "display-manager"), (),
                           ("Xorg", "X", "Xvfb", "startx", "xinit"), "x11"),
}

_FALSE = frozenset({"no", "false", "0", "off"})
_TRUE = frozenset({"yes", "true", "1", "on"})
_ANY_NET = frozenset({"0.0.0.0/0", "::/0", "0/0", "0.0.0.0/0.0.0.0", "all", "*", "any"})


def _at(setting: Any) -> str:
    return str(setting.source)


def _fail(message: str, resource: str, setting: Any, observed: str, expected: str,
          severity: Severity | None = None) -> CheckResult:
    src = setting.source if setting is not None else None
    return CheckResult(Status.FAIL, message, resource=resource,
                       evidence=Evidence(path=src.path if src else None,
                                         line=src.line if src else None,
                                         observed=observed, expected=expected),
                       severity=severity)


class CisExposedParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    daemon: Daemon = Field(description="the daemon (or family: `mta`, `webdav`) to judge")
    worse_severity: Severity = Field(
        default=Severity.HIGH,
        description="severity of the worse shape of the daemon: a writable rsync module, "
        "an open mail relay, clear-text IMAP/POP3 passwords without TLS, remote CUPS "
        "administration, a resolver listening on a public interface")


Evaluator = Callable[[Any, Any, str, CisExposedParams], list[CheckResult]]


# --- rsync ----------------------------------------------------------------------------------

def _top(d: Any, key: str) -> Any:
    """The last ``key`` outside every section (``DaemonConfig.last`` takes ``None`` as any)."""
    found = [s for s in d.values(key) if s.section is None]
    return found[-1] if found else None


def _by_section(d: Any) -> tuple[dict[str | None, dict[str, Any]], dict[str | None, Any]]:
    """Each section's settings (the last of each key) and its first setting, in one pass;
    sections in file order."""
    last: dict[str | None, dict[str, Any]] = {}
    first: dict[str | None, Any] = {}
    for s in d.settings:
        last.setdefault(s.section, {})[s.key] = s
        first.setdefault(s.section, s)
    return last, first


def _rsync(facts: Any, d: Any, acts: str, params: CisExposedParams) -> list[CheckResult]:
    sections, firsts = _by_section(d)
    top = sections.get(None, {})
    address = top.get("address")
    if address is not None and is_loopback(address.value):
        return []
    modules = [m for m in sections if m and m.lower() != "global"]
    results = []
    for module in modules:
        own = sections[module]

        def param(key: str, own: dict[str, Any] = own) -> Any:
            return own.get(key) or top.get(key)  # a module's parameter, else the global one

        users = param("auth users")
        if users is not None and users.value.strip():
            continue
        hosts = param("hosts allow")
        if hosts is not None and hosts.value.split() and all(
                is_loopback(h) for h in hosts.value.replace(",", " ").split()):
            continue
        first = firsts[module]
        path = param("path")
        what = f"{code(path.value)}" if path is not None else "its files"
        ro = param("read only")
        wo = param("write only")
        writable = ro is not None and ro.value.strip().lower() in _FALSE
        message = (f"rsync daemon module {code('[' + module + ']')} ({first.source.path}) "
                   f"serves {what} to anyone without a password (no {code('auth users')})")
        if hosts is not None:
            message += f", to the hosts {code(hosts.value)} ({_at(hosts)})"
        if writable:
            message += (f" and lets them write (`read only = {ro.value}`, {_at(ro)})")
        elif wo is not None and wo.value.strip().lower() in _TRUE:
            message += f" (`write only = {wo.value}`, {_at(wo)})"
        results.append(_fail(
            f"{message}; rsync is enabled: {acts}", f"[{module}]", path or first,
            "no auth users" + (", read only = no" if writable else ""),
            "auth users with a secrets file, or address = 127.0.0.1",
            params.worse_severity if writable else None))
    return results


def _rsync_runs(facts: Any, acts: list[Activity], d: Any) -> bool:
    """Debian's init script starts rsync only with ``RSYNC_ENABLE=true``."""
    enable = d.last("RSYNC_ENABLE")
    if enable is None or enable.value.strip().lower() == "true":
        return True
    return any(a.mechanism != "sysv" for a in acts)


# --- squid ----------------------------------------------------------------------------------

def _squid_universal(d: Any) -> set[str]:
    """ACL names that match every client: ``all`` and ``src`` ACLs of any address."""
    names = {"all"}
    for acl in d.values("acl"):
        words = acl.value.split()
        if len(words) >= 3 and words[1] in ("src", "src6") and any(
                w in _ANY_NET for w in words[2:]):
            names.add(words[0])
    return names


def _squid(facts: Any, d: Any, acts: str, params: CisExposedParams) -> list[CheckResult]:
    ports = d.values("http_port")
    hosts = [p.value.split()[0] for p in ports if p.value.split()]
    if hosts and all(":" in h and is_loopback(h.rsplit(":", 1)[0]) for h in hosts):
        return []
    universal = _squid_universal(d)
    rules = [r for r in d.values("http_access") if r.value.split()]
    verdict: tuple[str, Any, bool] | None = None
    for r in rules:
        action, *acls = r.value.split()
        if acls and all(a in universal for a in acls):
            verdict = (action.lower(), r, False)
            break
    if verdict is None and rules:
        last = rules[-1]
        opposite = "deny" if last.value.split()[0].lower() == "allow" else "allow"
        verdict = (opposite, last, True)
    if verdict is None or verdict[0] != "allow":
        return []
    _action, line, implicit = verdict
    how = (f"its last rule {code('http_access ' + line.value)} ({_at(line)}) is a deny, so "
           "every other client is allowed" if implicit else
           f"{code('http_access ' + line.value)} ({_at(line)}) allows every client")
    return [_fail(f"squid is an open proxy: {how}; squid is enabled: {acts}", "squid", line,
                  f"http_access {line.value}", "http_access deny all after the allowed "
                  "networks")]


# --- dovecot --------------------------------------------------------------------------------

def _dovecot(facts: Any, d: Any, acts: str, params: CisExposedParams) -> list[CheckResult]:
    listen = _top(d, "listen")
    if listen is not None and all(is_loopback(a.strip()) for a in listen.value.split(",")
                                  if a.strip()):
        return []
    protocols = _top(d, "protocols")
    if protocols is not None and not (set(protocols.value.split()) & {
            "imap", "pop3", "submission", "managesieve", "sieve"}):
        return []
    old = _top(d, "disable_plaintext_auth")
    new = _top(d, "auth_allow_cleartext")
    if old is not None and old.value.strip().lower() in _FALSE:
        setting = old
    elif new is not None and new.value.strip().lower() in _TRUE:
        setting = new
    else:
        return []
    ssl = _top(d, "ssl")
    ssl_value = ssl.value.strip().lower() if ssl is not None else "yes"
    if ssl_value == "required":
        return []
    where = (f"on {code(listen.value)} ({_at(listen)})" if listen is not None
             else f"on all interfaces (no {code('listen')})")
    head = (f"dovecot accepts clear-text passwords on connections without TLS "
            f"({code(setting.key + ' = ' + setting.value)}, {_at(setting)}) and listens {where}")
    if ssl_value == "no":
        return [_fail(f"{head}; TLS is off ({code('ssl = ' + ssl.value)}, {_at(ssl)}), so "
                      f"every login crosses the network readable; dovecot is enabled: {acts}",
                      "dovecot", setting, f"{setting.key} = {setting.value}, ssl = no",
                      "disable_plaintext_auth = yes and ssl = required",
                      params.worse_severity)]
    return [_fail(f"{head}; a client that does not start TLS sends its password in clear "
                  f"text; dovecot is enabled: {acts}", "dovecot", setting,
                  f"{setting.key} = {setting.value}", "disable_plaintext_auth = yes")]


# --- Cyrus IMAP -----------------------------------------------------------------------------

_CYRUS_LOGINS = frozenset({"imapd", "pop3d", "nntpd", "proxyd", "pop3proxyd"})


def _cyrus_plain_listeners(d: Any) -> list[tuple[Any, str]]:
    """SERVICES entries of login daemons without ``-s`` (TLS from the first byte) that
    listen beyond loopback: the entry and its ``listen=``."""
    out = []
    for s in d.settings:
        if s.section != "SERVICES":
            continue
        words = split_words(s.value) or s.value.split()
        args = dict(w.partition("=")[::2] for w in words if "=" in w)
        cmd = args.get("cmd", "").split()
        listen = args.get("listen", "")
        if not cmd or cmd[0].rsplit("/", 1)[-1] not in _CYRUS_LOGINS or "-s" in cmd[1:]:
            continue
        if not listen or listen.startswith("/"):
            continue
        host = listen.rsplit(":", 1)[0] if ":" in listen else ""
        if host and is_loopback(host):
            continue
        out.append((s, listen))
    return out


def _cyrus(facts: Any, d: Any, acts: str, params: CisExposedParams) -> list[CheckResult]:
    listeners = _cyrus_plain_listeners(d)
    if not listeners:
        return []
    names = ", ".join(f"{code(s.key)} on {code(listen)} ({_at(s)})" for s, listen in listeners[:3])
    anon = d.last("allowanonymouslogin")
    if anon is not None and anon.value.strip().lower() in _TRUE | {"t"}:
        return [_fail(f"Cyrus IMAP lets anyone log in without a password "
                      f"({code('allowanonymouslogin: ' + anon.value)}, {_at(anon)}) on {names}; "
                      f"Cyrus IMAP is enabled: {acts}", "cyrus", anon,
                      f"allowanonymouslogin: {anon.value}", "allowanonymouslogin: no",
                      params.worse_severity)]
    plain = d.last("allowplaintext")
    if plain is None or plain.value.strip().lower() not in _TRUE | {"t"}:
        return []  # cleartext logins need TLS first (the default)
    head = (f"Cyrus IMAP accepts clear-text passwords on connections without TLS "
            f"({code('allowplaintext: ' + plain.value)}, {_at(plain)}) on {names}")
    certs = [s for s in d.settings if s.key.endswith("tls_server_cert") and s.value.strip()]
    if not certs:
        return [_fail(f"{head}; no {code('tls_server_cert')} is set, so TLS is not offered and "
                      f"every login crosses the network readable; Cyrus IMAP is enabled: {acts}",
                      "cyrus", plain, f"allowplaintext: {plain.value}, no TLS certificate",
                      "allowplaintext: no with a TLS certificate", params.worse_severity)]
    return [_fail(f"{head}; a client that does not start TLS sends its password in clear text; "
                  f"Cyrus IMAP is enabled: {acts}", "cyrus", plain,
                  f"allowplaintext: {plain.value}", "allowplaintext: no")]


# --- CUPS -----------------------------------------------------------------------------------

def _cups_remote_listen(d: Any) -> list[Any]:
    out = []
    for s in d.values("listen"):
        value = s.value.strip()
        if not value or value.startswith("/"):
            continue
        host = value.rsplit(":", 1)[0] if ":" in value and not value.endswith("]") else value
        if not is_loopback(host):
            out.append(s)
    out.extend(d.values("port"))  # Port listens on every interface
    return out


def _cups(facts: Any, d: Any, acts: str, params: CisExposedParams) -> list[CheckResult]:
    remote = _cups_remote_listen(d)
    if not remote:
        return []
    listen = remote[0]
    shown = code(listen.key.capitalize() + " " + listen.value)
    head = f"cupsd listens on the network ({shown}, {_at(listen)})"
    admin = [s for s in d.settings if s.key == "allow"
             and (s.section or "").split(" > ")[0].lower() in ("location /admin",
                                                              "location /admin/conf")
             and not all(is_loopback(w) for w in s.value.split() if w.lower() != "from")]
    if admin:
        a = admin[0]
        return [_fail(f"{head} and allows remote administration ({code('Allow ' + a.value)} in "
                      f"{code('<' + (a.section or '') + '>')}, {_at(a)}); CUPS is enabled: "
                      f"{acts}", "cups", a, f"Allow {a.value} in {a.section}",
                      "Listen localhost:631, no remote Allow in /admin",
                      params.worse_severity)]
    extra = []
    browsing = d.last("browsing")
    if browsing is not None and browsing.value.strip().lower() in _TRUE:
        extra.append(f"shares its printers ({code('Browsing ' + browsing.value)}, "
                     f"{_at(browsing)})")
    shared = [s for s in d.settings if s.key == "allow"
              and (s.section or "").lower() == "location /"
              and not all(is_loopback(w) for w in s.value.split() if w.lower() != "from")]
    if shared:
        extra.append(f"accepts print jobs from {code(shared[0].value)} "
                     f"({_at(shared[0])})")
    tail = (", " + " and ".join(extra)) if extra else ""
    return [_fail(f"{head}{tail}; a server image has no print server to offer (CIS: ensure "
                  f"print server services are not in use); CUPS is enabled: {acts}",
                  "cups", listen, f"{listen.key} {listen.value}", "Listen localhost:631")]


# --- mail transfer agents -------------------------------------------------------------------

_POSTFIX_LOCAL = frozenset({"loopback-only", "localhost"})


def _words(value: str) -> list[str]:
    return [w for w in value.replace(",", " ").replace(";", " ").split() if w]


def _postfix(facts: Any, d: Any, acts: str, params: CisExposedParams) -> list[CheckResult]:
    services = d.values("service", "master.cf")
    if any(f.path.endswith("master.cf") for f in d.files):
        inet = []
        for s in services:
            words = s.value.split()
            if len(words) >= 8 and words[1] == "inet":
                host = words[0].rsplit(":", 1)[0] if ":" in words[0] else ""
                if not (host and is_loopback(host)):
                    inet.append(s)
        if not inet:
            return []
    iface = d.last("inet_interfaces")
    values = [v.lower() for v in _words(iface.value)] if iface is not None else ["all"]
    if all(v in _POSTFIX_LOCAL or is_loopback(v) for v in values):
        return []
    where = (f"{code('inet_interfaces = ' + iface.value)} ({_at(iface)})" if iface is not None
             else f"all interfaces (no {code('inet_interfaces')}; postfix listens on all by "
             "default)")
    networks = d.last("mynetworks")
    if networks is not None and set(_words(networks.value)) & _ANY_NET:
        return [_fail(f"postfix is an open relay: it accepts mail from "
                      f"{code('mynetworks = ' + networks.value)} ({_at(networks)}), every "
                      f"address, for any destination, and listens on {where}; postfix is "
                      f"enabled: {acts}", "postfix", networks,
                      f"mynetworks = {networks.value}", "mynetworks = 127.0.0.0/8 [::1]/128",
                      params.worse_severity)]
    return [_fail(f"postfix accepts mail from the network: it listens on {where} (CIS: the "
                  f"mail transfer agent is configured for local-only mode); postfix is "
                  f"enabled: {acts}", "postfix", iface, f"inet_interfaces = "
                  f"{iface.value if iface else 'all'}", "inet_interfaces = loopback-only")]


def _exim_host(value: str) -> str:
    """The address of an exim interface item; a port is appended with a dot
    (``127.0.0.1.587``, ``::1.587``)."""
    if ":" in value and "." in value.rsplit(":", 1)[-1]:
        return value.rsplit(".", 1)[0]
    return value.rsplit(".", 1)[0] if value.count(".") == 4 else value


def _exim4(facts: Any, d: Any, acts: str, params: CisExposedParams) -> list[CheckResult]:
    if not d.present:
        return []
    iface = d.last("dc_local_interfaces")
    values = [w for w in _words(iface.value) if w != "<"] if iface is not None else []
    if values and all(is_loopback(_exim_host(v)) for v in values):
        return []
    where = (f"{code('dc_local_interfaces=' + iface.value)} ({_at(iface)})"
             if iface is not None and values else "all interfaces (empty "
             f"{code('dc_local_interfaces')})")
    relay = d.last("dc_relay_nets")
    if relay is not None and set(_words(relay.value)) & _ANY_NET:
        return [_fail(f"exim is an open relay: it relays for "
                      f"{code('dc_relay_nets=' + relay.value)} ({_at(relay)}), every address, "
                      f"and listens on {where}; exim is enabled: {acts}", "exim4", relay,
                      f"dc_relay_nets={relay.value}", "dc_relay_nets=''",
                      params.worse_severity)]
    return [_fail(f"exim accepts mail from the network: it listens on {where} (CIS: the mail "
                  f"transfer agent is configured for local-only mode); exim is enabled: {acts}",
                  "exim4", iface, f"dc_local_interfaces={iface.value if iface else ''}",
                  "dc_local_interfaces='127.0.0.1 ; ::1'")]


def _sendmail(facts: Any, d: Any, acts: str, params: CisExposedParams) -> list[CheckResult]:
    if not d.present:
        return []
    opts = d.values("DaemonPortOptions")
    remote = []
    for s in opts:
        fields = dict(f.strip().partition("=")[::2] for f in s.value.split(","))
        addr = fields.get("Addr") or fields.get("Address")
        if not (addr and is_loopback(addr)):
            remote.append(s)
    if opts and not remote:
        return []
    if remote:
        s = remote[0]
        where = f"{code('DaemonPortOptions=' + s.value)} ({_at(s)})"
    else:
        s = None
        where = f"all interfaces (no {code('DaemonPortOptions')})"
    return [_fail(f"sendmail accepts mail from the network: it listens on {where} (CIS: the "
                  f"mail transfer agent is configured for local-only mode); sendmail is "
                  f"enabled: {acts}", "sendmail", s, s.value if s else "no DaemonPortOptions",
                  "DaemonPortOptions=Port=smtp,Addr=127.0.0.1, Name=MTA")]


# --- dnsmasq --------------------------------------------------------------------------------

def _dnsmasq(facts: Any, d: Any, acts: str, params: CisExposedParams) -> list[CheckResult]:
    port = d.last("port")
    if port is not None and port.value.strip() == "0":
        return []  # DNS off (DHCP/TFTP only)
    ifaces = [s for s in d.settings if s.key in ("interface", "listen-address",
                                                 "except-interface", "auth-server")]
    remote = []
    for s in ifaces:
        values = [v.strip() for v in s.value.split(",") if v.strip()]
        if s.key == "interface" and all(v == "lo" for v in values):
            continue
        if s.key == "listen-address" and all(is_loopback(v) for v in values):
            continue
        remote.append(s)
    if ifaces and not remote:
        return []
    if remote:
        s = remote[0]
        return [_fail(f"dnsmasq answers DNS queries from anyone who reaches "
                      f"{code(s.key + '=' + s.value)} ({_at(s)}) and resolves recursively "
                      f"for them: an open resolver; dnsmasq is enabled: {acts}", "dnsmasq", s,
                      f"{s.key}={s.value}", "listen-address=127.0.0.1, or port=0",
                      params.worse_severity)]
    return [_fail(f"dnsmasq answers DNS queries on every interface (no {code('interface')} "
                  f"or {code('listen-address')}): from every host on the machine's networks "
                  f"with {code('--local-service')} (which Debian's scripts add), from anyone "
                  f"without it; dnsmasq is enabled: {acts}", "dnsmasq",
                  d.last("local-service"), "no interface options",
                  "listen-address=127.0.0.1, or port=0")]


# --- WebDAV ---------------------------------------------------------------------------------

MAX_DIRECTIVES = 200  # directives judged one by one per daemon; the rest is an ERROR


def _bounded(found: list[Any], daemon: str, what: str) -> tuple[list[Any], list[CheckResult]]:
    """The first :data:`MAX_DIRECTIVES` of ``found``; an ERROR naming the rest (never a PASS)."""
    if len(found) <= MAX_DIRECTIVES:
        return found, []
    rest = found[MAX_DIRECTIVES:]
    return found[:MAX_DIRECTIVES], [CheckResult(
        Status.ERROR, f"Could not evaluate {len(rest)} more {daemon} {code(what)} directives "
        f"(only the first {MAX_DIRECTIVES} are judged; the next is at {_at(rest[0])})",
        resource=f"{daemon} {what}", evidence=Evidence(path=rest[0].source.path,
                                                       line=rest[0].source.line,
                                                       observed=f"{len(found)} directives"))]

_APACHE_AUTH = ("valid-user", "user", "group", "ldap-", "file-", "dbm-", "expr")
_NGINX_WRITES = frozenset({"PUT", "DELETE", "MKCOL", "COPY", "MOVE"})


def _related(section: str | None, other: str | None) -> bool:
    """``other`` encloses ``section``, is ``section``, or is inside it."""
    a, b = section or "", other or ""
    return a == b or a.startswith(b + " > ") or b.startswith(a + " > ") or b == ""


def _apache_guarded(requires: list[Any], section: str | None) -> bool:
    for s in requires:
        if not _related(section, s.section):
            continue
        words = s.value.lower().split()
        if "not" in words[:1]:
            continue
        if words[:1] and words[0].startswith(_APACHE_AUTH):
            return True
        if words[:2] == ["all", "denied"] and s.section == section:
            return True
        if words[:1] in (["ip"], ["host"], ["local"]) and all(
                is_loopback(w) for w in words[1:] or ["localhost"]):
            return True
    return False


def _apache_dav(facts: Any, d: Any, acts: str, params: CisExposedParams) -> list[CheckResult]:
    found, results = _bounded(list(d.values("dav")), "Apache", "Dav")
    requires = list(d.values("require")) if found else []
    for s in found:
        if s.value.strip().lower() not in ("on", "filesystem", "svn"):
            continue
        if _apache_guarded(requires, s.section):
            continue
        where = f"{code('<' + s.section + '>')}" if s.section else "the whole server"
        results.append(_fail(
            f"Apache serves WebDAV in {where} without authentication ({code('Dav ' + s.value)},"
            f" {_at(s)}, and no {code('Require valid-user')}): anyone can upload, overwrite "
            f"and delete files there; Apache httpd is enabled: {acts}", str(s.source), s,
            f"Dav {s.value}", "AuthType with Require valid-user around Dav On"))
    return results


_NGINX_GUARDS = frozenset({"auth_basic", "auth_request", "auth_jwt", "deny"})


def _nginx_guards(d: Any) -> list[Any]:
    return [s for s in d.settings if s.key in _NGINX_GUARDS]


def _nginx_guarded(guards: list[Any], section: str | None) -> bool:
    for s in guards:
        if not _related(section, s.section):
            continue
        if s.key in ("auth_basic", "auth_request", "auth_jwt") and s.value.strip() != "off":
            return True
        if s.key == "deny" and s.value.strip() == "all":
            return True
    return False


def _nginx_dav(facts: Any, d: Any, acts: str, params: CisExposedParams) -> list[CheckResult]:
    found, results = _bounded(list(d.values("dav_methods")), "nginx", "dav_methods")
    guards = _nginx_guards(d) if found else []
    for s in found:
        methods = set(s.value.upper().split()) & _NGINX_WRITES
        if not methods or _nginx_guarded(guards, s.section):
            continue
        where = code(s.section) if s.section else "the whole server"
        results.append(_fail(
            f"nginx accepts WebDAV writes in {where} without authentication "
            f"({code('dav_methods ' + s.value)}, {_at(s)}, and no {code('auth_basic')} or "
            f"{code('deny all')}): anyone can upload, overwrite and delete files there; nginx "
            f"is enabled: {acts}", str(s.source), s, f"dav_methods {s.value}",
            "auth_basic (or limit_except GET with deny all) around dav_methods"))
    return results


def _lighttpd_value(setting: Any) -> str:
    value = str(setting.value).split("#", 1)[0].strip()
    return value.strip('"').strip().lower()


def _lighttpd_dav(facts: Any, d: Any, acts: str, params: CisExposedParams) -> list[CheckResult]:
    found, results = _bounded(list(d.values("webdav.activate")), "lighttpd", "webdav.activate")
    guards = [x for x in d.settings if x.key in ("webdav.is-readonly", "auth.require")] \
        if found else []
    for s in found:
        if _lighttpd_value(s) != "enable":
            continue
        related = [x for x in guards if _related(s.section, x.section)]
        readonly = [x for x in related if x.key == "webdav.is-readonly"]
        if readonly and _lighttpd_value(readonly[-1]) == "enable":
            continue
        if any(x.key == "auth.require" for x in related):
            continue
        where = code(s.section) if s.section else "the whole server"
        results.append(_fail(
            f"lighttpd accepts WebDAV writes in {where} without authentication "
            f"({code(s.key + ' = ' + s.value)}, {_at(s)}, no {code('auth.require')}, and "
            f"{code('webdav.is-readonly')} is off by default): anyone can upload, overwrite "
            f"and delete files there; lighttpd is enabled: {acts}", str(s.source), s,
            f"{s.key} = {s.value}", 'auth.require around it, or webdav.is-readonly = "enable"'))
    return results


# --- a web server serving the file system root ---------------------------------------------

def _is_root(path: str) -> bool:
    return path.strip().strip("'\"").rstrip("/") == ""


def _apache_root(facts: Any, d: Any, acts: str, params: CisExposedParams) -> list[CheckResult]:
    maps = [s for s in d.values("documentroot") if s.value.split() and _is_root(s.value)]
    maps += [s for s in d.values("alias") if len(s.value.split()) >= 2
             and _is_root(s.value.split()[1])]
    if not maps:
        return []
    granted = [s for s in d.values("require") if (s.section or "").split(" > ")[-1]
               .lower() in ("directory /", 'directory "/"')
               and s.value.lower().split()[:2] == ["all", "granted"]]
    if not granted:
        return []  # <Directory /> denies (Debian and RHEL ship "Require all denied")
    m, g = maps[0], granted[-1]
    shown = {"documentroot": "DocumentRoot", "alias": "Alias"}[m.key] + " " + m.value
    return [_fail(f"Apache serves the whole file system: {code(shown)}"
                  f" ({_at(m)}) maps the root directory and {code('Require all granted')} "
                  f"({_at(g)}) opens {code('<Directory />')} to every client; Apache httpd is "
                  f"enabled: {acts}", str(m.source), m, f"{m.key} {m.value}",
                  "a document root of its own, <Directory /> Require all denied")]


def _nginx_root(facts: Any, d: Any, acts: str, params: CisExposedParams) -> list[CheckResult]:
    roots = [s for s in d.settings if s.key in ("root", "alias") and _is_root(s.value)]
    found, results = _bounded(roots, "nginx", "root /")
    guards = _nginx_guards(d) if found else []
    indexes = [a for a in d.values("autoindex") if a.value.strip() == "on"] if found else []
    for s in found:
        if _nginx_guarded(guards, s.section):
            continue
        where = code(s.section) if s.section else "the whole server"
        listing = [a for a in indexes if _related(s.section, a.section)]
        extra = f", and lists its directories ({code('autoindex on')}, {_at(listing[0])})" \
            if listing else ""
        results.append(_fail(
            f"nginx serves the whole file system in {where} ({code(s.key + ' ' + s.value)}, "
            f"{_at(s)}) to every client{extra}; nginx is enabled: {acts}", str(s.source), s,
            f"{s.key} {s.value}", "a document root of its own"))
    return results


# --- X server -------------------------------------------------------------------------------

def _listens_tcp(words: list[str]) -> bool:
    state = False
    for i, w in enumerate(words[:-1]):
        if w == "-listen" and words[i + 1] == "tcp":
            state = True
        elif w == "-nolisten" and words[i + 1] == "tcp":
            state = False
    return state


def _x11_tcp(s: Any) -> bool:
    value = s.value.strip().lower()
    if s.key == "DisallowTCP":
        return (s.section or "").lower() == "security" and value in _FALSE
    if s.key == "xserver-allow-tcp":
        return value in _TRUE
    return s.key in ("ServerArguments", "command", "xserver-command") and _listens_tcp(
        s.value.split())


def _x11(facts: Any, d: Any, acts: str, params: CisExposedParams) -> list[CheckResult]:
    found = [s for s in d.settings if _x11_tcp(s)]
    return [_fail(f"The X server accepts clients over TCP ({code(s.key + '=' + s.value)}, "
                  f"{_at(s)}): the X protocol (port 6000) lets a connected client read "
                  f"keystrokes and the screen; {acts}", str(s.source), s,
                  f"{s.key}={s.value}", "-nolisten tcp (DisallowTCP=true)")
            for s in found]


_EVALUATORS: dict[str, list[tuple[str, Evaluator]]] = {
    "rsync": [("rsync", _rsync)],
    "squid": [("squid", _squid)],
    "mail_access": [("dovecot", _dovecot), ("cyrus", _cyrus)],
    "cups": [("cups", _cups)],
    "mta": [("postfix", _postfix), ("exim4", _exim4), ("sendmail", _sendmail)],
    "dnsmasq": [("dnsmasq", _dnsmasq)],
    "webdav": [("apache", _apache_dav), ("nginx", _nginx_dav), ("lighttpd", _lighttpd_dav)],
    "webroot": [("apache", _apache_root), ("nginx", _nginx_root)],
    "x11": [("x11", _x11)],
}


@check_type("cis_daemon_exposed", params_model=CisExposedParams, missing=MissingPolicy.ERROR,
            needs=("services", "listeners"))
def cis_daemon_exposed(facts: Any, params: CisExposedParams, rule: Rule) -> list[CheckResult]:
    """Fails when a running daemon is reachable beyond loopback in an unsafe shape.

    - ``rsync``: once per rsyncd module without ``auth users`` (unless ``address`` or
      ``hosts allow`` is loopback only); ``worse_severity`` with ``read only = no``. Debian's
      init script needs ``RSYNC_ENABLE=true`` in ``/etc/default/rsync``.
    - ``squid``: the first ``http_access`` line whose ACLs all match every client (``all``,
      a ``src`` of ``0.0.0.0/0``) allows, or no line matches every client and the last one
      is a deny (squid then allows the rest); passes when every ``http_port`` is loopback.
    - ``mail_access``: dovecot with ``disable_plaintext_auth = no`` (2.3) or
      ``auth_allow_cleartext = yes`` (2.4) while listening beyond loopback (``listen``, all
      by default) and ``ssl`` is not ``required``, ``worse_severity`` with ``ssl = no``;
      Cyrus IMAP with ``allowplaintext: yes`` and a cyrus.conf IMAP/POP3/NNTP service
      without ``-s`` listening beyond loopback, ``worse_severity`` without any
      ``tls_server_cert`` or with ``allowanonymouslogin: yes``.
    - ``cups``: ``Listen`` on a non-loopback address or ``Port``; ``worse_severity`` when
      ``<Location /admin>`` allows a non-loopback client.
    - ``mta``: postfix ``inet_interfaces`` not loopback (``all`` by default) with an ``inet``
      service in ``master.cf``, exim4 ``dc_local_interfaces`` empty or not loopback, sendmail
      without a loopback ``Addr=`` in every ``DaemonPortOptions``; ``worse_severity`` for an
      open relay (``mynetworks``/``dc_relay_nets`` of every address).
    - ``dnsmasq``: DNS on (``port`` not 0) without loopback-only ``interface``/
      ``listen-address``: at the rule's severity when no interface option limits it
      (``local-service`` answers local subnets only), ``worse_severity`` when an interface
      option names a network interface.
    - ``webdav``: Apache ``Dav On`` without a ``Require`` of authenticated users (or loopback
      hosts) around it, nginx ``dav_methods`` with write methods without ``auth_basic``/
      ``auth_request``/``deny all`` around it, lighttpd ``webdav.activate = "enable"``
      without ``auth.require`` and not ``webdav.is-readonly``; once per directive.
    - ``webroot``: a web server serving the file system root: Apache ``DocumentRoot /``
      or an ``Alias`` to ``/`` while ``<Directory />`` has ``Require all granted``, nginx
      ``root /``/``alias /`` without ``deny all`` or authentication around it (naming
      ``autoindex on``); once per directive.
    - ``x11``: the X server listening on TCP: gdm ``[security] DisallowTCP=false``, lightdm
      ``xserver-allow-tcp=true``, sddm ``ServerArguments`` or an X command line
      (``xserverrc``, xdm ``Xservers``) with ``-listen tcp``; judged when a display manager
      runs or an X server is installed.

    Web server directives are judged one by one up to 200 of a kind; the rest give one
    ERROR, never a PASS.

    Missing fact: without services or listeners facts; ``error``.
    """
    results: list[CheckResult] = []
    for daemon, evaluate in _EVALUATORS[params.daemon]:
        ident = IDENTITIES[daemon]
        acts = active(facts, ident)
        for config in facts.listeners.get(daemon):
            if daemon == "x11" and not acts and config.executables:
                text = f"the X server {code(config.executables[0])} is installed"
            elif not acts:
                continue
            else:
                text = ("it runs: " if daemon == "x11" else "") + describe(acts)
            if daemon == "rsync" and not _rsync_runs(facts, acts, config):
                continue
            results.extend(evaluate(facts, config, text, params))
    return results
