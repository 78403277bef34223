"""Turn the errors a user can hit into one clear line with what to do, instead of a traceback."""

from __future__ import annotations

from imageaudit.imagefs import ImageFSError

# Exit codes CI can rely on (the CLI maps outcomes to these; library code raises UsageError).
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_BLOCKED = 3


class UsageError(Exception):
    """A problem the user can fix: bad option, missing file, unreadable image."""


GUESTFS_MISSING = (
    "libguestfs is not available to this Python: install the Debian packages "
    "python3-guestfs and libguestfs-tools (scripts/bootstrap.sh does) and run imageaudit "
    "from a virtual environment made with --system-site-packages"
)


def _guestfs_missing(exc: BaseException | None) -> bool:
    # The opener wraps the ImportError in an ImageFSError; look through the chain.
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, ImportError) and exc.name in ("guestfs", "libguestfsmod"):
            return True
        exc = exc.__cause__
        seen += 1
    return False


def describe_user_error(exc: BaseException) -> str | None:
    """One line for an error the user can act on, or ``None`` for an internal failure."""
    from imageaudit.certify import LevelsError
    from imageaudit.rules import RuleSetError
    from imageaudit.waivers import WaiverError

    if _guestfs_missing(exc):
        return GUESTFS_MISSING
    if isinstance(exc, ImageFSError):
        return str(exc)
    if isinstance(exc, (RuleSetError, LevelsError, WaiverError)):
        return "\n  ".join(["configuration is not valid:", *exc.errors])
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename}: no such file or directory"
    if isinstance(exc, PermissionError):
        return f"{exc.filename}: permission denied"
    return None
