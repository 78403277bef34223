"""The site agent: contain, on one cloud, every image the catalogue has withdrawn, and tell the
catalogue which image files the site holds and how many instances run from each.

Each withdrawn image is its own incident, ``withdrawn:IMAGE_ID``, with the catalogue's reason;
its steps go to that incident's action log and, with a token, to the catalogue as the image's
containment record. Run from cron or a systemd timer: a run repeats nothing an earlier one did.

The agent remembers the ids of the copies it has seen of each image file
(``images-seen.json`` in the cloud's state directory): a site's image-list sync (atrope) deletes
a withdrawn image from Glance, and the instances started from it are then found by the id the
agent saw before.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from imageaudit.cloud import catalogue
from imageaudit.cloud.actionlog import ActionLog
from imageaudit.cloud.model import SHA512_RE, ContainOptions, Held, ImageQuery, Record
from imageaudit.cloud.provider import Provider
from imageaudit.cloud.run import contain
from imageaudit.cloud.steps import error_text, print_record
from imageaudit.errors import UsageError

INCIDENT_PREFIX = "withdrawn:"
SEEN_FILE = "images-seen.json"
MAX_SEEN = 100_000  # image files remembered; ids per file are few


@dataclass
class SyncResult:
    withdrawn: int = 0
    contained: int = 0
    records: list[Record] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    holdings_reported: bool = False

    @property
    def failed(self) -> bool:
        return bool(self.errors) or any(r.result in ("failed", "skipped") for r in self.records)


class SeenImages:
    """SHA-512 → the ids of the copies of that file seen on this cloud, kept in a JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ids: dict[str, list[str]] = {}
        if path.exists():
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(raw, dict) or not all(
                        SHA512_RE.match(k) and isinstance(v, list)
                        and all(isinstance(i, str) for i in v) for k, v in raw.items()):
                    raise ValueError("not an object of SHA-512s to lists of ids")
            except (OSError, ValueError) as exc:
                raise UsageError(f"{path}: the agent's memory of image copies is unreadable "
                                 f"({exc}); move it away to start a new one") from None
            self.ids = raw

    def remember(self, holdings: dict[str, Held]) -> None:
        for sha, held in holdings.items():
            known = self.ids.setdefault(sha, [])
            known.extend(i for i in held.ids if i not in known)
        if len(self.ids) > MAX_SEEN:  # oldest first out (dicts keep insertion order)
            for sha in list(self.ids)[: len(self.ids) - MAX_SEEN]:
                del self.ids[sha]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps(self.ids, sort_keys=True), encoding="utf-8")
        partial.replace(self.path)


def sync(provider: Provider, url: str, *, act: bool, vo: str | None, site: str,
         token: str | None, log_for: Callable[[str], Path], state: Path,
         instance_action: Literal["pause", "suspend", "stop"] = "pause",
         wait_timeout: float = 600.0) -> SyncResult:
    result = SyncResult()
    cloud = provider.target.name
    seen = SeenImages(state / SEEN_FILE)
    holdings: dict[str, Held] | None
    try:
        holdings = provider.holdings(seen.ids)
        seen.remember(holdings)
    except Exception as exc:  # containment goes on without the holdings
        holdings = None
        result.errors.append(f"cannot list what this cloud holds: {error_text(exc)}")
    images = catalogue.withdrawn(url, vo)
    result.withdrawn = len(images)
    print(f"{url}: {len(images)} withdrawn image{'' if len(images) == 1 else 's'}"
          f"{f' in VO {vo}' if vo else ''}")
    for image in images:
        incident = f"{INCIDENT_PREFIX}{image.image_id}"[:64]
        options = ContainOptions(incident=incident,
                                 reason=f"withdrawn by the catalogue: {image.reason}",
                                 instance_action=instance_action, wait_timeout=wait_timeout)
        query = ImageQuery(image.image_id, sha512=image.sha512, identifiers=(image.image_id,),
                           cloud_ids=tuple(seen.ids.get(image.sha512, ())))
        try:
            found = provider.find(query)
        except Exception as exc:  # one image's failure must not stop the others
            result.errors.append(f"{image.image_id}: {error_text(exc)}")
            print(f"error: {image.image_id}: cannot look for copies: {error_text(exc)}",
                  file=sys.stderr)
            continue
        for note in found.notes:
            print(f"note: {note}", file=sys.stderr)
        if not found.images and not any(found.instances.values()):
            continue
        result.contained += 1
        n_img, n_inst = len(found.images), sum(len(v) for v in found.instances.values())
        print(f"{image.title or image.image_id} ({image.vo}): withdrawn ({image.reason}); "
              f"{n_img} cop{'y' if n_img == 1 else 'ies'}, {n_inst} instance"
              f"{'' if n_inst == 1 else 's'} on {cloud}")
        log = ActionLog(log_for(incident))
        outcome = contain(provider, query, options, act=act, log=log, found=found,
                          image_label=image.image_id, echo=print_record)
        result.records.extend(outcome.records)
        if act and token and outcome.records:
            try:
                catalogue.send_records(url, token, site, image.image_id, outcome.records)
            except Exception as exc:
                result.errors.append(f"{image.image_id}: containment record not sent: "
                                     f"{error_text(exc)}")
    if not act and result.records:
        print("nothing was changed (plan); sync --yes takes these steps")
    _report(holdings, url, site, token, result)
    for e in result.errors:
        print(f"error: {e}", file=sys.stderr)
    return result


def _report(holdings: dict[str, Held] | None, url: str, site: str, token: str | None,
            result: SyncResult) -> None:
    if holdings is None:
        return
    if not token:
        print("holdings not reported to the catalogue: no token (--token or "
              "$IMAGEAUDIT_CATALOGUE_TOKEN)", file=sys.stderr)
        return
    try:
        catalogue.report_holdings(url, token, site, holdings)
    except Exception as exc:
        result.errors.append(f"holdings not reported: {error_text(exc)}")
        return
    result.holdings_reported = True
    print(f"reported to the catalogue as site {site}: {len(holdings)} image files, "
          f"{sum(h.instances for h in holdings.values())} instances")
