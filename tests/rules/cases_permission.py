"""Pass and fail scenarios of the ``permission`` rules."""

from __future__ import annotations

from imageaudit.model import Severity, Status
from tests.rules.harness import case
from tests.scenario import Dir, File, Scenario, Symlink

PASSWD = "root:x:0:0:root:/root:/bin/bash\n"
GROUP = "root:x:0:\nshadow:x:42:\nusers:x:100:\n"


def tree(extra: Scenario) -> Scenario:
    """A minimal root tree with an account database, plus ``extra``."""
    return {"/etc/passwd": PASSWD, "/etc/group": GROUP, **extra}


# -- world-writable files ---------------------------------------------------------------------

case(
    "permission_world_writable_files",
    Status.PASS,
    tree(
        {
            "/tmp": Dir(mode=0o1777),
            "/tmp/scratch": File("x", mode=0o666),
            "/var/tmp": Dir(mode=0o1777),
            "/var/tmp/cache/blob": File("x", mode=0o666),
            "/etc/motd": "hello\n",
            "/srv/data/file": File("x", mode=0o664),
        }
    ),
)
case(
    "permission_world_writable_files",
    Status.FAIL,
    tree({"/srv/data/file": File("x", mode=0o666), "/opt/app/state": File("x", mode=0o646)}),
    resources={"/srv/data/file", "/opt/app/state"},
    message="File `/srv/data/file` is writable by every user (mode 0666)",
    severity=Severity.MODERATE,
)
case(
    "permission_world_writable_files",
    Status.FAIL,
    tree({"/etc/app.conf": File("x", mode=0o666), "/usr/lib/app/hook": File("", mode=0o777)}),
    resources={"/etc/app.conf", "/usr/lib/app/hook"},
    message="File `/etc/app.conf` is writable by every user (mode 0666); "
    "high because it is under /etc",
    severity=Severity.HIGH,
    name="system-tree",
)

# -- world-writable directories ---------------------------------------------------------------

case(
    "permission_world_writable_dirs",
    Status.PASS,
    tree(
        {
            "/tmp": Dir(mode=0o1777),
            "/tmp/open": Dir(mode=0o777),  # below a temp dir: not judged
            "/srv/share": Dir(mode=0o1777),
            "/srv/group": Dir(mode=0o775),
        }
    ),
)
case(
    "permission_world_writable_dirs",
    Status.FAIL,
    tree({"/tmp": Dir(mode=0o1777), "/srv/drop": Dir(mode=0o777)}),
    resources={"/srv/drop"},
    message="Directory `/srv/drop` is writable by every user without the sticky bit "
    "(mode 0777): anyone can delete or replace its files",
    severity=Severity.MODERATE,
)
case(
    "permission_world_writable_dirs",
    Status.FAIL,
    tree({"/tmp": Dir(mode=0o777), "/etc/app.d": Dir(mode=0o777)}),
    resources={"/tmp", "/etc/app.d"},
    message="Directory `/tmp` is writable by every user without the sticky bit (mode 0777): "
    "anyone can delete or replace its files; high because it is a shared temp directory",
    severity=Severity.HIGH,
    name="temp-and-system",
)

# -- programs run by cron and systemd ---------------------------------------------------------

case(
    "permission_world_writable_executed",
    Status.PASS,
    tree(
        {
            "/etc/crontab": "PATH=/usr/bin:/bin\n* * * * * root /usr/local/bin/job --quiet\n"
            "0 1 * * * root /tmp/nightly\n",
            "/usr/local/bin/job": File("#!/bin/sh\n", mode=0o755),
            # sticky /tmp: an existing root-owned program cannot be replaced by others
            "/tmp": Dir(mode=0o1777),
            "/tmp/nightly": File("#!/bin/sh\n", mode=0o755),
            "/etc/systemd/system/app.service": "[Service]\nExecStart=/usr/local/bin/job\n",
        }
    ),
)
case(
    "permission_world_writable_executed",
    Status.FAIL,
    tree(
        {
            "/etc/crontab": "* * * * * root /opt/job.sh\n",
            "/opt/job.sh": File("#!/bin/sh\n", mode=0o777),
            "/srv/drop": Dir(mode=0o777),
            "/etc/systemd/system/app.service": "[Service]\nExecStart=-/srv/drop/app --serve\n",
        }
    ),
    resources={"/opt/job.sh", "/srv/drop/app"},
    message="Program `/opt/job.sh` run by cron (/etc/crontab line 1, crontab as `root`) "
    "is writable by every user (mode 0777)",
)
case(
    "permission_world_writable_executed",
    Status.FAIL,
    tree(
        {
            "/srv/drop": Dir(mode=0o777),
            "/etc/systemd/system/app.service": "[Service]\nExecStart=-/srv/drop/app --serve\n",
        }
    ),
    resources={"/srv/drop/app"},
    message="Program `/srv/drop/app` run by systemd "
    "(/etc/systemd/system/app.service line 2, ExecStart) does not exist and sits below "
    "the world-writable directory `/srv/drop`: anyone can create it",
    name="missing-program",
)

# -- PATH -------------------------------------------------------------------------------------

case(
    "permission_world_writable_path",
    Status.PASS,
    tree(
        {
            "/usr/bin/ls": File("", mode=0o755),
            "/bin": Symlink("usr/bin"),
            "/etc/environment": 'PATH="/usr/local/bin:/usr/bin:/bin"\n',
        }
    ),
)
case(
    "permission_world_writable_path",
    Status.FAIL,
    tree(
        {
            "/usr/local/bin": Dir(mode=0o1777),
            "/usr/bin/tool": File("", mode=0o777),
            "/etc/environment": 'PATH="/usr/bin:.:/usr/local/bin"\n',
        }
    ),
    resources={"/usr/local/bin", "/usr/bin/tool", "/etc/environment:."},
    message="PATH directory `/usr/local/bin` (default; /etc/environment PATH) is writable by "
    "every user (mode 1777): anyone can plant a program there",
)
case(
    "permission_world_writable_path",
    Status.FAIL,
    tree({"/usr/bin/tool": File("", mode=0o777)}),
    resources={"/usr/bin/tool"},
    message="Program `/usr/bin/tool` on the PATH (default) is writable by every user",
    name="program",
)

# -- setuid/setgid files no package owns ------------------------------------------------------

DPKG_STATUS = (
    "Package: login\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:4.13+dfsg1-1\n"
)
DPKG: Scenario = {
    "/var/lib/dpkg/status": DPKG_STATUS,
    # Debian 12 still lists /bin/su while the file lives at /usr/bin/su (merged /usr).
    "/var/lib/dpkg/info/login.list": "/.\n/bin\n/bin/su\n/usr/bin/newgrp\n",
    "/bin": Symlink("usr/bin"),
    "/usr/bin/su": File(b"\x7fELF", mode=0o4755),
    "/usr/bin/newgrp": File(b"\x7fELF", mode=0o4755),
}

case("permission_setuid_unowned", Status.PASS, tree(DPKG))
case(
    "permission_setuid_unowned",
    Status.FAIL,
    tree({**DPKG, "/usr/local/bin/rootme": File(b"\x7fELF", mode=0o6755, gid=100)}),
    resources={"/usr/local/bin/rootme"},
    message="File `/usr/local/bin/rootme` is setuid and setgid (mode 6755, owner `root`, "
    "group `users`) and no installed package owns it",
)
case(
    "permission_setuid_unowned",
    Status.NOT_APPLICABLE,
    tree({"/usr/bin/su": File(b"\x7fELF", mode=0o4755)}),
    name="no-package-database",
)

# -- readable shadow --------------------------------------------------------------------------

case(
    "permission_shadow_readable",
    Status.PASS,
    tree(
        {
            "/etc/shadow": File("root:*:19000:0:99999:7:::\n", mode=0o640, gid=42),
            "/etc/gshadow": File("root:*::\n", mode=0o600),
            "/etc/shadow-": File("root:*:19000:0:99999:7:::\n", mode=0o000),
        }
    ),
)
case(
    "permission_shadow_readable",
    Status.FAIL,
    tree(
        {
            "/etc/shadow": File("root:*:19000:0:99999:7:::\n", mode=0o644),
            "/etc/gshadow": File("root:*::\n", mode=0o666),
        }
    ),
    resources={"/etc/shadow", "/etc/gshadow"},
    message="Password hash file `/etc/shadow` can be read by every user (mode 0644)",
    severity=Severity.CRITICAL,
)
case(
    "permission_shadow_readable",
    Status.FAIL,
    tree({"/etc/gshadow": File("root:*::\n", mode=0o640, gid=100)}),
    resources={"/etc/gshadow"},
    message="Password hash file `/etc/gshadow` can be read by group `users` (mode 0640); "
    "high rather than critical because only that group's members can read it",
    severity=Severity.HIGH,
    name="group",
)

# -- unknown owners ---------------------------------------------------------------------------

case(
    "permission_unknown_owner",
    Status.PASS,
    tree({"/opt/app/bin": File("", mode=0o755), "/srv/data": Dir(gid=100)}),
)
case(
    "permission_unknown_owner",
    Status.FAIL,
    tree(
        {
            "/opt/app": Dir(uid=1000, gid=1000),
            "/opt/app/bin": File("", uid=1000, gid=1000),
            "/opt/app/lib": Dir(uid=1000, gid=1000),
            "/opt/app/lib/x.so": File("", uid=1000, gid=1000),
            "/srv/data": File("", uid=0, gid=5000),
        }
    ),
    resources={"/opt/app", "/srv/data"},
    message="Directory `/opt/app` and 3 entries below it are owned by uid 1000 and gid 1000, "
    "which the image does not know",
)
case(
    "permission_unknown_owner",
    Status.NOT_APPLICABLE,
    {"/opt/app": Dir(uid=1000)},
    name="no-passwd",
)
case(
    "permission_world_writable_executed",
    Status.FAIL,
    tree(
        {
            "/etc/cron.d/report": "@daily root /bin/sh /srv/scripts/report.sh >/dev/null\n",
            "/srv/scripts/report.sh": File("#!/bin/sh\n", mode=0o666),
            "/bin/sh": File(b"\x7fELF", mode=0o755),
        }
    ),
    resources={"/srv/scripts/report.sh"},
    message="File `/srv/scripts/report.sh` named by cron (/etc/cron.d/report line 1, cron.d "
    "as `root`) is writable by every user (mode 0666)",
    name="script-argument",
)
