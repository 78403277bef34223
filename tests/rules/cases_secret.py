"""Pass and fail scenarios of the ``secret`` rules."""

from __future__ import annotations

import base64
import hashlib

from imageaudit.model import Severity, Status
from tests.rules.harness import case
from tests.scenario import File, Scenario

PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "alice:x:1000:1000::/home/alice:/bin/bash\n"
    "deploy:x:1001:1001::/home/deploy:/bin/sh\n"
)
GROUP = "root:x:0:\nalice:x:1000:\ndeploy:x:1001:\n"
# Without /etc/shadow the accounts (whose passwords say "x") could not be judged at all.
SHADOW = File("root:*:19000::::::\nalice:!:19000::::::\ndeploy:!:19000::::::\n", mode=0o640)

# Not a real key: the facts only need the PEM framing and its DER body.
DER = b"0\x82" + b"not-a-real-key-material"
FINGERPRINT = "sha256:" + hashlib.sha256(DER).hexdigest()


def pem(label: str, headers: str = "") -> str:
    body = base64.b64encode(DER).decode()
    return f"-----BEGIN {label}-----\n{headers}{body}\n-----END {label}-----\n"


ENCRYPTED_LEGACY = pem("RSA PRIVATE KEY", "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00FF\n\n")
ED25519_PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
ED25519_FP = "SHA256:" + base64.b64encode(
    hashlib.sha256(base64.b64decode(ED25519_PUB.split()[1])).digest()
).decode().rstrip("=")


CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def tree(extra: Scenario) -> Scenario:
    return {"/etc/passwd": PASSWD, "/etc/shadow": SHADOW, "/etc/group": GROUP, **extra}


SSHD: Scenario = {"/usr/sbin/sshd": File(b"\x7fELF", mode=0o755), "/etc/ssh/sshd_config": "\n"}

# -- private keys -----------------------------------------------------------------------------

case(
    "secret_private_keys",
    Status.PASS,
    tree(
        {
            **SSHD,
            # host keys are judged by secret_ssh_host_keys, not here
            "/etc/ssh/ssh_host_rsa_key": File(pem("RSA PRIVATE KEY"), mode=0o600),
            "/etc/ssl/certs/ca.pem": CERT,
            "/root/.ssh/id_ed25519.pub": ED25519_PUB + "\n",
        }
    ),
)
case(
    "secret_private_keys",
    Status.FAIL,
    tree(
        {
            "/root/.ssh/id_rsa": File(pem("RSA PRIVATE KEY"), mode=0o600),
            "/etc/ssl/private/service.key": File(pem("PRIVATE KEY"), mode=0o600),
        }
    ),
    resources={"/root/.ssh/id_rsa", "/etc/ssl/private/service.key"},
    message=f"File `/root/.ssh/id_rsa` holds a private key (rsa, /root/.ssh/id_rsa line 1, "
    f"{FINGERPRINT}), not encrypted",
    severity=Severity.CRITICAL,
)
case(
    "secret_private_keys",
    Status.FAIL,
    tree({"/home/alice/.ssh/id_rsa": File(ENCRYPTED_LEGACY, mode=0o600, uid=1000)}),
    resources={"/home/alice/.ssh/id_rsa"},
    message="File `/home/alice/.ssh/id_rsa` holds a private key "
    f"(rsa, /home/alice/.ssh/id_rsa line 1, {FINGERPRINT}), encrypted with a passphrase; "
    "high rather than critical because it must still be cracked",
    severity=Severity.HIGH,
    name="encrypted",
)

# -- cloud and tool credentials ---------------------------------------------------------------

case(
    "secret_credential_files",
    Status.PASS,
    tree(
        {
            "/root/.aws/config": "[default]\nregion = eu-west-1\n",
            "/root/.aws/credentials": "[default]\naws_access_key_id =\naws_secret_access_key =\n",
            "/home/alice/.docker/config.json": '{"credsStore": "pass"}\n',
        }
    ),
)
case(
    "secret_credential_files",
    Status.FAIL,
    tree(
        {
            "/root/.aws/credentials": "[default]\naws_access_key_id = AKIAEXAMPLE\n"
            "aws_secret_access_key = wJalrXUtnFEMIEXAMPLE\n",
            "/home/alice/.netrc": "machine example.org login alice password hunter2\n",
            "/home/deploy/.git-credentials": "https://deploy:ghp_token@github.com\n",
            "/etc/openstack/clouds.yaml": "clouds:\n  fedcloud:\n    auth:\n"
            "      password: s3cret\n",
            "/home/alice/.config/gcloud/credentials.db": b"SQLite format 3\x00",
        }
    ),
    resources={
        "/root/.aws/credentials",
        "/home/alice/.netrc",
        "/home/deploy/.git-credentials",
        "/etc/openstack/clouds.yaml",
        "/home/alice/.config/gcloud/credentials.db",
    },
    message="File `/root/.aws/credentials` holds credentials of kind `aws-credentials` "
    "(`aws_secret_access_key` set, /root/.aws/credentials line 3)",
    severity=Severity.CRITICAL,
)
case(
    "secret_credential_files",
    Status.FAIL,
    tree(
        {
            "/home/alice/.config/gcloud/credentials.db": b"SQLite format 3\x00",
            # reported by secret_private_keys, not twice
            "/etc/grid-security/hostkey.pem": File(pem("RSA PRIVATE KEY"), mode=0o400),
        }
    ),
    resources={"/home/alice/.config/gcloud/credentials.db"},
    message="File `/home/alice/.config/gcloud/credentials.db` holds credentials of kind "
    "`gcloud-credentials-db` (non-empty file, /home/alice/.config/gcloud/credentials.db)",
    name="presence-only",
)

# -- authorized_keys --------------------------------------------------------------------------

case(
    "secret_authorized_keys",
    Status.PASS,
    tree(
        {
            "/root/.ssh/authorized_keys": File("# keys come from cloud-init\n", mode=0o600),
            "/home/alice/.ssh/known_hosts": "example.org " + ED25519_PUB + "\n",
        }
    ),
)
case(
    "secret_authorized_keys",
    Status.FAIL,
    tree(
        {
            "/root/.ssh/authorized_keys": File(ED25519_PUB + " builder@ci\n", mode=0o600),
            "/home/deploy/.ssh/authorized_keys2": File(
                f"{ED25519_PUB} a\n{ED25519_PUB} b\n", uid=1001
            ),
        }
    ),
    resources={"/root/.ssh/authorized_keys", "/home/deploy/.ssh/authorized_keys2"},
    message=f"File `/root/.ssh/authorized_keys` lets 1 ssh key log in as account `root`, "
    f"first {ED25519_FP}",
)

# -- ssh host keys ----------------------------------------------------------------------------

case(
    "secret_ssh_host_keys",
    Status.PASS,
    tree({**SSHD, "/etc/ssh/ssh_host_ed25519_key.pub": ED25519_PUB + "\n"}),
)
case(
    "secret_ssh_host_keys",
    Status.FAIL,
    tree(
        {
            **SSHD,
            "/etc/ssh/ssh_host_rsa_key": File(pem("RSA PRIVATE KEY"), mode=0o600),
            "/etc/ssh/ssh_host_ecdsa_key": File("", mode=0o600),  # empty placeholder
        }
    ),
    resources={"/etc/ssh/ssh_host_rsa_key"},
    message=f"ssh host key `/etc/ssh/ssh_host_rsa_key` is baked into the image "
    f"({len(pem('RSA PRIVATE KEY'))} bytes): every instance would share it",
    severity=Severity.MODERATE,
)
case(
    "secret_ssh_host_keys",
    Status.NOT_APPLICABLE,
    tree({"/etc/ssh/ssh_host_rsa_key": File(pem("RSA PRIVATE KEY"), mode=0o600)}),
    name="no-sshd",
)
