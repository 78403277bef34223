"""The package's built-in weak example as a test scenario, plus what makes it richer for tests."""

from __future__ import annotations

from imageaudit.example import CLEAN, WEAK
from tests.scenario import Dir, Entry, File, Symlink


def _convert(spec: dict[str, str | tuple[str, int]]) -> dict[str, Entry | str | bytes]:
    out: dict[str, Entry | str | bytes] = {}
    for path, value in spec.items():
        content, mode = value if isinstance(value, tuple) else (value, 0o644)
        if content == "<dir>":
            out[path] = Dir(mode=mode)
        elif content.startswith("->"):
            out[path] = Symlink(content[2:])
        else:
            out[path] = File(content, mode=mode)
    return out


def _convert_without_fstab(
    spec: dict[str, str | tuple[str, int]],
) -> dict[str, Entry | str | bytes]:
    # The VM builders write the fstab their disk layout needs (their own labels).
    tree = _convert(spec)
    tree.pop("/etc/fstab", None)
    return tree


def weak_scenario() -> dict[str, Entry | str | bytes]:
    """The weak example, plus a setuid binary and odd ownership, for cross-opener tests."""
    tree = _convert_without_fstab(WEAK)
    tree.update(
        {
            "/usr/local/bin/helper": File(b"\x7fELF", mode=0o4755),
            "/usr/bin/passwd": File(b"\x7fELF", mode=0o4755),
            "/srv/drop": Dir(mode=0o777),
            "/opt/app/data.bin": File(b"\x00\x01", mode=0o640, uid=4242, gid=4242),
            "/var/tmp": Dir(mode=0o1777),
            "/tmp": Dir(mode=0o1777),
        }
    )
    return tree


def clean_scenario() -> dict[str, Entry | str | bytes]:
    return _convert_without_fstab(CLEAN)
