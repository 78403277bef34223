"""Compare two :class:`ImageFS` views entry by entry (walk, lstat, listdir, read, resolve).

Used to prove that every opener gives the same answers as :class:`DirectoryFS` on the same
scenario. Directory sizes and link counts are host-filesystem details and are not compared;
mtimes only when asked.
"""

from __future__ import annotations

import hashlib

from imageaudit.imagefs import FileType, ImageFS, ImageFSError

Row = tuple[object, ...]


def _resolved(fs: ImageFS, path: str) -> str:
    try:
        return fs.resolve(path)
    except ImageFSError as exc:
        return f"error: {type(exc).__name__}"


def snapshot(fs: ImageFS, *, mtime: bool = False, read_limit: int = 1 << 20) -> dict[str, Row]:
    """Path -> everything observable about it through the public interface."""
    out: dict[str, Row] = {}
    for st in fs.walk("/"):
        again = fs.lstat(st.path)
        assert again == st, f"{st.path}: lstat {again} differs from walk {st}"
        is_dir = st.type is FileType.DIRECTORY
        row: Row = (
            st.type.value,
            oct(st.mode),
            st.uid,
            st.gid,
            None if is_dir else st.size,
            st.link_target,
            None if is_dir else st.nlink,
            st.mtime if mtime else None,
        )
        if st.type is FileType.REGULAR:
            data = fs.read(st.path, read_limit).data
            # Short contents as they are (readable diffs), long ones by digest.
            row += (data if len(data) <= 64 else "sha256:" + hashlib.sha256(data).hexdigest(),)
        elif is_dir:
            row += (tuple(fs.listdir(st.path)),)
        elif st.type is FileType.SYMLINK:
            row += (_resolved(fs, st.path),)
        out[st.path] = row
    return out


def tree_differences(a: ImageFS, b: ImageFS, *, mtime: bool = False) -> list[str]:
    """Human-readable differences between two trees; empty when they agree."""
    sa, sb = snapshot(a, mtime=mtime), snapshot(b, mtime=mtime)
    diffs = [f"only in first: {p}" for p in sorted(sa.keys() - sb.keys())]
    diffs += [f"only in second: {p}" for p in sorted(sb.keys() - sa.keys())]
    for path in sorted(sa.keys() & sb.keys()):
        if sa[path] != sb[path]:
            diffs.append(f"{path}: {sa[path]!r} != {sb[path]!r}")
    return diffs


def assert_same_tree(a: ImageFS, b: ImageFS, *, mtime: bool = False) -> None:
    """Fail with every difference listed when ``a`` and ``b`` do not show the same tree."""
    diffs = tree_differences(a, b, mtime=mtime)
    assert not diffs, "trees differ:\n" + "\n".join(diffs[:50])


FS_ROOT_EXTRAS = ("lost+found",)


def without_fs_extras(snap: dict[str, Row]) -> dict[str, Row]:
    """Drop what mkfs adds (lost+found at each filesystem root) from a :func:`snapshot`."""
    out: dict[str, Row] = {}
    for path, row in snap.items():
        if any(f"/{extra}" in path for extra in FS_ROOT_EXTRAS):
            continue
        if row[0] == "dir":
            names = row[-1]
            assert isinstance(names, tuple)
            row = (*row[:-1], tuple(n for n in names if n not in FS_ROOT_EXTRAS))
        out[path] = row
    return out
