"""The package's built-in examples as test scenarios, plus what makes the weak one richer."""

from __future__ import annotations

from imageaudit.example import CLEAN, WEAK
from tests.scenario import Dir, Entry, File, Scenario


def _without_fstab(tree: Scenario) -> dict[str, Entry | str | bytes]:
    # The VM builders write the fstab their disk layout needs (their own labels).
    out = dict(tree)
    out.pop("/etc/fstab", None)
    return out


def weak_scenario() -> dict[str, Entry | str | bytes]:
    """The weak example, plus a setuid binary and odd ownership, for cross-opener tests."""
    tree = _without_fstab(WEAK)
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
    return _without_fstab(CLEAN)
