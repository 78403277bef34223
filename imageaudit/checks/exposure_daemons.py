"""The ``daemon_exposed`` check type: remote-control daemons reachable without authentication.

One evaluator per daemon reads its :class:`~imageaudit.facts.listeners.model.DaemonConfig`
(upstream defaults for every absent setting); VNC, X access control and slapd are in
:mod:`imageaudit.checks.exposure_desktop`. Judged only when the daemon runs (see
:mod:`imageaudit.checks.activity`), and only what listens beyond loopback fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from imageaudit.checks import MissingPolicy, check_type
from imageaudit.checks.activity import (
    SERVICES,
    Activity,
    ServiceIdentity,
    active,
    container_command,
    describe,
)
from imageaudit.checks.exposure import is_loopback
from imageaudit.checks.exposure_db import _TRUE, _fail, _mysql_option, _remote, _shown
from imageaudit.checks.exposure_desktop import (
    LDAP,
    VNC,
    XACCESS,
    slapd_exposed,
    vnc_exposed,
    xaccess_exposed,
)
from imageaudit.facts.conftext import Setting
from imageaudit.facts.listeners.mysqldata import is_local_host
from imageaudit.findings import CheckResult, code
from imageaudit.model import Evidence, Severity, Source, Status

Daemon = Literal["dockerd", "kubelet", "jupyter", "vnc", "x11-access", "slapd", "mysql"]
_OFF = frozenset({"0", "false", "no", "off"})

DOCKER = SERVICES["docker"]
KUBELET = SERVICES["kubelet"]
JUPYTER = SERVICES["jupyter"]


def _host_of(address: str) -> str:
    """The host of ``tcp://host:port``, ``host:port`` or ``[v6]:port``; ``""`` for any."""
    rest = address.split("://", 1)[-1].split("/", 1)[0]
    if rest.startswith("["):
        return rest[1:rest.find("]")] if "]" in rest else rest[1:]
    return rest.rsplit(":", 1)[0] if rest.count(":") == 1 else rest


# --- dockerd --------------------------------------------------------------------------------

def _dockerd(facts: Any, d: Any, acts: list[Activity]) -> list[CheckResult]:
    if not acts:
        return []
    tcp = [s for s in d.values("-H")
           if not s.value.startswith(("unix://", "fd://", "ssh://", "npipe://"))
           and s.value.strip()]
    remote = [s for s in tcp if not (_host_of(s.value) and is_loopback(_host_of(s.value)))]
    if not remote:
        return []
    verify = d.last("--tlsverify")
    if verify is not None and verify.value.strip().lower() not in _OFF:
        return []
    tls = d.last("--tls")
    why = (f"with TLS but without client verification ({_shown(tls)})"
           if tls is not None and tls.value.strip().lower() not in _OFF
           else f"without TLS (no {code('--tlsverify')})")
    host = remote[0]
    return [_fail(f"dockerd listens on {code(host.value)} ({host.source}) {why}: anyone who "
                  f"reaches it controls the Docker engine, which is root on the host; it is "
                  f"enabled: {describe(acts)}", "dockerd", host, f"-H {host.value}",
                  "no tcp:// host, or --tlsverify with client certificates")]


# --- kubelet --------------------------------------------------------------------------------

_KUBELET_KEYS = {  # flag -> KubeletConfiguration field
    "--anonymous-auth": "authentication.anonymous.enabled",
    "--authorization-mode": "authorization.mode",
    "--read-only-port": "readOnlyPort",
    "--address": "address",
}


def _kubelet_value(d: Any, flag: str, with_config: bool) -> Any:
    """The flag's setting, else the config file's, else ``None`` (the caller's default)."""
    found = d.last(flag)
    if found is None and with_config:
        found = d.last(_KUBELET_KEYS[flag], "config")
    return found


def _kubelet(facts: Any, d: Any, acts: list[Activity]) -> list[CheckResult]:
    if not acts or d.last("config-absent") is not None:
        return []  # kubeadm writes the config at join time; the kubelet waits for it
    with_config = d.last("--config") is not None
    # flag defaults differ from KubeletConfiguration (v1beta1) defaults
    defaults = {"--anonymous-auth": ("true", "false"), "--authorization-mode":
                ("AlwaysAllow", "Webhook"), "--read-only-port": ("10255", "0"),
                "--address": ("0.0.0.0", "0.0.0.0")}

    def get(flag: str) -> tuple[str, Any]:
        s = _kubelet_value(d, flag, with_config)
        if s is None:
            return defaults[flag][1 if with_config else 0], None
        return s.value.strip(), s

    address, _a = get("--address")
    if address and is_loopback(address):
        return []
    anon, anon_s = get("--anonymous-auth")
    mode, mode_s = get("--authorization-mode")
    port, port_s = get("--read-only-port")
    how = describe(acts)
    origin = (f"the kubelet's defaults without a {code('--config')} file" if not with_config
              else "the KubeletConfiguration defaults")

    def shown(s: Any, what: str) -> str:
        return _shown(s) if s is not None else f"{what} by {origin}"

    results = []
    if anon.lower() in _TRUE:
        always = "AlwaysAllow" in mode.split(",")
        worse = (f"and authorizes every request ({shown(mode_s, 'AlwaysAllow')}): anyone who "
                 "reaches port 10250 can run commands in every pod" if always else
                 f"(authorization {code(mode)} decides what {code('system:anonymous')} may do)")
        results.append(_fail(
            f"The kubelet accepts anonymous requests ({shown(anon_s, 'on')}) {worse}; it is "
            f"enabled: {how}", "kubelet anonymous-auth", anon_s or mode_s,
            f"anonymous-auth {anon}, authorization-mode {mode}",
            "--anonymous-auth=false and --authorization-mode=Webhook",
            None if always else Severity.MODERATE))
    if port not in ("", "0"):
        results.append(_fail(
            f"The kubelet serves its read-only port {code(port)} without authentication "
            f"({shown(port_s, 'on')}): pod specifications and their environment are readable "
            f"by anyone who reaches it; it is enabled: {how}", "kubelet read-only-port", port_s,
            f"read-only-port {port}", "--read-only-port=0", Severity.HIGH))
    return results


# --- Jupyter --------------------------------------------------------------------------------

_TOKENS = ("NotebookApp.token", "ServerApp.token", "IdentityProvider.token")
_PASSWORDS = ("NotebookApp.password", "ServerApp.password",
              "PasswordIdentityProvider.hashed_password")
_IPS = ("NotebookApp.ip", "ServerApp.ip")
_EMPTY = frozenset({"", "''", '""'})


def _container_settings(facts: Any, acts: list[Activity]) -> list[Any]:
    """``--Class.trait=value`` words of the container's command, as pseudo settings."""
    if not any(a.mechanism == "container" for a in acts):
        return []
    out = []
    for word in container_command(facts.image.details) or []:
        if not word.startswith("--") or "=" not in word:
            continue
        name, _sep, value = word[2:].partition("=")
        name = f"ServerApp.{name}" if name in ("ip", "token", "password") else name
        out.append(Setting(name, value.strip("'\""), Source("the container's command"),
                           "command line"))
    return out


def _jupyter(facts: Any, d: Any, acts: list[Activity]) -> list[CheckResult]:
    if not acts:
        return []
    settings = list(d.settings) + _container_settings(facts, acts)

    def last(keys: tuple[str, ...]) -> Any:
        found = [s for s in settings if s.key in keys]
        return found[-1] if found else None

    token = last(_TOKENS)
    if token is None or token.section == "expression" or token.value.strip() not in _EMPTY:
        return []  # Jupyter generates a random token when none is configured
    password = last(_PASSWORDS)
    if password is not None and password.value.strip() not in _EMPTY:
        return []
    ip = last(_IPS)
    value = ip.value.strip() if ip is not None else "localhost"
    if value not in ("", "*", "0.0.0.0", "::") and is_loopback(value):
        return []
    if ip is None:
        return []
    return [_fail(f"Jupyter listens on {code(value or '*')} ({ip.source}) without a token "
                  f"({code(token.key + ' = ' + repr(token.value))}, {token.source}) or a "
                  f"password: anyone who reaches it runs code as its user; it is enabled: "
                  f"{describe(acts)}", "jupyter", token, f"{token.key} = ''",
                  "a token or password, or ip = localhost")]


# --- MySQL/MariaDB accounts -----------------------------------------------------------------

def _mysql(facts: Any, d: Any, acts: list[Activity]) -> list[CheckResult]:
    if not acts:
        return []
    nonet = _mysql_option(d, "skip-networking")
    bind = _mysql_option(d, "bind-address")
    addrs = [a.strip() for a in bind.value.split(",")] if bind else ["*"]
    if (nonet is not None and nonet.value.strip().lower() in _TRUE) or not _remote(addrs):
        return []
    where = f"{code(bind.value)} ({bind.source})" if bind else \
        f"all interfaces (no {code('bind-address')})"
    unread = d.last("accounts-unread")
    if unread is not None:
        return [CheckResult(Status.ERROR, f"Could not evaluate the MySQL/MariaDB accounts: "
                            f"{unread.value}", resource="mysql accounts",
                            evidence=Evidence(path=unread.source.path,
                                              observed=unread.value))]
    results = []
    for s in d.values("account", "empty"):
        host = s.value.rsplit("@'", 1)[-1][:-1]
        if is_local_host(host):
            continue
        results.append(CheckResult(
            Status.FAIL,
            f"MySQL/MariaDB account {code(s.value)} ({s.source.path}) has an empty password "
            f"and is not limited to localhost, and the server listens on {where}; it is "
            f"enabled: {describe(acts)}",
            resource=f"account {s.value}",
            evidence=Evidence(path=s.source.path, observed="authentication_string ''",
                              expected="a password, or the account dropped")))
    return results


Evaluator = Callable[[Any, Any, list[Activity]], list[CheckResult]]
EVALUATORS: dict[str, tuple[ServiceIdentity, Evaluator]] = {
    "dockerd": (DOCKER, _dockerd), "kubelet": (KUBELET, _kubelet),
    "jupyter": (JUPYTER, _jupyter), "vnc": (VNC, vnc_exposed),
    "x11-access": (XACCESS, xaccess_exposed), "slapd": (LDAP, slapd_exposed),
    "mysql": (SERVICES["mysql"], _mysql),
}


class ExposedParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    daemon: Daemon = Field(description="the daemon to judge")


@check_type("daemon_exposed", params_model=ExposedParams, missing=MissingPolicy.ERROR,
            needs=("services", "listeners"))
def daemon_exposed(facts: Any, params: ExposedParams, rule: Any) -> list[CheckResult]:
    """Fails when a running daemon gives control or data to the network without credentials.

    - ``dockerd``: a ``-H``/``hosts`` TCP address beyond loopback (daemon.json, the unit's
      flags, ``DOCKER_OPTS``/``OPTIONS``) without ``--tlsverify``.
    - ``kubelet``: ``--anonymous-auth``/``authentication.anonymous.enabled`` on, at the rule's
      severity with ``AlwaysAllow`` authorization, else ``moderate``; a non-zero read-only
      port, ``high``. Flags win over the ``--config`` file; without one the flag defaults
      (anonymous on, ``AlwaysAllow``, port 10255) apply. A loopback ``address`` passes.
    - ``jupyter``: an empty ``token`` (config files, unit or container command line) with no
      password, and ``ip`` set beyond loopback.
    - ``vnc``: x11vnc without ``-rfbauth``/``-passwd``/``-usepw``/``-unixpw``, or Xvnc/
      vncserver with ``SecurityTypes`` ``None``, not kept to ``-localhost`` (units, XDG
      autostart and X session scripts with a display manager, the container's command).
    - ``x11-access``: ``xhost +`` in X session scripts or autostart entries with a display
      manager enabled; ``moderate`` unless the X server listens on TCP.
    - ``slapd``: a non-loopback ``ldap://``/``ldaps://`` URL, anonymous binds allowed (no
      ``disallow bind_anon``, no global/frontend ``require authc``) and a data database whose
      access lines (frontend appended; none means ``by * read``) give ``anonymous``/``*``
      more than ``auth``; ``critical`` for write.
    - ``mysql``: accounts of the shipped data directory with an empty password and a host
      other than localhost, when the server listens beyond loopback; accounts that could not
      be read (MySQL 8, MyISAM tables, a cut file) give ERROR.

    Missing fact: without services or listeners facts; ``error``.
    """
    ident, evaluate = EVALUATORS[params.daemon]
    acts = active(facts, ident)
    results: list[CheckResult] = []
    for daemon in facts.listeners.get(ident.daemon or params.daemon):
        results.extend(evaluate(facts, daemon, acts))
    return results
