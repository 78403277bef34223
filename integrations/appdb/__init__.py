"""The AppDB-like image catalogue: endorsed images, security reports, VO image lists.

Operators run it with ``imageaudit catalogue serve``; imageaudit publishes reports to it; sites
sync the per-VO HEPiX image lists it serves, which hold only the images that are *listed* (not
suspended, certification valid, level at or above the VO minimum).
"""

from __future__ import annotations

import os
from pathlib import Path

# What the command line needs to build its parser lives here, so that building it (and
# ``imageaudit --help``) does not import the service, its database layer or its schemas.
API_PREFIX = "/api/v1"
DEFAULT_MIN_LEVEL = "basic"
AUTH_FAILURES = 10
AUTH_WINDOW = 60.0
DB_ENV = "IMAGEAUDIT_CATALOGUE_DB"
_SQLITE = "sqlite:///"


def default_db() -> str:
    """The database URL from ``$IMAGEAUDIT_CATALOGUE_DB``, else
    ``sqlite:///$XDG_DATA_HOME/imageaudit/catalogue.db`` (``~/.local/share`` when unset): one
    catalogue wherever the command is run from, not one per working directory."""
    return os.environ.get(DB_ENV) or f"{_SQLITE}{_data_home() / 'imageaudit' / 'catalogue.db'}"


def _data_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or ""
    return Path(base) if Path(base).is_absolute() else Path.home() / ".local" / "share"


def prepare_db(url: str) -> None:
    """Make the default database's directory (``$XDG_DATA_HOME/imageaudit``) when it is
    missing; a directory the user named is left to them, so that a typo is an error."""
    if url == default_db() and url.startswith(_SQLITE):
        Path(url.removeprefix(_SQLITE)).parent.mkdir(parents=True, exist_ok=True)
