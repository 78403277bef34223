"""Services collector: systemd, SysV, OpenRC, inetd and xinetd on tiny trees."""

from __future__ import annotations

from pathlib import Path

from imageaudit.facts.base import CollectContext
from imageaudit.facts.conftext import MalformedLine
from imageaudit.facts.services import EnabledService, ServicesFacts, collect
from imageaudit.facts.services.systemd import SocketListen
from imageaudit.model import CollectorError, Source
from imageaudit.openers.directory import DirectoryFS
from tests.scenario import Scenario, Symlink, write_tree

LIB = "/lib/systemd/system"
ETC = "/etc/systemd/system"


def run(tmp_path: Path, scenario: Scenario) -> tuple[ServicesFacts, CollectContext]:
    ctx = CollectContext(fs=DirectoryFS(write_tree(scenario, tmp_path / "root")))
    return collect(ctx), ctx


SYSTEMD: Scenario = {
    f"{LIB}/ssh.service": (
        "[Unit]\nDescription=OpenSSH\n[Service]\nExecStart=/usr/sbin/sshd -D\n"
        "[Install]\nWantedBy=multi-user.target\nAlias=sshd.service\n"
    ),
    f"{LIB}/multi-user.target": "[Unit]\nRequires=basic.target\nWants=getty.target\n",
    f"{LIB}/basic.target": "[Unit]\n",
    f"{LIB}/getty.target": "[Unit]\n",
    f"{LIB}/telnet.socket": "[Socket]\nListenStream=23\nListenStream=[::]:2323\nAccept=yes\n",
    f"{LIB}/telnet@.service": "[Service]\nExecStart=-/usr/sbin/in.telnetd\n",
    f"{LIB}/getty@.service": "[Service]\nExecStart=-/sbin/agetty %I\n",
    f"{LIB}/nginx.service": (
        "[Service]\nExecStart=/usr/sbin/nginx\n[Install]\nWantedBy=multi-user.target\n"
    ),
    f"{LIB}/rpcbind.service": "[Service]\nExecStart=/sbin/rpcbind -w\n",
    f"{ETC}/multi-user.target.wants/ssh.service": Symlink(f"{LIB}/ssh.service"),
    f"{ETC}/multi-user.target.wants/rpcbind.service": Symlink(f"{LIB}/rpcbind.service"),
    f"{ETC}/sshd.service": Symlink(f"{LIB}/ssh.service"),
    f"{ETC}/sockets.target.wants/telnet.socket": Symlink(f"{LIB}/telnet.socket"),
    f"{LIB}/getty.target.wants/getty@tty1.service": Symlink("../getty@.service"),
    f"{ETC}/rpcbind.service": Symlink("/dev/null"),
    f"{ETC}/default.target": Symlink(f"{LIB}/multi-user.target"),
    f"{ETC}/ssh.service.d/override.conf": (
        "[Service]\nExecStart=\nExecStart=/usr/sbin/sshd -D -p 2222\n"
    ),
}


def test_systemd_enablement_masks_sockets_and_default_target(tmp_path: Path) -> None:
    facts, ctx = run(tmp_path, SYSTEMD)
    assert ctx.errors == []
    assert facts.init_systems == ("systemd",)
    sd = facts.systemd
    assert sd.default_target == "multi-user.target"
    assert sd.default_target_source == Source(f"{ETC}/default.target")
    assert facts.enabled == (
        EnabledService(
            "getty@tty1", "systemd", "getty@tty1.service", True,
            f"linked from {LIB}/getty.target.wants/getty@tty1.service",
            Source(f"{LIB}/getty.target.wants/getty@tty1.service"),
        ),
        EnabledService(
            "ssh", "systemd", "ssh.service", True,
            f"linked from {ETC}/multi-user.target.wants/ssh.service",
            Source(f"{ETC}/multi-user.target.wants/ssh.service"),
        ),
        EnabledService(
            "telnet", "systemd", "telnet.socket", False,
            f"linked from {ETC}/sockets.target.wants/telnet.socket",
            Source(f"{ETC}/sockets.target.wants/telnet.socket"),
        ),
    )
    units = {u.name: u for u in sd.units}
    ssh = units["ssh.service"]
    assert (ssh.path, ssh.enabled, ssh.in_default_target, ssh.masked) == (
        f"{LIB}/ssh.service", True, True, False,
    )
    assert ssh.exec_start == ("/usr/sbin/sshd -D -p 2222",)  # the drop-in reset ExecStart
    assert ssh.drop_ins == (f"{ETC}/ssh.service.d/override.conf",)
    assert ssh.wanted_by == ("multi-user.target",)
    assert units["sshd.service"].alias_of == "ssh.service"
    # WantedBy= alone is not enablement
    nginx = units["nginx.service"]
    assert (nginx.enabled, nginx.in_default_target, nginx.wanted_by) == (
        False, False, ("multi-user.target",),
    )
    rpcbind = units["rpcbind.service"]
    assert (rpcbind.masked, rpcbind.masked_by, rpcbind.path, rpcbind.enabled) == (
        True, f"{ETC}/rpcbind.service", None, True,
    )
    telnet = units["telnet.socket"]
    assert telnet.listen == (
        SocketListen("ListenStream", "23", Source(f"{LIB}/telnet.socket", 2)),
        SocketListen("ListenStream", "[::]:2323", Source(f"{LIB}/telnet.socket", 3)),
    )
    assert (telnet.accept, telnet.activates) == ("yes", "telnet@.service")
    getty = units["getty@tty1.service"]
    assert (getty.template, getty.instance, getty.path, getty.exec_start) == (
        "getty@.service", "tty1", f"{LIB}/getty@.service", ("-/sbin/agetty %I",),
    )
    # pulled in by Requires=/Wants= lines, not by links
    assert units["basic.target"].in_default_target is True
    assert units["getty.target"].in_default_target is True
    assert facts.is_enabled("ssh") and not facts.is_enabled("nginx")


def test_merged_usr_lists_each_unit_once(tmp_path: Path) -> None:
    facts, _ctx = run(tmp_path, {
        "/lib": Symlink("usr/lib"),
        "/usr/lib/systemd/system/cron.service": "[Service]\nExecStart=/usr/sbin/cron -f\n",
        f"{ETC}/multi-user.target.wants/cron.service": Symlink("/lib/systemd/system/cron.service"),
    })
    assert [(u.name, u.path) for u in facts.systemd.units] == [
        ("cron.service", "/lib/systemd/system/cron.service"),
    ]
    assert [(s.name, s.at_default_target) for s in facts.enabled] == [("cron", False)]
    assert facts.systemd.default_target is None


def test_etc_unit_file_overrides_vendor_file(tmp_path: Path) -> None:
    facts, _ctx = run(tmp_path, {
        "/usr/lib/systemd/system/a.service": "[Service]\nExecStart=/vendor\n",
        f"{ETC}/a.service": "[Service]\nExecStart=/local\n",
    })
    (unit,) = facts.systemd.units
    assert (unit.path, unit.exec_start) == (f"{ETC}/a.service", ("/local",))


def test_sysv_runlevels_and_inittab(tmp_path: Path) -> None:
    facts, _ctx = run(tmp_path, {
        "/etc/inittab": "# comment\nid:3:initdefault:\nbroken line\n",
        "/etc/rc.d/init.d/telnet": "#!/bin/sh\n",
        "/etc/rc.d/init.d/nfs": "#!/bin/sh\n",
        "/etc/rc.d/init.d/halt": "#!/bin/sh\n",
        "/etc/init.d": Symlink("rc.d/init.d"),
        "/etc/rc.d/rc3.d/S50telnet": Symlink("../init.d/telnet"),
        "/etc/rc.d/rc5.d/S50telnet": Symlink("../init.d/telnet"),
        "/etc/rc.d/rc3.d/K20nfs": Symlink("../init.d/nfs"),
        "/etc/rc.d/rc0.d/S01halt": Symlink("../init.d/halt"),
        "/etc/rc3.d": Symlink("rc.d/rc3.d"),
    })
    sysv = facts.sysv
    assert (sysv.default_runlevel, sysv.default_runlevel_source) == (
        "3", Source("/etc/inittab", 2),
    )
    assert sysv.malformed == (
        MalformedLine("not id:runlevels:action:process", "broken line", Source("/etc/inittab", 3)),
    )
    assert [(s.name, s.path, s.start_runlevels, s.stop_runlevels) for s in sysv.scripts] == [
        ("halt", "/etc/init.d/halt", ("0",), ()),
        ("nfs", "/etc/init.d/nfs", (), ("3",)),
        ("telnet", "/etc/init.d/telnet", ("3", "5"), ()),
    ]
    assert facts.enabled == (
        EnabledService("telnet", "sysv", "telnet", True, "runlevels 3,5",
                       Source("/etc/rc.d/rc3.d/S50telnet")),
    )
    assert facts.init_systems == ("sysv",)


def test_openrc_runlevels(tmp_path: Path) -> None:
    facts, _ctx = run(tmp_path, {
        "/etc/init.d/sshd": "#!/sbin/openrc-run\n",
        "/etc/init.d/killprocs": "#!/sbin/openrc-run\n",
        "/etc/runlevels/default/sshd": Symlink("/etc/init.d/sshd"),
        "/etc/runlevels/shutdown/killprocs": Symlink("/etc/init.d/killprocs"),
    })
    assert facts.openrc.runlevels == ("default", "shutdown")
    assert facts.enabled == (
        EnabledService("sshd", "openrc", "sshd", True, "runlevel default",
                       Source("/etc/runlevels/default/sshd")),
    )
    assert "openrc" in facts.init_systems


def test_inetd_entries_disabled_and_malformed(tmp_path: Path) -> None:
    facts, _ctx = run(tmp_path, {
        "/etc/inetd.conf": (
            "# /etc/inetd.conf: see inetd(8)\n"
            "telnet stream tcp nowait root /usr/sbin/tcpd /usr/sbin/in.telnetd\n"
            "#<off># shell stream tcp nowait root /usr/sbin/tcpd /usr/sbin/in.rshd\n"
            "#tftp dgram udp wait nobody /usr/sbin/tcpd /usr/sbin/in.tftpd /srv/tftp\n"
            "garbage here\n"
        ),
    })
    inetd = facts.inetd
    assert [(e.service, e.server, e.args, e.enabled, e.source.line) for e in inetd.entries] == [
        ("telnet", "/usr/sbin/tcpd", ("/usr/sbin/in.telnetd",), True, 2),
        ("shell", "/usr/sbin/tcpd", ("/usr/sbin/in.rshd",), False, 3),
        ("tftp", "/usr/sbin/tcpd", ("/usr/sbin/in.tftpd", "/srv/tftp"), False, 4),
    ]
    assert inetd.malformed == (
        MalformedLine("not an inetd.conf entry", "garbage here", Source("/etc/inetd.conf", 5)),
    )
    assert facts.enabled == (
        EnabledService("telnet", "inetd", "/usr/sbin/in.telnetd", None, "stream/tcp",
                       Source("/etc/inetd.conf", 2)),
    )


def test_xinetd_disable_defaults_and_unclosed_block(tmp_path: Path) -> None:
    facts, _ctx = run(tmp_path, {
        "/etc/xinetd.conf": "defaults\n{\n  disabled = rlogin\n}\nincludedir /etc/xinetd.d\n",
        "/etc/xinetd.d/telnet": (
            "service telnet\n{\n  disable = no\n  socket_type = stream\n  protocol = tcp\n"
            "  server = /usr/sbin/in.telnetd\n  only_from = 10.0.0.0/8\n"
            "  only_from += 192.168.0.0/16\n  bind = 0.0.0.0\n}\n"
        ),
        "/etc/xinetd.d/rsh": "service rsh\n{\n  disable = yes\n  server = /usr/sbin/in.rshd\n}\n",
        "/etc/xinetd.d/rlogin": "service rlogin\n{\n  server = /usr/sbin/in.rlogind\n}\n",
        "/etc/xinetd.d/tftp": "service tftp\n{\n  server = /usr/sbin/in.tftpd\n  oops\n",
        "/etc/xinetd.d/rsh.rpmsave": "service old\n{\n}\n",
    })
    xi = facts.xinetd
    assert xi.files == ("/etc/xinetd.conf", "/etc/xinetd.d/rlogin", "/etc/xinetd.d/rsh",
                        "/etc/xinetd.d/telnet", "/etc/xinetd.d/tftp")
    by_name = {s.name: s for s in xi.services}
    assert (by_name["telnet"].only_from, by_name["telnet"].bind) == (
        ("10.0.0.0/8", "192.168.0.0/16"), "0.0.0.0",
    )
    assert (by_name["tftp"].complete, by_name["tftp"].server) == (False, "/usr/sbin/in.tftpd")
    assert xi.malformed == (
        MalformedLine("not 'attribute = value'", "  oops", Source("/etc/xinetd.d/tftp", 4)),
        MalformedLine("block not closed at end of file", "service tftp",
                      Source("/etc/xinetd.d/tftp", 1)),
    )
    assert [(s.name, s.mechanism, s.unit) for s in facts.enabled] == [
        ("telnet", "xinetd", "/usr/sbin/in.telnetd"),
        ("tftp", "xinetd", "/usr/sbin/in.tftpd"),
    ]


def test_xinetd_include_loop(tmp_path: Path) -> None:
    facts, _ctx = run(tmp_path, {"/etc/xinetd.conf": "includefile /etc/xinetd.conf\n"})
    assert facts.xinetd.malformed == (
        MalformedLine("include loop", "/etc/xinetd.conf", Source("/etc/xinetd.conf", 1)),
    )


def test_hostile_inputs(tmp_path: Path) -> None:
    facts, ctx = run(tmp_path, {
        f"{LIB}/bin.service": b"\x00\xff\xfe[Service\nExecStart\n\x89PNG\n",
        f"{ETC}/loop.service": Symlink(f"{ETC}/loop2.service"),
        f"{ETC}/loop2.service": Symlink(f"{ETC}/loop.service"),
        f"{ETC}/multi-user.target.wants/loop.service": Symlink(f"{ETC}/loop.service"),
        "/etc/inetd.conf": "x" * (1024 * 1024 + 10),
    })
    units = {u.name: u for u in facts.systemd.units}
    assert units["bin.service"].exec_start == ()
    assert facts.systemd.malformed == (
        # systemd's read_line() ends a line at NUL too: line 1 is empty.
        MalformedLine("not a key=value line", "\ufffd\ufffd[Service",
                      Source(f"{LIB}/bin.service", 2)),
        MalformedLine("not a key=value line", "ExecStart", Source(f"{LIB}/bin.service", 3)),
        MalformedLine("not a key=value line", "\ufffdPNG", Source(f"{LIB}/bin.service", 4)),
    )
    assert (units["loop.service"].enabled, units["loop.service"].path) == (True, None)
    assert CollectorError(
        "read", f"read only the first {1024 * 1024} of {1024 * 1024 + 10} bytes",
        "/etc/inetd.conf", incomplete=True,
    ) in ctx.errors
    assert [m.reason for m in facts.inetd.malformed] == ["not an inetd.conf entry"]


def test_no_init_system(tmp_path: Path) -> None:
    facts, ctx = run(tmp_path, {"/etc/hostname": "x\n"})
    assert (facts.init_systems, facts.enabled, facts.malformed, ctx.errors) == ((), (), (), [])
    assert (facts.systemd.present, facts.inetd.present, facts.xinetd.present) == (
        False, False, False,
    )
