"""The direct reader run by an unprivileged user (``nobody``, through ``setpriv``): it reads a
world-readable image like root does, its child in a network namespace made inside a new user
namespace; where no namespace can be made, the open still succeeds and says so in a note
(the seccomp filter forbids sockets either way). An image the user cannot read is one clear
error."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from imageaudit.openers.direct import open_direct

NOBODY = 65534
REPO = Path(__file__).resolve().parents[3]

SCRIPT = """
import json, sys
from imageaudit.openers.direct import DirectError, open_direct
try:
    with open_direct(sys.argv[1]) as fs:
        tree = sorted((st.path, st.type.value, st.mode, st.uid, st.size) for st in fs.walk("/"))
        out = {"confinement": fs.info.details["confinement"], "notes": fs.info.notes,
               "tree": tree, "passwd": fs.read("/etc/passwd").data.decode()}
except DirectError as exc:
    out = {"error": str(exc), "type": type(exc).__name__}
print(json.dumps(out))
"""


def _run(image: Path, *wrapper: str) -> dict[str, object]:
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(image.parent),
           "LANG": "C.UTF-8"}
    python = image.parent / "venv" / "bin" / "python"
    proc = subprocess.run([*wrapper, str(python), "-I", "-c", SCRIPT, str(image)], env=env,
                          cwd=image.parent, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, object] = json.loads(proc.stdout)
    return result


# What the reader imports beyond the standard library and the system's site packages (the
# seccomp binding), copied beside the package where nobody may read them.
THIRD_PARTY = ("pyfsext", "pyfsxfs", "pyvhdi", "pyvmdk", "pyvslvm", "zstandard")


def _nobody_python(where: Path) -> None:
    """A virtual environment under ``where`` that nobody can run the reader from, whatever the
    project's own venv permits (it may live under a 0700 home): the system Python, a copy of
    the package and of the reader's libraries, found through a .pth file."""
    lib = where / "lib"
    shutil.copytree(REPO / "imageaudit", lib / "imageaudit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in THIRD_PARTY:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        origin = Path(spec.origin)
        if spec.submodule_search_locations:
            shutil.copytree(origin.parent, lib / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(origin, lib / origin.name)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages",
                    str(where / "venv")], check=True)
    purelib = subprocess.run(
        [str(where / "venv" / "bin" / "python"), "-c",
         "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "imageaudit-nobody.pth").write_text(f"{lib}\n")
    for path in [where, *where.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else (path.stat().st_mode | 0o444))


AS_NOBODY = ("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups")


@pytest.fixture
def shared(direct_images: dict[str, Path]) -> Iterator[Path]:
    """A directory ``nobody`` can enter holding a world-readable copy of the qcow2 image."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to become nobody")
    where = Path(tempfile.mkdtemp(prefix="imageaudit-nobody-"))
    try:
        _nobody_python(where)
        where.chmod(0o755)
        image = where / "disk.qcow2"
        shutil.copyfile(direct_images["qcow2"], image)
        image.chmod(0o644)
        yield image
    finally:
        shutil.rmtree(where)


def _userns_allowed() -> bool:
    """Whether nobody may make a user namespace and a network namespace in it here."""
    proc = subprocess.run([*AS_NOBODY, "unshare", "--user", "--net", "true"],
                          capture_output=True, check=False)
    return proc.returncode == 0


def _as_root_reads(image: Path) -> tuple[list[list[object]], str]:
    with open_direct(image) as fs:
        tree: list[list[object]] = [[st.path, st.type.value, st.mode, st.uid, st.size]
                                    for st in sorted(fs.walk("/"), key=lambda st: st.path)]
        return tree, fs.read("/etc/passwd").data.decode()


def test_nobody_reads_the_same_tree(shared: Path) -> None:
    got = _run(shared, *AS_NOBODY)
    assert "error" not in got, got
    tree, passwd = _as_root_reads(shared)
    assert got["tree"] == tree and got["passwd"] == passwd
    applied = got["confinement"]
    assert isinstance(applied, dict)
    assert applied["user"] == "unchanged (not root)"
    assert applied["seccomp"] == "kill-by-default allow-list" and applied["no_new_privs"]
    if _userns_allowed():
        assert applied["netns"] == "userns+netns"
        assert got["notes"] == []
    else:
        assert str(applied["netns"]).startswith("no: unshare failed")
        notes = got["notes"]
        assert isinstance(notes, list)
        assert any(n.startswith("confinement: no network namespace: unshare failed")
                   for n in notes)


def test_no_namespace_left_is_a_note_not_a_silent_gap(shared: Path) -> None:
    """In a user namespace whose limits allow no further user or network namespace, the
    child cannot unshare: the open works and the note says what is missing."""
    if subprocess.run(["unshare", "--user", "--map-root-user", "true"], capture_output=True,
                      check=False).returncode != 0:
        pytest.skip("user namespaces are not available here")
    wrapper = ("unshare", "--user", "--map-root-user", "sh", "-c",
               "echo 0 > /proc/sys/user/max_net_namespaces && "
               "echo 0 > /proc/sys/user/max_user_namespaces && exec \"$@\"", "sh")
    got = _run(shared, *wrapper)
    assert "error" not in got, got
    applied = got["confinement"]
    assert isinstance(applied, dict)
    assert str(applied["netns"]).startswith("no: unshare failed")
    notes = got["notes"]
    assert isinstance(notes, list)
    assert [n for n in notes if "network namespace" in n] == [
        "confinement: no network namespace: unshare failed (No space left on device; "
        "with a user namespace No space left on device)"]
    tree, _passwd = _as_root_reads(shared)
    assert got["tree"] == tree


def test_an_image_nobody_cannot_read_is_one_clear_error(shared: Path) -> None:
    shared.chmod(0o600)
    got = _run(shared, *AS_NOBODY)
    assert got == {"error": f"{shared}: cannot open: Permission denied", "type": "DirectError"}
