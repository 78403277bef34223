"""Exposure settings of dockerd, the kubelet and Jupyter (listeners helpers).

- dockerd: ``/etc/docker/daemon.json`` (``hosts``, ``tls``, ``tlsverify``), the flags of the
  ``docker.service`` unit and of ``DOCKER_OPTS`` (``/etc/default/docker``) or ``OPTIONS``
  (``/etc/sysconfig/docker``); every listening address is a ``-H`` setting. Follows
  dockerd(8) "Daemon socket option" and "Daemon configuration file".
- kubelet: the flags of ``kubelet.service`` and its drop-ins (kubeadm's ``10-kubeadm.conf``
  with its environment files), then the ``--config`` file (a KubeletConfiguration, YAML or
  JSON) flattened into dotted keys in section ``config``. Follows the kubelet command-line
  reference and "Kubelet authentication/authorization".
- jupyter: ``jupyter_server_config`` and ``jupyter_notebook_config`` files (``.py`` read as
  text, never run: ``c.Class.trait = <literal>`` lines, the literal read by
  :func:`ast.literal_eval`; ``.json`` flattened) in the system and user configuration
  directories, and the flags of ``jupyter*.service`` units. Keys are ``Class.trait``; a value
  that is not a literal keeps its text with section ``expression``. Follows "Config file and
  command line options" of Jupyter Server and the Notebook.
"""

from __future__ import annotations

import ast
import json
import posixpath
import re
from typing import Any

from imageaudit.facts.base import CollectContext
from imageaudit.facts.conftext import (
    glob_files,
    numbered_lines,
    parse_shell_vars,
    read_config,
)
from imageaudit.facts.listeners.desktop import collect_vnc, collect_xaccess
from imageaudit.facts.listeners.directory import (
    capped,
    collect_proftpd,
    collect_pureftpd,
    collect_slapd,
    collect_usershares,
)
from imageaudit.facts.listeners.model import DaemonBuilder
from imageaudit.facts.listeners.nosql import YAML_LIMIT, yaml_settings
from imageaudit.facts.listeners.units import collect_unit, command_flags, shell_words
from imageaudit.model import Source

DOCKER_JSON = "/etc/docker/daemon.json"
DOCKER_OPTS = {"-H": "-H", "--host": "-H"}
KUBELET_OPTS: dict[str, str] = {"--config": "--config"}
JUPYTER_DIRS = ("/etc/jupyter", "/usr/local/etc/jupyter", "/usr/etc/jupyter",
                "/opt/conda/etc/jupyter", "/root/.jupyter", "/home/*/.jupyter")
JUPYTER_FILES = ("jupyter_notebook_config", "jupyter_server_config")
JUPYTER_UNITS = ("jupyter.service", "jupyterlab.service", "jupyter-notebook.service",
                 "jupyter-lab.service", "jupyter-server.service", "notebook.service")
_PY_LINE = re.compile(r"^c\.([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
MAX_LITERAL = 4096


def _json_file(ctx: CollectContext, path: str, out: DaemonBuilder) -> Any:
    text = ctx.read_text(path, YAML_LIMIT)
    if text is None:
        return None
    out.files.append(path)
    try:
        return json.loads(text) if text.strip() else {}
    except (ValueError, RecursionError) as exc:
        out.bad(f"not valid JSON: {type(exc).__name__}", text[:80], Source(path))
        return None


def collect_dockerd(ctx: CollectContext) -> list[DaemonBuilder]:
    """``-H`` addresses and TLS switches from every place dockerd takes them."""
    out = DaemonBuilder("dockerd")
    data = _json_file(ctx, DOCKER_JSON, out)
    if isinstance(data, dict):
        src = Source(DOCKER_JSON)
        hosts = data.get("hosts")
        for host in hosts if isinstance(hosts, list) else [hosts] if hosts else []:
            out.add("-H", str(host), src, "daemon.json")
        for key in ("tls", "tlsverify"):
            if key in data:
                out.add(f"--{key}", str(data[key]).lower(), src, "daemon.json")
    elif data is not None:
        out.bad("daemon.json is not a JSON object", "", Source(DOCKER_JSON))
    for path, var in (("/etc/default/docker", "DOCKER_OPTS"), ("/etc/sysconfig/docker",
                                                             "OPTIONS")):
        text = read_config(ctx, path)
        if text is None:
            continue
        out.files.append(path)
        settings, malformed = parse_shell_vars(text, path)
        out.malformed.extend(malformed)
        for s in settings:
            out.settings.append(s)
            if s.key == var:
                command_flags(out, shell_words(s.value), s.source, DOCKER_OPTS)
    collect_unit(ctx, out, ("docker.service",), DOCKER_OPTS)
    return [out]


def collect_kubelet(ctx: CollectContext) -> list[DaemonBuilder]:
    """The kubelet's flags, then its ``--config`` file (section ``config``)."""
    out = DaemonBuilder("kubelet")
    collect_unit(ctx, out, ("kubelet.service",), KUBELET_OPTS)
    config = next((s for s in reversed(out.settings) if s.key == "--config"), None)
    if config is not None and config.value.startswith("/"):
        text = ctx.read_text(config.value, YAML_LIMIT)
        if text is None:
            out.add("config-absent", config.value, config.source)
        else:
            out.files.append(config.value)
            sub = DaemonBuilder("kubelet")
            if text.strip() and not yaml_settings(text, config.value, sub):
                out.bad("not a KubeletConfiguration mapping", text[:80], Source(config.value))
            for s in sub.settings:
                out.add(s.key, s.value, s.source, "config")
            out.malformed.extend(sub.malformed)
    return [out]


def _py_value(raw: str) -> tuple[str, bool]:
    """The value of a Python literal as text (``True``/``False`` for booleans) and whether
    it was a literal."""
    text = raw.split(" #", 1)[0].strip()
    if len(text) > MAX_LITERAL:
        return text[:80], False
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text, False
    if isinstance(value, (list, tuple, set)):
        return ",".join(str(v) for v in value), True
    return str(value), True


def _jupyter_py(text: str, path: str, out: DaemonBuilder) -> None:
    for number, raw in numbered_lines(text):
        match = _PY_LINE.match(raw.strip())
        if match is None:
            continue
        value, literal = _py_value(match.group(3))
        out.add(f"{match.group(1)}.{match.group(2)}", value, Source(path, number),
                None if literal else "expression")


def _jupyter_json(data: Any, path: str, out: DaemonBuilder) -> None:
    if not isinstance(data, dict):
        return
    for cls, traits in data.items():
        if isinstance(traits, dict):
            for trait, value in traits.items():
                out.add(f"{cls}.{trait}", str(value), Source(path))


def jupyter_option(out: DaemonBuilder, word: str, source: Source) -> None:
    """One ``--Class.trait=value`` (or ``--ip=``, ``--port=``) command-line word."""
    name, _sep, value = word[2:].partition("=")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    if name in ("ip", "port", "token", "password"):
        name = f"ServerApp.{name}"
    if "." in name:
        out.add(name, value, source, "command line")


def collect_jupyter(ctx: CollectContext) -> list[DaemonBuilder]:
    """Settings of every Jupyter config file found, then of its systemd unit's flags."""
    out = DaemonBuilder("jupyter")
    for pattern in JUPYTER_DIRS:
        if "*" not in pattern and not ctx.fs.is_dir(pattern):
            continue
        for base in JUPYTER_FILES:
            for path in capped(ctx, glob_files(ctx, posixpath.join(pattern, base + ".json")),
                               f"{base}.json files"):
                _jupyter_json(_json_file(ctx, path, out), path, out)
            for path in capped(ctx, glob_files(ctx, posixpath.join(pattern, base + ".py")),
                               f"{base}.py files"):
                text = read_config(ctx, path)
                if text is not None:
                    out.files.append(path)
                    _jupyter_py(text, path, out)
    unit = DaemonBuilder("jupyter")
    collect_unit(ctx, unit, JUPYTER_UNITS, {})
    out.files.extend(unit.files)
    for s in unit.settings:
        if s.key == "ExecStart":
            out.settings.append(s)
            for word in shell_words(s.value):
                if word.startswith("--"):
                    jupyter_option(out, word, s.source)
    return [out]


# --- registration of this module's daemons and of desktop/directory ---------------------------

# What each daemon listens on when its configuration names nothing (upstream defaults).
NAMED_DEFAULT_BIND: dict[str, str] = {
    # dockerd(8): only the unix socket /var/run/docker.sock unless -H/hosts name more.
    "dockerd": "unix:/var/run/docker.sock",
    # kubelet --address: 0.0.0.0, port 10250 (and --read-only-port 10255 without a config).
    "kubelet": "0.0.0.0:10250",
    # Jupyter ServerApp.ip / NotebookApp.ip: "localhost", port 8888.
    "jupyter": "localhost:8888",
    # Xvnc/x11vnc: port 5900 + display on all interfaces unless -localhost.
    "vnc": "*:5900",
    # xhost(1) access control is on by default; this record lists xhost commands.
    "x11-access": "unix:/tmp/.X11-unix",
    # slapd(8) -h: "ldap:///" (all interfaces, port 389) when no URLs are given.
    "slapd": "*:389",
    # proftpd: Port 21 on all interfaces (DefaultAddress is the host's address).
    "proftpd": "*:21",
    # pure-ftpd(8): port 21 on all interfaces unless -S/Bind names one.
    "pure-ftpd": "*:21",
    # usershares are served by smbd (ports 139/445 on every interface).
    "samba-usershares": "*:445",
}

NAMED_EXECUTABLES: dict[str, tuple[str, ...]] = {
    "dockerd": ("/usr/bin/dockerd", "/usr/sbin/dockerd", "/usr/local/bin/dockerd"),
    "kubelet": ("/usr/bin/kubelet", "/usr/local/bin/kubelet"),
    "jupyter": ("/usr/bin/jupyter", "/usr/local/bin/jupyter", "/opt/conda/bin/jupyter"),
    "vnc": ("/usr/bin/x11vnc", "/usr/bin/Xvnc", "/usr/bin/Xtigervnc", "/usr/bin/vncserver",
            "/usr/bin/tigervncserver", "/usr/bin/x0vncserver"),
    "slapd": ("/usr/sbin/slapd", "/usr/libexec/slapd"),
    "proftpd": ("/usr/sbin/proftpd",),
    "pure-ftpd": ("/usr/sbin/pure-ftpd", "/usr/sbin/pure-ftpd-wrapper"),
}

NAMED_PATTERNS: tuple[str, ...] = (
    DOCKER_JSON, "/etc/default/docker", "/etc/sysconfig/docker", "/var/lib/kubelet/*",
    "/etc/default/kubelet", "/etc/sysconfig/kubelet", *(f"{d}/*" for d in JUPYTER_DIRS),
    "/etc/tigervnc/*", "/etc/xdg/autostart/*", "/etc/X11/Xsession.d/*",
    "/etc/X11/xinit/*", "/etc/default/slapd", "/etc/sysconfig/slapd", "/etc/ldap/*",
    "/etc/ldap/slapd.d/*", "/etc/ldap/slapd.d/cn=config/*", "/etc/openldap/*",
    "/etc/openldap/slapd.d/*", "/etc/openldap/slapd.d/cn=config/*", "/etc/proftpd/*",
    "/etc/proftpd/conf.d/*", "/etc/pure-ftpd/conf/*", "/etc/pure-ftpd.conf",
    "/var/lib/samba/usershares/*",
)


def collect_named(ctx: CollectContext) -> list[DaemonBuilder]:
    """Every daemon of this module, :mod:`.desktop` and :mod:`.directory`."""
    builders: list[DaemonBuilder] = []
    for collect in (collect_dockerd, collect_kubelet, collect_jupyter, collect_vnc,
                    collect_xaccess, collect_slapd, collect_proftpd, collect_pureftpd,
                    collect_usershares):
        builders.extend(collect(ctx))
    return builders
