"""Report inventories for the catalogue's campaign tests: packages as the package collectors
record them and hashed files as the file-hash collector does (``inventory`` of report-1), and a
report that carries one."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from tests.builders.reports import make_report

ECOSYSTEMS = {"dpkg": "Debian:12", "rpm": "Rocky Linux:9", "apk": "Alpine:v3.19"}
PURL_TYPES = {"dpkg": "deb", "rpm": "rpm", "apk": "apk"}


def package(name: str, version: str, *, manager: str = "dpkg", source: str | None = None,
            source_version: str | None = None, arch: str | None = "amd64",
            ecosystem: str | None = "") -> dict[str, Any]:
    """One installed package; ``ecosystem`` defaults to the manager's usual release."""
    eco = ECOSYSTEMS[manager] if ecosystem == "" else ecosystem
    return {"name": name, "version": version, "arch": arch, "source_name": source or name,
            "source_version": source_version or version, "manager": manager, "ecosystem": eco,
            "purl": f"pkg:{PURL_TYPES.get(manager, manager)}/{name}@{version}"}


def hashed_file(path: str, content: bytes, kinds: Iterable[str] = ("elf", "exec")
                ) -> dict[str, Any]:
    """A file of ``content`` at ``path``, with its three hashes."""
    return {"path": path, "sha256": hashlib.sha256(content).hexdigest(),
            "sha1": hashlib.sha1(content).hexdigest(), "md5": hashlib.md5(content).hexdigest(),
            "size": len(content), "kinds": list(kinds)}


def inventory(packages: Iterable[Mapping[str, Any]] = (),
              files: Iterable[Mapping[str, Any]] = (), *, complete: bool = True,
              not_hashed: int = 0) -> dict[str, Any]:
    """An inventory as ``imageaudit scan`` writes it."""
    examples = [{"path": "/var/lib/big.img", "reason": "larger than 64 MiB"}][:not_hashed]
    return {"packages": [dict(p) for p in packages], "files": [dict(f) for f in files],
            "complete": complete, "not_hashed": {"count": not_hashed, "examples": examples},
            "limits": {"max_file_bytes": 67108864, "max_total_bytes": 1073741824,
                       "max_files": 100000}}


def report_with(sha: str, level: str, inv: object, **kwargs: Any) -> dict[str, Any]:
    """A genuine report of the image ``sha`` reaching ``level``, carrying ``inv`` (whatever
    it is: the tests of malformed inventories give anything)."""
    doc = make_report(sha, level, **kwargs)
    if inv is not None:
        doc["inventory"] = copy.deepcopy(inv)
    return doc
