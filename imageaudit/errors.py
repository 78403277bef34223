"""Turn the errors a user can hit into one clear line with what to do, instead of a traceback."""

from __future__ import annotations

from imageaudit.imagefs import ImageFSError


def describe_user_error(exc: BaseException) -> str | None:
    """One line for an error the user can act on, or ``None`` for an internal failure."""
    from imageaudit.certify import LevelsError
    from imageaudit.rules import RuleSetError
    from imageaudit.waivers import WaiverError

    if isinstance(exc, ImageFSError):
        return str(exc)
    if isinstance(exc, (RuleSetError, LevelsError, WaiverError)):
        return "\n  ".join(["configuration is not valid:", *exc.errors])
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename}: no such file or directory"
    if isinstance(exc, PermissionError):
        return f"{exc.filename}: permission denied"
    if isinstance(exc, ModuleNotFoundError) and exc.name == "guestfs":
        return (
            "libguestfs is not available to this Python: install the Debian packages "
            "python3-guestfs and libguestfs-tools (scripts/bootstrap.sh does) and run imageaudit "
            "from a virtual environment made with --system-site-packages"
        )
    return None
