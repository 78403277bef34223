"""Pass and fail scenarios of the password rules (``rules/password/``)."""

from __future__ import annotations

from imageaudit.model import Severity, Status
from imageaudit.passwords.crypt_worker import LibXCrypt
from tests.rules.harness import case
from tests.scenario import Entry, File, Scenario

Tree = dict[str, Entry | str | bytes]

_LIB = LibXCrypt()


def crypt(password: str, setting: str = "$6$saltsaltsalt$") -> str:
    """A real hash of ``password`` with a fixed salt (so the trees are the same every run)."""
    out = _LIB.crypt(password.encode(), setting.encode())
    assert out is not None, setting
    return out.decode()


STRONG = crypt("Tr0ub4dor&3-correct-horse")
YESCRYPT_SETTING = "$y$j9T$saltsaltsaltsaltsalt$"
HOSTILE_SHA512 = "$6$rounds=999999999$saltsalt$" + "a" * 86
# yescrypt flavour "j", then log2(N) - 1 = 29 ("R") and r - 1 = 31 ("T"): N=2^30, r=32
# (the default "j9T" is N=2^12, r=32), a memory bomb of 4 TiB per guess.
HOSTILE_YESCRYPT = "$y$jRT$saltsaltsalt$" + "b" * 43

LOCKED = ":19000:0:99999:7:::"
NULLOK_PAM = "auth [success=1 default=ignore] pam_unix.so nullok\n"
PLAIN_PAM = "auth [success=1 default=ignore] pam_unix.so\n"


def accounts(
    users: list[tuple[str, int, str, str]],
    *,
    pam: str | None = PLAIN_PAM,
    extra: Scenario | None = None,
    passwd_field: dict[str, str] | None = None,
) -> Tree:
    """passwd/shadow/group for ``(name, uid, shell, shadow field)``; root is always first."""
    rows = [("root", 0, "/bin/bash", "!"), *users]
    fields = passwd_field or {}
    passwd = "".join(
        f"{n}:{fields.get(n, 'x')}:{u}:{u}::/home/{n}:{s}\n" if n != "root" else
        f"root:{fields.get(n, 'x')}:0:0:root:/root:{s}\n"
        for n, u, s, _ in rows
    )  # fmt: skip
    shadow = "".join(f"{n}:{h}:19000:0:99999:7:::\n" for n, _, _, h in rows if h is not None)
    group = "".join(f"{n}:x:{u}:\n" for n, u, _, _ in rows)
    tree: Tree = {
        "/etc/passwd": passwd,
        "/etc/shadow": File(shadow, mode=0o640),
        "/etc/group": group,
    }
    if pam is not None:
        tree["/etc/pam.d/common-auth"] = pam
    tree.update(extra or {})
    return tree


BASH = "/bin/bash"
NOLOGIN = "/usr/sbin/nologin"

# --- password_empty ---------------------------------------------------------------------------

case(
    "password_empty",
    Status.FAIL,
    accounts([("guest", 1000, BASH, "")], pam=NULLOK_PAM),
    resources={"guest"},
    message="User `guest` has an empty password (/etc/shadow line 2) and can log in with it: "
    "PAM `nullok` on the auth stack (/etc/pam.d/common-auth line 1)",
    severity=Severity.CRITICAL,
    name="nullok",
)
case(
    "password_empty",
    Status.FAIL,
    accounts([("guest", 1000, BASH, "")], pam=None),
    resources={"guest"},
    message="User `guest` has an empty password (/etc/shadow line 2) and can log in with it: "
    "no pam_unix configuration, and login programs without PAM accept an empty password",
    severity=Severity.CRITICAL,
    name="no-pam",
)
case(
    "password_empty",
    Status.FAIL,
    accounts(
        [("guest", 1000, BASH, "")],
        extra={
            "/usr/sbin/sshd": "",
            "/etc/ssh/sshd_config": "PasswordAuthentication yes\nPermitEmptyPasswords yes\n",
        },
    ),
    resources={"guest"},
    message="User `guest` has an empty password (/etc/shadow line 2) and can log in with it: "
    "sshd `PermitEmptyPasswords yes`, /etc/ssh/sshd_config line 2",
    severity=Severity.CRITICAL,
    name="sshd",
)
case(
    "password_empty",
    Status.FAIL,
    accounts([("guest", 1000, BASH, "")]),
    resources={"guest"},
    message="User `guest` has an empty password (/etc/shadow line 2); nothing found accepts it "
    "today (no PAM `nullok`, sshd does not permit empty passwords), but one configuration "
    "change would",
    severity=Severity.HIGH,
    name="unreachable",
)
case(
    "password_empty",
    Status.FAIL,
    accounts([("legacy", 1001, BASH, "!")], pam=NULLOK_PAM, passwd_field={"legacy": ""}),
    resources={"legacy"},
    message="User `legacy` has an empty password (/etc/passwd line 2) and can log in with it: "
    "PAM `nullok` on the auth stack (/etc/pam.d/common-auth line 1)",
    name="passwd-field",
)
case(
    "password_empty",
    Status.PASS,
    accounts(
        [("daemon", 1, NOLOGIN, ""), ("alice", 1000, BASH, "!"), ("bob", 1001, BASH, STRONG)],
        pam=NULLOK_PAM,
    ),
)

# --- password_default_or_weak -----------------------------------------------------------------

case(
    "password_default_or_weak",
    Status.FAIL,
    accounts(
        [
            ("pi", 1000, BASH, crypt("raspberry")),
            ("admin", 1001, BASH, crypt("admin")),
            ("bob", 1002, NOLOGIN, crypt("123456", "$1$saltsalt$")),
            ("carol", 1003, BASH, crypt("carol123", "$5$saltsaltsalt$")),
            ("dave", 1004, BASH, STRONG),
        ]
    ),
    resources={"pi", "admin", "bob", "carol"},
    message="User `pi` has the default password `raspberry` of Raspberry Pi OS (Raspbian) "
    "images before April 2022 (/etc/shadow line 2, "
    "https://www.raspberrypi.com/news/raspberry-pi-bullseye-update-april-2022/)",
    severity=Severity.CRITICAL,
)
case(
    "password_default_or_weak",
    Status.FAIL,
    accounts([("admin", 1001, BASH, crypt("admin", "$2b$05$saltsaltsaltsaltsalt.."))]),
    resources={"admin"},
    message="User `admin` has its user name `admin` as password (/etc/shadow line 2)",
    name="bcrypt-username",
)
case(
    "password_default_or_weak",
    Status.FAIL,
    accounts([("kali", 1000, BASH, crypt("kali", YESCRYPT_SETTING))]),
    resources={"kali"},
    message="User `kali` has its user name `kali` as password, also the documented default of "
    "Kali Linux 2020.1 and later (live, installer defaults, VM and ARM images) "
    "(/etc/shadow line 2, https://www.kali.org/docs/introduction/default-credentials/)",
    name="yescrypt",
)
case(
    "password_default_or_weak",
    Status.FAIL,
    accounts([("bob", 1000, BASH, crypt("password", "ab"))]),
    resources={"bob"},
    message="User `bob` has the weak password `password`, a common password in "
    "ruleset/data/weak-passwords.txt (/etc/shadow line 2)",
    name="des",
)
case(
    "password_default_or_weak",
    Status.PASS,
    accounts(
        [
            ("alice", 1000, BASH, STRONG),
            ("locked", 1001, BASH, "!" + crypt("locked")),
            ("unknown", 1002, BASH, "NP"),
        ]
    ),
)
# A hash whose cost is over a cap is not verified: an ERROR naming the reason, never a PASS.
case(
    "password_default_or_weak",
    Status.ERROR,
    accounts([("mallory", 1000, BASH, HOSTILE_SHA512)]),
    resources={"mallory"},
    message="Password of user `mallory` not verified: sha512crypt rounds=999999999 exceeds the "
    "cap of 100000 (/etc/shadow line 2)",
    name="hostile-rounds",
)
case(
    "password_default_or_weak",
    Status.ERROR,
    accounts([("eve", 1000, BASH, HOSTILE_YESCRYPT)]),
    resources={"eve"},
    message="Password of user `eve` not verified: yescrypt N=2^30 exceeds the cap of 2^16 "
    "(/etc/shadow line 2)",
    name="hostile-yescrypt",
)

# --- password_weak_hash ---------------------------------------------------------------------

case(
    "password_weak_hash",
    Status.FAIL,
    accounts([("alice", 1000, BASH, crypt("x-long-pass", "$1$saltsalt$"))]),
    resources={"alice"},
    message="User `alice` has a password hashed with `md5crypt` (/etc/shadow line 2): md5crypt "
    "is 1000 MD5 iterations, billions of guesses per second on a GPU",
    severity=Severity.MODERATE,
)
case(
    "password_weak_hash",
    Status.FAIL,
    accounts([("old", 1000, NOLOGIN, crypt("x-long-pass", "ab"))]),
    resources={"old"},
    message="User `old` has a password hashed with `descrypt` (/etc/shadow line 2): traditional "
    "DES crypt uses only the first 8 characters and a 12-bit salt",
    severity=Severity.HIGH,
    name="des",
)
case(
    "password_weak_hash",
    Status.PASS,
    accounts([("alice", 1000, BASH, STRONG), ("old", 1001, BASH, "!" + crypt("x", "ab"))]),
)

# --- password_extra_uid0 --------------------------------------------------------------------

case(
    "password_extra_uid0",
    Status.FAIL,
    accounts([("toor", 0, BASH, "!"), ("alice", 1000, BASH, "!")]),
    resources={"toor"},
    message="Account `toor` has uid 0, the privileges of root (/etc/passwd line 2)",
)
case("password_extra_uid0", Status.PASS, accounts([("alice", 1000, BASH, "!")]))

# --- password_root_usable -------------------------------------------------------------------

case(
    "password_root_usable",
    Status.FAIL,
    {
        "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\n",
        "/etc/shadow": File(f"root:{STRONG}:19000:0:99999:7:::\n", mode=0o640),
    },
    resources={"root"},
    message="User `root` has a usable password (sha512crypt, rounds=5000 (default), "
    "/etc/shadow line 1); it should be locked",
)
case(
    "password_root_usable",
    Status.PASS,
    {
        "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\n",
        "/etc/shadow": File(f"root:!{STRONG}:19000:0:99999:7:::\n", mode=0o640),
    },
)

# --- password_sudo_nopasswd_all -------------------------------------------------------------

_SUDO_BASE = "root ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n"

case(
    "password_sudo_nopasswd_all",
    Status.FAIL,
    accounts(
        [("deploy", 1000, BASH, "!"), ("alice", 1001, BASH, STRONG), ("ops", 1002, BASH, STRONG)],
        extra={
            "/etc/sudoers": _SUDO_BASE,
            "/etc/sudoers.d/deploy": "deploy ALL=(ALL) NOPASSWD: ALL\n",
            "/etc/sudoers.d/wheel": "%wheel ALL=(root) NOPASSWD:ALL\nalice ALL = NOPASSWD: ALL\n",
            "/etc/group": "root:x:0:\nwheel:x:10:ops\n",
            "/home/ops/.ssh/authorized_keys": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA ops@x\n",
        },
    ),
    resources={"ops"},
    message="User `ops` may run any command as root without a password (`NOPASSWD: ALL`, "
    "/etc/sudoers.d/wheel line 1) and can log in with an ssh key "
    "(/home/ops/.ssh/authorized_keys) without knowing its password",
)
# The cloud image pattern: a locked default user with NOPASSWD sudo and no baked key (cloud-init
# injects the user's own key at boot) passes by default.
case(
    "password_sudo_nopasswd_all",
    Status.PASS,
    accounts(
        [("debian", 1000, BASH, "!")],
        extra={"/etc/sudoers": "debian ALL=(ALL) NOPASSWD: ALL\n"},
    ),
    name="cloud-user",
)
case(
    "password_sudo_nopasswd_all",
    Status.FAIL,
    accounts(
        [("ci", 1000, BASH, "")],
        extra={"/etc/sudoers": "Defaults !authenticate\nci ALL=(ALL) ALL\n"},
    ),
    resources={"ci"},
    message="User `ci` may run any command as root without a password (`ALL with Defaults "
    "!authenticate`, /etc/sudoers line 2) and has an empty password",
    name="authenticate",
)
case(
    "password_sudo_nopasswd_all",
    Status.PASS,
    accounts(
        [("alice", 1000, BASH, STRONG), ("svc", 1001, NOLOGIN, "!")],
        extra={
            "/etc/sudoers": "alice ALL=(ALL) NOPASSWD: ALL\n"
            "svc ALL=(ALL) NOPASSWD: /usr/bin/systemctl restart svc\n"
            "%sudo ALL=(ALL) ALL\n",
        },
    ),
)

case(
    "password_default_or_weak",
    Status.FAIL,
    {
        # glibc skips the toor line (empty uid); musl reads it as uid 0, a second root.
        "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\ntoor:x::0::/root:/bin/sh\n",
        "/etc/shadow": File(f"root:!{LOCKED}\ntoor:{crypt('toor')}{LOCKED}\n", mode=0o640),
    },
    resources={"toor"},
    message="User `toor` has its user name `toor` as password (/etc/shadow line 2)",
    name="shadow-only",
)

# --- password_shadow_consistency ------------------------------------------------------------

case(
    "password_shadow_consistency",
    Status.FAIL,
    {
        "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\n"
        f"old:{crypt('secret', 'ab')}:1000:1000::/home/old:/bin/sh\n"
        "half:x:1001:1001::/home/half:/bin/sh\n",
        "/etc/shadow": File("root:!:19000:0:99999:7:::\n", mode=0o640),
    },
    resources={"old", "half"},
    message="User `old` has its password hash in /etc/passwd, readable by everyone "
    "(/etc/passwd line 2), and no entry in /etc/shadow",
)
case(
    "password_shadow_consistency",
    Status.FAIL,
    {
        "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\nhalf:x:1001:1001::/home/half:/bin/sh\n",
        "/etc/shadow": File("root:!:19000:0:99999:7:::\n", mode=0o640),
    },
    resources={"half"},
    message="User `half` has no entry in /etc/shadow (/etc/passwd line 2)",
    name="no-shadow-entry",
)
case(
    "password_shadow_consistency",
    Status.FAIL,
    {
        "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\nroot:x:0:0:root:/root:/bin/sh\n"
        "toor:x::0::/root:/bin/sh\n",
        "/etc/shadow": File("root:!:19000:0:99999:7:::\nroot:*:19000::::::\n", mode=0o640),
    },
    resources={"root", "/etc/passwd:3"},
    message="User `root` has 2 entries in /etc/shadow (lines 1 and 2); the C library uses the "
    "first, line 1",
    name="duplicates-and-skipped-lines",
)
case(
    "password_shadow_consistency",
    Status.FAIL,
    {
        "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\ntoor:x::0::/root:/bin/sh\n",
        "/etc/shadow": File("root:!:19000:0:99999:7:::\n", mode=0o640),
    },
    resources={"/etc/passwd:2"},
    # musl reads an empty uid as 0: toor would be a second root on Alpine.
    message="/etc/passwd line 2 is skipped by the C library (uid or gid not a number); other "
    "parsers may read it as an account",
    name="skipped-line",
)
case(
    "password_shadow_consistency",
    Status.PASS,
    accounts([("alice", 1000, BASH, STRONG), ("nobody", 65534, NOLOGIN, "*")]),
)

# root/root: found as the user name, and the message still names the product documenting it.
case(
    "password_default_or_weak",
    Status.FAIL,
    {
        "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\n",
        "/etc/shadow": File(f"root:{crypt('root')}:19000:0:99999:7:::\n", mode=0o640),
    },
    resources={"root"},
    message="User `root` has its user name `root` as password, also the documented default of "
    "Lakka (/etc/shadow line 1, https://www.lakka.tv/doc/Accessing-Lakka-command-line-interface/)",
    name="root-root",
)
