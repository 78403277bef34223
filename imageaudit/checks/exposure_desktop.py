"""``daemon_exposed`` evaluators for VNC, X access control and slapd.

Registered by :mod:`imageaudit.checks.exposure_daemons`; each takes the facts, one
:class:`~imageaudit.facts.listeners.model.DaemonConfig` and the daemon's activity.

- VNC: x11vnc runs without a password unless ``-rfbauth``, ``-passwd``, ``-passwdfile``,
  ``-usepw`` or ``-unixpw`` is given (``-nopw`` only silences its warning); Xvnc,
  ``vncserver`` and ``x0vncserver`` accept anyone when ``SecurityTypes`` lists ``None``
  (command line or TigerVNC configuration). ``-localhost`` (or a loopback ``-listen``/
  ``-interface``) keeps it local and passes. Command lines of units count when a VNC unit is
  enabled; those of XDG autostart entries and X session scripts when a display manager is.
- X access control: ``xhost +`` (no host) lets any client open windows on the display and
  read its keystrokes. ``high`` when the X server listens on TCP (the ``x11`` record:
  LightDM ``xserver-allow-tcp=true``, GDM ``DisallowTCP=false``, ``-listen tcp``), else
  ``moderate`` (local clients only). Counts when a display manager is enabled.
- slapd: listens beyond loopback when ``SLAPD_SERVICES``/``SLAPD_URLS`` names an ``ldap://``
  or ``ldaps://`` URL with no host or a non-loopback one (no variable: ``ldap:///``).
  Anonymous binds are allowed unless ``disallow bind_anon`` (``olcDisallows``) is set, and
  ``require authc`` (``olcRequires``) globally or in the frontend refuses anonymous
  operations. Each data database then fails when its access lines (the frontend's are
  appended; none at all means slapd's default ``to * by * read``) give ``anonymous`` or
  ``*`` a level above ``auth`` on entries (critical for ``write``/``manage``); lines
  limited to ``attrs=`` and those of the root DSE and subschema entries are left out. The
  cn=config tree is read when present (it wins over ``slapd.conf``).
"""

from __future__ import annotations

import re
from typing import Any

from imageaudit.checks.activity import (
    SERVICES,
    Activity,
    ServiceIdentity,
    active,
    container_command,
    describe,
)
from imageaudit.checks.exposure import is_loopback
from imageaudit.checks.exposure_db import _TRUE, _fail
from imageaudit.facts.listeners.units import shell_words
from imageaudit.facts.services.systemd_loader import UNIT_DIRS
from imageaudit.findings import CheckResult, code
from imageaudit.model import Severity

VNC = SERVICES["vnc"]
DISPLAY_MANAGER = ServiceIdentity(
    "A display manager", ("display-manager", "lightdm", "gdm", "gdm3", "sddm", "xdm", "lxdm",
                          "slim", "nodm"), (),
    ("lightdm", "gdm", "gdm3", "sddm", "xdm", "startx", "xinit", "Xorg"))
XACCESS = ServiceIdentity(DISPLAY_MANAGER.label, DISPLAY_MANAGER.names, (),
                          DISPLAY_MANAGER.programs, "x11-access")
LDAP = SERVICES["slapd"]

_LISTEN_TCP = re.compile(r"(?:^|\s)-listen\s+tcp\b")
_X11VNC_AUTH = frozenset({"-rfbauth", "-passwd", "-passwdfile", "-usepw", "-unixpw",
                          "-unixpw_nis"})


def _flag(words: list[str], name: str) -> str | None:
    """The value of ``-name value``/``-name=value``/``--name`` (case-insensitive); ``""`` for
    a bare switch, ``None`` when absent."""
    low = name.lower()
    for i, word in enumerate(words):
        key, eq, value = word.lstrip("-").partition("=")
        if not word.startswith("-") or key.lower() != low:
            continue
        if eq:
            return value
        nxt = words[i + 1] if i + 1 < len(words) else ""
        return "" if nxt.startswith("-") else nxt
    return None


def _vnc_open(program: str, words: list[str]) -> str | None:
    """Why this VNC command line accepts anyone from the network, or ``None``."""
    listen = _flag(words, "listen") or _flag(words, "interface")
    local = _flag(words, "localhost")
    if (local is not None and local.lower() not in ("0", "no", "false")) or (
            listen and is_loopback(listen)):
        return None
    if program == "x11vnc":
        if any(w.split("=")[0] in _X11VNC_AUTH for w in words):
            return None
        return (f"{code('-nopw')}: no password" if "-nopw" in words
                else f"no {code('-rfbauth')} or {code('-passwd')}: no password")
    types = _flag(words, "SecurityTypes")
    if types is not None and "none" in types.lower().split(","):
        return f"{code('SecurityTypes ' + types)}: no authentication"
    return None


def vnc_exposed(facts: Any, d: Any, acts: list[Activity]) -> list[CheckResult]:
    dm = active(facts, DISPLAY_MANAGER)
    results = []
    config = [s for s in d.settings if s.section == "tigervnc"]
    types = [s for s in config if s.key == "securitytypes"]
    local = [s for s in config if s.key == "localhost"]
    if acts and types and "none" in types[-1].value.lower().split(",") and not (
            local and local[-1].value.lower() not in ("no", "0", "false")):
        s = types[-1]
        results.append(_fail(
            f"The VNC server accepts clients without authentication "
            f"({code('SecurityTypes=' + s.value)}, {s.source}) on every interface (no "
            f"{code('localhost')}); it is enabled: {describe(acts)}", s.source.path, s,
            f"SecurityTypes={s.value}", "SecurityTypes=VncAuth or TLSVnc, or localhost"))
    commands = [(s.section or "", shell_words(s.value), s.source, s)
                for s in d.values("command")]
    if any(a.mechanism == "container" for a in acts):
        words = container_command(facts.image.details) or []
        for i, word in enumerate(words):
            if word.rsplit("/", 1)[-1] in VNC.programs:
                commands.append((word.rsplit("/", 1)[-1], words[i:], None, None))
                break
    for program, words, source, setting in commands:
        from_unit = source is not None and source.path.startswith(UNIT_DIRS)
        runs = acts if from_unit or source is None else (acts or dm)
        if not runs:
            continue
        why = _vnc_open(program, words)
        if why is None:
            continue
        where = str(source) if source else "the container's command"
        results.append(_fail(
            f"{code(program)} serves the desktop over VNC to the network with {why} "
            f"({where}); it runs: {describe(runs)}", where, setting,
            " ".join(words)[:200], "-rfbauth/-passwd or SecurityTypes VncAuth, or -localhost"))
    return results


def _x_tcp(facts: Any) -> str | None:
    for d in facts.listeners.get("x11"):
        for s in d.settings:
            key, value = s.key.lower(), s.value.strip().lower()
            if (key == "xserver-allow-tcp" and value in _TRUE) or (
                    key == "disallowtcp" and value in ("false", "0", "no")) or (
                    _LISTEN_TCP.search(value) is not None):
                return f"{code(s.key + '=' + s.value)}, {s.source}"
    return None


def xaccess_exposed(facts: Any, d: Any, acts: list[Activity]) -> list[CheckResult]:
    if not acts:
        return []
    tcp = _x_tcp(facts)
    results = []
    for s in d.values("command", "xhost"):
        words = shell_words(s.value)
        if "+" not in words[1:]:
            continue
        reach = (f"and the X server listens on TCP ({tcp}): any host can" if tcp else
                 "any local user or process can")
        results.append(_fail(
            f"{code(s.value[:100])} ({s.source}) switches X access control off: {reach} "
            f"open windows on the display and read its keystrokes; it runs at login: "
            f"{describe(acts)}", str(s.source), s, s.value[:200],
            "xhost +si:localuser:<user>, or no xhost +", None if tcp else Severity.MODERATE))
    return results


# --- slapd ------------------------------------------------------------------------------------

_ANON_LEVELS = ("read", "search", "compare", "write", "manage", "add", "delete", "=r", "=w",
                "=rs", "=rsc", "=wrscx", "+r", "+w")
_WRITE = ("write", "manage", "add", "delete", "=w", "+w")
_SPECIAL = frozenset({"global", "frontend", "config", "monitor", "cn=config"})
_BY = re.compile(r"\bby\s+(\S+)\s+(\S+)", re.IGNORECASE)


def _slapd_remote(d: Any) -> tuple[bool, str]:
    urls = d.last("SLAPD_SERVICES") or d.last("SLAPD_URLS")
    values = urls.value.split() if urls else ["ldap:///"]
    for url in values:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() not in ("ldap", "ldaps"):
            continue
        host = rest.split("/", 1)[0]
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host.strip("[]")
        if not host or not is_loopback(host):
            return True, url
    return False, ""


_ROOT_DSE = re.compile(r'^to\s+dn(?:\.base|\.exact)?="(?:|cn=subschema)"', re.IGNORECASE)


def _anon_level(lines: list[Any]) -> tuple[str, Any] | None:
    """The first access clause giving anonymous clients more than ``auth`` on entries.

    Lines limited to attributes (``attrs=``) do not open entries by themselves, and the root
    DSE and subschema entries are meant to be public.
    """
    for s in lines:
        what = s.value.split(" by ", 1)[0]
        if "attrs=" in what.lower() or _ROOT_DSE.match(what.strip()):
            continue
        for who, level in _BY.findall(s.value):
            if who.lower() in ("*", "anonymous") and level.lower() in _ANON_LEVELS:
                return level.lower(), s
    return None


def slapd_exposed(facts: Any, d: Any, acts: list[Activity]) -> list[CheckResult]:
    remote, url = _slapd_remote(d)
    if not acts or not remote:
        return []
    tree = any("slapd.d/" in f.path for f in d.files)
    settings = [s for s in d.settings if ("slapd.d/" in s.source.path) == tree
                and s.section is not None]
    if not settings:
        return []

    index: dict[tuple[str, str], list[Any]] = {}
    for s in settings:  # one pass, then each database's lines without another
        index.setdefault((s.section, s.key), []).append(s)

    def where(section: str, key: str) -> list[Any]:
        return index.get((section, key), [])

    for section in ("global", "frontend"):
        for s in where(section, "olcdisallows"):
            if "bind_anon" in s.value.lower().split():
                return []
        for s in where(section, "olcrequires"):
            if "authc" in s.value.lower().split():
                return []
    databases = sorted({s.section for s in settings if s.section not in _SPECIAL})
    front = where("frontend", "olcaccess") + ([] if tree else where("global", "olcaccess"))
    front_found = _anon_level(front)
    results = []
    for db in databases:
        own = where(db, "olcaccess")
        if any("authc" in s.value.lower().split() for s in where(db, "olcrequires")):
            continue
        found = (_anon_level(own) or front_found) if own or front else ("read", None)
        if found is None:
            continue
        level, line = found
        how = (f"{code(line.value[:120])}, {line.source}" if line is not None
               else "no access lines: slapd's default is `to * by * read`")
        results.append(_fail(
            f"slapd accepts anonymous binds on {code(url)} (no {code('olcDisallows: bind_anon')}"
            f" or {code('disallow bind_anon')}) and gives anonymous clients {code(level)} "
            f"access to database {code(db)} ({how}); it is enabled: {describe(acts)}",
            f"slapd {db}", line, f"anonymous {level}", "disallow bind_anon, or by anonymous auth",
            Severity.CRITICAL if level in _WRITE else None))
    return results
