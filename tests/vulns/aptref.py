"""The reference for pending updates: apt itself, pointed at a root's dpkg status.

apt runs on the host with its whole state redirected (status file of the root, a private
sources list, lists and cache directories under ``work``), so nothing of the root is run
and the host's own apt state is untouched.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
_LINE = re.compile(r"^(\S+?)/(\S+) (\S+) (\S+) \[upgradable from: (\S+)\]$")


def apt_options(root: Path, work: Path, sources: list[str]) -> list[str]:
    """``-o`` options making apt read ``root``'s dpkg status and only ``sources``."""
    for sub in ("lists/partial", "cache/archives/partial", "parts", "prefs"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    (work / "sources.list").write_text("".join(f"{line}\n" for line in sources))
    pairs = {
        "Dir::State::status": root / "var/lib/dpkg/status",
        "Dir::State::Lists": work / "lists",
        "Dir::Cache": work / "cache",
        "Dir::Etc::SourceList": work / "sources.list",
        "Dir::Etc::SourceParts": work / "parts",
        "Dir::Etc::Parts": work / "parts",
        "Dir::Etc::PreferencesParts": work / "prefs",
        "Dir::Etc::Preferences": work / "preferences",
        "APT::Architecture": "amd64",
        "APT::Sandbox::User": "root",
        "Acquire::Languages": "none",
    }
    return [arg for key, value in pairs.items() for arg in ("-o", f"{key}={value}")]


def update(options: list[str]) -> None:
    """``apt-get update`` with the redirected state (reaches the mirror)."""
    subprocess.run(["apt-get", "-q", *options, "update"], check=True, capture_output=True,
                   timeout=600, stdin=subprocess.DEVNULL)


def upgradable(options: list[str]) -> tuple[dict[str, tuple[str, str]], float]:
    """``apt list --upgradable``: {name: (installed, candidate)} and the seconds it took."""
    start = time.perf_counter()
    proc = subprocess.run(["apt", *options, "list", "--upgradable"], check=True,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    found: dict[str, tuple[str, str]] = {}
    for line in proc.stdout.splitlines():
        match = _LINE.match(line.strip())
        if match:
            found[match.group(1)] = (match.group(5), match.group(3))
    return found, elapsed
