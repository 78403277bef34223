"""Facts written out (``imageaudit facts``) show where a secret is, never its value.

The collectors keep every value whole for the checks; :mod:`imageaudit.facts.masking` is
applied only when the facts leave the process.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imageaudit.facts import collect_facts
from imageaudit.facts.conftext import Setting
from imageaudit.facts.masking import mask_credentials, shown_setting
from imageaudit.model import Source, to_jsonable
from imageaudit.openers.directory import DirectoryFS
from tests.scenario import write_tree

S = "Zq9SECRETvalue77"
DAEMON_SECRETS = {
    "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\n",
    "/etc/redis/redis.conf": f"bind 0.0.0.0\nrequirepass {S}01\nmasterauth {S}02\n",
    "/root/.jupyter/jupyter_server_config.py":
        f"c.ServerApp.token = '{S}03'\nc.ServerApp.ip = '0.0.0.0'\n",
    "/etc/rsyncd.conf": "[m]\npath = /srv\nauth users = bob\nsecrets file = /etc/rsyncd.secrets\n",
    "/etc/rsyncd.secrets": f"bob:{S}04\n",
    "/etc/ldap/slapd.conf": f"database mdb\nsuffix dc=x\nrootpw {S}05\n",
    "/etc/default/docker":
        f"DOCKER_OPTS='-H tcp://0.0.0.0:2375'\nexport HTTP_PROXY=http://u:{S}06@proxy:3128\n",
    "/etc/systemd/system/app.service":
        f"[Service]\nEnvironment=API_KEY={S}07\nExecStart=/usr/bin/app --password {S}08\n"
        "[Install]\nWantedBy=multi-user.target\n",
    "/etc/squid/squid.conf": f"http_port 3128\ncache_peer p parent 3128 0 login=u:{S}09\n",
    "/etc/postfix/main.cf":
        f"smtp_sasl_password_maps = static:u:{S}11\ninet_interfaces = all\n"
        "smtpd_sasl_path = private/auth\n",
    "/etc/dovecot/dovecot.conf": f"passdb {{\n  driver = static\n  args = password={S}12\n}}\n",
    "/etc/mysql/debian.cnf": f"[client]\nuser = debian-sys-maint\npassword = {S}13\n",
    "/etc/environment": f"SECRET_TOKEN={S}16\n",
}


def test_daemon_and_command_secrets_never_reach_the_written_facts(tmp_path: Path) -> None:
    root = write_tree(DAEMON_SECRETS, tmp_path / "root")
    with DirectoryFS(root) as fs:
        facts = collect_facts(fs)
    written = json.dumps(facts.to_json())
    assert S not in written
    # What is not secret is still there: addresses, paths, the names of the settings.
    for kept in ("tcp://0.0.0.0:2375", "/etc/rsyncd.secrets", "requirepass", "ServerApp.token",
                 "inet_interfaces", "/usr/bin/app --password ***"):
        assert kept in written
    # The checks still get the values.
    redis = next(d for d in facts.listeners.daemons if d.daemon == "redis")
    assert any(s.value == f"{S}01" for s in redis.settings)


@pytest.mark.parametrize(("key", "value", "shown"), [
    ("requirepass", "hunter2", "***"),
    ("requirepass", "", ""),  # no password set: that is the fact
    ("rootpw", "{SSHA}abc", "***"),
    ("ServerApp.token", "abc", "***"),
    ("secrets file", "/etc/rsyncd.secrets", "/etc/rsyncd.secrets"),
    ("smtp_sasl_password_maps", "hash:/etc/postfix/sasl_passwd", "hash:/etc/postfix/sasl_passwd"),
    ("smtp_sasl_password_maps", "static:u:pw", "***"),
    ("bind", "0.0.0.0", "0.0.0.0"),
    ("auth users", "bob, alice", "bob, alice"),
    ("HTTP_PROXY", "http://u:pw@proxy:3128", "http://***@proxy:3128"),
    ("args", "password=pw scheme=PLAIN", "password=*** scheme=PLAIN"),
])
def test_setting_values_as_written_out(key: str, value: str, shown: str) -> None:
    setting = Setting(key, value, Source("/etc/x.conf", 1))
    assert shown_setting(value, setting) == shown
    assert to_jsonable(setting)["value"] == shown
    assert setting.value == value


def test_long_mixed_tokens_are_cut_paths_and_words_kept() -> None:
    key = "AKIA" + "Q3EGRT5WXJ7MZ2HL" + "abcdefghijk9ZYXWVU"
    assert mask_credentials(f"aws s3 cp --key {key} s3://b/") == "aws s3 cp --key AKIAQ3… s3://b/"
    path = "/usr/lib/x86_64-linux-gnu/security/pam_unix_extended_module_name"
    assert mask_credentials(path) == path
