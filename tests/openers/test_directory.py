from __future__ import annotations

from pathlib import Path

import pytest

from imageaudit.imagefs import FileType, NotFoundInImage, SymlinkLoop
from imageaudit.openers.directory import DirectoryFS
from tests.scenario import Dir, File, Symlink, write_tree


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return write_tree(
        {
            "/etc/shadow": File("root:*:1::::::\n", mode=0o640),
            "/etc/alt": Symlink("/etc/shadow"),
            "/etc/rel": Symlink("../../../../etc/shadow"),
            "/usr/bin/ls": File(b"ELF", mode=0o755),
            "/bin": Symlink("usr/bin"),
            "/loop1": Symlink("/loop2"),
            "/loop2": Symlink("/loop1"),
            "/tmp": Dir(mode=0o1777),
        },
        tmp_path / "root",
    )


def test_absolute_symlink_restarts_at_image_root(tree: Path, tmp_path: Path) -> None:
    (tmp_path / "host-secret").write_text("HOST")
    (tree / "escape").symlink_to(tmp_path / "host-secret")
    with DirectoryFS(tree) as fs:
        assert fs.read("/etc/alt").data == b"root:*:1::::::\n"
        assert fs.read("/etc/rel").data == b"root:*:1::::::\n"
        with pytest.raises(NotFoundInImage):
            fs.read("/escape")


def test_dotdot_stops_at_root_and_loops_end(tree: Path) -> None:
    with DirectoryFS(tree) as fs:
        assert fs.resolve("/../../etc/../bin/ls") == "/usr/bin/ls"
        with pytest.raises(SymlinkLoop):
            fs.stat("/loop1")
        assert fs.lstat("/bin").type is FileType.SYMLINK
        assert fs.stat("/tmp").mode == 0o1777


def test_read_is_capped_and_glob_stays_inside(tree: Path) -> None:
    with DirectoryFS(tree) as fs:
        r = fs.read("/etc/shadow", limit=4)
        assert (r.data, r.truncated, r.size) == (b"root", True, 15)
        assert fs.glob("/etc/*") == ["/etc/alt", "/etc/rel", "/etc/shadow"]
        assert fs.glob("/bin/l?") == ["/bin/ls"]
        paths = [st.path for st in fs.walk("/")]
        assert "/usr/bin/ls" in paths and "/etc/shadow" in paths
