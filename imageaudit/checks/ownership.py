"""Check types over who owns what: setuid files no package owns, the shadow files' readers,
entries owned by ids the image does not know.
"""

from __future__ import annotations

import posixpath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from imageaudit.checks import MissingFact, MissingPolicy, check_type
from imageaudit.checks.files import files_facts, mode_text
from imageaudit.facts.files import UnownedEntry
from imageaudit.facts.packages import PackagesFacts
from imageaudit.findings import CheckResult, Rule, code
from imageaudit.imagefs import FileType
from imageaudit.model import Evidence, Severity, Status


class SpecialUnownedParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    allow: list[str] = Field(
        default_factory=list, description="paths accepted even though no package owns them"
    )


def _aliases(path: str) -> tuple[str, ...]:
    """``path`` and its spelling on the other side of the /usr merge (/bin/su, /usr/bin/su)."""
    if path.startswith("/usr/"):
        return path, path[4:]
    return path, "/usr" + path


def _files(count: int) -> str:
    return "file is" if count == 1 else f"files ({count}) are"


def owned_index(packages: PackagesFacts) -> tuple[set[str], list[str]]:
    """Every path some present package owns, and why the index may be incomplete."""
    index: set[str] = set()
    gaps: list[str] = []
    for pkg in packages.packages:
        if not pkg.present:
            continue
        index.update(pkg.owned_paths)
        if pkg.owned_count > len(pkg.owned_paths):
            gaps.append(f"the file list of {pkg.name} was not kept")
    gaps.extend(e.message for e in packages.errors if "file list" in e.message)
    return index, gaps


@check_type(
    "special_files_unowned",
    params_model=SpecialUnownedParams,
    missing=MissingPolicy.ERROR,
    needs=("files", "packages"),
)
def special_files_unowned(
    facts: Any, params: SpecialUnownedParams, rule: Rule
) -> list[CheckResult]:
    """Fails once per setuid or setgid file that no installed package's file list names.

    A privileged program no package manager tracks was added by hand (or by an attacker)
    and gets no security updates. Paths are matched on both sides of the /usr merge.

    Without any package database in the image (distroless, scratch) the rule is
    NOT_APPLICABLE: nothing says which programs are legitimate. With no setuid/setgid file
    at all it passes whatever the database. Missing fact: the ``files`` or ``packages``
    collector failed, or a package's file list was cut (so a missing owner may just be a
    missing index entry) — the rule's ``missing`` result (ERROR by default).
    """
    special = [f for f in files_facts(facts).special_files if f.path not in params.allow]
    if not special:
        return []
    packages: PackagesFacts = facts.packages
    if not any(db.used for db in packages.databases):
        return [
            CheckResult(
                Status.NOT_APPLICABLE,
                "Not applicable: the image has no package database, so whether its "
                f"setuid/setgid {_files(len(special))} legitimate cannot be told",
                evidence=Evidence(observed="no package database", expected="dpkg, rpm or apk"),
            )
        ]
    index, gaps = owned_index(packages)
    results = []
    for sf in special:
        if any(alias in index for alias in _aliases(sf.path)):
            continue
        if gaps:
            raise MissingFact("packages", f"{gaps[0]}; cannot tell who owns {sf.path}")
        bits = " and ".join(b for b, on in (("setuid", sf.setuid), ("setgid", sf.setgid)) if on)
        owner = sf.user if sf.user is not None else str(sf.uid)
        group = sf.group if sf.group is not None else str(sf.gid)
        results.append(
            CheckResult(
                Status.FAIL,
                f"File {code(sf.path)} is {bits} (mode {mode_text(sf.mode)}, "
                f"owner {code(owner)}, group {code(group)}) and no installed package owns it",
                resource=sf.path,
                evidence=Evidence(
                    path=sf.path,
                    observed=f"{mode_text(sf.mode)} {owner}:{group}, no owning package",
                    expected="owned by a package, or no setuid/setgid bit",
                ),
            )
        )
    return results


class ShadowParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    paths: list[str] = Field(
        default_factory=lambda: ["/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-"],
        description="password hash files to look at (absent ones are skipped)",
    )
    allowed_groups: list[str] = Field(
        default_factory=lambda: ["root", "shadow", "auth"],
        description="groups that may read them (`shadow` on Debian/SUSE/Alpine, `auth` on BSD "
        "ports); gid 0 always may",
    )


def _group_names(facts: Any) -> dict[int, str]:
    accounts = facts.accounts
    if accounts is None:
        return {}
    names: dict[int, str] = {}
    for group in accounts.groups:
        names.setdefault(group.gid, group.name)
    return names


@check_type(
    "shadow_readable", params_model=ShadowParams, missing=MissingPolicy.ERROR, needs=("files",)
)
def shadow_readable(facts: Any, params: ShadowParams, rule: Rule) -> list[CheckResult]:
    """Fails for each password hash file readable or writable by others, or by a wider group.

    Read or write for *others* keeps the rule's severity (every local user can take the
    hashes offline and crack them, or replace them). Read for a group other than root and
    ``allowed_groups`` is lowered to ``high`` and the message names the group. A symlink is
    judged by its target. Group names come from the ``accounts`` facts; without them only
    gid 0 counts as allowed.

    Missing fact: the ``files`` facts could not be collected (ERROR by default).
    """
    groups = _group_names(facts)
    results = []
    wanted = set(params.paths)
    for state in files_facts(facts).sensitive:
        if state.path not in wanted or state.target is None or not state.target.is_file:
            continue
        st = state.target
        mode = mode_text(st.mode)
        group = groups.get(st.gid, str(st.gid))
        evidence = Evidence(path=state.path, observed=f"{mode} group {group}", expected="0640")
        if st.mode & 0o006:
            rights = (("read", 0o004), ("written", 0o002))
            what = " and ".join(w for w, bit in rights if st.mode & bit)
            results.append(
                CheckResult(
                    Status.FAIL,
                    f"Password hash file {code(state.path)} can be {what} by every user "
                    f"(mode {mode})",
                    resource=state.path,
                    evidence=evidence,
                )
            )
        elif st.mode & 0o040 and st.gid != 0 and group not in params.allowed_groups:
            lower = Severity.HIGH if rule.severity.rank > Severity.HIGH.rank else None
            results.append(
                CheckResult(
                    Status.FAIL,
                    f"Password hash file {code(state.path)} can be read by group {code(group)} "
                    f"(mode {mode}); high rather than critical because only that group's "
                    "members can read it",
                    resource=state.path,
                    evidence=evidence,
                    severity=lower,
                )
            )
    return results


class UnknownOwnerParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    groups: bool = Field(default=True, description="also fail entries whose gid is unknown")
    max_findings: int = Field(
        default=200, ge=1, description="findings kept; the last one counts the rest"
    )


_KIND_NAMES = {
    FileType.REGULAR: "File",
    FileType.DIRECTORY: "Directory",
    FileType.SYMLINK: "Symlink",
    FileType.CHAR_DEVICE: "Device",
    FileType.BLOCK_DEVICE: "Device",
}


def _owner_text(entry: UnownedEntry, groups: bool) -> str:
    parts = []
    if entry.unknown_uid:
        parts.append(f"uid {entry.uid}")
    if groups and entry.unknown_gid:
        parts.append(f"gid {entry.gid}")
    return " and ".join(parts)


@check_type(
    "unknown_owner",
    params_model=UnknownOwnerParams,
    missing=MissingPolicy.ERROR,
    needs=("files",),
)
def unknown_owner(facts: Any, params: UnknownOwnerParams, rule: Rule) -> list[CheckResult]:
    """Fails for entries owned by a uid (or gid) that ``/etc/passwd`` (``/etc/group``) lacks.

    Such files usually leak from the build host (a tarball unpacked as uid 1000); the first
    account created with that id will own them. A tree owned by the same unknown ids is
    reported once, at its top, with the number of entries below it. Past ``max_findings``
    one last finding counts the rest.

    Without ``/etc/passwd`` no uid is known and the rule is NOT_APPLICABLE. Missing fact:
    the ``files`` facts could not be collected (ERROR by default).
    """
    files = files_facts(facts)
    if not files.passwd_present:
        return [
            CheckResult(
                Status.NOT_APPLICABLE,
                "Not applicable: the image has no /etc/passwd, so no uid is known",
                evidence=Evidence(path="/etc/passwd", observed="absent"),
            )
        ]
    groups = params.groups and files.group_present
    tops: dict[str, tuple[UnownedEntry, str]] = {}
    top_of: dict[str, str] = {}  # every grouped entry -> the top of its tree
    below: dict[str, int] = {}
    for entry in sorted(files.unowned, key=lambda e: e.path):
        ids = _owner_text(entry, groups)
        if not ids:
            continue
        top = top_of.get(posixpath.dirname(entry.path))
        if top is not None and tops[top][1] == ids:
            below[top] = below.get(top, 0) + 1
        else:
            top = entry.path
            tops[top] = (entry, ids)
        top_of[entry.path] = top
    results = []
    for path, (entry, ids) in tops.items():
        count = below.get(path, 0)
        more = f" and {count} entries below it are" if count else " is"
        results.append(
            CheckResult(
                Status.FAIL,
                f"{_KIND_NAMES.get(entry.type, 'Entry')} {code(path)}{more} owned by {ids}, "
                "which the image does not know",
                resource=path,
                evidence=Evidence(path=path, observed=ids, expected="an id in /etc/passwd"),
            )
        )
    if len(results) > params.max_findings:
        rest = len(results) - params.max_findings + 1
        results = results[: params.max_findings - 1]
        results.append(
            CheckResult(
                Status.FAIL,
                f"{rest} more entries are owned by ids the image does not know",
                resource=f"({rest} more)",
                evidence=Evidence(observed=f"{rest} more"),
            )
        )
    return results
