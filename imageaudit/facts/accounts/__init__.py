"""Accounts: passwd, shadow, group, gshadow, shells, PAM ``nullok``, sudoers, authorized keys.

Lines are read exactly as glibc's nss_files reads them (:mod:`imageaudit.facts.accounts.nss_files`):
what ``login``, ``su``, ``sshd`` and ``pam_unix`` see is what the rules judge. Every entry is
kept, however odd: an empty or locked password, a user without a shadow entry, a second
entry of the same name (the C library uses the first). A line glibc skips is a
:class:`MalformedLine` with the reason, recorded without its text, since it may carry a hash.

A database that is present but cannot be read whole (a link to nothing, a loop, a file over
:data:`ACCOUNT_DB_LIMIT`), an absent ``/etc/passwd``, or an absent ``/etc/shadow`` that
passwd entries point to (``x``), leaves the accounts facts incomplete: the rules that need
them cannot be judged, rather than judged on no accounts.

Follows: passwd(5), shadow(5), group(5), gshadow(5), shells(5), crypt(5), pam.d(5),
pam_unix(8), sudoers(5), sshd(8) "AUTHORIZED_KEYS FILE FORMAT".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from imageaudit.facts.accounts.authorized_keys import AuthorizedKeysFile, authorized_keys
from imageaudit.facts.accounts.nss_files import (
    ACCOUNT_DB_LIMIT,
    Rejected,
    gc_paused,
    group_file,
    nss_lines,
    parse_gshadow,
    parse_shadow,
    passwd_file,
)
from imageaudit.facts.accounts.pam import PamUnixLine, parse_pam_file
from imageaudit.facts.accounts.password_field import PasswordHash, PasswordState, classify_password
from imageaudit.facts.accounts.sshkeys import AuthorizedKey
from imageaudit.facts.accounts.sudoers import SudoersFacts, parse_sudoers
from imageaudit.facts.base import CollectContext, Collector
from imageaudit.facts.textlines import MalformedLine, glibc_lines
from imageaudit.imagefs import FileStat, ImageFSError
from imageaudit.model import Source

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

    # Built on first use: looking each account up by scanning the tuple is quadratic.
    _first_shadow: dict[str, ShadowEntry] = field(
        default_factory=dict, init=False, repr=False, compare=False, metadata={"internal": True}
    )

    def shadow_entry(self, name: str) -> ShadowEntry | None:
        """The first shadow entry of ``name`` (the one ``getspnam`` returns)."""
        if self.shadow and not self._first_shadow:
            for entry in self.shadow:
                self._first_shadow.setdefault(entry.name, entry)
        return self._first_shadow.get(name)


def _stat(ctx: CollectContext, path: str) -> FileStat | None:
    try:
        return ctx.fs.stat(path)
    except ImageFSError:
        return None


def _read(
    ctx: CollectContext, path: str, files: list[AccountFile], whole: bool = True
) -> str | None:
    """The text of one database; a present file that cannot be read whole marks it incomplete."""
    text = ctx.read_text(path, ACCOUNT_DB_LIMIT, whole=whole)
    st = _stat(ctx, path) if text is not None else None
    if text is None or st is None:
        files.append(AccountFile(path, present=False))
        return text
    truncated = st.size > ACCOUNT_DB_LIMIT
    files.append(AccountFile(path, True, st.size, st.mode, st.uid, st.gid, truncated))
    return text


def _rejected(malformed: list[MalformedLine], src: Source, why: Rejected) -> None:
    # The password field may hold a hash: never copy the line.
    malformed.append(MalformedLine(src, why.reason))


def _passwd(
    path: str, text: str, shells: set[str] | None, malformed: list[MalformedLine]
) -> list[PasswdEntry]:
    out: list[PasswdEntry] = []
    for lineno, f in passwd_file(text):
        src = Source(path, lineno)
        if isinstance(f, Rejected):
            _rejected(malformed, src, f)
            continue
        out.append(
            PasswdEntry(
                source=src,
                name=f.name,
                password=classify_password(f.password, in_passwd=True),
                uid=f.uid,
                gid=f.gid,
                gecos=f.gecos,
                home=f.home,
                shell=f.shell,
                shell_nologin=f.shell.rpartition("/")[2] in NOLOGIN_SHELLS,
                shell_listed=None if shells is None else f.shell in shells,
            )
        )
    return out


def _shadow(path: str, text: str, malformed: list[MalformedLine]) -> list[ShadowEntry]:
    out: list[ShadowEntry] = []
    for lineno, line in nss_lines(text):
        src = Source(path, lineno)
        f = parse_shadow(line)
        if isinstance(f, Rejected):
            _rejected(malformed, src, f)
            continue
        out.append(
            ShadowEntry(
                source=src,
                name=f.name,
                password=classify_password(f.password),
                last_change=f.last_change,
                min_days=f.min_days,
                max_days=f.max_days,
                warn_days=f.warn_days,
                inactive_days=f.inactive_days,
                expire_date=f.expire_date,
            )
        )
    return out


def _groups(path: str, text: str, malformed: list[MalformedLine]) -> list[GroupEntry]:
    out: list[GroupEntry] = []
    for lineno, f in group_file(text):
        src = Source(path, lineno)
        if isinstance(f, Rejected):
            _rejected(malformed, src, f)
            continue
        password = classify_password(f.password, in_passwd=True)
        out.append(GroupEntry(src, f.name, password, f.gid, f.members))
    return out


def _gshadow(path: str, text: str, malformed: list[MalformedLine]) -> list[GShadowEntry]:
    out: list[GShadowEntry] = []
    for lineno, line in nss_lines(text):
        src = Source(path, lineno)
        f = parse_gshadow(line)
        if isinstance(f, Rejected):
            _rejected(malformed, src, f)
            continue
        out.append(GShadowEntry(src, f.name, classify_password(f.password), f.admins, f.members))
    return out


def _shells(text: str) -> list[str]:
    # getusershell(3): one path a line, leading blanks skipped, '#' comments.
    out = []
    for line in glibc_lines(text):
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def _pam(ctx: CollectContext, malformed: list[MalformedLine]) -> list[PamUnixLine]:
    out: list[PamUnixLine] = []
    paths = ctx.fs.glob("/etc/pam.d/*")
    if len(paths) > MAX_PAM_FILES:
        ctx.incomplete(f"read the first {MAX_PAM_FILES} of {len(paths)} PAM files", "/etc/pam.d")
    for path in paths[:MAX_PAM_FILES]:
        if ctx.fs.is_dir(path):
            continue
        # A service file behind a dangling link or a loop is one PAM cannot read either,
        # but whether it would have accepted empty passwords is then unknown: incomplete.
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
    # Not is_file(): that is False for a dangling link, which would read as "no sudoers".
    return None if ctx.fs.is_dir(path) else ctx.read_text(path)


def _required(ctx: CollectContext, files: list[AccountFile], passwd: list[PasswdEntry]) -> None:
    """Absent databases the accounts depend on leave the facts incomplete, not empty."""
    present = {f.path for f in files if f.present}
    # A present file that could not be read is already recorded by read_text.
    present.update(e.path for e in ctx.errors if e.incomplete and e.path)
    if "/etc/passwd" not in present:
        ctx.incomplete("absent: the accounts of the image cannot be known", "/etc/passwd")
    shadowed = [p.name for p in passwd if p.password.state is PasswordState.SHADOWED]
    if shadowed and "/etc/shadow" not in present:
        ctx.incomplete(
            f"absent, while {len(shadowed)} /etc/passwd entries keep their password there "
            f"(x), {shadowed[0]} first",
            "/etc/shadow",
        )


def collect(ctx: CollectContext) -> AccountsFacts:
    """Read the account databases, PAM, sudoers and authorized keys of the image."""
    with gc_paused():
        return _collect(ctx)


def _collect(ctx: CollectContext) -> AccountsFacts:
    files: list[AccountFile] = []
    malformed: list[MalformedLine] = []
    shells_text = _read(ctx, "/etc/shells", files, whole=False)
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
    _required(ctx, files, passwd)
    shadow_names = {s.name for s in shadow}
    missing = (
        tuple(sorted({p.name for p in passwd} - shadow_names)) if shadow_text is not None else ()
    )
    key_files, keys = authorized_keys(ctx, [(p.home, p.name) for p in passwd])
    return AccountsFacts(
        files=tuple(files),
        passwd=tuple(passwd),
        shadow=tuple(shadow),
        groups=tuple(groups),
        gshadow=tuple(gshadow),
        shells=tuple(shells or ()),
        missing_shadow=missing,
        pam_unix=tuple(_pam(ctx, malformed)),
        sudoers=parse_sudoers(
            lambda p: _read_sudo(ctx, p), lambda p: _listdir(ctx, p), incomplete=ctx.incomplete
        ),
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
