"""The AppDB-like image catalogue: endorsed images, security reports, VO image lists.

Operators run it with ``imageaudit catalogue serve``; imageaudit publishes reports to it; sites
sync the per-VO HEPiX image lists it serves, which hold only the images that are *listed* (not
suspended, certification valid, level at or above the VO minimum).
"""

from __future__ import annotations

import os

# What the command line needs to build its parser lives here, so that building it (and
# ``imageaudit --help``) does not import the service, its database layer or its schemas.
API_PREFIX = "/api/v1"
DEFAULT_MIN_LEVEL = "basic"
AUTH_FAILURES = 10
AUTH_WINDOW = 60.0
DB_ENV = "IMAGEAUDIT_CATALOGUE_DB"
DEFAULT_DB = "sqlite:///catalogue.db"


def default_db() -> str:
    """The database URL from ``$IMAGEAUDIT_CATALOGUE_DB``, else ``sqlite:///catalogue.db``."""
    return os.environ.get(DB_ENV) or DEFAULT_DB
