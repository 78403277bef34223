"""A real OpenStack on 127.0.0.1 for the cloud tests, from Debian 12's own packages.

The Debian root holding Keystone, Glance, Placement, Nova, RabbitMQ and MariaDB is built once
with mmdebstrap and cached (``tests.builders.debian``); each test session starts the services in
a throw-away overlay of it, in a chroot inside private mount and PID namespaces
(``unshare --kill-child``), so that ending the session's ``unshare`` ends every service and
drops every mount. The services listen on the host's loopback: Keystone 5000, Glance 9292,
Placement 8778, Nova 8774, the Neutron stand-in 9696, MariaDB 3306, RabbitMQ 5672.

Starting takes about 7 minutes on 2 cores once the root is built (about 4 more the first
time); the session starts it in the background when the tests that need it are collected, and
runs those tests last (``tests/conftest.py``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import yaml

from tests.builders.debian import debian_root

PACKAGES = ("keystone", "glance-api", "placement-api", "nova-api", "nova-conductor",
            "nova-scheduler", "nova-compute", "rabbitmq-server", "mariadb-server",
            "python3-openstackclient", "curl")
HERE = Path(__file__).resolve().parent / "openstack"
START_TIMEOUT = 1800.0
# The stack of a session that died without stopping it still holds the ports: the next
# session ends it first, by the process group this file names.
PIDFILE = Path(tempfile.gettempdir()) / "imageaudit-test-openstack.pid"
KEYSTONE = "http://127.0.0.1:5000/v3"
USERS = {"admin": "admin", "alice": "vo1", "bob": "vo2"}  # user: project (password = user)

_INSIDE = r"""
set -euo pipefail
lower=$1 run=$2 src=$3
mount --make-rprivate /
mkdir -p "$run/upper" "$run/work" "$run/root"
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$run/upper,workdir=$run/work" "$run/root"
r=$run/root
mount --rbind /dev "$r/dev"
mount -t proc proc "$r/proc"
mount --rbind /sys "$r/sys"
mount -t tmpfs -o mode=0755 tmpfs "$r/run"
mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
mkdir -p "$r/srv/stack"
cp -r "$src/." "$r/srv/stack/"
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' > "$r/etc/hosts"
exec chroot "$r" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    /bin/bash /srv/stack/start.sh
"""


class Stack:
    """The test OpenStack: ``start()`` in the background, ``wait()`` until it answers."""

    def __init__(self) -> None:
        self.run_dir = Path(tempfile.mkdtemp(prefix="imageaudit-openstack-"))
        self.log = self.run_dir / "start.log"
        self.clouds_yaml = self.run_dir / "clouds.yaml"
        self._proc: subprocess.Popen[bytes] | None = None
        self._error: str | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._start, name="openstack-stack", daemon=True)
        self._thread.start()

    def _start(self) -> None:
        try:
            root = debian_root(packages=PACKAGES, flavour="openstack")
            for tool in ("unshare", "chroot", "mount"):
                if shutil.which(tool) is None:
                    raise RuntimeError(f"{tool} is needed to start the test OpenStack")
            _end_leftover()
            with self.log.open("wb") as out:
                self._proc = subprocess.Popen(
                    ["unshare", "--mount", "--pid", "--fork", "--kill-child",
                     "--propagation", "private", "bash", "-c", _INSIDE, "inside",
                     str(root), str(self.run_dir), str(HERE)],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            PIDFILE.write_text(str(self._proc.pid))
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                if b"STACK READY" in self.log.read_bytes():
                    self._write_clouds_yaml()
                    self._ready.set()
                    return
                if self._proc.poll() is not None:
                    raise RuntimeError(f"the services stopped (exit {self._proc.returncode})")
                time.sleep(2)
            raise RuntimeError(f"not up after {START_TIMEOUT:.0f} s")
        except Exception as exc:
            self._error = f"{type(exc).__name__}: {exc}\n{self.log_tail()}"
            self._ready.set()

    def wait(self) -> None:
        """Block until the services answer; raise with the start log's end if they cannot."""
        if self._thread is None:
            self.start()
        self._ready.wait()
        if self._error is not None:
            raise RuntimeError(f"the test OpenStack did not start: {self._error}")

    def stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            # unshare's child is PID 1 of the namespace: when unshare dies (--kill-child), the
            # kernel kills every service in it and drops the namespace's mounts.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
            PIDFILE.unlink(missing_ok=True)
        if self._thread is not None:
            self._thread.join(timeout=5)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    # -- what tests use ---------------------------------------------------------------------

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no start log)"
        return "\n".join(text.splitlines()[-lines:])

    def service_logs(self) -> Path:
        return self.run_dir / "upper" / "var" / "log" / "stack"

    def _write_clouds_yaml(self) -> None:
        clouds = {
            f"stack-{user}": {
                "auth": {"auth_url": KEYSTONE, "username": user, "password": user,
                         "project_name": project, "user_domain_name": "Default",
                         "project_domain_name": "Default"},
                "region_name": "RegionOne", "identity_api_version": 3,
            }
            for user, project in USERS.items()
        }
        self.clouds_yaml.write_text(yaml.safe_dump({"clouds": clouds}))


def _end_leftover() -> None:
    try:
        pid = int(PIDFILE.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if b"unshare" in cmdline and b"/srv/stack/start.sh" in cmdline:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        for _ in range(100):  # the kernel ends the namespace's services after its init
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)
        time.sleep(2)  # ports released


class RunningStack:
    """A test OpenStack started elsewhere (``$IMAGEAUDIT_TEST_OPENSTACK`` names its
    clouds.yaml): quicker to iterate on the cloud tests against one stack kept running."""

    def __init__(self, clouds_yaml: Path) -> None:
        self.clouds_yaml = clouds_yaml

    def wait(self) -> None:
        return None
