"""A local catalogue database made ready for publishing, through the command line as an operator
would: an image list imported, an auditor with a token and a registered signing key."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``imageaudit ARGS`` in a child process, from the project root."""
    return subprocess.run([sys.executable, "-m", "imageaudit", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, **(env or {})})


def ok(*args: str, env: dict[str, str] | None = None) -> str:
    """Its stdout; the test fails with its stderr when it does not exit 0."""
    done = cli(*args, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def token(db: str, role: str, name: str) -> str:
    return ok("catalogue", "token", "create", "--role", role, "--name", name,
              "--db", db).strip().split()[-1]


@dataclass(frozen=True)
class Auditor:
    token: str
    key: Path


def ready_catalogue(db: str, listing: Path, directory: Path, name: str = "batcher") -> Auditor:
    """Import ``listing`` into ``db`` and register auditor ``name``: its token and key."""
    ok("catalogue", "import-imagelist", str(listing), "--db", db)
    key = directory / f"{name}.key"
    ok("keys", "generate", str(key))
    ok("catalogue", "auditor", "add", name, "--public-key", f"{key}.pub", "--db", db)
    return Auditor(token(db, "auditor", name), key)
