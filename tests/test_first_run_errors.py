"""Every error a new user can hit prints one clear line with what to do, never a traceback.

Each case runs the real command line (``.venv/bin/imageaudit``, or its entry point in a Python
that cannot import ``guestfs``) in a subprocess and checks the exact first line on stderr and
the exit code: ``2`` for errors the user fixes, ``1`` for a catalogue that is down (the report
waits in the outbox).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from imageaudit.errors import GUESTFS_MISSING
from imageaudit.example import CLEAN, write_tree
from imageaudit.openers.kvm import FALLBACK_DEFAULT, kvm_note
from integrations.appdb.process import free_port
from tests.clitext import diagnostics

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv" / "bin"
UNSUPPORTED = (
    "unsupported format: not a VM disk image (qcow2, vmdk, vdi, vhdx, vhd, ova, raw), "
    "container archive, OCI layout or root directory"
)


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEAUDIT_")}
    env.update({"XDG_CACHE_HOME": str(tmp / "cache"), "XDG_DATA_HOME": str(tmp / "data"),
                "COLUMNS": "80"})
    return env


def run(args: list[str], tmp: Path, prefix: list[str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    cmd = [*(prefix or [str(VENV / "imageaudit")]), *args]
    proc = subprocess.run(cmd, cwd=tmp, env=_env(tmp), capture_output=True, text=True,
                          timeout=600, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def first_line(proc: subprocess.CompletedProcess[str]) -> str:
    return diagnostics(proc.stderr)[0]


def test_image_not_found(tmp_path: Path) -> None:
    proc = run(["scan", "image.qcow2", "--require", "basic"], tmp_path)
    assert proc.returncode == 2
    assert diagnostics(proc.stderr) == ["imageaudit: error: image.qcow2: no such file or directory"]


def test_random_bytes_are_an_unsupported_format(tmp_path: Path) -> None:
    (tmp_path / "random.img").write_bytes(os.urandom(100_000))
    proc = run(["scan", "random.img"], tmp_path)
    assert proc.returncode == 2
    assert diagnostics(proc.stderr) == [f"imageaudit: error: random.img: {UNSUPPORTED}"]


def test_a_text_file_is_an_unsupported_format(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not an image\n", encoding="utf-8")
    proc = run(["scan", "notes.txt"], tmp_path)
    assert proc.returncode == 2
    assert diagnostics(proc.stderr) == [f"imageaudit: error: notes.txt: {UNSUPPORTED}"]


def test_missing_libguestfs(tmp_path: Path) -> None:
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is needed to make a qcow2 that passes the format check")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(tmp_path / "vm.qcow2"), "1M"],
                   check=True)
    # The venv's own Python, with guestfs made unimportable: what a venv made without
    # --system-site-packages (or a machine without python3-guestfs) gives.
    code = ("import sys; sys.modules['guestfs'] = None; "
            "from imageaudit.cli.main import main; sys.exit(main())")
    proc = run(["scan", "vm.qcow2", "--opener", "guestfs"], tmp_path,
               prefix=[str(VENV / "python"), "-I", "-c", code])
    assert proc.returncode == 2
    assert diagnostics(proc.stderr) == [f"imageaudit: error: {GUESTFS_MISSING}"]


def test_no_permission_for_dev_kvm(request: pytest.FixtureRequest) -> None:
    # root may open anything; the check is run as an unprivileged user, against a device
    # node only root can open (what /dev/kvm is for a user outside the kvm group).
    setpriv = shutil.which("setpriv")
    if setpriv is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to run the check as another user")
    dev_dir = Path(tempfile.mkdtemp(prefix="imageaudit-dev-"))
    dev_dir.chmod(0o755)  # the user can look, as in /dev
    device = dev_dir / "kvm"
    os.mknod(device, 0o660 | stat.S_IFCHR, os.makedev(1, 3))  # a char device, like /dev/kvm
    request.addfinalizer(lambda: shutil.rmtree(dev_dir))
    # nobody may not reach the checkout or its .venv (under /root when set up as root):
    # CAP_DAC_READ_SEARCH lets it read them. It changes nothing for the device: access(2),
    # which kvm_note asks, checks a non-root user without capabilities, and it never grants
    # write access (qemu opens /dev/kvm read-write).
    code = f"from imageaudit.openers.kvm import kvm_note; print(kvm_note({str(device)!r}))"
    proc = subprocess.run(
        [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups",
         "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search",
         str(VENV / "python"), "-c", code],
        cwd="/", capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.splitlines() == [
        f"libguestfs: no permission for {device}, so the appliance runs under TCG (slower); "
        "add this user to the kvm group (sudo usermod -aG kvm $USER) and log in again"
    ]


def test_kvm_notes_name_the_cause(tmp_path: Path) -> None:
    assert kvm_note(tmp_path / "absent") == (
        f"libguestfs: no {tmp_path / 'absent'} here, so the appliance runs under TCG (slower); "
        "enable hardware or nested virtualisation on this machine for KVM speed"
    )
    device = tmp_path / "kvm"
    device.write_bytes(b"")
    assert kvm_note(device) == (
        f"libguestfs: KVM unusable here (qemu could not use {device}), so the appliance runs "
        "under TCG (slower); libguestfs-test-tool shows why"
    )


def test_catalogue_unreachable(tmp_path: Path) -> None:
    # An image file (a directory has no SHA-512 to publish against, and is refused up front)
    from tests.builders.container import docker_archive
    from tests.builders.example_tree import clean_scenario

    docker_archive(clean_scenario(), tmp_path / "clean.tar")
    scan = run(["scan", "clean.tar", "-q", "--format", "json", "-o", "report.json"], tmp_path)
    assert scan.returncode == 0, scan.stderr
    assert run(["keys", "generate", "auditor.key"], tmp_path).returncode == 0
    url = f"http://127.0.0.1:{free_port()}"
    proc = run(["publish", "report.json", "--catalogue", url, "--token", "t", "--tries", "1",
                "--signing-key", "auditor.key"], tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"imageaudit: catalogue {url} unreachable: connection refused; "
        "report kept in the outbox (1 pending)"
    ]


@pytest.mark.guestfs
@pytest.mark.slow
def test_kvm_unusable_is_one_note_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a machine where qemu cannot use /dev/kvm (this one), the fallback says so once."""
    pytest.importorskip("guestfs")
    if not Path("/dev/kvm").exists():
        pytest.skip("no /dev/kvm: libguestfs picks TCG by itself, without a fallback")
    from imageaudit.example import build_disk

    disk = build_disk(write_tree(CLEAN, tmp_path / "root"), tmp_path / "clean.qcow2", size_mb=32)
    proc = run(["scan", str(disk), "--opener", "guestfs", "--require", "basic", "--format",
                "json", "-o", "r.json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in diagnostics(proc.stderr) if line.startswith("note: libguestfs")]
    if not notes:
        pytest.skip("KVM works on this machine: no fallback to report")
    # A launch that failed under KVM, or one that did not finish within its bound (the note
    # then names the bound, as remembered for later runs).
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache = tmp_path / "cache" / "imageaudit" / "guestfs-force-tcg"
    reason = cache.read_text().split("; launch with force_tcg")[0] if cache.exists() else None
    expected = kvm_note(reason=None if reason in (None, FALLBACK_DEFAULT) else reason)
    assert notes == [f"note: {expected}"]
