"""End to end: scan the weak and the clean example as a directory, a container and a qcow2.

Every failing or unevaluable finding is listed exactly (rule, status, object), and the level.
The package-update and advisory rules are ERROR here because no feed is given: an image is
never certified at a level whose checks could not run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from imageaudit.engine import scan_facts
from imageaudit.facts import collect_facts
from imageaudit.findings import Report
from imageaudit.imagefs import ImageFS
from imageaudit.openers import open_image
from imageaudit.pipeline import Judge, ScanOptions
from tests.builders.container import docker_archive
from tests.builders.example_tree import clean_scenario, weak_scenario
from tests.scenario import File, write_tree

Row = tuple[str, str, str | None]

# What the weak image shows whatever opened it.
WEAK_EVERYWHERE: set[Row] = {
    ('export_nfs_insecure', 'FAIL', '/srv/data *'),
    ('export_nfs_no_root_squash', 'FAIL', '/srv/data *'),
    ('export_nfs_world_writable', 'FAIL', '/srv/data *'),
    ('export_nfs_world_writable', 'FAIL', '/srv/home *'),
    ('export_samba_guest', 'FAIL', 'public'),
    ('hygiene_logs', 'FAIL', '/var/log'),
    ('hygiene_shell_histories', 'FAIL', '/home/admin/.bash_history'),
    ('hygiene_shell_histories', 'FAIL', '/root/.bash_history'),
    ('hygiene_temp_files', 'FAIL', '/tmp'),
    ('legacy_network_service_installed', 'FAIL', 'openbsd-inetd'),
    # Anyone may rewrite what cron runs as root: a persistence path as well as a permission.
    ('malware_cron_dropper', 'FAIL', '/etc/cron.daily/cleanup'),
    ('password_default_or_weak', 'FAIL', 'admin'),
    ('password_default_or_weak', 'FAIL', 'pi'),
    ('password_default_or_weak', 'FAIL', 'root'),
    ('password_empty', 'FAIL', 'guest'),
    ('password_extra_uid0', 'FAIL', 'toor'),
    ('password_root_usable', 'FAIL', 'root'),
    ('password_sudo_nopasswd_all', 'FAIL', 'guest'),
    ('password_weak_hash', 'FAIL', 'pi'),
    ('permission_setuid_unowned', 'FAIL', '/usr/bin/passwd'),
    ('permission_setuid_unowned', 'FAIL', '/usr/local/bin/helper'),
    ('permission_shadow_readable', 'FAIL', '/etc/shadow'),
    ('permission_unknown_owner', 'FAIL', '/opt/app/data.bin'),
    ('permission_world_writable_dirs', 'FAIL', '/srv/drop'),
    ('permission_world_writable_executed', 'FAIL', '/etc/cron.daily/cleanup'),
    ('permission_world_writable_files', 'FAIL', '/etc/cron.daily/cleanup'),
    ('permission_world_writable_files', 'FAIL', '/srv/public/upload/.keep'),
    ('plaintext_login_server_installed', 'FAIL', 'telnetd'),
    ('secret_authorized_keys', 'FAIL', '/root/.ssh/authorized_keys'),
    ('secret_credential_files', 'FAIL', '/root/.aws/credentials'),
    ('secret_private_keys', 'FAIL', '/root/.ssh/id_ed25519'),
    ('secret_ssh_host_keys', 'FAIL', '/etc/ssh/ssh_host_ed25519_key'),
    ('security_updates_pending', 'ERROR', None),
    ('ssh_password_authentication', 'FAIL', 'PasswordAuthentication'),
    ('ssh_permit_empty_passwords', 'FAIL', 'PermitEmptyPasswords'),
    ('ssh_permit_root_login', 'FAIL', 'PermitRootLogin'),
    ('ssh_weak_ciphers', 'FAIL', 'Ciphers'),
    ('updates_pending', 'ERROR', None),
    ('vulnerable_package_fix_available', 'ERROR', None),
}
# Containers have no init system nor a machine identity of their own: these apply to VM
# disks and root directories only (the container's entrypoint decides what runs).
WEAK_SYSTEM_ONLY: set[Row] = {
    ('hygiene_machine_id', 'FAIL', '/etc/machine-id'),
    ('service_firewall_default_deny', 'FAIL', 'firewall'),
    ('service_redis_unauthenticated', 'FAIL', '/etc/redis/redis.conf'),
    ('service_snmp_default_community', 'FAIL', 'rocommunity public'),
    ('service_telnet', 'FAIL', 'telnet'),
}
NO_FEEDS: set[Row] = {
    ("security_updates_pending", "ERROR", None),
    ("updates_pending", "ERROR", None),
    ("vulnerable_package_fix_available", "ERROR", None),
}


@pytest.fixture(scope="module")
def judge() -> Judge:
    return Judge.load(ScanOptions())


def scan(fs: ImageFS, judge: Judge) -> Report:
    return scan_facts(collect_facts(fs), judge.rules, judge.levels)


def bad(report: Report) -> set[Row]:
    return {
        (f.rule_id, f.status.value, f.resource)
        for f in report.findings
        if f.status.value in ("FAIL", "ERROR")
    }


def levels(report: Report) -> dict[str, bool]:
    return {lv.name: lv.granted for lv in report.certification.levels}


@pytest.mark.parametrize("kind", ["directory", "container"])
def test_weak_image(kind: str, judge: Judge, tmp_path: Path) -> None:
    report = _scan_kind(kind, weak_scenario(), judge, tmp_path)
    expected = WEAK_EVERYWHERE | (WEAK_SYSTEM_ONLY if kind == "directory" else set())
    assert bad(report) == expected
    assert report.certification.level == "none"
    assert levels(report) == {"basic": False, "standard": False, "hardened": False}


@pytest.mark.parametrize("kind", ["directory", "container"])
def test_clean_image(kind: str, judge: Judge, tmp_path: Path) -> None:
    report = _scan_kind(kind, clean_scenario(), judge, tmp_path)
    assert bad(report) == NO_FEEDS
    assert report.certification.level == "basic"
    standard = next(lv for lv in report.certification.levels if lv.name == "standard")
    assert set(standard.unevaluated) == {"security_updates_pending",
                                          "vulnerable_package_fix_available"}


def _scan_kind(kind: str, scenario: Any, judge: Judge, tmp_path: Path) -> Report:
    if kind == "directory":
        spec = write_tree(scenario, tmp_path / "root")
    else:
        spec = docker_archive(scenario, tmp_path / "image.tar")
    with open_image(str(spec)) as fs:
        assert fs.info.kind == kind
        return scan(fs, judge)


@pytest.mark.guestfs
@pytest.mark.slow
def test_weak_and_clean_qcow2(shared_vms: Any, judge: Judge) -> None:
    weak, _, _ = shared_vms["weak-qcow2"]
    report = scan(weak, judge)
    assert bad(report) == WEAK_EVERYWHERE | WEAK_SYSTEM_ONLY
    assert report.certification.level == "none"
    clean, _, _ = shared_vms["clean-qcow2"]
    report = scan(clean, judge)
    assert bad(report) == NO_FEEDS
    assert report.certification.level == "basic"


def test_the_report_carries_the_inventory_campaigns_query(judge: Judge, tmp_path: Path) -> None:
    import hashlib
    import json

    import jsonschema

    from imageaudit.report import render
    from imageaudit.report.json_report import report_schema

    report = _scan_kind("container", weak_scenario(), judge, tmp_path)
    data = json.loads(render(report, "json"))
    jsonschema.Draft202012Validator(report_schema()).validate(data)
    inventory = data["inventory"]
    packages = {p["name"]: p for p in inventory["packages"]}
    assert packages and all(p["ecosystem"] == "Debian:12" for p in packages.values())
    assert all(p["purl"].startswith("pkg:deb/debian/") for p in packages.values())
    files = {f["path"]: f for f in inventory["files"]}
    cron = files["/etc/cron.daily/cleanup"]
    assert "persistence" in cron["kinds"] and "script" in cron["kinds"]
    written = weak_scenario()["/etc/cron.daily/cleanup"]
    assert isinstance(written, File)
    assert cron["sha256"] == hashlib.sha256(written.data).hexdigest()
    assert inventory["complete"] is True and inventory["not_hashed"]["count"] == 0
