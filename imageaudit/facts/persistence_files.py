"""Line parsers for :mod:`imageaudit.facts.persistence`: crontabs, scripts, PAM service files,
the dynamic linker's configuration, kernel module lists and modprobe directives.

Each parser turns the text of one file into records, keeping every line it understands as
the file has it (with its line number) and nothing it does not (blank lines, comments).
Nothing here judges a line. Follows crontab(5) (system and user tables, ``@`` keywords,
environment lines), anacrontab(5), pam.d(5) (``-type``, ``[value=action]`` controls,
``@include``), pam.conf(5), ld.so(8) (``/etc/ld.so.preload`` separated by blanks or colons),
ldconfig(8) (``include`` in ``ld.so.conf``), modules-load.d(5), modules(5) (Debian's
``/etc/modules``) and modprobe.d(5) (``install``/``remove`` run shell commands).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from imageaudit.facts.accounts.pam import PAM_TYPES
from imageaudit.facts.accounts.pam import _tokens as pam_tokens
from imageaudit.facts.masking import shown_masked
from imageaudit.facts.textlines import glibc_lines, logical_lines
from imageaudit.model import Source

MAX_TEXT = 16_384  # characters of one (joined) line kept; a longer line is cut and said so

# Where each place's files are (the collector's, kept here to keep it short).
CRON_SCRIPT_DIRS = (
    "/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly", "/etc/cron.monthly",
    "/etc/cron.yearly", "/etc/periodic/15min", "/etc/periodic/hourly", "/etc/periodic/daily",
    "/etc/periodic/weekly", "/etc/periodic/monthly",
)
USER_CRONTAB_DIRS = ("/var/spool/cron/crontabs", "/var/spool/cron/tabs", "/etc/crontabs")
AT_DIRS = ("/var/spool/cron/atjobs", "/var/spool/at", "/var/spool/atjobs")
RC_FILES = ("/etc/rc.local", "/etc/rc.d/rc.local", "/etc/boot.local", "/etc/rc.d/boot.local")
RC_DIRS = ("/etc/init.d", "/etc/rc.d/init.d", "/etc/local.d")
PROFILE_FILES = (
    "/etc/profile", "/etc/bash.bashrc", "/etc/bashrc", "/etc/bash.bash_logout", "/etc/zshenv",
    "/etc/zprofile", "/etc/zshrc", "/etc/zlogin", "/etc/zsh/zshenv", "/etc/zsh/zprofile",
    "/etc/zsh/zshrc", "/etc/zsh/zlogin", "/etc/csh.cshrc", "/etc/csh.login", "/etc/mkshrc",
)
PROFILE_DIRS = ("/etc/profile.d",)
HOME_FILES = (
    ".profile", ".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".zshrc",
    ".zprofile", ".zshenv", ".zlogin", ".kshrc", ".mkshrc", ".cshrc", ".tcshrc", ".login",
)
PAM_MODULE_DIRS = ("/lib/security", "/lib64/security", "/usr/lib/security", "/usr/lib64/security")
MODULES_LOAD_DIRS = ("/etc/modules-load.d", "/lib/modules-load.d", "/usr/lib/modules-load.d",
                     "/usr/local/lib/modules-load.d")
MODPROBE_DIRS = ("/etc/modprobe.d", "/lib/modprobe.d", "/usr/lib/modprobe.d",
                 "/usr/local/lib/modprobe.d")
KO_SUFFIXES = (".ko", ".ko.xz", ".ko.gz", ".ko.zst")
KO_MAGIC = (b"\x7fELF", b"\xfd7zXZ\x00", b"\x1f\x8b", b"\x28\xb5\x2f\xfd")

_ENV_LINE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*[ \t]*=")
_CRON_KEYWORDS = frozenset(
    {"@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
     "@hourly"}
)


@dataclass(frozen=True, slots=True)
class PersistenceEntry:
    """One line of a place the system runs things from without being asked.

    ``mechanism`` names the place (``cron``, ``at``, ``systemd``, ``rc``, ``profile``,
    ``environment``, ``ld_preload``, ``ld_conf``, ``modules``, ``modprobe``); ``kind`` what
    the line is there (``job``, ``script``, ``ExecStart``, ``Environment``, ``preload``,
    ``libdir``, ``load``, ``install``...). ``command`` is the part a shell runs, where the
    line has one (a crontab line without its schedule and user, an ``Exec*=`` value
    without its prefixes, a modprobe ``install`` command); ``cut`` when the line was longer
    than :data:`MAX_TEXT` and only its start is kept.
    """

    mechanism: str
    kind: str
    # Kept whole for the checks; written to the facts' JSON with credentials masked.
    text: str = field(metadata={"shown": shown_masked})
    source: Source
    command: str | None = field(default=None, metadata={"shown": shown_masked})
    account: str | None = None
    unit: str | None = None
    cut: bool = False


@dataclass(frozen=True, slots=True)
class PersistenceFile:
    """A file the collector read lines from, with what it is for and who may change it."""

    mechanism: str
    path: str
    mode: int
    uid: int
    gid: int
    size: int
    binary: bool  # not text (an ELF or other program): its lines were not read
    account: str | None = None  # the account whose home or crontab it is


@dataclass(frozen=True, slots=True)
class PamRule:
    """One rule line of a PAM service file (``/etc/pam.d/<service>`` or ``/etc/pam.conf``)."""

    service: str
    type: str  # auth | account | password | session (a leading "-" kept)
    control: str
    module: str  # as written: "pam_unix.so" or an absolute path
    arguments: tuple[str, ...]
    module_path: str | None  # the file the module name resolves to in the image, if found
    source: Source


def _cap(text: str) -> tuple[str, bool]:
    return (text[:MAX_TEXT], True) if len(text) > MAX_TEXT else (text, False)


def entry(
    mechanism: str, kind: str, text: str, source: Source, command: str | None = None,
    **extra: str | None,
) -> PersistenceEntry:
    """A record with its text (and command) cut at :data:`MAX_TEXT`."""
    text, cut = _cap(text)
    if command is not None:
        command, cut2 = _cap(command)
        cut = cut or cut2
    return PersistenceEntry(mechanism, kind, text, source, command, cut=cut, **extra)


def script_lines(text: str) -> Iterator[tuple[int, str]]:
    """Non-blank, non-comment lines of a shell script, backslash continuations joined."""
    for number, line in logical_lines(text):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield number, stripped


def _split_fields(line: str, count: int) -> tuple[list[str], str] | None:
    """The first ``count`` blank-separated fields and the rest of the line, if there are."""
    fields: list[str] = []
    rest = line
    for _ in range(count):
        rest = rest.lstrip(" \t")
        cut = len(rest)
        for i, ch in enumerate(rest):
            if ch in " \t":
                cut = i
                break
        if cut == 0:
            return None
        fields.append(rest[:cut])
        rest = rest[cut:]
    rest = rest.strip(" \t")
    return (fields, rest) if rest else None


def crontab(
    path: str, text: str, *, system: bool, owner: str | None, mechanism: str = "cron"
) -> list[PersistenceEntry]:
    """Lines of a crontab: ``env`` assignments, ``job`` lines (schedule, [user,] command) and
    lines that are neither (``unparsed``, kept: cron skips them, they are still evidence)."""
    out: list[PersistenceEntry] = []
    for number, raw in enumerate(glibc_lines(text), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        src = Source(path, number)
        if _ENV_LINE.match(line):
            out.append(entry(mechanism, "env", line, src, account=owner))
            continue
        first = line.split(None, 1)[0]
        count = 1 if first in _CRON_KEYWORDS else 5
        if system:
            count += 1
        split = _split_fields(line, count)
        if split is None:
            out.append(entry(mechanism, "unparsed", line, src, account=owner))
            continue
        fields, command = split
        account = fields[-1] if system else owner
        out.append(entry(mechanism, "job", line, src, command, account=account))
    return out


def anacrontab(path: str, text: str) -> list[PersistenceEntry]:
    """``period delay job-id command`` lines of ``/etc/anacrontab`` and its assignments."""
    out: list[PersistenceEntry] = []
    for number, raw in enumerate(glibc_lines(text), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        src = Source(path, number)
        if _ENV_LINE.match(line):
            out.append(entry("cron", "env", line, src))
            continue
        split = _split_fields(line, 3)
        if split is None:
            out.append(entry("cron", "unparsed", line, src))
        else:
            out.append(entry("cron", "job", line, src, split[1], account="root"))
    return out


def script(
    mechanism: str, path: str, text: str, account: str | None = None
) -> list[PersistenceEntry]:
    """Every command line of a script run by ``mechanism`` (cron.daily, init.d, profile...)."""
    return [
        entry(mechanism, "script", line, Source(path, number), line, account=account)
        for number, line in script_lines(text)
    ]


def assignments(mechanism: str, path: str, text: str) -> list[PersistenceEntry]:
    """``NAME=value`` lines of ``/etc/environment`` (pam_env reads it; no shell runs it)."""
    out = []
    for number, raw in enumerate(glibc_lines(text), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            out.append(entry(mechanism, "assignment", line, Source(path, number)))
    return out


def preload_list(path: str, text: str) -> list[PersistenceEntry]:
    """The libraries of ``/etc/ld.so.preload``: separated by blanks, newlines or colons."""
    out = []
    for number, raw in enumerate(glibc_lines(text), start=1):
        line = raw.split("#", 1)[0]
        for name in re.split(r"[\s:]+", line):
            if name:
                out.append(entry("ld_preload", "preload", name, Source(path, number)))
    return out


def ld_conf(path: str, text: str) -> tuple[list[PersistenceEntry], list[str]]:
    """Library directories of an ``ld.so.conf`` file, and its ``include`` glob patterns."""
    dirs: list[PersistenceEntry] = []
    includes: list[str] = []
    for number, raw in enumerate(glibc_lines(text), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("include") and line[7:8] in (" ", "\t"):
            includes.extend(line[8:].split())
            continue
        if line.startswith("hwcap") and line[5:6] in (" ", "\t"):
            continue
        for name in re.split(r"[\s:,=]+", line):
            if name:
                dirs.append(entry("ld_conf", "libdir", name, Source(path, number)))
    return dirs, includes


def module_list(path: str, text: str) -> list[PersistenceEntry]:
    """Modules named in ``/etc/modules`` or a ``modules-load.d`` file (first word a line)."""
    out = []
    for number, raw in enumerate(glibc_lines(text), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        name = line.split()[0]
        out.append(entry("modules", "load", name, Source(path, number)))
    return out


def modprobe_conf(path: str, text: str) -> list[PersistenceEntry]:
    """Every directive of a ``modprobe.d`` file; ``install``/``remove`` carry their command."""
    out = []
    for number, line in logical_lines(text):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        words = stripped.split(None, 2)
        kind = words[0].lower()
        command = words[2] if kind in ("install", "remove") and len(words) == 3 else None
        out.append(entry("modprobe", kind, stripped, Source(path, number), command))
    return out


def pam_rules(path: str, text: str, *, conf: bool = False) -> list[tuple[list[str], Source]]:
    """The token lists of the rule lines of a PAM file (``@include`` lines included)."""
    out = []
    for number, raw in logical_lines(text):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        tokens = pam_tokens(line)
        if conf and tokens:
            tokens = [*tokens[1:], tokens[0]]  # service last: the same layout as pam.d lines
        out.append((tokens, Source(path, number)))
    return out


def pam_rule(
    service: str, tokens: list[str], source: Source, module_path: str | None
) -> PamRule | None:
    """A :class:`PamRule` from a line's tokens; ``None`` for ``@include`` and broken lines."""
    if len(tokens) < 3 or tokens[0].lstrip("-").lower() not in PAM_TYPES:
        return None
    return PamRule(
        service=service,
        type=tokens[0],
        control=tokens[1],
        module=tokens[2],
        arguments=tuple(tokens[3:]),
        module_path=module_path,
        source=source,
    )


SYSTEMD_COMMAND_KEYS = (
    "ExecStart", "ExecStartPre", "ExecStartPost", "ExecCondition", "ExecReload", "ExecStop",
    "ExecStopPost",
)
SYSTEMD_ENV_KEYS = ("Environment", "EnvironmentFile", "PassEnvironment")


def systemd_command(value: str) -> str:
    """An ``Exec*=`` value without its special prefixes (``-``, ``@``, ``:``, ``+``, ``!``)."""
    i = 0
    while i < len(value) and value[i] in "-@:+!":
        i += 1
    return value[i:]
