# Expected rows are built as `(...) + (...)` to stay within the line length.
# ruff: noqa: RUF005
from __future__ import annotations

import base64
import hashlib
import json
import struct
from pathlib import Path

from imageaudit.facts import hygiene
from imageaudit.facts.accounts.homes import Home
from imageaudit.facts.base import CollectContext
from imageaudit.facts.credentials import CredentialsFacts, PrivateKey, collect
from imageaudit.facts.hygiene import (
    CloudInit,
    CloudState,
    IdentityFile,
    LogFile,
    TempContent,
)
from imageaudit.imagefs import FileType
from imageaudit.model import Source, to_jsonable
from imageaudit.openers.directory import DirectoryFS
from tests.scenario import Dir, File, Scenario, Symlink, write_tree

SECRET = "S3CR3T-VALUE"


def ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def openssh_key(cipher: bytes = b"none", kdf: bytes = b"none") -> tuple[str, str]:
    """A PROTOCOL.key file and the SHA256 fingerprint of its public key."""
    public = ssh_string(b"ssh-ed25519") + ssh_string(b"\x01" * 32)
    blob = b"openssh-key-v1\x00" + ssh_string(cipher) + ssh_string(kdf) + ssh_string(b"")
    blob += struct.pack(">I", 1) + ssh_string(public) + ssh_string(SECRET.encode())
    b64 = base64.b64encode(blob).decode()
    body = "\n".join(b64[i : i + 70] for i in range(0, len(b64), 70))
    text = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----\n"
    digest = base64.b64encode(hashlib.sha256(public).digest()).decode().rstrip("=")
    return text, "SHA256:" + digest


DER = b"0\x82" + SECRET.encode()
B64 = base64.b64encode(DER).decode()
DER_FP = "sha256:" + hashlib.sha256(DER).hexdigest()


def pem(label: str, headers: str = "") -> str:
    return f"-----BEGIN {label}-----\n{headers}{B64}\n-----END {label}-----\n"


CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
LEGACY = pem("RSA PRIVATE KEY", "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00FF\n\n")
PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "alice:x:1000:1000::/home/alice:/bin/sh\n"
    "svc:x:998:998::/srv/svc:/usr/sbin/nologin\n"
    "ghost:x:1001:1001::/home/ghost:/bin/sh\n"
)


def run(tree: Scenario, tmp_path: Path) -> CredentialsFacts:
    root = write_tree(tree, tmp_path / "root")
    with DirectoryFS(root) as fs:
        return collect(CollectContext(fs=fs))


def test_private_keys_found_by_name_and_location_encrypted_or_not(tmp_path: Path) -> None:
    plain, plain_fp = openssh_key()
    locked, locked_fp = openssh_key(b"aes256-ctr", b"bcrypt")
    tree: Scenario = {
        "/etc/passwd": PASSWD,
        "/root/.ssh/id_rsa": File(pem("RSA PRIVATE KEY"), mode=0o600),
        "/root/.ssh/id_rsa.pub": "ssh-rsa AAAA root@h\n",
        "/home/alice/.ssh/id_ed25519": File(locked, mode=0o600, uid=1000),
        "/etc/ssh/ssh_host_ed25519_key": File(plain, mode=0o600),
        "/opt/app/server.key": pem("ENCRYPTED PRIVATE KEY"),
        "/opt/app/legacy.pem": LEGACY,
        "/etc/app/conf": "name = x\n" + pem("PRIVATE KEY"),  # found by sniffing /etc
        "/srv/svc/notes": CERT + pem("EC PRIVATE KEY"),  # under a passwd home
        "/usr/share/doc/example.txt": pem("RSA PRIVATE KEY"),  # outside the sniffed places
        "/opt/big.key": pem("RSA PRIVATE KEY") + "#" * 70_000,  # over 64 KiB: never read
        "/opt/random.bin": bytes(range(256)) * 8,  # binary garbage, sniffed, nothing found
        "/root/putty.ppk": "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: aes256-cbc\n",
        "/root/cert.p12": b"\x30\x82\x01\x00binary",
        "/root/pgp.asc": "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nxx\n",
    }
    facts = run(tree, tmp_path)
    got = [
        (k.path, k.kind, k.algorithm, k.encrypted, k.host_key, k.fingerprint, k.source)
        for k in facts.private_keys
    ]
    p12_fp = "sha256:" + hashlib.sha256(b"\x30\x82\x01\x00binary").hexdigest()
    assert got == [
        ("/etc/app/conf", "pkcs8", None, False, False, DER_FP, Source("/etc/app/conf", 2)),
        ("/etc/ssh/ssh_host_ed25519_key", "openssh", "ssh-ed25519", False, True, plain_fp)
        + (Source("/etc/ssh/ssh_host_ed25519_key", 1),),
        ("/home/alice/.ssh/id_ed25519", "openssh", "ssh-ed25519", True, False, locked_fp)
        + (Source("/home/alice/.ssh/id_ed25519", 1),),
        ("/opt/app/legacy.pem", "rsa", None, True, False)
        + ("sha256:" + hashlib.sha256(DER).hexdigest(), Source("/opt/app/legacy.pem", 1)),
        ("/opt/app/server.key", "pkcs8", None, True, False, DER_FP)
        + (Source("/opt/app/server.key", 1),),
        ("/root/.ssh/id_rsa", "rsa", None, False, False, DER_FP, Source("/root/.ssh/id_rsa", 1)),
        ("/root/cert.p12", "pkcs12", None, None, False, p12_fp, Source("/root/cert.p12")),
        ("/root/pgp.asc", "pgp", None, None, False, None, Source("/root/pgp.asc", 1)),
        ("/root/putty.ppk", "putty", "ssh-ed25519", True, False, None)
        + (Source("/root/putty.ppk", 1),),
        ("/srv/svc/notes", "ec", None, False, False, DER_FP, Source("/srv/svc/notes", 4)),
    ]
    alice = next(k for k in facts.private_keys if k.path.startswith("/home/alice"))
    assert (alice.size, alice.mode, alice.uid, alice.gid) == (len(locked), 0o600, 1000, 0)
    assert facts.private_keys_truncated is False
    dumped = json.dumps(to_jsonable(facts))
    assert SECRET not in dumped and B64 not in dumped


def test_credential_files_by_home_and_system_path(tmp_path: Path) -> None:
    tree: Scenario = {
        "/etc/passwd": PASSWD,
        "/root/.aws/credentials": (
            f"[default]\naws_access_key_id = AKIA\naws_secret_access_key = {SECRET}\n"
        ),
        "/home/alice/.aws/config": "[default]\nregion = eu\naws_secret_access_key =\n",
        "/home/alice/.docker/config.json": '{"auths":{"reg.example":{"auth":"' + SECRET + '"}}}',
        "/root/.docker/config.json": '{"auths": {"r": {"auth": ""}}, "credsStore": "pass"}',
        "/root/.netrc": f"machine h login u password {SECRET}\n",
        "/root/.git-credentials": f"https://user:{SECRET}@git.example\n",
        "/root/.kube/config": f"users:\n- name: x\n  user:\n    token: {SECRET}\n",
        "/root/.pgpass": f"# comment\nh:5432:*:u:{SECRET}\n",
        "/root/.my.cnf": "[client]\nuser=u\npassword=\n",
        "/root/.s3cfg": f"[default]\nsecret_key = {SECRET}\n",
        "/root/.config/gcloud/credentials.db": b"SQLite format 3\x00\x00",
        "/home/alice/.azure/msal_token_cache.json": '{"RefreshToken": {"k": {"secret": "x"}}}',
        "/home/alice/.globus/userkey.pem": File(LEGACY, mode=0o400),
        "/home/alice/.config/openstack/clouds.yaml": Symlink("/etc/openstack/clouds.yaml"),
        "/etc/openstack/clouds.yaml": (
            "clouds:\n  c:\n    auth:\n      password: ''\n"
            f"      application_credential_secret: {SECRET}\n"
        ),
        "/etc/grid-security/hostkey.pem": File(pem("RSA PRIVATE KEY"), mode=0o400),
        "/etc/grid-security/hostcert.pem": CERT,
        "/etc/grid-security/certificates/ca.pem": CERT,
        "/etc/grid-security/combined.pem": CERT + pem("PRIVATE KEY"),
    }
    facts = run(tree, tmp_path)
    got = [(c.kind, c.path, c.home, c.has_secret, c.markers, c.source) for c in facts.files]
    assert got == [
        ("aws-config", "/home/alice/.aws/config", "/home/alice", False, ())
        + (Source("/home/alice/.aws/config"),),
        ("openstack-clouds", "/home/alice/.config/openstack/clouds.yaml", "/home/alice", True)
        + (("application_credential_secret",),)
        + (Source("/home/alice/.config/openstack/clouds.yaml", 5),),
        ("docker-config", "/home/alice/.docker/config.json", "/home/alice", True, ("auth",))
        + (Source("/home/alice/.docker/config.json", 1),),
        ("globus-userkey", "/home/alice/.globus/userkey.pem", "/home/alice", True)
        + (("RSA PRIVATE KEY",), Source("/home/alice/.globus/userkey.pem", 1)),
        ("azure", "/home/alice/.azure/msal_token_cache.json", "/home/alice", True, ("secret",))
        + (Source("/home/alice/.azure/msal_token_cache.json", 1),),
        ("aws-credentials", "/root/.aws/credentials", "/root", True)
        + (("aws_secret_access_key",), Source("/root/.aws/credentials", 3)),
        ("docker-config", "/root/.docker/config.json", "/root", False, ())
        + (Source("/root/.docker/config.json"),),
        ("netrc", "/root/.netrc", "/root", True, ("password",), Source("/root/.netrc", 1)),
        ("git-credentials", "/root/.git-credentials", "/root", True, ("password",))
        + (Source("/root/.git-credentials", 1),),
        ("kube-config", "/root/.kube/config", "/root", True, ("token",))
        + (Source("/root/.kube/config", 4),),
        ("pgpass", "/root/.pgpass", "/root", True, ("password",), Source("/root/.pgpass", 2)),
        ("mysql-cnf", "/root/.my.cnf", "/root", False, (), Source("/root/.my.cnf")),
        ("s3cfg", "/root/.s3cfg", "/root", True, ("secret_key",), Source("/root/.s3cfg", 2)),
        ("gcloud-credentials-db", "/root/.config/gcloud/credentials.db", "/root", None, ())
        + (Source("/root/.config/gcloud/credentials.db"),),
        ("openstack-clouds", "/etc/openstack/clouds.yaml", None, True)
        + (("application_credential_secret",), Source("/etc/openstack/clouds.yaml", 5)),
        ("grid-hostkey", "/etc/grid-security/hostkey.pem", None, True, ("RSA PRIVATE KEY",))
        + (Source("/etc/grid-security/hostkey.pem", 1),),
        ("grid-hostcert", "/etc/grid-security/hostcert.pem", None, False, ())
        + (Source("/etc/grid-security/hostcert.pem"),),
        ("grid-pem", "/etc/grid-security/combined.pem", None, True, ("PRIVATE KEY",))
        + (Source("/etc/grid-security/combined.pem", 4),),
    ]
    linked = facts.files[1]
    assert (linked.type, linked.link_target) == (FileType.SYMLINK, "/etc/openstack/clouds.yaml")
    assert SECRET not in json.dumps(to_jsonable(facts))


class CountingFS(DirectoryFS):
    """The real directory opener, remembering how many bytes each read asked for."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads: dict[str, int] = {}

    def _read_canonical(self, path: str, limit: int, offset: int = 0) -> bytes:
        self.reads[path] = max(self.reads.get(path, 0), limit)
        return super()._read_canonical(path, limit, offset)


def test_hygiene_histories_cloud_identity_logs_temp(tmp_path: Path) -> None:
    huge = b"echo x\n" * (hygiene.MAX_HISTORY_READ // 7 + 1000)
    tree: Scenario = {
        "/etc/passwd": PASSWD,
        "/root/.bash_history": "ls\nrm -rf /\ncat /etc/shadow",
        "/root/.lesshst": "",
        "/root/.ssh/authorized_keys": "ssh-ed25519 AAAA\n",
        "/root/.ssh/known_hosts": "h ssh-ed25519 AAAA\n",
        "/root/.ssh/config": File("Host *\n", mode=0o600),
        "/home/alice/.bash_history": Symlink("/dev/null"),
        "/home/alice/.zsh_history": huge,
        "/home/alice/.python_history": b"\x00\xff\xfe\n\x89garbage",
        "/home/alice/.mysql_history": Symlink("/nowhere"),
        "/var/lib/cloud/instance": Symlink("/var/lib/cloud/instances/i-123"),
        "/var/lib/cloud/instances/i-123/user-data.txt": "#cloud-config\n",
        "/var/lib/cloud/data/instance-id": "i-123\n",
        "/var/lib/cloud/data/status.json": "{}",
        "/etc/cloud/cloud.cfg": "users: [default]\n",
        "/etc/cloud/cloud.cfg.d/90_dpkg.cfg": "",
        "/usr/bin/cloud-init": File("#!/usr/bin/python3\n", mode=0o755),
        "/lib/systemd/system/cloud-init.service": "[Unit]\n",
        "/etc/machine-id": "uninitialized\n",
        "/var/lib/dbus/machine-id": Symlink("/etc/machine-id"),
        "/var/lib/systemd/random-seed": File(b"\x01" * 512, mode=0o600),
        "/var/log/syslog": "x" * 100,
        "/var/log/apt/history.log": "y" * 10,
        "/var/log/empty.log": "",
        "/tmp/a": "",
        "/tmp/b/c": "",
        "/var/tmp": Dir(mode=0o1777),
    }
    root = write_tree(tree, tmp_path / "root")
    fs = CountingFS(root)
    with fs:
        facts = collect(CollectContext(fs=fs))
    reads = fs.reads
    assert facts.homes == (
        Home("/home/alice", "alice", True, Source("/etc/passwd", 2)),
        Home("/home/ghost", "ghost", False, Source("/etc/passwd", 4)),
        Home("/root", "root", True, Source("/etc/passwd", 1)),
        Home("/srv/svc", "svc", False, Source("/etc/passwd", 3)),
    )
    R, L = FileType.REGULAR, FileType.SYMLINK
    got = [
        (h.path, h.type, h.link_target, h.target_type, h.dev_null, h.size, h.lines)
        + (h.lines_truncated,)
        for h in facts.histories
    ]
    assert got == [
        ("/home/alice/.bash_history", L, "/dev/null", None, True, 0, None, False),
        (
            "/home/alice/.zsh_history",
            R,
            None,
            R,
            False,
            len(huge),
            hygiene.MAX_HISTORY_READ // 7 + 1,
            True,
        ),
        ("/home/alice/.python_history", R, None, R, False, 12, 2, False),
        ("/home/alice/.mysql_history", L, "/nowhere", None, False, 0, None, False),
        ("/root/.bash_history", R, None, R, False, 27, 3, False),
        ("/root/.lesshst", R, None, R, False, 0, 0, False),
    ]
    assert reads["/home/alice/.zsh_history"] == hygiene.MAX_HISTORY_READ
    assert [(e.path, e.type, e.mode) for e in facts.ssh_entries] == [
        ("/root/.ssh/config", R, 0o600),
        ("/root/.ssh/known_hosts", R, 0o644),
    ]
    assert facts.cloud_state == CloudState(
        present=True,
        entries=7,
        instance_link="/var/lib/cloud/instances/i-123",
        instances=("i-123",),
        data_entries=2,
        sem_entries=None,
        source=Source("/var/lib/cloud"),
    )
    assert facts.cloud_init == CloudInit(
        config=True,
        config_d=("90_dpkg.cfg",),
        binaries=("/usr/bin/cloud-init",),
        units=("/lib/systemd/system/cloud-init.service",),
        source=Source("/etc/cloud/cloud.cfg"),
    )
    assert facts.identity == (
        IdentityFile("/etc/machine-id", "uninitialized", 14, None, Source("/etc/machine-id")),
        IdentityFile(
            "/var/lib/dbus/machine-id",
            "uninitialized",
            14,
            "/etc/machine-id",
            Source("/var/lib/dbus/machine-id"),
        ),
        IdentityFile(
            "/var/lib/systemd/random-seed", "set", 512, None, Source("/var/lib/systemd/random-seed")
        ),
        IdentityFile(
            "/var/lib/urandom/random-seed",
            "absent",
            None,
            None,
            Source("/var/lib/urandom/random-seed"),
        ),
        IdentityFile(
            "/var/lib/systemd/credential.secret",
            "absent",
            None,
            None,
            Source("/var/lib/systemd/credential.secret"),
        ),
    )
    assert facts.logs == hygiene.Logs(
        files=(
            LogFile("/var/log/syslog", 100, Source("/var/log/syslog")),
            LogFile("/var/log/apt/history.log", 10, Source("/var/log/apt/history.log")),
        ),
        count=2,
        empty_count=1,
        total_bytes=110,
        truncated=False,
    )
    assert facts.temp == (
        TempContent("/tmp", True, 2, 3, ("a", "b"), Source("/tmp")),
        TempContent("/var/tmp", True, 0, 0, (), Source("/var/tmp")),
    )
    # Every read stayed within its cap; the 70 KB key file was never opened.
    assert max(reads.values()) <= hygiene.MAX_HISTORY_READ


def test_clean_image_gives_absent_facts(tmp_path: Path) -> None:
    tree: Scenario = {
        "/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
        "/root": Dir(mode=0o700),
        "/etc/machine-id": "",
        "/var/log/wtmp": "",
        "/opt/big.key": pem("RSA PRIVATE KEY") + "#" * 70_000,
    }
    root = write_tree(tree, tmp_path / "root")
    fs = CountingFS(root)
    with fs:
        facts = collect(CollectContext(fs=fs))
    assert "/opt/big.key" not in fs.reads
    assert (facts.private_keys, facts.files, facts.histories, facts.ssh_entries) == ((), (), (), ())
    assert facts.cloud_state == CloudState(False, 0, None, (), None, None, Source("/var/lib/cloud"))
    assert facts.cloud_init == CloudInit(False, (), (), (), Source("/etc/cloud/cloud.cfg"))
    assert [(i.path, i.state) for i in facts.identity] == [
        ("/etc/machine-id", "empty"),
        ("/var/lib/dbus/machine-id", "absent"),
        ("/var/lib/systemd/random-seed", "absent"),
        ("/var/lib/urandom/random-seed", "absent"),
        ("/var/lib/systemd/credential.secret", "absent"),
    ]
    assert (facts.logs.files, facts.logs.count, facts.logs.empty_count) == ((), 0, 1)
    assert facts.temp == (
        TempContent("/tmp", False, 0, 0, (), Source("/tmp")),
        TempContent("/var/tmp", False, 0, 0, (), Source("/var/tmp")),
    )


def test_private_key_list_is_typed(tmp_path: Path) -> None:
    facts = run({"/root/.ssh/id_rsa": pem("RSA PRIVATE KEY")}, tmp_path)
    assert facts.private_keys == (
        PrivateKey(
            path="/root/.ssh/id_rsa",
            kind="rsa",
            algorithm=None,
            encrypted=False,
            host_key=False,
            fingerprint=DER_FP,
            size=len(pem("RSA PRIVATE KEY")),
            mode=0o644,
            uid=0,
            gid=0,
            source=Source("/root/.ssh/id_rsa", 1),
        ),
    )
