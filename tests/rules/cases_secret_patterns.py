"""Pass and fail scenarios of the secret pattern rules (tokens and assigned secrets).

No token-shaped literal is written in this file: every token is put together at run time
from a prefix and deterministic noise (:func:`noise`), so that secret scanners run over the
repository do not report the tests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import string

from imageaudit.model import Severity, Status
from tests.rules.harness import case
from tests.scenario import File, Scenario

ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
B64URL = ALNUM + "-_"


def noise(seed: str, n: int, alphabet: str = ALNUM) -> str:
    """``n`` characters of ``alphabet`` that look random (and are the same on every run)."""
    out: list[str] = []
    counter = 0
    while len(out) < n:
        digest = hashlib.sha256(f"{seed}/{counter}".encode()).digest()
        out.extend(alphabet[b % len(alphabet)] for b in digest)
        counter += 1
    return "".join(out[:n])


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jwt(header: dict[str, str] | None = None) -> str:
    head = b64url(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"sub": "svc-" + noise("sub", 12), "iat": 1700000000}).encode())
    return f"{head}.{body}.{noise('sig', 43, B64URL)}"


# One token per family class, built from its format's prefix.
GITHUB = "gh" + "p_" + noise("github", 36)
GITLAB = "gl" + "pat-" + noise("gitlab", 20, ALNUM + "_-")
AWS_ID = "AK" + "IA" + noise("aws-id", 16, string.ascii_uppercase + "234567")
AWS_SECRET = noise("aws-secret", 40, ALNUM + "/+")
AWS_DOC_ID = "AK" + "IA" + "IOSFODNN7" + "EXAMPLE"
SLACK = "xo" + "xb-" + noise("slack-a", 12, "0123456789") + "-" + noise("slack-b", 24)
SLACK_HOOK = "https://hooks.slack.com/services/" + noise("slack-hook", 44)
STRIPE = "sk" + "_live_" + noise("stripe", 24)
NPM = "np" + "m_" + noise("npm", 36)
OPENAI = "sk-" + "proj-" + noise("openai-a", 58, ALNUM + "_-") + "T3Blbk" + "FJ" + noise(
    "openai-b", 58, ALNUM + "_-"
)
VAULT = "hv" + "s." + noise("vault", 96, ALNUM + "_-")
GCP_KEY = "AI" + "za" + noise("gcp", 35, ALNUM + "_-")
TELEGRAM = noise("tg-id", 9, "0123456789").replace("0", "1", 1) + ":AA" + noise(
    "tg", 33, ALNUM + "_-"
)
PASSWORD = "Zq" + noise("password", 14, ALNUM + "!#%&") + "7"

PEM_BODY = base64.b64encode(hashlib.sha512(b"not a key").digest()).decode()
KEY_HEADER = "-----BEGIN " + "RSA PRIVATE KEY-----"
KEY_FOOTER = "-----END " + "RSA PRIVATE KEY-----"

PASSWD = "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n"
GROUP = "root:x:0:\nalice:x:1000:\n"
SHADOW = File("root:*:19000::::::\nalice:!:19000::::::\n", mode=0o640)


def tree(extra: Scenario) -> Scenario:
    return {"/etc/passwd": PASSWD, "/etc/shadow": SHADOW, "/etc/group": GROUP, **extra}


# -- tokens: false-positive traps --------------------------------------------------------------

TOKEN_TRAPS: Scenario = {
    # placeholders and templates where a token would go
    "/etc/app/app.env": (
        "GITHUB_TOKEN=${GITHUB_TOKEN}\n"
        "SLACK_BOT_TOKEN=<your-slack-token>\n"
        "# a documented example: AWS_ACCESS_KEY_ID=" + AWS_DOC_ID + "\n"
        "AWS_ACCESS_KEY_ID=" + AWS_DOC_ID + "\n"
    ),
    # a token-like prefix with no randomness after it
    "/opt/app/settings.yaml": "token: " + "gh" + "p_" + "a" * 36 + "\n",
    # a script naming the key header it looks for is not a key
    "/usr/local/bin/find-keys": f"#!/bin/sh\ngrep -l '{KEY_HEADER}' \"$@\"\n",
    # eyJ...eyJ... that is not a JSON web token (its header does not decode to JSON)
    "/etc/app/blob.conf": "blob = eyJ" + "x" * 20 + ".eyJ" + noise("notjwt", 30) + "."
    + noise("notjwt2", 20) + "\n",
    # URLs with placeholder credentials
    "/etc/app/db.ini": "url = postgres://app:${DB_PASSWORD}@db.internal/app\n"
    "mirror = https://user:<password>@mirror.example.org/\n"
    "proxy = http://proxy:****@proxy.internal:3128/\n",
    # out of scope: documentation, tests, translations, binaries
    "/usr/share/doc/app/README": GITHUB + "\n",
    "/opt/app/docs/setup.txt": "export GITHUB_TOKEN=" + GITHUB + "\n",
    "/opt/app/tests/fixtures.env": "STRIPE_KEY=" + STRIPE + "\n",
    "/opt/app/NOTES.md": "token " + NPM + "\n",
    "/opt/app/bin/tool": File(b"\x7fELF\x00\x00" + NPM.encode(), mode=0o755),
}

case("secret_token_patterns", Status.PASS, tree(TOKEN_TRAPS), name="placeholders-and-scope")

# The files the private key and credential file rules report are left to them.
case(
    "secret_token_patterns",
    Status.PASS,
    tree(
        {
            "/root/.ssh/id_rsa": File(f"{KEY_HEADER}\n{PEM_BODY}\n{KEY_FOOTER}\n", mode=0o600),
            "/root/.aws/credentials": File(
                f"[default]\naws_access_key_id = {AWS_ID}\n"
                f"aws_secret_access_key = {AWS_SECRET}\n",
                mode=0o600,
            ),
        }
    ),
    name="left-to-credential-rules",
)

# -- tokens: one FAIL per family class -----------------------------------------------------------

case(
    "secret_token_patterns",
    Status.FAIL,
    tree(
        {
            # source forges, in a shell profile
            "/root/.bashrc": "alias ll='ls -l'\nexport GITHUB_TOKEN=" + GITHUB + "\n",
            "/home/alice/.config/glab/config.yml": File("token: " + GITLAB + "\n", uid=1000),
            # cloud keys, in an application's YAML
            "/opt/app/config.yml": f"aws:\n  aws_secret_access_key: {AWS_SECRET}\n",
            # registries
            "/home/alice/.npmrc": File("//registry.npmjs.org/:_authToken=" + NPM + "\n", uid=1000),
            # chat
            "/etc/app/notify.conf": "[slack]\nbot = " + SLACK + "\n",
            # payment, in a systemd unit
            "/etc/systemd/system/shop.service": "[Service]\nEnvironment=STRIPE=" + STRIPE + "\n",
            # AI services, in JSON
            "/srv/bot/settings.json": json.dumps({"model": "x", "openai": OPENAI}) + "\n",
            # secret managers
            "/var/lib/app/vault-token": VAULT + "\n",
            # messaging, in docker-compose
            "/srv/bot/docker-compose.yml": "services:\n  bot:\n    environment:\n"
            "      - BOT=" + TELEGRAM + "\n",
        }
    ),
    resources={
        "/root/.bashrc",
        "/home/alice/.config/glab/config.yml",
        "/opt/app/config.yml",
        "/home/alice/.npmrc",
        "/etc/app/notify.conf",
        "/etc/systemd/system/shop.service",
        "/srv/bot/settings.json",
        "/var/lib/app/vault-token",
        "/srv/bot/docker-compose.yml",
    },
    message="File `/root/.bashrc` line 2 holds a secret: GitHub personal access token "
    "(`ghp_…`, 40 characters)",
    severity=Severity.CRITICAL,
    name="account-tokens",
)

# A private key block inside a large JSON file (beyond the private key search's sniff sizes).
KEY_JSON = json.dumps(
    {
        "padding": noise("pad", 70_000, string.ascii_lowercase + " "),
        "tls_key": f"{KEY_HEADER}\n{PEM_BODY}\n{KEY_FOOTER}\n",
    }
)
case(
    "secret_token_patterns",
    Status.FAIL,
    tree({"/opt/app/settings.json": KEY_JSON + "\n"}),
    resources={"/opt/app/settings.json"},
    message="File `/opt/app/settings.json` line 1 holds a secret: private key block",
    severity=Severity.CRITICAL,
    name="key-block-in-json",
)

# Webhooks, JSON web tokens, key IDs and URL passwords are high, not critical.
case(
    "secret_token_patterns",
    Status.FAIL,
    tree(
        {
            "/etc/app/alerts.yaml": "webhook: " + SLACK_HOOK + "\n",
            "/opt/app/.env": "SESSION=" + jwt() + "\nMAPS_KEY=" + GCP_KEY + "\n",
            "/etc/app/db.ini": "url = postgres://app:" + PASSWORD + "@db.internal/app\n",
            "/root/.config/aws-id": AWS_ID + "\n",
        }
    ),
    resources={"/etc/app/alerts.yaml", "/opt/app/.env", "/etc/app/db.ini", "/root/.config/aws-id"},
    severity=Severity.HIGH,
    name="lower-severity-families",
)

# More secret-like values in one file than the scan records: the rule cannot say PASS.
case(
    "secret_token_patterns",
    Status.ERROR,
    tree({"/etc/app/keys.conf": ("id = " + AWS_DOC_ID + "\n") * 501}),
    name="per-file-cap",
)

# -- assignments -----------------------------------------------------------------------------------

ASSIGNMENT_TRAPS: Scenario = {
    "/etc/app/app.conf": (
        "[db]\n"
        "# password = hunter2-commented\n"
        "; secret = also-commented\n"
        "password =\n"
        'password_file = "/run/secrets/db"\n'
        "token_ttl = 3600\n"
        "api_key = ${API_KEY}\n"
        "secret = %(base_secret)s\n"
        "client_secret = <client-secret>\n"
        "admin_password = ********\n"
        "passphrase = xxxxxxxx\n"
        "auth_password = your_password_here\n"
        "access_key = example-access-key\n"
        "dummy_secret = dummy\n"
        "require_password = yes\n"
        "secret_key = DJANGO_SECRET_KEY\n"
        "token = {{ vault_token }}\n"
        "password = abc\n"
    ),
    "/etc/ssh/sshd_config": "PasswordAuthentication no\nPubkeyAuthentication yes\n",
    "/etc/nsswitch.conf": "passwd:         files systemd\nshadow: files\n",
    "/etc/app/app.yaml": "auth:\n  password: required\n  token: true\n  public_key: AAAAC3Nz\n",
    "/etc/app/app.json": json.dumps({"password": "", "secret": "$SECRET"}) + "\n",
    # code and scripts: the generic bar (length, entropy, digits and letters)
    "/usr/local/bin/deploy": (
        "#!/bin/sh\npassword=$(cat /run/secrets/pw)\nTOKEN=\"$1\"\n"
        "read -r -p 'password: ' pw\n"
    ),
    "/opt/app/main.py": "password = os.environ['DB_PASSWORD']\nsecret = get_secret()\n",
    # out of scope
    "/usr/share/doc/app/example.conf": f"password = {PASSWORD}\n",
    "/opt/app/examples/app.conf": f"password = {PASSWORD}\n",
}

case(
    "secret_config_assignment",
    Status.PASS,
    tree(ASSIGNMENT_TRAPS),
    name="placeholders-and-settings",
)

# Shapes of stock distribution files that talk about passwords without holding one.
STOCK_FILES: Scenario = {
    "/etc/ssl/openssl.cnf": (
        "[ req ]\ndefault_bits\t\t= 2048\ndefault_keyfile \t= privkey.pem\n"
        "# Passwords for private keys if not present they will be prompted for\n"
        "# input_password = secret\n# output_password = secret\n"
        "[ req_attributes ]\nchallengePassword\t\t= A challenge password\n"
        "challengePassword_min\t\t= 4\nchallengePassword_max\t\t= 20\n"
    ),
    "/etc/samba/smb.conf": (
        "[global]\n   passdb backend = tdbsam\n   unix password sync = yes\n"
        "   passwd program = /usr/bin/passwd %u\n"
        "   passwd chat = *Enter\\snew\\s*\\spassword:* %n\\n *Retype\\snew\\s*\\spassword:* "
        "%n\\n *password\\supdated\\ssuccessfully* .\n"
        "   pam password change = yes\n   map to guest = bad user\n"
    ),
    "/etc/cloud/cloud.cfg": (
        "disable_root: true\npreserve_hostname: false\nsystem_info:\n  default_user:\n"
        "    name: debian\n    lock_passwd: True\n    sudo: ['ALL=(ALL) NOPASSWD:SETENV: ALL']\n"
        "ssh_pwauth: false\nchpasswd: { expire: False }\n"
    ),
    "/var/lib/pam/password": (
        "Module: unix\nPassword-Type: Primary\nPassword:\n"
        "\t[success=end default=ignore]\tpam_unix.so obscure yescrypt\n"
        "Password-Initial:\n\t[success=end default=ignore]\tpam_unix.so obscure yescrypt\n"
    ),
    "/etc/redis/redis.conf": "# requirepass foobared\n# masterauth <master-password>\n",
    "/etc/grafana/grafana.ini": "[security]\n;admin_password = admin\n;secret_key = "
    + noise("grafana", 20)
    + "\n",
    "/etc/ldap/ldap.conf": "#BASE\tdc=example,dc=com\n#BINDPW secret\n"
    "TLS_CACERT\t/etc/ssl/certs/ca-certificates.crt\n",
    "/etc/default/useradd": "# PASS_MAX_DAYS=99999\nSHELL=/bin/sh\n",
    "/etc/pam.d/common-password": (
        "password\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok "
        "try_first_pass yescrypt\npassword\trequisite\t\t\tpam_deny.so\n"
    ),
}

case("secret_config_assignment", Status.PASS, tree(STOCK_FILES), name="stock-files")
case("secret_token_patterns", Status.PASS, tree(STOCK_FILES), name="stock-files")

# A token assigned to a secret-named key is left to secret_token_patterns.
case(
    "secret_config_assignment",
    Status.PASS,
    tree({"/opt/app/.env": "GITHUB_TOKEN=" + GITHUB + "\n"}),
    name="token-left-to-token-rule",
)

case(
    "secret_config_assignment",
    Status.FAIL,
    tree(
        {
            "/opt/app/.env": "DEBUG=0\nDB_PASSWORD=" + PASSWORD + "\n",
            "/etc/app/app.ini": "[auth]\nsecret = changeme\n",
            "/etc/app/config.yaml": "db:\n  password: 'S3cure pass'\n",
            "/etc/app/config.json": json.dumps({"db": {"user": "a", "password": PASSWORD}}),
            "/etc/app/app.properties": "db.password=" + PASSWORD + "\n",
            "/etc/app/app.toml": 'api_key = "' + PASSWORD + '"\n',
            "/etc/systemd/system/app.service": '[Service]\nEnvironment="API_TOKEN='
            + PASSWORD
            + '" "MODE=prod"\n',
            "/srv/app/docker-compose.yml": "services:\n  db:\n    environment:\n"
            "      - POSTGRES_PASSWORD=" + PASSWORD + "\n",
            "/etc/default/app": "APP_SECRET=" + PASSWORD + "\n",
            "/root/.profile": "export SERVICE_TOKEN=" + noise("generic", 24) + "9\n",
        }
    ),
    resources={
        "/opt/app/.env",
        "/etc/app/app.ini",
        "/etc/app/config.yaml",
        "/etc/app/config.json",
        "/etc/app/app.properties",
        "/etc/app/app.toml",
        "/etc/systemd/system/app.service",
        "/srv/app/docker-compose.yml",
        "/etc/default/app",
        "/root/.profile",
    },
    message="File `/opt/app/.env` line 2 assigns a secret to `DB_PASSWORD` "
    "(17 characters, not shown)",
    severity=Severity.HIGH,
    name="config-shapes",
)

# The further forms: XML elements, and `directive value` lines of configuration files.
case(
    "secret_config_assignment",
    Status.FAIL,
    tree(
        {
            "/root/.m2/settings.xml": "<settings><servers><server>\n  <id>releases</id>\n"
            "  <username>deploy</username>\n  <password>" + PASSWORD + "</password>\n"
            "</server></servers></settings>\n",
            "/etc/redis/redis.conf": "bind 127.0.0.1\nrequirepass " + PASSWORD + "\n",
            "/etc/ldap/slapd.conf": "database mdb\nrootpw   \"" + PASSWORD + "\"\n",
            "/opt/tomcat/conf/tomcat-users.xml": '<tomcat-users>\n  <user username="admin" '
            'password="' + PASSWORD + '" roles="manager-gui"/>\n</tomcat-users>\n',
        }
    ),
    resources={"/root/.m2/settings.xml", "/etc/redis/redis.conf", "/etc/ldap/slapd.conf",
               "/opt/tomcat/conf/tomcat-users.xml"},
    message="File `/root/.m2/settings.xml` line 4 assigns a secret to `password` "
    "(17 characters, not shown)",
    severity=Severity.HIGH,
    name="xml-and-directive-forms",
)

case(
    "secret_config_assignment",
    Status.PASS,
    tree(
        {
            # Placeholders, properties, settings about passwords, a directive with several
            # words, and a `key value` line outside configuration files.
            "/root/.m2/settings.xml": "<server><password>${env.DEPLOY_PASSWORD}</password>"
            "<passwordPolicy>strict</passwordPolicy><token></token></server>\n",
            "/etc/redis/redis.conf": "# requirepass foobared\nrequirepass \"\"\n",
            "/etc/ssh/sshd_config": "PasswordAuthentication no\nPermitEmptyPasswords no\n",
            "/etc/pam.d/common-password": "password [success=1 default=ignore] pam_unix.so\n",
            "/etc/app/app.conf": "password_file /etc/app/secret\nsecret required\n",
            "/opt/app/notes.txt": "password " + PASSWORD + "\n",
        }
    ),
    name="xml-and-directive-traps",
)

case(
    "secret_config_assignment",
    Status.ERROR,
    tree({"/etc/app/many.conf": "password = ${PW}\n" * 501}),
    name="per-file-cap",
)
