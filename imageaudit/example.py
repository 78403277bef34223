"""The built-in example: a small image with known weaknesses, and a clean one beside it.

Used by the first-run command (``imageaudit demo``) and by the tour in the README, so that
anyone can see the whole product work on a fresh machine without an image of their own.
The trees are tiny Debian-like roots; :func:`build_disk` turns one into a qcow2 with
``mkfs.ext4 -d`` and ``qemu-img`` (no mounting, no root needed for the build itself).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

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

_COMMON = {
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
    "/etc/systemd/system/default.target": "->/lib/systemd/system/multi-user.target",
    "/lib/systemd/system/multi-user.target": "[Unit]\nDescription=Multi-User System\n",
    "/etc/cloud/cloud.cfg": "users:\n  - default\ndisable_root: true\n",
}

WEAK: dict[str, str | tuple[str, int]] = {
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
    f"{_WANTS}/inetd.service": "->/lib/systemd/system/inetd.service",
    f"{_WANTS}/redis-server.service": "->/lib/systemd/system/redis-server.service",
    f"{_WANTS}/snmpd.service": "->/lib/systemd/system/snmpd.service",
    "/etc/passwd": _PASSWD.format(
        extra=(
            "admin:x:1000:1000:Admin:/home/admin:/bin/bash\n"
            "pi:x:1001:1001::/home/pi:/bin/bash\n"
            "guest:x:1002:1002::/home/guest:/bin/bash\n"
            "toor:x:0:0::/root:/bin/bash\n"
        )
    ),
    "/etc/group": _GROUP.format(sudoers="admin"),
    "/etc/shadow": (
        f"root:{_ROOT_ROOT}:19000:0:99999:7:::\n"
        "daemon:*:19000:0:99999:7:::\n"
        "sshd:*:19000:0:99999:7:::\n"
        f"admin:{_ADMIN_ADMIN}:19000:0:99999:7:::\n"
        f"pi:{_PI_RASPBERRY}:19000:0:99999:7:::\n"
        "guest::19000:0:99999:7:::\n"
        "toor:!:19000:0:99999:7:::\n",
        0o644,
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
    "/etc/ssh/ssh_host_ed25519_key": ("-----BEGIN OPENSSH PRIVATE KEY-----\n", 0o600),
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
    f"{_WANTS}/ssh.service": "->/lib/systemd/system/ssh.service",
    "/etc/cron.daily/cleanup": ("#!/bin/sh\nrm -rf /tmp/*\n", 0o777),
    "/root/.ssh/authorized_keys": (
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPe1XZKY28plh1uOflqTkTgyzDLO71yogEWQN/Ebns/N "
        "builder@example\n"
    ),
    "/root/.ssh/id_ed25519": ("-----BEGIN OPENSSH PRIVATE KEY-----\n", 0o600),
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
    "/srv/public/upload/.keep": ("", 0o666),
    "/tmp/build.log": "leftover\n",
}

CLEAN: dict[str, str | tuple[str, int]] = {
    **_COMMON,
    "/etc/passwd": _PASSWD.format(extra="debian:x:1000:1000:Debian:/home/debian:/bin/bash\n"),
    "/etc/group": _GROUP.format(sudoers="debian"),
    "/etc/shadow": (
        "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nsshd:*:19000:0:99999:7:::\n"
        f"debian:!{_STRONG}:19000:0:99999:7:::\n",
        0o640,
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
    f"{_WANTS}/ssh.service": "->/lib/systemd/system/ssh.service",
    "/tmp": ("<dir>", 0o1777),
}


def write_tree(spec: dict[str, str | tuple[str, int]], root: Path) -> Path:
    """Write an example description under ``root`` (``->target`` makes a symlink)."""
    root.mkdir(parents=True, exist_ok=True)
    for path, value in sorted(spec.items()):
        content, mode = value if isinstance(value, tuple) else (value, 0o644)
        host = root / path.lstrip("/")
        if content == "<dir>":
            host.mkdir(parents=True, exist_ok=True)
            host.chmod(mode)
            continue
        host.parent.mkdir(parents=True, exist_ok=True)
        if content.startswith("->"):
            if host.is_symlink() or host.exists():
                host.unlink()
            host.symlink_to(content[2:])
            continue
        host.write_text(content)
        host.chmod(mode)
    for d in ("tmp", "var/tmp"):
        if (root / d).is_dir():
            (root / d).chmod(0o1777)
    return root


def build_disk(tree: Path, out: Path, size_mb: int = 64, fmt: str = "qcow2") -> Path:
    """Make a VM disk holding ``tree`` as one ext4 filesystem, without mounting anything."""
    for tool in ("mkfs.ext4", "qemu-img"):
        if shutil.which(tool) is None:
            raise RuntimeError(
                f"{tool} is missing: install e2fsprogs and qemu-utils (scripts/bootstrap.sh does)"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="imageaudit-example-") as tmp:
        raw = Path(tmp) / "disk.raw"
        with raw.open("wb") as fh:
            fh.truncate(size_mb * 1024 * 1024)
        subprocess.run(
            ["mkfs.ext4", "-q", "-F", "-L", "root", "-E", "root_owner=0:0", "-d", str(tree),
             str(raw)],
            check=True,
            env={**os.environ, "E2FSPROGS_FAKE_TIME": "1700000000"},
        )
        tmp_out = out.with_suffix(out.suffix + ".part")
        subprocess.run(
            ["qemu-img", "convert", "-q", "-f", "raw", "-O", fmt, str(raw), str(tmp_out)],
            check=True,
        )
        tmp_out.replace(out)
    return out


def build_examples(directory: Path) -> dict[str, Path]:
    """Build (or reuse) the weak and the clean example disks under ``directory``."""
    result: dict[str, Path] = {}
    for name, spec in (("weak", WEAK), ("clean", CLEAN)):
        disk = directory / f"example-{name}.qcow2"
        # Reuse a disk only if it was built from this version of the description.
        stamp = disk.with_name(disk.name + ".spec")
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
        if not disk.exists() or not stamp.exists() or stamp.read_text() != digest:
            with tempfile.TemporaryDirectory(prefix="imageaudit-tree-") as tmp:
                build_disk(write_tree(spec, Path(tmp) / "root"), disk)
            stamp.write_text(digest)
        result[name] = disk
    return result
