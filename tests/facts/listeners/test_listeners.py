"""Listeners collector: daemon exposure settings from their own configuration files."""

from __future__ import annotations

from pathlib import Path

from imageaudit.facts.base import CollectContext
from imageaudit.facts.conftext import MalformedLine, Setting
from imageaudit.facts.listeners import (
    DEFAULT_BIND,
    DaemonConfig,
    HbaEntry,
    ListenersFacts,
    NtpRestrict,
    SnmpAccess,
    collect,
)
from imageaudit.model import CollectorError, Source
from imageaudit.openers.directory import DirectoryFS
from tests.scenario import Scenario, write_tree

PG = "/etc/postgresql/15/main"


def run(tmp_path: Path, scenario: Scenario) -> tuple[ListenersFacts, CollectContext]:
    ctx = CollectContext(fs=DirectoryFS(write_tree(scenario, tmp_path / "root")))
    return collect(ctx), ctx


def one(facts: ListenersFacts, daemon: str) -> DaemonConfig:
    (found,) = facts.get(daemon)
    return found


def kv(config: DaemonConfig) -> list[tuple[str | None, str, str, int | None]]:
    return [(s.section, s.key, s.value, s.source.line) for s in config.settings]


def test_absent_configs_are_recorded_as_absent(tmp_path: Path) -> None:
    facts, ctx = run(tmp_path, {"/etc/hostname": "x\n"})
    assert ctx.errors == []
    assert sorted(d.daemon for d in facts.daemons) == sorted(DEFAULT_BIND)
    redis = one(facts, "redis")
    assert redis == DaemonConfig("redis", "", False, (), (), (), "*:6379", ())
    assert redis.last("bind") is None
    assert (facts.pg_hba, facts.ntp_restrict, facts.snmp_access) == ((), (), ())


def test_redis_include_loop_and_instances(tmp_path: Path) -> None:
    facts, _ctx = run(tmp_path, {
        "/etc/redis/redis.conf": (
            "# comment\nbind 127.0.0.1 -::1\nprotected-mode yes\nrename-command CONFIG \"\"\n"
            "include /etc/redis/extra.conf\nbad \"quote\n"
        ),
        "/etc/redis/extra.conf": "requirepass s3cret\ninclude /etc/redis/redis.conf\n",
        "/etc/redis/redis-cache.conf": "port 6380\n",
        "/usr/bin/redis-server": "ELF",
    })
    cache, main = facts.get("redis")  # sorted by instance
    assert (main.instance, cache.instance) == (
        "/etc/redis/redis.conf", "/etc/redis/redis-cache.conf")
    assert main.files == (Source("/etc/redis/redis.conf"), Source("/etc/redis/extra.conf"))
    assert kv(main) == [
        (None, "bind", "127.0.0.1 -::1", 2),
        (None, "protected-mode", "yes", 3),
        (None, "rename-command", 'CONFIG ""', 4),
        (None, "requirepass", "s3cret", 1),
    ]
    assert main.malformed == (
        MalformedLine("unbalanced quotes", 'bad "quote', Source("/etc/redis/redis.conf", 6)),
        MalformedLine("include loop", "/etc/redis/redis.conf", Source("/etc/redis/extra.conf", 2)),
    )
    assert main.executables == ("/usr/bin/redis-server",)
    assert kv(cache) == [(None, "port", "6380", 1)]


def test_mongodb_yaml_and_legacy(tmp_path: Path) -> None:
    facts, _ctx = run(tmp_path, {
        "/etc/mongod.conf": (
            "net:\n  port: 27017\n  bindIp: 0.0.0.0\nsecurity:\n  authorization: enabled\n"
        ),
        "/etc/mongodb.conf": "# legacy\nbind_ip = 127.0.0.1\nauth = true\n",
    })
    assert kv(one(facts, "mongodb")) == [
        (None, "net.port", "27017", 2),
        (None, "net.bindIp", "0.0.0.0", 3),
        (None, "security.authorization", "enabled", 5),
        (None, "bind_ip", "127.0.0.1", 2),
        (None, "auth", "true", 3),
    ]


def test_yaml_bombs_and_garbage(tmp_path: Path) -> None:
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b, *b]\nnet: {bindIp: [127.0.0.1, '::1']}\n"
    facts, _ctx = run(tmp_path, {
        "/etc/mongod.conf": bomb,
        "/etc/elasticsearch/elasticsearch.yml": b"\x00\x01: [\n\xff{{{",
    })
    mongo = one(facts, "mongodb")
    assert mongo.last("net.bindIp") == Setting("net.bindIp", "127.0.0.1,::1",
                                               Source("/etc/mongod.conf", 4))
    es = one(facts, "elasticsearch")
    assert es.present and es.settings == ()
    assert [m.reason for m in es.malformed] == ["not valid YAML: ReaderError",
                                                "not a YAML mapping"]


def test_memcached_debian_and_rhel(tmp_path: Path) -> None:
    facts, _ctx = run(tmp_path, {
        "/etc/memcached.conf": "-d\n-m 64\n-p 11211\n-l 0.0.0.0\n-U 0\n",
        "/etc/sysconfig/memcached": 'PORT="11211"\nOPTIONS="-l 127.0.0.1,::1 --udp-port=0"\n',
    })
    assert kv(one(facts, "memcached")) == [
        (None, "-d", "", 1), (None, "-m", "64", 2), (None, "-p", "11211", 3),
        (None, "-l", "0.0.0.0", 4), (None, "-U", "0", 5),
        (None, "PORT", "11211", 1), (None, "OPTIONS", "-l 127.0.0.1,::1 --udp-port=0", 2),
        (None, "-l", "127.0.0.1,::1", 2), (None, "-U", "0", 2),
    ]


def test_mysql_includes_sections_and_loop(tmp_path: Path) -> None:
    facts, _ctx = run(tmp_path, {
        "/etc/mysql/my.cnf": "!includedir /etc/mysql/conf.d/\n[mysqld]\nbind_address = 0.0.0.0\n",
        "/etc/mysql/conf.d/a.cnf": (
            "[mysqld]\nskip-networking\n!include /etc/mysql/my.cnf\n[client\n"
        ),
        "/etc/mysql/conf.d/ignored.txt": "[mysqld]\nskip-grant-tables\n",
        "/etc/my.cnf": "[mariadb]\nskip_grant_tables\n",
    })
    mysql = one(facts, "mysql")
    assert mysql.files == (Source("/etc/my.cnf"), Source("/etc/mysql/my.cnf"),
                           Source("/etc/mysql/conf.d/a.cnf"))
    assert kv(mysql) == [
        ("mariadb", "skip-grant-tables", "", 2),
        ("mysqld", "skip-networking", "", 2),
        ("mysqld", "bind-address", "0.0.0.0", 3),
    ]
    assert mysql.malformed == (
        MalformedLine("unclosed section header", "[client", Source("/etc/mysql/conf.d/a.cnf", 4)),
        MalformedLine("include loop", "/etc/mysql/my.cnf", Source("/etc/mysql/conf.d/a.cnf", 3)),
    )


def test_postgresql_conf_includes_and_hba(tmp_path: Path) -> None:
    facts, _ctx = run(tmp_path, {
        f"{PG}/postgresql.conf": (
            "listen_addresses = '*'  # all\nport 5432\ninclude_dir 'conf.d'\n"
            "include_if_exists 'missing.conf'\ninclude 'gone.conf'\n"
        ),
        f"{PG}/conf.d/x.conf": "listen_addresses='it''s'\n",
        f"{PG}/pg_hba.conf": (
            "local all postgres peer\nhost all all 0.0.0.0/0 trust\n"
            "host all all 10.0.0.0 255.0.0.0 md5\n"
            'hostssl "db" all samenet \\\n   scram-sha-256 clientcert=verify-full\nbogus\n'
        ),
    })
    pg = one(facts, "postgresql")
    assert pg.instance == f"{PG}/postgresql.conf"
    assert kv(pg) == [
        (None, "listen_addresses", "*", 1), (None, "port", "5432", 2),
        (None, "listen_addresses", "it's", 1),
    ]
    assert pg.malformed == (
        MalformedLine("included file not found", f"{PG}/gone.conf",
                      Source(f"{PG}/postgresql.conf", 5)),
        MalformedLine("not a pg_hba.conf record", "bogus", Source(f"{PG}/pg_hba.conf", 6)),
    )
    cluster = f"{PG}/postgresql.conf"
    hba = f"{PG}/pg_hba.conf"
    assert facts.pg_hba == (
        HbaEntry(cluster, "local", "all", "postgres", None, None, "peer", (), Source(hba, 1)),
        HbaEntry(cluster, "host", "all", "all", "0.0.0.0/0", None, "trust", (), Source(hba, 2)),
        HbaEntry(cluster, "host", "all", "all", "10.0.0.0", "255.0.0.0", "md5", (), Source(hba, 3)),
        HbaEntry(cluster, "hostssl", '"db"', "all", "samenet", None, "scram-sha-256",
                 ("clientcert=verify-full",), Source(hba, 4)),
    )


def test_elasticsearch_flat_and_nested_keys(tmp_path: Path) -> None:
    facts, _ctx = run(tmp_path, {
        "/etc/elasticsearch/elasticsearch.yml": (
            "network.host: 0.0.0.0\nxpack:\n  security:\n    enabled: false\n"
        ),
    })
    assert kv(one(facts, "elasticsearch")) == [
        (None, "network.host", "0.0.0.0", 1), (None, "xpack.security.enabled", "false", 4),
    ]


def test_vsftpd_snmpd_ntpd_chrony(tmp_path: Path) -> None:
    facts, _ctx = run(tmp_path, {
        "/etc/vsftpd.conf": "listen=YES\nanonymous_enable=YES\nanon_upload_enable = YES\n",
        "/etc/snmp/snmpd.conf": (
            "agentAddress udp:161,udp6:[::1]:161\nrocommunity public default -V systemonly\n"
            "rwcommunity private 10.0.0.0/8\ncom2sec -Cn ctx notConfigUser default public\n"
            "com2sec short\n"
        ),
        "/etc/ntp.conf": (
            "restrict -4 default kod notrap nomodify nopeer noquery limited\n"
            "restrict 10.0.0.0 mask 255.0.0.0 nomodify\nrestrict\ndisable monitor\n"
        ),
        "/etc/chrony/chrony.conf": "allow 0.0.0.0/0\nconfdir /etc/chrony/conf.d\n",
        "/etc/chrony/conf.d/a.conf": "cmdallow all\nbindcmdaddress 0.0.0.0\n",
    })
    vsftpd = one(facts, "vsftpd")
    assert kv(vsftpd) == [(None, "listen", "YES", 1), (None, "anonymous_enable", "YES", 2)]
    assert vsftpd.malformed == (
        MalformedLine("not option=value", "anon_upload_enable = YES",
                      Source("/etc/vsftpd.conf", 3)),
    )
    snmp = "/etc/snmp/snmpd.conf"
    assert one(facts, "snmpd").last("agentaddress") == Setting(
        "agentaddress", "udp:161,udp6:[::1]:161", Source(snmp, 1))
    assert facts.snmp_access == (
        SnmpAccess("rocommunity", "public", "default", None, ("-V", "systemonly"), Source(snmp, 2)),
        SnmpAccess("rwcommunity", "private", "10.0.0.0/8", None, (), Source(snmp, 3)),
        SnmpAccess("com2sec", "public", "default", "notConfigUser", ("-Cn", "ctx"),
                   Source(snmp, 4)),
    )
    assert one(facts, "snmpd").malformed == (
        MalformedLine("com2sec needs NAME SOURCE COMMUNITY", "com2sec short", Source(snmp, 5)),
    )
    assert facts.ntp_restrict == (
        NtpRestrict("default", "-4", None,
                    ("kod", "notrap", "nomodify", "nopeer", "noquery", "limited"),
                    Source("/etc/ntp.conf", 1)),
        NtpRestrict("10.0.0.0", None, "255.0.0.0", ("nomodify",), Source("/etc/ntp.conf", 2)),
    )
    assert one(facts, "ntpd").last("disable") == Setting("disable", "monitor",
                                                         Source("/etc/ntp.conf", 4))
    assert kv(one(facts, "chrony")) == [
        (None, "allow", "0.0.0.0/0", 1), (None, "cmdallow", "all", 1),
        (None, "bindcmdaddress", "0.0.0.0", 2), (None, "confdir", "/etc/chrony/conf.d", 2),
    ]


def test_bind_options_views_and_includes(tmp_path: Path) -> None:
    facts, _ctx = run(tmp_path, {
        "/etc/bind/named.conf": (
            'include "/etc/bind/named.conf.options";\n'
            'view "ext" { recursion no; zone "a" { type master; allow-transfer { any; }; }; };\n'
        ),
        "/etc/bind/named.conf.options": (
            "options {\n directory \"/var/cache/bind\"; // comment\n recursion yes;\n"
            " allow-recursion { any; };\n /* block\n comment */ listen-on port 53 { 127.0.0.1; };\n"
            " allow-query { localhost; 10/8; }\n};\n"
        ),
    })
    bind = one(facts, "bind")
    opts = "/etc/bind/named.conf.options"
    assert [(s.section, s.key, s.value, str(s.source)) for s in bind.settings] == [
        ("options", "recursion", "yes", f"{opts} line 3"),
        ("options", "allow-recursion", "{ any; }", f"{opts} line 4"),
        ("options", "listen-on", "port 53 { 127.0.0.1; }", f"{opts} line 6"),
        ("options", "allow-query", "{ localhost; 10/8; }", f"{opts} line 7"),
        ("view ext", "recursion", "no", "/etc/bind/named.conf line 2"),
        ("view ext zone a", "allow-transfer", "{ any; }", "/etc/bind/named.conf line 2"),
    ]
    assert bind.malformed == ()


def test_bind_unbalanced_braces_and_loops(tmp_path: Path) -> None:
    facts, _ctx = run(tmp_path, {
        "/etc/named.conf": (
            'include "/etc/named.conf";\noptions { recursion yes;\n};\n};\n'
            'options { allow-query { any; };\n'
        ),
        "/etc/bind/named.conf": 'options { recursion "unterminated;\n',
    })
    bind = one(facts, "bind")
    assert [(s.section, s.key, s.value) for s in bind.settings] == [
        ("options", "recursion", ""),  # what was read before the unterminated string
        ("options", "recursion", "yes"),
        ("options", "allow-query", "{ any; }"),
    ]
    assert bind.malformed == (
        MalformedLine("unterminated string", '"unterminated;\n', Source("/etc/bind/named.conf", 1)),
        MalformedLine("1 unclosed '{' at end of file", "", Source("/etc/bind/named.conf")),
        MalformedLine("include loop", "/etc/named.conf", Source("/etc/named.conf", 1)),
        MalformedLine("unexpected '}'", "}", Source("/etc/named.conf", 4)),
        MalformedLine("1 unclosed '{' at end of file", "", Source("/etc/named.conf")),
    )


def test_rpcbind_nfs_tftp_and_executables(tmp_path: Path) -> None:
    facts, _ctx = run(tmp_path, {
        "/etc/default/rpcbind": 'OPTIONS="-w -h 127.0.0.1"\nnot an assignment\n',
        "/etc/nfs.conf": "[nfsd]\nhost = 10.0.0.1\n# c\n[mountd]\nport=20048\n",
        "/etc/default/nfs-kernel-server": 'RPCNFSDCOUNT=8\nRPCMOUNTDOPTS="--manage-gids"\n',
        "/etc/default/tftpd-hpa": 'TFTP_ADDRESS=":69"\nTFTP_OPTIONS="--secure --create"\n',
        "/usr/sbin/rpcbind": "ELF",
        "/usr/sbin/in.telnetd": "ELF",
        "/usr/lib/postgresql/15/bin/postgres": "ELF",
    })
    rpcbind = one(facts, "rpcbind")
    assert kv(rpcbind) == [
        (None, "OPTIONS", "-w -h 127.0.0.1", 1), (None, "-w", "", 1), (None, "-h", "127.0.0.1", 1),
    ]
    assert rpcbind.malformed == (
        MalformedLine("not a NAME=value assignment", "not an assignment",
                      Source("/etc/default/rpcbind", 2)),
    )
    assert rpcbind.executables == ("/usr/sbin/rpcbind",)
    assert kv(one(facts, "nfs")) == [
        (None, "RPCNFSDCOUNT", "8", 1), (None, "RPCMOUNTDOPTS", "--manage-gids", 2),
        (None, "--manage-gids", "", 2), ("nfsd", "host", "10.0.0.1", 2),
        ("mountd", "port", "20048", 5),
    ]
    assert kv(one(facts, "tftp")) == [
        (None, "TFTP_ADDRESS", ":69", 1), (None, "TFTP_OPTIONS", "--secure --create", 2),
        (None, "--secure", "", 2), (None, "--create", "", 2),
    ]
    telnetd = one(facts, "telnetd")
    assert (telnetd.present, telnetd.executables) == (False, ("/usr/sbin/in.telnetd",))
    assert one(facts, "postgresql").executables == ("/usr/lib/postgresql/15/bin/postgres",)


def test_huge_and_binary_config(tmp_path: Path) -> None:
    big = "listen=NO\n" + "#" * (1024 * 1024)
    facts, ctx = run(tmp_path, {
        "/etc/vsftpd.conf": big,
        "/etc/redis.conf": b"\x7fELF\x02\x01\x01\x00\x00\n\xff\xfe bind 0.0.0.0\n",
    })
    assert kv(one(facts, "vsftpd")) == [(None, "listen", "NO", 1)]
    assert ctx.errors == [
        CollectorError("read", f"read only the first {1024 * 1024} of {len(big)} bytes",
                       "/etc/vsftpd.conf", incomplete=True),
    ]
    assert kv(one(facts, "redis")) == [
        (None, "\x7felf\x02\x01\x01\x00\x00", "", 1), (None, "\ufffd\ufffd", "bind 0.0.0.0", 2),
    ]
