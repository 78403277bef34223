"""What the cloud commands ask of a running catalogue: an image's SHA-512 and identifier, the
withdrawn images, and taking the containment records and the site's holdings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from imageaudit.cloud.model import Record


@dataclass(frozen=True)
class CatalogueImage:
    image_id: str
    sha512: str
    vo: str = ""
    title: str = ""
    reason: str = ""


def lookup(url: str, image: str) -> CatalogueImage | None:
    raise NotImplementedError


def withdrawn(url: str, vo: str | None) -> list[CatalogueImage]:
    raise NotImplementedError


def send_records(url: str, token: str, image: str, records: Sequence[Record]) -> tuple[int, int]:
    raise NotImplementedError


def report_holdings(url: str, token: str, site: str,
                    holdings: dict[str, tuple[int, int]]) -> None:
    raise NotImplementedError
