from __future__ import annotations

import json
from pathlib import Path

from imageaudit.facts.accounts import (
    ACCOUNT_DB_LIMIT,
    AccountFile,
    AccountsFacts,
    AuthorizedKeysFile,
    GroupEntry,
    GShadowEntry,
    PasswdEntry,
    ShadowEntry,
    collect,
)
from imageaudit.facts.accounts.pam import PamUnixLine
from imageaudit.facts.accounts.password_field import PasswordHash, PasswordState, classify_password
from imageaudit.facts.accounts.sshkeys import AuthorizedKey
from imageaudit.facts.accounts.sudoers import (
    SudoAlias,
    SudoCommand,
    SudoDefault,
    SudoInclude,
    SudoRule,
)
from imageaudit.facts.base import CollectContext
from imageaudit.facts.textlines import MalformedLine
from imageaudit.model import CollectorError, Source, to_jsonable
from imageaudit.openers.directory import DirectoryFS
from tests.scenario import File, Scenario, Symlink, write_tree

RSA = (
    "AAAAB3NzaC1yc2EAAAADAQABAAABAQDPRmgCxHAGFo0Wc9M+M6b99trtEV8m1mI459oIFMrnBza+dvkt7mDOQbO"
    "teyEGBT+s2kVfs7z0PT5CRJIh+839js32ByvcdFSsUiL+pp09XAi9mg+C7ijuByWSpZ6pLsMdgzBL0s6yevD/ao"
    "rHC68UwV2wffce0dZ3M4qERVv4DkPXI90HkSCbl1xD3Hp83fYzCp6Pw5WVKeX3Q0PyevvtRUIPhTZIQyMrto8Sq"
    "+TCXWILRcAGN3K1cBapMmR8jwzw7NVSeKaeycJshKccmObNKv49j75O4WXwn6GOqblb+ap3FNd17njN4OdCsPqX"
    "c1xCT7iPGYPzuNwJNf4xMRll"
)
ED25519 = "AAAAC3NzaC1lZDI1NTE5AAAAIIvMSX+bugBGjs4lQatnk8wswMABA09+haAWjX6CBVw/"
ECDSA384 = (
    "AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBGoreTk4sNP9/ro+1sGA3tdvsxzDc7ko4Ix4"
    "srCys5MBdnHYbYsSwkcnfH4QDEpNS9WzCcGbxaEGU2CV4j0c9PCFH7JTgDZzJtKnev81B0vJq0IGX8eKsTR9XD2D"
    "IbiCnw=="
)
# Fingerprints as printed by `ssh-keygen -lf` for the three keys above.
RSA_FP = "SHA256:RWX5piGXcEp4dsd6Q5iPpkVKJ40GYmTpOB3X+eUXPKg"
ED_FP = "SHA256:5CaOit07wUkcl3G8vYP9F++xy64Fl5WQ5VRDYf5vEJs"
EC_FP = "SHA256:NJGo7BWxaVAPNiAoI84cDcwWnOdIU9s1w+AYUca7mZs"

SHA512 = "$6$saltsalt$" + "a" * 86
YESCRYPT = "$y$j9T$salt$" + "b" * 43

PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice,,,:/home/alice:/bin/zsh
legacy:abJnggxhB/yWI:1001:1001::/home/legacy:/bin/false
nopw::1002:1002::/home/nopw:/bin/sh
broken:x:notanumber:1:::/bin/sh
short:x:3
+@netgroup::::::
"""
SHADOW = f"""root:{SHA512}:19000:0:99999:7:::
daemon:*:19000:0:99999:7:::
alice:{YESCRYPT}:19000:0:99999:7:::
nopw::19000::::::
seven:x:1:2:3:4:5
ten:$1$a$b:1:2:3:4:5:6:7:8
legacy:!$6$rounds=999999999$s$h:abc:0:99999:7:::
hostile:!$6$rounds=999999999$s$h:19000:0:99999:7:::
"""


def run(tmp_path: Path, scenario: Scenario) -> tuple[AccountsFacts, list[CollectorError]]:
    root = write_tree(scenario, tmp_path / "root")
    with DirectoryFS(root) as fs:
        ctx = CollectContext(fs=fs, current="accounts")
        return collect(ctx), ctx.errors


def test_passwd_shadow_group_records(tmp_path: Path) -> None:
    facts, errors = run(
        tmp_path,
        {
            "/etc/passwd": PASSWD,
            "/etc/shadow": File(SHADOW, mode=0o640, gid=42),
            "/etc/group": "root:x:0:\nwheel:x:10:alice,bob\nbad:x:ten:\n",
            "/etc/gshadow": "wheel:!::alice\nodd:x:y\n",
            "/etc/shells": "# comment\n/bin/sh\n/bin/bash\n",
        },
    )
    assert errors == []
    assert facts.file("/etc/shadow") == AccountFile(
        "/etc/shadow", True, len(SHADOW), 0o640, 0, 42, False
    )
    assert facts.shells == ("/bin/sh", "/bin/bash")
    src = Source("/etc/passwd", 1)
    assert facts.passwd[0] == PasswdEntry(
        src,
        "root",
        classify_password("x", in_passwd=True),
        0,
        0,
        "root",
        "/root",
        "/bin/bash",
        shell_nologin=False,
        shell_listed=True,
    )
    assert [(p.name, p.password.state, p.shell_nologin, p.shell_listed) for p in facts.passwd] == [
        ("root", PasswordState.SHADOWED, False, True),
        ("daemon", PasswordState.SHADOWED, True, False),
        ("alice", PasswordState.SHADOWED, False, False),
        ("legacy", PasswordState.HASH, True, False),
        ("nopw", PasswordState.EMPTY, False, True),
    ]
    assert facts.passwd[3].password.algorithm == "descrypt"
    root = facts.shadow_entry("root")
    assert root == ShadowEntry(
        Source("/etc/shadow", 1),
        "root",
        classify_password(SHA512),
        19000,
        0,
        99999,
        7,
        None,
        None,
    )
    assert root.password.description == "sha512crypt, rounds=5000 (default)"
    # glibc skips a shadow line with a malformed number: legacy has no shadow entry at all.
    assert facts.shadow_entry("legacy") is None
    hostile = facts.shadow_entry("hostile")
    assert hostile is not None
    assert (hostile.password.state, hostile.password.algorithm, hostile.password.rounds) == (
        PasswordState.LOCKED,
        "sha512crypt",
        999_999_999,
    )
    # glibc takes 5, 8 or 9 fields; seven or ten are skipped.
    assert [s.name for s in facts.shadow] == ["root", "daemon", "alice", "nopw", "hostile"]
    assert facts.missing_shadow == ("legacy",)
    assert facts.groups[1] == GroupEntry(
        Source("/etc/group", 2),
        "wheel",
        classify_password("x", in_passwd=True),
        10,
        ("alice", "bob"),
    )
    assert facts.gshadow == (
        GShadowEntry(Source("/etc/gshadow", 1), "wheel", classify_password("!"), (), ("alice",)),
        GShadowEntry(Source("/etc/gshadow", 2), "odd", classify_password("x"), ("y",), ()),
    )
    assert facts.malformed == (
        MalformedLine(Source("/etc/passwd", 6), "uid or gid not a number"),
        MalformedLine(Source("/etc/passwd", 7), "3 fields, uid or gid missing"),
        MalformedLine(Source("/etc/passwd", 8), "NIS compat entry"),
        MalformedLine(Source("/etc/shadow", 5), "7 fields, field 8 missing"),
        MalformedLine(Source("/etc/shadow", 6), "10 fields, expected 9"),
        MalformedLine(Source("/etc/shadow", 7), "field 3 is not a number"),
        MalformedLine(Source("/etc/group", 3), "gid not a number"),
    )


def test_raw_hash_stays_out_of_json_and_repr(tmp_path: Path) -> None:
    facts, _ = run(tmp_path, {"/etc/passwd": "root:x:0:0::/root:/bin/sh\n", "/etc/shadow": SHADOW})
    root = facts.shadow_entry("root")
    assert root is not None and root.password.raw == SHA512
    dumped = json.dumps(to_jsonable(facts))
    assert "saltsalt" not in dumped and "saltsalt" not in repr(facts)
    assert facts.missing_shadow == ()


def test_missing_shadow_and_absent_files(tmp_path: Path) -> None:
    facts, _ = run(
        tmp_path,
        {"/etc/passwd": "root:x:0:0::/root:/bin/sh\nbob:x:5:5::/home/bob:\n", "/etc/shadow": ""},
    )
    assert facts.missing_shadow == ("bob", "root")
    assert facts.file("/etc/shadow") == AccountFile("/etc/shadow", True, 0, 0o644, 0, 0, False)
    assert facts.file("/etc/gshadow") == AccountFile("/etc/gshadow", False)
    assert facts.passwd[1].shell_listed is None  # no /etc/shells
    assert facts.sudoers.present is False
    empty, _ = run(tmp_path / "empty", {"/etc/hostname": "x\n"})
    assert (empty.passwd, empty.missing_shadow, empty.file("/etc/passwd")) == (
        (),
        (),
        AccountFile("/etc/passwd", False),
    )


def test_binary_garbage_and_huge_file_are_capped(tmp_path: Path) -> None:
    root = write_tree(
        {"/etc/passwd": File(b"\x00\xff\xfe:\x01\n" * 10 + b"root:x:0:0::/root:/bin/sh\n")},
        tmp_path / "root",
    )
    with (root / "etc/shadow").open("wb") as fh:  # 1 GB claimed, sparse on disk
        fh.write(b"root:*:1::::::\n")
        fh.truncate(1 << 30)
    with DirectoryFS(root) as fs:
        ctx = CollectContext(fs=fs, current="accounts")
        facts = collect(ctx)
    assert [p.name for p in facts.passwd] == ["root"]
    # A line starting with NUL is blank to glibc (C strings): skipped, not malformed.
    assert [m for m in facts.malformed if m.source.path == "/etc/passwd"] == []
    shadow = facts.file("/etc/shadow")
    assert shadow is not None and (shadow.size, shadow.truncated) == (1 << 30, True)
    # What was not read may hold any account: the facts are incomplete, not just noted.
    assert ctx.errors == [
        CollectorError(
            "accounts",
            f"read only the first {ACCOUNT_DB_LIMIT} of {1 << 30} bytes",
            "/etc/shadow",
            incomplete=True,
        )
    ]
    assert [s.name for s in facts.shadow] == ["root"]


def test_password_classification() -> None:
    def c(value: str) -> tuple[object, ...]:
        h = classify_password(value)
        return (h.state.value, h.algorithm, h.rounds, h.log2_cost, h.n, h.r, h.p, h.problems)

    assert c("") == ("empty", None, None, None, None, None, None, ())
    assert c("!!") == ("locked", None, None, None, None, None, None, ())
    assert c("*") == ("locked", None, None, None, None, None, None, ())
    assert c("!" + YESCRYPT) == ("locked", "yescrypt", None, None, 4096, 32, 1, ())
    assert c("$gy$j9T$s$h") == ("hash", "gost-yescrypt", None, None, 4096, 32, 1, ())
    assert c("$y$$s$h") == (
        "hash", "yescrypt", None, None, None, None, None, ("malformed yescrypt parameters",)
    )  # fmt: skip
    assert c("$5$rounds=80000$s$h") == ("hash", "sha256crypt", 80000, None, None, None, None, ())
    assert c("$6$rounds=10$s$h") == (
        "hash", "sha512crypt", 1000, None, None, None, None,
        ("rounds=10 out of range, glibc clamps to 1000",),
    )  # fmt: skip
    assert c("$6$rounds=x$s$h")[7] == ("malformed rounds= parameter",)
    assert c("$2b$12$" + "c" * 53) == ("hash", "bcrypt", None, 12, None, None, None, ())
    assert c("$2y$99$x")[7] == ("bcrypt cost 99 outside 04..31",)
    # The scrypt test vector of libxcrypt: N=16384, r=8, p=1.
    assert c("$7$C6..../....SodiumChloride$kBGj9fHznVYFQMEn/qDCfrDevf9YDtcDdKvEqHJLV8D") == (
        "hash", "scrypt", None, None, 16384, 8, 1, ()
    )  # fmt: skip
    assert c("_J9..CCCCXBrJUJV154M") == ("hash", "bsdicrypt", 725, None, None, None, None, ())
    assert c("$1$salt$hash") == ("hash", "md5crypt", 1000, None, None, None, None, ())
    assert c("abJnggxhB/yWI")[:2] == ("hash", "descrypt")
    assert c("plaintext")[:2] == ("hash", "unknown")
    assert classify_password("!" + YESCRYPT).description == "locked, yescrypt, N=4096 r=32 p=1"
    assert classify_password("!" + YESCRYPT).memory_bytes == 16 << 20
    assert classify_password("x", in_passwd=True) == PasswordHash(
        PasswordState.SHADOWED, description="password in shadow file", raw="x"
    )


def test_pam_nullok(tmp_path: Path) -> None:
    facts, _ = run(
        tmp_path,
        {
            "/etc/pam.d/common-auth": (
                "# comment nullok\n"
                "auth [success=1 default=ignore] pam_unix.so nullok\n"
                "auth requisite pam_deny.so\n"
            ),
            "/etc/pam.d/system-auth": (
                "-auth sufficient /lib64/security/pam_unix.so try_first_pass \\\n"
                "  nullok_secure\npassword required pam_unix.so sha512\nbogus\n"
            ),
            "/etc/pam.d/sshd": "@include common-auth\n",
        },
    )
    assert facts.pam_unix == (
        PamUnixLine(
            Source("/etc/pam.d/common-auth", 2),
            "common-auth",
            "auth",
            "[success=1 default=ignore]",
            "pam_unix.so",
            ("nullok",),
            True,
        ),
        PamUnixLine(
            Source("/etc/pam.d/system-auth", 1),
            "system-auth",
            "-auth",
            "sufficient",
            "/lib64/security/pam_unix.so",
            ("try_first_pass", "nullok_secure"),
            True,
        ),
        PamUnixLine(
            Source("/etc/pam.d/system-auth", 3),
            "system-auth",
            "password",
            "required",
            "pam_unix.so",
            ("sha512",),
            False,
        ),
    )
    assert facts.malformed == (
        MalformedLine(Source("/etc/pam.d/system-auth", 4), "not a PAM rule line", "bogus"),
    )


SUDOERS = """\
Defaults env_reset, !lecture, secure_path="/usr/sbin:/usr/bin"
Defaults:ADMINS, bob timestamp_timeout=0
User_Alias ADMINS = alice, %wheel : OPS = carol
Cmnd_Alias SHELLS = /bin/sh, /bin/bash
root ALL=(ALL:ALL) ALL
ADMINS ALL = (root) NOPASSWD: /usr/bin/apt, PASSWD: /bin/ls, SHELLS : web1 = (www) /bin/kill
%sudo, #1000 ALL=NOPASSWD:SETENV: sha256:abcd /usr/bin/true  # trailing comment
this is not a rule
@includedir /etc/sudoers.d
#include extra
@include /etc/sudoers
"""


def test_sudoers_rules_aliases_includes(tmp_path: Path) -> None:
    facts, _ = run(
        tmp_path,
        {
            "/etc/sudoers": File(SUDOERS, mode=0o440),
            "/etc/sudoers.d/10-ops": "OPS ALL=(ALL) ALL\n",
            "/etc/sudoers.d/README": "# only a comment\n",
            "/etc/sudoers.d/skipped.conf": "evil ALL=(ALL) NOPASSWD: ALL\n",
            "/etc/sudoers.d/backup~": "evil ALL=(ALL) NOPASSWD: ALL\n",
            "/etc/extra": "dave ALL=(ALL) /usr/bin/id\n",
        },
    )
    s = facts.sudoers
    src = Source("/etc/sudoers", 1)
    assert s.present
    assert s.files == (
        "/etc/sudoers", "/etc/sudoers.d/10-ops", "/etc/sudoers.d/README", "/etc/extra"
    )  # fmt: skip
    assert s.defaults == (
        SudoDefault(src, "", (), "env_reset", None, None, False),
        SudoDefault(src, "", (), "lecture", None, None, True),
        SudoDefault(src, "", (), "secure_path", "=", "/usr/sbin:/usr/bin", False),
        SudoDefault(
            Source("/etc/sudoers", 2), ":", ("ADMINS", "bob"), "timestamp_timeout", "=", "0", False
        ),
    )
    assert s.aliases == (
        SudoAlias(Source("/etc/sudoers", 3), "User_Alias", "ADMINS", ("alice", "%wheel")),
        SudoAlias(Source("/etc/sudoers", 3), "User_Alias", "OPS", ("carol",)),
        SudoAlias(Source("/etc/sudoers", 4), "Cmnd_Alias", "SHELLS", ("/bin/sh", "/bin/bash")),
    )
    line6 = Source("/etc/sudoers", 6)
    assert s.rules == (
        SudoRule(
            Source("/etc/sudoers", 5),
            ("root",),
            ("ALL",),
            (SudoCommand("ALL", ("ALL",), ("ALL",), (), (), ("ALL",), ("ALL",)),),
            ("root",),
            ("ALL",),
        ),
        SudoRule(
            line6,
            ("ADMINS",),
            ("ALL",),
            (
                SudoCommand(
                    "/usr/bin/apt", ("root",), (), ("NOPASSWD",), (), ("/usr/bin/apt",), ("root",)
                ),
                SudoCommand("/bin/ls", ("root",), (), ("PASSWD",), (), ("/bin/ls",), ("root",)),
                SudoCommand(
                    "SHELLS", ("root",), (), ("PASSWD",), (), ("/bin/sh", "/bin/bash"), ("root",)
                ),
            ),
            ("alice", "%wheel"),
            ("ALL",),
        ),
        SudoRule(
            line6,
            ("ADMINS",),
            ("web1",),
            (SudoCommand("/bin/kill", ("www",), (), (), (), ("/bin/kill",), ("www",)),),
            ("alice", "%wheel"),
            ("web1",),
        ),
        SudoRule(
            Source("/etc/sudoers", 7),
            ("%sudo", "#1000"),
            ("ALL",),
            (
                SudoCommand(
                    "sha256:abcd /usr/bin/true",
                    (),
                    (),
                    ("NOPASSWD", "SETENV"),
                    (),
                    ("sha256:abcd /usr/bin/true",),
                    (),
                ),
            ),
            ("%sudo", "#1000"),
            ("ALL",),
        ),
        SudoRule(
            Source("/etc/sudoers.d/10-ops", 1),
            ("OPS",),
            ("ALL",),
            (SudoCommand("ALL", ("ALL",), (), (), (), ("ALL",), ("ALL",)),),
            ("carol",),
            ("ALL",),
        ),
        SudoRule(
            Source("/etc/extra", 1),
            ("dave",),
            ("ALL",),
            (SudoCommand("/usr/bin/id", ("ALL",), (), (), (), ("/usr/bin/id",), ("ALL",)),),
            ("dave",),
            ("ALL",),
        ),
    )
    assert s.includes == (
        SudoInclude(
            Source("/etc/sudoers", 9),
            "includedir",
            "/etc/sudoers.d",
            ("/etc/sudoers.d/10-ops", "/etc/sudoers.d/README"),
        ),
        SudoInclude(Source("/etc/sudoers", 10), "include", "/etc/extra", ("/etc/extra",)),
        SudoInclude(
            Source("/etc/sudoers", 11),
            "include",
            "/etc/sudoers",
            (),
            "include loop at /etc/sudoers",
        ),
    )
    assert s.malformed == (
        MalformedLine(Source("/etc/sudoers", 8), "not a sudoers rule", "this is not a rule"),
    )


def test_authorized_keys(tmp_path: Path) -> None:
    facts, _ = run(
        tmp_path,
        {
            "/etc/passwd": (
                "root:x:0:0::/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n"
                "alias:x:1001:1000::/home/alice/:/bin/bash\nghost:x:1002:1002::/nonexistent:/bin/sh\n"
            ),
            "/root/.ssh/authorized_keys": File(
                '# root keys\nfrom="10.0.0.1,10.0.0.2",command="echo \\"hi, there\\"" '
                f"ssh-rsa {RSA} alice@ws\n\n"
                f"ssh-ed25519 {ED25519} bob key\n",
                mode=0o600,
            ),
            "/home/alice/.ssh/authorized_keys2": File(
                f"ecdsa-sha2-nistp384 {ECDSA384}\nssh-rsa !!notbase64!!\n"
                f"no-pty ssh-dss {ED25519}\n",
                uid=1000,
            ),
            "/etc/ssh/authorized_keys": Symlink("/root/.ssh/authorized_keys"),
        },
    )
    root_keys = "/root/.ssh/authorized_keys"
    alice_keys = "/home/alice/.ssh/authorized_keys2"
    assert facts.authorized_key_files == (
        AuthorizedKeysFile("/etc/ssh/authorized_keys", (), 0, 0, 0o600, 2),
        AuthorizedKeysFile(alice_keys, ("alice", "alias"), 1000, 0, 0o644, 3),
        AuthorizedKeysFile(root_keys, ("root",), 0, 0, 0o600, 2),
    )
    by_file = [k for k in facts.authorized_keys if k.source.path != "/etc/ssh/authorized_keys"]
    assert by_file == [
        AuthorizedKey(
            Source(alice_keys, 1), "alice", (), "ecdsa-sha2-nistp384", 384, "nistp384", "", EC_FP
        ),
        AuthorizedKey(
            Source(alice_keys, 2),
            "alice",
            (),
            "ssh-rsa",
            None,
            None,
            "",
            None,
            ("key data is not valid base64",),
        ),
        AuthorizedKey(
            Source(alice_keys, 3),
            "alice",
            ("no-pty",),
            "ssh-dss",
            256,
            None,
            "",
            ED_FP,
            ("key data is 'ssh-ed25519', line says 'ssh-dss'",),
        ),
        AuthorizedKey(
            Source(root_keys, 2),
            "root",
            ('from="10.0.0.1,10.0.0.2"', 'command="echo \\"hi, there\\""'),
            "ssh-rsa",
            2048,
            None,
            "alice@ws",
            RSA_FP,
        ),
        AuthorizedKey(Source(root_keys, 4), "root", (), "ssh-ed25519", 256, None, "bob key", ED_FP),
    ]
