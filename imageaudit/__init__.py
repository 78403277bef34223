"""imageaudit: audit VM and container images offline, certify them, publish the level."""

from __future__ import annotations

__version__ = "0.1.0"
