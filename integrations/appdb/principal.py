"""Who acts on the catalogue, and how a refused operation is said: shared by every part of it."""

from __future__ import annotations

from dataclasses import dataclass


class CatalogueError(Exception):
    """A refused operation; ``status`` is the HTTP status the API answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Principal:
    """Who acts: a token's name and role, or a local operator (``cli:``)."""

    name: str
    role: str
