"""Writing HEPiX image lists for image files an endorser has at hand.

The catalogue publishes its own lists from its database (``export.py``); this is for the other
side: an endorser (or the demo, or a test) listing image files with their real SHA-512 and size
so that a catalogue can import them. Signing is a separate step (``openssl smime -sign``).
Spec: HEPiX image list format (hepix.imagelist), with AppDB's ``ad:vo``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from imageaudit.identity import sha512_file
from integrations.appdb.schemas import format_time


@dataclass(frozen=True)
class Endorser:
    dn: str
    ca: str
    creator: str
    email: str


def image_entry(identifier: str, path: Path, **fields: Any) -> dict[str, Any]:
    """One ``hv:image`` entry for the file at ``path``: its SHA-512 and size are computed, the
    other fields are :func:`listed_image`'s."""
    sha512, size = sha512_file(path)
    return listed_image(identifier, sha512, size, **fields)


def listed_image(identifier: str, sha512: str, size: int, *, title: str, description: str,
                 fmt: str, vo: str | None, uri: str, version: str = "1",
                 arch: str = "x86_64", osname: str = "Debian", osversion: str = "12",
                 hypervisor: str | None = None) -> dict[str, Any]:
    """One ``hv:image`` entry for an image of that SHA-512 and size.

    ``uri`` is where sites download it: an http(s) URL (catalogues refuse other schemes).
    """
    image: dict[str, Any] = {
        "dc:identifier": identifier, "dc:title": title, "dc:description": description,
        "hv:uri": uri, "hv:size": size, "sl:checksum:sha512": sha512,
        "hv:format": fmt, "hv:version": version, "sl:arch": arch, "sl:os": "Linux",
        "sl:osname": osname, "sl:osversion": osversion,
    }
    if hypervisor is not None:
        image["hv:hypervisor"] = hypervisor
    if vo is not None:
        image["ad:vo"] = vo
    return {"hv:image": image}


def image_list(entries: list[dict[str, Any]], *, identifier: str, title: str, description: str,
               endorser: Endorser, source: str, uri: str, now: datetime | None = None,
               valid: timedelta = timedelta(days=30), version: str = "1") -> dict[str, Any]:
    """The ``hv:imagelist`` document, created a minute ago and valid for ``valid``."""
    moment = now or datetime.now(UTC)
    return {"hv:imagelist": {
        "dc:identifier": identifier, "dc:title": title, "dc:description": description,
        "dc:date:created": format_time(moment - timedelta(minutes=1)),
        "dc:date:expires": format_time(moment + valid),
        "dc:source": source, "hv:version": version, "hv:uri": uri,
        "hv:endorser": {"hv:x509": {
            "dc:creator": endorser.creator, "hv:email": endorser.email,
            "hv:dn": endorser.dn, "hv:ca": endorser.ca,
        }},
        "hv:images": entries,
    }}
