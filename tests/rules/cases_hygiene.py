"""Pass and fail scenarios of the ``hygiene`` rules."""

from __future__ import annotations

from imageaudit.model import Severity, Status
from tests.rules.harness import case
from tests.scenario import Dir, File, Scenario, Symlink

PASSWD = "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n"


def tree(extra: Scenario) -> Scenario:
    return {"/etc/passwd": PASSWD, "/etc/group": "root:x:0:\nalice:x:1000:\n", **extra}


# -- histories --------------------------------------------------------------------------------

case(
    "hygiene_shell_histories",
    Status.PASS,
    tree(
        {
            "/root/.bash_history": Symlink("/dev/null"),
            "/home/alice/.bash_history": File("", uid=1000),
            "/home/alice/.bashrc": "export PS1='$ '\n",
        }
    ),
)
case(
    "hygiene_shell_histories",
    Status.FAIL,
    tree(
        {
            "/root/.bash_history": "apt-get update\nmysql -uroot -psecret\n",
            "/home/alice/.python_history": File("import os", uid=1000),
        }
    ),
    resources={"/root/.bash_history", "/home/alice/.python_history"},
    message="History file `/root/.bash_history` is not empty (2 lines, 37 bytes)",
    severity=Severity.MODERATE,
)

# -- cloud-init state -------------------------------------------------------------------------

case(
    "hygiene_cloud_state",
    Status.PASS,
    tree({"/var/lib/cloud/data": Dir(), "/var/lib/cloud/instances": Dir()}),
)
case(
    "hygiene_cloud_state",
    Status.FAIL,
    tree(
        {
            "/var/lib/cloud/data/instance-id": "i-0123\n",
            "/var/lib/cloud/data/status.json": "{}\n",
            "/var/lib/cloud/sem/config_scripts_per_once.once": "",
        }
    ),
    resources={"/var/lib/cloud"},
    message="cloud-init state is left in `/var/lib/cloud`: 2 entries under data/; "
    "1 entry under sem/",
    severity=Severity.LOW,
)
case(
    "hygiene_cloud_state",
    Status.FAIL,
    tree(
        {
            "/var/lib/cloud/instance": Symlink("/var/lib/cloud/instances/i-0123"),
            "/var/lib/cloud/instances/i-0123/user-data.txt": "#cloud-config\n",
        }
    ),
    resources={"/var/lib/cloud"},
    message="cloud-init state is left in `/var/lib/cloud`: the link `instance` -> "
    "`/var/lib/cloud/instances/i-0123`; instance directories `i-0123`; moderate because "
    "instance directories may hold the build's user-data",
    severity=Severity.MODERATE,
    name="instances",
)

# -- machine-id and random seed ---------------------------------------------------------------

case(
    "hygiene_machine_id",
    Status.PASS,
    tree(
        {
            "/etc/machine-id": "",
            "/var/lib/dbus/machine-id": Symlink("/etc/machine-id"),
        }
    ),
)
case(
    "hygiene_machine_id",
    Status.PASS,
    tree({"/etc/machine-id": "uninitialized\n"}),
    name="first-boot-marker",
)
case(
    "hygiene_machine_id",
    Status.FAIL,
    tree(
        {
            "/etc/machine-id": "4c4c4544004a3510804ab7c04f4b3232\n",
            # a link to the file above is left to its finding
            "/var/lib/dbus/machine-id": Symlink("/etc/machine-id"),
        }
    ),
    resources={"/etc/machine-id"},
    message="File `/etc/machine-id` holds a value (33 bytes): every instance of the image "
    "would share it",
)
case(
    "hygiene_machine_id",
    Status.NOT_APPLICABLE,
    tree({"/etc/machine-id": "4c4c4544004a3510804ab7c04f4b3232\n"}),
    name="container",
    kind="container",
)
case("hygiene_random_seed", Status.PASS, tree({"/var/lib/systemd": Dir()}))
case(
    "hygiene_random_seed",
    Status.FAIL,
    tree({"/var/lib/systemd/random-seed": File(b"\x8a" * 512, mode=0o600)}),
    resources={"/var/lib/systemd/random-seed"},
    message="File `/var/lib/systemd/random-seed` holds a value (512 bytes): every instance "
    "of the image would share it",
)

# -- logs -------------------------------------------------------------------------------------

case(
    "hygiene_logs",
    Status.PASS,
    tree({"/var/log/syslog": "", "/var/log/apt/history.log": "", "/var/log/journal": Dir()}),
)
case(
    "hygiene_logs",
    Status.FAIL,
    tree(
        {
            "/var/log/dpkg.log": "x" * 300,
            "/var/log/apt/history.log": "x" * 120,
            "/var/log/auth.log": "",
        }
    ),
    resources={"/var/log"},
    message="2 non-empty log files (420 bytes) are left under `/var/log`: "
    "`/var/log/dpkg.log`, `/var/log/apt/history.log`",
)

# -- temp directories -------------------------------------------------------------------------

case(
    "hygiene_temp_files",
    Status.PASS,
    tree({"/tmp": Dir(mode=0o1777), "/var/tmp": Dir(mode=0o1777)}),
)
case(
    "hygiene_temp_files",
    Status.FAIL,
    tree(
        {
            "/tmp": Dir(mode=0o1777),
            "/tmp/build.sh": "#!/bin/sh\n",
            "/tmp/pkgs/a.deb": "",
            "/var/tmp": Dir(mode=0o1777),
        }
    ),
    resources={"/tmp"},
    message="Temp directory `/tmp` is not empty (2 entries, 3 in total): `build.sh`, `pkgs`",
)

# -- cloud-init present on a VM ---------------------------------------------------------------

case(
    "hygiene_cloud_init_missing",
    Status.PASS,
    tree(
        {
            "/usr/bin/cloud-init": File("#!/usr/bin/python3\n", mode=0o755),
            "/etc/cloud/cloud.cfg": "datasource_list: [OpenStack]\n",
        }
    ),
    kind="vm",
)
case(
    "hygiene_cloud_init_missing",
    Status.PASS,
    tree(
        {
            "/var/lib/dpkg/status": "Package: one-context\nStatus: install ok installed\n"
            "Architecture: all\nVersion: 6.6.0-1\n",
        }
    ),
    name="one-context",
    kind="vm",
)
case(
    "hygiene_cloud_init_missing",
    Status.FAIL,
    tree({"/etc/hostname": "builder\n"}),
    resources={"cloud-init"},
    message="No contextualisation agent is installed: no cloud-init program, unit or "
    "`/etc/cloud/cloud.cfg`, and no package `cloud-init`, `one-context`",
    kind="vm",
)
case(
    "hygiene_cloud_init_missing",
    Status.NOT_APPLICABLE,
    tree({"/etc/hostname": "builder\n"}),
    name="container",
    kind="container",
)
