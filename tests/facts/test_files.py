# Expected rows are built as `(...) + (...)` to stay within the line length.
# ruff: noqa: RUF005
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from imageaudit.facts import executables, files
from imageaudit.facts.base import CollectContext
from imageaudit.facts.executables import ExecRef, MalformedLine
from imageaudit.facts.files import (
    DeviceNode,
    FilesFacts,
    SpecialFile,
    Truncation,
    UnownedEntry,
    WritableDir,
    WritableFile,
    collect,
)
from imageaudit.imagefs import FileStat, FileType
from imageaudit.model import CollectorError, Source
from imageaudit.openers.directory import DirectoryFS
from tests.scenario import Dir, File, Scenario, Symlink, write_tree

PASSWD = "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n"
GROUP = "root:x:0:\nalice:x:1000:\n"
BASE: Scenario = {"/etc/passwd": PASSWD, "/etc/group": GROUP}


def run(tree: Scenario, tmp_path: Path, setid: dict[str, int] | None = None) -> FilesFacts:
    facts, _errors = run_ctx(tree, tmp_path, setid)
    return facts


def run_ctx(
    tree: Scenario, tmp_path: Path, setid: dict[str, int] | None = None
) -> tuple[FilesFacts, list[CollectorError]]:
    root = write_tree(tree, tmp_path / "root")
    # chown(2) clears setuid/setgid, so the bits are set again after write_tree.
    for path, mode in (setid or {}).items():
        (root / path.lstrip("/")).chmod(mode)
    with DirectoryFS(root) as fs:
        ctx = CollectContext(fs=fs)
        return collect(ctx), ctx.errors


def meta(st: FileStat | None) -> tuple[str, FileType, int, int, int] | None:
    return None if st is None else (st.path, st.type, st.mode, st.uid, st.gid)


def test_writable_setid_unowned_and_devices(tmp_path: Path) -> None:
    tree: Scenario = {
        **BASE,
        "/opt/x.sh": File("#!/bin/sh\n", mode=0o777),
        "/opt/link": Symlink("/opt/x.sh"),  # symlinks show 0777 and are no permission fact
        "/usr/local/bin/ww": File("", mode=0o666),
        "/srv/share": Dir(mode=0o777),
        "/srv/drop": Dir(mode=0o1733, uid=1000, gid=1000),
        "/tmp": Dir(mode=0o1777),
        "/usr/bin/sudo": File("x", mode=0o755),
        "/usr/bin/wall": File("xy", mode=0o755, gid=5),
        "/data/orphan": File("o", uid=4242, gid=1000),
        "/data/odir": Dir(uid=1000, gid=777),
    }
    root = tmp_path / "root"
    write_tree({}, root)
    dev = root / "srv" / "null"
    dev.parent.mkdir(parents=True)
    try:
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("cannot create device nodes here")
    dev.chmod(0o666)
    facts = run(tree, tmp_path, {"/usr/bin/sudo": 0o4755, "/usr/bin/wall": 0o2755})
    assert facts.world_writable_files == (
        WritableFile("/opt/x.sh", 0o777, 0, 0, 10, False, Source("/opt/x.sh")),
        WritableFile("/usr/local/bin/ww", 0o666, 0, 0, 0, True, Source("/usr/local/bin/ww")),
    )
    assert facts.world_writable_dirs == (
        WritableDir("/srv/drop", 0o1733, 1000, 1000, True, False, False, Source("/srv/drop")),
        WritableDir("/srv/share", 0o777, 0, 0, False, False, False, Source("/srv/share")),
        WritableDir("/tmp", 0o1777, 0, 0, True, True, False, Source("/tmp")),
    )
    assert facts.special_files == (
        SpecialFile(
            "/usr/bin/sudo", 0o4755, 0, 0, "root", "root", True, False, 1, Source("/usr/bin/sudo")
        ),
        SpecialFile(
            "/usr/bin/wall", 0o2755, 0, 5, "root", None, False, True, 2, Source("/usr/bin/wall")
        ),
    )
    assert facts.unowned == (
        UnownedEntry(
            "/data/odir", FileType.DIRECTORY, 0o755, 1000, 777, False, True, Source("/data/odir")
        ),
        UnownedEntry(
            "/data/orphan", FileType.REGULAR, 0o644, 4242, 1000, True, False, Source("/data/orphan")
        ),
        UnownedEntry(
            "/usr/bin/wall", FileType.REGULAR, 0o2755, 0, 5, False, True, Source("/usr/bin/wall")
        ),
    )
    assert facts.devices == (
        DeviceNode("/srv/null", FileType.CHAR_DEVICE, 0o666, 0, 0, Source("/srv/null")),
    )
    assert (facts.passwd_present, facts.group_present, facts.truncated) == (True, True, ())


def test_without_passwd_every_id_is_unknown(tmp_path: Path) -> None:
    facts = run({"/bin/sh": File("x", mode=0o755)}, tmp_path)
    assert (facts.passwd_present, facts.group_present) == (False, False)
    assert [(u.path, u.unknown_uid, u.unknown_gid) for u in facts.unowned] == [
        ("/bin", True, True),
        ("/bin/sh", True, True),
    ]


def test_sensitive_paths_present_absent_and_linked(tmp_path: Path) -> None:
    tree: Scenario = {
        **BASE,
        "/etc/shadow": File("root:*:1::::::\n", mode=0o640, gid=42),
        "/etc/gshadow": Symlink("../etc/shadow"),
        "/etc/ssh/ssh_host_ed25519_key": File("k", mode=0o600),
        "/etc/ssh/ssh_host_extra_key": File("k", mode=0o644),
        "/etc/sudoers": Symlink("/missing"),
        "/root": Dir(mode=0o700),
    }
    facts = run(tree, tmp_path)
    by_path = {s.path: s for s in facts.sensitive}
    shadow = by_path["/etc/shadow"]
    assert (shadow.present, meta(shadow.stat), meta(shadow.target), shadow.error) == (
        True,
        ("/etc/shadow", FileType.REGULAR, 0o640, 0, 42),
        ("/etc/shadow", FileType.REGULAR, 0o640, 0, 42),
        None,
    )
    gshadow = by_path["/etc/gshadow"]
    assert (gshadow.present, gshadow.stat.type if gshadow.stat else None) == (
        True,
        FileType.SYMLINK,
    )
    assert meta(gshadow.target) == ("/etc/shadow", FileType.REGULAR, 0o640, 0, 42)
    sudoers = by_path["/etc/sudoers"]
    assert (sudoers.present, sudoers.target, sudoers.error) == (
        True,
        None,
        "/etc/sudoers: does not exist in the image",
    )
    assert meta(by_path["/root"].stat) == ("/root", FileType.DIRECTORY, 0o700, 0, 0)
    absent = by_path["/etc/ssh/sshd_config"]
    assert (absent.present, absent.stat, absent.target, absent.source) == (
        False,
        None,
        None,
        Source("/etc/ssh/sshd_config"),
    )
    assert by_path["/etc/ssh/ssh_host_rsa_key"].present is False
    assert by_path["/etc/ssh/ssh_host_extra_key"].present is True  # found by the glob
    assert [s.path for s in facts.sensitive] == sorted(by_path)


def test_temp_dirs_are_flagged_and_linked_temp_resolved(tmp_path: Path) -> None:
    tree: Scenario = {
        **BASE,
        "/tmp": Dir(mode=0o1777),
        "/var/tmp": Symlink("/tmp"),
        "/run/lock": Dir(0o777),
    }
    facts = run(tree, tmp_path)
    states = [(t.path, t.present, meta(t.target)) for t in facts.temp_dirs]
    assert states == [
        ("/tmp", True, ("/tmp", FileType.DIRECTORY, 0o1777, 0, 0)),
        ("/var/tmp", True, ("/tmp", FileType.DIRECTORY, 0o1777, 0, 0)),
        ("/dev/shm", False, None),
        ("/run/lock", True, ("/run/lock", FileType.DIRECTORY, 0o777, 0, 0)),
    ]
    # /run is not walked; its lock dir is still a world-writable directory fact.
    assert [(d.path, d.sticky, d.temp) for d in facts.world_writable_dirs] == [
        ("/run/lock", False, True),
        ("/tmp", True, True),
    ]


def test_path_dirs_from_defaults_environment_and_login_defs(tmp_path: Path) -> None:
    tree: Scenario = {
        **BASE,
        "/etc/environment": 'PATH="/usr/local/bin:/opt/bin:relative:"\n',
        "/etc/login.defs": "# c\nENV_SUPATH PATH=/usr/sbin\nENV_PATH /usr/bin:/srv/share\n",
        "/usr/bin": Dir(),
        "/bin": Symlink("usr/bin"),
        "/usr/sbin": Dir(),
        "/srv/share": Dir(mode=0o1777),
        "/opt/x.sh": File("", mode=0o777),
        "/usr/local/bin/ww": File("", mode=0o666),
        "/usr/local/bin/lnk": Symlink("/opt/x.sh"),
        "/usr/local/bin/ok": File("", mode=0o755),
    }
    facts = run(tree, tmp_path)
    got = [
        (d.path, d.origin, d.relative, d.present, d.resolved, d.world_writable, d.sticky)
        + (d.writable_entries, d.source)
        for d in facts.path_dirs
    ]
    env, defs = Source("/etc/environment", 1), Source("/etc/login.defs", 2)
    default = Source("(default PATH)")
    lbin = ("lnk", "ww")
    assert got == [
        ("/usr/local/sbin", "default", False, False, None, False, False, (), default),
        ("/usr/local/bin", "default", False, True, "/usr/local/bin", False, False, lbin, default),
        ("/usr/sbin", "default", False, True, "/usr/sbin", False, False, (), default),
        ("/usr/bin", "default", False, True, "/usr/bin", False, False, (), default),
        ("/sbin", "default", False, False, None, False, False, (), default),
        ("/bin", "default", False, True, "/usr/bin", False, False, (), default),
        ("/usr/local/bin", "/etc/environment PATH", False, True, "/usr/local/bin")
        + (False, False, lbin, env),
        ("/opt/bin", "/etc/environment PATH", False, False, None, False, False, (), env),
        ("relative", "/etc/environment PATH", True, False, None, False, False, (), env),
        ("", "/etc/environment PATH", True, False, None, False, False, (), env),
        ("/usr/sbin", "login.defs ENV_SUPATH", False, True, "/usr/sbin", False, False, (), defs),
        ("/usr/bin", "login.defs ENV_PATH", False, True, "/usr/bin")
        + (False, False, (), Source("/etc/login.defs", 3)),
        ("/srv/share", "login.defs ENV_PATH", False, True, "/srv/share")
        + (True, True, (), Source("/etc/login.defs", 3)),
    ]
    assert [(d.path, d.on_path) for d in facts.world_writable_dirs] == [("/srv/share", True)]


def refs(facts: FilesFacts) -> list[tuple[object, ...]]:
    return [
        (r.directive, r.position, r.command, r.user, r.resolved, r.world_writable)
        + (r.writable_dirs, r.error, r.source)
        for r in facts.exec_refs
    ]


def test_cron_commands_resolved_inside_the_image(tmp_path: Path) -> None:
    tree: Scenario = {
        **BASE,
        "/etc/crontab": (
            "SHELL=/bin/sh\n"
            "# m h dom mon dow user command\n"
            "*/5 * * * * root /opt/x.sh --flag\n"
            "@reboot root run-parts /etc/cron.daily\n"
            "broken line\n"
        ),
        "/etc/cron.d/job": (
            "PATH=/usr/sbin\n"
            "0 1 * * * nobody [ -x /usr/lib/tool ] && LANG=C tool -q % /not/a/command\n"
        ),
        "/etc/cron.daily/rotate": File("#!/bin/sh\n", mode=0o755),
        "/var/spool/cron/crontabs/alice": "@hourly if true; then /srv/drop/job.sh; fi\n",
        "/srv/drop": Dir(mode=0o1777),
        "/tmp": Dir(mode=0o1777),
        "/etc/cron.d/tmp": "* * * * * root /tmp/gone/run.sh\n",
        "/usr/bin/run-parts": File("x", mode=0o755),
        "/usr/sbin/tool": File("x", mode=0o755),
        "/opt/x.sh": File("#!/bin/sh\n", mode=0o777),
    }
    facts = run(tree, tmp_path)
    crontab, job = Source("/etc/crontab", 3), Source("/etc/cron.d/job", 2)
    alice = Source("/var/spool/cron/crontabs/alice", 1)
    assert refs(facts) == [
        ("crontab", "command", "/opt/x.sh", "root", "/opt/x.sh", True, (), None, crontab),
        ("crontab", "command", "run-parts", "root", "/usr/bin/run-parts", False, (), None)
        + (Source("/etc/crontab", 4),),
        ("crontab", "argument", "/etc/cron.daily", "root", "/etc/cron.daily", False, (), None)
        + (Source("/etc/crontab", 4),),
        # /usr/lib is missing: no canonical path to give.
        ("cron.d", "argument", "/usr/lib/tool", "nobody", None, False, (), "does not exist", job),
        ("cron.d", "command", "tool", "nobody", "/usr/sbin/tool", False, (), None, job),
        ("cron.d", "command", "/tmp/gone/run.sh", "root", None, False, ("/tmp",))
        + ("does not exist", Source("/etc/cron.d/tmp", 1)),
        ("user crontab", "command", "/srv/drop/job.sh", "alice", "/srv/drop/job.sh", False)
        + (("/srv/drop",), "does not exist", alice),
        ("cron.daily", "command", "/etc/cron.daily/rotate", "root", "/etc/cron.daily/rotate")
        + (False, (), None, Source("/etc/cron.daily/rotate")),
    ]
    assert facts.malformed == (MalformedLine(Source("/etc/crontab", 5), "expected 7 fields"),)
    cron_x = facts.exec_refs[0]
    assert cron_x.stat is not None and (cron_x.stat.mode, cron_x.stat.size) == (0o777, 10)


def test_systemd_exec_lines(tmp_path: Path) -> None:
    tree: Scenario = {
        **BASE,
        "/etc/systemd/system/app.service": (
            "[Service]\nExecStartPre=-/opt/pre.sh\nExecStart=@/usr/bin/app app --x\n"
            "ExecStart=\nExecReload=/bin/kill \\\n  -HUP $MAINPID\nExecStop=true\n"
        ),
        "/etc/systemd/system/app.service.d/override.conf": 'ExecStart=!!"/srv/q app" arg\n',
        "/etc/systemd/system/masked.service": Symlink("/dev/null"),
        "/etc/systemd/system/multi-user.target.wants/app.service": Symlink(
            "/etc/systemd/system/app.service"
        ),
        "/usr/lib/systemd/system/app.service": Symlink("/etc/systemd/system/app.service"),
        "/usr/lib/systemd/system/other.service": "[Service]\nExecStart=/opt/ww\n",
        "/opt/ww": File("", mode=0o757),
        "/usr/bin/app": File("x", mode=0o755),
        "/usr/bin/kill": File("x", mode=0o755),
        "/bin": Symlink("usr/bin"),
    }
    facts = run(tree, tmp_path)
    app = "/etc/systemd/system/app.service"
    assert refs(facts) == [
        ("ExecStartPre", "command", "/opt/pre.sh", None, "/opt/pre.sh", False, ())
        + ("does not exist", Source(app, 2)),
        ("ExecStart", "command", "/usr/bin/app", None, "/usr/bin/app", False, (), None)
        + (Source(app, 3),),
        ("ExecReload", "command", "/bin/kill", None, "/usr/bin/kill", False, (), None)
        + (Source(app, 5),),
        ("ExecStop", "command", "true", None, None, False, ())
        + ("not found on PATH " + ":".join(executables.DEFAULT_PATH), Source(app, 7)),
        ("ExecStart", "command", "/srv/q app", None, None, False, ())
        + ("does not exist", Source(app + ".d/override.conf", 1)),
        ("ExecStart", "command", "/opt/ww", None, "/opt/ww", True, (), None)
        + (Source("/usr/lib/systemd/system/other.service", 2),),
    ]
    assert all(isinstance(r, ExecRef) and r.kind == "systemd" for r in facts.exec_refs)


def test_hostile_crontab_is_capped_and_binary_is_harmless(tmp_path: Path) -> None:
    big = "* * * * * root /opt/a\n" + "#" * (executables.MAX_FILE + 10) + "\n"
    tree: Scenario = {
        **BASE,
        "/etc/crontab": big,
        "/etc/cron.d/garbage": b"\x00\xff\xfe* * *\x00\n\x89PNG\r\n",
        "/etc/systemd/system/bin.service": b"ExecStart=\xff\xfe\x00\n",
    }
    facts, errors = run_ctx(tree, tmp_path)
    assert [(r.command, r.source) for r in facts.exec_refs] == [
        ("/opt/a", Source("/etc/crontab", 1)),
        # systemd's read_line() ends a line at NUL.
        ("\ufffd\ufffd", Source("/etc/systemd/system/bin.service", 1)),
    ]
    assert facts.malformed == (
        MalformedLine(Source("/etc/cron.d/garbage", 1), "expected 7 fields"),
        MalformedLine(Source("/etc/cron.d/garbage", 2), "expected 7 fields"),
    )
    limit = executables.MAX_FILE
    assert errors == [
        CollectorError("read", f"read only the first {limit} of {len(big)} bytes", "/etc/crontab",
                       incomplete=True)
    ]


def test_lists_are_capped_and_the_cut_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "LIST_CAP", 2)
    tree: Scenario = {**BASE, **{f"/w/{n}": File("", mode=0o666) for n in "abc"}}
    facts = run(tree, tmp_path)
    assert [w.path for w in facts.world_writable_files] == ["/w/a", "/w/b"]
    assert facts.truncated == (
        Truncation("world_writable_files", 3, 2),
        Truncation("path_dirs", 6, 2),
    )
