"""Pass and fail scenarios of the data-store and firewall rules (``rules/service/``)."""

from __future__ import annotations

from imageaudit.model import Severity, Status
from tests.rules.cases_service import enabled_by, unit
from tests.rules.harness import case

REDIS = unit("redis-server.service")
REDIS_CONF = "/etc/redis/redis.conf"
REDIS_ON = enabled_by("redis-server.service")

# --- service_redis_unauthenticated ----------------------------------------------------------

case("service_redis_unauthenticated", Status.FAIL,
     {REDIS_CONF: "port 6379\nprotected-mode no\n", **REDIS},
     resources={REDIS_CONF}, severity=Severity.HIGH,
     message=f"Redis `{REDIS_CONF}` listens on all interfaces (no `bind`) without a password "
     f"and with `protected-mode no` ({REDIS_CONF} line 2); it is enabled: {REDIS_ON}")
case("service_redis_unauthenticated", Status.FAIL,
     {REDIS_CONF: "bind 0.0.0.0\n", **REDIS},
     resources={REDIS_CONF}, severity=Severity.MODERATE, name="explicit-bind",
     message=f"Redis `{REDIS_CONF}` listens on `0.0.0.0` (`bind 0.0.0.0`, {REDIS_CONF} line 1) "
     "without a password; protected mode only refuses remote clients from Redis 7.0 on "
     f"(earlier versions skip it when `bind` is set); it is enabled: {REDIS_ON}")
case("service_redis_unauthenticated", Status.FAIL,
     {REDIS_CONF: "bind * -::*\nprotected-mode no\nuser default on nopass ~* +@all\n", **REDIS},
     resources={REDIS_CONF}, severity=Severity.HIGH, name="acl-nopass")
case("service_redis_unauthenticated", Status.PASS,
     {REDIS_CONF: "bind 0.0.0.0\nprotected-mode no\nrequirepass s3cret-Passw0rd\n", **REDIS})
case("service_redis_unauthenticated", Status.PASS,
     {REDIS_CONF: "bind 127.0.0.1 -::1\nprotected-mode no\n", **REDIS}, name="loopback")
# without bind, protected mode refuses remote clients in every version
case("service_redis_unauthenticated", Status.PASS, {REDIS_CONF: "port 6379\n", **REDIS},
     name="protected")
case("service_redis_unauthenticated", Status.PASS, {REDIS_CONF: "protected-mode no\n"},
     name="disabled")
case("service_redis_unauthenticated", Status.ERROR,
     {REDIS_CONF: "bind 0.0.0.0\nprotected-mode no\naclfile /etc/redis/users.acl\n", **REDIS},
     resources={REDIS_CONF}, name="aclfile",
     message=f"Could not evaluate Redis `{REDIS_CONF}`: its users are defined in "
     f"`/etc/redis/users.acl` ({REDIS_CONF} line 3), and `/etc/redis/users.acl is not in "
     "the image`")

# --- service_mongodb_unauthenticated --------------------------------------------------------

MONGOD = unit("mongod.service")
case("service_mongodb_unauthenticated", Status.FAIL,
     {"/etc/mongod.conf": "net:\n  port: 27017\n  bindIp: 0.0.0.0\n", **MONGOD},
     resources={"mongodb"},
     message="MongoDB listens on `0.0.0.0` (`net.bindIp 0.0.0.0`, /etc/mongod.conf line 3) "
     "without access control: `security.authorization` is not set (off by default); it is "
     f"enabled: {enabled_by('mongod.service')}")
case("service_mongodb_unauthenticated", Status.FAIL,
     {"/etc/mongod.conf": "net:\n  bindIpAll: true\nsecurity:\n  authorization: disabled\n",
      **MONGOD}, resources={"mongodb"}, name="bind-all")
case("service_mongodb_unauthenticated", Status.PASS,
     {"/etc/mongod.conf": "net:\n  bindIpAll: true\nsecurity:\n  authorization: enabled\n",
      **MONGOD})
case("service_mongodb_unauthenticated", Status.PASS,
     {"/etc/mongod.conf": "net:\n  port: 27017\n", **MONGOD}, name="default-localhost")

# --- service_memcached_unauthenticated ------------------------------------------------------

MEMCACHED = unit("memcached.service")
case("service_memcached_unauthenticated", Status.FAIL,
     {"/etc/memcached.conf": "-m 64\n-p 11211\n-u memcache\n", **MEMCACHED},
     resources={"memcached"},
     message="memcached listens on all interfaces (no `-l`) without authentication (no `-S` "
     f"SASL); it is enabled: {enabled_by('memcached.service')}")
case("service_memcached_unauthenticated", Status.FAIL,
     {"/etc/sysconfig/memcached": 'PORT="11211"\nOPTIONS="-l 0.0.0.0,::1"\n', **MEMCACHED},
     resources={"memcached"}, name="rhel")
case("service_memcached_unauthenticated", Status.PASS,
     {"/etc/memcached.conf": "-m 64\n-l 127.0.0.1\n", **MEMCACHED})
case("service_memcached_unauthenticated", Status.PASS,
     {"/etc/memcached.conf": "-l 0.0.0.0\n-S\n", **MEMCACHED}, name="sasl")

# --- service_elasticsearch_unauthenticated --------------------------------------------------

ES_YML = "/etc/elasticsearch/elasticsearch.yml"
ES = unit("elasticsearch.service")
case("service_elasticsearch_unauthenticated", Status.FAIL,
     {ES_YML: "cluster.name: x\nnetwork.host: 0.0.0.0\n", **ES},
     resources={"elasticsearch"},
     message=f"Elasticsearch listens on `0.0.0.0` (`network.host 0.0.0.0`, {ES_YML} line 2) "
     "without authentication: `xpack.security.enabled` is not set (security is off by default "
     f"before Elasticsearch 8.0); it is enabled: {enabled_by('elasticsearch.service')}")
case("service_elasticsearch_unauthenticated", Status.PASS,
     {ES_YML: "network:\n  host: 0.0.0.0\nxpack.security.enabled: true\n", **ES})
case("service_elasticsearch_unauthenticated", Status.PASS,
     {ES_YML: "cluster.name: x\n", **ES}, name="default-local")

# --- service_mysql_skip_grant_tables --------------------------------------------------------

MARIADB = unit("mariadb.service")
MARIADB_ON = enabled_by("mariadb.service")
case("service_mysql_skip_grant_tables", Status.FAIL,
     {"/etc/mysql/my.cnf": "[mysqld]\nskip_grant_tables\n", **MARIADB},
     resources={"mysql"}, severity=Severity.CRITICAL, name="networked",
     message="MySQL/MariaDB checks no passwords or privileges (`skip-grant-tables`, "
     "/etc/mysql/my.cnf line 2) and listens on all interfaces (no `bind-address`): anyone who "
     "can reach it is administrator (MariaDB keeps networking on; MySQL 8.0 turns it off); it "
     f"is enabled: {MARIADB_ON}")
case("service_mysql_skip_grant_tables", Status.FAIL,
     {"/etc/mysql/my.cnf": "!includedir /etc/mysql/conf.d/\n",
      "/etc/mysql/conf.d/debug.cnf": "[mysqld]\nskip-grant-tables\nbind-address = 127.0.0.1\n",
      **MARIADB},
     resources={"mysql"}, severity=Severity.HIGH, name="local",
     message="MySQL/MariaDB checks no passwords or privileges (`skip-grant-tables`, "
     "/etc/mysql/conf.d/debug.cnf line 2): every local user is database administrator; it is "
     f"enabled: {MARIADB_ON}")
# the option in a client group does not reach the server
case("service_mysql_skip_grant_tables", Status.PASS,
     {"/etc/mysql/my.cnf": "[client]\nskip-grant-tables\n[mysqld]\nbind-address = 0.0.0.0\n",
      **MARIADB})

# --- service_postgresql_trust ---------------------------------------------------------------

PG = "/etc/postgresql/15/main"
PG_ON = enabled_by("postgresql.service")
HBA = ("local all postgres peer\nhost all all 127.0.0.1/32 trust\nhost all all 0.0.0.0/0 trust\n"
       "host all all 10.0.0.0 255.0.0.0 trust\nhost all all ::1/128 trust\n"
       "host all all 192.0.2.0/24 scram-sha-256\n")
case("service_postgresql_trust", Status.FAIL,
     {f"{PG}/postgresql.conf": "listen_addresses = '*'\n", f"{PG}/pg_hba.conf": HBA,
      **unit("postgresql.service")},
     resources={f"{PG}/pg_hba.conf line 3", f"{PG}/pg_hba.conf line 4"},
     message=f"PostgreSQL `{PG}/postgresql.conf` listens on `*` ({PG}/postgresql.conf line 1) "
     "and trusts remote clients without a password: `host all all 0.0.0.0/0 trust` "
     f"({PG}/pg_hba.conf line 3); it is enabled: {PG_ON}")
case("service_postgresql_trust", Status.PASS,
     {f"{PG}/postgresql.conf": "#listen_addresses = 'localhost'\n", f"{PG}/pg_hba.conf": HBA,
      **unit("postgresql.service")}, name="localhost")
case("service_postgresql_trust", Status.PASS,
     {f"{PG}/postgresql.conf": "listen_addresses = '*'\n",
      f"{PG}/pg_hba.conf": "host all all 127.0.0.1/32 trust\nhost all all all scram-sha-256\n",
      **unit("postgresql.service")})

# --- service_firewall_default_deny ----------------------------------------------------------

NFT_ACCEPT = ("table inet filter {\n chain input {\n  type filter hook input priority 0; "
              "policy accept;\n }\n}\n")
NFT_DROP = NFT_ACCEPT.replace("policy accept", "policy drop")
NFT_ON = unit("nftables.service", target="sysinit.target")
TELNET = unit("telnet.socket", "[Socket]\nListenStream=23\n", "sockets.target")
case("service_firewall_default_deny", Status.FAIL,
     {**TELNET, **REDIS, "/etc/nftables.conf": NFT_ACCEPT, **NFT_ON},
     resources={"firewall"},
     message="No enabled firewall denies incoming traffic by default while network services "
     "are enabled: `telnet`, `redis` (nftables: input policy accept, enabled)")
case("service_firewall_default_deny", Status.FAIL,
     {**REDIS, "/etc/nftables.conf": NFT_DROP}, resources={"firewall"}, name="not-enabled",
     message="No enabled firewall denies incoming traffic by default while network services "
     "are enabled: `redis` (nftables: input policy drop, not enabled)")
case("service_firewall_default_deny", Status.FAIL,
     {**REDIS, "/etc/ufw/ufw.conf": "ENABLED=no\n",
      "/etc/default/ufw": 'DEFAULT_INPUT_POLICY="DROP"\n', **unit("ufw.service")},
     resources={"firewall"}, name="ufw-off",
     message="No enabled firewall denies incoming traffic by default while network services "
     "are enabled: `redis` (ufw: input policy drop, not enabled)")
case("service_firewall_default_deny", Status.PASS,
     {**REDIS, "/etc/nftables.conf": NFT_DROP, **NFT_ON})
case("service_firewall_default_deny", Status.PASS,
     {**REDIS, "/etc/iptables/rules.v4": "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\n"
                                         "-A INPUT -j REJECT\nCOMMIT\n",
      **unit("netfilter-persistent.service")}, name="iptables-catch-all")
case("service_firewall_default_deny", Status.PASS, unit("ssh.service"), name="no-services")
# The daemons of cloud images count too: the Docker API, the kubelet, LDAP, CUPS.
case("service_firewall_default_deny", Status.FAIL,
     {**unit("docker.service"), **unit("kubelet.service"), **unit("slapd.service"),
      **unit("cups.service"), "/etc/nftables.conf": NFT_ACCEPT, **NFT_ON},
     resources={"firewall"}, name="cloud-daemons",
     message="No enabled firewall denies incoming traffic by default while network services "
     "are enabled: `slapd`, `cups`, `docker`, `kubelet` (nftables: input policy accept, enabled)")
case("service_firewall_default_deny", Status.PASS,
     {**unit("docker.service"), **unit("kubelet.service"), "/etc/nftables.conf": NFT_DROP,
      **NFT_ON}, name="cloud-daemons-behind-drop")

