"""Check types over what an image builder should have cleaned: shell histories, cloud-init
state, machine identity and random seeds, logs, temporary files; and whether cloud-init,
which contextualises a VM at boot, is there at all.

They read the hygiene part of :class:`imageaudit.facts.credentials.CredentialsFacts`.
"""

from __future__ import annotations

import fnmatch
import posixpath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from imageaudit.checks import MissingPolicy, check_type
from imageaudit.checks.secrets import credentials_facts
from imageaudit.findings import CheckResult, Rule, code
from imageaudit.imagefs import normalize
from imageaudit.model import Evidence, Severity, Status

MAX_NAMED = 5


def _names(items: list[str], total: int) -> str:
    shown = ", ".join(code(i) for i in items[:MAX_NAMED])
    more = total - min(len(items), MAX_NAMED)
    return f"{shown}, and {more} more" if more > 0 else shown


def _entries(count: int) -> str:
    return "1 entry" if count == 1 else f"{count} entries"


class HistoryParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    names: list[str] = Field(
        default_factory=list,
        description="history file names to judge (`.bash_history`, ...); all when empty",
    )


@check_type(
    "histories_empty",
    params_model=HistoryParams,
    missing=MissingPolicy.ERROR,
    needs=("credentials",),
)
def histories_empty(facts: Any, params: HistoryParams, rule: Rule) -> list[CheckResult]:
    """Fails once per non-empty shell or tool history file in a home directory.

    Histories record the commands of whoever built the image, passwords typed on command
    lines included. An empty file, or a link to ``/dev/null`` (history disabled on purpose),
    passes.

    Missing fact: the ``credentials`` facts could not be collected (ERROR by default).
    """
    results = []
    for hist in credentials_facts(facts).histories:
        if params.names and hist.name not in params.names:
            continue
        if hist.dev_null or hist.size == 0:
            continue
        lines = hist.lines if hist.lines is not None else 0
        counted = "at least " if hist.lines_truncated else ""
        plural = "line" if lines == 1 else "lines"
        results.append(
            CheckResult(
                Status.FAIL,
                f"History file {code(hist.path)} is not empty "
                f"({counted}{lines} {plural}, {hist.size} bytes)",
                resource=hist.path,
                evidence=Evidence(
                    path=hist.path,
                    observed=f"{hist.size} bytes",
                    expected="absent, empty or a link to /dev/null",
                ),
            )
        )
    return results


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@check_type(
    "cloud_state_clean", params_model=NoParams, missing=MissingPolicy.ERROR, needs=("credentials",)
)
def cloud_state_clean(facts: Any, params: NoParams, rule: Rule) -> list[CheckResult]:
    """Fails when ``/var/lib/cloud`` holds state from a previous boot with cloud-init.

    Fails when there is an ``instance`` link, an ``instances/*`` directory, or anything
    under ``data/`` or ``sem/``; empty directories (as the package installs them) pass.
    Leftover instance directories may hold the build instance's user-data (often with
    secrets), so with at least one the finding is raised to ``moderate``.

    Missing fact: the ``credentials`` facts could not be collected (ERROR by default).
    """
    state = credentials_facts(facts).cloud_state
    parts: list[str] = []
    if state.instance_link is not None:
        parts.append(f"the link {code('instance')} -> {code(state.instance_link)}")
    if state.instances:
        parts.append(f"instance directories {_names(list(state.instances), len(state.instances))}")
    if state.data_entries:
        parts.append(f"{_entries(state.data_entries)} under data/")
    if state.sem_entries:
        parts.append(f"{_entries(state.sem_entries)} under sem/")
    if not state.present or not parts:
        return []
    severity: Severity | None = None
    why = ""
    if state.instances and rule.severity.rank < Severity.MODERATE.rank:
        severity = Severity.MODERATE
        why = "; moderate because instance directories may hold the build's user-data"
    return [
        CheckResult(
            Status.FAIL,
            f"cloud-init state is left in {code('/var/lib/cloud')}: {'; '.join(parts)}{why}",
            resource="/var/lib/cloud",
            evidence=Evidence(
                path="/var/lib/cloud",
                observed=f"{state.entries} entries",
                expected="no state from a previous boot",
            ),
            severity=severity,
        )
    ]


class IdentityParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    paths: list[str] = Field(
        min_length=1,
        description="identity files that must be absent, empty or `uninitialized` "
        "(`/etc/machine-id`, `/var/lib/systemd/random-seed`...)",
    )


@check_type(
    "identity_files_reset",
    params_model=IdentityParams,
    missing=MissingPolicy.ERROR,
    needs=("credentials",),
)
def identity_files_reset(facts: Any, params: IdentityParams, rule: Rule) -> list[CheckResult]:
    """Fails once per listed identity file (machine-id, random seed) that holds a value.

    Every instance would share the machine id (journald, DHCP client ids, dbus) or start
    from the same random seed. ``absent``, ``empty`` and ``uninitialized`` (systemd's
    first-boot marker) pass. A symlink to another listed file (``/var/lib/dbus/machine-id``
    -> ``/etc/machine-id``) is left to that file's finding. Only paths the collector reads
    can be judged (``imageaudit.facts.hygiene.IDENTITY_FILES``).

    Missing fact: the ``credentials`` facts could not be collected (ERROR by default).
    """
    wanted = set(params.paths)
    results = []
    for ident in credentials_facts(facts).identity:
        if ident.path not in wanted or ident.state != "set":
            continue
        if ident.link_target is not None:
            target = normalize(posixpath.join(posixpath.dirname(ident.path), ident.link_target))
            if target in wanted and target != ident.path:
                continue
        results.append(
            CheckResult(
                Status.FAIL,
                f"File {code(ident.path)} holds a value ({ident.size} bytes): every instance "
                "of the image would share it",
                resource=ident.path,
                evidence=Evidence(
                    path=ident.path,
                    observed=f"{ident.size} bytes",
                    expected="absent, empty or uninitialized",
                ),
            )
        )
    return results


class LogsParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    exclude: list[str] = Field(
        default_factory=list, description="path globs (fnmatch) of log files that may stay"
    )


@check_type(
    "logs_empty", params_model=LogsParams, missing=MissingPolicy.ERROR, needs=("credentials",)
)
def logs_empty(facts: Any, params: LogsParams, rule: Rule) -> list[CheckResult]:
    """Fails once (resource ``/var/log``) when non-empty log files are left under /var/log.

    Logs of the build name hosts, users and sometimes secrets, and make every instance start
    with someone else's history. The message gives the totals and the largest files.
    Truncated (empty) files pass. When the collector's list was cut the totals still count
    every file, but ``exclude`` can only remove listed ones.

    Missing fact: the ``credentials`` facts could not be collected (ERROR by default).
    """
    logs = credentials_facts(facts).logs
    kept = [
        f for f in logs.files if not any(fnmatch.fnmatchcase(f.path, g) for g in params.exclude)
    ]
    count = logs.count - (len(logs.files) - len(kept))
    if count <= 0:
        return []
    total = logs.total_bytes - sum(f.size for f in logs.files if f not in kept)
    largest = sorted(kept, key=lambda f: (-f.size, f.path))
    plural, verb = ("file", "is") if count == 1 else ("files", "are")
    return [
        CheckResult(
            Status.FAIL,
            f"{count} non-empty log {plural} ({total} bytes) {verb} left under "
            f"{code('/var/log')}: "
            f"{_names([f.path for f in largest], count)}",
            resource="/var/log",
            evidence=Evidence(
                path="/var/log",
                observed=f"{count} {plural}, {total} bytes",
                expected="logs truncated",
            ),
        )
    ]


@check_type(
    "temp_empty", params_model=NoParams, missing=MissingPolicy.ERROR, needs=("credentials",)
)
def temp_empty(facts: Any, params: NoParams, rule: Rule) -> list[CheckResult]:
    """Fails once per temp directory (``/tmp``, ``/var/tmp``) that is not empty.

    Leftovers of the build (downloads, scripts, keys) ship with every instance, and
    ``/var/tmp`` survives reboots. The message counts direct and total entries and names
    the first ones.

    Missing fact: the ``credentials`` facts could not be collected (ERROR by default).
    """
    results = []
    for temp in credentials_facts(facts).temp:
        if not temp.present or temp.entries == 0:
            continue
        plural = "entry" if temp.entries == 1 else "entries"
        results.append(
            CheckResult(
                Status.FAIL,
                f"Temp directory {code(temp.path)} is not empty ({temp.entries} {plural}, "
                f"{temp.total} in total): {_names(list(temp.names), temp.entries)}",
                resource=temp.path,
                evidence=Evidence(
                    path=temp.path, observed=f"{temp.total} entries", expected="empty"
                ),
            )
        )
    return results


class CloudInitParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    packages: list[str] = Field(
        default_factory=lambda: ["cloud-init", "one-context"],
        description="installed packages that also count as a contextualisation agent "
        "(read from the `packages` facts when present)",
    )


@check_type(
    "cloud_init_present",
    params_model=CloudInitParams,
    missing=MissingPolicy.ERROR,
    needs=("credentials",),
)
def cloud_init_present(facts: Any, params: CloudInitParams, rule: Rule) -> list[CheckResult]:
    """Fails when no contextualisation agent is installed: no cloud-init program, unit or
    ``/etc/cloud/cloud.cfg``, and none of ``packages`` installed.

    Without it a cloud cannot inject the user's ssh key, hostname or network set-up at boot,
    which is how images on EGI/HEPiX clouds are meant to be used. Meant for VM images
    (``applies_to.image_kinds: [vm]``).

    Missing fact: the ``credentials`` facts could not be collected (ERROR by default);
    absent ``packages`` facts only leave the package alternative unchecked.
    """
    ci = credentials_facts(facts).cloud_init
    if ci.config or ci.binaries or ci.units:
        return []
    packages = facts.packages
    if packages is not None:
        for name in params.packages:
            if any(p.present for p in packages.named(name)):
                return []
    return [
        CheckResult(
            Status.FAIL,
            "No contextualisation agent is installed: no cloud-init program, unit or "
            f"{code('/etc/cloud/cloud.cfg')}, and no package "
            + ", ".join(code(p) for p in params.packages),
            resource="cloud-init",
            evidence=Evidence(
                path="/etc/cloud/cloud.cfg", observed="absent", expected="cloud-init installed"
            ),
        )
    ]
