"""The built-in example, and the way the project describes, writes and builds image trees.

The example is a small image with known weaknesses and a clean one beside it, used by the
first-run command (``imageaudit demo``) and by the tour in the README, so that anyone can see
the whole product work on a fresh machine without an image of their own. The test suite
describes its trees the same way and writes and builds them with the same functions.

A tree is a mapping of in-image paths to entries::

    {
        "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\\n",          # file, mode 0644
        "/etc/shadow": File("root:*:19000:0:99999:7:::\\n", mode=0o640),
        "/bin": Symlink("usr/bin"),
        "/var/tmp": Dir(mode=0o1777),
        "/usr/bin/passwd": File(b"\\x7fELF", mode=0o4755),
    }

Parent directories are made as needed (0755, root). :func:`write_tree` writes a tree into a
host directory; :func:`build_disk` turns a directory into a qcow2 holding one ext4 filesystem
(:func:`make_ext4`, ``mkfs.ext4 -d``: no mounting, no root needed for the build itself) and
:func:`convert` into any format ``qemu-img`` writes.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class File:
    content: bytes | str = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0

    @property
    def data(self) -> bytes:
        return self.content.encode() if isinstance(self.content, str) else self.content


@dataclass(frozen=True)
class Dir:
    mode: int = 0o755
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Symlink:
    target: str
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Hardlink:
    """Another name for the file at ``target`` (an absolute in-image path)."""

    target: str


@dataclass(frozen=True)
class Fifo:
    mode: int = 0o644


Entry = File | Dir | Symlink | Hardlink | Fifo
Tree = Mapping[str, "Entry | str | bytes"]


def entries(tree: Tree) -> Iterator[tuple[str, Entry]]:
    """Every entry, parents first, implicit parent directories included, sorted by path."""
    explicit: dict[str, Entry] = {}
    for path, value in tree.items():
        norm = posixpath.normpath("/" + path.lstrip("/"))
        explicit[norm] = File(value) if isinstance(value, (str, bytes)) else value
    allpaths: dict[str, Entry] = {}
    for path in explicit:
        parent = posixpath.dirname(path)
        while parent != "/":
            allpaths.setdefault(parent, explicit.get(parent, Dir()))
            parent = posixpath.dirname(parent)
    allpaths.update(explicit)
    # Hardlinks after their targets so that the target exists when the link is made.
    yield from sorted(allpaths.items(), key=lambda kv: (isinstance(kv[1], Hardlink), kv[0]))


def write_tree(tree: Tree, root: Path, owners: bool | None = None) -> Path:
    """Write ``tree`` under ``root`` (a host directory). Ownership is applied as root."""
    if owners is None:
        owners = os.geteuid() == 0
    root.mkdir(parents=True, exist_ok=True)
    dir_modes: list[tuple[Path, Dir]] = []
    for path, entry in entries(tree):
        host = root / path.lstrip("/")
        if isinstance(entry, Dir):
            host.mkdir(parents=True, exist_ok=True)
            dir_modes.append((host, entry))
            continue
        host.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(entry, File):
            host.write_bytes(entry.data)
            # chown before chmod: chown clears setuid/setgid bits.
            if owners:
                os.chown(host, entry.uid, entry.gid)
            host.chmod(entry.mode)
        elif isinstance(entry, Symlink):
            host.symlink_to(entry.target)
            if owners:
                os.lchown(host, entry.uid, entry.gid)
        elif isinstance(entry, Hardlink):
            os.link(root / entry.target.lstrip("/"), host)
        elif isinstance(entry, Fifo):
            os.mkfifo(host, entry.mode)
    # Directory modes last: a read-only directory must not stop us filling it.
    for host, entry in reversed(dir_modes):
        if owners:
            os.chown(host, entry.uid, entry.gid)
        host.chmod(entry.mode)
    return root


# Password hashes made once with libxcrypt: root/root (sha512crypt), admin/admin (yescrypt),
# pi/raspberry (md5crypt, the Raspberry Pi OS default), and a long random-looking passphrase.
_ROOT_ROOT = (
    "$6$ZHyv17Wug6SydPT1$43cqnwVK9IhD17fsw7JKUQv7JklXmafYs0poL2MhWZT7ldce8Fbjq7tJucoVvdcgyG9"
    "PiUh5dqnin6renQ36I1"
)
_ADMIN_ADMIN = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$U9UxR4nlxJR6RYds8q2nfUO3NjkfW12EtgsQ0/AQWP4"
_PI_RASPBERRY = "$1$WqnyWCWu$ZUJIl57ICMq2R36TYxrVl1"
_STRONG = (
    "$6$SR4LTMj6DxgONE0m$1Hb8.vzKykyMq017V4G6HZY9ITGKiuLhaI6DA6wH41zurX180oL2iPn14rq9x0oaQbj"
    "ZsWrNuw0gBRBpnHWlp."
)

_OS_RELEASE = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"""

_DPKG_STATUS = """Package: openssh-server
Status: install ok installed
Architecture: amd64
Source: openssh
Version: 1:9.2p1-2+deb12u3

Package: passwd
Status: install ok installed
Architecture: amd64
Source: shadow
Version: 1:4.13+dfsg1-1+b1
"""

_WEAK_PACKAGES = """
Package: telnetd
Status: install ok installed
Architecture: amd64
Source: inetutils
Version: 2:2.4-2+deb12u1

Package: openbsd-inetd
Status: install ok installed
Architecture: amd64
Version: 0.20221205-1

Package: redis-server
Status: install ok installed
Architecture: amd64
Source: redis
Version: 5:7.0.15-1~deb12u1

Package: snmpd
Status: install ok installed
Architecture: amd64
Source: net-snmp
Version: 5.9.3+dfsg-2
"""


def _unit(description: str, exec_start: str) -> str:
    return (
        f"[Unit]\nDescription={description}\n[Service]\nExecStart={exec_start}\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


_WANTS = "/etc/systemd/system/multi-user.target.wants"

_PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
sshd:x:100:65534::/run/sshd:/usr/sbin/nologin
{extra}"""

_GROUP = """root:x:0:
daemon:x:1:
sudo:x:27:{sudoers}
users:x:100:
"""

_COMMON: Tree = {
    "/etc/os-release": _OS_RELEASE,
    "/etc/debian_version": "12.8\n",
    "/etc/hostname": "example\n",
    "/etc/fstab": "LABEL=root / ext4 defaults 0 1\n",
    "/etc/shells": "/bin/sh\n/bin/bash\n",
    "/var/lib/dpkg/status": _DPKG_STATUS,
    "/bin/sh": "",
    "/bin/bash": "",
    "/usr/sbin/sshd": "",
    "/usr/sbin/nologin": "",
    "/lib/systemd/system/ssh.service": _unit("OpenBSD Secure Shell server", "/usr/sbin/sshd -D"),
    "/etc/systemd/system/default.target": Symlink("/lib/systemd/system/multi-user.target"),
    "/lib/systemd/system/multi-user.target": "[Unit]\nDescription=Multi-User System\n",
    "/etc/cloud/cloud.cfg": "users:\n  - default\ndisable_root: true\n",
}

WEAK: Tree = {
    **_COMMON,
    "/var/lib/dpkg/status": _DPKG_STATUS + _WEAK_PACKAGES,
    "/usr/sbin/inetd": "",
    "/usr/sbin/in.telnetd": "",
    "/usr/bin/redis-server": "",
    "/usr/sbin/snmpd": "",
    "/lib/systemd/system/inetd.service": _unit("Internet superserver", "/usr/sbin/inetd"),
    "/lib/systemd/system/redis-server.service": _unit(
        "Redis", "/usr/bin/redis-server /etc/redis/redis.conf"
    ),
    "/lib/systemd/system/snmpd.service": _unit("SNMP agent", "/usr/sbin/snmpd -f"),
    f"{_WANTS}/inetd.service": Symlink("/lib/systemd/system/inetd.service"),
    f"{_WANTS}/redis-server.service": Symlink("/lib/systemd/system/redis-server.service"),
    f"{_WANTS}/snmpd.service": Symlink("/lib/systemd/system/snmpd.service"),
    "/etc/passwd": _PASSWD.format(
        extra=(
            "admin:x:1000:1000:Admin:/home/admin:/bin/bash\n"
            "pi:x:1001:1001::/home/pi:/bin/bash\n"
            "guest:x:1002:1002::/home/guest:/bin/bash\n"
            "toor:x:0:0::/root:/bin/bash\n"
        )
    ),
    "/etc/group": _GROUP.format(sudoers="admin"),
    "/etc/shadow": File(
        f"root:{_ROOT_ROOT}:19000:0:99999:7:::\n"
        "daemon:*:19000:0:99999:7:::\n"
        "sshd:*:19000:0:99999:7:::\n"
        f"admin:{_ADMIN_ADMIN}:19000:0:99999:7:::\n"
        f"pi:{_PI_RASPBERRY}:19000:0:99999:7:::\n"
        "guest::19000:0:99999:7:::\n"
        "toor:!:19000:0:99999:7:::\n",
        mode=0o644,
    ),
    "/etc/sudoers": (
        "root ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\nguest ALL=(ALL) NOPASSWD: ALL\n"
    ),
    "/etc/ssh/sshd_config": (
        "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin yes\nPasswordAuthentication yes\n"
    ),
    "/etc/ssh/sshd_config.d/50-legacy.conf": (
        "PermitEmptyPasswords yes\nCiphers aes128-cbc,3des-cbc\n"
    ),
    "/etc/ssh/ssh_host_ed25519_key": File("-----BEGIN OPENSSH PRIVATE KEY-----\n", mode=0o600),
    "/etc/ssh/ssh_host_ed25519_key.pub": (
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPe1XZKY28plh1uOflqTkTgyzDLO71yogEWQN/Ebns/N "
        "root@example\n"
    ),
    "/etc/exports": "/srv/data *(rw,no_root_squash,insecure)\n/srv/home trusted.example.org (rw)\n",
    "/etc/samba/smb.conf": (
        "[global]\n   map to guest = Bad User\n\n[public]\n   path = /srv/public\n"
        "   guest ok = yes\n   read only = no\n"
    ),
    "/etc/inetd.conf": "telnet stream tcp nowait root /usr/sbin/tcpd /usr/sbin/in.telnetd\n",
    "/etc/redis/redis.conf": "bind 0.0.0.0\nprotected-mode no\nport 6379\n",
    "/etc/snmp/snmpd.conf": "rocommunity public\n",
    f"{_WANTS}/ssh.service": Symlink("/lib/systemd/system/ssh.service"),
    "/etc/cron.daily/cleanup": File("#!/bin/sh\nrm -rf /tmp/*\n", mode=0o777),
    "/root/.ssh/authorized_keys": (
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPe1XZKY28plh1uOflqTkTgyzDLO71yogEWQN/Ebns/N "
        "builder@example\n"
    ),
    "/root/.ssh/id_ed25519": File("-----BEGIN OPENSSH PRIVATE KEY-----\n", mode=0o600),
    "/root/.bash_history": "mysql -u root -pS3cret\nvi /etc/shadow\n",
    "/root/.aws/credentials": (
        "[default]\naws_access_key_id = AKIAEXAMPLEEXAMPLE00\n"
        "aws_secret_access_key = exampleexampleexampleexampleexample0000\n"
    ),
    "/home/admin/.bash_history": "sudo su\n",
    "/etc/machine-id": "4b1c2f0e8d8a4c6c9a3f0b7e2d1c5a99\n",
    "/var/lib/cloud/instance/boot-finished": "done\n",
    "/var/log/syslog": "Nov 23 10:00:00 example sshd[1]: Server listening on 0.0.0.0 port 22.\n",
    "/srv/data/README": "shared data\n",
    "/srv/public/upload/.keep": File("", mode=0o666),
    "/tmp": Dir(mode=0o1777),
    "/tmp/build.log": "leftover\n",
}

CLEAN: Tree = {
    **_COMMON,
    "/etc/passwd": _PASSWD.format(extra="debian:x:1000:1000:Debian:/home/debian:/bin/bash\n"),
    "/etc/group": _GROUP.format(sudoers="debian"),
    "/etc/shadow": File(
        "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nsshd:*:19000:0:99999:7:::\n"
        f"debian:!{_STRONG}:19000:0:99999:7:::\n",
        mode=0o640,
    ),
    "/etc/sudoers": "root ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) NOPASSWD: ALL\n",
    "/etc/ssh/sshd_config": (
        "PermitRootLogin no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
    ),
    "/etc/machine-id": "",
    "/etc/iptables/rules.v4": (
        "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        "-A INPUT -i lo -j ACCEPT\n-A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT\n"
        "-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n"
    ),
    f"{_WANTS}/ssh.service": Symlink("/lib/systemd/system/ssh.service"),
    "/tmp": Dir(mode=0o1777),
}


# mkfs.ext4 stamps this time everywhere (and no random one), so a tree gives the same disk.
FAKE_TIME = "1700000000"


def make_ext4(tree: Path, out: Path, size: int, *, label: str = "root",
              uuid: str | None = None) -> Path:
    """Write an ext4 filesystem of ``size`` bytes holding the directory ``tree`` to ``out``.

    ``mkfs.ext4 -d`` copies the tree in: nothing is mounted. With ``uuid`` the filesystem's
    UUID and directory hash seed are fixed too.
    """
    out.unlink(missing_ok=True)
    with out.open("wb") as fh:
        fh.truncate(size)
    extended = "root_owner=0:0" if uuid is None else f"root_owner=0:0,hash_seed={uuid}"
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-L", label, *(("-U", uuid) if uuid else ()), "-E", extended,
         "-d", str(tree), str(out)],
        check=True,
        env={**os.environ, "E2FSPROGS_FAKE_TIME": FAKE_TIME},
    )
    return out


def convert(raw: Path, out: Path, fmt: str, options: Sequence[str] = ()) -> Path:
    """Convert the raw disk ``raw`` to ``fmt`` at ``out`` (``options``: ``qemu-img -o …``).

    Written beside ``out`` first and renamed, so ``out`` is never half written.
    """
    part = out.with_suffix(out.suffix + ".part")
    subprocess.run(
        ["qemu-img", "convert", "-q", "-f", "raw", "-O", fmt, *options, str(raw), str(part)],
        check=True,
    )
    part.replace(out)
    return out


def build_disk(tree: Path, out: Path, size_mb: int = 64, fmt: str = "qcow2") -> Path:
    """Make a VM disk holding ``tree`` as one ext4 filesystem, without mounting anything."""
    for tool in ("mkfs.ext4", "qemu-img"):
        if shutil.which(tool) is None:
            raise RuntimeError(
                f"{tool} is missing: install e2fsprogs and qemu-utils (scripts/bootstrap.sh does)"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="imageaudit-example-") as tmp:
        raw = make_ext4(tree, Path(tmp) / "disk.raw", size_mb * 1024 * 1024)
        convert(raw, out, fmt)
    return out


def tree_digest(tree: Tree) -> str:
    """What a disk built from ``tree`` depends on: its entries, and this module's writing and
    building of them."""
    h = hashlib.sha256(Path(__file__).read_bytes())
    for path, entry in entries(tree):
        h.update(repr((path, entry)).encode())
    return h.hexdigest()


def build_examples(directory: Path) -> dict[str, Path]:
    """Build (or reuse) the weak and the clean example disks under ``directory``."""
    result: dict[str, Path] = {}
    for name, tree in (("weak", WEAK), ("clean", CLEAN)):
        disk = directory / f"example-{name}.qcow2"
        # Reuse a disk only if it was built from this version of the description.
        stamp = disk.with_name(disk.name + ".spec")
        digest = tree_digest(tree)
        if not disk.exists() or not stamp.exists() or stamp.read_text() != digest:
            with tempfile.TemporaryDirectory(prefix="imageaudit-tree-") as tmp:
                build_disk(write_tree(tree, Path(tmp) / "root"), disk)
            stamp.write_text(digest)
        result[name] = disk
    return result
