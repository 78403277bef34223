"""Pass and fail scenarios of the CIS server-services rules (``rules/service/``): the
unneeded-daemon table and the exposure of rsync, squid, dovecot, CUPS, the MTAs, dnsmasq,
WebDAV and the X server, and the X server / clear-text client packages."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from imageaudit.facts import Facts
from imageaudit.model import Severity, Status
from tests.rules.cases_package import debian_tree
from tests.rules.cases_service import ETC, LIB, enabled_by, unit
from tests.rules.harness import case
from tests.scenario import Symlink

BIG = "#" * (1024 * 1024 + 10) + "\n"

# --- service_unneeded_enabled ---------------------------------------------------------------

AVAHI = {**unit("avahi-daemon.service"),
         **unit("avahi-daemon.socket", "[Socket]\nListenDatagram=5353\n", "sockets.target")}
case("service_unneeded_enabled", Status.FAIL, AVAHI, resources={"avahi"},
     severity=Severity.MODERATE, name="avahi",
     message=f"The Avahi mDNS/DNS-SD daemon is enabled: {enabled_by('avahi-daemon.service')}; "
     f"{enabled_by('avahi-daemon.socket', 'sockets.target')}; it answers multicast DNS on "
     "every interface and announces the host and its services to the network (CIS Debian "
     "Linux 12 Benchmark: Ensure avahi daemon services are not in use)")
case("service_unneeded_enabled", Status.FAIL,
     {**unit("ypserv.service"), **unit("cups-browsed.service"), **unit("autofs.service"),
      **unit("kea-dhcp4-server.service")},
     resources={"nis-server", "cups-browsed", "autofs", "dhcp-server"}, name="several")
case("service_unneeded_enabled", Status.FAIL, unit("ypserv.service"),
     resources={"nis-server"}, severity=Severity.HIGH, name="nis-high")
# Debian's "nis" init script runs the client (ypbind); the server has units of its own
case("service_unneeded_enabled", Status.FAIL,
     {"/etc/init.d/nis": "#!/bin/sh\n", "/etc/rc2.d/S01nis": Symlink("../init.d/nis")},
     resources={"nis-client"}, severity=Severity.MODERATE, name="debian-nis-script")
case("service_unneeded_enabled", Status.FAIL, unit("bluetooth.service", target="bluetooth.target"),
     resources={"bluetooth"}, severity=Severity.LOW, name="bluetooth-low")
# the inetd test services count only while inetd runs; xinetd's `disable = yes` switches off
INETD_SMALL = ("echo stream tcp nowait root internal\nchargen dgram udp wait root internal\n"
               "#daytime stream tcp nowait root internal\n")
case("service_unneeded_enabled", Status.FAIL,
     {"/etc/inetd.conf": INETD_SMALL, **unit("inetd.service")},
     resources={"inetd-small-services"}, name="inetd-small")
case("service_unneeded_enabled", Status.PASS, {"/etc/inetd.conf": INETD_SMALL},
     name="inetd-not-running")
case("service_unneeded_enabled", Status.FAIL,
     {"/etc/xinetd.conf": "includedir /etc/xinetd.d\n", **unit("xinetd.service"),
      "/etc/xinetd.d/talk": "service talk\n{\n socket_type = dgram\n"
                            " server = /usr/sbin/in.talkd\n disable = no\n}\n",
      "/etc/xinetd.d/echo": "service echo\n{\n type = INTERNAL\n disable = yes\n}\n"},
     resources={"talk"}, name="xinetd-talk")
case("service_unneeded_enabled", Status.FAIL,
     unit("cockpit.socket", "[Socket]\nListenStream=9090\n", "sockets.target"),
     resources={"cockpit"}, name="cockpit")
# installed but not enabled, and masked
case("service_unneeded_enabled", Status.PASS,
     {**unit("avahi-daemon.service", enabled=False), **unit("ypserv.service"),
      f"{ETC}/ypserv.service": Symlink("/dev/null")})


def _command(*words: str) -> Callable[[Facts], Facts]:
    def attach(facts: Facts) -> Facts:
        image = dataclasses.replace(facts.image, details={"cmd": list(words)})
        return dataclasses.replace(facts, image=image)
    return attach


# a container runs its command, not the units it carries
case("service_unneeded_enabled", Status.PASS, AVAHI, kind="container", name="container",
     attach=_command("nginx", "-g", "daemon off;"))
case("service_unneeded_enabled", Status.FAIL, {}, kind="container", name="container-cmd",
     attach=_command("/usr/sbin/avahi-daemon", "--no-chroot"), resources={"avahi"})

# --- service_rsync_unauthenticated ----------------------------------------------------------

RSYNC = unit("rsync.service", "[Unit]\nConditionPathExists=/etc/rsyncd.conf\n[Service]\n"
                              "ExecStart=/usr/bin/rsync --daemon --no-detach\n")
RSYNC_ON = enabled_by("rsync.service")
RSYNCD = ("uid = nobody\n[pub]\n  path = /srv/pub\n  comment = public\n"
          "[upload]\n  path = /srv/in\n  read only = no\n"
          "[private]\n  path = /srv/private\n  auth users = backup\n"
          "  secrets file = /etc/rsyncd.secrets\n  read only = false\n")
case("service_rsync_unauthenticated", Status.FAIL, {"/etc/rsyncd.conf": RSYNCD, **RSYNC},
     resources={"[pub]", "[upload]"}, name="modules",
     message="rsync daemon module `[upload]` (/etc/rsyncd.conf) serves `/srv/in` to anyone "
     "without a password (no `auth users`) and lets them write (`read only = no`, "
     f"/etc/rsyncd.conf line 7); rsync is enabled: {RSYNC_ON}")
case("service_rsync_unauthenticated", Status.FAIL,
     {"/etc/rsyncd.conf": "[pub]\npath = /srv/pub\n", **RSYNC}, resources={"[pub]"},
     severity=Severity.MODERATE, name="read-only")
case("service_rsync_unauthenticated", Status.FAIL,
     {"/etc/rsyncd.conf": "read only = no\n&include /etc/rsyncd.d\n",
      "/etc/rsyncd.d/data.conf": "[data]\npath = /data\n", **RSYNC},
     resources={"[data]"}, severity=Severity.HIGH, name="global-writable-include")
case("service_rsync_unauthenticated", Status.PASS,
     {"/etc/rsyncd.conf": "address = 127.0.0.1\n" + RSYNCD, **RSYNC}, name="loopback")
case("service_rsync_unauthenticated", Status.PASS,
     {"/etc/rsyncd.conf": "[pub]\npath = /srv\nhosts allow = 127.0.0.1 ::1\n", **RSYNC},
     name="hosts-allow-local")
case("service_rsync_unauthenticated", Status.PASS,
     {"/etc/rsyncd.conf": "[private]\npath = /srv\nauth users = a, b\nread only = no\n",
      **RSYNC}, name="auth")
# Debian enables rsync.service, which starts only once /etc/rsyncd.conf exists
case("service_rsync_unauthenticated", Status.PASS, RSYNC, name="no-config")
case("service_rsync_unauthenticated", Status.PASS, {"/etc/rsyncd.conf": RSYNCD},
     name="disabled")
case("service_rsync_unauthenticated", Status.PASS,
     {"/etc/rsyncd.conf": RSYNCD, "/etc/default/rsync": "RSYNC_ENABLE=false\n",
      "/etc/init.d/rsync": "#!/bin/sh\n", "/etc/rc2.d/S01rsync": Symlink("../init.d/rsync")},
     name="sysv-not-enabled")
case("service_rsync_unauthenticated", Status.ERROR,
     {"/etc/rsyncd.conf": "[private]\npath = /srv\nauth users = b\n" + BIG + "[pub]\n"
                         "path = /srv/pub\n", **RSYNC}, name="cut")

# --- service_squid_open_proxy ---------------------------------------------------------------

SQUID = unit("squid.service")
SQUID_DEFAULT = ("acl localnet src 10.0.0.0/8\nacl SSL_ports port 443\n"
                 "acl Safe_ports port 80\nacl CONNECT method CONNECT\n"
                 "http_access deny !Safe_ports\nhttp_access deny CONNECT !SSL_ports\n"
                 "http_access allow localhost manager\nhttp_access deny manager\n"
                 "http_access allow localhost\nhttp_access deny all\nhttp_port 3128\n")
case("service_squid_open_proxy", Status.FAIL,
     {"/etc/squid/squid.conf": SQUID_DEFAULT.replace("http_access deny all",
                                                     "http_access allow all"), **SQUID},
     resources={"squid"},
     message="squid is an open proxy: `http_access allow all` (/etc/squid/squid.conf line 10) "
     f"allows every client; squid is enabled: {enabled_by('squid.service')}")
case("service_squid_open_proxy", Status.FAIL,
     {"/etc/squid/squid.conf": "include /etc/squid/conf.d/*.conf\nhttp_port 3128\n",
      "/etc/squid/conf.d/open.conf": "acl everyone src 0.0.0.0/0 ::/0\n"
                                     "http_access allow everyone\n", **SQUID},
     resources={"squid"}, name="src-any")
# with no line matching every client, squid applies the opposite of the last one
case("service_squid_open_proxy", Status.FAIL,
     {"/etc/squid/squid.conf": "http_port 3128\nhttp_access deny manager\n", **SQUID},
     resources={"squid"}, name="implicit-allow",
     message="squid is an open proxy: its last rule `http_access deny manager` "
     "(/etc/squid/squid.conf line 2) is a deny, so every other client is allowed; squid is "
     f"enabled: {enabled_by('squid.service')}")
case("service_squid_open_proxy", Status.PASS, {"/etc/squid/squid.conf": SQUID_DEFAULT, **SQUID})
case("service_squid_open_proxy", Status.PASS,
     {"/etc/squid/squid.conf": "http_port 127.0.0.1:3128\nhttp_access allow all\n", **SQUID},
     name="loopback")
case("service_squid_open_proxy", Status.PASS,
     {"/etc/squid/squid.conf": "http_access allow all\n"}, name="disabled")
# what was read passes, but an included file was cut: not a PASS
case("service_squid_open_proxy", Status.ERROR,
     {"/etc/squid/squid.conf": "include /etc/squid/conf.d/*.conf\n" + SQUID_DEFAULT,
      "/etc/squid/conf.d/local.conf": "acl x src 10.0.0.0/8\n" + BIG, **SQUID}, name="cut")

# --- service_mail_access_cleartext_auth ----------------------------------------------------

DOVECOT = unit("dovecot.service")
DOVECOT_ON = enabled_by("dovecot.service")
DOVECOT_CONF = ("protocols = imap pop3\n!include conf.d/*.conf\n"
                "!include_try /usr/share/dovecot/protocols.d/*.protocol\n")
case("service_mail_access_cleartext_auth", Status.FAIL,
     {"/etc/dovecot/dovecot.conf": DOVECOT_CONF,
      "/etc/dovecot/conf.d/10-auth.conf": "disable_plaintext_auth = no\nauth_mechanisms = plain\n",
      "/etc/dovecot/conf.d/10-ssl.conf": "ssl = no\n", **DOVECOT},
     resources={"dovecot"}, severity=Severity.HIGH, name="no-tls",
     message="dovecot accepts clear-text passwords on connections without TLS "
     "(`disable_plaintext_auth = no`, /etc/dovecot/conf.d/10-auth.conf line 1) and listens on "
     "all interfaces (no `listen`); TLS is off (`ssl = no`, /etc/dovecot/conf.d/10-ssl.conf "
     "line 1), so every login crosses the network readable; dovecot is enabled: "
     f"{DOVECOT_ON}")
case("service_mail_access_cleartext_auth", Status.FAIL,
     {"/etc/dovecot/dovecot.conf": "listen = *\nauth_allow_cleartext = yes\nssl = yes\n",
      **DOVECOT}, resources={"dovecot"}, severity=Severity.MODERATE, name="starttls-optional")
# Debian's defaults: the setting commented, ssl = yes
case("service_mail_access_cleartext_auth", Status.PASS,
     {"/etc/dovecot/dovecot.conf": DOVECOT_CONF,
      "/etc/dovecot/conf.d/10-auth.conf": "#disable_plaintext_auth = yes\n"
                                          "auth_mechanisms = plain\n",
      "/etc/dovecot/conf.d/10-ssl.conf": "ssl = yes\n", **DOVECOT})
case("service_mail_access_cleartext_auth", Status.PASS,
     {"/etc/dovecot/dovecot.conf": "disable_plaintext_auth = no\nssl = required\n", **DOVECOT},
     name="ssl-required")
case("service_mail_access_cleartext_auth", Status.PASS,
     {"/etc/dovecot/dovecot.conf": "listen = 127.0.0.1, ::1\ndisable_plaintext_auth = no\n"
                                   "ssl = no\n", **DOVECOT}, name="loopback")
case("service_mail_access_cleartext_auth", Status.ERROR,
     {"/etc/dovecot/dovecot.conf": "!include conf.d/*.conf\n",
      "/etc/dovecot/conf.d/10-auth.conf": Symlink("/run/dovecot/auth.conf"), **DOVECOT},
     name="unreadable")

# Cyrus: Debian's default cyrus.conf and imapd.conf, trimmed
CYRUS = unit("cyrus-imapd.service")
CYRUS_MASTER = ("START {\n\trecover\t\tcmd=\"/usr/sbin/cyrus ctl_cyrusdb -r\"\n}\n"
                "SERVICES {\n\timap\t\tcmd=\"imapd -U 30\" listen=\"imap\" prefork=0\n"
                "\t#imaps\t\tcmd=\"imapd -s -U 30\" listen=\"imaps\" prefork=0\n"
                "\tpop3\t\tcmd=\"pop3d -U 30\" listen=\"pop3\" prefork=0\n"
                "\tsieve\t\tcmd=\"timsieved\" listen=\"localhost:sieve\" prefork=0\n"
                "\tlmtpunix\tcmd=\"lmtpd\" listen=\"/run/cyrus/socket/lmtp\"\n}\n")
CYRUS_IMAPD = ("configdirectory: /var/lib/cyrus\nallowanonymouslogin: no\n"
               "allowplaintext: yes\nsasl_pwcheck_method: auxprop\n"
               "#tls_server_cert: /etc/ssl/certs/ssl-cert-snakeoil.pem\n")
case("service_mail_access_cleartext_auth", Status.FAIL,
     {"/etc/cyrus.conf": CYRUS_MASTER, "/etc/imapd.conf": CYRUS_IMAPD, **CYRUS},
     resources={"cyrus"}, severity=Severity.HIGH, name="cyrus-debian",
     message="Cyrus IMAP accepts clear-text passwords on connections without TLS "
     "(`allowplaintext: yes`, /etc/imapd.conf line 3) on `imap` on `imap` (/etc/cyrus.conf "
     "line 5), `pop3` on `pop3` (/etc/cyrus.conf line 7); no `tls_server_cert` is set, so TLS "
     "is not offered and every login crosses the network readable; Cyrus IMAP is enabled: "
     f"{enabled_by('cyrus-imapd.service')}")
case("service_mail_access_cleartext_auth", Status.FAIL,
     {"/etc/cyrus.conf": CYRUS_MASTER,
      "/etc/imapd.conf": CYRUS_IMAPD + "tls_server_cert: /etc/ssl/certs/imap.pem\n", **CYRUS},
     resources={"cyrus"}, severity=Severity.MODERATE, name="cyrus-starttls-optional")
case("service_mail_access_cleartext_auth", Status.PASS,
     {"/etc/cyrus.conf": CYRUS_MASTER,
      "/etc/imapd.conf": CYRUS_IMAPD.replace("allowplaintext: yes", "allowplaintext: no"),
      **CYRUS}, name="cyrus-tls-first")
# only TLS-wrapped services (-s) or loopback listeners
case("service_mail_access_cleartext_auth", Status.PASS,
     {"/etc/cyrus.conf": "SERVICES {\n  imaps cmd=\"imapd -s\" listen=\"imaps\"\n"
                         "  imap cmd=\"imapd\" listen=\"127.0.0.1:imap\"\n}\n",
      "/etc/imapd.conf": CYRUS_IMAPD, **CYRUS}, name="cyrus-tls-only")

# --- service_cups_remote --------------------------------------------------------------------

CUPS = unit("cups.service")
CUPS_DEFAULT = ("LogLevel warn\nListen localhost:631\nListen /run/cups/cups.sock\n"
                "Browsing No\n<Location />\n  Order allow,deny\n</Location>\n"
                "<Location /admin>\n  Order allow,deny\n</Location>\n"
                "<Policy default>\n  <Limit Send-Document>\n    Require user @OWNER @SYSTEM\n"
                "    Order deny,allow\n  </Limit>\n</Policy>\n")
case("service_cups_remote", Status.FAIL,
     {"/etc/cups/cupsd.conf": CUPS_DEFAULT.replace("Listen localhost:631", "Port 631")
      .replace("Browsing No", "Browsing Yes")
      .replace("<Location />\n  Order allow,deny\n", "<Location />\n  Order allow,deny\n"
               "  Allow @LOCAL\n"), **CUPS},
     resources={"cups"}, severity=Severity.MODERATE, name="shared",
     message="cupsd listens on the network (`Port 631`, /etc/cups/cupsd.conf line 2), shares "
     "its printers (`Browsing Yes`, /etc/cups/cupsd.conf line 4) and accepts print jobs from "
     "`@LOCAL` (/etc/cups/cupsd.conf line 7); a server image has no print server to offer "
     "(CIS: ensure print server services are not in use); CUPS is enabled: "
     f"{enabled_by('cups.service')}")
case("service_cups_remote", Status.FAIL,
     {"/etc/cups/cupsd.conf": CUPS_DEFAULT.replace("Listen localhost:631", "Listen 0.0.0.0:631")
      .replace("<Location /admin>\n  Order allow,deny\n",
               "<Location /admin>\n  Order allow,deny\n  Allow all\n"), **CUPS},
     resources={"cups"}, severity=Severity.HIGH, name="remote-admin")
case("service_cups_remote", Status.PASS, {"/etc/cups/cupsd.conf": CUPS_DEFAULT, **CUPS})
case("service_cups_remote", Status.ERROR,
     {"/etc/cups/cupsd.conf": Symlink("/run/cups/cupsd.conf"), **CUPS}, name="dangling")
case("service_cups_remote", Status.PASS,
     {"/etc/cups/cupsd.conf": CUPS_DEFAULT.replace("Listen localhost:631", "Port 631")},
     name="disabled")

# --- service_mta_not_local_only -------------------------------------------------------------

POSTFIX = unit("postfix.service")
POSTFIX_ON = enabled_by("postfix.service")
MASTER = ("smtp      inet  n       -       y       -       -       smtpd\n"
          "pickup    unix  n       -       y       60      1       pickup\n")
case("service_mta_not_local_only", Status.FAIL,
     {"/etc/postfix/main.cf": "myhostname = h\ninet_interfaces = all\n",
      "/etc/postfix/master.cf": MASTER, **POSTFIX},
     resources={"postfix"}, severity=Severity.MODERATE, name="postfix-all",
     message="postfix accepts mail from the network: it listens on `inet_interfaces = all` "
     "(/etc/postfix/main.cf line 2) (CIS: the mail transfer agent is configured for "
     f"local-only mode); postfix is enabled: {POSTFIX_ON}")
case("service_mta_not_local_only", Status.FAIL,
     {"/etc/postfix/main.cf": "mynetworks = 127.0.0.0/8\n  0.0.0.0/0\n",
      "/etc/postfix/master.cf": MASTER, **POSTFIX},
     resources={"postfix"}, severity=Severity.HIGH, name="postfix-relay")
case("service_mta_not_local_only", Status.FAIL,
     {"/etc/exim4/update-exim4.conf.conf": "dc_eximconfig_configtype='internet'\n"
                                           "dc_local_interfaces=''\n"
                                           "dc_relay_nets='0.0.0.0/0'\n",
      **unit("exim4.service")},
     resources={"exim4"}, severity=Severity.HIGH, name="exim-relay")
case("service_mta_not_local_only", Status.FAIL,
     {"/etc/mail/sendmail.cf": "O DaemonPortOptions=Port=smtp, Name=MTA\n",
      **unit("sendmail.service")}, resources={"sendmail"}, name="sendmail")
case("service_mta_not_local_only", Status.PASS,
     {"/etc/postfix/main.cf": "inet_interfaces = loopback-only\nmynetworks = 0.0.0.0/0\n",
      "/etc/postfix/master.cf": MASTER, **POSTFIX})
# no smtp inet service in master.cf: postfix does not listen at all
case("service_mta_not_local_only", Status.PASS,
     {"/etc/postfix/main.cf": "inet_interfaces = all\n",
      "/etc/postfix/master.cf": "#" + MASTER, **POSTFIX}, name="postfix-no-smtpd")
# Debian's exim4 default
case("service_mta_not_local_only", Status.PASS,
     {"/etc/exim4/update-exim4.conf.conf": "dc_eximconfig_configtype='local'\n"
                                           "dc_local_interfaces='127.0.0.1 ; ::1'\n"
                                           "dc_relay_nets=''\n",
      **unit("exim4.service")}, name="exim-local")
case("service_mta_not_local_only", Status.PASS,
     {"/etc/exim4/update-exim4.conf.conf": "dc_local_interfaces='<; 127.0.0.1.587 ; ::1.25'\n",
      **unit("exim4.service")}, name="exim-ports")
case("service_mta_not_local_only", Status.FAIL,
     {"/etc/exim4/update-exim4.conf.conf": "dc_local_interfaces='127.0.0.1 ; 192.0.2.7.25'\n",
      **unit("exim4.service")}, resources={"exim4"}, severity=Severity.MODERATE,
     name="exim-public",
     message="exim accepts mail from the network: it listens on "
     "`dc_local_interfaces=127.0.0.1 ; 192.0.2.7.25` (/etc/exim4/update-exim4.conf.conf line 1) "
     "(CIS: the mail transfer agent is configured for local-only mode); exim is enabled: "
     f"{enabled_by('exim4.service')}")
case("service_mta_not_local_only", Status.PASS,
     {"/etc/mail/sendmail.cf": "O DaemonPortOptions=Family=inet, Name=MTA-v4, Port=smtp, "
                               "Addr=127.0.0.1\n", **unit("sendmail.service")},
     name="sendmail-local")

# --- service_dnsmasq_open_resolver ----------------------------------------------------------

DNSMASQ = unit("dnsmasq.service")
case("service_dnsmasq_open_resolver", Status.FAIL,
     {"/etc/dnsmasq.conf": "domain-needed\nconf-dir=/etc/dnsmasq.d/,*.conf\n",
      "/etc/dnsmasq.d/public.conf": "interface=eth0\n",
      "/etc/dnsmasq.d/ignored.txt": "interface=lo\n", **DNSMASQ},
     resources={"dnsmasq"}, severity=Severity.HIGH, name="interface",
     message="dnsmasq answers DNS queries from anyone who reaches `interface=eth0` "
     "(/etc/dnsmasq.d/public.conf line 1) and resolves recursively for them: an open "
     f"resolver; dnsmasq is enabled: {enabled_by('dnsmasq.service')}")
case("service_dnsmasq_open_resolver", Status.FAIL,
     {"/etc/dnsmasq.conf": "# Configuration file for dnsmasq.\n#interface=\n", **DNSMASQ},
     resources={"dnsmasq"}, severity=Severity.MODERATE, name="local-service")
case("service_dnsmasq_open_resolver", Status.PASS,
     {"/etc/dnsmasq.conf": "listen-address=127.0.0.1\nbind-interfaces\n", **DNSMASQ})
case("service_dnsmasq_open_resolver", Status.PASS,
     {"/etc/dnsmasq.conf": "port=0\ndhcp-range=10.0.0.10,10.0.0.50\n", **DNSMASQ},
     name="dns-off")
case("service_dnsmasq_open_resolver", Status.PASS,
     {"/etc/dnsmasq.conf": "#interface=\n",
      "/etc/default/dnsmasq": 'DNSMASQ_OPTS="--listen-address=127.0.0.1 --bind-interfaces"\n',
      **DNSMASQ}, name="debian-opts")
# the Debian scripts pass -I for DNSMASQ_EXCEPT, which turns --local-service off
case("service_dnsmasq_open_resolver", Status.FAIL,
     {"/etc/dnsmasq.conf": "#interface=\n", "/etc/default/dnsmasq": 'DNSMASQ_EXCEPT="lo"\n',
      **DNSMASQ}, resources={"dnsmasq"}, severity=Severity.HIGH, name="debian-except")

# --- service_webdav_unauthenticated ---------------------------------------------------------

APACHE = unit("apache2.service")
APACHE_CONF = ("ServerRoot \"/etc/apache2\"\n<Directory />\n  Options FollowSymLinks\n"
               "  Require all denied\n</Directory>\nIncludeOptional sites-enabled/*.conf\n")
DAV_SITE = ("<VirtualHost *:80>\n  DocumentRoot /var/www/html\n"
            "  Alias /dav /var/www/dav\n  <Location /dav>\n    Dav On\n"
            "    Require all granted\n  </Location>\n</VirtualHost>\n")
case("service_webdav_unauthenticated", Status.FAIL,
     {"/etc/apache2/apache2.conf": APACHE_CONF,
      "/etc/apache2/sites-available/dav.conf": DAV_SITE,
      "/etc/apache2/sites-enabled/dav.conf": Symlink("../sites-available/dav.conf"), **APACHE},
     resources={"/etc/apache2/sites-enabled/dav.conf line 5"}, name="apache",
     message="Apache serves WebDAV in `<VirtualHost *:80 > Location /dav>` without "
     "authentication (`Dav On`, /etc/apache2/sites-enabled/dav.conf line 5, and no "
     "`Require valid-user`): anyone can upload, overwrite and delete files there; Apache "
     f"httpd is enabled: {enabled_by('apache2.service')}")
case("service_webdav_unauthenticated", Status.PASS,
     {"/etc/apache2/apache2.conf": APACHE_CONF,
      "/etc/apache2/sites-enabled/dav.conf": DAV_SITE.replace(
          "    Require all granted\n", "    AuthType Basic\n    AuthName dav\n"
          "    AuthUserFile /etc/apache2/dav.passwd\n    <LimitExcept GET OPTIONS>\n"
          "      Require valid-user\n    </LimitExcept>\n"), **APACHE}, name="apache-auth")
NGINX = unit("nginx.service")
NGINX_CONF = "events {}\nhttp {\n  include /etc/nginx/sites-enabled/*;\n}\n"
NGINX_DAV = ("server {\n  listen 80;\n  root /var/www;\n  location /upload {\n"
             "    dav_methods PUT DELETE MKCOL;\n    create_full_put_path on;\n  }\n}\n")
case("service_webdav_unauthenticated", Status.FAIL,
     {"/etc/nginx/nginx.conf": NGINX_CONF, "/etc/nginx/sites-enabled/default": NGINX_DAV,
      **NGINX},
     resources={"/etc/nginx/sites-enabled/default line 5"}, name="nginx")
case("service_webdav_unauthenticated", Status.PASS,
     {"/etc/nginx/nginx.conf": NGINX_CONF,
      "/etc/nginx/sites-enabled/default": NGINX_DAV.replace(
          "    create_full_put_path on;\n",
          "    limit_except GET {\n      auth_basic \"dav\";\n"
          "      auth_basic_user_file /etc/nginx/htpasswd;\n    }\n"), **NGINX},
     name="nginx-auth")
# more directives than are judged one by one: the rest is an ERROR, never a PASS
case("service_webdav_unauthenticated", Status.ERROR,
     {"/etc/nginx/nginx.conf": NGINX_CONF,
      "/etc/nginx/sites-enabled/default": "server {\n"
      + "  location /a { dav_methods PUT; deny all; }\n" * 201 + "}\n", **NGINX},
     name="too-many")
# a plain web server is not judged
case("service_webdav_unauthenticated", Status.PASS,
     {"/etc/nginx/nginx.conf": NGINX_CONF,
      "/etc/nginx/sites-enabled/default": "server {\n  listen 80;\n  root /var/www;\n}\n",
      **NGINX}, name="plain")

LIGHTTPD = unit("lighttpd.service")
LIGHTTPD_CONF = ('server.modules = ( "mod_access", "mod_webdav" )\nserver.port = 80\n'
                 'include "conf-enabled/*.conf"\ninclude_shell "/usr/share/lighttpd/x.pl"\n')
LIGHTTPD_DAV = ('$HTTP["url"] =~ "^/dav($|/)" {\n  webdav.activate = "enable" # on\n'
                '  webdav.sqlite-db-name = "/var/cache/lighttpd/webdav.db"\n}\n')
case("service_webdav_unauthenticated", Status.FAIL,
     {"/etc/lighttpd/lighttpd.conf": LIGHTTPD_CONF,
      "/etc/lighttpd/conf-enabled/10-webdav.conf": LIGHTTPD_DAV, **LIGHTTPD},
     resources={"/etc/lighttpd/conf-enabled/10-webdav.conf line 2"}, name="lighttpd")
case("service_webdav_unauthenticated", Status.PASS,
     {"/etc/lighttpd/lighttpd.conf": LIGHTTPD_CONF,
      "/etc/lighttpd/conf-enabled/10-webdav.conf": LIGHTTPD_DAV.replace(
          "}\n", '  auth.require = ( "" => ( "method" => "basic",\n'
          '                              "realm" => "dav", "require" => "valid-user" ) )\n}\n'),
      **LIGHTTPD}, name="lighttpd-auth")
case("service_webdav_unauthenticated", Status.PASS,
     {"/etc/lighttpd/lighttpd.conf": LIGHTTPD_CONF + 'webdav.is-readonly = "enable"\n',
      "/etc/lighttpd/conf-enabled/10-webdav.conf": LIGHTTPD_DAV, **LIGHTTPD},
     name="lighttpd-readonly")

# --- service_x11_tcp ------------------------------------------------------------------------

GDM = {f"{LIB}/gdm3.service": "[Service]\nExecStart=/usr/sbin/gdm3\n",
       **unit("gdm.service", target="graphical.target")}
case("service_x11_tcp", Status.FAIL,
     {"/etc/gdm3/daemon.conf": "[daemon]\n[security]\nDisallowTCP=false\n", **GDM},
     resources={"/etc/gdm3/daemon.conf line 3"},
     message="The X server accepts clients over TCP (`DisallowTCP=false`, "
     "/etc/gdm3/daemon.conf line 3): the X protocol (port 6000) lets a connected client read "
     "keystrokes and the screen; it runs: "
     f"{enabled_by('gdm.service', 'graphical.target')}")
case("service_x11_tcp", Status.FAIL,
     {"/etc/X11/xinit/xserverrc": "#!/bin/sh\nexec /usr/bin/X -listen tcp \"$@\"\n",
      "/usr/lib/xorg/Xorg": "ELF"},
     resources={"/etc/X11/xinit/xserverrc line 2"}, name="installed")
case("service_x11_tcp", Status.PASS,
     {"/etc/X11/xinit/xserverrc": "#!/bin/sh\nexec /usr/bin/X -nolisten tcp \"$@\"\n",
      "/etc/gdm3/daemon.conf": "[security]\n#DisallowTCP=false\n",
      "/usr/lib/xorg/Xorg": "ELF", **GDM})
# the setting alone, with no X server or display manager, runs nothing
case("service_x11_tcp", Status.PASS,
     {"/etc/lightdm/lightdm.conf": "[Seat:*]\nxserver-allow-tcp=true\n"}, name="no-x")

# --- service_x_server_installed / service_insecure_client_installed -------------------------

case("service_x_server_installed", Status.FAIL,
     debian_tree(("xserver-xorg-core", "2:21.1.7-3", "amd64"), ("bash", "5.2.15-2", "amd64")),
     resources={"xserver-xorg-core"})
case("service_x_server_installed", Status.PASS, debian_tree(("bash", "5.2.15-2", "amd64")))
case("service_insecure_client_installed", Status.FAIL,
     debian_tree(("telnet", "0.17+2.4-2", "all"), ("ldap-utils", "2.5.13", "amd64"),
                 ("openssh-client", "1:9.2p1-2", "amd64")),
     resources={"telnet", "ldap-utils"})
case("service_insecure_client_installed", Status.PASS,
     debian_tree(("openssh-client", "1:9.2p1-2", "amd64")))

# --- service_web_root_exposed ---------------------------------------------------------------

ROOT_SITE = "<VirtualHost *:80>\n  DocumentRoot /\n</VirtualHost>\n"
case("service_web_root_exposed", Status.FAIL,
     {"/etc/apache2/apache2.conf": APACHE_CONF.replace("Require all denied",
                                                       "Require all granted"),
      "/etc/apache2/sites-enabled/root.conf": ROOT_SITE, **APACHE},
     resources={"/etc/apache2/sites-enabled/root.conf line 2"}, name="apache",
     message="Apache serves the whole file system: `DocumentRoot /` "
     "(/etc/apache2/sites-enabled/root.conf line 2) maps the root directory and `Require all "
     "granted` (/etc/apache2/apache2.conf line 4) opens `<Directory />` to every client; "
     f"Apache httpd is enabled: {enabled_by('apache2.service')}")
# Debian's <Directory /> denies: the mapping serves nothing
case("service_web_root_exposed", Status.PASS,
     {"/etc/apache2/apache2.conf": APACHE_CONF,
      "/etc/apache2/sites-enabled/root.conf": ROOT_SITE, **APACHE}, name="apache-denied")
case("service_web_root_exposed", Status.FAIL,
     {"/etc/nginx/nginx.conf": NGINX_CONF,
      "/etc/nginx/sites-enabled/default": "server {\n  listen 80;\n  location /files/ {\n"
                                          "    alias /;\n    autoindex on;\n  }\n}\n",
      **NGINX},
     resources={"/etc/nginx/sites-enabled/default line 4"}, name="nginx",
     message="nginx serves the whole file system in `http > server > location /files/` "
     "(`alias /`, /etc/nginx/sites-enabled/default line 4) to every client, and lists its "
     "directories (`autoindex on`, /etc/nginx/sites-enabled/default line 5); nginx is "
     f"enabled: {enabled_by('nginx.service')}")
case("service_web_root_exposed", Status.PASS,
     {"/etc/nginx/nginx.conf": NGINX_CONF,
      "/etc/nginx/sites-enabled/default": "server {\n  listen 80;\n  root /var/www/html;\n"
                                          "  location /internal/ {\n    alias /;\n"
                                          "    deny all;\n  }\n}\n", **NGINX},
     name="nginx-denied")
case("service_web_root_exposed", Status.PASS,
     {"/etc/nginx/nginx.conf": NGINX_CONF,
      "/etc/nginx/sites-enabled/default": "server {\n  root /;\n}\n"}, name="disabled")
