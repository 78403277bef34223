"""The site agent: contain, on one cloud, every image the catalogue has withdrawn, and tell the
catalogue which image files the site holds and how many instances run from each.

Each withdrawn image is its own incident, ``withdrawn:IMAGE_ID``, with the catalogue's reason;
its steps go to that incident's action log and, with a token, to the catalogue as the image's
containment record. Run from cron or a systemd timer: a run repeats nothing an earlier one did.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from imageaudit.cloud import catalogue
from imageaudit.cloud.actionlog import ActionLog
from imageaudit.cloud.model import ContainOptions, ImageQuery, Record
from imageaudit.cloud.provider import Provider
from imageaudit.cloud.run import contain
from imageaudit.cloud.steps import error_text, print_record

INCIDENT_PREFIX = "withdrawn:"


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


def sync(provider: Provider, url: str, *, act: bool, vo: str | None, site: str,
         token: str | None, log_for: Callable[[str], Path],
         instance_action: Literal["pause", "suspend", "stop"] = "pause",
         wait_timeout: float = 600.0) -> SyncResult:
    result = SyncResult()
    cloud = provider.target.name
    images = catalogue.withdrawn(url, vo)
    result.withdrawn = len(images)
    print(f"{url}: {len(images)} withdrawn image{'' if len(images) == 1 else 's'}"
          f"{f' in VO {vo}' if vo else ''}")
    for image in images:
        incident = f"{INCIDENT_PREFIX}{image.image_id}"[:64]
        options = ContainOptions(incident=incident,
                                 reason=f"withdrawn by the catalogue: {image.reason}",
                                 instance_action=instance_action, wait_timeout=wait_timeout)
        query = ImageQuery(image.image_id, sha512=image.sha512, identifiers=(image.image_id,))
        try:
            found = provider.find(query)
        except Exception as exc:  # one image's failure must not stop the others
            result.errors.append(f"{image.image_id}: {error_text(exc)}")
            print(f"error: {image.image_id}: cannot look for copies: {error_text(exc)}",
                  file=sys.stderr)
            continue
        if not found.images:
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
    _report(provider, url, site, token, result)
    for e in result.errors:
        print(f"error: {e}", file=sys.stderr)
    return result


def _report(provider: Provider, url: str, site: str, token: str | None,
            result: SyncResult) -> None:
    if not token:
        print("holdings not reported to the catalogue: no token (--token or "
              "$IMAGEAUDIT_CATALOGUE_TOKEN)", file=sys.stderr)
        return
    try:
        holdings = provider.holdings()
        catalogue.report_holdings(url, token, site, holdings)
    except Exception as exc:
        result.errors.append(f"holdings not reported: {error_text(exc)}")
        return
    result.holdings_reported = True
    print(f"reported to the catalogue as site {site}: {len(holdings)} image files, "
          f"{sum(i for _, i in holdings.values())} instances")
