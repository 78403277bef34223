"""What the cloud commands talk about: which cloud, which objects, which steps, what was done."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from imageaudit.errors import UsageError
from integrations.appdb.schemas import INCIDENT_PATTERN

ProviderKind = Literal["openstack", "aws"]
Result = Literal["planned", "done", "already", "failed", "skipped"]
State = dict[str, Any]

SHA512_RE = re.compile(r"^[0-9a-f]{128}$")
AMI_RE = re.compile(r"^ami-[0-9a-f]{8,17}$")
# incident ids as the catalogue takes them in containment records
INCIDENT_RE = re.compile(INCIDENT_PATTERN)
# a clouds.yaml entry, an AWS profile and a region: what people type, nothing that could be a path
CLOUD_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
AWS_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")

# The property (OpenStack) or tag (AWS) every contained object and every evidence snapshot
# carries: the incident id, so that a second run finds what the first did.
INCIDENT_KEY = "imageaudit_incident"
REASON_KEY = "imageaudit_reason"

# What ``release`` does to undo each containment step; steps not named here (the evidence
# snapshots, the incident tags) are kept.
REVERSE = {
    "deactivate": "reactivate",
    "make-private": "restore-visibility",
    "protect": "restore-protection",
    "disable": "enable",
    "pause": "unpause",
    "suspend": "resume",
    "stop": "start",
    "lock": "unlock",
    "termination-protection": "restore-termination-protection",
}


@dataclass(frozen=True)
class Target:
    """A cloud to act on: a ``clouds.yaml`` entry, or ``aws:PROFILE@REGION``."""

    kind: ProviderKind
    name: str
    profile: str | None = None
    region: str | None = None

    def __str__(self) -> str:
        return self.name


def parse_target(text: str) -> Target:
    """``--cloud``: ``NAME`` (a clouds.yaml entry) or ``aws:PROFILE@REGION`` (``aws:@REGION``
    for the default credentials chain)."""
    if text.startswith("aws:"):
        rest = text[4:]
        profile, sep, region = rest.partition("@")
        if not sep or not AWS_REGION_RE.match(region):
            raise UsageError(f"--cloud {text!r}: AWS is given as aws:PROFILE@REGION "
                             "(e.g. aws:incident@eu-west-1, or aws:@eu-west-1 for the default "
                             "credentials)")
        if profile and not CLOUD_NAME_RE.match(profile):
            raise UsageError(f"--cloud {text!r}: {profile!r} is not an AWS profile name")
        return Target("aws", text, profile or None, region)
    if not CLOUD_NAME_RE.match(text):
        raise UsageError(f"--cloud {text!r}: not a clouds.yaml entry name (letters, digits, "
                         "'.', '_', '-') nor aws:PROFILE@REGION")
    return Target("openstack", text)


def site_name(target: Target) -> str:
    """The name a cloud goes by in the catalogue (its sites' and containment records' names
    take letters, digits, '.', '_' and '-'): a clouds.yaml entry's own name, or
    ``aws-PROFILE-REGION``."""
    if target.kind == "aws":
        return f"aws-{target.profile or 'default'}-{target.region}"[:63]
    return target.name


def check_incident(text: str) -> str:
    if not INCIDENT_RE.match(text):
        raise UsageError(f"--incident {text!r}: an incident id is 1-64 letters, digits and "
                         "'._:#+-', starting with a letter or digit")
    return text


@dataclass(frozen=True)
class ImageQuery:
    """What ``IMAGE`` names: a SHA-512 (a catalogue image's file), provider ids or names, and
    the catalogue's identifier of the image when it is known (sites that sync image lists tag
    the copies they upload with it)."""

    text: str
    sha512: str | None = None
    identifiers: tuple[str, ...] = ()
    cloud_ids: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.sha512:
            return f"SHA-512 {self.sha512[:16]}…"
        return self.text


@dataclass(frozen=True)
class CloudObject:
    """An object on the cloud: an image, a server or instance, a volume, a snapshot."""

    kind: Literal["image", "server", "instance", "volume", "snapshot"]
    id: str
    name: str = ""
    project: str = ""

    def label(self) -> str:
        shown = f"{self.kind} {self.id}"
        if self.name and self.name != self.id:
            shown += f" ({self.name})"
        if self.project:
            shown += f" in project {self.project}"
        return shown

    def as_json(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id, "name": self.name, "project": self.project}


@dataclass
class Step:
    """One change to one object, with how to see whether it is already made.

    ``read`` returns the object's relevant state now; ``reached`` says whether that state is the
    one the step wants; ``apply`` makes the change (and may wait for the cloud to finish it).
    The runner never trusts ``apply``: it reads the state back and judges it with ``reached``.
    """

    obj: CloudObject
    action: str
    describe: str
    read: Callable[[], State]
    reached: Callable[[State], bool]
    apply: Callable[[], object]
    # what a step that ran without error but did not take effect most likely means
    unmet: str = "the cloud does not show the change"
    note: str = ""
    # steps of the same object after this one are skipped when it fails (a pause before the
    # evidence snapshot exists would be a step out of the procedure's order)
    gate: bool = False


@dataclass(frozen=True)
class Record:
    """One line of the action log."""

    time: str
    cloud: str
    incident: str
    image: str
    obj: CloudObject
    action: str
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    result: Result
    reason: str = ""
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "time": self.time, "cloud": self.cloud, "incident": self.incident,
            "image": self.image, "object": self.obj.as_json(), "action": self.action,
            "before": dict(self.before), "after": dict(self.after), "result": self.result,
        }
        if self.reason:
            out["reason"] = self.reason
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class ContainOptions:
    incident: str
    reason: str
    # what happens to an instance after its snapshot: pause (memory kept), suspend, stop
    instance_action: Literal["pause", "suspend", "stop"] = "pause"
    deregister: bool = False  # AWS only: DeregisterImage after DisableImage (not reversible)
    wait_timeout: float = 600.0


class Held(NamedTuple):
    """What a cloud holds of one image file: copies, instances started from them, and the
    copies' ids (remembered by the site agent: a copy deleted later, e.g. by the site's
    image-list sync, still leads to its instances)."""

    copies: int
    instances: int
    ids: tuple[str, ...] = ()


@dataclass
class Found:
    """What a provider found for a query: the image copies and the instances of each."""

    images: list[CloudObject] = field(default_factory=list)
    instances: dict[str, list[CloudObject]] = field(default_factory=dict)
    # copies found that belong to the catalogue image's file, by SHA-512 (for the site report)
    sha512: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
