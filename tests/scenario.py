"""Write small root trees from a compact description, for tests.

A scenario is a mapping of in-image paths to entries::

    {
        "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\\n",          # file, mode 0644
        "/etc/shadow": File("root:*:19000:0:99999:7:::\\n", mode=0o640),
        "/bin": Symlink("usr/bin"),
        "/var/tmp": Dir(mode=0o1777),
        "/usr/bin/passwd": File(b"\\x7fELF", mode=0o4755),
    }

Parent directories are made as needed (0755, root). The same description is turned into a
directory here, into container images by ``tests.builders.container`` and into VM disks by
``tests.builders.vm``, so that every opener can be asked for the same facts.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class File:
    content: bytes | str = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0

    @property
    def data(self) -> bytes:
        return self.content.encode() if isinstance(self.content, str) else self.content


@dataclass(frozen=True)
class Dir:
    mode: int = 0o755
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Symlink:
    target: str
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Hardlink:
    """Another name for the file at ``target`` (an absolute in-image path)."""

    target: str


@dataclass(frozen=True)
class Fifo:
    mode: int = 0o644


Entry = File | Dir | Symlink | Hardlink | Fifo
Scenario = Mapping[str, "Entry | str | bytes"]


def entries(scenario: Scenario) -> Iterator[tuple[str, Entry]]:
    """Every entry, parents first, implicit parent directories included, sorted by path."""
    explicit: dict[str, Entry] = {}
    for path, value in scenario.items():
        norm = posixpath.normpath("/" + path.lstrip("/"))
        explicit[norm] = File(value) if isinstance(value, (str, bytes)) else value
    allpaths: dict[str, Entry] = {}
    for path in explicit:
        parent = posixpath.dirname(path)
        while parent != "/":
            allpaths.setdefault(parent, explicit.get(parent, Dir()))
            parent = posixpath.dirname(parent)
    allpaths.update(explicit)
    # Hardlinks after their targets so that the target exists when the link is made.
    yield from sorted(allpaths.items(), key=lambda kv: (isinstance(kv[1], Hardlink), kv[0]))


def write_tree(scenario: Scenario, root: Path, owners: bool | None = None) -> Path:
    """Write the scenario under ``root`` (a host directory). Ownership is applied as root."""
    if owners is None:
        owners = os.geteuid() == 0
    root.mkdir(parents=True, exist_ok=True)
    dir_modes: list[tuple[Path, Dir]] = []
    for path, entry in entries(scenario):
        host = root / path.lstrip("/")
        if isinstance(entry, Dir):
            host.mkdir(parents=True, exist_ok=True)
            dir_modes.append((host, entry))
            continue
        host.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(entry, File):
            host.write_bytes(entry.data)
            # chown before chmod: chown clears setuid/setgid bits.
            if owners:
                os.chown(host, entry.uid, entry.gid)
            host.chmod(entry.mode)
        elif isinstance(entry, Symlink):
            host.symlink_to(entry.target)
            if owners:
                os.lchown(host, entry.uid, entry.gid)
        elif isinstance(entry, Hardlink):
            os.link(root / entry.target.lstrip("/"), host)
        elif isinstance(entry, Fifo):
            os.mkfifo(host, entry.mode)
    # Directory modes last: a read-only directory must not stop us filling it.
    for host, entry in reversed(dir_modes):
        if owners:
            os.chown(host, entry.uid, entry.gid)
        host.chmod(entry.mode)
    return root
