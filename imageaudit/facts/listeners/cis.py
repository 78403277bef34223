"""Exposure settings of the daemons of the CIS "server services" sections not read elsewhere.

rsync daemon, squid, dovecot, Cyrus IMAP, CUPS, dnsmasq and the X server (display managers
and X server command lines) here; the mail transfer agents and web servers in
:mod:`~imageaudit.facts.listeners.mailweb`. :func:`collect_cis` returns them all for
:mod:`imageaudit.facts.listeners`.

Keys are lower-cased where the daemon compares them without case (rsyncd, squid, cupsd,
imapd.conf, dnsmasq); dovecot and the display managers keep them as written. Sections are
recorded as ``name arg`` (``protocol imap``, ``Location /admin``, ``security``), nested ones
joined by `` > ``.

Follows rsyncd.conf(5) (modules, ``&include``/``&merge``), squid.conf's ``include`` and
``http_access``/``http_port``, doveconf(1) (``!include``, ``!include_try``, sections),
imapd.conf(5) and cyrus.conf(5), cupsd.conf(5) (``<Location>``, ``Listen``, ``Port``),
dnsmasq(8) (``conf-file``, ``conf-dir``, Debian's ``/etc/default/dnsmasq``), gdm's
``[security] DisallowTCP``, lightdm's ``xserver-allow-tcp``, sddm.conf(5)
``ServerArguments``, Xserver(1) ``-listen``/``-nolisten``.
"""

from __future__ import annotations

import posixpath

from imageaudit.facts.base import CollectContext
from imageaudit.facts.conftext import (
    IncludeGuard,
    Setting,
    glob_files,
    join_path,
    numbered_lines,
    parse_shell_vars,
    read_config,
    split_words,
    strip_comment,
)
from imageaudit.facts.listeners.mailweb import (
    MAILWEB_DEFAULT_BIND,
    MAILWEB_EXECUTABLES,
    MAILWEB_PATTERNS,
    MAX_BLOCK_DEPTH,
    collect_mailweb,
    head_word,
    section_line,
    section_of,
)
from imageaudit.facts.listeners.model import DaemonBuilder, config_lines
from imageaudit.facts.listeners.net import DirectiveHandler, directive_file
from imageaudit.model import Source

RSYNCD_FILES = ("/etc/rsyncd.conf", "/etc/rsyncd/rsyncd.conf")
SQUID_FILES = ("/etc/squid/squid.conf",)
DOVECOT_FILES = ("/etc/dovecot/dovecot.conf",)
CUPSD_FILES = ("/etc/cups/cupsd.conf",)
CYRUS_IMAPD = "/etc/imapd.conf"
CYRUS_MASTER = "/etc/cyrus.conf"
DNSMASQ_FILES = ("/etc/dnsmasq.conf",)
DNSMASQ_DEFAULT = "/etc/default/dnsmasq"
# Debian's init script reads this directory when /etc/default/dnsmasq names none.
DNSMASQ_DEBIAN_DIR = "/etc/dnsmasq.d,.dpkg-dist,.dpkg-old,.dpkg-new"
X11_INI_FILES = ("/etc/gdm3/daemon.conf", "/etc/gdm3/custom.conf", "/etc/gdm/custom.conf",
                 "/etc/lightdm/lightdm.conf", "/etc/sddm.conf")
X11_INI_DIRS = ("/etc/lightdm/lightdm.conf.d/*.conf", "/etc/sddm.conf.d/*.conf",
                "/usr/lib/sddm/sddm.conf.d/*.conf")
X11_COMMAND_FILES = ("/etc/X11/xinit/xserverrc", "/etc/X11/xdm/Xservers")

# What each daemon listens on when its configuration names nothing (upstream defaults).
CIS_DEFAULT_BIND: dict[str, str] = {
    # rsyncd.conf(5) "address": all interfaces, port 873, when run as a daemon.
    "rsync": "*:873",
    # squid.conf: "http_port 3128" on all interfaces.
    "squid": "*:3128",
    # dovecot "listen = *, ::": all interfaces (143, 993, 110, 995 per protocol).
    "dovecot": "*:143",
    # cyrus.conf(5): each SERVICES entry listens where its listen= says (Debian: imap, pop3).
    "cyrus": "*:143",
    # cupsd.conf of Debian/RHEL: "Listen localhost:631" (and a local socket).
    "cups": "localhost:631",
    # dnsmasq(8): DNS on port 53 of every interface unless interface options say otherwise.
    "dnsmasq": "*:53",
    # Xorg 1.17 and later: no TCP unless "-listen tcp"; the display manager decides.
    "x11": "unix:/tmp/.X11-unix",
    **MAILWEB_DEFAULT_BIND,
}

CIS_EXECUTABLES: dict[str, tuple[str, ...]] = {
    "rsync": ("/usr/bin/rsync",),
    "squid": ("/usr/sbin/squid",),
    "dovecot": ("/usr/sbin/dovecot",),
    "cyrus": ("/usr/sbin/cyrmaster", "/usr/libexec/cyrus-imapd/master",
              "/usr/lib/cyrus/bin/master"),
    "cups": ("/usr/sbin/cupsd",),
    "dnsmasq": ("/usr/sbin/dnsmasq",),
    "x11": ("/usr/lib/xorg/Xorg", "/usr/bin/Xorg", "/usr/libexec/Xorg"),
    **MAILWEB_EXECUTABLES,
}

CIS_PATTERNS: tuple[str, ...] = (
    "/etc/rsyncd.conf", "/etc/rsyncd/*", "/etc/squid/*", "/etc/dovecot/*", "/etc/dovecot/*/*",
    "/etc/cups/cupsd.conf", CYRUS_IMAPD, CYRUS_MASTER, "/etc/dnsmasq.conf", "/etc/dnsmasq.d/*",
    DNSMASQ_DEFAULT,
    *X11_INI_FILES, *X11_INI_DIRS, *X11_COMMAND_FILES, *MAILWEB_PATTERNS,
)


# --- rsyncd.conf ----------------------------------------------------------------------------

def _rsync_key(key: str) -> str:
    """rsyncd ignores case and spaces/underscores inside parameter names' words."""
    return " ".join(key.replace("_", " ").lower().split())


def _rsync_file(guard: IncludeGuard, out: DaemonBuilder, path: str, depth: int,
                src: Source | None, section: list[str | None]) -> None:
    for source, raw, line in config_lines(guard, out, path, depth, src, comment="#;"):
        if line.startswith("[") and "]" in line:
            section[0] = line[1:line.index("]")].strip()
            continue
        if line.startswith("&"):
            word, arg = head_word(line[1:])
            arg = arg.strip()
            out.add("&" + word.lower(), arg, source, section[0])
            if word.lower() in ("include", "merge") and arg:
                target = join_path(posixpath.dirname(path), arg)
                suffix = "*.conf" if word.lower() == "include" else "*.inc"
                files = glob_files(guard.ctx, posixpath.join(target, suffix)) or [target]
                for inc in files:
                    if word.lower() == "include":
                        saved = section[0]
                        section[0] = None
                        _rsync_file(guard, out, inc, depth + 1, source, section)
                        section[0] = saved
                    else:
                        _rsync_file(guard, out, inc, depth + 1, source, section)
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            out.bad("not key = value", raw, source)
            continue
        out.add(_rsync_key(key), value.strip(), source, section[0])


def collect_rsync(ctx: CollectContext) -> list[DaemonBuilder]:
    """Global parameters (section ``None``) and ``[module]`` sections of rsyncd.conf."""
    out = DaemonBuilder("rsync")
    guard = IncludeGuard(ctx, "listeners")
    for path in RSYNCD_FILES:
        _rsync_file(guard, out, path, 0, None, [None])
    out.malformed.extend(guard.malformed)
    for setting in _shell_file(ctx, "/etc/default/rsync", out):
        out.settings.append(setting)
    return [out]


def _shell_file(ctx: CollectContext, path: str, out: DaemonBuilder) -> list[Setting]:
    text = read_config(ctx, path)
    if text is None:
        return []
    out.files.append(path)
    settings, malformed = parse_shell_vars(text, path)
    out.malformed.extend(malformed)
    return settings


# --- squid / cupsd / dnsmasq: one directive per line ----------------------------------------

class _SquidIncludes(DirectiveHandler):
    """squid's ``include`` takes file patterns relative to /etc/squid."""

    def __call__(self, guard: IncludeGuard, out: DaemonBuilder, key: str, args: list[str],
                 source: Source, depth: int) -> bool:
        if key != "include" or not args:
            return False
        for pattern in args:
            for inc in glob_files(guard.ctx, join_path("/etc/squid", pattern)):
                directive_file(guard, out, inc, depth + 1, source, self)
        return True


def collect_squid(ctx: CollectContext) -> list[DaemonBuilder]:
    """squid.conf directives (``http_port``, ``acl``, ``http_access``) with includes."""
    out = DaemonBuilder("squid")
    guard = IncludeGuard(ctx, "listeners")
    includes = _SquidIncludes()
    for path in SQUID_FILES:
        directive_file(guard, out, path, 0, None, includes)
    out.malformed.extend(guard.malformed)
    return [out]


def collect_cups(ctx: CollectContext) -> list[DaemonBuilder]:
    """cupsd.conf directives; ``<Location>``/``<Policy>``/``<Limit>`` blocks as sections."""
    out = DaemonBuilder("cups")
    for path in CUPSD_FILES:
        text = read_config(ctx, path)
        if text is None:
            continue
        out.files.append(path)
        stack: list[str] = []
        for number, raw in numbered_lines(text):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            source = Source(path, number)
            if section_line(line, raw, stack, out, source) is not None:
                continue
            key, value = head_word(line)
            out.add(key.lower(), value.strip(), source, section_of(stack))
    return [out]


def _dnsmasq_file(guard: IncludeGuard, out: DaemonBuilder, path: str, depth: int,
                  src: Source | None) -> None:
    for source, _raw, line in config_lines(guard, out, path, depth, src):
        key, _, value = line.partition("=")
        key, value = key.strip().lower(), value.strip()
        out.add(key, value, source)
        if key == "conf-file" and value:
            _dnsmasq_file(guard, out, join_path("/etc", value), depth + 1, source)
        elif key == "conf-dir" and value:
            _dnsmasq_dir(guard, out, value, depth + 1, source)


def _dnsmasq_dir(guard: IncludeGuard, out: DaemonBuilder, spec: str, depth: int,
                 source: Source | None) -> None:
    """``conf-dir=DIR[,.ext-to-skip...|,*.ext-to-read...]`` as dnsmasq(8) reads it."""
    directory, *exts = [p.strip() for p in spec.split(",")]
    wanted = [e[1:] for e in exts if e.startswith("*")]
    skipped = [e for e in exts if not e.startswith("*")]
    for inc in glob_files(guard.ctx, posixpath.join(join_path("/etc", directory), "*")):
        name = posixpath.basename(inc)
        if name.startswith(".") or name.endswith("~") or (name.startswith("#")
                                                          and name.endswith("#")):
            continue
        if wanted and not any(name.endswith(w) for w in wanted):
            continue
        if any(name.endswith(s) for s in skipped):
            continue
        _dnsmasq_file(guard, out, inc, depth, source)


def collect_dnsmasq(ctx: CollectContext) -> list[DaemonBuilder]:
    """dnsmasq.conf options (``key`` or ``key=value``), ``conf-file``/``conf-dir`` followed.

    Debian's ``/etc/default/dnsmasq`` is read too: its ``CONFIG_DIR`` (the directory the
    init script adds with ``-7``, Debian's default when unset), ``DNSMASQ_OPTS`` (its
    ``--option`` words as settings), ``DNSMASQ_INTERFACE`` and ``DNSMASQ_EXCEPT`` (one
    ``interface``/``except-interface`` setting per word, as the scripts pass ``-i``/``-I``).
    """
    out = DaemonBuilder("dnsmasq")
    guard = IncludeGuard(ctx, "listeners")
    for path in DNSMASQ_FILES:
        _dnsmasq_file(guard, out, path, 0, None)
    defaults = _shell_file(ctx, DNSMASQ_DEFAULT, out)
    out.settings.extend(defaults)
    if defaults or out.files:
        config_dir = next((s for s in reversed(defaults) if s.key == "CONFIG_DIR"), None)
        if config_dir is not None and config_dir.value:
            _dnsmasq_dir(guard, out, config_dir.value, 1, config_dir.source)
        elif config_dir is None and ctx.fs.exists("/etc/debian_version"):
            _dnsmasq_dir(guard, out, DNSMASQ_DEBIAN_DIR, 1, None)
        for opts in (s for s in defaults if s.key == "DNSMASQ_OPTS"):
            for word in split_words(opts.value) or []:
                if word.startswith("--"):
                    key, _, value = word[2:].partition("=")
                    out.add(key.lower(), value, opts.source)
        for var, key in (("DNSMASQ_INTERFACE", "interface"),
                         ("DNSMASQ_EXCEPT", "except-interface")):
            for found in (s for s in defaults if s.key == var):
                for word in found.value.split():
                    out.add(key, word, found.source)
    out.malformed.extend(guard.malformed)
    return [out]


# --- dovecot --------------------------------------------------------------------------------

def _dovecot_file(guard: IncludeGuard, out: DaemonBuilder, path: str, depth: int,
                  src: Source | None, stack: list[str]) -> None:
    for source, raw, line in config_lines(guard, out, path, depth, src, inline=True):
        if line.startswith("!include"):
            word, arg = head_word(line)
            pattern = join_path(posixpath.dirname(path), arg.strip())
            found = glob_files(guard.ctx, pattern) if "*" in pattern else (
                [pattern] if guard.ctx.fs.exists(pattern) else [])
            if not found and word == "!include" and "*" not in pattern:
                out.bad("included file not found", raw, source)
            for inc in found:
                _dovecot_file(guard, out, inc, depth + 1, source, stack)
            continue
        if line == "}":
            if stack:
                stack.pop()
            else:
                out.bad("closing a section that is not open", raw, source)
            continue
        if line.endswith("{") and "=" not in line:
            if len(stack) >= MAX_BLOCK_DEPTH:
                out.bad("sections nested too deep", raw, source)
            stack.append(" ".join(line[:-1].split()))
            continue
        key, sep, value = line.partition("=")
        if not sep:
            out.bad("not key = value", raw, source)
            continue
        out.add(key.strip(), value.strip(), source, section_of(stack))


def collect_dovecot(ctx: CollectContext) -> list[DaemonBuilder]:
    """dovecot.conf settings with ``!include``/``!include_try`` followed, sections kept."""
    out = DaemonBuilder("dovecot")
    guard = IncludeGuard(ctx, "listeners")
    for path in DOVECOT_FILES:
        _dovecot_file(guard, out, path, 0, None, [])
    out.malformed.extend(guard.malformed)
    return [out]


# --- Cyrus IMAP -----------------------------------------------------------------------------

def collect_cyrus(ctx: CollectContext) -> list[DaemonBuilder]:
    """imapd.conf ``option: value`` lines (options lower-cased) and the entries of
    cyrus.conf's blocks: ``name cmd="..." listen="..."`` as a setting keyed by the entry name,
    its arguments as written, in section ``SERVICES`` (or ``START``, ``EVENTS``, ``DAEMON``).
    """
    out = DaemonBuilder("cyrus")
    text = read_config(ctx, CYRUS_IMAPD)
    if text is not None:
        out.files.append(CYRUS_IMAPD)
        for number, raw in numbered_lines(text):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition(":")
            if not sep or not key.strip() or " " in key.strip():
                out.bad("not option: value", raw, Source(CYRUS_IMAPD, number))
                continue
            out.add(key.strip().lower(), value.strip(), Source(CYRUS_IMAPD, number))
    text = read_config(ctx, CYRUS_MASTER)
    if text is not None:
        out.files.append(CYRUS_MASTER)
        section: str | None = None
        for number, raw in numbered_lines(text):
            line = strip_comment(raw)
            if not line:
                continue
            source = Source(CYRUS_MASTER, number)
            if line.endswith("{"):
                section = line[:-1].strip() or None
                continue
            if line == "}":
                section = None
                continue
            name, rest = head_word(line)
            out.add(name, rest.strip(), source, section)
    return [out]


# --- X server -------------------------------------------------------------------------------

def collect_x11(ctx: CollectContext) -> list[DaemonBuilder]:
    """Display manager key files (``[section] key=value``) and X server command lines.

    The command files (``xserverrc``, xdm's ``Xservers``) are recorded as ``command``
    settings, one per non-comment line.
    """
    out = DaemonBuilder("x11")
    paths = list(X11_INI_FILES)
    for pattern in X11_INI_DIRS:
        paths.extend(glob_files(ctx, pattern))
    for path in paths:
        text = read_config(ctx, path)
        if text is None:
            continue
        out.files.append(path)
        section: str | None = None
        for number, raw in numbered_lines(text):
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1].strip()
                continue
            key, sep, value = line.partition("=")
            if not sep:
                out.bad("not key=value", raw, Source(path, number))
                continue
            out.add(key.strip(), value.strip(), Source(path, number), section)
    for path in X11_COMMAND_FILES:
        text = read_config(ctx, path)
        if text is None:
            continue
        out.files.append(path)
        for number, raw in numbered_lines(text):
            line = raw.strip()
            if line and not line.startswith("#"):
                out.add("command", line, Source(path, number))
    return [out]


def collect_cis(ctx: CollectContext) -> list[DaemonBuilder]:
    """Every daemon of this module and of :mod:`~imageaudit.facts.listeners.mailweb`."""
    builders: list[DaemonBuilder] = []
    for collect in (collect_rsync, collect_squid, collect_dovecot, collect_cyrus, collect_cups,
                    collect_dnsmasq, collect_x11, collect_mailweb):
        builders.extend(collect(ctx))
    return builders
