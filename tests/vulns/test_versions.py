"""Version ordering checked pair by pair against the managers' own tools.

dpkg: ``dpkg --compare-versions`` on real Debian versions (tests/data/vulns/debian-versions.txt).
rpm: ``rpm.vercmp`` of Debian's ``rpm`` package, all pairs in one ``rpm --eval`` lua block.
apk: Debian has no apk-tools; the cases below are those apk-tools' own test list documents.
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from imageaudit.vulns.versions import (
    apk_compare,
    apk_valid,
    compare,
    dpkg_compare,
    rpm_compare,
    sort_key,
    split_evr,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "vulns" / "debian-versions.txt"


def _debian_versions() -> list[str]:
    return [
        line for line in DATA.read_text().splitlines() if line and not line.startswith("#")
    ]


def _pairs(versions: list[str], count: int, seed: int) -> list[tuple[str, str]]:
    """Neighbours in sorted text order (the close calls), random pairs, and self-pairs."""
    rng = random.Random(seed)
    ordered = sorted(versions)
    pairs = list(itertools.pairwise(ordered))
    while len(pairs) < count:
        pairs.append((rng.choice(versions), rng.choice(versions)))
    pairs.extend((v, v) for v in versions[:50])
    return pairs


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed")
def test_dpkg_order_agrees_with_dpkg_on_every_pair() -> None:
    """Sort all versions with our order, then have dpkg confirm each neighbour relation
    (lt/eq): since dpkg's order is total, our order then agrees with dpkg on all ~6 million
    pairs of the sample. 500 random pairs are checked directly as well."""
    versions = _debian_versions()
    assert len(versions) == 3500
    ordered = sorted(versions, key=sort_key("dpkg"))
    rng = random.Random(1)
    pairs = list(itertools.pairwise(ordered))
    pairs += [(rng.choice(versions), rng.choice(versions)) for _ in range(500)]
    relation = {-1: "lt", 0: "eq", 1: "gt"}
    claims = [(a, b, relation[dpkg_compare(a, b)]) for a, b in pairs]
    assert {c for _a, _b, c in claims[:3499]} <= {"lt", "eq"}
    # A few shells, each checking a share of the claims; one y/n line per claim, in order.
    shares = max(1, min(8, os.cpu_count() or 1))
    size = -(-len(claims) // shares)
    procs = []
    for start in range(0, len(claims), size):
        script = "".join(
            f"dpkg --compare-versions '{a}' {rel} '{b}' && echo y || echo n\n"
            for a, b, rel in claims[start:start + size]
        )
        proc = subprocess.Popen(["sh"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append((proc, script))
    out: list[str] = []
    for proc, script in procs:
        stdout, _ = proc.communicate(script, timeout=120)
        assert proc.returncode == 0
        out.extend(stdout.split())
    assert len(out) == len(claims) == 3999
    wrong = [claim for claim, answer in zip(claims, out, strict=True) if answer != "y"]
    assert wrong == []


def _tricky_rpm_versions(rng: random.Random, count: int) -> list[str]:
    alphabet = "0000112399.~^_+abzAZ"
    made = []
    for _ in range(count):
        parts = [
            "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
            for _ in range(rng.randint(1, 2))
        ]
        text = "-".join(parts)
        if rng.random() < 0.2:
            text = f"{rng.randint(0, 3)}:{text}"
        made.append(text)
    return made


REAL_RPM = [
    "5.1.8-6.el9", "5.1.8-9.el9", "1:3.0.7-27.el9", "1:3.0.7-24.el9_4", "3.0.7-27.el9",
    "2.34-100.el9_4.2", "2.34-100.el9", "1.0-1.fc40", "1.0-1.fc40.1", "1.0~rc1-1", "1.0-0.1.rc1",
    "1.0^20240101git1234abc-1", "1.0^1-1", "1.0", "1.0.0", "1.00", "4.18.0-1.fc39",
    "0:4.18.0-1.fc39", "2.9.13-6.el9_4", "2.9.13-6.el9_4.1", "5.14.0-427.13.1.el9_4",
    "5.14.0-427.16.1.el9_4", "15.2-150500.4.1", "15.2-150500.3.2", "7.4p1-1", "7.4-1",
    "1.2.3a-1", "1.2.3-1", "20240101-1.el9", "1:1.1.1k-12.el8_9", "1:1.1.1k-9.el8_7",
]


@pytest.mark.skipif(shutil.which("rpm") is None, reason="rpm is not installed")
def test_rpm_order_agrees_with_rpm_vercmp_on_every_pair(tmp_path: Path) -> None:
    rng = random.Random(2)
    versions = REAL_RPM + _debian_versions() + _tricky_rpm_versions(rng, 1500)
    pairs = _pairs(versions, 6000, seed=3)
    pairs += [(a, b) for a in REAL_RPM for b in REAL_RPM]
    # Neighbours in our own order: with rpm agreeing on each, our order is rpm's total order.
    pairs += list(itertools.pairwise(sorted(versions, key=sort_key("rpm"))))

    def lua_string(text: str) -> str:
        return "[==[" + text + "]==]"

    table = ",\n".join(f"{{{lua_string(a)},{lua_string(b)}}}" for a, b in pairs)
    script = tmp_path / "pairs.lua"
    script.write_text(
        f"local t = {{\n{table}\n}}\n"
        "local out = {}\n"
        "for i, p in ipairs(t) do out[i] = tostring(rpm.vercmp(p[1], p[2])) end\n"
        "print(table.concat(out, ' '))\n"
    )
    out = subprocess.run(
        ["rpm", "--eval", f"%{{lua: dofile('{script}')}}"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split()
    assert len(out) == len(pairs)
    wrong = [(a, b, int(ref), rpm_compare(a, b)) for (a, b), ref in zip(pairs, out, strict=True)
             if rpm_compare(a, b) != max(-1, min(1, int(ref)))]
    assert wrong == []


def test_split_evr_follows_rpm_parse_evr() -> None:
    assert split_evr("1:3.0.7-27.el9") == ("1", "3.0.7", "27.el9")
    assert split_evr("3.0.7") == (None, "3.0.7", None)
    assert split_evr("12:3-4-5") == ("12", "3-4", "5")
    assert split_evr("x:1-2") == (None, "x:1", "2")
    assert split_evr(":1") == ("0", "1", None)


# (older, newer) pairs from apk-tools' documented version order (test/version.data).
APK_ORDERED = [
    ("1.0", "1.1"), ("1.0_alpha", "1.0"), ("1.0_alpha1", "1.0_alpha2"), ("1.0_beta", "1.0_pre"),
    ("1.0_pre", "1.0_rc"), ("1.0_rc1", "1.0"), ("1.0", "1.0_cvs"), ("1.0_cvs", "1.0_svn"),
    ("1.0_svn", "1.0_git"), ("1.0_git", "1.0_hg"), ("1.0_hg", "1.0_p"), ("1.0", "1.0_p1"),
    ("1.0-r0", "1.0-r1"), ("1.0-r9", "1.0-r10"), ("1.0", "1.0-r1"), ("1.0", "1.0a"),
    ("1.0a", "1.0b"), ("1.0b", "1.1"), ("1.2.3", "1.2.3.1"), ("1.2", "1.10"),
    ("1.05", "1.1"), ("1.001", "1.01"), ("1.2_git20230101-r0", "1.2_git20230102-r0"),
    ("0.1_rc1", "0.1"), ("1.2.3-r0", "1.2.4_rc1-r0"), ("2.39.3-r0", "2.39.4-r0"),
    ("3.1.4-r5", "3.1.4-r6"), ("1.36.1-r15", "1.36.1-r19"), ("1.0~abc", "1.0~abd"),
    ("1.0~abc", "1.0~abc-r1"), ("1.0_alpha_beta", "1.0_alpha"), ("1.0_p1_alpha", "1.0_p1"),
]


@pytest.mark.parametrize(("older", "newer"), APK_ORDERED)
def test_apk_order(older: str, newer: str) -> None:
    assert apk_compare(older, newer) == -1
    assert apk_compare(newer, older) == 1
    assert apk_compare(older, older) == 0
    assert compare("apk", newer, older) == 1


def test_apk_validity() -> None:
    assert apk_valid("1.2.3_rc1~beef-r4")
    assert not apk_valid("1.2.3-4")
    assert not apk_valid("a1.0")
    assert not apk_valid("1.0_foo")
    assert not apk_valid("1.0a1")


def test_apk_order_is_total_on_valid_versions() -> None:
    rng = random.Random(5)
    parts = ["1", "1.0", "1.00", "1.01", "1.1", "2", "1.0a", "1.0_rc1", "1.0_p2", "1.0_git1"]
    versions = [rng.choice(parts) + rng.choice(["", "-r0", "-r1", "-r10"]) for _ in range(200)]
    for a in versions:
        for b in versions[:40]:
            assert apk_compare(a, b) == -apk_compare(b, a)


def test_unknown_manager_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown package manager 'pacman'"):
        compare("pacman", "1", "2")
