"""Accounts: passwd, shadow, group, gshadow, shells, PAM ``nullok``, sudoers, authorized keys.

Every entry is kept, however odd: an empty or locked password, a user without a shadow
entry, a line with the wrong number of fields (a :class:`MalformedLine`). Shadow lines that
are malformed are recorded without their text, since they may carry a hash.

Follows: passwd(5), shadow(5), group(5), gshadow(5), shells(5), crypt(5), pam.d(5),
pam_unix(8), sudoers(5), sshd(8) "AUTHORIZED_KEYS FILE FORMAT".
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from imageaudit.imagefs import ImageFSError
from imageaudit.model import Source

from .base import CollectContext, Collector
from .pam import PamUnixLine, parse_pam_file
from .passwords_hash import PasswordHash, classify_password
from .sshkeys import AuthorizedKey, parse_key_line
from .sudoers import SudoersFacts, parse_sudoers
from .textlines import MalformedLine

MAX_HOMES = 10_000
MAX_PAM_FILES = 500
NOLOGIN_SHELLS = frozenset({"nologin", "false"})


@dataclass(frozen=True, slots=True)
class AccountFile:
    """One account database file: absent, or present with its metadata."""

    path: str
    present: bool
    size: int | None = None
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class PasswdEntry:
    source: Source
    name: str
    password: PasswordHash  # state "shadowed" for "x"
    uid: int
    gid: int
    gecos: str
    home: str
    shell: str
    shell_nologin: bool  # basename is nologin or false
    shell_listed: bool | None  # in /etc/shells; None when /etc/shells is absent


@dataclass(frozen=True, slots=True)
class ShadowEntry:
    source: Source
    name: str
    password: PasswordHash
    last_change: int | None
    min_days: int | None
    max_days: int | None
    warn_days: int | None
    inactive_days: int | None
    expire_date: int | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupEntry:
    source: Source
    name: str
    password: PasswordHash
    gid: int
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GShadowEntry:
    source: Source
    name: str
    password: PasswordHash
    admins: tuple[str, ...]
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AuthorizedKeysFile:
    path: str
    accounts: tuple[str, ...]  # passwd accounts whose home holds it (empty under /etc/ssh)
    uid: int
    gid: int
    mode: int
    keys: int


@dataclass(frozen=True, slots=True)
class AccountsFacts:
    files: tuple[AccountFile, ...]
    passwd: tuple[PasswdEntry, ...]
    shadow: tuple[ShadowEntry, ...]
    groups: tuple[GroupEntry, ...]
    gshadow: tuple[GShadowEntry, ...]
    shells: tuple[str, ...]
    missing_shadow: tuple[str, ...]  # passwd users without a shadow entry (shadow present)
    pam_unix: tuple[PamUnixLine, ...]
    sudoers: SudoersFacts
    authorized_key_files: tuple[AuthorizedKeysFile, ...]
    authorized_keys: tuple[AuthorizedKey, ...]
    malformed: tuple[MalformedLine, ...]

    def file(self, path: str) -> AccountFile | None:
        """The record of one account file, e.g. ``/etc/shadow``."""
        return next((f for f in self.files if f.path == path), None)

    def shadow_entry(self, name: str) -> ShadowEntry | None:
        """The first shadow entry of ``name`` (the one the C library uses)."""
        return next((s for s in self.shadow if s.name == name), None)


def _read(ctx: CollectContext, path: str, files: list[AccountFile]) -> str | None:
    result = ctx.read(path)
    if result is None:
        files.append(AccountFile(path, present=False))
        return None
    st = ctx.fs.stat(path)
    files.append(AccountFile(path, True, result.size, st.mode, st.uid, st.gid, result.truncated))
    if result.truncated:
        ctx.error(
            "accounts", f"read only the first {len(result.data)} of {result.size} bytes", path
        )
    return result.text()


def _int(value: str) -> int | None:
    value = value.strip()
    if value.isascii() and (value.isdigit() or (value[:1] == "-" and value[1:].isdigit())):
        return int(value)
    return None


def _lines(text: str) -> list[tuple[int, str]]:
    return [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _passwd(
    path: str, text: str, shells: set[str] | None, malformed: list[MalformedLine]
) -> list[PasswdEntry]:
    out: list[PasswdEntry] = []
    for lineno, line in _lines(text):
        src = Source(path, lineno)
        if line.startswith(("+", "-")):
            malformed.append(MalformedLine(src, "NIS compat entry", line))
            continue
        f = line.split(":")
        uid, gid = (_int(f[2]), _int(f[3])) if len(f) == 7 else (None, None)
        if len(f) != 7 or uid is None or gid is None:
            reason = f"{len(f)} fields, expected 7" if len(f) != 7 else "uid or gid not a number"
            # The password field may hold a hash: never copy the line.
            malformed.append(MalformedLine(src, reason))
            continue
        shell = f[6]
        out.append(
            PasswdEntry(
                source=src,
                name=f[0],
                password=classify_password(f[1], in_passwd=True),
                uid=uid,
                gid=gid,
                gecos=f[4],
                home=f[5],
                shell=shell,
                shell_nologin=posixpath.basename(shell) in NOLOGIN_SHELLS,
                shell_listed=None if shells is None else shell in shells,
            )
        )
    return out


def _shadow(path: str, text: str, malformed: list[MalformedLine]) -> list[ShadowEntry]:
    out: list[ShadowEntry] = []
    for lineno, line in _lines(text):
        src = Source(path, lineno)
        f = line.split(":")
        if len(f) != 9:
            malformed.append(MalformedLine(src, f"{len(f)} fields, expected 9"))
            continue
        numbers = [_int(v) for v in f[2:8]]
        problems = tuple(
            f"field {i + 3} is not a number"
            for i, (raw, num) in enumerate(zip(f[2:8], numbers, strict=True))
            if raw.strip() and num is None
        )
        out.append(
            ShadowEntry(
                source=src,
                name=f[0],
                password=classify_password(f[1]),
                last_change=numbers[0],
                min_days=numbers[1],
                max_days=numbers[2],
                warn_days=numbers[3],
                inactive_days=numbers[4],
                expire_date=numbers[5],
                problems=problems,
            )
        )
    return out


def _groups(path: str, text: str, malformed: list[MalformedLine]) -> list[GroupEntry]:
    out: list[GroupEntry] = []
    for lineno, line in _lines(text):
        src = Source(path, lineno)
        f = line.split(":")
        gid = _int(f[2]) if len(f) == 4 else None
        if gid is None:
            reason = f"{len(f)} fields, expected 4" if len(f) != 4 else "gid not a number"
            malformed.append(MalformedLine(src, reason))
            continue
        members = tuple(m for m in f[3].split(",") if m)
        out.append(GroupEntry(src, f[0], classify_password(f[1], in_passwd=True), gid, members))
    return out


def _gshadow(path: str, text: str, malformed: list[MalformedLine]) -> list[GShadowEntry]:
    out: list[GShadowEntry] = []
    for lineno, line in _lines(text):
        src = Source(path, lineno)
        f = line.split(":")
        if len(f) != 4:
            malformed.append(MalformedLine(src, f"{len(f)} fields, expected 4"))
            continue
        admins = tuple(m for m in f[2].split(",") if m)
        members = tuple(m for m in f[3].split(",") if m)
        out.append(GShadowEntry(src, f[0], classify_password(f[1]), admins, members))
    return out


def _shells(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def _pam(ctx: CollectContext, malformed: list[MalformedLine]) -> list[PamUnixLine]:
    out: list[PamUnixLine] = []
    for path in ctx.fs.glob("/etc/pam.d/*")[:MAX_PAM_FILES]:
        if not ctx.fs.is_file(path):
            continue
        text = ctx.read_text(path)
        if text is not None:
            out.extend(parse_pam_file(path, text, malformed))
    return out


def _listdir(ctx: CollectContext, path: str) -> list[str] | None:
    try:
        return ctx.fs.listdir(path)
    except ImageFSError:
        return None


def _read_sudo(ctx: CollectContext, path: str) -> str | None:
    return ctx.read_text(path) if ctx.fs.is_file(path) else None


def _authorized_keys(
    ctx: CollectContext, passwd: list[PasswdEntry]
) -> tuple[list[AuthorizedKeysFile], list[AuthorizedKey]]:
    owners: dict[str, list[str]] = {}
    homes: dict[str, list[str]] = {}
    for entry in passwd:
        if entry.home.startswith("/"):
            homes.setdefault(posixpath.normpath(entry.home), []).append(entry.name)
    if len(homes) > MAX_HOMES:
        ctx.error("accounts", f"looked for authorized_keys in the first {MAX_HOMES} homes only")
    for home, names in sorted(homes.items())[:MAX_HOMES]:
        for name in ("authorized_keys", "authorized_keys2"):
            owners[posixpath.join(home, ".ssh", name)] = names
    for path in ctx.fs.glob("/etc/ssh/authorized_keys*"):
        if ctx.fs.is_dir(path):
            for name in _listdir(ctx, path) or []:
                owners.setdefault(posixpath.join(path, name), [])
        else:
            owners.setdefault(path, [])
    files: list[AuthorizedKeysFile] = []
    keys: list[AuthorizedKey] = []
    for path, names in sorted(owners.items()):
        if not ctx.fs.is_file(path):
            continue
        text = ctx.read_text(path)
        if text is None:
            continue
        account = names[0] if names else None
        found = [
            k
            for n, line in enumerate(text.splitlines(), 1)
            if (k := parse_key_line(line, Source(path, n), account)) is not None
        ]
        keys.extend(found)
        st = ctx.fs.stat(path)
        files.append(AuthorizedKeysFile(path, tuple(names), st.uid, st.gid, st.mode, len(found)))
    return files, keys


def collect(ctx: CollectContext) -> AccountsFacts:
    """Read the account databases, PAM, sudoers and authorized keys of the image."""
    files: list[AccountFile] = []
    malformed: list[MalformedLine] = []
    shells_text = _read(ctx, "/etc/shells", files)
    shells = _shells(shells_text) if shells_text is not None else None
    passwd_text = _read(ctx, "/etc/passwd", files)
    passwd = _passwd(
        "/etc/passwd",
        passwd_text or "",
        set(shells or ()) if shells is not None else None,
        malformed,
    )
    shadow_text = _read(ctx, "/etc/shadow", files)
    shadow = _shadow("/etc/shadow", shadow_text or "", malformed)
    group_text = _read(ctx, "/etc/group", files)
    groups = _groups("/etc/group", group_text or "", malformed)
    gshadow_text = _read(ctx, "/etc/gshadow", files)
    gshadow = _gshadow("/etc/gshadow", gshadow_text or "", malformed)
    shadow_names = {s.name for s in shadow}
    missing = (
        tuple(sorted({p.name for p in passwd} - shadow_names)) if shadow_text is not None else ()
    )
    key_files, keys = _authorized_keys(ctx, passwd)
    return AccountsFacts(
        files=tuple(files),
        passwd=tuple(passwd),
        shadow=tuple(shadow),
        groups=tuple(groups),
        gshadow=tuple(gshadow),
        shells=tuple(shells or ()),
        missing_shadow=missing,
        pam_unix=tuple(_pam(ctx, malformed)),
        sudoers=parse_sudoers(lambda p: _read_sudo(ctx, p), lambda p: _listdir(ctx, p)),
        authorized_key_files=tuple(key_files),
        authorized_keys=tuple(keys),
        malformed=tuple(malformed),
    )


COLLECTOR = Collector(
    name="accounts",
    patterns=(
        "/etc/passwd",
        "/etc/shadow",
        "/etc/group",
        "/etc/gshadow",
        "/etc/shells",
        "/etc/pam.d/*",
        "/etc/sudoers",
        "/etc/sudoers.d/*",
        "/etc/ssh/authorized_keys*",
        "/root/.ssh/authorized_keys*",
        "/home/*/.ssh/authorized_keys*",
    ),
    collect=collect,
)
