"""Confinement of the parser child: rlimits, its own network namespace, no privileges,
no new privileges, and a seccomp allow-list.

Order matters and is fixed by :func:`confine`: rlimits first; then an empty network namespace
(``unshare(CLONE_NEWNET)``; unprivileged, inside a new user namespace where the kernel allows
it); then, when running as root, every group and id dropped to ``nobody``; ``no_new_privs``;
finally the seccomp filter, after every module the parser needs has been imported (a later
import would need ``open``, which the filter kills: loudly, never a silently skipped
partition). What could not be applied is reported, never hidden: the caller puts it in the
open details, and a missing seccomp module is an error unless explicitly allowed.

seccomp comes from Debian's ``python3-seccomp`` (libseccomp's own binding).
"""

from __future__ import annotations

import ctypes
import os
import resource
from dataclasses import dataclass, field

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_SET_NO_NEW_PRIVS = 38
NOBODY = 65534

# What the parser does after the filter: read its pipe and the image (read, pread64, lseek),
# write its pipe, manage memory, and exit. Everything else kills the process.
ALLOWED_SYSCALLS = (
    "read", "pread64", "readv", "preadv", "lseek", "write", "writev", "close", "fstat",
    "newfstatat", "brk", "mmap", "munmap", "mremap", "madvise", "mprotect", "futex",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "getpid", "gettid",
    "clock_gettime", "gettimeofday", "getrandom", "exit", "exit_group", "fcntl",
)


@dataclass
class Settings:
    address_space: int = 2 * 1024**3
    cpu_seconds: int = 600
    open_files: int = 16
    seccomp: bool = True
    require_seccomp: bool = True
    network_namespace: bool = True
    drop_root: bool = True


@dataclass
class Applied:
    """What confinement the child really got (reported in the open details)."""

    rlimits: bool = False
    netns: str = "no"
    user: str = "unchanged"
    no_new_privs: bool = False
    seccomp: str = "no"
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"rlimits": self.rlimits, "netns": self.netns, "user": self.user,
                "no_new_privs": self.no_new_privs, "seccomp": self.seccomp}


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def set_rlimits(settings: Settings) -> None:
    limits = (
        (resource.RLIMIT_AS, settings.address_space),
        (resource.RLIMIT_CPU, settings.cpu_seconds),
        (resource.RLIMIT_FSIZE, 0),
        (resource.RLIMIT_CORE, 0),
    )
    for which, value in limits:
        resource.setrlimit(which, (value, value))


def limit_open_files(settings: Settings) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (settings.open_files, settings.open_files))


def new_netns(libc: ctypes.CDLL) -> str:
    """Enter an empty network namespace; say how (``netns``, ``userns+netns``) or ``no: why``."""
    if libc.unshare(CLONE_NEWNET) == 0:
        return "netns"
    first = ctypes.get_errno()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
        return "userns+netns"
    second = ctypes.get_errno()
    return f"no: unshare failed ({os.strerror(first)}; with a user namespace {os.strerror(second)})"


def drop_root() -> str:
    if os.geteuid() != 0:
        return "unchanged (not root)"
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)
    return "nobody"


def no_new_privs(libc: ctypes.CDLL) -> bool:
    return bool(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)


def load_seccomp() -> object | None:
    try:
        import seccomp  # type: ignore[import-not-found]
    except ImportError:
        return None
    module: object = seccomp
    return module


def apply_seccomp(seccomp: object) -> None:
    sc = seccomp
    filt = sc.SyscallFilter(defaction=sc.KILL_PROCESS)  # type: ignore[attr-defined]
    for name in ALLOWED_SYSCALLS:
        try:
            filt.add_rule(sc.ALLOW, name)  # type: ignore[attr-defined]
        except (RuntimeError, ValueError):
            continue  # not a system call on this architecture
    filt.load()


def confine(settings: Settings, preload: object = None) -> Applied:
    """Apply everything but seccomp (see :func:`finish`); return what was applied."""
    applied = Applied()
    libc = _libc()
    set_rlimits(settings)
    applied.rlimits = True
    if settings.network_namespace:
        applied.netns = new_netns(libc)
        if applied.netns.startswith("no"):
            # The seccomp filter still forbids every socket call; said, not hidden.
            applied.problems.append(f"no network namespace: {applied.netns[4:]}")
    if settings.drop_root:
        try:
            applied.user = drop_root()
        except OSError as exc:
            applied.problems.append(f"cannot drop root: {exc}")
    applied.no_new_privs = no_new_privs(libc)
    return applied


def finish(settings: Settings, applied: Applied) -> None:
    """Last step, after every import: the open-files limit and the seccomp filter."""
    limit_open_files(settings)
    if not settings.seccomp:
        applied.seccomp = "off (by setting)"
        return
    module = load_seccomp()
    if module is None:
        if settings.require_seccomp:
            raise RuntimeError("the seccomp module (Debian python3-seccomp) is missing; "
                               "the direct reader will not parse a disk without it")
        applied.seccomp = "no: python3-seccomp missing"
        return
    apply_seccomp(module)
    applied.seccomp = "kill-by-default allow-list"
