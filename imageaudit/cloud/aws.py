"""AWS EC2 (boto3): the AMI copies of a withdrawn image in one account and region, and the
instances launched from them, contained the way SEC01 asks (evidence snapshot, isolate, never
destroy), each step judged on the state EC2 reports back.

Finding copies. An endorser or site that imports a catalogue image as an AMI tags it with the
image file's SHA-512 (:data:`SHA512_TAG`) and, when it knows it, the catalogue's identifier of
the image (:data:`CATALOGUE_ID_TAG`)::

    aws ec2 create-tags --resources ami-0abc… \\
        --tags Key=imageaudit:sha512,Value=<sha512 of the image file> \\
               Key=imageaudit:catalogue-id,Value=<catalogue identifier>

``find`` looks for the account's own AMIs (``Owners=self``) carrying either tag, disabled ones
included (a second run finds what the first disabled), plus any AMI named by id.

Containment, per AMI: tag it with the incident, disable it (DisableImage: reversible, blocks
launches, also removes its launch permissions); per instance: snapshot every EBS volume (the
gate: nothing else is done to an instance without its evidence), stop it (hibernate when the
instance is configured for it and a pause or suspend was asked: EC2 has neither), protect it
from termination, tag it. Only when asked, and only once every instance of the AMI is
contained, deregister the AMI (not reversible). Nothing is terminated or deleted: release
enables, starts and restores termination protection, and keeps snapshots and tags as evidence.

The evidence snapshots are waited for until DescribeSnapshots lists them as ``pending`` or
``completed``, not until they complete: EBS fixes a snapshot's point in time when the request
is accepted, the volume may change while it is pending without changing the snapshot, and
completion can take hours on a large volume. A snapshot in ``error`` fails the step.

Endpoints: boto3 honours ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_EC2`` (the tests point it at
moto_server). See the EC2 API reference: DescribeImages, DisableImage, EnableImage,
DeregisterImage, CreateSnapshots, CreateSnapshot, StopInstances (Hibernate), StartInstances,
ModifyInstanceAttribute (DisableApiTermination), CreateTags.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

from imageaudit.cloud.model import (
    AMI_RE,
    SHA512_RE,
    CloudObject,
    ContainOptions,
    Found,
    Held,
    ImageQuery,
    Record,
    State,
    Step,
    Target,
)
from imageaudit.cloud.steps import error_text
from imageaudit.errors import UsageError

# Tags on an imported AMI naming the catalogue image it is a copy of.
SHA512_TAG = "imageaudit:sha512"
CATALOGUE_ID_TAG = "imageaudit:catalogue-id"
# Tags containment puts on AMIs, instances and evidence snapshots (AWS tag keys take ':', the
# OpenStack property names INCIDENT_KEY/REASON_KEY cannot).
INCIDENT_TAG = "imageaudit:incident"
REASON_TAG = "imageaudit:reason"
# on evidence snapshots: which instance and which AMI they were taken for
INSTANCE_TAG = "imageaudit:instance"
IMAGE_TAG = "imageaudit:image"

TAG_VALUE_MAX = 256
# EC2 caps the values of one filter; AMI ids are sent in batches of this many
FILTER_VALUES_MAX = 100

LIVE_STATES = ("pending", "running", "shutting-down", "stopping", "stopped")
HELD_STATES = ("pending", "running", "stopping", "stopped")
GONE_STATES = ("shutting-down", "terminated")
STOPPED_STATES = ("stopping", "stopped")
STARTED_STATES = ("pending", "running")
USABLE_SNAPSHOT = ("pending", "completed")
NO_IMAGE_STATES = ("absent", "deregistered")

# Short timeouts and bounded retries: an incident run must say a cloud is unreachable within
# seconds, not hang; "standard" retries throttling and transient faults only.
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=30,
                       retries={"max_attempts": 4, "mode": "standard"},
                       user_agent_extra="imageaudit-cloud")

SNAPSHOT_NOTE = ("a snapshot of a running instance's volumes is only crash-consistent: it holds "
                 "what was on disk when it was requested, not what the system had cached; it is "
                 "waited for until EC2 lists it pending or completed (its point in time is fixed "
                 "then), not until it completes")
HIBERNATE_NOTE = ("EC2 has no pause: hibernation writes the memory to the root volume after the "
                  "evidence snapshot was taken; snapshot the root volume again before release "
                  "starts the instance if the memory is wanted")
NO_PAUSE_NOTE = ("EC2 has no pause or suspend, and hibernation is not configured on this "
                 "instance: stopping it loses its memory")
DISABLE_NOTE = ("DisableImage also removes every launch permission (the AMI becomes private); "
                "release enables it but does not share it again: the accounts it was shared "
                "with are in this step's 'before'")
DEREGISTER_NOTE = ("not reversible: the AMI id is gone for good and release cannot bring it back "
                   "(its backing snapshots are kept)")
PROTECT_NOTE = ("termination protection refuses TerminateInstances; it does not stop Auto "
                "Scaling or a Spot interruption from terminating the instance")


class AwsError(Exception):
    """A step EC2 cannot take as asked (the reason is the whole message)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AwsProvider:
    """The :class:`~imageaudit.cloud.provider.Provider` for one AWS account and region."""

    def __init__(self, target: Target, *, session: Any = None, wait_timeout: float = 600.0,
                 poll: float = 2.0) -> None:
        self.target = target
        self.wait_timeout = wait_timeout  # release's wait for a stopping instance
        self.poll = poll
        try:
            session = session or boto3.Session(profile_name=target.profile,
                                               region_name=target.region)
        except ProfileNotFound as exc:
            raise UsageError(f"--cloud {target}: {exc}") from None
        self.ec2: Any = session.client("ec2", region_name=target.region, config=CLIENT_CONFIG)
        # instances as find() saw them: contain_steps words the stop step from them
        self._seen: dict[str, dict[str, Any]] = {}

    # -- finding ---------------------------------------------------------------------------

    def find(self, query: ImageQuery) -> Found:
        """The AMIs named by id, and the account's own AMIs tagged with the query's SHA-512 or
        catalogue identifier (disabled ones too), each with its instances that are not
        terminated; an AMI id EC2 no longer lists still has its instances looked for."""
        try:
            return self._find(query)
        except (ClientError, BotoCoreError) as exc:
            raise UsageError(f"{self.target}: cannot list AMIs and instances: "
                             f"{error_text(exc)}") from None

    def _find(self, query: ImageQuery) -> Found:
        found = Found()
        images: dict[str, dict[str, Any]] = {}
        unlisted: list[str] = []
        for ami in query.cloud_ids:
            image = self._image(ami)
            if image is None:
                unlisted.append(ami)
                found.notes.append(
                    f"{ami} is not listed by DescribeImages (deregistered, or not visible to "
                    "these credentials): the instances launched from it are still looked for")
            else:
                images[ami] = image
        if query.sha512:
            for image in self._owned([{"Name": f"tag:{SHA512_TAG}", "Values": [query.sha512]}]):
                images[image["ImageId"]] = image
        if query.identifiers:
            wanted = [{"Name": f"tag:{CATALOGUE_ID_TAG}", "Values": list(query.identifiers)}]
            for image in self._owned(wanted):
                images[image["ImageId"]] = image
        for ami, image in sorted(images.items()):
            found.images.append(CloudObject(kind="image", id=ami, name=image.get("Name", ""),
                                            project=image.get("OwnerId", "")))
            sha512 = _tags(image).get(SHA512_TAG, "").lower()
            if SHA512_RE.match(sha512):
                found.sha512[ami] = sha512
        launched_from = self._instances([*images, *unlisted], LIVE_STATES)
        for ami, launched in sorted(launched_from.items()):
            found.instances[ami] = []
            for owner, inst in launched:
                self._seen[inst["InstanceId"]] = inst
                found.instances[ami].append(_instance_object(inst, owner))
        return found

    def holdings(self, remembered: Mapping[str, Sequence[str]] | None = None
                 ) -> dict[str, Held]:
        """Every AMI of the account carrying a SHA-512 tag (disabled ones too: still a copy),
        with the instances launched from it that are not shutting down or terminated. A tag
        value that is not a SHA-512 names no image file and is left out."""
        try:
            copies = {img["ImageId"]: _tags(img)[SHA512_TAG].lower()
                      for img in self._owned([{"Name": "tag-key", "Values": [SHA512_TAG]}])}
            # AMIs seen before and gone since (deregistered): their instances still count
            gone = {ami: sha for sha, known in (remembered or {}).items() for ami in known
                    if ami not in copies and AMI_RE.match(ami)}
            launched = self._instances([*copies, *gone], HELD_STATES)
        except (ClientError, BotoCoreError) as exc:
            raise UsageError(f"{self.target}: cannot list AMIs and instances: "
                             f"{error_text(exc)}") from None
        held: dict[str, Held] = {}
        for ami, sha512 in copies.items():
            if not SHA512_RE.match(sha512):
                continue
            was = held.get(sha512, Held(0, 0))
            held[sha512] = Held(was.copies + 1, was.instances + len(launched.get(ami, [])),
                                (*was.ids, ami))
        for ami, sha512 in gone.items():
            if launched.get(ami):
                was = held.get(sha512, Held(0, 0))
                held[sha512] = Held(was.copies, was.instances + len(launched[ami]), was.ids)
        return held

    # -- containment -----------------------------------------------------------------------

    def contain_steps(self, found: Found, options: ContainOptions) -> list[Step]:
        """Per AMI tag and disable; per instance snapshot (gate), stop, termination protection,
        tag; deregistration (``options.deregister``) last, so that an interrupted run has not
        removed the AMI by which the next run finds its instances."""
        steps: list[Step] = []
        for image in found.images:
            steps.append(self._tag_step(image, options, self._image_tags))
            steps.append(self._disable_step(image))
        for ami, instances in found.instances.items():
            for inst in instances:
                steps.append(self._snapshot_step(inst, ami, options))
                steps.append(self._stop_step(inst, options))
                steps.append(self._protect_step(inst))
                steps.append(self._tag_step(inst, options, self._instance_tags))
        if options.deregister:
            steps.extend(self._deregister_step(image, options) for image in found.images)
        return steps

    def _tag_step(self, obj: CloudObject, options: ContainOptions,
                  read: Callable[[str], State]) -> Step:
        wanted = {INCIDENT_TAG: options.incident, REASON_TAG: options.reason[:TAG_VALUE_MAX]}

        def apply() -> None:
            self.ec2.create_tags(Resources=[obj.id], Tags=_tag_list(wanted))

        return Step(obj=obj, action="tag",
                    describe=f"tag the {_kind(obj)} with the incident and its reason "
                             f"({INCIDENT_TAG}, {REASON_TAG})",
                    read=lambda: read(obj.id),
                    reached=lambda s: all(s.get(k) == v for k, v in wanted.items()),
                    apply=apply, unmet="CreateTags returned but the tags are not there")

    def _disable_step(self, image: CloudObject) -> Step:
        return Step(obj=image, action="disable",
                    describe="disable the AMI (DisableImage): no instance can be launched from "
                             "it; reversible (EnableImage)",
                    read=lambda: self._image_state(image.id, sharing=True),
                    reached=lambda s: s.get("state") == "disabled",
                    apply=lambda: self.ec2.disable_image(ImageId=image.id),
                    unmet="DisableImage returned but the AMI is not disabled",
                    note=DISABLE_NOTE)

    def _deregister_step(self, image: CloudObject, options: ContainOptions) -> Step:
        def apply() -> None:
            waiting = self._uncontained(image.id, options.incident)
            if waiting:
                raise AwsError("not deregistered: instances launched from it are not contained "
                               f"yet ({', '.join(waiting)}); without the AMI the next run "
                               "cannot find them by the image")
            # DeleteAssociatedSnapshots stays off: the backing snapshots are evidence too
            self.ec2.deregister_image(ImageId=image.id)

        return Step(obj=image, action="deregister",
                    describe="deregister the AMI (DeregisterImage), after every instance "
                             "launched from it is contained",
                    read=lambda: self._image_state(image.id),
                    reached=lambda s: s.get("state") in NO_IMAGE_STATES,
                    apply=apply, unmet="DeregisterImage returned but the AMI is still listed",
                    note=DEREGISTER_NOTE)

    def _snapshot_step(self, inst: CloudObject, ami: str, options: ContainOptions) -> Step:
        tags = {INCIDENT_TAG: options.incident, REASON_TAG: options.reason[:TAG_VALUE_MAX],
                INSTANCE_TAG: inst.id, IMAGE_TAG: ami}

        def read() -> State:
            return self._evidence_state(inst.id, options.incident)

        def apply() -> None:
            state = read()
            if state["state"] in GONE_STATES:
                raise AwsError(f"the instance is {state['state']}: nothing left to snapshot")
            volumes: dict[str, dict[str, str]] = state["volumes"]
            if not volumes:
                raise AwsError("the instance has no EBS volume (instance store only), which "
                               "EC2 cannot snapshot: image it from inside")
            missing = [v for v, s in volumes.items() if s["snapshot_state"] not in USABLE_SNAPSHOT]
            spec = [{"ResourceType": "snapshot", "Tags": _tag_list(tags)}]
            description = f"imageaudit evidence: incident {options.incident}, instance {inst.id}"
            if len(missing) == len(volumes):
                # one request: every volume's snapshot is of the same instant
                made = self.ec2.create_snapshots(
                    InstanceSpecification={"InstanceId": inst.id, "ExcludeBootVolume": False},
                    Description=description, TagSpecifications=spec)["Snapshots"]
                ids = [s["SnapshotId"] for s in made]
            else:
                # volumes attached since the last run (or whose snapshot failed) only
                ids = [self.ec2.create_snapshot(VolumeId=v, Description=description,
                                                TagSpecifications=spec)["SnapshotId"]
                       for v in missing]
            self._wait(f"evidence snapshots {', '.join(ids)}", lambda: self._listed(ids),
                       options.wait_timeout)

        return Step(obj=inst, action="snapshot",
                    describe="snapshot every EBS volume of the instance (CreateSnapshots), "
                             "tagged with the incident and the instance",
                    read=read, reached=_evidence_complete, apply=apply,
                    unmet="not every EBS volume has an evidence snapshot pending or completed",
                    note=SNAPSHOT_NOTE, gate=True)

    def _stop_step(self, inst: CloudObject, options: ContainOptions) -> Step:
        wants_memory = options.instance_action in ("pause", "suspend")
        seen = self._seen.get(inst.id) or self._describe_quietly(inst.id)
        if not wants_memory:
            describe, note = "stop the instance (StopInstances): its memory is lost", ""
        elif seen is not None and _hibernation(seen):
            describe = ("hibernate the instance (StopInstances Hibernate=true): its memory is "
                        "kept on its root volume and comes back when it is started")
            note = HIBERNATE_NOTE
        else:
            describe, note = "stop the instance (StopInstances)", NO_PAUSE_NOTE

        def apply() -> None:
            now = self._instance(inst.id)
            state = now["State"]["Name"]
            if state in GONE_STATES:
                raise AwsError(f"the instance is {state}")
            self.ec2.stop_instances(InstanceIds=[inst.id],
                                    Hibernate=wants_memory and _hibernation(now))

        return Step(obj=inst, action="stop", describe=describe,
                    read=lambda: self._run_state(inst.id),
                    reached=lambda s: s.get("state") in STOPPED_STATES, apply=apply,
                    unmet="StopInstances returned but the instance is not stopping",
                    note=note)

    def _protect_step(self, inst: CloudObject) -> Step:
        return Step(obj=inst, action="termination-protection",
                    describe="protect the instance from termination (ModifyInstanceAttribute "
                             "DisableApiTermination=true)",
                    read=lambda: self._protection(inst.id),
                    reached=lambda s: s.get("disable_api_termination") is True,
                    apply=lambda: self._set_protection(inst.id, True),
                    unmet="DescribeInstanceAttribute does not show disableApiTermination=true",
                    note=PROTECT_NOTE)

    # -- release ---------------------------------------------------------------------------

    def release_steps(self, records: Sequence[Record]) -> list[Step]:
        """Undo what ``done`` records of ``contain`` say, in their order (newest first, as
        :func:`~imageaudit.cloud.provider.release_pairs` gives them). Snapshots and tags are
        evidence and stay; a deregistered AMI cannot come back."""
        steps: list[Step] = []
        for record in records:
            if record.result != "done":
                continue
            if record.action == "disable":
                steps.append(self._enable_step(record.obj))
            elif record.action == "stop":
                steps.append(self._start_step(record.obj))
            elif record.action == "termination-protection":
                before = record.before.get("disable_api_termination") is True
                steps.append(self._restore_protection_step(record.obj, before))
            elif record.action in ("tag", "snapshot", "deregister"):
                continue
            else:
                raise UsageError(f"{record.obj.label()}: {record.action!r} is not a step "
                                 f"{self.target} took (is this the log of another cloud?)")
        return steps

    def _enable_step(self, image: CloudObject) -> Step:
        return Step(obj=image, action="enable",
                    describe="enable the AMI again (EnableImage); it is not shared again",
                    read=lambda: self._image_state(image.id),
                    reached=lambda s: s.get("state") == "available",
                    apply=lambda: self.ec2.enable_image(ImageId=image.id),
                    unmet="EnableImage returned but the AMI is not available")

    def _start_step(self, inst: CloudObject) -> Step:
        def apply() -> None:
            # a stop still in progress refuses StartInstances (IncorrectInstanceState)
            self._wait(f"instance {inst.id} to finish stopping",
                       lambda: self._not_stopping(inst.id), self.wait_timeout)
            self.ec2.start_instances(InstanceIds=[inst.id])

        return Step(obj=inst, action="start",
                    describe="start the instance (StartInstances; a hibernated one resumes)",
                    read=lambda: self._run_state(inst.id),
                    reached=lambda s: s.get("state") in STARTED_STATES, apply=apply,
                    unmet="StartInstances returned but the instance is not starting")

    def _restore_protection_step(self, inst: CloudObject, before: bool) -> Step:
        return Step(obj=inst, action="restore-termination-protection",
                    describe=f"set termination protection back to {str(before).lower()} "
                             "(ModifyInstanceAttribute DisableApiTermination)",
                    read=lambda: self._protection(inst.id),
                    reached=lambda s: s.get("disable_api_termination") is before,
                    apply=lambda: self._set_protection(inst.id, before),
                    unmet="DescribeInstanceAttribute does not show the value set")

    # -- reading EC2 -----------------------------------------------------------------------

    def _image(self, ami: str) -> dict[str, Any] | None:
        """The AMI, or None when EC2 does not list it (deregistered, never visible)."""
        try:
            images = self.ec2.describe_images(ImageIds=[ami], IncludeDisabled=True)["Images"]
        except ClientError as exc:
            if _code(exc).startswith("InvalidAMIID."):
                return None
            raise
        return next((i for i in images if i.get("ImageId") == ami), None)

    def _owned(self, filters: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        pages = self.ec2.get_paginator("describe_images").paginate(
            Owners=["self"], IncludeDisabled=True, Filters=filters)
        for page in pages:
            yield from page.get("Images", [])

    def _instances(self, amis: Sequence[str], states: Iterable[str]
                   ) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        """The instances launched from each AMI, in the given states, with their owner."""
        out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        paginator = self.ec2.get_paginator("describe_instances")
        for start in range(0, len(amis), FILTER_VALUES_MAX):
            filters = [{"Name": "image-id", "Values": list(amis[start:start + FILTER_VALUES_MAX])},
                       {"Name": "instance-state-name", "Values": list(states)}]
            for page in paginator.paginate(Filters=filters):
                for reservation in page.get("Reservations", []):
                    for inst in reservation.get("Instances", []):
                        out.setdefault(inst["ImageId"], []).append(
                            (reservation.get("OwnerId", ""), inst))
        for launched in out.values():
            launched.sort(key=lambda pair: pair[1]["InstanceId"])
        return out

    def _instance(self, instance_id: str) -> dict[str, Any]:
        for reservation in self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]:
            for inst in reservation["Instances"]:
                if inst["InstanceId"] == instance_id:
                    return dict(inst)
        raise AwsError(f"DescribeInstances does not list {instance_id}")

    def _describe_quietly(self, instance_id: str) -> dict[str, Any] | None:
        # a step's wording only: the run itself reads (and reports) a vanished instance
        try:
            return self._instance(instance_id)
        except (ClientError, BotoCoreError, AwsError):
            return None

    def _image_state(self, ami: str, *, sharing: bool = False) -> State:
        image = self._image(ami)
        if image is None:
            return {"state": "absent"}
        state: State = {"state": image.get("State", "")}
        if sharing:
            state["public"] = bool(image.get("Public"))
            state["launch_permissions"] = self._launch_permissions(ami)
        return state

    def _launch_permissions(self, ami: str) -> list[dict[str, str]] | str:
        # only the owner may read them; the disable step is then refused on its own account
        try:
            got = self.ec2.describe_image_attribute(ImageId=ami, Attribute="launchPermission")
        except ClientError as exc:
            return f"unreadable: {error_text(exc)}"
        return [dict(p) for p in got.get("LaunchPermissions", [])]

    def _image_tags(self, ami: str) -> State:
        image = self._image(ami)
        if image is None:
            raise AwsError(f"{ami} is not listed by DescribeImages")
        return _ours(_tags(image))

    def _instance_tags(self, instance_id: str) -> State:
        return _ours(_tags(self._instance(instance_id)))

    def _run_state(self, instance_id: str) -> State:
        inst = self._instance(instance_id)
        reason = inst.get("StateReason") or {}
        return {"state": inst["State"]["Name"], "hibernation_configured": _hibernation(inst),
                "state_reason": reason.get("Code", "")}

    def _protection(self, instance_id: str) -> State:
        got = self.ec2.describe_instance_attribute(InstanceId=instance_id,
                                                   Attribute="disableApiTermination")
        return {"disable_api_termination": bool(got["DisableApiTermination"]["Value"])}

    def _set_protection(self, instance_id: str, value: bool) -> None:
        self.ec2.modify_instance_attribute(InstanceId=instance_id,
                                           DisableApiTermination={"Value": value})

    def _evidence_state(self, instance_id: str, incident: str) -> State:
        """The instance's state, its EBS volumes and, for each, the best evidence snapshot of
        this incident (completed before pending before anything else)."""
        inst = self._instance(instance_id)
        devices = _ebs_volumes(inst)
        found: dict[str, dict[str, str]] = {}
        if devices:
            filters = [{"Name": f"tag:{INCIDENT_TAG}", "Values": [incident]},
                       {"Name": f"tag:{INSTANCE_TAG}", "Values": [instance_id]},
                       {"Name": "volume-id", "Values": list(devices)}]
            pages = self.ec2.get_paginator("describe_snapshots").paginate(
                OwnerIds=["self"], Filters=filters)
            for page in pages:
                for snap in page.get("Snapshots", []):
                    best = found.get(snap["VolumeId"])
                    if best is None or _rank(snap["State"]) < _rank(best["state"]):
                        found[snap["VolumeId"]] = {"id": snap["SnapshotId"],
                                                   "state": snap["State"]}
        volumes = {vol: {"device": device, "snapshot": found.get(vol, {}).get("id", ""),
                         "snapshot_state": found.get(vol, {}).get("state", "")}
                   for vol, device in devices.items()}
        return {"state": inst["State"]["Name"], "volumes": volumes}

    def _listed(self, snapshot_ids: list[str]) -> str | None:
        """None once every snapshot is listed pending or completed, else what is awaited."""
        try:
            snaps = self.ec2.describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"]
        except ClientError as exc:
            if _code(exc) == "InvalidSnapshot.NotFound":  # listing lags creation
                return "not listed yet"
            raise
        by_id = {s["SnapshotId"]: s for s in snaps}
        for sid in snapshot_ids:
            snap = by_id.get(sid)
            if snap is None:
                return f"{sid} not listed yet"
            if snap["State"] == "error":
                raise AwsError(f"snapshot {sid} of {snap.get('VolumeId', '?')} failed: "
                               f"{snap.get('StateMessage') or 'EC2 gives no reason'}")
            if snap["State"] not in USABLE_SNAPSHOT:
                return f"{sid} {snap['State']}"
        return None

    def _not_stopping(self, instance_id: str) -> str | None:
        state = self._instance(instance_id)["State"]["Name"]
        return "stopping" if state == "stopping" else None

    def _uncontained(self, ami: str, incident: str) -> list[str]:
        out = []
        for _owner, inst in self._instances([ami], LIVE_STATES).get(ami, []):
            state = inst["State"]["Name"]
            if state not in STOPPED_STATES or _tags(inst).get(INCIDENT_TAG) != incident:
                out.append(f"{inst['InstanceId']} {state}")
        return out

    def _wait(self, what: str, pending: Callable[[], str | None], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            left = pending()
            if left is None:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AwsError(f"waited {timeout:.0f} s for {what}: {left}")
            time.sleep(min(self.poll, remaining))


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _tags(item: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in item.get("Tags") or []}


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _ours(tags: dict[str, str]) -> State:
    return {k: tags.get(k) for k in (INCIDENT_TAG, REASON_TAG)}


def _kind(obj: CloudObject) -> str:
    return "AMI" if obj.kind == "image" else obj.kind


def _hibernation(inst: dict[str, Any]) -> bool:
    return bool((inst.get("HibernationOptions") or {}).get("Configured"))


def _ebs_volumes(inst: dict[str, Any]) -> dict[str, str]:
    """Volume id → device name, for every EBS volume attached to the instance."""
    return {m["Ebs"]["VolumeId"]: m.get("DeviceName", "")
            for m in inst.get("BlockDeviceMappings") or []
            if (m.get("Ebs") or {}).get("VolumeId")}


def _rank(snapshot_state: str) -> int:
    return {"completed": 0, "pending": 1}.get(snapshot_state, 2)


def _evidence_complete(state: State) -> bool:
    volumes = state.get("volumes") or {}
    return bool(volumes) and all(v["snapshot_state"] in USABLE_SNAPSHOT
                                 for v in volumes.values())


def _instance_object(inst: dict[str, Any], owner: str) -> CloudObject:
    return CloudObject(kind="instance", id=inst["InstanceId"],
                       name=_tags(inst).get("Name", ""), project=owner)
