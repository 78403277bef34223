"""The cloud commands as library calls: contain (or plan) one image, release an incident, and
sync a site with the catalogue's withdrawals. The command line (``imageaudit.cli.cloud``) only
parses options, asks for confirmation and maps outcomes to exit codes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from imageaudit.cloud.actionlog import ActionLog
from imageaudit.cloud.model import (
    SHA512_RE,
    ContainOptions,
    Found,
    ImageQuery,
    Record,
    Target,
)
from imageaudit.cloud.provider import Provider
from imageaudit.cloud.steps import Echo, run_steps


def connect(target: Target) -> Provider:
    """The provider for ``target``, connected with the user's own configuration
    (``clouds.yaml`` / ``OS_*`` for OpenStack, the AWS profile chain for AWS)."""
    if target.kind == "aws":
        from imageaudit.cloud.aws import AwsProvider

        return AwsProvider(target)
    from imageaudit.cloud.openstack import OpenStackProvider

    return OpenStackProvider(target)


def image_query(text: str, *, sha512: str | None = None,
                identifiers: Sequence[str] = ()) -> ImageQuery:
    """``IMAGE`` as typed: a SHA-512, an AMI id, or a Glance id or name; ``sha512`` and
    ``identifiers`` come from the catalogue when it knows the image."""
    text = text.strip()
    if SHA512_RE.match(text.lower()):
        return ImageQuery(text, sha512=text.lower(), identifiers=tuple(identifiers))
    # an AMI id, a Glance id or a Glance name; a catalogue id matches nothing on the cloud but
    # is harmless there
    return ImageQuery(text, sha512=sha512, identifiers=tuple(identifiers), cloud_ids=(text,))


@dataclass
class Outcome:
    found: Found
    records: list[Record] = field(default_factory=list)

    @property
    def failed(self) -> list[Record]:
        return [r for r in self.records if r.result in ("failed", "skipped")]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.records:
            out[r.result] = out.get(r.result, 0) + 1
        return out


def contain(provider: Provider, query: ImageQuery, options: ContainOptions, *, act: bool,
            log: ActionLog | None, image_label: str, echo: Echo | None = None,
            found: Found | None = None) -> Outcome:
    """Find every copy of the image and its instances (or take ``found``), judge each
    containment step (the plan) and, with ``act``, take them. The command line shows the plan
    and asks before it calls this with ``act``."""
    if found is None:
        found = provider.find(query)
    steps = provider.contain_steps(found, options)
    cloud = provider.target.name
    if not act:
        return Outcome(found, run_steps(steps, act=False, cloud=cloud,
                                        incident=options.incident, image=image_label,
                                        log=None, echo=echo))
    return Outcome(found, run_steps(steps, act=True, cloud=cloud, incident=options.incident,
                                    image=image_label, log=log, echo=echo))


def release(provider: Provider, records: Sequence[Record], incident: str, *, act: bool,
            log: ActionLog | None, echo: Echo | None = None) -> list[Record]:
    """Undo what the log says ``contain`` did for ``incident`` on this cloud."""
    cloud = provider.target.name
    mine = [r for r in records if r.cloud == cloud and r.incident == incident]
    steps = provider.release_steps(mine)
    image = mine[0].image if mine else ""
    return run_steps(steps, act=act, cloud=cloud, incident=incident, image=image, log=log,
                     echo=echo)
