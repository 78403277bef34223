"""Pass and fail scenarios of the ssh rules (``rules/ssh/``)."""

from __future__ import annotations

from imageaudit.model import Severity, Status
from tests.rules.cases_password import BASH, NOLOGIN, STRONG, Tree, accounts
from tests.rules.harness import case
from tests.scenario import File, Symlink

# A stand-in sshd binary: the collector reads the version from its strings.
OLD_SSHD = File(b"\x7fELF\0OpenSSH_6.6p1 Ubuntu\0", mode=0o755)
NEW_SSHD = File(b"\x7fELF\0OpenSSH_9.2p1 Debian\0", mode=0o755)
NO_SSHD_TREE = accounts([("alice", 1000, BASH, STRONG)])


def sshd(config: str | None, binary: File | str = "", **extra: File | str) -> Tree:
    """A tree with an sshd binary and, when given, an sshd_config; plus ``extra`` paths."""
    tree: Tree = {"/usr/sbin/sshd": binary}
    if config is not None:
        tree["/etc/ssh/sshd_config"] = config
    tree.update(extra)
    return tree


def with_accounts(users: list[tuple[str, int, str, str]], tree: Tree) -> Tree:
    return accounts(users, extra=tree)


# --- ssh_permit_root_login ------------------------------------------------------------------

case(
    "ssh_permit_root_login",
    Status.FAIL,
    sshd("Port 22\nPermitRootLogin yes\n"),
    resources={"PermitRootLogin"},
    message="sshd lets root log in with a password (`PermitRootLogin yes`, "
    "/etc/ssh/sshd_config line 2)",
)
case(
    "ssh_permit_root_login",
    Status.FAIL,
    sshd(None, OLD_SSHD),
    resources={"PermitRootLogin"},
    message="sshd lets root log in with a password (`PermitRootLogin yes`, not set: "
    "OpenSSH 6.6 defaults)",
    name="old-default",
)
case(
    "ssh_permit_root_login",
    Status.FAIL,
    sshd(
        "PermitRootLogin prohibit-password\nMatch Address *\n  PermitRootLogin yes\n"
        "Match User admin\n  PermitRootLogin no\n"
    ),
    resources={"PermitRootLogin (Match Address *)"},
    message="sshd lets root log in with a password (`PermitRootLogin yes` in Match block "
    "`Match Address *`, /etc/ssh/sshd_config line 3)",
    name="match-everyone",
)
# A conditional block counts too (documented in imageaudit.checks.ssh): one finding per block.
case(
    "ssh_permit_root_login",
    Status.FAIL,
    sshd(
        "PermitRootLogin no\nInclude /etc/ssh/sshd_config.d/*.conf\n",
        **{"/etc/ssh/sshd_config.d/10-lab.conf": "Match Address 10.0.0.0/8\nPermitRootLogin yes\n"},
    ),
    resources={"PermitRootLogin (Match Address 10.0.0.0/8)"},
    message="sshd lets root log in with a password (`PermitRootLogin yes` in Match block "
    "`Match Address 10.0.0.0/8`, /etc/ssh/sshd_config.d/10-lab.conf line 2)",
    name="match-conditional",
)
case(
    "ssh_permit_root_login",
    Status.PASS,
    sshd("PermitRootLogin without-password\nMatch all\n  PermitRootLogin no\nMatch User x\n"
         "  PermitRootLogin yes\n"),
)  # fmt: skip
case("ssh_permit_root_login", Status.PASS, sshd(None, NEW_SSHD), name="modern-default")
case("ssh_permit_root_login", Status.NOT_APPLICABLE, NO_SSHD_TREE, name="no-sshd")
# A link to a file made at run time is not "no sshd_config": we cannot say what it sets.
case(
    "ssh_permit_root_login",
    Status.ERROR,
    sshd(None, NEW_SSHD, **{"/etc/ssh/sshd_config": Symlink("/run/sshd/sshd_config")}),
    name="dangling-config",
)
# sshd reads "#<CR>PermitRootLogin no" as one comment line, so line 2 is the first value.
case(
    "ssh_permit_root_login",
    Status.FAIL,
    sshd("#\rPermitRootLogin no\nPermitRootLogin yes\n", NEW_SSHD),
    resources={"PermitRootLogin"},
    message="sshd lets root log in with a password (`PermitRootLogin yes`, "
    "/etc/ssh/sshd_config line 2)",
    name="carriage-return-in-comment",
)

# --- ssh_password_authentication ------------------------------------------------------------

_USERS = [
    ("alice", 1000, BASH, STRONG),
    ("bob", 1001, BASH, STRONG),
    ("svc", 1002, NOLOGIN, STRONG),
    ("locked", 1003, BASH, "!"),
]
ROOT_WITH_PASSWORD: dict[str, File | str] = {
    "/etc/shadow": File(
        f"root:{STRONG}:19000:0:99999:7:::\nalice:{STRONG}:19000::::::\n", mode=0o640
    ),
    "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n",
}

case(
    "ssh_password_authentication",
    Status.FAIL,
    with_accounts(_USERS, sshd("PasswordAuthentication yes\n")),
    resources={"PasswordAuthentication"},
    message="sshd accepts password logins (`PasswordAuthentication yes`, /etc/ssh/sshd_config "
    "line 1) for 2 accounts with usable passwords and login shells: `alice`, `bob`",
    severity=Severity.HIGH,
)
case(
    "ssh_password_authentication",
    Status.FAIL,
    sshd("PermitRootLogin yes\n", **ROOT_WITH_PASSWORD),
    resources={"PasswordAuthentication"},
    message="sshd accepts password logins (`PasswordAuthentication yes`, not set: "
    "OpenSSH >= 7.0 defaults assumed (no version string in /usr/sbin/sshd)) for 2 accounts "
    "with usable passwords and login shells: `root`, `alice`",
    severity=Severity.HIGH,
    name="default-with-root",
)
case(
    "ssh_password_authentication",
    Status.FAIL,
    with_accounts([("locked", 1000, BASH, "!")], sshd("UsePAM yes\n")),
    resources={"PasswordAuthentication"},
    message="sshd accepts password logins (`PasswordAuthentication yes`, not set: "
    "OpenSSH >= 7.0 defaults assumed (no version string in /usr/sbin/sshd)); no account has "
    "a usable password today, but any password set later is exposed",
    severity=Severity.MODERATE,
    name="no-accounts",
)
case(
    "ssh_password_authentication",
    Status.FAIL,
    with_accounts(
        _USERS,
        sshd("PasswordAuthentication no\nMatch User alice,bob\n PasswordAuthentication yes\n"),
    ),
    resources={"PasswordAuthentication (Match User alice,bob)"},
    message="sshd accepts password logins (`PasswordAuthentication yes` in Match block "
    "`Match User alice,bob`, /etc/ssh/sshd_config line 3) for 2 accounts with usable "
    "passwords and login shells: `alice`, `bob`",
    name="match-user",
)
case(
    "ssh_password_authentication",
    Status.PASS,
    with_accounts(_USERS, sshd("PasswordAuthentication no\nMatch all\n")),
)
case("ssh_password_authentication", Status.NOT_APPLICABLE, NO_SSHD_TREE, name="no-sshd")

# --- ssh_kbd_interactive_passwords ----------------------------------------------------------

case(
    "ssh_kbd_interactive_passwords",
    Status.FAIL,
    with_accounts(
        _USERS,
        sshd("UsePAM yes\nPasswordAuthentication no\nChallengeResponseAuthentication yes\n"),
    ),
    resources={"KbdInteractiveAuthentication"},
    message="sshd accepts passwords through keyboard-interactive PAM "
    "(`KbdInteractiveAuthentication yes`, /etc/ssh/sshd_config line 3; `UsePAM yes`, "
    "/etc/ssh/sshd_config line 1) for 2 accounts with usable passwords and login shells: "
    "`alice`, `bob`",
    severity=Severity.HIGH,
)
case(
    "ssh_kbd_interactive_passwords",
    Status.PASS,
    with_accounts(_USERS, sshd("PasswordAuthentication no\n")),
    name="no-pam",
)
case(
    "ssh_kbd_interactive_passwords",
    Status.PASS,
    with_accounts([("locked", 1000, BASH, "!")], sshd("UsePAM yes\n")),
    name="no-passwords",
)
case(
    "ssh_kbd_interactive_passwords",
    Status.PASS,
    with_accounts(_USERS, sshd("UsePAM yes\nKbdInteractiveAuthentication no\n")),
)
case("ssh_kbd_interactive_passwords", Status.NOT_APPLICABLE, NO_SSHD_TREE, name="no-sshd")

# --- ssh_permit_empty_passwords -------------------------------------------------------------

case(
    "ssh_permit_empty_passwords",
    Status.FAIL,
    with_accounts([("guest", 1000, BASH, "")], sshd("PermitEmptyPasswords yes\n")),
    resources={"PermitEmptyPasswords"},
    message="sshd accepts empty passwords (`PermitEmptyPasswords yes`, /etc/ssh/sshd_config "
    "line 1); accounts with empty passwords and login shells: `guest`",
    severity=Severity.CRITICAL,
)
case(
    "ssh_permit_empty_passwords",
    Status.FAIL,
    with_accounts([("alice", 1000, BASH, STRONG)], sshd("Match all\nPermitEmptyPasswords yes\n")),
    resources={"PermitEmptyPasswords (Match All)"},
    message="sshd accepts empty passwords (`PermitEmptyPasswords yes` in Match block "
    "`Match All`, /etc/ssh/sshd_config line 2)",
    severity=Severity.HIGH,
    name="match-all",
)
case(
    "ssh_permit_empty_passwords",
    Status.PASS,
    with_accounts([("guest", 1000, BASH, "")], sshd("PasswordAuthentication yes\n")),
)
case("ssh_permit_empty_passwords", Status.NOT_APPLICABLE, NO_SSHD_TREE, name="no-sshd")

# --- ssh_protocol_1 -------------------------------------------------------------------------

case(
    "ssh_protocol_1",
    Status.FAIL,
    sshd("Protocol 2,1\n"),
    resources={"Protocol"},
    message="sshd enables the broken SSH protocol 1 (`Protocol 2,1`, /etc/ssh/sshd_config "
    "line 1): the OpenSSH version is unknown, and releases before 7.4 honour it",
)
case(
    "ssh_protocol_1",
    Status.FAIL,
    sshd("protocol=1\n", OLD_SSHD),
    resources={"Protocol"},
    message="sshd enables the broken SSH protocol 1 (`Protocol 1`, /etc/ssh/sshd_config "
    "line 1): OpenSSH 6.6 honours it",
    name="old",
)
case("ssh_protocol_1", Status.PASS, sshd("Protocol 1\n", NEW_SSHD), name="ignored")
case("ssh_protocol_1", Status.PASS, sshd("Protocol 2\n"))
case("ssh_protocol_1", Status.NOT_APPLICABLE, NO_SSHD_TREE, name="no-sshd")

# --- ssh_weak_ciphers / macs / kex ----------------------------------------------------------

case(
    "ssh_weak_ciphers",
    Status.FAIL,
    sshd("Ciphers aes128-ctr,aes256-cbc,arcfour\n"),
    resources={"Ciphers"},
    message="sshd enables weak Ciphers `aes256-cbc`, `arcfour` (`Ciphers "
    "aes128-ctr,aes256-cbc,arcfour`, /etc/ssh/sshd_config line 1)",
)
case(
    "ssh_weak_ciphers",
    Status.FAIL,
    sshd("Ciphers +*-cbc\n"),
    resources={"Ciphers"},
    message="sshd enables weak Ciphers `3des-cbc`, `aes128-cbc`, `aes192-cbc`, `aes256-cbc`, "
    "`blowfish-cbc`, `cast128-cbc` (`Ciphers +*-cbc`, /etc/ssh/sshd_config line 1)",
    name="wildcard",
)
case("ssh_weak_ciphers", Status.PASS, sshd("Ciphers -*-cbc\n"), name="removal")
case("ssh_weak_ciphers", Status.PASS, sshd("Ciphers chacha20-poly1305@openssh.com\n"))
case("ssh_weak_ciphers", Status.NOT_APPLICABLE, NO_SSHD_TREE, name="no-sshd")
case(
    "ssh_weak_macs",
    Status.FAIL,
    sshd("MACs +hmac-md5,hmac-sha1-96\n"),
    resources={"MACs"},
    message="sshd enables weak MACs `hmac-md5`, `hmac-sha1-96` (`MACs +hmac-md5,hmac-sha1-96`, "
    "/etc/ssh/sshd_config line 1)",
)
case("ssh_weak_macs", Status.PASS, sshd("MACs hmac-sha2-512-etm@openssh.com\n"))
case(
    "ssh_weak_kex",
    Status.FAIL,
    sshd("KexAlgorithms ^diffie-hellman-group1-sha1\n"),
    resources={"KexAlgorithms"},
    message="sshd enables weak KexAlgorithms `diffie-hellman-group1-sha1` (`KexAlgorithms "
    "^diffie-hellman-group1-sha1`, /etc/ssh/sshd_config line 1)",
)
case("ssh_weak_kex", Status.PASS, sshd(None))
