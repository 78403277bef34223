"""What the cloud commands ask of a running catalogue (through the site client,
:mod:`imageaudit.cloud.site_client`): an image's SHA-512, the withdrawn images, and taking
the containment records and the site's holdings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from imageaudit.cloud import site_client
from imageaudit.cloud.model import Held, Record
from integrations.appdb.listing import NEVER_AUDITED, REASONS_SEPARATOR


@dataclass(frozen=True)
class CatalogueImage:
    image_id: str
    sha512: str
    vo: str = ""
    title: str = ""
    reason: str = ""


def lookup(url: str, image: str) -> CatalogueImage | None:
    """The catalogue's image ``image`` (its id), None when the catalogue does not know it."""
    sha = site_client.image_sha512(url, image)
    return None if sha is None else CatalogueImage(image, sha)


def withdrawn(url: str, vo: str | None) -> list[CatalogueImage]:
    """The images the catalogue withdrew from its lists (suspended, below the VO's minimum,
    certification or entry expired), with why. An image not audited yet is not listed either,
    but was never withdrawn: it is left alone."""
    out = []
    for w in site_client.withdrawn_images(url, vo):
        if w.reason.split(REASONS_SEPARATOR) == [NEVER_AUDITED]:
            continue
        out.append(CatalogueImage(w.image_id, w.sha512, w.vo, w.title, w.reason))
    return out


def send_records(url: str, token: str, site: str, image: str,
                 records: Sequence[Record]) -> tuple[int, int]:
    """Send ``records`` as ``image``'s containment record, under the site's name; (new,
    already there). Plans are not sent."""
    docs = []
    for r in records:
        if r.result == "planned":
            continue
        doc = r.as_json()
        doc["cloud"] = site
        doc.pop("note", None)  # a fixed remark of the step (e.g. crash-consistent), not state
        docs.append(doc)
    if not docs:
        return 0, 0
    return site_client.send_containment(url, token, image, docs)


def report_holdings(url: str, token: str, site: str, holdings: dict[str, Held]) -> None:
    site_client.report_holdings(url, token, site, [
        {"sha512": sha, "copies": h.copies, "instances": h.instances}
        for sha, h in sorted(holdings.items())])
