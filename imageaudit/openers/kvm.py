"""Bounded libguestfs launches and calls, and the remembered fallback from KVM to TCG.

libguestfs calls block, and nothing in them gives up: qemu that accepts ``/dev/kvm`` but
never runs the guest leaves ``launch()`` waiting (libguestfs' own bound is 20 minutes), and
a guest read that cannot finish leaves its call waiting for ever. The only way to end such a
call is to stop qemu, so one :class:`Watchdog` thread per appliance kills qemu (and anything
it started) when the call in progress passes its deadline, or when SIGINT/SIGTERM arrives
while the main thread is blocked in a call. The call then fails, the handle is dead and every
later call fails with :class:`ApplianceStopped`; ``close()`` still removes libguestfs' own
temporary directories.

During ``launch()`` the handle is locked (``get_pid`` would wait for the launch), so qemu is
found as the new child process of ours whose arguments carry ``-kernel`` (the direct
backend); the launch deadline counts from qemu's start, not from the appliance build that
supermin may run first.

Bounds, in seconds, from the environment: :data:`KVM_TIMEOUT_ENV` (a KVM launch; past it
the launch is retried under TCG and the fallback is remembered), :data:`LAUNCH_TIMEOUT_ENV`
(a TCG launch; past it the open fails) and :data:`CALL_TIMEOUT_ENV` (any one call after).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from imageaudit.imagefs import ImageFSError, env_seconds

TCG_ENV = "IMAGEAUDIT_GUESTFS_TCG"
TCG_CACHE_NAME = "guestfs-force-tcg"
KVM_TIMEOUT_ENV = "IMAGEAUDIT_GUESTFS_KVM_TIMEOUT"
LAUNCH_TIMEOUT_ENV = "IMAGEAUDIT_GUESTFS_LAUNCH_TIMEOUT"
CALL_TIMEOUT_ENV = "IMAGEAUDIT_GUESTFS_CALL_TIMEOUT"
# A KVM launch takes a few seconds (tens on a loaded nested host); a TCG launch 30-60 s on
# two cores; one call after launch is a read or a listing (find0 of a big tree is the slowest).
DEFAULT_KVM_TIMEOUT = 60.0
DEFAULT_LAUNCH_TIMEOUT = 300.0
DEFAULT_CALL_TIMEOUT = 300.0
POLL_S = 0.2
KVM_DEVICE = "/dev/kvm"
FALLBACK_DEFAULT = "qemu could not use /dev/kvm"


class ApplianceTimeout(ImageFSError):
    """A launch or a call did not finish within its bound; qemu was stopped."""


class ApplianceStopped(ImageFSError):
    """The appliance was stopped earlier (a bound passed, or a signal); it serves no call."""


@dataclass(frozen=True, slots=True)
class Bounds:
    """Seconds a KVM launch, a TCG launch and one later call may take."""

    kvm_launch: float = DEFAULT_KVM_TIMEOUT
    launch: float = DEFAULT_LAUNCH_TIMEOUT
    call: float = DEFAULT_CALL_TIMEOUT

    @classmethod
    def from_env(cls) -> Bounds:
        """The bounds from :data:`KVM_TIMEOUT_ENV` and friends, defaults where unset."""
        return cls(
            kvm_launch=env_seconds(KVM_TIMEOUT_ENV, DEFAULT_KVM_TIMEOUT),
            launch=env_seconds(LAUNCH_TIMEOUT_ENV, DEFAULT_LAUNCH_TIMEOUT),
            call=env_seconds(CALL_TIMEOUT_ENV, DEFAULT_CALL_TIMEOUT),
        )


def tcg_cache() -> Path:
    """The file whose presence makes later launches go straight to TCG; it holds the reason."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "imageaudit" / TCG_CACHE_NAME


def want_tcg() -> bool:
    """Whether to go straight to TCG: ``$IMAGEAUDIT_GUESTFS_TCG`` or an earlier fallback."""
    env = os.environ.get(TCG_ENV)
    if env is not None:
        return env.strip() not in ("", "0", "no", "false")
    return tcg_cache().exists()


def remember_tcg(reason: str) -> None:
    """Make later launches skip KVM, keeping ``reason`` (one line) for their note."""
    try:
        path = tcg_cache()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{reason}; launch with force_tcg\n")
    except OSError:
        pass  # only a speed-up for the next launch


def remembered_reason() -> str | None:
    """Why an earlier run fell back to TCG, or ``None`` when no fallback is remembered."""
    if os.environ.get(TCG_ENV) is not None:
        return None
    try:
        text = tcg_cache().read_text(errors="replace")
    except OSError:
        return None
    line = text.split("\n", 1)[0].removesuffix("; launch with force_tcg").strip()
    return line or FALLBACK_DEFAULT


def _children(ppid: int) -> dict[int, list[str]]:
    """Child processes of ``ppid``: pid -> argv (read from /proc)."""
    out: dict[int, list[str]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
            # The command name may hold spaces and parentheses: fields follow the last ")".
            if int(stat[stat.rindex(b")") + 2:].split()[1]) != ppid:
                continue
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        out[int(entry.name)] = [a.decode(errors="replace") for a in argv if a]
    return out


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process below it (a qemu wrapper script and what it ran)."""
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(c for c in _children(p) if c not in seen)
    for p in seen:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGKILL)


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


class Watchdog:
    """Kills the appliance's qemu when a bounded call overruns or SIGINT/SIGTERM arrives."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.fired: str | None = None  # why qemu was stopped
        self._lock = threading.Lock()
        self._deadline: float | None = None
        self._seconds = 0.0
        self._what = ""
        self._finding: set[int] | None = None  # children that existed before the launch
        self._pending: str | None = None  # a signal that came before qemu was found
        self._stop = False
        self._wake_r, self._wake_w = os.pipe()
        self._signals: dict[int, object] = {}
        self._old_wakeup: int | None = None
        self._catch_signals()
        self._thread = threading.Thread(target=self._run, name="guestfs-watchdog", daemon=True)
        self._thread.start()

    def _catch_signals(self) -> None:
        """Route SIGINT/SIGTERM to this thread too, so a blocked call can be ended.

        Python runs its handlers only when the main thread is back in bytecode; the C-level
        handler writes the signal number to the wakeup fd at once. Only done from the main
        thread, when nobody else (an event loop) owns the wakeup fd; undone by :meth:`stop`.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        os.set_blocking(self._wake_w, False)
        old = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        if old != -1:
            signal.set_wakeup_fd(old)
            return
        self._old_wakeup = old
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            self._signals[signal.SIGTERM] = signal.signal(signal.SIGTERM, _terminated)

    @contextlib.contextmanager
    def bound(self, seconds: float, what: str, *, find_qemu: bool = False) -> Iterator[None]:
        """Run the block with qemu killed after ``seconds`` (from qemu's start if finding it)."""
        if self.fired is not None:
            raise ApplianceStopped(f"the appliance was stopped earlier ({self.fired})")
        with self._lock:
            self._seconds, self._what = seconds, what
            if find_qemu:
                self._finding = set(_children(os.getpid()))
                self._deadline = None
            else:
                self._deadline = time.monotonic() + seconds
        try:
            yield
        finally:
            with self._lock:
                self._deadline = None
                self._finding = None

    def _run(self) -> None:
        while not self._stop:
            ready, _, _ = select.select([self._wake_r], [], [], POLL_S)
            if ready:
                try:
                    data = os.read(self._wake_r, 64)
                except OSError:
                    return
                got = {s for s in data if s in (signal.SIGINT, signal.SIGTERM)}
                if got:
                    with self._lock:
                        self._kill(f"stopped by {signal.Signals(min(got)).name}")
                continue
            with self._lock:
                if self._finding is not None and self.pid is None:
                    self._find_qemu()
                if self._deadline is not None and time.monotonic() > self._deadline:
                    self._kill(f"{self._what} did not finish in {self._seconds:g} s")

    def _find_qemu(self) -> None:
        assert self._finding is not None
        for pid, argv in _children(os.getpid()).items():
            if pid not in self._finding and "-kernel" in argv:
                self.pid = pid
                self._deadline = time.monotonic() + self._seconds
                if self._pending is not None:
                    self._kill(self._pending)
                return

    def _kill(self, why: str) -> None:
        if self.pid is None:
            self._pending = self._pending or why
            return
        if self.fired is not None:
            return
        self.fired = why
        kill_tree(self.pid)

    def reset(self) -> None:
        """Forget a killed launch, for the next one."""
        with self._lock:
            self.pid = None
            self.fired = None

    def stop(self) -> None:
        """End the thread and give back the signal handling it took."""
        if self._stop:
            return
        self._stop = True
        self._thread.join(timeout=2 * POLL_S + 1)
        if self._old_wakeup is not None:
            if threading.current_thread() is not threading.main_thread():
                return  # only the main thread may restore it: keep the pipe open meanwhile
            signal.set_wakeup_fd(self._old_wakeup)
            for signum, handler in self._signals.items():
                signal.signal(signum, handler)  # type: ignore[arg-type]
        os.close(self._wake_r)
        os.close(self._wake_w)


class BoundedGuest:
    """A guestfs handle whose every call ends within ``seconds``, or stops the appliance."""

    def __init__(self, g: Any, dog: Watchdog, seconds: float) -> None:
        self._g = g
        self._dog = dog
        self.seconds = seconds

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._g, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._dog.bound(self.seconds, name):
                try:
                    return attr(*args, **kwargs)
                except RuntimeError as exc:
                    if self._dog.fired is None:
                        raise
                    raise ApplianceTimeout(f"the appliance was stopped: {self._dog.fired}") from exc

        return call

    def close(self) -> None:
        """Close the handle (libguestfs stops qemu and removes its temporary directories)."""
        self._g.close()


def close_all(handles: list[Any], dog: Watchdog) -> None:
    """Close every handle (qemu stops, libguestfs' directories go), then the watchdog."""
    try:
        while handles:
            handles.pop().close()
    finally:
        dog.stop()


def tcg_note(tcg: bool, fallback: str | None) -> str | None:
    """The one note saying why the appliance is slow, or ``None`` when it runs under KVM.

    The cause is a fallback made now, one remembered from an earlier run, or no usable
    ``/dev/kvm`` at all (qemu then picks TCG silently).
    """
    if not tcg and os.access("/dev/kvm", os.R_OK | os.W_OK):
        return None
    reason = fallback or remembered_reason()
    return kvm_note(reason=None if reason == FALLBACK_DEFAULT else reason)


def _stuck(seconds: float) -> str:
    return (f"the appliance did not start under KVM within {seconds:g} s (qemu accepted "
            "/dev/kvm but the guest did not run)")


def launch(make: Callable[[bool], Any], tcg: bool, bounds: Bounds,
           dog: Watchdog) -> tuple[Any, bool, str | None]:
    """Launch ``make(tcg)`` within its bound; a KVM launch that fails or overruns is retried
    once under TCG. Returns ``(handle, tcg, reason)``, ``reason`` naming a fallback made now
    (and remembered for later runs)."""
    has_kvm = Path("/dev/kvm").exists()
    reason: str | None = None  # why KVM failed; the TCG retry then succeeds or raises
    while True:
        g = make(tcg)
        try:
            with dog.bound(bounds.launch if tcg else bounds.kvm_launch, "launch", find_qemu=True):
                g.launch()
        except RuntimeError as exc:
            g.close()
            fired = dog.fired
            if fired is not None and fired.startswith("stopped by"):
                raise ApplianceStopped(f"libguestfs launch {fired}") from exc
            # No /dev/kvm: qemu already ran TCG, and only an overrun is worth a forced-TCG retry.
            if tcg or (fired is None and not has_kvm):
                if fired is not None:
                    overrun = _launch_overrun(bounds.launch)
                    raise ApplianceTimeout(
                        overrun if reason is None else f"{reason}; under TCG, {overrun}"
                    ) from exc
                also = "" if reason is None else " (also under TCG)"
                raise ImageFSError(f"libguestfs launch failed{also}: {exc}") from exc
            reason = _stuck(bounds.kvm_launch) if fired is not None else FALLBACK_DEFAULT
            dog.reset()
            tcg = True
        except BaseException:
            g.close()
            raise
        else:
            if reason is not None:
                remember_tcg(reason)
            return g, tcg, reason


def _launch_overrun(seconds: float) -> str:
    return (f"the libguestfs appliance did not start within {seconds:g} s "
            f"(${LAUNCH_TIMEOUT_ENV} sets the bound)")


def kvm_note(device: str | Path = KVM_DEVICE, reason: str | None = None) -> str:
    """The one-line note for an appliance that runs under TCG: why, and what to do for KVM.

    ``reason`` names a fallback other than a failed KVM launch (one that overran its bound),
    made now or remembered from an earlier run.
    """
    if reason is not None:
        return (
            f"libguestfs: {reason}, so it runs under TCG (slower), now and in later runs; "
            f"libguestfs-test-tool shows why; remove {tcg_cache()} to try KVM again"
        )
    dev = Path(device)
    try:
        dev.stat()
        usable = os.access(dev, os.R_OK | os.W_OK)
    except FileNotFoundError:
        return (
            f"libguestfs: no {dev} here, so the appliance runs under TCG (slower); "
            "enable hardware or nested virtualisation on this machine for KVM speed"
        )
    except OSError:
        usable = False
    if not usable:
        return (
            f"libguestfs: no permission for {dev}, so the appliance runs under TCG (slower); "
            "add this user to the kvm group (sudo usermod -aG kvm $USER) and log in again"
        )
    return (
        f"libguestfs: KVM unusable here (qemu could not use {dev}), so the appliance runs under "
        "TCG (slower); libguestfs-test-tool shows why"
    )
