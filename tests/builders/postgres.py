"""A throw-away PostgreSQL server for tests and benchmarks.

Installs Debian's ``postgresql`` when missing, then runs ``initdb`` and ``pg_ctl`` as the
``postgres`` user on a temporary data directory, listening only on 127.0.0.1 at a free port
with ``trust`` authentication (nothing but loopback can reach it, and it lives for one session).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from integrations.appdb.process import free_port


class PostgresUnavailable(Exception):
    """PostgreSQL cannot be installed or started here; the message says why."""


@dataclass(frozen=True, slots=True)
class PgServer:
    """A running server: ``url(db)`` gives a SQLAlchemy URL for a database on it."""

    port: int
    datadir: Path

    def url(self, db: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"


def _bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def ensure_installed() -> Path:
    """The PostgreSQL bin directory, installing the Debian package when needed."""
    bindir = _bindir()
    if bindir is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise PostgresUnavailable("postgresql is not installed and cannot be installed "
                                      "(needs root and apt-get)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        proc = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                               "postgresql"], capture_output=True, env=env, timeout=900,
                              check=False)
        bindir = _bindir()
        if proc.returncode != 0 or bindir is None:
            raise PostgresUnavailable("apt-get install postgresql failed: "
                                      + proc.stderr.decode("utf-8", "replace")[-400:])
    return bindir


def _as_postgres(cmd: list[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)


@contextmanager
def running_postgres() -> Iterator[PgServer]:
    """Start a private PostgreSQL; stop it and remove its data on exit."""
    bindir = ensure_installed()
    tmp = Path(tempfile.mkdtemp(prefix="imageaudit-pg-"))
    datadir, sockdir = tmp / "data", tmp / "sock"
    sockdir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
        shutil.chown(sockdir, "postgres")
    proc = _as_postgres([str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres",
                         "--auth=trust", "-E", "UTF8", "--no-sync"], 120)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise PostgresUnavailable("initdb failed: " + proc.stderr.decode("utf-8", "replace")[-400:])
    port = free_port()
    opts = (f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={sockdir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
    proc = _as_postgres([str(bindir / "pg_ctl"), "-D", str(datadir), "-o", opts, "-l",
                         str(tmp / "log"), "-w", "-t", "60", "start"], 90)
    if proc.returncode != 0:
        log = (tmp / "log").read_text(errors="replace")[-400:] if (tmp / "log").exists() else ""
        shutil.rmtree(tmp, ignore_errors=True)
        raise PostgresUnavailable(f"pg_ctl start failed: {proc.stderr.decode()[-300:]} {log}")
    server = PgServer(port, datadir)
    try:
        _wait(port)
        yield server
    finally:
        _as_postgres([str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "fast", "-w", "stop"], 60)
        shutil.rmtree(tmp, ignore_errors=True)


def _wait(port: int, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise PostgresUnavailable(f"PostgreSQL did not listen on port {port}")


def create_database(server: PgServer, name: str) -> str:
    """Create database ``name`` on ``server``; return its URL."""
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres",
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.url(name)
