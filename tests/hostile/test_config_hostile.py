"""Hostile daemon configuration: hidden or invented lines, cut or unreadable files, fan-outs.

Each case writes a small root directory, collects its facts and judges it with the shipped
rules and levels, as ``imageaudit scan`` does. A configuration the daemon reads differently
from us, or that we could not read whole, must never let a level through.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from imageaudit.certify import load_levels
from imageaudit.engine import scan_facts
from imageaudit.facts import Facts
from imageaudit.facts.accounts.sudoers import MAX_PARSES as SUDO_MAX_PARSES
from imageaudit.facts.accounts.sudoers import parse_sudoers
from imageaudit.facts.exports import parse_exports
from imageaudit.facts.samba import MAX_PARSES as SAMBA_MAX_PARSES
from imageaudit.facts.sshd import MAX_PARSES
from imageaudit.findings import Finding, Report
from imageaudit.imagefs import DEFAULT_READ_LIMIT
from imageaudit.model import Status
from tests.rules.harness import RULES_DIR, facts_of, rules
from tests.scenario import File, Scenario, Symlink

CFG = "/etc/ssh/sshd_config"
SSHD = File(b"\x7fELF\0OpenSSH_9.2p1 Debian\0", mode=0o755)
EXPORTS = "/etc/exports"
# The separators str.splitlines() breaks on and sshd, exportfs and glibc do not.
NOT_NEWLINES = ["\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028"]


def judge(facts: Facts) -> Report:
    """Judge ``facts`` with the shipped rules and levels, as ``imageaudit scan`` does."""
    return scan_facts(facts, rules(), load_levels(RULES_DIR / "levels.yaml"))


def scan(tmp_path: Path, tree: Scenario) -> Report:
    return judge(facts_of(tree, tmp_path / "root"))


def status(report: Report, rule_id: str) -> Status:
    return next(r.status for r in report.rules if r.id == rule_id)


def findings(report: Report, rule_id: str) -> list[Finding]:
    return [f for f in report.findings if f.rule_id == rule_id]


def blocked(report: Report, level: str, rule_id: str) -> bool:
    """``level`` is not granted and ``rule_id`` is among what blocks it."""
    lv = next(lv for lv in report.certification.levels if lv.name == level)
    return not lv.granted and rule_id in lv.blocking


def sshd_tree(config: str | File | Symlink, **extra: str | File | Symlink) -> Scenario:
    return {"/usr/sbin/sshd": SSHD, CFG: config, **extra}


# --- sshd: lines as sshd splits them ----------------------------------------------------------


@pytest.mark.parametrize("sep", NOT_NEWLINES, ids=[f"U+{ord(c):04X}" for c in NOT_NEWLINES])
def test_sshd_comment_with_separator_does_not_hide_root_login(tmp_path: Path, sep: str) -> None:
    # For sshd line 1 is one comment; split at ``sep`` it would start with "PermitRootLogin no"
    # and, the first value winning, hide line 2.
    report = scan(tmp_path, sshd_tree(f"#{sep}PermitRootLogin no\nPermitRootLogin yes\n"))
    assert status(report, "ssh_permit_root_login") is Status.FAIL
    assert [f.message for f in findings(report, "ssh_permit_root_login")] == [
        "sshd lets root log in with a password (`PermitRootLogin yes`, "
        "/etc/ssh/sshd_config line 2)"
    ]
    assert blocked(report, "standard", "ssh_permit_root_login")


def test_sshd_carriage_return_separates_keyword_and_value(tmp_path: Path) -> None:
    # sshd's keyword ends at space, tab, CR or '=': this is "PermitRootLogin yes".
    report = scan(tmp_path, sshd_tree("PermitRootLogin\ryes\n"))
    assert status(report, "ssh_permit_root_login") is Status.FAIL
    assert blocked(report, "standard", "ssh_permit_root_login")


def test_sshd_comment_with_separator_does_not_invent_password_login(tmp_path: Path) -> None:
    report = scan(
        tmp_path,
        sshd_tree("#\rPasswordAuthentication yes\nPasswordAuthentication no\n"
                  "KbdInteractiveAuthentication no\n"),
    )
    assert status(report, "ssh_password_authentication") is Status.PASS


@pytest.mark.parametrize("sep", ["\v", "\f", "\x1c"])
def test_sshd_value_with_separator_is_one_argument(tmp_path: Path, sep: str) -> None:
    # Only space and tab separate sshd's arguments: "no<VT>yes" is one (invalid) value,
    # not "no" followed by a stray "yes".
    facts = facts_of(sshd_tree(f"PasswordAuthentication no{sep}yes\n"), tmp_path / "root")
    assert facts.sshd is not None
    option = facts.sshd.option("PasswordAuthentication")
    assert option is not None and option.values == (f"no{sep}yes",)


# --- sshd: what cannot be read whole ----------------------------------------------------------

ROOT_LOGIN_ERROR = "Could not evaluate: the `sshd` facts are incomplete ("


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(Symlink("/etc/ssh/nowhere"), id="dangling"),
        pytest.param(Symlink("/etc/ssh/sshd_config"), id="loop"),
        pytest.param(
            "#" * DEFAULT_READ_LIMIT + "\nPermitRootLogin yes\n", id="cut-at-cap"
        ),
    ],
)
def test_sshd_config_not_read_whole_is_error(tmp_path: Path, config: str | Symlink) -> None:
    report = scan(tmp_path, sshd_tree(config))
    assert status(report, "ssh_permit_root_login") is Status.ERROR
    (only,) = findings(report, "ssh_permit_root_login")
    assert only.message.startswith(ROOT_LOGIN_ERROR)
    assert "/etc/ssh/sshd_config" in only.message
    assert blocked(report, "standard", "ssh_permit_root_login")


def test_sshd_include_of_unreadable_file_is_error(tmp_path: Path) -> None:
    report = scan(
        tmp_path,
        sshd_tree("Include sshd_config.d/*.conf\nPermitRootLogin no\n",
                  **{"/etc/ssh/sshd_config.d/10-cloud.conf": Symlink("/run/cloud/sshd.conf")}),
    )
    assert status(report, "ssh_permit_root_login") is Status.ERROR
    (only,) = findings(report, "ssh_permit_root_login")
    assert "/etc/ssh/sshd_config.d/10-cloud.conf could not be read" in only.message


@pytest.mark.parametrize("files", [100, 400])
def test_sshd_include_fan_out_ends_with_error(tmp_path: Path, files: int) -> None:
    # Every file includes the whole directory again: sshd exits at its depth limit. We stop
    # at the first loop instead of walking the paths (exponentially many).
    extra: dict[str, str | File | Symlink] = {
        f"/etc/ssh/sshd_config.d/{i:04d}.conf": "Include sshd_config.d/*.conf\nMaxAuthTries 3\n"
        for i in range(files)
    }
    tree = sshd_tree("Include sshd_config.d/*.conf\nPermitRootLogin no\n", **extra)
    facts = facts_of(tree, tmp_path / "root")
    assert facts.sshd is not None
    assert facts.sshd.files == (CFG, "/etc/ssh/sshd_config.d/0000.conf")
    assert [e.message for e in facts.errors if e.collector == "sshd"] == [
        "the sshd configuration was not read whole: include loop at "
        "/etc/ssh/sshd_config.d/0000.conf (/etc/ssh/sshd_config.d/0000.conf line 1); "
        "sshd refuses to start"
    ]
    report = judge(facts)
    assert status(report, "ssh_permit_root_login") is Status.ERROR
    assert blocked(report, "standard", "ssh_permit_root_login")


def test_sshd_include_tree_without_loop_is_bounded(tmp_path: Path) -> None:
    # No loop, but 4 files per level over 8 levels: 87,380 inclusions for sshd. We read
    # each file once and stop after MAX_PARSES inclusions, with the facts incomplete.
    extra: dict[str, str | File | Symlink] = {}
    for level in range(8):
        for i in range(4):
            nxt = f"Include l{level + 1}/*.conf\n" if level < 7 else ""
            extra[f"/etc/ssh/l{level}/{i}.conf"] = f"{nxt}MaxAuthTries 3\n"
    tree = sshd_tree("Include l0/*.conf\nPermitRootLogin no\n", **extra)
    facts = facts_of(tree, tmp_path / "root")
    assert facts.sshd is not None
    assert len(facts.sshd.files) == MAX_PARSES
    assert [e.message for e in facts.errors if e.collector == "sshd"] == [
        f"the sshd configuration was not read whole: over {MAX_PARSES} file inclusions in all"
    ]
    report = judge(facts)
    assert status(report, "ssh_permit_root_login") is Status.ERROR


# --- exports ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sep", ["\r", "\v", "\f"])  # C isspace(), as exportfs splits
def test_exports_entry_after_separator_is_seen(tmp_path: Path, sep: str) -> None:
    # exportfs reads "/srv/pub 10.0.0.1(ro) *(rw)": a second client, everyone, writable.
    report = scan(tmp_path, {EXPORTS: f"/srv/pub 10.0.0.1(ro){sep}*(rw)\n"})
    assert status(report, "export_nfs_world_writable") is Status.FAIL
    assert [(f.status, f.resource) for f in findings(report, "export_nfs_world_writable")] == [
        (Status.FAIL, "/srv/pub *")
    ]
    assert blocked(report, "basic", "export_nfs_world_writable")


def test_exports_words_split_on_c_whitespace_only() -> None:
    # U+001C is whitespace to Python, not to exportfs's isspace(): the line is one path,
    # exported with the defaults (ro) to everyone, not "/srv/a" writable by everyone.
    entries, malformed = parse_exports(EXPORTS, "/srv/a\x1c*(rw)\n")
    assert [(e.path, e.client, e.options, e.no_client_given) for e in entries] == [
        ("/srv/a\x1c*(rw)", "*", (), True)
    ]
    assert malformed == []


def test_exports_comment_with_separator_invents_nothing(tmp_path: Path) -> None:
    report = scan(tmp_path, {EXPORTS: "# was: \r/srv *(rw)\n/srv 10.0.0.1(rw)\n"})
    assert status(report, "export_nfs_world_writable") is Status.PASS


@pytest.mark.parametrize(
    "table",
    [
        pytest.param(Symlink("/run/exports"), id="dangling"),
        pytest.param("#" * DEFAULT_READ_LIMIT + "\n/srv *(rw)\n", id="cut-at-cap"),
        pytest.param(
            "/srv/a 10.0.0.1(rw)\n" + "#" * DEFAULT_READ_LIMIT + "\n", id="cut-after-an-entry"
        ),
    ],
)
def test_exports_not_read_whole_is_error(tmp_path: Path, table: str | Symlink) -> None:
    report = scan(tmp_path, {EXPORTS: table})
    assert status(report, "export_nfs_world_writable") is Status.ERROR
    (only,) = findings(report, "export_nfs_world_writable")
    assert only.message.startswith("Could not evaluate: the `exports` facts are incomplete (")
    assert blocked(report, "basic", "export_nfs_world_writable")


def test_exports_100k_world_writable_lines_are_aggregated(tmp_path: Path) -> None:
    lines = 100_000
    table = "".join(f"/srv/s{i} *(rw,no_root_squash)\n" for i in range(lines))
    report = scan(tmp_path, {EXPORTS: table})
    assert status(report, "export_nfs_world_writable") is Status.FAIL
    found = findings(report, "export_nfs_world_writable")
    assert len(found) == 200
    assert [f.resource for f in found[:2]] == ["/srv/s0 *", "/srv/s1 *"]
    assert found[-1].message == (
        f"{lines - 199} more NFS export clients are writable by every host "
        "(not listed one by one)"
    )
    squash = findings(report, "export_nfs_no_root_squash")
    assert squash[-1].message == (
        f"{lines - 199} more NFS export clients have `no_root_squash` (not listed one by one)"
    )
    assert squash[-1].severity == squash[0].severity
    assert blocked(report, "basic", "export_nfs_world_writable")


# --- sudoers ----------------------------------------------------------------------------------


def test_sudoers_line_with_many_host_groups_is_linear() -> None:
    # Each ':' used to search the whole line before it for a tag name: quadratic in a line of
    # 40,000 host groups (minutes). Now each is one step back.
    groups = 40_000
    text = "alice ALL = NOPASSWD: /bin/x" + " : h=/bin/y" * groups + "\n"
    facts = parse_sudoers(lambda p: text if p == "/etc/sudoers" else None, lambda p: None)
    assert facts.malformed == ()
    assert len(facts.rules) == groups + 1
    first, second = facts.rules[0], facts.rules[1]
    assert (first.hosts, [(c.command, c.tags) for c in first.commands]) == (
        ("ALL",), [("/bin/x", ("NOPASSWD",))]
    )
    assert (second.hosts, [(c.command, c.tags) for c in second.commands]) == (
        ("h",), [("/bin/y", ())]
    )


# --- smb.conf ---------------------------------------------------------------------------------


def test_samba_include_fan_out_is_bounded(tmp_path: Path) -> None:
    # smb.conf includes a.conf 100 times, which includes b.conf 100 times, ...: a million
    # parses for smbd. We read each file once and stop after MAX_PARSES inclusions.
    many = 100
    tree: dict[str, str | File | Symlink] = {
        "/usr/sbin/smbd": File(b"\x7fELF", mode=0o755),
        "/etc/samba/smb.conf": "[global]\n" + "include = /etc/samba/a.conf\n" * many,
        "/etc/samba/a.conf": "include = /etc/samba/b.conf\n" * many,
        "/etc/samba/b.conf": "include = /etc/samba/c.conf\n" * many,
        "/etc/samba/c.conf": "[pub]\npath = /srv/pub\nguest ok = yes\n",
    }
    facts = facts_of(tree, tmp_path / "root")
    assert facts.samba is not None
    assert len(facts.samba.files) == SAMBA_MAX_PARSES
    assert [e.message for e in facts.errors if e.collector == "samba"] == [
        "the Samba configuration was not read whole: over "
        f"{SAMBA_MAX_PARSES} file inclusions in all (/etc/samba/b.conf line 12)"
    ]
    report = judge(facts)
    # The guest share read so far fails; nothing passes over the rest.
    assert status(report, "export_samba_guest") is Status.FAIL
    assert [(f.status, f.resource) for f in findings(report, "export_samba_guest")] == [
        (Status.FAIL, "pub"), (Status.ERROR, None)
    ]
    assert blocked(report, "hardened", "export_samba_guest")


def test_sudoers_includedir_fan_out_is_bounded(tmp_path: Path) -> None:
    # Each file of sudoers.d includes the whole directory again: exponentially many paths
    # (sudo itself stops at its include depth). Each file is read once, reading stops after
    # MAX_PARSES inclusions and the accounts facts are incomplete.
    files = 40
    tree: dict[str, str | File | Symlink] = {
        "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\n"
        "alice:x:1000:1000::/home/alice:/bin/bash\n",
        "/etc/shadow": "root:!:19000:0:99999:7:::\nalice:!:19000:0:99999:7:::\n",
        "/etc/group": "root:x:0:\nalice:x:1000:\n",
        "/etc/sudoers": "root ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n",
        **{
            f"/etc/sudoers.d/f{i:02d}": "@includedir /etc/sudoers.d\n"
            "alice ALL=(ALL) NOPASSWD: ALL\n"
            for i in range(files)
        },
    }
    facts = facts_of(tree, tmp_path / "root")
    assert facts.accounts is not None
    assert len(facts.accounts.sudoers.files) == SUDO_MAX_PARSES
    assert [e.message for e in facts.errors if e.incomplete] == [
        f"sudoers was not read whole: over {SUDO_MAX_PARSES} file inclusions in all "
        "(/etc/sudoers.d/f23 line 1)"
    ]
    report = judge(facts)
    assert status(report, "password_sudo_nopasswd_all") is Status.ERROR
    (only,) = findings(report, "password_sudo_nopasswd_all")
    assert only.message.startswith(
        "Could not evaluate: the `accounts` facts are incomplete (/etc/sudoers.d/f22: sudoers "
        "was not read whole"
    )
    assert blocked(report, "standard", "password_sudo_nopasswd_all")


def test_samba_include_of_dangling_link_is_error(tmp_path: Path) -> None:
    # A link to a file made at run time may define shares we cannot see: not "absent".
    tree: dict[str, str | File | Symlink] = {
        "/usr/sbin/smbd": File(b"\x7fELF", mode=0o755),
        "/etc/samba/smb.conf": "[global]\ninclude = /etc/samba/shares.conf\n",
        "/etc/samba/shares.conf": Symlink("/run/samba/shares.conf"),
    }
    report = scan(tmp_path, tree)
    assert status(report, "export_samba_guest") is Status.ERROR
    (only,) = findings(report, "export_samba_guest")
    assert only.message.startswith(
        "Could not evaluate: the `samba` facts are incomplete (/etc/samba/shares.conf: "
    )
