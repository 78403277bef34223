"""AwsProvider against a real moto_server: what it finds, and what contain and release leave
on the cloud, read back through boto3."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from imageaudit.cloud.actionlog import ActionLog
from imageaudit.cloud.aws import AwsProvider
from imageaudit.cloud.model import (
    CloudObject,
    ContainOptions,
    Found,
    ImageQuery,
    Record,
    Step,
    parse_target,
)
from imageaudit.cloud.provider import release_pairs
from imageaudit.cloud.run import connect
from imageaudit.cloud.steps import error_text, run_steps
from imageaudit.errors import UsageError
from tests.cloud.conftest import AWS_REGION, CATALOGUE_ID, SHA512, AwsWorld, MotoServer, launch

INCIDENT = "EGI-2026-042"
OPTIONS = ContainOptions(incident=INCIDENT, reason="image withdrawn: leaked SSH host key")
TARGET_TEXT = f"aws:@{AWS_REGION}"
# what containment may never ask of the cloud
DESTRUCTIVE = {"TerminateInstances", "DeleteSnapshot", "DeleteVolume", "DeregisterImage",
               "DetachVolume", "DeleteTags"}


def provider() -> AwsProvider:
    made = connect(parse_target(TARGET_TEXT))
    assert isinstance(made, AwsProvider)
    return made


def run(steps: list[Step], *, act: bool = True, log: ActionLog | None = None) -> list[Record]:
    return run_steps(steps, act=act, cloud=TARGET_TEXT, incident=INCIDENT,
                     image=f"SHA-512 {SHA512[:16]}…", log=log)


def outcome(records: list[Record]) -> list[tuple[str, str, str]]:
    return [(r.obj.id, r.action, r.result) for r in records]


def instance_steps(instance_id: str, result: str) -> list[tuple[str, str, str]]:
    return [(instance_id, a, result)
            for a in ("snapshot", "stop", "termination-protection", "tag")]


def contained(world: AwsWorld, result: str = "done") -> list[tuple[str, str, str]]:
    """The records of containing the world's AMI and both instances, in order."""
    first, second = sorted([world.plain, world.hibernating])  # find lists them by id
    return [(world.ami, "tag", result), (world.ami, "disable", result),
            *instance_steps(first, result), *instance_steps(second, result)]


def by_sha512() -> ImageQuery:
    return ImageQuery(text=SHA512, sha512=SHA512)


# -- find ------------------------------------------------------------------------------------


def test_find_names_the_ami_and_its_instances_by_every_kind_of_query(aws_world: AwsWorld) -> None:
    w = aws_world
    expected_images = [CloudObject("image", w.ami, "withdrawn-debian-12", w.account)]
    expected_instances = {w.ami: sorted(
        [CloudObject("instance", w.plain, "web-1", w.account),
         CloudObject("instance", w.hibernating, "db-1", w.account)], key=lambda o: o.id)}
    queries = [by_sha512(),
               ImageQuery(text=CATALOGUE_ID, identifiers=(CATALOGUE_ID,)),
               ImageQuery(text=w.ami, cloud_ids=(w.ami,))]
    for query in queries:
        found = provider().find(query)
        assert found.images == expected_images, query
        assert found.instances == expected_instances, query
        assert found.sha512 == {w.ami: SHA512}
        assert found.notes == []


def test_find_leaves_out_terminated_instances_and_keeps_disabled_amis(
        aws_world: AwsWorld) -> None:
    w = aws_world
    w.ec2.terminate_instances(InstanceIds=[w.plain])
    w.ec2.disable_image(ImageId=w.ami)
    found = provider().find(by_sha512())
    assert [i.id for i in found.images] == [w.ami]
    assert [i.id for i in found.instances[w.ami]] == [w.hibernating]


def test_find_by_id_of_a_deregistered_ami_still_finds_its_instances(aws_world: AwsWorld) -> None:
    w = aws_world
    w.ec2.deregister_image(ImageId=w.ami)
    found = provider().find(ImageQuery(text=w.ami, cloud_ids=(w.ami,)))
    assert found.images == []
    assert sorted(i.id for i in found.instances[w.ami]) == sorted([w.plain, w.hibernating])
    assert found.notes == [
        f"{w.ami} is not listed by DescribeImages (deregistered, or not visible to these "
        "credentials): the instances launched from it are still looked for"]


def test_holdings_count_copies_and_live_instances_by_sha512(aws_world: AwsWorld) -> None:
    from tests.cloud.conftest import register_ami

    w = aws_world
    second = register_ami(w.ec2, "withdrawn-debian-12 copy", {"imageaudit:sha512": SHA512})
    w.ec2.disable_image(ImageId=second)  # a disabled copy is still a copy held
    register_ami(w.ec2, "hand-tagged", {"imageaudit:sha512": "not a digest"})
    launch(w.ec2, w.bystander_ami, "other-2")
    w.ec2.terminate_instances(InstanceIds=[launch(w.ec2, w.bystander_ami, "gone")])
    held = provider().holdings()
    assert {sha: (h.copies, h.instances) for sha, h in held.items()} == {
        SHA512: (2, 2), "7a" * 64: (1, 2)}
    assert sorted(held[SHA512].ids) == sorted([w.ami, second])


# -- plan and contain ------------------------------------------------------------------------


def test_plan_changes_nothing(aws_world: AwsWorld, aws_moto: MotoServer) -> None:
    w = aws_world
    p = provider()
    records = run(p.contain_steps(p.find(by_sha512()), OPTIONS), act=False)
    assert outcome(records) == contained(w, "planned")
    assert w.image()["State"] == "available"
    assert all(w.state(i) == "running" and not w.protected(i) for i in (w.plain, w.hibernating))
    assert w.evidence(INCIDENT) == {}
    assert {a for a in aws_moto.actions() if not a.startswith("Describe")} == set()


def test_contain_disables_snapshots_stops_protects_and_logs(
        aws_world: AwsWorld, aws_moto: MotoServer, tmp_path: Path) -> None:
    w = aws_world
    p = provider()
    log = ActionLog(tmp_path / "incident.jsonl")
    records = run(p.contain_steps(p.find(by_sha512()), OPTIONS), log=log)
    assert outcome(records) == contained(w)
    assert [outcome([r])[0] for r in log.records()] == contained(w)

    image = w.image()
    assert image["State"] == "disabled"
    tags = {t["Key"]: t["Value"] for t in image["Tags"]}
    assert tags["imageaudit:incident"] == INCIDENT
    assert tags["imageaudit:reason"] == OPTIONS.reason

    evidence = w.evidence(INCIDENT)
    assert sorted(s["volume"] for s in evidence.values()) == sorted(
        w.volumes(w.plain) + w.volumes(w.hibernating))
    for snapshot in evidence.values():
        owner = w.plain if snapshot["volume"] in w.volumes(w.plain) else w.hibernating
        assert snapshot["imageaudit:instance"] == owner
        assert snapshot["imageaudit:image"] == w.ami
        assert snapshot["imageaudit:reason"] == OPTIONS.reason

    for instance_id in (w.plain, w.hibernating):
        assert w.state(instance_id) == "stopped"
        assert w.protected(instance_id)
        tags = {t["Key"]: t["Value"] for t in w.instance(instance_id)["Tags"]}
        assert tags["imageaudit:incident"] == INCIDENT
        with pytest.raises(ClientError) as refused:
            w.ec2.terminate_instances(InstanceIds=[instance_id])
        assert refused.value.response["Error"]["Code"] == "OperationNotPermitted"

    # moto keeps no trace of hibernation: what was asked is read from its request recording
    stops = {r["InstanceId.1"][0]: r.get("Hibernate", ["false"])[0]
             for r in aws_moto.requests() if r.get("Action") == ["StopInstances"]}
    assert stops == {w.plain: "false", w.hibernating: "true"}
    # the bystander is untouched
    assert w.image(w.bystander_ami)["State"] == "available"
    assert w.state(w.bystander) == "running"


def test_contain_asks_for_nothing_destructive(aws_world: AwsWorld, aws_moto: MotoServer) -> None:
    p = provider()
    run(p.contain_steps(p.find(by_sha512()), OPTIONS))
    assert DESTRUCTIVE.isdisjoint(aws_moto.actions())


def test_contain_records_say_what_was_before_and_after(aws_world: AwsWorld) -> None:
    w = aws_world
    p = provider()
    records = {(r.obj.id, r.action): r
               for r in run(p.contain_steps(p.find(by_sha512()), OPTIONS))}
    disable = records[(w.ami, "disable")]
    assert disable.before == {"state": "available", "public": False, "launch_permissions": []}
    assert disable.after["state"] == "disabled"
    stop = records[(w.hibernating, "stop")]
    assert stop.before["state"] == "running"
    assert stop.before["hibernation_configured"] is True
    assert stop.after["state"] == "stopped"
    assert "EC2 has no pause" in stop.note
    assert "no pause or suspend" in records[(w.plain, "stop")].note
    assert "crash-consistent" in records[(w.plain, "snapshot")].note
    protect = records[(w.plain, "termination-protection")]
    assert (protect.before, protect.after) == ({"disable_api_termination": False},
                                               {"disable_api_termination": True})


def test_instance_action_stop_does_not_hibernate(aws_world: AwsWorld,
                                                 aws_moto: MotoServer) -> None:
    w = aws_world
    p = provider()
    options = ContainOptions(incident=INCIDENT, reason="r", instance_action="stop")
    steps = p.contain_steps(p.find(by_sha512()), options)
    assert [s.describe for s in steps if s.obj.id == w.hibernating and s.action == "stop"] == [
        "stop the instance (StopInstances): its memory is lost"]
    run(steps)
    assert [r.get("Hibernate", ["false"])[0] for r in aws_moto.requests()
            if r.get("Action") == ["StopInstances"]] == ["false", "false"]


def test_second_contain_repeats_nothing(aws_world: AwsWorld, aws_moto: MotoServer) -> None:
    w = aws_world
    p = provider()
    run(p.contain_steps(p.find(by_sha512()), OPTIONS))
    snapshots = w.evidence(INCIDENT)
    aws_moto.post("/moto-api/recorder/reset-recording")
    again = provider()
    records = run(again.contain_steps(again.find(by_sha512()), OPTIONS))
    assert outcome(records) == contained(w, "already")
    assert w.evidence(INCIDENT) == snapshots
    assert {a for a in aws_moto.actions() if not a.startswith("Describe")} == set()


def test_interrupted_contain_resumes_where_it_stopped(aws_world: AwsWorld,
                                                      tmp_path: Path) -> None:
    w = aws_world
    log = ActionLog(tmp_path / "incident.jsonl")
    p = provider()
    steps = p.contain_steps(p.find(by_sha512()), OPTIONS)
    first = run(steps[:4], log=log)  # the AMI, then the first instance's snapshot and stop
    assert len(first) == 4 and {r.result for r in first} == {"done"}

    p = provider()
    second = run(p.contain_steps(p.find(by_sha512()), OPTIONS), log=log)
    assert outcome(second) == [(r.obj.id, r.action, "already" if i < 4 else "done")
                               for i, r in enumerate(second)]
    assert len(list(log.records())) == 4 + len(second)
    assert len(w.evidence(INCIDENT)) == 3


def test_a_volume_attached_later_gets_its_own_snapshot(aws_world: AwsWorld,
                                                       aws_moto: MotoServer) -> None:
    w = aws_world
    p = provider()
    run(p.contain_steps(p.find(by_sha512()), OPTIONS))
    volume = w.ec2.create_volume(AvailabilityZone=f"{AWS_REGION}a", Size=2)["VolumeId"]
    w.ec2.attach_volume(VolumeId=volume, InstanceId=w.plain, Device="/dev/sdg")
    aws_moto.post("/moto-api/recorder/reset-recording")

    p = provider()
    records = run(p.contain_steps(p.find(by_sha512()), OPTIONS))
    assert [(i, a) for i, a, result in outcome(records) if result == "done"] == [
        (w.plain, "snapshot")]
    assert [s["volume"] for s in w.evidence(INCIDENT).values()].count(volume) == 1
    made = [r["VolumeId"][0] for r in aws_moto.requests()
            if r.get("Action") == ["CreateSnapshot"]]
    assert made == [volume]
    assert "CreateSnapshots" not in aws_moto.actions()


def test_deregister_only_when_asked_and_last(aws_world: AwsWorld, aws_moto: MotoServer) -> None:
    w = aws_world
    p = provider()
    found = p.find(by_sha512())
    assert "deregister" not in [s.action for s in p.contain_steps(found, OPTIONS)]
    run(p.contain_steps(found, OPTIONS))
    assert w.image()["State"] == "disabled"

    asked = ContainOptions(incident=INCIDENT, reason=OPTIONS.reason, deregister=True)
    steps = p.contain_steps(found, asked)
    assert (steps[-1].obj.id, steps[-1].action) == (w.ami, "deregister")
    assert "not reversible" in steps[-1].note
    backing = w.image()["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    records = run(steps)
    assert outcome(records)[-1] == (w.ami, "deregister", "done")
    assert w.ec2.describe_images(ImageIds=[w.ami], IncludeDisabled=True)["Images"] == []
    assert w.ec2.describe_snapshots(SnapshotIds=[backing])["Snapshots"][0]["State"] == "completed"
    assert aws_moto.actions().count("DeregisterImage") == 1


def test_deregister_waits_for_every_instance_to_be_contained(aws_world: AwsWorld) -> None:
    w = aws_world
    p = provider()
    found = p.find(by_sha512())
    late = launch(w.ec2, w.ami, "launched-after-find")  # not in what was found
    asked = ContainOptions(incident=INCIDENT, reason="r", deregister=True)
    records = run(p.contain_steps(found, asked))
    assert outcome(records)[-1] == (w.ami, "deregister", "failed")
    assert f"{late} running" in records[-1].reason
    assert w.image()["State"] == "disabled"

    p = provider()
    records = run(p.contain_steps(p.find(by_sha512()), asked))
    assert [(i, a, res) for i, a, res in outcome(records) if res == "done"] == [
        *instance_steps(late, "done"), (w.ami, "deregister", "done")]


# -- failures --------------------------------------------------------------------------------


def test_a_vanished_instance_fails_with_the_reason_and_the_others_are_contained(
        aws_world: AwsWorld) -> None:
    w = aws_world
    p = provider()
    found = p.find(by_sha512())
    vanished = "i-0123456789abcdef0"
    found.instances[w.ami].insert(0, CloudObject("instance", vanished, "ghost", w.account))
    records = run(p.contain_steps(found, OPTIONS))
    mine = [r for r in records if r.obj.id == vanished]
    assert [(r.action, r.result) for r in mine] == [
        ("snapshot", "failed"), ("stop", "skipped"), ("termination-protection", "skipped"),
        ("tag", "skipped")]
    assert mine[0].reason == (
        "cannot read the instance: HTTP 400: DescribeInstances refused: "
        f"InvalidInstanceID.NotFound: The instance ID '{vanished}' does not exist")
    assert mine[1].reason == "not taken: the snapshot step before it failed"
    assert [o for o in outcome(records) if o[0] != vanished] == contained(w)
    assert w.state(w.plain) == w.state(w.hibernating) == "stopped"


def test_an_instance_terminated_since_find_is_reported_not_stopped(aws_world: AwsWorld,
                                                                    aws_moto: MotoServer) -> None:
    w = aws_world
    p = provider()
    found = p.find(by_sha512())
    w.ec2.terminate_instances(InstanceIds=[w.plain])
    aws_moto.post("/moto-api/recorder/reset-recording")
    records = run(p.contain_steps(found, OPTIONS))
    mine = [r for r in records if r.obj.id == w.plain]
    assert [(r.action, r.result) for r in mine] == [
        ("snapshot", "failed"), ("stop", "skipped"), ("termination-protection", "skipped"),
        ("tag", "skipped")]
    assert mine[0].reason == "the instance is terminated: nothing left to snapshot"
    assert w.state(w.plain) == "terminated"
    # moto "stops" a terminated instance if asked (AWS refuses): it was not asked
    assert [r["InstanceId.1"] for r in aws_moto.requests()
            if r.get("Action") == ["StopInstances"]] == [[w.hibernating]]
    assert w.state(w.hibernating) == "stopped"


def test_a_refusal_is_the_reason_of_a_failed_step(aws_world: AwsWorld) -> None:
    w = aws_world
    p = provider()
    ghost = CloudObject("image", "ami-0123456789abcdef0", "ghost", w.account)
    records = run(p.contain_steps(Found(images=[ghost]), OPTIONS))
    assert [(r.action, r.result) for r in records] == [("tag", "failed"), ("disable", "failed")]
    assert records[0].reason == "cannot read the image: ami-0123456789abcdef0 is not listed by " \
        "DescribeImages"
    assert records[1].before == {"state": "absent"}
    assert records[1].reason == (
        "HTTP 400: DisableImage refused: InvalidAMIID.NotFound: "
        "The image id '[ami-0123456789abcdef0]' does not exist")


def site_operator(ec2_denied: str) -> dict[str, str]:
    """Access keys of an IAM user allowed every EC2 action but ``ec2_denied``."""
    import json

    iam = boto3.client("iam", region_name=AWS_REGION)
    iam.create_user(UserName="site-operator")
    iam.put_user_policy(UserName="site-operator", PolicyName="incident", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
            {"Effect": "Deny", "Action": ec2_denied, "Resource": "*"}]}))
    key = iam.create_access_key(UserName="site-operator")["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def test_a_denied_action_fails_with_the_reason_and_the_instances_are_contained(
        aws_world: AwsWorld, aws_moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    w = aws_world
    for name, value in site_operator("ec2:DisableImage").items():
        monkeypatch.setenv(name, value)
    with aws_moto.iam_enforced():
        p = provider()
        records = run(p.contain_steps(p.find(by_sha512()), OPTIONS))
    disable = records[1]
    assert (disable.obj.id, disable.action, disable.result) == (w.ami, "disable", "failed")
    # moto answers AccessDenied where EC2 answers UnauthorizedOperation
    assert disable.reason == (
        f"HTTP 403: DisableImage refused: AccessDenied: User: arn:aws:iam::{w.account}:user/"
        "site-operator is not authorized to perform: ec2:DisableImage")
    assert outcome(records)[2:] == contained(w)[2:]
    assert w.image()["State"] == "available"
    assert w.state(w.plain) == w.state(w.hibernating) == "stopped"


def test_credentials_the_cloud_refuses_are_a_usage_error(aws_world: AwsWorld,
                                                         aws_moto: MotoServer) -> None:
    with aws_moto.iam_enforced(), pytest.raises(UsageError) as refused:
        provider().find(by_sha512())
    assert str(refused.value) == (
        f"{TARGET_TEXT}: cannot list AMIs and instances: HTTP 401: DescribeImages refused: "
        "AuthFailure: AWS was not able to validate the provided access credentials")


def test_an_unknown_profile_is_a_usage_error(aws_moto: MotoServer) -> None:
    with pytest.raises(UsageError, match="nobody"):
        AwsProvider(parse_target(f"aws:nobody@{AWS_REGION}"))


def test_an_unreachable_endpoint_is_a_usage_error_within_seconds(
        aws_moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(UsageError, match="cannot list AMIs and instances"):
        provider().find(by_sha512())
    assert time.monotonic() - started < 30


def test_error_text_reads_aws_code_and_message(aws_moto: MotoServer) -> None:
    ec2 = boto3.client("ec2", region_name=AWS_REGION)
    with pytest.raises(ClientError) as caught:
        ec2.stop_instances(InstanceIds=["i-0123456789abcdef0"])
    assert error_text(caught.value) == (
        "HTTP 400: StopInstances refused: InvalidInstanceID.NotFound: "
        "The instance ID 'i-0123456789abcdef0' does not exist")


# -- release ---------------------------------------------------------------------------------


def test_release_enables_starts_and_restores_and_keeps_the_evidence(
        aws_world: AwsWorld, aws_moto: MotoServer, tmp_path: Path) -> None:
    w = aws_world
    log = ActionLog(tmp_path / "incident.jsonl")
    p = provider()
    run(p.contain_steps(p.find(by_sha512()), OPTIONS), log=log)
    evidence = w.evidence(INCIDENT)

    undo = release_pairs(list(log.records()), INCIDENT)
    records = run(provider().release_steps(undo), log=log)
    first, second = sorted([w.plain, w.hibernating])
    assert outcome(records) == [  # newest first
        (second, "restore-termination-protection", "done"),
        (second, "start", "done"),
        (first, "restore-termination-protection", "done"),
        (first, "start", "done"),
        (w.ami, "enable", "done")]
    assert w.image()["State"] == "available"
    for instance_id in (w.plain, w.hibernating):
        assert w.state(instance_id) == "running"
        assert not w.protected(instance_id)
        tags = {t["Key"]: t["Value"] for t in w.instance(instance_id)["Tags"]}
        assert tags["imageaudit:incident"] == INCIDENT  # evidence: kept
    assert w.evidence(INCIDENT) == evidence
    assert DESTRUCTIVE.isdisjoint(aws_moto.actions())

    # a second release finds nothing left to undo
    assert release_pairs(list(log.records()), INCIDENT) == []


def test_release_leaves_protection_that_was_there_before(aws_world: AwsWorld,
                                                         tmp_path: Path) -> None:
    w = aws_world
    w.ec2.modify_instance_attribute(InstanceId=w.plain, DisableApiTermination={"Value": True})
    log = ActionLog(tmp_path / "incident.jsonl")
    p = provider()
    records = run(p.contain_steps(p.find(by_sha512()), OPTIONS), log=log)
    assert (w.plain, "termination-protection", "already") in outcome(records)
    run(provider().release_steps(release_pairs(list(log.records()), INCIDENT)), log=log)
    assert w.protected(w.plain)
    assert not w.protected(w.hibernating)


def test_holdings_count_instances_of_a_remembered_copy_deregistered_since(
        aws_world: AwsWorld) -> None:
    w = aws_world
    w.ec2.deregister_image(ImageId=w.ami)  # gone from the account, its instances run on
    assert SHA512 not in provider().holdings()
    held = provider().holdings({SHA512: [w.ami]})
    assert (held[SHA512].copies, held[SHA512].instances) == (0, 2)
