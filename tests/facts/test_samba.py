from __future__ import annotations

from pathlib import Path

from imageaudit.facts.base import CollectContext
from imageaudit.facts.samba import SambaFacts, SambaInclude, SambaParam, SambaShare, collect
from imageaudit.facts.textlines import MalformedLine
from imageaudit.model import Source
from imageaudit.openers.directory import DirectoryFS
from tests.scenario import Scenario, write_tree

SMB = "/etc/samba/smb.conf"
INC = "/etc/samba/shares.conf"


def run(tmp_path: Path, scenario: Scenario) -> SambaFacts:
    root = write_tree(scenario, tmp_path / "root")
    with DirectoryFS(root) as fs:
        return collect(CollectContext(fs=fs))


def test_shares_globals_synonyms_and_include(tmp_path: Path) -> None:
    facts = run(
        tmp_path,
        {
            SMB: (
                "# comment\n"
                "[Global]\n"
                "  Map To Guest = Bad User\n"
                "  server role = standalone server\n"
                "  min protocol = NT1\n"
                "  interfaces = lo, eth0 \\\n"
                "     192.168.1.0/24\n"
                "  bindinterfacesonly = yes\n"
                "  guest ok = no\n"
                "include = /etc/samba/shares.conf\n"
                "include = /etc/samba/%m.conf\n"
                "include = /etc/samba/absent.conf\n"
                "[homes]\n"
                "  browsable = no\n"
                "  writeable = yes\n"
                "; a comment\n"
                "not a parameter\n"
            ),
            INC: (
                "[public]\n"
                "  path = /srv/public\n"
                "  public = yes\n"
                "  read only = no\n"
                "  valid users = alice, @staff\n"
                "  guest ok = maybe\n"
                "include = /etc/samba/smb.conf\n"
            ),
        },
    )
    assert facts.present and facts.files == (SMB, INC)
    g = facts.globals
    assert (
        g.map_to_guest,
        g.security,
        g.server_min_protocol,
        g.interfaces,
        g.bind_interfaces_only,
        g.usershare_allow_guests,
    ) == ("Bad User", "user", "NT1", ("lo", "eth0", "192.168.1.0/24"), True, False)
    assert g.params[0] == SambaParam(Source(SMB, 3), "Map To Guest", "map to guest", "Bad User")
    assert g.params[2] == SambaParam(Source(SMB, 5), "min protocol", "server min protocol", "NT1")
    assert facts.includes == (
        SambaInclude(Source(SMB, 10), INC, INC),
        SambaInclude(Source(INC, 7), SMB, None, "include loop"),
        SambaInclude(Source(SMB, 11), "/etc/samba/%m.conf", None, "depends on % substitution"),
        SambaInclude(Source(SMB, 12), "/etc/samba/absent.conf", None, "file absent"),
    )
    assert facts.hidden_shares_possible == (
        f"include with a substitution cannot be resolved: /etc/samba/%m.conf ({SMB} line 11)",
    )
    homes_params = (
        SambaParam(Source(SMB, 14), "browsable", "browseable", "no"),
        SambaParam(Source(SMB, 15), "writeable", "read only", "yes", inverted=True),
    )
    public_params = (
        SambaParam(Source(INC, 2), "path", "path", "/srv/public"),
        SambaParam(Source(INC, 3), "public", "guest ok", "yes"),
        SambaParam(Source(INC, 4), "read only", "read only", "no"),
        SambaParam(Source(INC, 5), "valid users", "valid users", "alice, @staff"),
        SambaParam(Source(INC, 6), "guest ok", "guest ok", "maybe"),
    )
    assert facts.shares == (
        SambaShare(
            "homes", Source(SMB, 13), None, False, False, True, False, True, False,
            (), (), (), (), (), None, homes_params,
        ),
        SambaShare(
            "public", Source(INC, 1), "/srv/public", False, False, True, True, True, False,
            ("alice", "@staff"), (), (), (), (), None, public_params,
        ),
    )  # fmt: skip
    assert facts.malformed == (
        MalformedLine(Source(SMB, 17), "no '=' in parameter line", "not a parameter"),
        MalformedLine(Source(INC, 6), "'guest ok' is not a boolean"),
    )


def test_registry_and_global_share_defaults(tmp_path: Path) -> None:
    facts = run(
        tmp_path,
        {
            SMB: (
                "[global]\nconfig backend = registry\nregistry shares = yes\n"
                "guest ok = yes\nusershare allow guests = yes\ninclude = registry\n"
                "[printers]\npath = /var/spool/samba\n"
            ),
        },
    )
    assert facts.hidden_shares_possible == (
        f"include = registry ({SMB} line 6)",
        "config backend = registry: the configuration lives in the registry",
        "registry shares = yes: shares may be defined in the registry",
    )
    assert facts.globals.usershare_allow_guests is True
    printers = facts.shares[0]
    assert (printers.name, printers.guest_ok, printers.printable, printers.writable) == (
        "printers",
        True,
        True,
        False,
    )


def test_absent_and_garbage(tmp_path: Path) -> None:
    absent = run(tmp_path / "a", {"/etc/hostname": "x\n"})
    assert (absent.present, absent.shares, absent.files, absent.globals.map_to_guest) == (
        False,
        (),
        (),
        "Never",
    )
    garbage = run(tmp_path / "b", {SMB: b"\x00\xff[broken\n[ok]\npath=/x\n"})
    assert garbage.malformed == (
        MalformedLine(Source(SMB, 1), "no '=' in parameter line", "\x00\ufffd[broken"),
    )
    assert [(s.name, s.path) for s in garbage.shares] == [("ok", "/x")]
