"""The ``daemon_unauthenticated`` check type: data stores reachable without authentication.

One evaluator per daemon reads its :class:`~imageaudit.facts.listeners.model.DaemonConfig`
(and ``pg_hba.conf`` records), applying the upstream default for every absent setting
(:data:`~imageaudit.facts.listeners.model.DEFAULT_BIND`). Judged only when the daemon runs
(see :mod:`imageaudit.checks.activity`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from imageaudit.checks import MissingPolicy, check_type
from imageaudit.checks.activity import SERVICES, active, describe
from imageaudit.checks.exposure import is_loopback
from imageaudit.findings import CheckResult, Rule, code
from imageaudit.model import Evidence, Severity, Status

Daemon = Literal["redis", "mongodb", "memcached", "elasticsearch", "mysql", "postgresql"]
_TRUE = frozenset({"", "1", "on", "true", "yes", "enabled"})


def _shown(setting: Any) -> str:
    return f"{code(setting.key + ' ' + setting.value)}, {setting.source}"


def _fail(message: str, resource: str, setting: Any, observed: str, expected: str,
          severity: Severity | None = None) -> CheckResult:
    src = setting.source if setting is not None else None
    return CheckResult(Status.FAIL, message, resource=resource,
                       evidence=Evidence(path=src.path if src else None,
                                         line=src.line if src else None,
                                         observed=observed, expected=expected),
                       severity=severity)


def _remote(addresses: list[str]) -> list[str]:
    return [a for a in addresses if not is_loopback(a)]


# --- redis ----------------------------------------------------------------------------------

def _redis_auth(d: Any) -> bool | None:
    """True with a password, False without, None when the ``aclfile`` could not be read.

    With an ``aclfile`` its ``user`` lines replace ``requirepass`` and the ``user`` lines of
    redis.conf; a file that does not define ``default`` leaves it ``on nopass``.
    """
    acl = d.last("aclfile")
    if acl is not None and d.last("aclfile-unread") is not None:
        return None
    req = d.last("requirepass")
    if acl is None and req is not None and req.value.strip().strip("'\"") != "":
        return True
    key = "acluser" if acl is not None else "user"
    users = [s for s in d.values(key) if s.value.split()[:1] == ["default"]]
    if users:
        # a user defined by a line starts "off" with no password; rules apply in order
        enabled, nopass = False, False
        for w in users[-1].value.split()[1:]:
            if w in ("on", "off"):
                enabled = w == "on"
            elif w.startswith((">", "#")) or w in ("resetpass", "reset"):
                nopass = False
                enabled = enabled and w != "reset"
            elif w == "nopass":
                nopass = True
        return not (enabled and nopass)
    return False


def _redis(facts: Any, d: Any, acts: str) -> list[CheckResult]:
    bind = d.last("bind")
    addrs = [a.lstrip("-") for a in bind.value.split()] if bind else ["*"]
    remote = _remote(addrs)
    if not remote:
        return []
    auth = _redis_auth(d)
    resource = d.instance or "redis"
    if auth:
        return []
    if auth is None:
        acl = d.last("aclfile")
        why = d.last("aclfile-unread").value
        return [CheckResult(Status.ERROR, f"Could not evaluate Redis {code(resource)}: its "
                            f"users are defined in {code(acl.value)} ({acl.source}), and "
                            f"{code(why)}", resource=resource,
                            evidence=Evidence(path=acl.source.path, line=acl.source.line,
                                              observed=f"aclfile {acl.value}"))]
    pm = d.last("protected-mode")
    protected = pm is None or pm.value.strip().lower() != "no"
    where = f"{code(' '.join(remote))} ({_shown(bind)})" if bind else \
        f"all interfaces (no {code('bind')})"
    if protected and bind is None:
        return []  # protected mode then only accepts loopback clients, in every version
    head = f"Redis {code(resource)} listens on {where} without a password"
    if not protected:
        return [_fail(f"{head} and with {code('protected-mode no')} ({pm.source}); it is "
                      f"enabled: {acts}", resource, pm, "protected-mode no, no requirepass",
                      "requirepass or a loopback bind")]
    return [_fail(f"{head}; protected mode only refuses remote clients from Redis 7.0 on "
                  f"(earlier versions skip it when {code('bind')} is set); it is enabled: "
                  f"{acts}", resource, bind, f"bind {bind.value}, no requirepass",
                  "requirepass or a loopback bind", Severity.MODERATE)]


# --- MongoDB --------------------------------------------------------------------------------

def _mongodb(facts: Any, d: Any, acts: str) -> list[CheckResult]:
    bind_all = d.last("net.bindIpAll")
    bind = d.last("net.bindIp") or d.last("bind_ip")
    if bind_all is not None and bind_all.value.strip().lower() in ("true", "1", "yes"):
        where, setting = f"all interfaces ({_shown(bind_all)})", bind_all
    elif bind is not None and _remote([a.strip() for a in bind.value.split(",") if a.strip()]):
        where, setting = f"{code(bind.value)} ({_shown(bind)})", bind
    else:
        return []
    authz = d.last("security.authorization")
    if authz is not None and authz.value.strip().lower() == "enabled":
        return []
    if d.last("security.keyFile") is not None or d.last("keyFile") is not None:
        return []  # a key file switches access control on
    legacy = d.last("auth")
    if legacy is not None and legacy.value.strip().lower() == "true":
        return []
    why = (f"{code('security.authorization')} is {code(authz.value)} ({authz.source})"
           if authz is not None else f"{code('security.authorization')} is not set (off by "
           "default)")
    return [_fail(f"MongoDB listens on {where} without access control: {why}; it is enabled: "
                  f"{acts}", "mongodb", setting, f"{setting.key} {setting.value}",
                  "security.authorization: enabled or a loopback bindIp")]


# --- memcached ------------------------------------------------------------------------------

def _memcached(facts: Any, d: Any, acts: str) -> list[CheckResult]:
    listens = d.values("-l")
    addrs = [a.strip() for s in listens for a in s.value.split(",") if a.strip()]
    if listens and not _remote(addrs):
        return []
    if any(d.values(k) for k in ("-S", "--enable-sasl", "-Y", "--auth-file")):
        return []
    setting = listens[-1] if listens else None
    where = (f"{code(', '.join(_remote(addrs)))} ({setting.source})" if setting
             else f"all interfaces (no {code('-l')})")
    return [_fail(f"memcached listens on {where} without authentication (no {code('-S')} "
                  f"SASL); it is enabled: {acts}", "memcached", setting,
                  f"-l {setting.value}" if setting else "no -l", "-l 127.0.0.1")]


# --- Elasticsearch --------------------------------------------------------------------------

_ES_LOCAL = frozenset({"_local_", "_local:ipv4_", "_local:ipv6_"})


def _elasticsearch(facts: Any, d: Any, acts: str) -> list[CheckResult]:
    host = d.last("http.host") or d.last("network.host")
    if host is None:
        return []
    addrs = [a.strip().strip("[]") for a in host.value.split(",") if a.strip()]
    remote = [a for a in addrs if a not in _ES_LOCAL and not is_loopback(a)]
    if not remote:
        return []
    sec = d.last("xpack.security.enabled")
    if sec is not None and sec.value.strip().lower() == "true":
        return []
    why = (f"{code('xpack.security.enabled')} is {code(sec.value)} ({sec.source})" if sec
           else f"{code('xpack.security.enabled')} is not set (security is off by default "
           "before Elasticsearch 8.0)")
    return [_fail(f"Elasticsearch listens on {code(', '.join(remote))} ({_shown(host)}) "
                  f"without authentication: {why}; it is enabled: {acts}", "elasticsearch",
                  host, f"{host.key} {host.value}", "xpack.security.enabled: true")]


# --- MySQL / MariaDB ------------------------------------------------------------------------

_MYSQL_SECTIONS = frozenset({"mysqld", "server", "mariadb", "mariadbd", "client-server",
                             "galera"})


def _mysql_option(d: Any, name: str) -> Any:
    found = None
    for s in d.settings:
        section = s.section or ""
        if not (section in _MYSQL_SECTIONS or section.startswith(("mysqld-", "mariadb-"))):
            continue
        if s.key in (name, f"loose-{name}"):
            found = s
    return found


def _mysql(facts: Any, d: Any, acts: str) -> list[CheckResult]:
    skip = _mysql_option(d, "skip-grant-tables")
    if skip is None or skip.value.strip().lower() not in _TRUE:
        return []
    nonet = _mysql_option(d, "skip-networking")
    bind = _mysql_option(d, "bind-address")
    addrs = [a.strip() for a in bind.value.split(",")] if bind else ["*"]
    networked = (nonet is None or nonet.value.strip().lower() not in _TRUE) and bool(
        _remote(addrs))
    head = (f"MySQL/MariaDB checks no passwords or privileges ({code(skip.key)}, "
            f"{skip.source})")
    if networked:
        where = code(bind.value) if bind else f"all interfaces (no {code('bind-address')})"
        return [_fail(f"{head} and listens on {where}: anyone who can reach it is "
                      f"administrator (MariaDB keeps networking on; MySQL 8.0 turns it off); "
                      f"it is enabled: {acts}", "mysql", skip, skip.key,
                      "no skip-grant-tables", Severity.CRITICAL)]
    return [_fail(f"{head}: every local user is database administrator; it is enabled: {acts}",
                  "mysql", skip, skip.key, "no skip-grant-tables")]


# --- PostgreSQL -----------------------------------------------------------------------------

def _hba_remote(entry: Any) -> bool:
    address = (entry.address or "").lower()
    if address in ("all", "samenet"):
        return True
    if address in ("samehost", "localhost"):
        return False
    try:
        if entry.netmask:
            net = ipaddress.ip_network(f"{address}/{entry.netmask}", strict=False)
        else:
            net = ipaddress.ip_network(address, strict=False)
    except ValueError:
        return True  # a host name or domain suffix (".example.org"): remote hosts
    return not is_loopback(str(net))


def _postgresql(facts: Any, d: Any, acts: str) -> list[CheckResult]:
    listen = d.last("listen_addresses")
    if listen is None:
        return []
    remote = _remote([a.strip() for a in listen.value.split(",") if a.strip()])
    if not remote:
        return []
    results = []
    for e in facts.listeners.pg_hba:
        if e.cluster != d.instance or e.type == "local" or e.method.lower() != "trust":
            continue
        if not _hba_remote(e):
            continue
        line = " ".join(x for x in (e.type, e.database, e.user, e.address, e.netmask, e.method)
                        if x)
        results.append(CheckResult(
            Status.FAIL,
            f"PostgreSQL {code(d.instance)} listens on {code(listen.value)} ({listen.source}) "
            f"and trusts remote clients without a password: {code(line)} ({e.source}); it is "
            f"enabled: {acts}",
            resource=str(e.source),
            evidence=Evidence(path=e.source.path, line=e.source.line, observed=line,
                              expected="scram-sha-256 (or a loopback address) for host lines")))
    return results


Evaluator = Callable[[Any, Any, str], list[CheckResult]]
_EVALUATORS: dict[str, Evaluator] = {
    "redis": _redis, "mongodb": _mongodb, "memcached": _memcached,
    "elasticsearch": _elasticsearch, "mysql": _mysql, "postgresql": _postgresql,
}


class UnauthParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    daemon: Daemon = Field(description="the data store to judge")


@check_type("daemon_unauthenticated", params_model=UnauthParams, missing=MissingPolicy.ERROR,
            needs=("services", "listeners"))
def daemon_unauthenticated(facts: Any, params: UnauthParams, rule: Rule) -> list[CheckResult]:
    """Fails when a running data store listens beyond loopback without authentication.

    - ``redis``: ``bind`` absent or non-loopback, no ``requirepass`` and no password for the
      ``default`` ACL user, and ``protected-mode no``; with protected mode on and an explicit
      non-loopback ``bind`` it fails at ``moderate`` (Redis < 7.0 then skips protected mode).
      Users kept in an ``aclfile`` are read from it (its ``default`` user, or ``on nopass``
      when the file does not define one); an ``aclfile`` not in the image gives ERROR.
    - ``mongodb``: ``net.bindIpAll`` or a non-loopback ``net.bindIp`` without
      ``security.authorization: enabled`` (a ``keyFile`` also switches it on).
    - ``memcached``: no ``-l`` (all interfaces) or a non-loopback one, without SASL ``-S``.
    - ``elasticsearch``: ``http.host``/``network.host`` non-local without
      ``xpack.security.enabled: true``.
    - ``mysql``: ``skip-grant-tables`` in a server section; ``critical`` when networking is on
      and ``bind-address`` is not loopback.
    - ``postgresql``: ``listen_addresses`` non-loopback and a ``pg_hba.conf`` ``host`` line
      with ``trust`` for non-loopback addresses (one finding per line).

    Missing fact: without services or listeners facts; ``error``.
    """
    acts = active(facts, SERVICES[params.daemon])
    if not acts:
        return []
    text = describe(acts)
    results: list[CheckResult] = []
    for daemon in facts.listeners.get(params.daemon):
        results.extend(_EVALUATORS[params.daemon](facts, daemon, text))
    return results
