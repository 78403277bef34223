"""Exposure settings of mail transfer agents (postfix, exim4, sendmail) and web servers
(Apache httpd, nginx).

- postfix: ``main.cf`` parameters (continuation lines joined) and ``master.cf`` services,
  each recorded as a ``service`` setting in section ``master.cf`` (continuation lines joined).
- exim4: Debian's ``/etc/exim4/update-exim4.conf.conf`` variables (``dc_local_interfaces``,
  ``dc_relay_nets``...).
- sendmail: ``O DaemonPortOptions=...`` lines of ``sendmail.cf`` as ``DaemonPortOptions``.
- apache: directives with ``Include``/``IncludeOptional`` followed (relative to the server
  root), keys lower-cased, ``<Directory>``/``<Location>``/... blocks as sections
  (``Directory /var/www``, nested ones joined by `` > ``).
- nginx: directives with ``include`` followed (relative to ``/etc/nginx``), blocks as
  sections (``http > server > location /dav``).
- lighttpd: ``key = value`` / ``key += value`` lines (a value open in parentheses goes on
  to the line that closes it), ``include`` followed (relative to ``/etc/lighttpd``),
  conditional blocks as sections (``$HTTP["url"] =~ "^/dav"``); ``include_shell`` is
  recorded, never run.

Follows postconf(5) and master(5), Debian's update-exim4.conf(8), sendmail's cf/README
(``DaemonPortOptions``), the Apache httpd configuration sections and ``Include`` manual, and
nginx's ``include`` and block syntax.
"""

from __future__ import annotations

import posixpath

from imageaudit.facts.base import CollectContext
from imageaudit.facts.conftext import (
    IncludeGuard,
    glob_files,
    join_path,
    numbered_lines,
    parse_shell_vars,
    read_config,
    split_words,
)
from imageaudit.facts.listeners.model import DaemonBuilder
from imageaudit.model import Source

POSTFIX_DIR = "/etc/postfix"
EXIM4_FILE = "/etc/exim4/update-exim4.conf.conf"
SENDMAIL_FILE = "/etc/mail/sendmail.cf"
APACHE_ROOTS = (("/etc/apache2", "apache2.conf"), ("/etc/httpd", "conf/httpd.conf"))
NGINX_ROOT = "/etc/nginx"
NGINX_TOKENS = 200_000  # tokens read from one nginx file; the rest is reported as cut
MAX_BLOCK_DEPTH = 32

MAILWEB_DEFAULT_BIND: dict[str, str] = {
    # postconf(5) inet_interfaces: "all" by default.
    "postfix": "all:25",
    # update-exim4.conf(8): an empty dc_local_interfaces listens on all interfaces.
    "exim4": "*:25",
    # sendmail without DaemonPortOptions Addr=: all interfaces, port 25.
    "sendmail": "*:25",
    # Apache and nginx listen where Listen/listen say (Debian: *:80).
    "apache": "*:80",
    "nginx": "*:80",
    # lighttpd server.bind: all interfaces, server.port 80.
    "lighttpd": "*:80",
}

MAILWEB_EXECUTABLES: dict[str, tuple[str, ...]] = {
    "postfix": ("/usr/sbin/postfix", "/usr/lib/postfix/sbin/master",
                "/usr/libexec/postfix/master"),
    "exim4": ("/usr/sbin/exim4", "/usr/sbin/exim"),
    "sendmail": ("/usr/sbin/sendmail-mta", "/usr/sbin/sendmail.sendmail"),
    "apache": ("/usr/sbin/apache2", "/usr/sbin/httpd"),
    "nginx": ("/usr/sbin/nginx",),
    "lighttpd": ("/usr/sbin/lighttpd",),
}

MAILWEB_PATTERNS: tuple[str, ...] = (
    "/etc/postfix/main.cf", "/etc/postfix/master.cf", EXIM4_FILE, SENDMAIL_FILE,
    "/etc/apache2/*.conf", "/etc/apache2/*/*.conf", "/etc/apache2/*/*", "/etc/httpd/conf/*",
    "/etc/httpd/conf.d/*", "/etc/httpd/conf.modules.d/*", "/etc/nginx/*", "/etc/nginx/*/*",
    "/etc/lighttpd/*.conf", "/etc/lighttpd/*/*.conf",
)


def head_word(line: str) -> tuple[str, str]:
    """The first word of ``line`` and the rest, split at any run of blanks (tabs too)."""
    parts = line.split(None, 1)
    if not parts:
        return "", ""
    return parts[0], parts[1] if len(parts) > 1 else ""


def section_line(line: str, raw: str, stack: list[str], out: DaemonBuilder, source: Source,
                 *, lower: bool = False) -> str | None:
    """Apply an Apache-style section line to ``stack`` (Apache, CUPS, ProFTPD).

    ``</Name>`` closes the innermost section (``""`` is returned); ``<Name args>`` opens one,
    its words with blanks folded (lower-cased with ``lower``), which is returned; any other
    line gives ``None``. A close without an open section, or an open past
    :data:`MAX_BLOCK_DEPTH`, is recorded as malformed.
    """
    if line.startswith("</"):
        if stack:
            stack.pop()
        else:
            out.bad("closing a section that is not open", raw, source)
        return ""
    if line.startswith("<") and line.endswith(">"):
        section = " ".join(line[1:-1].split())
        section = section.lower() if lower else section
        if len(stack) >= MAX_BLOCK_DEPTH:
            out.bad("sections nested too deep", raw, source)
        stack.append(section)
        return section
    return None


def section_of(stack: list[str]) -> str | None:
    """The section path of a setting: open blocks joined by `` > `` (the outer ones when a
    hostile file nests deeper than :data:`MAX_BLOCK_DEPTH`, so the cost stays linear)."""
    return " > ".join(stack[:MAX_BLOCK_DEPTH]) or None


# --- postfix --------------------------------------------------------------------------------

def _logical_lines(text: str) -> list[tuple[int, str]]:
    """postfix lines: a line starting with whitespace continues the one before."""
    out: list[tuple[int, list[str]]] = []
    for number, raw in numbered_lines(text):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if raw[0] in " \t" and out:
            out[-1][1].append(raw.strip())
        else:
            out.append((number, [raw.strip()]))
    return [(number, " ".join(parts)) for number, parts in out]


def collect_postfix(ctx: CollectContext) -> list[DaemonBuilder]:
    out = DaemonBuilder("postfix")
    main = posixpath.join(POSTFIX_DIR, "main.cf")
    text = read_config(ctx, main)
    if text is not None:
        out.files.append(main)
        for number, line in _logical_lines(text):
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                out.bad("not name = value", line, Source(main, number))
                continue
            out.add(key.strip(), value.strip(), Source(main, number))
    master = posixpath.join(POSTFIX_DIR, "master.cf")
    text = read_config(ctx, master)
    if text is not None:
        out.files.append(master)
        for number, line in _logical_lines(text):
            out.add("service", line, Source(master, number), "master.cf")
    return [out]


def collect_exim4(ctx: CollectContext) -> list[DaemonBuilder]:
    out = DaemonBuilder("exim4")
    text = read_config(ctx, EXIM4_FILE)
    if text is not None:
        out.files.append(EXIM4_FILE)
        settings, malformed = parse_shell_vars(text, EXIM4_FILE)
        out.settings.extend(settings)
        out.malformed.extend(malformed)
    return [out]


def collect_sendmail(ctx: CollectContext) -> list[DaemonBuilder]:
    out = DaemonBuilder("sendmail")
    text = read_config(ctx, SENDMAIL_FILE)
    if text is not None:
        out.files.append(SENDMAIL_FILE)
        for number, raw in numbered_lines(text):
            if raw.startswith("O DaemonPortOptions="):
                out.add("DaemonPortOptions", raw[len("O DaemonPortOptions="):].strip(),
                        Source(SENDMAIL_FILE, number))
    return [out]


# --- Apache httpd ---------------------------------------------------------------------------

def _apache_lines(text: str) -> list[tuple[int, str]]:
    """Directive lines with backslash continuations joined; comments are whole lines."""
    out: list[tuple[int, str]] = []
    first = 0
    parts: list[str] = []
    for number, raw in numbered_lines(text):
        line = raw.strip()
        if not parts:
            first = number
        if line.endswith("\\"):
            parts.append(line[:-1].rstrip())
            continue
        parts.append(line)
        joined = " ".join(p for p in parts if p)
        parts = []
        if joined and not joined.startswith("#"):
            out.append((first, joined))
    if parts and " ".join(parts).strip():
        out.append((first, " ".join(p for p in parts if p)))
    return out


def _apache_file(guard: IncludeGuard, out: DaemonBuilder, root: str, path: str, depth: int,
                 src: Source | None, stack: list[str]) -> None:
    text = guard.read(path, depth, src)
    if text is None:
        return
    out.files.append(path)
    for number, line in _apache_lines(text):
        source = Source(path, number)
        if section_line(line, line, stack, out, source) is not None:
            continue
        words = split_words(line) or line.split()
        key = words[0].lower()
        value = " ".join(words[1:])
        if key in ("include", "includeoptional") and len(words) > 1:
            pattern = join_path(root, words[1])
            found = glob_files(guard.ctx, pattern) if any(c in pattern for c in "*?[") else (
                glob_files(guard.ctx, posixpath.join(pattern, "*"))
                if guard.ctx.fs.is_dir(pattern) else [pattern])
            for inc in found:
                if key == "includeoptional" and not guard.ctx.fs.exists(inc):
                    continue
                _apache_file(guard, out, root, inc, depth + 1, source, stack)
            continue
        out.add(key, value, source, section_of(stack))


def collect_apache(ctx: CollectContext) -> list[DaemonBuilder]:
    out = DaemonBuilder("apache")
    guard = IncludeGuard(ctx, "listeners")
    for root, main in APACHE_ROOTS:
        _apache_file(guard, out, root, posixpath.join(root, main), 0, None, [])
    out.malformed.extend(guard.malformed)
    return [out]


# --- nginx ----------------------------------------------------------------------------------

def _nginx_tokens(text: str) -> list[tuple[str, int]]:
    """Words, ``{``, ``}`` and ``;`` with their line numbers; quotes and comments handled."""
    tokens: list[tuple[str, int]] = []
    line = 1
    i, n = 0, len(text)
    while i < n and len(tokens) < NGINX_TOKENS:
        ch = text[i]
        if ch == "\n":
            line += 1
            i += 1
        elif ch.isspace():
            i += 1
        elif ch == "#":
            end = text.find("\n", i)
            i = n if end == -1 else end
        elif ch in "{};":
            tokens.append((ch, line))
            i += 1
        elif ch in "'\"":
            end = text.find(ch, i + 1)
            end = n if end == -1 else end
            word = text[i + 1:end]
            tokens.append((word, line))
            line += word.count("\n")
            i = end + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "{};#":
                j += 1
            tokens.append((text[i:j], line))
            i = j
    return tokens


def _nginx_file(guard: IncludeGuard, out: DaemonBuilder, path: str, depth: int,
                src: Source | None, stack: list[str]) -> None:
    text = guard.read(path, depth, src)
    if text is None:
        return
    out.files.append(path)
    tokens = _nginx_tokens(text)
    if len(tokens) >= NGINX_TOKENS:
        guard.ctx.incomplete(f"read only the first {NGINX_TOKENS} tokens", path)
    words: list[str] = []
    first = 0
    for token, line in tokens:
        if not words:
            first = line
        if token == ";":
            if not words:
                continue
            source = Source(path, first)
            if words[0] == "include" and len(words) > 1:
                for inc in glob_files(guard.ctx, join_path(NGINX_ROOT, words[1])):
                    _nginx_file(guard, out, inc, depth + 1, source, stack)
            else:
                out.add(words[0], " ".join(words[1:]), source, section_of(stack))
            words = []
        elif token == "{":
            if len(stack) >= MAX_BLOCK_DEPTH:
                out.bad("blocks nested too deep", " ".join(words), Source(path, first))
            stack.append(" ".join(words) or "?")
            words = []
        elif token == "}":
            if words:
                out.bad("directive without ';'", " ".join(words), Source(path, first))
                words = []
            if stack:
                stack.pop()
            else:
                out.bad("closing a block that is not open", "}", Source(path, line))
        else:
            words.append(token)
    if words:
        out.bad("directive without ';'", " ".join(words), Source(path, first))


def collect_nginx(ctx: CollectContext) -> list[DaemonBuilder]:
    out = DaemonBuilder("nginx")
    guard = IncludeGuard(ctx, "listeners")
    _nginx_file(guard, out, posixpath.join(NGINX_ROOT, "nginx.conf"), 0, None, [])
    out.malformed.extend(guard.malformed)
    return [out]


# --- lighttpd -------------------------------------------------------------------------------

def _unquoted_depth(text: str) -> int:
    """Parentheses opened minus closed outside double quotes (lighttpd values nest
    ``( ... )``); a string does not go on to the next line."""
    depth, quoted, prev = 0, False, ""
    for ch in text:
        if ch == '"' and prev != "\\":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        prev = ch
    return depth


def _lighttpd_statements(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    first, depth = 0, 0
    parts: list[str] = []
    for number, raw in numbered_lines(text):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not parts:
            first = number
        parts.append(line)
        depth += _unquoted_depth(line)
        if depth > 0:
            continue
        out.append((first, " ".join(parts)))
        parts, depth = [], 0
    if parts:
        out.append((first, " ".join(parts)))
    return out


def _lighttpd_file(guard: IncludeGuard, out: DaemonBuilder, path: str, depth: int,
                   src: Source | None, stack: list[str]) -> None:
    text = guard.read(path, depth, src)
    if text is None:
        return
    out.files.append(path)
    for number, line in _lighttpd_statements(text):
        source = Source(path, number)
        while line.startswith("}"):
            if stack:
                stack.pop()
            else:
                out.bad("closing a block that is not open", line, source)
            line = line[1:].strip()
        if not line:
            continue
        if line.endswith("{"):
            if len(stack) >= MAX_BLOCK_DEPTH:
                out.bad("blocks nested too deep", line, source)
            stack.append(" ".join(line[:-1].split()) or "?")
            continue
        word, rest = head_word(line)
        if word in ("include", "include_shell"):
            target = rest.strip().strip('"')
            out.add(word, target, source, section_of(stack))
            if word == "include" and target:
                for inc in glob_files(guard.ctx, join_path("/etc/lighttpd", target)):
                    _lighttpd_file(guard, out, inc, depth + 1, source, stack)
            continue
        key, op, value = line.partition("=")
        if not op or not key.strip():
            out.bad("not key = value", line, source)
            continue
        key = key.strip()
        if key.endswith(("+", ":")):
            key = key[:-1].strip()
        out.add(key, value.strip(), source, section_of(stack))


def collect_lighttpd(ctx: CollectContext) -> list[DaemonBuilder]:
    out = DaemonBuilder("lighttpd")
    guard = IncludeGuard(ctx, "listeners")
    _lighttpd_file(guard, out, "/etc/lighttpd/lighttpd.conf", 0, None, [])
    out.malformed.extend(guard.malformed)
    return [out]


def collect_mailweb(ctx: CollectContext) -> list[DaemonBuilder]:
    builders: list[DaemonBuilder] = []
    for collect in (collect_postfix, collect_exim4, collect_sendmail, collect_apache,
                    collect_nginx, collect_lighttpd):
        builders.extend(collect(ctx))
    return builders
