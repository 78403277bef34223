"""``catalogue serve`` in a child process on 127.0.0.1, for the demo, the end-to-end test and
the load benchmark: started, waited for until its health check answers, stopped.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from imageaudit.publish import check_health


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class CatalogueProcess:
    """``catalogue serve --db DB`` on 127.0.0.1 at a free port, its output appended to ``log``.

    ``start`` returns once ``/api/v1/health`` answers; ``stop`` ends the child. It can start
    again on the same port. As a context manager it runs for the duration of the block.
    """

    def __init__(self, db: str, log: Path, *, args: Sequence[str] = (),
                 cwd: Path | None = None) -> None:
        self.db, self.log, self.args, self.cwd = db, log, tuple(args), cwd
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        """Start the child; a RuntimeError (with its log) when it exits or is not healthy
        within ``timeout`` seconds."""
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "integrations.appdb.cli", "catalogue", "serve",
                 "--db", self.db, "--host", "127.0.0.1", "--port", str(self.port), *self.args],
                cwd=self.cwd, stdout=fh, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while not check_health(self.url, timeout=1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = self.log.read_text(encoding="utf-8", errors="replace")
                raise RuntimeError(f"the catalogue did not start; see {self.log}:\n{log}")
            time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> None:
        """Terminate the child (kill it after ``timeout`` seconds); nothing when not running."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> CatalogueProcess:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
