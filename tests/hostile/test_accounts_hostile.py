"""Hostile account databases: what the rules judge is what glibc reads, and nothing unread passes.

Each case is a small root directory scanned whole with the shipped rules, and ends with the
FAIL glibc's view gives or an ERROR (could not evaluate), never ``basic`` on what was not
read; the one ``basic`` is the duplicate line nothing uses, reported. The line parser is also
checked against the host's own C library (``fgetpwent``, ``fgetspent``, ``fgetgrent``,
``fgetsgent`` through ctypes). Scaling is checked by counting file-system look-ups.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import random
from pathlib import Path
from typing import Any

import pytest

from imageaudit.engine import scan_facts
from imageaudit.facts import collect_facts
from imageaudit.facts.accounts import ACCOUNT_DB_LIMIT
from imageaudit.facts.accounts.nss_files import (
    GroupFields,
    GShadowFields,
    PasswdFields,
    ShadowFields,
    nss_lines,
    parse_group,
    parse_gshadow,
    parse_passwd,
    parse_shadow,
)
from imageaudit.findings import Report
from imageaudit.openers.directory import DirectoryFS
from imageaudit.pipeline import Judge, ScanOptions
from tests.rules.cases_password import LOCKED, crypt
from tests.rules.harness import facts_of
from tests.scenario import File, Scenario, Symlink, write_tree

OS_RELEASE = 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian 12"\n'
ROOT_WEAK = crypt("root")
PASSWD = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
GROUP = "root:x:0:\ndaemon:x:1:\n"
PAM = {"/etc/pam.d/common-auth": "auth [success=1 default=ignore] pam_unix.so\n"}

Row = tuple[str, str, str | None]


@pytest.fixture(scope="module")
def judge() -> Judge:
    return Judge.load(ScanOptions())


def scan(tree: Scenario, root: Path, judge: Judge) -> Report:
    full: dict[str, Any] = {**PAM, **tree}
    shadow = full.get("/etc/shadow")
    if isinstance(shadow, str):
        full["/etc/shadow"] = File(shadow, mode=0o640)  # so that only the accounts decide
    return _scan_bare(full, root, judge)


def _scan_bare(tree: Scenario, root: Path, judge: Judge) -> Report:
    facts = facts_of({"/usr/lib/os-release": OS_RELEASE, **tree}, root)
    return scan_facts(facts, judge.rules, judge.levels)


def bad(report: Report, prefix: str = "password_") -> dict[Row, str]:
    return {
        (f.rule_id, f.status.value, f.resource): f.message
        for f in report.findings
        if f.status.value in ("FAIL", "ERROR") and f.rule_id.startswith(prefix)
    }


def test_carriage_return_does_not_hide_the_weak_root(tmp_path: Path, judge: Judge) -> None:
    # splitlines() made a locked "root" of the tail of line 1; glibc sees one line of 17
    # fields and skips it, so root's first entry is the weak one on line 2.
    shadow = f"daemon:*{LOCKED}\rroot:*{LOCKED}\nroot:{ROOT_WEAK}{LOCKED}\n"
    report = scan({"/etc/passwd": PASSWD, "/etc/shadow": shadow, "/etc/group": GROUP},
                  tmp_path / "root", judge)  # fmt: skip
    found = bad(report)
    assert ("password_default_or_weak", "FAIL", "root") in found
    assert ("password_root_usable", "FAIL", "root") in found
    assert report.certification.level == "none"


def test_carriage_return_makes_no_phantom_account(tmp_path: Path, judge: Judge) -> None:
    # A phantom "root" with a nologin shell, cut out of daemon's line, hid the real root
    # (empty password, a login shell) from the empty-password rule.
    passwd = (
        "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\rroot:x:0:0:root:/root:/usr/sbin/nologin\n"
        "root:x:0:0:root:/root:/bin/bash\n"
    )
    shadow = f"daemon:*{LOCKED}\nroot:{LOCKED}\n"
    nullok = {"/etc/pam.d/common-auth": "auth [success=1 default=ignore] pam_unix.so nullok\n"}
    tree = {"/etc/passwd": passwd, "/etc/shadow": shadow, "/etc/group": GROUP, **nullok}
    report = scan(tree, tmp_path / "root", judge)
    assert bad(report)[("password_empty", "FAIL", "root")] == (
        "User `root` has an empty password (/etc/shadow line 2) and can log in with it: "
        "PAM `nullok` on the auth stack (/etc/pam.d/common-auth line 1)"
    )
    assert report.certification.level == "none"


def test_a_line_glibc_skips_does_not_hide_the_next_of_the_same_name(
    tmp_path: Path, judge: Judge
) -> None:
    # Line 1 has a malformed number: getspnam skips it and returns line 2, the weak one.
    shadow = f"root:*:abc:0:99999:7:::\nroot:{ROOT_WEAK}{LOCKED}\ndaemon:*{LOCKED}\n"
    report = scan({"/etc/passwd": PASSWD, "/etc/shadow": shadow, "/etc/group": GROUP},
                  tmp_path / "root", judge)  # fmt: skip
    assert ("password_default_or_weak", "FAIL", "root") in bad(report)
    assert report.certification.level == "none"


def test_duplicate_names_first_wins_and_are_reported(tmp_path: Path, judge: Judge) -> None:
    # getpwnam/getspnam (login, su, sshd, pam_unix, and musl and busybox alike) return the
    # first root line, locked: the weak second one is never checked by anything, so it is
    # not a weak password; it is reported, since removing line 1 would bring it to life.
    shadow = f"root:*{LOCKED}\ndaemon:*{LOCKED}\nroot:{ROOT_WEAK}{LOCKED}\n"
    passwd = PASSWD + "root:x:0:0:root:/root:/bin/sh\n"
    report = scan({"/etc/passwd": passwd, "/etc/shadow": shadow, "/etc/group": GROUP},
                  tmp_path / "root", judge)  # fmt: skip
    assert set(bad(report)) == {("password_shadow_consistency", "FAIL", "root")}
    assert [f.message for f in report.findings if f.rule_id == "password_shadow_consistency"] == [
        "User `root` has 2 entries in /etc/passwd (lines 1 and 3); the C library uses the "
        "first, line 1",
        "User `root` has 2 entries in /etc/shadow (lines 1 and 3); the C library uses the "
        "first, line 1",
    ]
    assert report.certification.level == "basic"


def test_weak_root_after_megabytes_of_comments_is_read(tmp_path: Path, judge: Judge) -> None:
    padding = ("#" + "x" * 1023 + "\n") * (5 << 10)  # 5 MiB, over the old 4 MiB cap
    shadow = padding + f"daemon:*{LOCKED}\nroot:{ROOT_WEAK}{LOCKED}\n"
    report = scan({"/etc/passwd": PASSWD, "/etc/shadow": shadow, "/etc/group": GROUP},
                  tmp_path / "root", judge)  # fmt: skip
    assert ("password_default_or_weak", "FAIL", "root") in bad(report)
    assert report.certification.level == "none"


def test_shadow_over_the_cap_is_not_evaluated(tmp_path: Path, judge: Judge) -> None:
    root = write_tree({"/etc/passwd": PASSWD, "/etc/group": GROUP}, tmp_path / "root")
    with (root / "etc/shadow").open("w") as fh:
        line = "#" + "x" * 1023 + "\n"
        fh.write(line * (ACCOUNT_DB_LIMIT // len(line) + 1))
        fh.write(f"root:{ROOT_WEAK}{LOCKED}\n")
    (root / "etc/shadow").chmod(0o640)
    size = (root / "etc/shadow").stat().st_size
    report = scan({}, root, judge)
    found = bad(report)
    reason = (
        "Could not evaluate: the `accounts` facts are incomplete (/etc/shadow: read only the "
        f"first {ACCOUNT_DB_LIMIT} of {size} bytes)"
    )
    for rule in ("password_default_or_weak", "password_empty", "password_root_usable"):
        assert found[(rule, "ERROR", None)] == reason
    assert report.certification.level == "none"


UNREADABLE: dict[str, tuple[Scenario, str]] = {
    "shadow-symlink-loop": (
        {
            "/etc/passwd": PASSWD,
            "/etc/shadow": Symlink("/etc/shadow.loop"),
            "/etc/shadow.loop": Symlink("/etc/shadow"),
        },
        "/etc/shadow: cannot be read: ",
    ),
    "passwd-dangling": (
        {
            "/etc/passwd": Symlink("/nonexistent/passwd"),
            "/etc/shadow": File(f"root:*{LOCKED}\n", mode=0o640),
        },
        "/etc/passwd: cannot be read: ",
    ),
    "etc-to-itself": ({"/etc": Symlink("/etc")}, "/etc/passwd: cannot be read: "),
    "shadow-missing": (
        {"/etc/passwd": PASSWD},
        "/etc/shadow: absent, while 2 /etc/passwd entries keep their password there (x), "
        "root first",
    ),
    "sudoers-dangling": (
        {
            "/etc/passwd": PASSWD,
            "/etc/shadow": File(f"root:*{LOCKED}\ndaemon:*{LOCKED}\n", mode=0o640),
            "/etc/sudoers": Symlink("/nonexistent/sudoers"),
        },
        "/etc/sudoers: cannot be read: ",
    ),
    "pam-dangling": (
        {
            "/etc/passwd": PASSWD + "guest:x:1000:1000::/home/guest:/bin/bash\n",
            "/etc/shadow": File(f"root:*{LOCKED}\ndaemon:*{LOCKED}\nguest:{LOCKED}\n", mode=0o640),
            # Whether this one said nullok (an empty password accepted today) is unknown.
            "/etc/pam.d/common-auth": Symlink("/nonexistent/common-auth"),
            "/etc/pam.d/login": "auth required pam_unix.so\n",
        },
        "/etc/pam.d/common-auth: cannot be read: ",
    ),
    "passwd-missing": (
        {"/etc/shadow": File(f"root:{ROOT_WEAK}{LOCKED}\n", mode=0o640)},
        "/etc/passwd: absent: the accounts of the image cannot be known",
    ),
}


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_unreadable_account_databases_are_not_evaluated(
    name: str, tmp_path: Path, judge: Judge
) -> None:
    tree, reason = UNREADABLE[name]
    if name == "etc-to-itself":
        # The pam file would need /etc: only the link is there.
        report = _scan_bare(tree, tmp_path / "root", judge)
    else:
        report = scan(tree, tmp_path / "root", judge)
    errors = bad(report)
    message = errors[("password_default_or_weak", "ERROR", None)]
    assert message.startswith("Could not evaluate: the `accounts` facts are incomplete (")
    assert reason in message
    assert ("password_empty", "ERROR", None) in errors
    assert report.certification.level == "none"


# --- the host's glibc as the reference --------------------------------------------------------


class _Passwd(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p), ("passwd", ctypes.c_char_p), ("uid", ctypes.c_uint32),
        ("gid", ctypes.c_uint32), ("gecos", ctypes.c_char_p), ("dir", ctypes.c_char_p),
        ("shell", ctypes.c_char_p),
    ]  # fmt: skip


class _Spwd(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p), ("passwd", ctypes.c_char_p), ("lstchg", ctypes.c_long),
        ("min", ctypes.c_long), ("max", ctypes.c_long), ("warn", ctypes.c_long),
        ("inact", ctypes.c_long), ("expire", ctypes.c_long), ("flag", ctypes.c_ulong),
    ]  # fmt: skip


class _Group(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p), ("passwd", ctypes.c_char_p), ("gid", ctypes.c_uint32),
        ("mem", ctypes.POINTER(ctypes.c_char_p)),
    ]  # fmt: skip


class _Sgrp(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p), ("passwd", ctypes.c_char_p),
        ("adm", ctypes.POINTER(ctypes.c_char_p)), ("mem", ctypes.POINTER(ctypes.c_char_p)),
    ]  # fmt: skip


def _glibc() -> ctypes.CDLL:
    if os.confstr("CS_GNU_LIBC_VERSION") is None:
        pytest.skip("the host C library is not glibc")
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    for fn, struct in (
        ("fgetpwent", _Passwd), ("fgetspent", _Spwd), ("fgetgrent", _Group), ("fgetsgent", _Sgrp)
    ):  # fmt: skip
        getattr(libc, fn).restype = ctypes.POINTER(struct)
        getattr(libc, fn).argtypes = [ctypes.c_void_p]
    return libc


def _s(value: bytes | None) -> str:
    return (value or b"").decode()


def _day(value: int) -> int | None:
    return None if value == -1 else value


def _strings(array: Any) -> tuple[str, ...]:
    out: list[str] = []
    while array and array[len(out)]:
        out.append(_s(array[len(out)]))
    return tuple(out)


def _from_glibc(libc: ctypes.CDLL, kind: str, path: Path) -> list[tuple[object, ...]]:
    fh = libc.fopen(str(path).encode(), b"r")
    assert fh
    out: list[tuple[object, ...]] = []
    try:
        while entry := getattr(libc, f"fget{kind}ent")(fh):
            e = entry.contents
            if _s(e.name)[:1] in ("+", "-"):
                continue  # NIS compat lines: never returned by the files lookups
            if kind == "pw":
                out.append((_s(e.name), _s(e.passwd), e.uid, e.gid, _s(e.gecos), _s(e.dir),
                            _s(e.shell)))  # fmt: skip
            elif kind == "sp":
                days = (e.lstchg, e.min, e.max, e.warn, e.inact, e.expire)
                out.append((_s(e.name), _s(e.passwd), *(_day(d) for d in days)))
            elif kind == "gr":
                out.append((_s(e.name), _s(e.passwd), e.gid, _strings(e.mem)))
            else:
                out.append((_s(e.name), _s(e.passwd), _strings(e.adm), _strings(e.mem)))
    finally:
        libc.fclose(fh)
    return out


def _from_us(kind: str, text: str) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for _lineno, line in nss_lines(text):
        parse = {"pw": parse_passwd, "sp": parse_shadow, "gr": parse_group, "sg": parse_gshadow}
        e = parse[kind](line)
        if isinstance(e, PasswdFields):
            out.append((e.name, e.password, e.uid, e.gid, e.gecos, e.home, e.shell))
        elif isinstance(e, ShadowFields):
            days = (e.last_change, e.min_days, e.max_days, e.warn_days, e.inactive_days)
            out.append((e.name, e.password, *days, e.expire_date))
        elif isinstance(e, GroupFields):
            out.append((e.name, e.password, e.gid, e.members))
        elif isinstance(e, GShadowFields):
            out.append((e.name, e.password, e.admins, e.members))
    return out


PIECES = [
    "0", "1", "9", "12345", "x", "", " ", "\t", "+", "-", "#", "a", "!", "*", "4294967295",
    "4294967296", "99999999999999999999999", "-1", "-0", "\r", "\v", ",", "b, c", "\0",
]  # fmt: skip
FIXED = [
    f"daemon:*{LOCKED}\rroot:*{LOCKED}\n",
    "  root:x:0:0::/:/bin/sh",  # leading blanks and no final newline: glibc 2.30+ quirk
    " a:x:1:1::/:/bin/sh\0zz\n",
    "ten:x:1:2:3:4:5:6:7:8\nnine:x:1:2:3:4:5:6:7\nfive:x:1:2:3\nold:x:1:2:3:  \n",
    "a:x:-1:1::/:/bin/sh\nb:x:+1:1::/:/bin/sh\nc:x: 2:2::/:/bin/sh\nd:x:-0:3\n",
    "g:x:4294967295:a, b,,c\nh:x:4294967296:\n#c:x:0:0::/:/bin/sh\n\n+::::::\n-x\n",
]


def test_same_entries_as_the_host_glibc(tmp_path: Path) -> None:
    libc = _glibc()
    rng = random.Random(7)
    texts = list(FIXED)
    for _ in range(300):
        lines = [
            ":".join(
                "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 2)))
                for _ in range(rng.randint(1, 11))
            )
            for _ in range(4)
        ]
        texts.append("\n".join(lines) + rng.choice(["\n", ""]))
    path = tmp_path / "db"
    for text in texts:
        path.write_bytes(text.encode())
        for kind in ("pw", "sp", "gr", "sg"):
            assert _from_us(kind, text) == _from_glibc(libc, kind, path), (kind, text)


# --- scaling, by work done rather than time ---------------------------------------------------


class CountingFS(DirectoryFS):
    """The directory opener, counting the metadata look-ups the collectors make."""

    lookups = 0

    def _lstat_canonical(self, path: str) -> Any:
        CountingFS.lookups += 1
        return super()._lstat_canonical(path)


def _accounts(n: int) -> Scenario:
    users = range(1000, 1000 + n)
    return {
        "/usr/lib/os-release": OS_RELEASE,
        "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\n"
        + "".join(f"user{u}:x:{u}:{u}::/home/user{u}:/bin/bash\n" for u in users),
        "/etc/shadow": File(
            f"root:*{LOCKED}\n" + "".join(f"user{u}:!{LOCKED}\n" for u in users), mode=0o640
        ),
        "/etc/group": "root:x:0:\n" + "".join(f"user{u}:x:{u}:\n" for u in users),
        "/etc/sudoers": "root ALL=(ALL:ALL) ALL\n%user1000 ALL=(ALL) NOPASSWD: /bin/true\n",
        **PAM,
    }


def test_accounts_cost_no_lookup_per_account(tmp_path: Path, judge: Judge) -> None:
    counts = {}
    for n in (200, 20_000):
        root = write_tree(_accounts(n), tmp_path / str(n))
        CountingFS.lookups = 0
        with CountingFS(root) as fs:
            report = scan_facts(collect_facts(fs), judge.rules, judge.levels)
        counts[n] = CountingFS.lookups
        assert bad(report) == {}, n
        assert report.certification.level == "basic"
    # Homes that do not exist are ruled out by listing their parent once.
    assert counts[20_000] - counts[200] < 50, counts
