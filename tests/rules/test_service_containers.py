"""Service rules on container images: the entrypoint/command decides what runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from imageaudit.engine import rule_status
from imageaudit.facts import Facts, ImageInfo
from imageaudit.model import Status
from tests.rules.cases_service import enabled_by, unit
from tests.rules.harness import facts_of, run_rule
from tests.scenario import File

REDIS_CONF = "/etc/redis/redis.conf"
INSECURE_REDIS = {REDIS_CONF: "protected-mode no\n",
                  "/usr/bin/redis-server": File(b"\x7fELF", mode=0o755)}
HEAD = (f"Redis `{REDIS_CONF}` listens on all interfaces (no `bind`) without a password and "
        f"with `protected-mode no` ({REDIS_CONF} line 1); it is enabled: ")


def container(tree: dict[str, Any], root: Path, **details: Any) -> Facts:
    facts = facts_of(tree, root)
    image = ImageInfo(kind="container", format="oci-layout", source="test:latest",
                      details=details)
    return dataclasses.replace(facts, image=image)


def messages(rule: str, facts: Facts) -> tuple[Status, list[str]]:
    findings = run_rule(rule, facts)
    return rule_status(findings), [f.message for f in findings if f.status is Status.FAIL]


@pytest.mark.parametrize(
    ("details", "expected"),
    [
        ({"entrypoint": ["docker-entrypoint.sh"], "cmd": ["redis-server", REDIS_CONF]},
         f"the container's command `docker-entrypoint.sh redis-server {REDIS_CONF}` runs "
         "`redis-server`"),
        ({"entrypoint": None, "cmd": ["/bin/sh", "-c", f"redis-server {REDIS_CONF}"]},
         f"the container's command `/bin/sh -c redis-server {REDIS_CONF}` runs `redis-server`"),
        ({"entrypoint": ["/usr/bin/supervisord"], "cmd": None},
         "`/usr/bin/redis-server` is installed and the container's command "
         "`/usr/bin/supervisord` starts a process supervisor"),
        ({}, "`/usr/bin/redis-server` is installed and the image records no entrypoint or "
         "command"),
    ],
    ids=["command", "shell-form", "supervisor", "no-command"],
)
def test_redis_in_container_counts(details: dict[str, Any], expected: str,
                                   tmp_path: Path) -> None:
    facts = container(INSECURE_REDIS, tmp_path / "root", **details)
    assert messages("service_redis_unauthenticated", facts) == (Status.FAIL, [HEAD + expected])


def test_container_running_something_else_passes(tmp_path: Path) -> None:
    facts = container(INSECURE_REDIS, tmp_path / "root",
                      entrypoint=["docker-entrypoint.sh"], cmd=["postgres"])
    assert messages("service_redis_unauthenticated", facts) == (Status.PASS, [])


def test_container_booting_init_uses_enablement(tmp_path: Path) -> None:
    tree = {**INSECURE_REDIS, **unit("redis-server.service")}
    facts = container(tree, tmp_path / "root", entrypoint=["/sbin/init"], cmd=None)
    assert messages("service_redis_unauthenticated", facts) == (
        Status.FAIL, [HEAD + enabled_by("redis-server.service")])
    off = container(INSECURE_REDIS, tmp_path / "root2", entrypoint=["/sbin/init"], cmd=None)
    assert messages("service_redis_unauthenticated", off) == (Status.PASS, [])


def test_container_running_inetd(tmp_path: Path) -> None:
    tree = {"/etc/inetd.conf": "telnet stream tcp nowait root /usr/sbin/in.telnetd in.telnetd\n"}
    facts = container(tree, tmp_path / "root", cmd=["/usr/sbin/inetd", "-i"])
    assert messages("service_telnet", facts) == (
        Status.FAIL,
        ["telnet is enabled: the container's command runs inetd, which runs "
         "`/usr/sbin/in.telnetd` as `telnet` (/etc/inetd.conf line 1); logins and sessions "
         "cross the network in clear text"])


def test_firewall_rule_not_applicable_to_containers(tmp_path: Path) -> None:
    facts = container(INSECURE_REDIS, tmp_path / "root", cmd=["redis-server"])
    assert rule_status(run_rule("service_firewall_default_deny", facts)) is (
        Status.NOT_APPLICABLE)
