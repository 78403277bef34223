"""Listeners facts of the named daemons (dockerd, kubelet, Jupyter, VNC, slapd, FTP servers,
usershares, MariaDB accounts, the Redis ACL file) and their rules on clean trees."""

from __future__ import annotations

import dataclasses
import gzip
import json
import time
from pathlib import Path
from typing import Any

import pytest

from imageaudit.engine import rule_status
from imageaudit.example import CLEAN
from imageaudit.facts import Facts, ImageInfo
from imageaudit.facts.base import CollectContext
from imageaudit.facts.listeners import DaemonConfig, ListenersFacts, collect
from imageaudit.facts.listeners.mysqldata import account_state
from imageaudit.model import Source, Status
from imageaudit.openers.directory import DirectoryFS
from tests.builders.debian import debian_root_dir  # noqa: F401 - pytest fixture
from tests.rules.harness import facts_of, rules, run_rule
from tests.scenario import Scenario, Symlink, write_tree

DATA = Path(__file__).resolve().parent / "data"
MY_RULES = (
    "service_docker_tcp_unauthenticated", "service_kubelet_anonymous",
    "service_jupyter_unauthenticated", "service_vnc_no_password", "service_x11_access_control",
    "service_ldap_anonymous_bind", "service_mysql_empty_password",
    "service_redis_unauthenticated", "service_ftp_anonymous", "export_samba_usershare_guest",
)


def run(tmp_path: Path, scenario: Scenario) -> tuple[ListenersFacts, CollectContext]:
    ctx = CollectContext(fs=DirectoryFS(write_tree(scenario, tmp_path / "root")))
    return collect(ctx), ctx


def one(facts: ListenersFacts, daemon: str) -> DaemonConfig:
    (found,) = facts.get(daemon)
    return found


def kv(config: DaemonConfig) -> list[tuple[str | None, str, str, str, int | None]]:
    return [(s.section, s.key, s.value, s.source.path, s.source.line) for s in config.settings]


def test_unit_flags_expand_environment_and_reset(tmp_path: Path) -> None:
    facts, _ = run(tmp_path, {
        "/lib/systemd/system/kubelet.service": "[Service]\nExecStart=/usr/bin/kubelet --old\n",
        "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf":
            "[Service]\nEnvironment=\"A=--config=/k.yaml\"\nEnvironmentFile=-/etc/default/kubelet\n"
            "ExecStart=\nExecStart=/usr/bin/kubelet $A \\\n  ${KUBELET_EXTRA_ARGS}\n",
        "/etc/default/kubelet": "KUBELET_EXTRA_ARGS=\"--read-only-port=0 --address 127.0.0.1\"\n",
        "/k.yaml": "readOnlyPort: 10255\nauthentication:\n  anonymous:\n    enabled: true\n",
    })
    k = one(facts, "kubelet")
    drop = "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"
    flags = [(key, value, path, line) for _s, key, value, path, line in kv(k)
             if key.startswith("--")]
    assert flags == [("--config", "/k.yaml", drop, 2),
                     ("--read-only-port", "0", "/etc/default/kubelet", 1),
                     ("--address", "127.0.0.1", "/etc/default/kubelet", 1)]
    # systemd turns the backslash into a space (systemd.syntax(7))
    assert [s.value for s in k.values("ExecStart")] == [
        "/usr/bin/kubelet $A  ${KUBELET_EXTRA_ARGS}"]
    assert [(s.key, s.value, s.source.line) for s in k.settings if s.section == "config"] == [
        ("readOnlyPort", "10255", 1), ("authentication.anonymous.enabled", "true", 4)]


def test_dockerd_hosts_from_every_place(tmp_path: Path) -> None:
    facts, _ = run(tmp_path, {
        "/etc/docker/daemon.json": json.dumps({"hosts": ["fd://"], "tlsverify": False}),
        "/etc/sysconfig/docker": "OPTIONS='--selinux-enabled -H tcp://10.0.0.1:2375'\n",
        "/usr/lib/systemd/system/docker.service":
            "[Service]\nExecStart=/usr/bin/dockerd --host=unix:///run/docker.sock\n",
    })
    d = one(facts, "dockerd")
    assert [(s.value, s.source) for s in d.values("-H")] == [
        ("fd://", Source("/etc/docker/daemon.json")),
        ("tcp://10.0.0.1:2375", Source("/etc/sysconfig/docker", 1)),
        ("unix:///run/docker.sock", Source("/usr/lib/systemd/system/docker.service", 2))]
    assert d.last("--tlsverify") is not None and d.last("--tlsverify").value == "false"


def test_jupyter_python_is_read_as_text(tmp_path: Path) -> None:
    path = "/home/ann/.jupyter/jupyter_notebook_config.py"
    facts, _ = run(tmp_path, {path: (
        "c = get_config()\nc.NotebookApp.ip = '*'  # all\nc.NotebookApp.token = u''\n"
        "c.NotebookApp.password = __import__('os').system('touch /tmp/pwned')\n"
        "c.NotebookApp.port = 8888\n")})
    assert [(s.section, s.key, s.value, s.source.line) for s in one(facts, "jupyter").settings] == [
        (None, "NotebookApp.ip", "*", 2), (None, "NotebookApp.token", "", 3),
        ("expression", "NotebookApp.password", "__import__('os').system('touch /tmp/pwned')", 4),
        (None, "NotebookApp.port", "8888", 5)]
    assert not (tmp_path / "root" / "tmp" / "pwned").exists()


def test_slapd_ldif_and_conf(tmp_path: Path) -> None:
    facts, _ = run(tmp_path, {
        "/etc/ldap/slapd.d/cn=config.ldif":
            "dn: cn=config\nolcDisallows: bind_anon\nolcRequires:: YXV0aGM=\n",
        "/etc/ldap/slapd.d/cn=config/olcDatabase={2}mdb.ldif":
            "dn: olcDatabase={2}mdb\nolcAccess: {0}to * by anonymous\n  auth\n",
        "/etc/openldap/slapd.conf": "include /etc/openldap/more.conf\ndatabase mdb\n"
                                    "access to *\n\tby * read\n",
        "/etc/openldap/more.conf": "disallow bind_anon\n",
    })
    s = one(facts, "slapd")
    assert [(x[0], x[1], x[2], x[4]) for x in kv(s)] == [
        ("global", "dn", "cn=config", 1), ("global", "olcdisallows", "bind_anon", 2),
        ("global", "olcrequires", "authc", 3), ("mdb", "dn", "olcDatabase={2}mdb", 1),
        ("mdb", "olcaccess", "to * by anonymous auth", 2),
        ("global", "olcdisallows", "bind_anon", 1), ("mdb", "database", "mdb", 2),
        ("mdb", "olcaccess", "to * by * read", 3)]


def test_proftpd_blocks_and_include_directory(tmp_path: Path) -> None:
    facts, _ = run(tmp_path, {
        "/etc/proftpd/proftpd.conf": "Include /etc/proftpd/conf.d/\n<Global>\n  Umask 022\n"
                                     "</Global>\n",
        "/etc/proftpd/conf.d/anon.conf": "<Anonymous ~ftp>\n<Limit   WRITE>\nDenyAll\n</Limit>\n"
                                         "</Anonymous>\n</Extra>\n",
    })
    p = one(facts, "proftpd")
    assert [(x[0], x[1], x[2]) for x in kv(p)] == [
        (None, "<block>", "anonymous ~ftp"), ("anonymous ~ftp", "<block>", "limit write"),
        ("anonymous ~ftp > limit write", "denyall", ""), (None, "<block>", "global"),
        ("global", "umask", "022")]
    assert [m.reason for m in p.malformed] == ["closing a section that is not open"]


def test_usershares_and_pure_ftpd(tmp_path: Path) -> None:
    facts, _ = run(tmp_path, {
        "/var/lib/samba/usershares/pub": "#VERSION 2\npath=/srv\nguest_ok=y\n",
        "/etc/pure-ftpd/conf/NoAnonymous": "yes\n",
    })
    assert [(x[0], x[1], x[2]) for x in kv(one(facts, "samba-usershares"))] == [
        ("pub", "path", "/srv"), ("pub", "guest_ok", "y")]
    assert [(x[0], x[1], x[2]) for x in kv(one(facts, "pure-ftpd"))] == [
        ("conf", "noanonymous", "yes")]


def test_redis_aclfile_users(tmp_path: Path) -> None:
    facts, _ = run(tmp_path, {
        "/etc/redis/redis.conf": "aclfile /etc/redis/users.acl\n",
        "/etc/redis/users.acl": "# users\nuser default off\nbogus line\n",
    })
    r = one(facts, "redis")
    assert [(s.value, s.source) for s in r.values("acluser")] == [
        ("default off", Source("/etc/redis/users.acl", 2))]
    assert [m.reason for m in r.malformed] == ["not a user line"]
    facts, _ = run(tmp_path / "2", {"/etc/redis/redis.conf": "aclfile users.acl\n"})
    assert one(facts, "redis").last("aclfile-unread") is not None


def test_vnc_commands(tmp_path: Path) -> None:
    facts, _ = run(tmp_path, {
        "/root/.xinitrc": "xhost +\nexec nohup x11vnc -forever &\n",
        "/root/.vnc/config": "$SecurityTypes = \"None\";\n",
    })
    v = one(facts, "vnc")
    assert [(x[0], x[1], x[2]) for x in kv(v)] == [
        ("tigervnc", "securitytypes", "None"), ("x11vnc", "command", "x11vnc -forever &")]
    assert [s.value for s in one(facts, "x11-access").values("command")] == ["xhost +"]


@pytest.mark.parametrize(("priv", "state"), [
    ({"plugin": "mysql_native_password", "authentication_string": ""}, "empty"),
    ({}, "empty"),
    ({"plugin": "mysql_native_password", "authentication_string": "*ABC"}, "password"),
    ({"plugin": "mysql_native_password", "authentication_string": "invalid",
      "auth_or": [{}, {"plugin": "unix_socket"}]}, "password"),
    ({"plugin": "unix_socket"}, "socket"),
    ({"authentication_string": "", "account_locked": True}, "locked"),
    ({"plugin": "mysql_native_password", "authentication_string": "x",
      "auth_or": [{}, {"plugin": "mysql_native_password", "authentication_string": ""}]}, "empty"),
])
def test_mariadb_account_state(priv: dict[str, Any], state: str) -> None:
    assert account_state(priv) == state


def test_mariadb_cut_table_is_unread(tmp_path: Path) -> None:
    big = bytes(17 * 1024 * 1024)
    facts, _ = run(tmp_path, {"/etc/my.cnf": "[mysqld]\ndatadir=/data\n",
                              "/data/mysql/global_priv.MAD": big})
    m = one(facts, "mysql")
    assert m.values("account") == ()
    assert "larger than" in m.last("accounts-unread").value


def test_real_mariadb_table(tmp_path: Path) -> None:
    """global_priv.MAD written by MariaDB 10.11 (mariadb-install-db, then CREATE USER
    'app'@'%', 'web'@'10.0.0.%' IDENTIFIED BY ..., 'ops'@'%' VIA unix_socket; DROP USER
    ''@'vm')."""
    table = gzip.decompress((DATA / "global_priv.MAD.gz").read_bytes())
    facts, _ = run(tmp_path, {"/var/lib/mysql/mysql/global_priv.MAD": table})
    m = one(facts, "mysql")
    assert [(s.value, s.section) for s in m.values("account")] == [
        ("'mariadb.sys'@'localhost'", "locked"), ("'root'@'localhost'", "password"),
        ("'PUBLIC'@''", "role"), ("''@'localhost'", "empty"), ("'app'@'%'", "empty"),
        ("'web'@'10.0.0.%'", "password"), ("'ops'@'%'", "socket")]
    assert m.last("accounts-unread") is None


def _container(tree: dict[str, Any], root: Path, **details: Any) -> Facts:
    facts = facts_of(tree, root)
    image = ImageInfo(kind="container", format="oci-layout", source="t", details=details)
    return dataclasses.replace(facts, image=image)


def test_jupyter_container_command(tmp_path: Path) -> None:
    facts = _container({"/usr/local/bin/jupyter": "#!/bin/sh\n"}, tmp_path / "root",
                       entrypoint=["tini", "-g", "--"],
                       cmd=["jupyter", "lab", "--ip=0.0.0.0", "--ServerApp.token=",
                            "--allow-root"])
    findings = run_rule("service_jupyter_unauthenticated", facts)
    assert rule_status(findings) is Status.FAIL
    ok = _container({"/usr/local/bin/jupyter": "#!/bin/sh\n"}, tmp_path / "root2",
                    cmd=["jupyter", "lab", "--ip=0.0.0.0"])
    assert rule_status(run_rule("service_jupyter_unauthenticated", ok)) is Status.PASS


def test_x11vnc_container_command(tmp_path: Path) -> None:
    facts = _container({}, tmp_path / "root", cmd=["x11vnc", "-forever", "-create"])
    assert rule_status(run_rule("service_vnc_no_password", facts)) is Status.FAIL
    ok = _container({}, tmp_path / "root2", cmd=["x11vnc", "-usepw", "-create"])
    assert rule_status(run_rule("service_vnc_no_password", ok)) is Status.PASS


def test_unreadable_unit_is_an_error(tmp_path: Path) -> None:
    tree = {"/etc/systemd/system/multi-user.target.wants/kubelet.service":
            Symlink("/lib/systemd/system/kubelet.service"),
            "/lib/systemd/system/kubelet.service":
                "[Service]\nExecStart=/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml\n",
            "/var/lib/kubelet/config.yaml": "kind: KubeletConfiguration\n",
            "/etc/systemd/system/kubelet.service.d/x.conf": Symlink("/run/k.conf")}
    assert rule_status(run_rule("service_kubelet_anonymous",
                                facts_of(tree, tmp_path / "root"))) is Status.ERROR


def _no_fails(facts: Facts) -> list[str]:
    known = {r.id for r in rules()}
    assert set(MY_RULES) <= known
    bad = []
    for rule_id in MY_RULES:
        bad += [f"{rule_id}: {f.message}" for f in run_rule(rule_id, facts)
                if f.status in (Status.FAIL, Status.ERROR)]
    return bad


def test_clean_example_has_no_failures(tmp_path: Path) -> None:
    assert _no_fails(facts_of(CLEAN, tmp_path / "root")) == []


@pytest.mark.network
@pytest.mark.slow
def test_real_debian_root_has_no_failures(debian_root_dir: Path) -> None:  # noqa: F811
    from imageaudit.facts import collect_facts

    with DirectoryFS(debian_root_dir) as fs:
        facts = collect_facts(fs)
    assert _no_fails(facts) == []


def _slapd_tree(extra_global: str = "") -> dict[str, Any]:
    """Debian 12's cn=config, as slapadd wrote it from the package's slapd.init.ldif."""
    base = DATA / "slapd.d"
    tree: dict[str, Any] = {
        "/etc/default/slapd": 'SLAPD_SERVICES="ldap:/// ldapi:///"\n',
        "/lib/systemd/system/slapd.service": "[Service]\nExecStart=/usr/sbin/slapd\n",
        "/etc/systemd/system/multi-user.target.wants/slapd.service":
            Symlink("/lib/systemd/system/slapd.service"),
    }
    for path in sorted(base.rglob("*.ldif")):
        text = path.read_text(encoding="utf-8")
        if path.name == "cn=config.ldif":
            text += extra_global
        tree[f"/etc/ldap/slapd.d/{path.relative_to(base)}"] = text
    return tree


def test_debian_slapd_config(tmp_path: Path) -> None:
    facts = facts_of(_slapd_tree(), tmp_path / "root")
    findings = run_rule("service_ldap_anonymous_bind", facts)
    assert [(f.status, f.resource) for f in findings if f.status is not Status.PASS] == [
        (Status.FAIL, "slapd mdb")]
    assert "`to * by * read`, /etc/ldap/slapd.d/cn=config/olcDatabase={1}mdb.ldif line 11" in (
        findings[0].message)
    closed = facts_of(_slapd_tree("olcDisallows: bind_anon\n"), tmp_path / "root2")
    assert rule_status(run_rule("service_ldap_anonymous_bind", closed)) is Status.PASS


def test_long_inputs_stay_linear(tmp_path: Path) -> None:
    """A continued LDIF value of 300,000 lines and 20,000 identical <Anonymous> blocks: read
    and judged in linear time (each was quadratic once)."""
    ldif = "dn: cn=config\nolcDisallows: x\n" + " y\n" * 300_000
    anon = "<Anonymous ~ftp>\n  User ftp\n</Anonymous>\n" * 20_000
    tree = {"/etc/ldap/slapd.d/cn=config.ldif": ldif, "/etc/proftpd/proftpd.conf": anon,
            "/lib/systemd/system/proftpd.service": "[Service]\nExecStart=/usr/sbin/proftpd\n",
            "/etc/systemd/system/multi-user.target.wants/proftpd.service":
                Symlink("/lib/systemd/system/proftpd.service")}
    start = time.perf_counter()
    facts = facts_of(tree, tmp_path / "root")
    findings = run_rule("service_ftp_anonymous", facts)
    assert time.perf_counter() - start < 20
    assert [f.resource for f in findings if f.status is Status.FAIL] == ["proftpd"]
    (slapd,) = facts.listeners.get("slapd")
    assert len(slapd.last("olcdisallows").value) == 1 + 300_000
