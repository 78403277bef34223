"""Pass and fail scenarios of the named-daemon exposure rules (issue 14, part B).

dockerd, kubelet, Jupyter, VNC, X access control, slapd, MySQL/MariaDB accounts, the Redis
ACL file, ProFTPD and Pure-FTPd anonymous logins, Samba usershares.
"""

from __future__ import annotations

import json

from imageaudit.model import Severity, Status
from tests.rules.cases_service import enabled_by, unit
from tests.rules.harness import case
from tests.scenario import Symlink

# --- service_docker_tcp_unauthenticated -------------------------------------------------------

DOCKER = unit("docker.service", "[Service]\nExecStart=/usr/bin/dockerd -H fd://\n")
DOCKER_ON = enabled_by("docker.service")
DJSON = "/etc/docker/daemon.json"
case("service_docker_tcp_unauthenticated", Status.FAIL,
     {DJSON: json.dumps({"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"]}),
      **DOCKER},
     resources={"dockerd"}, severity=Severity.CRITICAL, name="daemon-json",
     message=f"dockerd listens on `tcp://0.0.0.0:2375` ({DJSON}) without TLS (no "
     "`--tlsverify`): anyone who reaches it controls the Docker engine, which is root on the "
     f"host; it is enabled: {DOCKER_ON}")
DROPIN = "/etc/systemd/system/docker.service.d/override.conf"
case("service_docker_tcp_unauthenticated", Status.FAIL,
     {DROPIN: "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H fd:// -H tcp://:2375 --tls\n",
      **DOCKER},
     resources={"dockerd"}, name="drop-in",
     message="dockerd listens on `tcp://:2375` (" + DROPIN + " line 3) with TLS but without "
     f"client verification (`--tls `, {DROPIN} line 3): anyone who reaches it controls the "
     f"Docker engine, which is root on the host; it is enabled: {DOCKER_ON}")
case("service_docker_tcp_unauthenticated", Status.FAIL,
     {"/etc/default/docker": 'DOCKER_OPTS="--dns 8.8.8.8 -H tcp://0.0.0.0:2375"\n',
      "/lib/systemd/system/docker.service": "[Service]\nEnvironmentFile=-/etc/default/docker\n"
      "ExecStart=/usr/bin/dockerd $DOCKER_OPTS\n",
      "/etc/systemd/system/multi-user.target.wants/docker.service":
          Symlink("/lib/systemd/system/docker.service")},
     resources={"dockerd"}, name="default-file")
case("service_docker_tcp_unauthenticated", Status.PASS,
     {DJSON: json.dumps({"hosts": ["tcp://0.0.0.0:2376"], "tlsverify": True,
                         "tlscacert": "/etc/docker/ca.pem"}), **DOCKER}, name="tlsverify")
case("service_docker_tcp_unauthenticated", Status.PASS,
     {DJSON: json.dumps({"hosts": ["tcp://127.0.0.1:2375"]}), **DOCKER}, name="loopback")
case("service_docker_tcp_unauthenticated", Status.PASS,
     {DJSON: json.dumps({"hosts": ["tcp://0.0.0.0:2375"]}),
      **unit("docker.service", enabled=False)}, name="disabled")
case("service_docker_tcp_unauthenticated", Status.PASS, {**DOCKER}, name="unix-only")
case("service_docker_tcp_unauthenticated", Status.ERROR,
     {DJSON: Symlink("/run/docker/daemon.json"), **DOCKER}, name="unreadable")

# --- service_kubelet_anonymous ----------------------------------------------------------------

KUBEADM = "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"
KUBELET_UNIT = "[Service]\nExecStart=/usr/bin/kubelet\n"
KUBEADM_DROPIN = (
    "[Service]\nEnvironment=\"KUBELET_KUBECONFIG_ARGS=--kubeconfig=/etc/kubernetes/kubelet.conf\"\n"
    "Environment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"\n"
    "EnvironmentFile=-/etc/default/kubelet\nExecStart=\n"
    "ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS "
    "$KUBELET_EXTRA_ARGS\n")
KCONF = "/var/lib/kubelet/config.yaml"
SAFE_KCONF = ("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
              "authentication:\n  anonymous:\n    enabled: false\n  webhook:\n    enabled: true\n"
              "authorization:\n  mode: Webhook\n")
KUBELET = unit("kubelet.service", KUBELET_UNIT)
case("service_kubelet_anonymous", Status.FAIL, {**KUBELET},
     resources={"kubelet anonymous-auth", "kubelet read-only-port"}, name="flag-defaults",
     message="The kubelet accepts anonymous requests (on by the kubelet's defaults without a "
     "`--config` file) and authorizes every request (AlwaysAllow by the kubelet's defaults "
     "without a `--config` file): anyone who reaches port 10250 can run commands in every pod; "
     f"it is enabled: {enabled_by('kubelet.service')}")
case("service_kubelet_anonymous", Status.FAIL,
     {KUBEADM: KUBEADM_DROPIN, **KUBELET,
      KCONF: "kind: KubeletConfiguration\nauthentication:\n  anonymous:\n    enabled: true\n"
             "authorization:\n  mode: AlwaysAllow\n"},
     resources={"kubelet anonymous-auth"}, severity=Severity.CRITICAL, name="config-file")
case("service_kubelet_anonymous", Status.FAIL,
     {KUBEADM: KUBEADM_DROPIN, **KUBELET, KCONF: SAFE_KCONF,
      "/etc/default/kubelet": "KUBELET_EXTRA_ARGS=--anonymous-auth=true\n"},
     resources={"kubelet anonymous-auth"}, severity=Severity.MODERATE, name="extra-args")
case("service_kubelet_anonymous", Status.FAIL,
     {KUBEADM: KUBEADM_DROPIN, **KUBELET, KCONF: SAFE_KCONF + "readOnlyPort: 10255\n"},
     resources={"kubelet read-only-port"}, severity=Severity.HIGH, name="read-only-port")
case("service_kubelet_anonymous", Status.PASS,
     {KUBEADM: KUBEADM_DROPIN, **KUBELET, KCONF: SAFE_KCONF})
# kubeadm writes config.yaml at join time: an image before join has none
case("service_kubelet_anonymous", Status.PASS, {KUBEADM: KUBEADM_DROPIN, **KUBELET},
     name="before-join")
case("service_kubelet_anonymous", Status.PASS,
     unit("kubelet.service", KUBELET_UNIT, enabled=False), name="disabled")

# --- service_jupyter_unauthenticated ----------------------------------------------------------

JCONF = "/etc/jupyter/jupyter_server_config.py"
JUPYTER = unit("jupyter.service", "[Service]\nExecStart=/usr/local/bin/jupyter lab\n")
case("service_jupyter_unauthenticated", Status.FAIL,
     {JCONF: "c = get_config()  # noqa\nc.ServerApp.ip = '0.0.0.0'\nc.ServerApp.token = ''\n",
      **JUPYTER},
     resources={"jupyter"}, severity=Severity.CRITICAL, name="config-py",
     message=f"Jupyter listens on `0.0.0.0` ({JCONF} line 2) without a token "
     f"(`ServerApp.token = ''`, {JCONF} line 3) or a password: anyone who reaches it runs "
     f"code as its user; it is enabled: {enabled_by('jupyter.service')}")
case("service_jupyter_unauthenticated", Status.FAIL,
     unit("jupyter.service", "[Service]\nExecStart=/usr/local/bin/jupyter notebook "
          "--ip=0.0.0.0 --NotebookApp.token='' --NotebookApp.password=''\n"),
     resources={"jupyter"}, name="command-line")
case("service_jupyter_unauthenticated", Status.FAIL,
     {"/root/.jupyter/jupyter_notebook_config.json":
          json.dumps({"NotebookApp": {"ip": "*", "token": ""}}), **JUPYTER},
     resources={"jupyter"}, name="json")
# the docker-stacks configuration: all interfaces, a generated token
case("service_jupyter_unauthenticated", Status.PASS,
     {JCONF: "c.ServerApp.ip = '0.0.0.0'\nc.ServerApp.port = 8888\n", **JUPYTER})
case("service_jupyter_unauthenticated", Status.PASS,
     {JCONF: "c.ServerApp.ip = '0.0.0.0'\nc.ServerApp.token = ''\n"
             "c.PasswordIdentityProvider.hashed_password = 'argon2:$argon2id$v=19$x'\n",
      **JUPYTER}, name="password")
case("service_jupyter_unauthenticated", Status.PASS,
     {JCONF: "c.ServerApp.token = ''\n", **JUPYTER}, name="localhost")
# not a literal: never taken as empty (the file is never run)
case("service_jupyter_unauthenticated", Status.PASS,
     {JCONF: "import os\nc.ServerApp.ip = '0.0.0.0'\n"
             "c.ServerApp.token = os.environ.get('TOKEN', '')\n", **JUPYTER}, name="expression")
case("service_jupyter_unauthenticated", Status.PASS,
     {JCONF: "c.ServerApp.ip = '0.0.0.0'\nc.ServerApp.token = ''\n"}, name="disabled")

# --- service_vnc_no_password ------------------------------------------------------------------

X11VNC = "/lib/systemd/system/x11vnc.service"
case("service_vnc_no_password", Status.FAIL,
     unit("x11vnc.service", "[Service]\nExecStart=/usr/bin/x11vnc -display :0 -forever -nopw\n"),
     resources={f"{X11VNC} line 2"}, name="x11vnc-unit",
     message=f"`x11vnc` serves the desktop over VNC to the network with `-nopw`: no password "
     f"({X11VNC} line 2); it runs: {enabled_by('x11vnc.service')}")
case("service_vnc_no_password", Status.FAIL,
     {"/etc/xdg/autostart/x11vnc.desktop":
          "[Desktop Entry]\nType=Application\nExec=x11vnc -forever -shared -display :0\n",
      **unit("lightdm.service")},
     resources={"/etc/xdg/autostart/x11vnc.desktop line 3"}, name="autostart")
case("service_vnc_no_password", Status.FAIL,
     {"/etc/tigervnc/vncserver-config-mandatory": "securitytypes=none\n",
      **unit("vncserver.service", "[Service]\nExecStart=/usr/bin/vncserver :1\n")},
     resources={"/etc/tigervnc/vncserver-config-mandatory"}, name="tigervnc")
case("service_vnc_no_password", Status.PASS,
     unit("x11vnc.service", "[Service]\nExecStart=/usr/bin/x11vnc -forever -rfbauth "
          "/etc/x11vnc.pass\n"))
case("service_vnc_no_password", Status.PASS,
     unit("x11vnc.service", "[Service]\nExecStart=/usr/bin/x11vnc -nopw -localhost\n"),
     name="localhost")
case("service_vnc_no_password", Status.PASS,
     {"/etc/xdg/autostart/x11vnc.desktop": "[Desktop Entry]\nExec=x11vnc -nopw\n"},
     name="no-display-manager")
case("service_vnc_no_password", Status.PASS,
     {"/etc/tigervnc/vncserver-config-defaults": "# securitytypes=vncauth,tlsvnc\n"
      "securitytypes=none\nlocalhost\n",
      **unit("vncserver.service", "[Service]\nExecStart=/usr/bin/vncserver :1\n")},
     name="tigervnc-localhost")

# --- service_x11_access_control ---------------------------------------------------------------

XHOST = "/etc/X11/Xsession.d/90open"
LIGHTDM = unit("lightdm.service")
case("service_x11_access_control", Status.FAIL,
     {XHOST: "xhost +\n", **LIGHTDM}, resources={f"{XHOST} line 1"},
     severity=Severity.MODERATE, name="local",
     message=f"`xhost +` ({XHOST} line 1) switches X access control off: any local user or "
     "process can open windows on the display and read its keystrokes; it runs at login: "
     f"{enabled_by('lightdm.service')}")
case("service_x11_access_control", Status.FAIL,
     {XHOST: "xhost +\n", "/etc/lightdm/lightdm.conf": "[Seat:*]\nxserver-allow-tcp=true\n",
      **LIGHTDM}, resources={f"{XHOST} line 1"}, severity=Severity.HIGH, name="tcp")
case("service_x11_access_control", Status.PASS,
     {XHOST: "xhost +si:localuser:kiosk\n", **LIGHTDM})
case("service_x11_access_control", Status.PASS, {XHOST: "xhost +\n"}, name="no-display-manager")

# --- service_ldap_anonymous_bind --------------------------------------------------------------

SLAPD_D = "/etc/ldap/slapd.d"
CN_CONFIG = ("dn: cn=config\nobjectClass: olcGlobal\ncn: config\n"
             "olcArgsFile: /var/run/slapd/slapd.args\n")
FRONTEND = ("dn: olcDatabase={-1}frontend\nobjectClass: olcFrontendConfig\n"
            "olcAccess: {0}to * by dn.exact=gidNumber=0+uidNumber=0,cn=peercred,cn=external\n"
            " ,cn=auth manage by * break\nolcAccess: {1}to dn.exact=\"\" by * read\n")
MDB = ("dn: olcDatabase={1}mdb\nobjectClass: olcMdbConfig\nolcDatabase: {1}mdb\n"
       "olcSuffix: dc=example,dc=org\n"
       "olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none\n"
       "olcAccess: {1}to attrs=shadowLastChange by self write by * read\n"
       "olcAccess: {2}to * by * read\n")
MDB_PATH = f"{SLAPD_D}/cn=config/olcDatabase={{1}}mdb.ldif"
SLAPD_FILES = {"/etc/default/slapd": 'SLAPD_SERVICES="ldap:/// ldapi:///"\n',
               f"{SLAPD_D}/cn=config/olcDatabase={{-1}}frontend.ldif": FRONTEND, MDB_PATH: MDB}
SLAPD = {**SLAPD_FILES, **unit("slapd.service")}
case("service_ldap_anonymous_bind", Status.FAIL,
     {f"{SLAPD_D}/cn=config.ldif": CN_CONFIG, **SLAPD},
     resources={"slapd mdb"}, severity=Severity.HIGH, name="debian-default",
     message="slapd accepts anonymous binds on `ldap:///` (no `olcDisallows: bind_anon` or "
     "`disallow bind_anon`) and gives anonymous clients `read` access to database `mdb` "
     f"(`to * by * read`, {MDB_PATH} line 7); it is "
     f"enabled: {enabled_by('slapd.service')}")
case("service_ldap_anonymous_bind", Status.FAIL,
     {"/etc/ldap/slapd.conf": "include /etc/ldap/schema/core.schema\n"
      "database mdb\nsuffix \"dc=example,dc=org\"\naccess to *\n  by * write\n",
      **unit("slapd.service")},
     resources={"slapd mdb"}, severity=Severity.CRITICAL, name="slapd-conf-write")
case("service_ldap_anonymous_bind", Status.PASS,
     {f"{SLAPD_D}/cn=config.ldif": CN_CONFIG + "olcDisallows: bind_anon\n", **SLAPD})
case("service_ldap_anonymous_bind", Status.PASS,
     {f"{SLAPD_D}/cn=config.ldif": CN_CONFIG, **SLAPD,
      "/etc/default/slapd": 'SLAPD_SERVICES="ldap://127.0.0.1:389/ ldapi:///"\n'},
     name="loopback")
# Debian's frontend (root DSE and subschema public) and attribute lines open no entry
case("service_ldap_anonymous_bind", Status.PASS,
     {f"{SLAPD_D}/cn=config.ldif": CN_CONFIG, **SLAPD,
      MDB_PATH: MDB.replace("{2}to * by * read", "{2}to * by users read by * none")},
     name="acl-users-only")
case("service_ldap_anonymous_bind", Status.PASS,
     {f"{SLAPD_D}/cn=config.ldif": CN_CONFIG, **SLAPD_FILES,
      **unit("slapd.service", enabled=False)},
     name="disabled")

# --- service_mysql_empty_password -------------------------------------------------------------

MAD = "/var/lib/mysql/mysql/global_priv.MAD"


def aria_table(rows: list[tuple[str, str, dict[str, object] | None]],
               deleted: frozenset[int] = frozenset()) -> bytes:
    """A ``global_priv.MAD`` as Aria writes it: a bitmap page, then one head page whose
    directory lists the rows (offset 0 for those in ``deleted``)."""
    head = bytearray(8192)
    head[7], head[8] = 1, len(rows)
    offset = 12
    for i, (host, user, priv) in enumerate(rows):
        h, u = host.encode(), user.encode()
        p = json.dumps(priv, separators=(",", ":")).encode() if priv is not None else b""
        empty = (0 if h else 1) | (0 if u else 2) | (0 if p else 4)
        lengths = (len(h).to_bytes(2, "little") if h else b"") + (
            len(u).to_bytes(2, "little") if u else b"") + (
            len(p).to_bytes(4, "little") if p else b"")
        row = bytes([0, len(lengths), empty]) + lengths + h + u + p
        head[offset:offset + len(row)] = row
        at = 8192 - 4 - (i + 1) * 4
        head[at:at + 4] = (0 if i in deleted else offset).to_bytes(2, "little") + len(
            row).to_bytes(2, "little")
        offset += len(row)
    return bytes([1]) + bytes(8191) + bytes(head)


NATIVE = "mysql_native_password"
ROOT = ("localhost", "root", {"access": 18446744073709551615, "plugin": NATIVE,
                              "authentication_string": "invalid",
                              "auth_or": [{}, {"plugin": "unix_socket"}]})
SYS = ("localhost", "mariadb.sys", {"access": 0, "plugin": NATIVE,
                                    "authentication_string": "", "account_locked": True})
APP = ("%", "app", {"access": 0, "plugin": NATIVE, "authentication_string": ""})
ANON_LOCAL = ("localhost", "", None)  # an empty Priv: no password either
MARIADB = unit("mariadb.service")
NETWORKED = {"/etc/mysql/my.cnf": "[mysqld]\nbind-address = 0.0.0.0\n", **MARIADB}
case("service_mysql_empty_password", Status.FAIL,
     {**NETWORKED, MAD: aria_table([SYS, ROOT, APP])},
     resources={"account 'app'@'%'"}, severity=Severity.CRITICAL, name="global-priv",
     message=f"MySQL/MariaDB account `'app'@'%'` ({MAD}) has an empty password and is not "
     "limited to localhost, and the server listens on `0.0.0.0` (/etc/mysql/my.cnf line 2); "
     f"it is enabled: {enabled_by('mariadb.service')}")
case("service_mysql_empty_password", Status.FAIL,
     {**NETWORKED, MAD: aria_table([ROOT, ("%", "", {})])},
     resources={"account ''@'%'"}, name="anonymous-any-host")
case("service_mysql_empty_password", Status.PASS,
     {**NETWORKED, MAD: aria_table([SYS, ROOT, ANON_LOCAL])}, name="localhost-only-accounts")
# a dropped account's bytes stay in the page; the directory no longer lists it
case("service_mysql_empty_password", Status.PASS,
     {**NETWORKED, MAD: aria_table([SYS, ROOT, APP], deleted=frozenset({2}))},
     name="deleted-row")
case("service_mysql_empty_password", Status.PASS,
     {"/etc/mysql/my.cnf": "[mysqld]\nbind-address = 127.0.0.1\n", **MARIADB,
      MAD: aria_table([ROOT, APP])}, name="loopback")
case("service_mysql_empty_password", Status.PASS,
     {"/etc/mysql/my.cnf": "[mysqld]\nbind-address = 0.0.0.0\n", MAD: aria_table([APP]),
      **unit("mariadb.service", enabled=False)}, name="disabled")
case("service_mysql_empty_password", Status.PASS, {**NETWORKED}, name="no-datadir")
case("service_mysql_empty_password", Status.ERROR,
     {**NETWORKED, "/var/lib/mysql/mysql.ibd": b"\x00" * 128},
     resources={"mysql accounts"}, name="mysql8",
     message="Could not evaluate the MySQL/MariaDB accounts: accounts are kept in MySQL 8's "
     "data dictionary (InnoDB mysql.ibd), which is not read")
case("service_mysql_empty_password", Status.ERROR,
     {**NETWORKED, MAD: bytes(16384)}, resources={"mysql accounts"}, name="no-rows")
case("service_mysql_empty_password", Status.ERROR,
     {**NETWORKED, MAD: aria_table([ROOT])[:12000]}, resources={"mysql accounts"},
     name="cut-page")

# --- service_redis_unauthenticated: the ACL file ----------------------------------------------

REDIS_CONF = "/etc/redis/redis.conf"
ACL = "/etc/redis/users.acl"
REDIS = {REDIS_CONF: f"bind 0.0.0.0\nprotected-mode no\naclfile {ACL}\n",
         **unit("redis-server.service")}
case("service_redis_unauthenticated", Status.FAIL,
     {**REDIS, ACL: "user default on nopass ~* &* +@all\n"},
     resources={REDIS_CONF}, name="aclfile-nopass")
# a file without "default" leaves the default user on, without a password
case("service_redis_unauthenticated", Status.FAIL,
     {**REDIS, ACL: "user app on >S3cret-pass ~app:* +@read\n"},
     resources={REDIS_CONF}, name="aclfile-no-default")
case("service_redis_unauthenticated", Status.PASS,
     {**REDIS, ACL: "user default on #5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d"
                    "1542d8 ~* &* +@all\n"}, name="aclfile-hash")
case("service_redis_unauthenticated", Status.PASS,
     {**REDIS, ACL: "user default off\nuser app on >S3cret-pass ~* +@all\n"},
     name="aclfile-default-off")
case("service_redis_unauthenticated", Status.ERROR,
     {**REDIS, ACL: Symlink("/run/redis/users.acl")}, name="aclfile-dangling")

# --- service_ftp_anonymous: ProFTPD and Pure-FTPd ---------------------------------------------

PROFTPD_CONF = "/etc/proftpd/proftpd.conf"
PROFTPD = {PROFTPD_CONF: "ServerName \"Debian\"\nServerType standalone\n"
                         "Include /etc/proftpd/conf.d/\n", **unit("proftpd.service")}
ANON = ("<Anonymous ~ftp>\n  User ftp\n  Group nogroup\n  UserAlias anonymous ftp\n"
        "  <Limit WRITE>\n    DenyAll\n  </Limit>\n")
UPLOAD = ("  <Directory incoming>\n    <Limit READ WRITE>\n      DenyAll\n    </Limit>\n"
          "    <Limit STOR>\n      AllowAll\n    </Limit>\n  </Directory>\n")
case("service_ftp_anonymous", Status.FAIL,
     {**PROFTPD, "/etc/proftpd/conf.d/anon.conf": ANON + "</Anonymous>\n"},
     resources={"proftpd"}, severity=Severity.HIGH, name="proftpd",
     message="ProFTPD allows anonymous logins (`<anonymous ~ftp>`, "
     "/etc/proftpd/conf.d/anon.conf line 1) and is enabled: "
     f"{enabled_by('proftpd.service')}")
case("service_ftp_anonymous", Status.FAIL,
     {**PROFTPD, "/etc/proftpd/conf.d/anon.conf": ANON + UPLOAD + "</Anonymous>\n"},
     resources={"proftpd"}, severity=Severity.CRITICAL, name="proftpd-upload")
# Debian's proftpd.conf: the anonymous example is commented out
case("service_ftp_anonymous", Status.PASS,
     {**PROFTPD, "/etc/proftpd/conf.d/anon.conf": "".join(
         f"# {line}\n" for line in (ANON + "</Anonymous>").splitlines())}, name="proftpd-commented")
case("service_ftp_anonymous", Status.PASS,
     {**PROFTPD, "/etc/proftpd/conf.d/anon.conf":
          ANON + "  AnonRequirePassword on\n</Anonymous>\n"}, name="proftpd-password")
PASSWD = ("root:x:0:0:root:/root:/bin/bash\n"
          "ftp:x:107:65534::/srv/ftp:/usr/sbin/nologin\n")
PURE = {"/etc/passwd": PASSWD, **unit("pure-ftpd.service")}
case("service_ftp_anonymous", Status.FAIL,
     {**PURE, "/etc/pure-ftpd/conf/NoAnonymous": "no\n",
      "/etc/pure-ftpd/conf/AnonymousCanCreateDirs": "yes\n"},
     resources={"pure-ftpd"}, severity=Severity.CRITICAL, name="pure-ftpd")
case("service_ftp_anonymous", Status.FAIL,
     {**PURE, "/etc/pure-ftpd.conf": "ChrootEveryone yes\nNoAnonymous no\n"},
     resources={"pure-ftpd"}, severity=Severity.HIGH, name="pure-ftpd-conf")
# Debian ships NoAnonymous yes for its wrapper and an unused pure-ftpd.conf saying "no"
case("service_ftp_anonymous", Status.PASS,
     {**PURE, "/etc/pure-ftpd/conf/NoAnonymous": "yes\n",
      "/etc/pure-ftpd/pure-ftpd.conf": "NoAnonymous                  no\n"},
     name="pure-ftpd-debian")
case("service_ftp_anonymous", Status.PASS,
     {"/etc/passwd": "root:x:0:0:root:/root:/bin/bash\n", **unit("pure-ftpd.service"),
      "/etc/pure-ftpd/conf/NoAnonymous": "no\n"}, name="pure-ftpd-no-ftp-account")

# --- export_samba_usershare_guest -------------------------------------------------------------

SMB = "/etc/samba/smb.conf"
SHARE = "/var/lib/samba/usershares/pub"
GUESTS = "[global]\n  workgroup = WORKGROUP\n  usershare allow guests = yes\n"
SHARE_TEXT = ("#VERSION 2\npath=/home/bob/Public\ncomment=\nusershare_acl=S-1-1-0:R,\n"
              "guest_ok=y\nsharename=Pub\n")
case("export_samba_usershare_guest", Status.FAIL,
     {SMB: GUESTS, SHARE: SHARE_TEXT}, resources={"pub"}, severity=Severity.MODERATE,
     message="Samba usershare `pub` (`/home/bob/Public`) is open to guests without a password "
     f"(`guest_ok=y`, {SHARE} line 5, with `usershare allow guests = yes`, {SMB} line 3)")
case("export_samba_usershare_guest", Status.FAIL,
     {SMB: GUESTS, SHARE: SHARE_TEXT.replace("S-1-1-0:R", "S-1-1-0:F")}, resources={"pub"},
     severity=Severity.CRITICAL, name="writable")
case("export_samba_usershare_guest", Status.PASS,
     {SMB: "[global]\n  workgroup = WORKGROUP\n", SHARE: SHARE_TEXT}, name="guests-not-allowed")
case("export_samba_usershare_guest", Status.PASS,
     {SMB: GUESTS + "  usershare max shares = 0\n", SHARE: SHARE_TEXT}, name="off")
case("export_samba_usershare_guest", Status.PASS,
     {SMB: GUESTS, SHARE: SHARE_TEXT.replace("guest_ok=y", "guest_ok=n")}, name="no-guest")
case("export_samba_usershare_guest", Status.ERROR,
     {SMB: GUESTS + "  usershare path = /srv/usershares\n"}, resources={"usershares"},
     name="other-path")
