"""Pass and fail scenarios of the service rules (``rules/service/``)."""

from __future__ import annotations

from imageaudit.model import Severity, Status
from tests.rules.harness import case
from tests.scenario import Dir, Entry, Symlink

Tree = dict[str, "Entry | str | bytes"]
LIB = "/lib/systemd/system"
ETC = "/etc/systemd/system"
WANTS = f"{ETC}/multi-user.target.wants"


def unit(name: str, body: str = "[Service]\nExecStart=/usr/sbin/daemon\n",
         target: str = "multi-user.target", enabled: bool = True) -> Tree:
    """A systemd unit file, enabled by a link in ``target``'s .wants directory."""
    tree: Tree = {f"{LIB}/{name}": body}
    if enabled:
        tree[f"{ETC}/{target}.wants/{name}"] = Symlink(f"{LIB}/{name}")
    return tree


def enabled_by(name: str, target: str = "multi-user.target") -> str:
    return f"systemd unit `{name}` is enabled ({ETC}/{target}.wants/{name})"


# --- service_telnet -------------------------------------------------------------------------

TELNET_INETD = "telnet stream tcp nowait root /usr/sbin/tcpd /usr/sbin/in.telnetd\n"

case("service_telnet", Status.FAIL,
     unit("telnet.socket", "[Socket]\nListenStream=23\nAccept=yes\n", "sockets.target"),
     resources={"telnet"}, name="systemd",
     message=f"telnet is enabled: {enabled_by('telnet.socket', 'sockets.target')}; logins and "
     "sessions cross the network in clear text")
case("service_telnet", Status.FAIL,
     {"/etc/inetd.conf": TELNET_INETD, **unit("inetd.service")},
     resources={"telnet"}, name="inetd",
     message="telnet is enabled: inetd runs `/usr/sbin/in.telnetd` as `telnet` "
     "(/etc/inetd.conf line 1); logins and sessions cross the network in clear text")
# the entry alone starts nothing: inetd itself is not enabled
case("service_telnet", Status.PASS, {"/etc/inetd.conf": TELNET_INETD}, name="inetd-off")
case("service_telnet", Status.PASS,
     {"/etc/inetd.conf": "#<off># " + TELNET_INETD, **unit("inetd.service")},
     name="commented")
case("service_telnet", Status.PASS,
     unit("telnet.socket", "[Socket]\nListenStream=23\n", "sockets.target", enabled=False),
     name="installed-not-enabled")

# --- service_rsh ----------------------------------------------------------------------------

XINETD = {"/etc/xinetd.conf": "includedir /etc/xinetd.d\n", **unit("xinetd.service")}
case("service_rsh", Status.FAIL,
     {**XINETD,
      "/etc/xinetd.d/rsh": "service shell\n{\n socket_type = stream\n"
                           " server = /usr/sbin/in.rshd\n disable = no\n}\n",
      "/etc/xinetd.d/rlogin": "service login\n{\n server = /usr/sbin/in.rlogind\n"
                              " disable = yes\n}\n",
      **unit("rexec.socket", "[Socket]\nListenStream=512\n", "sockets.target")},
     resources={"rsh", "rexec"},
     message="rsh is enabled: xinetd runs `/usr/sbin/in.rshd` as `shell` "
     "(/etc/xinetd.d/rsh line 1); it trusts host names and sends passwords in clear text")
case("service_rsh", Status.PASS,
     {**XINETD, "/etc/xinetd.d/rlogin": "service login\n{\n server = /usr/sbin/in.rlogind\n"
                                        " disable = yes\n}\n"})

# --- service_tftp ---------------------------------------------------------------------------

TFTP_DEFAULT = 'TFTP_USERNAME="tftp"\nTFTP_DIRECTORY="/srv/tftp"\nTFTP_ADDRESS=":69"\n'
case("service_tftp", Status.FAIL,
     {"/etc/default/tftpd-hpa": TFTP_DEFAULT + 'TFTP_OPTIONS="--secure"\n',
      **unit("tftpd-hpa.service")},
     resources={"tftp"}, severity=Severity.HIGH, name="read-only",
     message=f"TFTP is enabled: {enabled_by('tftpd-hpa.service')}; anyone on the network can "
     "read the served files without authentication")
case("service_tftp", Status.FAIL,
     {"/etc/default/tftpd-hpa": TFTP_DEFAULT + 'TFTP_OPTIONS="--secure --create"\n',
      "/etc/init.d/tftpd-hpa": "#!/bin/sh\n",
      "/etc/rc2.d/S01tftpd-hpa": Symlink("../init.d/tftpd-hpa")},
     resources={"tftp"}, severity=Severity.CRITICAL, name="create",
     message="TFTP is enabled: init script `tftpd-hpa` starts in runlevels 2 "
     "(/etc/rc2.d/S01tftpd-hpa); anyone on the network can read the served files without "
     "authentication, and `--create` lets anyone upload new files "
     "(/etc/default/tftpd-hpa line 4)")
case("service_tftp", Status.FAIL,
     {**XINETD, "/etc/xinetd.d/tftp": "service tftp\n{\n socket_type = dgram\n"
                                      " server = /usr/sbin/in.tftpd\n"
                                      " server_args = -s /var/lib/tftpboot\n disable = no\n}\n",
      "/var/lib/tftpboot": Dir(mode=0o777)},
     resources={"tftp"}, severity=Severity.CRITICAL, name="writable-root",
     message="TFTP is enabled: xinetd runs `/usr/sbin/in.tftpd` as `tftp` "
     "(/etc/xinetd.d/tftp line 1); anyone on the network can read the served files without "
     "authentication, and the served directory `/var/lib/tftpboot` is world-writable "
     "(mode 0777)")
case("service_tftp", Status.PASS,
     {"/etc/default/tftpd-hpa": TFTP_DEFAULT + 'TFTP_OPTIONS="--secure --create"\n',
      **unit("tftpd-hpa.service", enabled=False)})

# --- service_ftp_anonymous ------------------------------------------------------------------

case("service_ftp_anonymous", Status.FAIL,
     {"/etc/vsftpd.conf": "listen=YES\nanonymous_enable=YES\n", **unit("vsftpd.service")},
     resources={"vsftpd"}, severity=Severity.HIGH, name="read",
     message="vsftpd allows anonymous logins (`anonymous_enable=YES`, /etc/vsftpd.conf line 2) "
     f"and is enabled: {enabled_by('vsftpd.service')}")
case("service_ftp_anonymous", Status.FAIL,
     {"/etc/vsftpd.conf": "listen=YES\nanonymous_enable=yes\nwrite_enable=YES\n"
                          "anon_upload_enable=YES\n", **unit("vsftpd.service")},
     resources={"vsftpd"}, severity=Severity.CRITICAL, name="upload",
     message="vsftpd allows anonymous logins (`anonymous_enable=yes`, /etc/vsftpd.conf line 2) "
     f"and is enabled: {enabled_by('vsftpd.service')}; anonymous users can also write "
     "(`anon_upload_enable=YES`, /etc/vsftpd.conf line 4, with `write_enable=YES`, "
     "/etc/vsftpd.conf line 3)")
# anon_upload_enable without write_enable uploads nothing
case("service_ftp_anonymous", Status.FAIL,
     {"/etc/vsftpd.conf": "anonymous_enable=YES\nanon_upload_enable=YES\n",
      **unit("vsftpd.service")},
     resources={"vsftpd"}, severity=Severity.HIGH, name="upload-without-write")
case("service_ftp_anonymous", Status.PASS,
     {"/etc/vsftpd.conf": "listen=YES\nanonymous_enable=NO\nlocal_enable=YES\n",
      **unit("vsftpd.service")})
# absent: off by default since vsftpd 3.0
case("service_ftp_anonymous", Status.PASS,
     {"/etc/vsftpd.conf": "listen=YES\n", **unit("vsftpd.service")}, name="default")
case("service_ftp_anonymous", Status.PASS,
     {"/etc/vsftpd.conf": "anonymous_enable=YES\n", **unit("vsftpd.service", enabled=False)},
     name="disabled")

# --- service_nfs_server / service_rpcbind / service_samba -----------------------------------

case("service_nfs_server", Status.FAIL, unit("nfs-server.service"), resources={"nfs"},
     message=f"The NFS server is enabled: {enabled_by('nfs-server.service')}; it serves file "
     "systems to the network")
case("service_nfs_server", Status.PASS, unit("nfs-server.service", enabled=False))
case("service_rpcbind", Status.FAIL,
     {**unit("rpcbind.socket", "[Socket]\nListenStream=111\n", "sockets.target"),
      **unit("rpcbind.service")},
     resources={"rpcbind"},
     message=f"rpcbind is enabled: {enabled_by('rpcbind.service')}; "
     f"{enabled_by('rpcbind.socket', 'sockets.target')}; the portmapper answers on port 111 on "
     "every interface")
case("service_rpcbind", Status.PASS,
     {**unit("rpcbind.service"), f"{ETC}/rpcbind.service": Symlink("/dev/null")},
     name="masked")
case("service_samba", Status.FAIL,
     {"/etc/init.d/smbd": "#!/bin/sh\n", "/etc/rc3.d/S02smbd": Symlink("../init.d/smbd"),
      "/etc/rc5.d/S02smbd": Symlink("../init.d/smbd")},
     resources={"samba"},
     message="Samba is enabled: init script `smbd` starts in runlevels 3,5 "
     "(/etc/rc3.d/S02smbd); it serves SMB shares to the network")
case("service_samba", Status.PASS, {"/etc/init.d/smbd": "#!/bin/sh\n",
                                    "/etc/rc1.d/K01smbd": Symlink("../init.d/smbd")})

# --- service_snmp_default_community ---------------------------------------------------------

SNMPD = unit("snmpd.service")
case("service_snmp_default_community", Status.FAIL,
     {"/etc/snmp/snmpd.conf": "agentAddress udp:161\nrocommunity public default\n"
                              "rwcommunity private 10.0.0.0/8\nrocommunity public localhost\n",
      **SNMPD},
     resources={"rocommunity public", "rwcommunity private"},
     message="snmpd grants read-only access to any host with the well-known community `public` "
     f"(rocommunity, /etc/snmp/snmpd.conf line 2); snmpd is enabled: {enabled_by('snmpd.service')}")
case("service_snmp_default_community", Status.FAIL,
     {"/etc/snmp/snmpd.conf": "com2sec rwuser default private\ngroup rwgroup v2c rwuser\n"
                              'access rwgroup "" any noauth exact all all none\n', **SNMPD},
     resources={"com2sec private"}, severity=Severity.CRITICAL, name="com2sec-write",
     message="snmpd grants read-write access to any host with the well-known community "
     f"`private` (com2sec, /etc/snmp/snmpd.conf line 1); snmpd is enabled: "
     f"{enabled_by('snmpd.service')}")
case("service_snmp_default_community", Status.FAIL,
     {"/etc/snmp/snmpd.conf": "com2sec ro default public\ngroup rog v2c ro\n"
                              'access rog "" any noauth exact systemview none none\n', **SNMPD},
     resources={"com2sec public"}, severity=Severity.HIGH, name="com2sec-read")
# Debian's stock configuration: the agent listens on loopback only
case("service_snmp_default_community", Status.PASS,
     {"/etc/snmp/snmpd.conf": "agentaddress udp:127.0.0.1:161,udp6:[::1]:161\n"
                              "rocommunity public default -V systemonly\n", **SNMPD},
     name="loopback-agent")
case("service_snmp_default_community", Status.PASS,
     {"/etc/snmp/snmpd.conf": "rocommunity Xk4s9aQ2 192.0.2.0/24\n", **SNMPD})

# --- service_ntp_monlist --------------------------------------------------------------------

NTP = unit("ntp.service")
case("service_ntp_monlist", Status.FAIL,
     {"/etc/ntp.conf": "server 0.pool.ntp.org\nrestrict -4 default kod notrap nomodify nopeer "
                       "noquery\n", **NTP},
     resources={"ntpd"}, name="no-ipv6-default",
     message="ntpd answers mode 7 (monlist) queries from any host: no default restriction for "
     "IPv6, and monitoring is not disabled (no `disable monitor`); ntpd is enabled: "
     f"{enabled_by('ntp.service')}")
case("service_ntp_monlist", Status.FAIL,
     {"/etc/ntp.conf": "restrict default kod nomodify notrap\nrestrict 127.0.0.1\n", **NTP},
     resources={"ntpd"},
     message="ntpd answers mode 7 (monlist) queries from any host: the IPv4 default "
     "restriction has no `noquery` (kod nomodify notrap, /etc/ntp.conf line 1); the IPv6 "
     "default restriction has no `noquery` (kod nomodify notrap, /etc/ntp.conf line 1), and "
     f"monitoring is not disabled (no `disable monitor`); ntpd is enabled: "
     f"{enabled_by('ntp.service')}")
case("service_ntp_monlist", Status.PASS,
     {"/etc/ntp.conf": "restrict default kod notrap nomodify nopeer noquery limited\n", **NTP})
case("service_ntp_monlist", Status.PASS,
     {"/etc/ntp.conf": "restrict default kod nomodify\ndisable monitor\n", **NTP},
     name="monitor-off")
case("service_ntp_monlist", Status.PASS,
     {"/etc/ntpsec/ntp.conf": "restrict default kod nomodify\n", **unit("ntpsec.service")},
     name="ntpsec")
case("service_ntp_monlist", Status.PASS,
     {"/etc/ntp.conf": "restrict default kod nomodify\n", **unit("ntp.service", enabled=False)},
     name="disabled")

# --- service_dns_open_resolver --------------------------------------------------------------

NAMED = unit("named.service")
case("service_dns_open_resolver", Status.FAIL,
     {"/etc/bind/named.conf": 'options {\n directory "/var/cache/bind";\n recursion yes;\n'
                              " allow-query { any; };\n};\n", **NAMED},
     resources={"options"}, severity=Severity.HIGH,
     message="BIND named resolves recursively for any client (`allow-query { any; }`, "
     "/etc/bind/named.conf line 4) in `options`; named is enabled: "
     f"{enabled_by('named.service')}")
case("service_dns_open_resolver", Status.FAIL,
     {"/etc/bind/named.conf": 'options {\n directory "/var/cache/bind";\n};\n', **NAMED},
     resources={"options"}, severity=Severity.MODERATE, name="default-acl",
     message="BIND named resolves recursively for every host on the machine's networks: no "
     "allow-recursion, allow-query-cache or allow-query, so BIND's default "
     "`{ localnets; localhost; }` applies in `options`; named is enabled: "
     f"{enabled_by('named.service')}")
case("service_dns_open_resolver", Status.FAIL,
     {"/etc/bind/named.conf": "options {\n allow-recursion { 10.0.0.0/8; localhost; };\n};\n"
                              'view "ext" {\n allow-recursion { any; };\n};\n'
                              'view "int" {\n match-clients { 10/8; };\n};\n', **NAMED},
     resources={"view ext"}, severity=Severity.HIGH, name="view")
case("service_dns_open_resolver", Status.PASS,
     {"/etc/bind/named.conf": "options {\n allow-query { any; };\n"
                              " allow-recursion { 192.0.2.0/24; localhost; };\n};\n", **NAMED})
case("service_dns_open_resolver", Status.PASS,
     {"/etc/bind/named.conf": "options {\n recursion no;\n allow-query { any; };\n};\n",
      **NAMED}, name="authoritative")
case("service_dns_open_resolver", Status.PASS,
     {"/etc/bind/named.conf": "options {\n listen-on { 127.0.0.1; };\n"
                              " listen-on-v6 { ::1; };\n};\n", **NAMED}, name="loopback")
