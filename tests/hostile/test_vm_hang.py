"""The VM path never hangs: stuck qemu, reads that cannot finish, and signals end cleanly.

qemu that accepts KVM but never runs the guest is simulated by a wrapper set as
``LIBGUESTFS_HV`` that adds ``-S`` (CPUs stopped at start: qemu runs, the guest never does)
when asked for KVM, or for every appliance. Each test checks that nothing is left behind:
no qemu process, no libguestfs socket or temporary directory.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imageaudit.facts import collect_facts
from imageaudit.facts.base import CollectContext
from imageaudit.imagefs import ImageFSError
from imageaudit.model import CollectorError
from imageaudit.openers import kvm, open_image
from imageaudit.openers.guestfs import GuestfsFS
from imageaudit.openers.kvm import kvm_note
from tests.builders.vm import STANDARD, build_disk
from tests.scenario import Symlink

pytestmark = [pytest.mark.guestfs, pytest.mark.slow]

KVM_BOUND = 5
HANG_BOUND = 5
# Links that resolve to what a read would block on: refused from the metadata, no call made.
LINKS = {"/etc/fifo-link": Symlink("/var/spool/fifo"), "/etc/loop-to-fifo": Symlink("fifo-link")}


def _real_qemu() -> str:
    guestfs = pytest.importorskip("guestfs")
    return str(guestfs.GuestFS().get_hv())


def _wrapper(tmp: Path, stuck_on: str) -> Path:
    """A qemu that stops the guest's CPUs when its arguments match the shell ``stuck_on``.

    The stopped qemu is given ``-cpu qemu64``: on some hosts KVM refuses the ``host`` and
    ``max`` models outright ("failed to set MSR"), and qemu would then fail instead of
    accepting /dev/kvm and never running the guest, the case these tests make."""
    path = tmp / "qemu-stuck"
    path.write_text(
        "#!/bin/sh\n"
        f'case " $* " in {stuck_on}) ;; *) exec {_real_qemu()} "$@" ;; esac\n'
        'prev=\n'
        'for a do\n'
        '    shift\n'
        '    [ "$prev" = -cpu ] && a=qemu64\n'
        '    set -- "$@" "$a"\n'
        '    prev=$a\n'
        'done\n'
        f'exec {_real_qemu()} "$@" -S\n'
    )
    path.chmod(0o755)
    return path


@pytest.fixture
def vm_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A private cache and libguestfs tmpdir; asserts nothing is left behind after."""
    monkeypatch.delenv(kvm.TCG_ENV, raising=False)
    for name in (kvm.KVM_TIMEOUT_ENV, kvm.LAUNCH_TIMEOUT_ENV, kvm.CALL_TIMEOUT_ENV):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "lgtmp").mkdir()
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "LIBGUESTFS_TMPDIR": str(tmp_path / "lgtmp")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    sockdirs = set(Path("/tmp").glob("libguestfs*"))
    yield env
    assert _processes_under(tmp_path) == []
    assert list((tmp_path / "lgtmp").iterdir()) == []
    # Other runs on this machine may come and go; only a new directory holding our socket
    # would be ours, and every socket directory a qemu of ours named is checked by name.
    new = {d for d in set(Path("/tmp").glob("libguestfs*")) - sockdirs if d.exists()}
    assert not [d for d in new if not _others(d)], new


def _others(sockdir: Path) -> bool:
    """True for a socket directory in use by some running qemu (another test run's)."""
    return any(str(sockdir) in a for argv in _all_argv() for a in argv)


def _all_argv() -> list[list[str]]:
    out = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                raw = Path(f"/proc/{entry.name}/cmdline").read_bytes()
            except OSError:
                continue
            out.append([a.decode(errors="replace") for a in raw.split(b"\0") if a])
    return out


def _processes_under(tmp: Path) -> list[list[str]]:
    """Processes whose arguments name a file under ``tmp`` (qemu, the wrapper)."""
    return [argv for argv in _all_argv() if any(str(tmp) in a for a in argv)]


def _disk() -> Path:
    return build_disk({**STANDARD, **LINKS}, "simple", "qcow2")


def test_stuck_kvm_falls_back_to_tcg_and_a_stuck_read_ends(
        vm_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIBGUESTFS_HV", str(_wrapper(tmp_path, "*accel=kvm*")))
    monkeypatch.setenv(kvm.KVM_TIMEOUT_ENV, str(KVM_BOUND))
    disk = _disk()
    start = time.monotonic()
    fs = open_image(str(disk), opener="guestfs")
    opened = time.monotonic() - start
    try:
        assert isinstance(fs, GuestfsFS)
        reason = (f"the appliance did not start under KVM within {KVM_BOUND} s (qemu accepted "
                  "/dev/kvm but the guest did not run)")
        assert fs.info.details["tcg"] is True
        assert [n for n in fs.info.notes if n.startswith("libguestfs:")] == [
            kvm_note(reason=reason)]
        cache = Path(vm_env["XDG_CACHE_HOME"]) / "imageaudit" / "guestfs-force-tcg"
        assert cache.read_text() == f"{reason}; launch with force_tcg\n"
        assert kvm.remembered_reason() == reason
        assert opened < KVM_BOUND + kvm.DEFAULT_LAUNCH_TIMEOUT
        # The facts come out.
        assert fs.read("/etc/hostname").data == b"audit\n"
        # A FIFO, directly or through links, is refused from the metadata: no read is made.
        ctx = CollectContext(fs, current="accounts")
        for path in ("/var/spool/fifo", "/etc/fifo-link", "/etc/loop-to-fifo"):
            assert ctx.read_text(path) is None
        assert ctx.errors == [
            CollectorError("accounts", f"cannot be read: {p}: not a regular file (fifo)", p,
                           incomplete=True)
            for p in ("/var/spool/fifo", "/etc/fifo-link", "/etc/loop-to-fifo")
        ]
        # A read the appliance cannot finish (a FIFO opened behind the type check) ends at
        # its bound: qemu is stopped and every later read fails with a clear error.
        fs.app.g.seconds = HANG_BOUND
        start = time.monotonic()
        with pytest.raises(kvm.ApplianceTimeout) as info:
            fs._pread("/var/spool/fifo", 10, 0)
        assert time.monotonic() - start < HANG_BOUND + 10
        assert str(info.value) == (
            f"/var/spool/fifo: cannot read: the appliance was stopped: "
            f"pread did not finish in {HANG_BOUND} s")
        # Every collector still runs; what it could not read marks its facts incomplete.
        facts = collect_facts(fs)
        assert CollectorError(
            "accounts",
            "cannot be read: /etc/passwd: cannot read: the appliance was stopped earlier "
            f"(pread did not finish in {HANG_BOUND} s)",
            "/etc/passwd", incomplete=True) in facts.errors
    finally:
        fs.close()


def _scan(tmp: Path, env: dict[str, str], disk: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "imageaudit", "scan", str(disk), "-q", "--opener", "guestfs"],
        cwd=tmp, env={**os.environ, **env}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def test_stuck_kvm_and_tcg_end_in_a_clear_error(vm_env: dict[str, str], tmp_path: Path) -> None:
    env = {**vm_env, "LIBGUESTFS_HV": str(_wrapper(tmp_path, "*-kernel*")),
           kvm.KVM_TIMEOUT_ENV: "3", kvm.LAUNCH_TIMEOUT_ENV: "6"}
    disk = _disk()
    start = time.monotonic()
    proc = _scan(tmp_path, env, disk)
    out, err = proc.communicate(timeout=180)
    assert time.monotonic() - start < 3 + 6 + 60
    assert (proc.returncode, out) == (2, "")
    assert err.splitlines() == [
        "imageaudit: error: the appliance did not start under KVM within 3 s (qemu accepted "
        "/dev/kvm but the guest did not run); under TCG, the libguestfs appliance did not "
        "start within 6 s ($IMAGEAUDIT_GUESTFS_LAUNCH_TIMEOUT sets the bound)"
    ]
    assert not (Path(vm_env["XDG_CACHE_HOME"]) / "imageaudit" / "guestfs-force-tcg").exists()


@pytest.mark.parametrize(("signum", "code", "message"), [
    (signal.SIGTERM, 128 + signal.SIGTERM, []),
    (signal.SIGINT, 1, ["imageaudit: interrupted"]),
])
def test_signal_during_a_stuck_launch_leaves_nothing(
        vm_env: dict[str, str], tmp_path: Path, signum: int, code: int, message: list[str]
) -> None:
    env = {**vm_env, "LIBGUESTFS_HV": str(_wrapper(tmp_path, "*-kernel*"))}
    proc = _scan(tmp_path, env, _disk())
    deadline = time.monotonic() + 120
    sockdir: Path | None = None
    while sockdir is None and time.monotonic() < deadline and proc.poll() is None:
        for argv in _processes_under(tmp_path):
            found = re.search(r"path=(/tmp/libguestfs[^/,]+)/", " ".join(argv))
            if "-kernel" in argv and found:
                sockdir = Path(found.group(1))
        time.sleep(0.2)
    assert sockdir is not None and sockdir.is_dir()
    proc.send_signal(signum)
    start = time.monotonic()
    _out, err = proc.communicate(timeout=60)
    assert time.monotonic() - start < 10
    assert proc.returncode == code
    assert err.splitlines() == message
    assert not sockdir.exists()


def test_bounds_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (kvm.KVM_TIMEOUT_ENV, kvm.LAUNCH_TIMEOUT_ENV, kvm.CALL_TIMEOUT_ENV):
        monkeypatch.delenv(name, raising=False)
    assert kvm.Bounds.from_env() == kvm.Bounds(60.0, 300.0, 300.0)
    monkeypatch.setenv(kvm.CALL_TIMEOUT_ENV, "2.5")
    assert kvm.Bounds.from_env().call == 2.5
    for raw, why in (("soon", "is not a number of seconds"), ("0", "must be more than 0 seconds"),
                     ("nan", "must be more than 0 seconds")):
        monkeypatch.setenv(kvm.KVM_TIMEOUT_ENV, raw)
        with pytest.raises(ImageFSError) as info:
            kvm.Bounds.from_env()
        assert str(info.value) == f"${kvm.KVM_TIMEOUT_ENV}: {raw!r} {why}"
