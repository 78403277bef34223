from __future__ import annotations

from pathlib import Path

from imageaudit.facts.base import CollectContext
from imageaudit.facts.sshd import (
    SshdDirective,
    SshdFacts,
    SshdInclude,
    SshdMatchBlock,
    SshdOption,
    argv_split,
    collect,
)
from imageaudit.facts.textlines import MalformedLine
from imageaudit.model import CollectorError, Source
from imageaudit.openers.directory import DirectoryFS
from tests.scenario import File, Scenario, write_tree

CFG = "/etc/ssh/sshd_config"


def run_ctx(tmp_path: Path, scenario: Scenario) -> tuple[SshdFacts, CollectContext]:
    root = write_tree(scenario, tmp_path / "root")
    with DirectoryFS(root) as fs:
        ctx = CollectContext(fs=fs, current="sshd")
        return collect(ctx), ctx


def run(tmp_path: Path, scenario: Scenario) -> SshdFacts:
    return run_ctx(tmp_path, scenario)[0]


def test_first_value_wins_includes_and_defaults(tmp_path: Path) -> None:
    facts = run(
        tmp_path,
        {
            CFG: (
                "# comment\n"
                "Include sshd_config.d/*.conf\n"
                "permitrootlogin yes\n"
                "PasswordAuthentication=no\n"
                "Port 22\nPort 2222\n"
                "AcceptEnv LANG LC_*\nAcceptEnv TZ\n"
                'Banner "/etc/issue net"\n'
                "Subsystem sftp /usr/lib/openssh/sftp-server\n"
                "ChallengeResponseAuthentication no\n"
            ),
            "/etc/ssh/sshd_config.d/50-cloud.conf": "PasswordAuthentication yes\n",
            "/etc/ssh/sshd_config.d/10-first.conf": "PermitRootLogin prohibit-password\n",
            "/etc/ssh/sshd_config.d/.hidden.conf": "PermitRootLogin no\n",
            "/etc/ssh/sshd_config.d/notes.txt": "PermitRootLogin no\n",
            "/usr/sbin/sshd": File(
                b"\x7fELF\x00OpenSSH_2.*,OpenSSH_3.0*\x00OpenSSH_7.4*\x00OpenSSH_9.2p1\x00",
                mode=0o755,
            ),
        },
    )
    assert (facts.binary, facts.version, facts.config_present, facts.installed) == (
        "/usr/sbin/sshd",
        "OpenSSH_9.2p1",
        True,
        True,
    )
    assert facts.defaults_note == "OpenSSH 9.2 defaults"
    first = "/etc/ssh/sshd_config.d/10-first.conf"
    cloud = "/etc/ssh/sshd_config.d/50-cloud.conf"
    assert facts.files == (CFG, first, cloud)
    assert facts.includes == (SshdInclude(Source(CFG, 2), "sshd_config.d/*.conf", (first, cloud)),)
    assert facts.option("PERMITROOTLOGIN") == SshdOption(
        "PermitRootLogin", "prohibit-password", ("prohibit-password",), (Source(first, 1),), False
    )
    assert facts.option("PasswordAuthentication") == SshdOption(
        "PasswordAuthentication", "yes", ("yes",), (Source(cloud, 1),), False
    )
    assert facts.option("Port") == SshdOption(
        "Port", "22 2222", ("22", "2222"), (Source(CFG, 5), Source(CFG, 6)), False
    )
    assert facts.option("AcceptEnv") == SshdOption(
        "AcceptEnv", "LANG LC_* TZ", ("LANG", "LC_*", "TZ"), (Source(CFG, 7), Source(CFG, 8)), False
    )
    assert facts.option("Banner") == SshdOption(
        "Banner", "/etc/issue net", ("/etc/issue net",), (Source(CFG, 9),), False
    )
    assert facts.option("Subsystem") == SshdOption(
        "Subsystem",
        "sftp /usr/lib/openssh/sftp-server",
        ("sftp /usr/lib/openssh/sftp-server",),
        (Source(CFG, 10),),
        False,
    )
    assert facts.option("KbdInteractiveAuthentication") == SshdOption(
        "KbdInteractiveAuthentication", "no", ("no",), (Source(CFG, 11),), False
    )
    assert facts.option("PermitEmptyPasswords") == SshdOption(
        "PermitEmptyPasswords", "no", ("no",), (), True
    )
    assert facts.option("ListenAddress") == SshdOption(
        "ListenAddress", "0.0.0.0 ::", ("0.0.0.0", "::"), (), True
    )
    assert facts.malformed == ()


def test_include_loop_stops_like_sshd_and_marks_incomplete(tmp_path: Path) -> None:
    # sshd has no loop check: it recurses to its depth limit and exits, so nothing after the
    # loop is in effect and the facts are incomplete.
    facts, ctx = run_ctx(
        tmp_path,
        {
            CFG: "Include /etc/ssh/a.conf\nInclude missing/*.conf\n",
            "/etc/ssh/a.conf": "Include b.conf\nX11Forwarding yes\n",
            "/etc/ssh/b.conf": "Include a.conf\nInclude sshd_config\n",
        },
    )
    assert facts.binary is None and facts.version is None
    assert facts.defaults_note == "OpenSSH >= 7.0 defaults assumed (version unknown)"
    assert facts.includes == (
        SshdInclude(Source("/etc/ssh/b.conf", 1), "a.conf", (), "include loop at /etc/ssh/a.conf"),
        SshdInclude(Source("/etc/ssh/a.conf", 1), "b.conf", ("/etc/ssh/b.conf",)),
        SshdInclude(Source(CFG, 1), "/etc/ssh/a.conf", ("/etc/ssh/a.conf",)),
    )
    assert facts.files == (CFG, "/etc/ssh/a.conf", "/etc/ssh/b.conf")
    assert facts.option("X11Forwarding") == SshdOption("X11Forwarding", "no", ("no",), (), True)
    assert ctx.errors == [
        CollectorError(
            "sshd",
            "the sshd configuration was not read whole: include loop at /etc/ssh/a.conf "
            "(/etc/ssh/b.conf line 1); sshd refuses to start",
            "/etc/ssh/b.conf",
            incomplete=True,
        )
    ]


def test_include_depth_and_no_match(tmp_path: Path) -> None:
    facts, ctx = run_ctx(tmp_path, {CFG: "Include missing/*.conf\nX11Forwarding yes\n"})
    assert facts.includes == (SshdInclude(Source(CFG, 1), "missing/*.conf", (), "no match"),)
    assert facts.option("X11Forwarding") == SshdOption(
        "X11Forwarding", "yes", ("yes",), (Source(CFG, 2),), False
    )
    assert ctx.errors == []
    # A chain of 20 distinct files stops at depth 16 (sshd's SERVCONF_MAX_DEPTH).
    chain: dict[str, str] = {CFG: "Include c0\n"}
    for i in range(20):
        chain[f"/etc/ssh/c{i}"] = f"Include c{i + 1}\n"
    deep, ctx = run_ctx(tmp_path / "deep", chain)
    assert len(deep.files) == 17
    assert deep.includes[0] == SshdInclude(
        Source("/etc/ssh/c15", 1), "c16", (), "too many recursive includes (over 16)"
    )
    assert [(e.path, e.incomplete) for e in ctx.errors] == [("/etc/ssh/c15", True)]


def test_match_blocks_and_include_inside_match(tmp_path: Path) -> None:
    facts = run(
        tmp_path,
        {
            CFG: (
                "PermitRootLogin no\n"
                "Match User backup Address 10.0.0.0/8\n"
                "  PasswordAuthentication yes\n"
                "  Include match.d/*\n"
                "  PasswordAuthentication no\n"
                "Match All\n"
                "  X11Forwarding yes\n"
            ),
            "/etc/ssh/match.d/root": (
                "PermitRootLogin yes\nMatch Group admins\nForceCommand /bin/true\n"
            ),
        },
    )
    inc = "/etc/ssh/match.d/root"
    assert facts.match_blocks == (
        SshdMatchBlock(
            Source(CFG, 2),
            (("user", "backup"), ("address", "10.0.0.0/8")),
            (
                SshdDirective(Source(CFG, 3), "PasswordAuthentication", ("yes",)),
                SshdDirective(Source(inc, 1), "PermitRootLogin", ("yes",)),
                SshdDirective(Source(CFG, 5), "PasswordAuthentication", ("no",)),
            ),
        ),
        SshdMatchBlock(
            Source(inc, 2),
            (("group", "admins"),),
            (SshdDirective(Source(inc, 3), "ForceCommand", ("/bin/true",)),),
        ),
        SshdMatchBlock(
            Source(CFG, 6),
            (("all", ""),),
            (SshdDirective(Source(CFG, 7), "X11Forwarding", ("yes",)),),
        ),
    )
    first = facts.match_blocks[0].first("passwordauthentication")
    assert first is not None and first.args == ("yes",)
    assert facts.option("PermitRootLogin") == SshdOption(
        "PermitRootLogin", "no", ("no",), (Source(CFG, 1),), False
    )
    assert facts.option("X11Forwarding") == SshdOption("X11Forwarding", "no", ("no",), (), True)


def test_malformed_lines_and_absent_sshd(tmp_path: Path) -> None:
    facts = run(
        tmp_path,
        {
            CFG: (
                'Protocol 2\nNoSuchOption yes\nPort\nBanner "open\nMatch User\n'
                + "\xff garbage\n"
                # sshd keeps a line up to its NUL, newline included: the next line joins it.
                + "Ciphers\x00 hidden from sshd\n"
                + "PermitRootLogin without-password # comment\n"
                + "PermitRootLogin without-password\n"
            ),
        },
    )
    assert facts.malformed == (
        MalformedLine(
            Source(CFG, 1), "deprecated option 'Protocol', ignored by sshd", "Protocol 2"
        ),
        MalformedLine(
            Source(CFG, 2),
            "bad configuration option 'NoSuchOption' (sshd refuses to start)",
            "NoSuchOption yes",
        ),
        MalformedLine(Source(CFG, 3), "no argument after keyword 'Port'", "Port"),
        MalformedLine(Source(CFG, 4), "invalid quotes", 'Banner "open'),
        MalformedLine(Source(CFG, 5), "Match criterion 'User' without value"),
        MalformedLine(
            Source(CFG, 6),
            "bad configuration option '\xff' (sshd refuses to start)",
            "\xff garbage",
        ),
        MalformedLine(
            Source(CFG, 7),
            "bad configuration option 'CiphersPermitRootLogin' (sshd refuses to start)",
            "CiphersPermitRootLogin without-password # comment",
        ),
    )
    # The Match line above opened a block: the last line belongs to it.
    assert facts.match_blocks[0].directives == (
        SshdDirective(Source(CFG, 9), "PermitRootLogin", ("without-password",)),
    )
    none = run(tmp_path / "none", {"/etc/hostname": "x\n"})
    assert (none.installed, none.config_present, none.files) == (False, False, ())
    assert none.option("PermitRootLogin") == SshdOption(
        "PermitRootLogin", "prohibit-password", ("prohibit-password",), (), True
    )


def test_argv_split() -> None:
    assert argv_split("a \"b c\" 'd e' f\\ g # tail") == ["a", "b c", "d e", "f g"]
    assert argv_split('"open') is None
