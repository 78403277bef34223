"""The AppDB-like image catalogue: endorsed images, security reports, VO image lists.

Operators run it with ``imageaudit catalogue serve``; imageaudit publishes reports to it; sites
sync the per-VO HEPiX image lists it serves, which hold only the images that are *listed* (not
suspended, certification valid, level at or above the VO minimum).
"""

from __future__ import annotations

API_PREFIX = "/api/v1"
DEFAULT_MIN_LEVEL = "basic"
