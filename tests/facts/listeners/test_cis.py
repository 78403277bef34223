"""Listener parsers of the CIS server-services daemons (``listeners/cis.py``, ``mailweb.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imageaudit.checks import default_registry
from imageaudit.engine import evaluate_rule
from imageaudit.example import CLEAN
from imageaudit.facts import Facts, collect_facts
from imageaudit.facts.base import CollectContext
from imageaudit.facts.conftext import MalformedLine
from imageaudit.facts.listeners import DEFAULT_BIND, DaemonConfig, ListenersFacts, collect
from imageaudit.model import Source, Status
from imageaudit.openers.directory import DirectoryFS
from tests.builders.debian import debian_root_dir  # noqa: F401 - pytest fixture
from tests.rules.harness import rules
from tests.scenario import Scenario, Symlink, write_tree

# The rules judged from these parsers (checks/services_cis.py) and their package companions.
RULES = ("service_unneeded_enabled", "service_rsync_unauthenticated", "service_squid_open_proxy",
         "service_web_root_exposed",
         "service_mail_access_cleartext_auth", "service_cups_remote", "service_mta_not_local_only",
         "service_dnsmasq_open_resolver", "service_webdav_unauthenticated", "service_x11_tcp",
         "service_x_server_installed", "service_insecure_client_installed")
CIS = ("rsync", "squid", "dovecot", "cyrus", "cups", "dnsmasq", "x11", "postfix", "exim4",
       "sendmail", "apache", "nginx", "lighttpd")


def run(tmp_path: Path, scenario: Scenario) -> tuple[ListenersFacts, CollectContext]:
    ctx = CollectContext(fs=DirectoryFS(write_tree(scenario, tmp_path / "root")))
    return collect(ctx), ctx


def one(facts: ListenersFacts, daemon: str) -> DaemonConfig:
    (found,) = facts.get(daemon)
    return found


def kv(config: DaemonConfig) -> list[tuple[str | None, str, str, int | None]]:
    return [(s.section, s.key, s.value, s.source.line) for s in config.settings]


def test_every_daemon_is_recorded_with_its_default(tmp_path: Path) -> None:
    facts, ctx = run(tmp_path, {"/etc/hostname": "x\n"})
    assert ctx.errors == []
    for daemon in CIS:
        config = one(facts, daemon)
        assert (config.present, config.settings, config.default_bind) == (
            False, (), DEFAULT_BIND[daemon])


def test_rsyncd_modules_globals_and_includes(tmp_path: Path) -> None:
    facts, _ = run(tmp_path, {
        "/etc/rsyncd.conf": "# c\nuid = nobody\nRead_Only = no\n[pub]\n  path = /srv\n"
                            "  auth  users = a\n&include /etc/rsyncd.d\nbroken line\n",
        "/etc/rsyncd.d/b.conf": "[b]\npath = /b\n",
        "/etc/rsyncd.d/skip.inc": "[nope]\n",
        "/etc/default/rsync": "RSYNC_ENABLE=true\n",
        "/usr/bin/rsync": "ELF",
    })
    rsync = one(facts, "rsync")
    assert kv(rsync) == [
        (None, "uid", "nobody", 2), (None, "read only", "no", 3), ("pub", "path", "/srv", 5),
        ("pub", "auth users", "a", 6), ("pub", "&include", "/etc/rsyncd.d", 7),
        ("b", "path", "/b", 2), (None, "RSYNC_ENABLE", "true", 1),
    ]
    assert rsync.malformed == (
        MalformedLine("not key = value", "broken line", Source("/etc/rsyncd.conf", 8)),)
    assert [f.path for f in rsync.files] == ["/etc/rsyncd.conf", "/etc/rsyncd.d/b.conf",
                                              "/etc/default/rsync"]
    assert rsync.executables == ("/usr/bin/rsync",)


def test_squid_include_and_cut_file(tmp_path: Path) -> None:
    facts, ctx = run(tmp_path, {
        "/etc/squid/squid.conf": "http_port 3128 # port\ninclude /etc/squid/conf.d/*.conf\n"
                                 "HTTP_ACCESS deny all\n",
        "/etc/squid/conf.d/a.conf": "acl net src 10.0.0.0/8\n" + "#" * (1024 * 1024 + 1),
    })
    assert kv(one(facts, "squid")) == [
        (None, "http_port", "3128", 1), (None, "acl", "net src 10.0.0.0/8", 1),
        (None, "http_access", "deny all", 3),
    ]
    assert [(e.path, e.incomplete) for e in ctx.errors] == [("/etc/squid/conf.d/a.conf", True)]


def test_dovecot_includes_and_sections(tmp_path: Path) -> None:
    facts, ctx = run(tmp_path, {
        "/etc/dovecot/dovecot.conf": "protocols = imap\n!include conf.d/*.conf\n"
                                     "!include_try local.conf\n!include missing.conf\n"
                                     "protocol imap {\n  mail_max = 3 # c\n}\n}\n",
        "/etc/dovecot/conf.d/10-auth.conf": "disable_plaintext_auth = no\n"
                                            "passdb {\n  driver = pam\n}\n",
        "/etc/dovecot/conf.d/10-ssl.conf": Symlink("/run/nowhere"),
    })
    dovecot = one(facts, "dovecot")
    assert kv(dovecot) == [
        (None, "protocols", "imap", 1), (None, "disable_plaintext_auth", "no", 1),
        ("passdb", "driver", "pam", 3), ("protocol imap", "mail_max", "3", 6),
    ]
    assert [m.reason for m in dovecot.malformed] == [
        "included file not found", "closing a section that is not open"]
    # the dangling link hides configuration: the facts are incomplete
    assert [(e.path, e.incomplete) for e in ctx.errors] == [
        ("/etc/dovecot/conf.d/10-ssl.conf", True)]


def test_cyrus_options_and_services(tmp_path: Path) -> None:
    facts, _ = run(tmp_path, {
        "/etc/imapd.conf": "# c\nAllowPlainText: yes\nbad line\n",
        "/etc/cyrus.conf": "SERVICES {\n  imap cmd=\"imapd -U 30\" listen=\"imap\" # c\n}\n"
                           "EVENTS {\n  tlsprune cmd=\"tls_prune\" at=0400\n}\n",
    })
    cyrus = one(facts, "cyrus")
    assert kv(cyrus) == [
        (None, "allowplaintext", "yes", 2),
        ("SERVICES", "imap", 'cmd="imapd -U 30" listen="imap"', 2),
        ("EVENTS", "tlsprune", 'cmd="tls_prune" at=0400', 5),
    ]
    assert [m.reason for m in cyrus.malformed] == ["not option: value"]


def test_cupsd_blocks(tmp_path: Path) -> None:
    facts, _ = run(tmp_path, {"/etc/cups/cupsd.conf": (
        "Listen\tlocalhost:631\n<Location /admin>\n  Allow @LOCAL\n</Location>\n"
        "<Policy default>\n  <Limit All>\n    Order deny,allow\n  </Limit>\n</Policy>\n"
        "</Location>\n")})
    cups = one(facts, "cups")
    assert kv(cups) == [
        (None, "listen", "localhost:631", 1), ("Location /admin", "allow", "@LOCAL", 3),
        ("Policy default > Limit All", "order", "deny,allow", 7),
    ]
    assert [m.reason for m in cups.malformed] == ["closing a section that is not open"]


def test_dnsmasq_files_and_debian_defaults(tmp_path: Path) -> None:
    facts, _ = run(tmp_path, {
        "/etc/debian_version": "12.5\n",
        "/etc/dnsmasq.conf": "domain-needed\nport=5353\nconf-file=/etc/dnsmasq.more\n",
        "/etc/dnsmasq.more": "listen-address=127.0.0.1\n",
        "/etc/default/dnsmasq": 'DNSMASQ_OPTS="--local-service -C x"\nDNSMASQ_EXCEPT="lo"\n',
        "/etc/dnsmasq.d/a": "interface=eth0\n",
        "/etc/dnsmasq.d/a.dpkg-old": "interface=eth1\n",
        "/etc/dnsmasq.d/.hidden": "interface=eth2\n",
    })
    assert kv(one(facts, "dnsmasq")) == [
        (None, "domain-needed", "", 1), (None, "port", "5353", 2),
        (None, "conf-file", "/etc/dnsmasq.more", 3), (None, "listen-address", "127.0.0.1", 1),
        (None, "DNSMASQ_OPTS", "--local-service -C x", 1),
        (None, "DNSMASQ_EXCEPT", "lo", 2), (None, "interface", "eth0", 1),
        (None, "local-service", "", 1), (None, "except-interface", "lo", 2),
    ]


def test_x11_display_managers_and_commands(tmp_path: Path) -> None:
    facts, _ = run(tmp_path, {
        "/etc/gdm3/daemon.conf": "[daemon]\n# c\n[security]\nDisallowTCP=false\n",
        "/etc/lightdm/lightdm.conf.d/50-tcp.conf": "[Seat:*]\nxserver-allow-tcp=true\nbad\n",
        "/etc/X11/xinit/xserverrc": "#!/bin/sh\nexec /usr/bin/X -nolisten tcp \"$@\"\n",
        "/usr/lib/xorg/Xorg": "ELF",
    })
    x11 = one(facts, "x11")
    assert kv(x11) == [
        ("security", "DisallowTCP", "false", 4), ("Seat:*", "xserver-allow-tcp", "true", 2),
        (None, "command", 'exec /usr/bin/X -nolisten tcp "$@"', 2),
    ]
    assert [m.reason for m in x11.malformed] == ["not key=value"]
    assert x11.executables == ("/usr/lib/xorg/Xorg",)


def test_mail_transfer_agents(tmp_path: Path) -> None:
    facts, _ = run(tmp_path, {
        "/etc/postfix/main.cf": "# c\nmynetworks = 127.0.0.0/8\n    [::1]/128\n"
                                "inet_interfaces = loopback-only\nnonsense\n",
        "/etc/postfix/master.cf": "smtp inet n - y - - smtpd\n  -o syslog_name=x\n"
                                  "#submission inet n - y - - smtpd\n",
        "/etc/exim4/update-exim4.conf.conf": "dc_local_interfaces='127.0.0.1 ; ::1'\n",
        "/etc/mail/sendmail.cf": "O DaemonPortOptions=Port=smtp,Addr=127.0.0.1, Name=MTA\n"
                                 "O Other=1\n",
    })
    postfix = one(facts, "postfix")
    assert kv(postfix) == [
        (None, "mynetworks", "127.0.0.0/8 [::1]/128", 2),
        (None, "inet_interfaces", "loopback-only", 4),
        ("master.cf", "service", "smtp inet n - y - - smtpd -o syslog_name=x", 1),
    ]
    assert [m.reason for m in postfix.malformed] == ["not name = value"]
    assert kv(one(facts, "exim4")) == [
        (None, "dc_local_interfaces", "127.0.0.1 ; ::1", 1)]
    assert kv(one(facts, "sendmail")) == [
        (None, "DaemonPortOptions", "Port=smtp,Addr=127.0.0.1, Name=MTA", 1)]


def test_apache_includes_sections_and_continuations(tmp_path: Path) -> None:
    facts, _ = run(tmp_path, {
        "/etc/apache2/apache2.conf": "Include ports.conf\n<Directory />\n  Require all \\\n"
                                     "    denied\n</Directory>\n"
                                     "IncludeOptional sites-enabled/*.conf\n"
                                     "IncludeOptional conf-enabled/*.conf\n",
        "/etc/apache2/ports.conf": "Listen 80\n",
        "/etc/apache2/sites-available/dav.conf": "<VirtualHost *:80>\n<Location /dav>\n"
                                                 "Dav On\n</Location>\n</VirtualHost>\n",
        "/etc/apache2/sites-enabled/dav.conf": Symlink("../sites-available/dav.conf"),
    })
    assert kv(one(facts, "apache")) == [
        (None, "listen", "80", 1), ("Directory /", "require", "all denied", 3),
        ("VirtualHost *:80 > Location /dav", "dav", "On", 3),
    ]


def test_nginx_blocks_includes_and_quotes(tmp_path: Path) -> None:
    facts, _ = run(tmp_path, {
        "/etc/nginx/nginx.conf": "events { }\nhttp {\n  include sites-enabled/*;\n"
                                 "  log_format main '$remote_addr {x};';\n}\nstray\n",
        "/etc/nginx/sites-enabled/default": "server { listen 80; # c\n"
                                            "  location /up { dav_methods PUT; }\n}\n",
    })
    nginx = one(facts, "nginx")
    assert kv(nginx) == [
        ("http > server", "listen", "80", 1),
        ("http > server > location /up", "dav_methods", "PUT", 2),
        ("http", "log_format", "main $remote_addr {x};", 4),
    ]
    assert nginx.malformed == (
        MalformedLine("directive without ';'", "stray", Source("/etc/nginx/nginx.conf", 6)),)


def _judged(facts: Facts) -> dict[str, set[Status]]:
    out: dict[str, set[Status]] = {}
    for rule_id in RULES:
        rule = rules().get(rule_id)
        assert rule is not None, rule_id
        out[rule_id] = {f.status for f in evaluate_rule(rule, facts, default_registry())}
    return out


def test_the_clean_example_passes_every_rule(tmp_path: Path) -> None:
    with DirectoryFS(write_tree(CLEAN, tmp_path / "root")) as fs:
        judged = _judged(collect_facts(fs))
    bad = {r: s for r, s in judged.items() if s & {Status.FAIL, Status.ERROR}}
    assert not bad, bad


@pytest.mark.network
@pytest.mark.slow
def test_a_clean_debian_root_passes_every_rule(debian_root_dir: Path) -> None:  # noqa: F811
    with DirectoryFS(debian_root_dir) as fs:
        facts = collect_facts(fs)
    judged = _judged(facts)
    bad = {r: s for r, s in judged.items() if s & {Status.FAIL, Status.ERROR}}
    assert not bad, bad
    assert {r for r, s in judged.items() if Status.PASS in s} == set(RULES)


def test_lighttpd_blocks_multiline_values_and_includes(tmp_path: Path) -> None:
    facts, _ = run(tmp_path, {
        "/etc/lighttpd/lighttpd.conf": 'server.modules = (\n  "mod_webdav",\n)\n'
                                       'server.modules += ( "mod_auth" )\n'
                                       'include "conf-enabled/*.conf"\n'
                                       'include_shell "/usr/share/lighttpd/x.pl"\n}\nnonsense\n',
        "/etc/lighttpd/conf-enabled/dav.conf": '$HTTP["url"] =~ "^/d(a)v" {\n'
                                               '  webdav.activate = "enable"\n} else {\n'
                                               '  x := "a=b"\n}\n',
    })
    lighttpd = one(facts, "lighttpd")
    assert kv(lighttpd) == [
        (None, "server.modules", '( "mod_webdav", )', 1),
        (None, "server.modules", '( "mod_auth" )', 4),
        (None, "include", "conf-enabled/*.conf", 5),
        ('$HTTP["url"] =~ "^/d(a)v"', "webdav.activate", '"enable"', 2),
        ("else", "x", '"a=b"', 4),
        (None, "include_shell", "/usr/share/lighttpd/x.pl", 6),
    ]
    assert [m.reason for m in lighttpd.malformed] == [
        "closing a block that is not open", "not key = value"]


def test_hostile_files_stay_linear(tmp_path: Path) -> None:
    """Continuations, open parentheses and deep nesting over a whole capped file."""
    n = 150_000
    facts, _ = run(tmp_path, {
        "/etc/postfix/main.cf": "mynetworks = 10.0.0.0/8\n" + " x\n" * n,
        "/etc/apache2/apache2.conf": "Listen \\\n" * n + "80\n",
        "/etc/lighttpd/lighttpd.conf": "server.modules = (\n" + '"m",\n' * n,
        "/etc/nginx/nginx.conf": "a {\n" * (n // 3) + "listen 80;\n",  # under the token cap
        "/etc/dovecot/dovecot.conf": "s {\n" * n + "ssl = no\n",
    })
    postfix, apache = one(facts, "postfix"), one(facts, "apache")
    assert postfix.settings[0].value.count("x") == n
    assert apache.settings[0].key == "listen"
    assert len(one(facts, "lighttpd").settings[0].value) > n
    listen = one(facts, "nginx").last("listen")
    assert listen is not None and listen.section is not None
    assert listen.section.count(" > ") == 31  # the outer 32 blocks name the section
    assert one(facts, "dovecot").last("ssl") is not None
