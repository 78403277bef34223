"""Exposure settings of VNC servers and X access control (listeners helpers).

- ``vnc``: TigerVNC's ``vncserver`` configuration (``/etc/tigervnc/vncserver-config-defaults``
  and ``-mandatory``, ``~/.vnc/config``, ``~/.config/tigervnc/config``; ``key=value`` lines,
  a bare ``key`` for a switch, or the older Perl form ``$key = "value";``), keys lower-cased
  (TigerVNC compares parameter names without case), section ``tigervnc``. Command lines that
  start a VNC server are settings ``command`` with the program as section: the ``ExecStart=``
  of VNC units, ``Exec=`` of XDG autostart entries and lines of X session scripts.
- ``x11-access``: ``xhost`` command lines in X session scripts and autostart entries, as
  settings ``command`` (section ``xhost``). Whether the X server listens on TCP is the
  ``x11`` record's (:mod:`~imageaudit.facts.listeners.cis`).

Follows Xvnc(1) and vncserver(1) (``SecurityTypes``, ``localhost``), x11vnc(1) (``-nopw``,
``-localhost``, ``-rfbauth``, ``-passwd``) and xhost(1).
"""

from __future__ import annotations

import posixpath
import re

from imageaudit.facts.base import CollectContext
from imageaudit.facts.conftext import glob_files, numbered_lines, read_config, strip_comment
from imageaudit.facts.listeners.directory import capped
from imageaudit.facts.listeners.model import DaemonBuilder
from imageaudit.facts.listeners.units import collect_unit, shell_words, unit_dirs
from imageaudit.model import Source

HOMES = ("/root", "/home/*")
TIGERVNC = ("/etc/tigervnc/vncserver-config-defaults", "/etc/tigervnc/vncserver-config-mandatory",
            *(f"{h}/.vnc/config" for h in HOMES), *(f"{h}/.config/tigervnc/config" for h in HOMES))
VNC_PROGRAMS = frozenset({"x11vnc", "Xvnc", "Xtigervnc", "vncserver", "tigervncserver",
                          "x0vncserver", "x0tigervncserver"})
VNC_UNITS = ("x11vnc.service", "x0vncserver.service", "vncserver@.service",
             "tigervncserver@.service", "xvnc.service", "vncserver.service")
AUTOSTART = ("/etc/xdg/autostart/*.desktop", *(f"{h}/.config/autostart/*.desktop" for h in HOMES))
SESSION_SCRIPTS = ("/etc/X11/Xsession", "/etc/X11/Xsession.d/*", "/etc/X11/xinit/xinitrc",
                   "/etc/X11/xinit/xinitrc.d/*", "/etc/X11/xinit/xserverrc", "/etc/xprofile",
                   *(f"{h}/{n}" for h in HOMES for n in (".xinitrc", ".xsession", ".xprofile",
                                                         ".xserverrc", ".xsessionrc")))
_PERL = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?);?\s*$")


def _tigervnc(ctx: CollectContext, out: DaemonBuilder) -> None:
    for pattern in TIGERVNC:
        for path in capped(ctx, glob_files(ctx, pattern), f"files matching {pattern}"):
            text = read_config(ctx, path)
            if text is None:
                continue
            out.files.append(path)
            for number, raw in numbered_lines(text):
                line = strip_comment(raw)
                if not line:
                    continue
                perl = _PERL.match(line)
                if perl:
                    key, value = perl.group(1), perl.group(2).strip().strip("'\"")
                else:
                    key, _sep, value = line.partition("=")
                out.add(key.strip().lstrip("-").lower(), value.strip(), Source(path, number),
                        "tigervnc")


def _commands(out: DaemonBuilder, text: str, path: str, programs: frozenset[str],
              desktop: bool) -> None:
    for number, raw in numbered_lines(text):
        if not any(p in raw for p in programs):
            continue  # cheap test first: splitting like a shell is slow on long lines
        line = raw.strip()
        if desktop:
            if not line.startswith("Exec="):
                continue
            line = line[5:]
        elif not line or line.startswith("#"):
            continue
        words = shell_words(line)
        for i, word in enumerate(words[:4]):  # "exec x11vnc", "nohup x11vnc", "sudo -u x"
            base = posixpath.basename(word)
            if base in programs:
                out.add("command", " ".join(words[i:])[:1000], Source(path, number), base)
                break


def _scripts(ctx: CollectContext, out: DaemonBuilder, programs: frozenset[str]) -> None:
    for pattern in AUTOSTART:
        for path in capped(ctx, glob_files(ctx, pattern), f"files matching {pattern}"):
            text = read_config(ctx, path)
            if text is not None:
                out.files.append(path)
                _commands(out, text, path, programs, True)
    for pattern in SESSION_SCRIPTS:
        for path in capped(ctx, glob_files(ctx, pattern), f"files matching {pattern}"):
            text = read_config(ctx, path)
            if text is not None:
                out.files.append(path)
                _commands(out, text, path, programs, False)


def collect_vnc(ctx: CollectContext) -> list[DaemonBuilder]:
    """TigerVNC parameters and every command line that starts a VNC server."""
    out = DaemonBuilder("vnc")
    _tigervnc(ctx, out)
    listed = unit_dirs(ctx)
    for name in VNC_UNITS:
        unit = DaemonBuilder("vnc")
        collect_unit(ctx, unit, (name,), {}, listed)
        out.files.extend(unit.files)
        for s in unit.settings:
            if s.key != "ExecStart":
                continue
            words = shell_words(s.value.lstrip("@-:+!"))
            base = posixpath.basename(words[0]) if words else ""
            if base in VNC_PROGRAMS:
                out.add("command", " ".join(words)[:1000], s.source, base)
    _scripts(ctx, out, VNC_PROGRAMS)
    return [out]


def collect_xaccess(ctx: CollectContext) -> list[DaemonBuilder]:
    """``xhost`` command lines of X session scripts and autostart entries."""
    out = DaemonBuilder("x11-access")
    _scripts(ctx, out, frozenset({"xhost"}))
    return [out]
