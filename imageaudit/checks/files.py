"""Check types over world-writable files and directories, and what root runs without asking.

They read :class:`imageaudit.facts.files.FilesFacts`: the world-writable entries of the walk,
the PATH directories and the executables named by cron tables and systemd units.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from imageaudit.checks import MissingPolicy, check_type
from imageaudit.facts.executables import ExecRef, PathDir
from imageaudit.facts.files import FilesFacts
from imageaudit.findings import CheckResult, Rule, code
from imageaudit.model import Evidence, Severity, Status

DEFAULT_TEMP_DIRS = ["/tmp", "/var/tmp", "/dev/shm", "/run/lock"]
DEFAULT_SYSTEM_DIRS = ["/etc", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/boot", "/root"]


def mode_text(mode: int) -> str:
    """Permission bits as ``chmod`` writes them (``0777``, ``1777``)."""
    return f"{mode & 0o7777:04o}"


def under(path: str, tops: Iterable[str]) -> str | None:
    """The first of ``tops`` that is ``path`` or one of its ancestors, else None."""
    for top in tops:
        top = top.rstrip("/") or "/"
        if top == "/" or path == top or path.startswith(top + "/"):
            return top
    return None


def files_facts(facts: Any) -> FilesFacts:
    """``facts.files``, typed (the engine has already checked it is present)."""
    result: FilesFacts = facts.files
    return result


class WorldWritableParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    exclude: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TEMP_DIRS),
        description="directories whose contents (and themselves) are not judged: temp dirs",
    )
    high_under: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SYSTEM_DIRS),
        description="system trees where a finding is escalated to `high`",
    )


def _escalate(path: str, params: WorldWritableParams, rule: Rule) -> tuple[Severity | None, str]:
    top = under(path, params.high_under)
    if top is None or rule.severity.rank >= Severity.HIGH.rank:
        return None, ""
    return Severity.HIGH, f"; high because it is under {top}"


@check_type(
    "world_writable_files",
    params_model=WorldWritableParams,
    missing=MissingPolicy.ERROR,
    needs=("files",),
)
def world_writable_files(facts: Any, params: WorldWritableParams, rule: Rule) -> list[CheckResult]:
    """Fails once per regular file writable by every user, outside the ``exclude`` dirs.

    Any local user (or a compromised service account) can change such a file. A file under
    one of ``high_under`` is escalated to ``high``: there it is configuration or code that
    root reads or runs. Symlinks are never judged (they always show 0777).

    Missing fact: the ``files`` facts (the walk) could not be collected; the rule cannot
    say anything and gives its ``missing`` result (ERROR by default).
    """
    results = []
    for wf in files_facts(facts).world_writable_files:
        if under(wf.path, params.exclude):
            continue
        severity, why = _escalate(wf.path, params, rule)
        results.append(
            CheckResult(
                Status.FAIL,
                f"File {code(wf.path)} is writable by every user (mode {mode_text(wf.mode)}){why}",
                resource=wf.path,
                evidence=Evidence(
                    path=wf.path, observed=mode_text(wf.mode), expected="not writable by others"
                ),
                severity=severity,
            )
        )
    return results


@check_type(
    "world_writable_dirs_without_sticky",
    params_model=WorldWritableParams,
    missing=MissingPolicy.ERROR,
    needs=("files",),
)
def world_writable_dirs_without_sticky(
    facts: Any, params: WorldWritableParams, rule: Rule
) -> list[CheckResult]:
    """Fails once per world-writable directory that lacks the sticky bit.

    Without the sticky bit any user may delete or rename any other user's files in it.
    Temp directories are judged too (``exclude`` only skips directories *below* them): a
    ``/tmp`` without the sticky bit is the classic case. A directory under one of
    ``high_under``, or one of the ``exclude`` temp directories themselves, is escalated to
    ``high``.

    Missing fact: the ``files`` facts could not be collected (ERROR by default).
    """
    results = []
    for wd in files_facts(facts).world_writable_dirs:
        if wd.sticky:
            continue
        top = under(wd.path, params.exclude)
        if top is not None and top != wd.path:
            continue
        severity, why = _escalate(wd.path, params, rule)
        if top == wd.path and rule.severity.rank < Severity.HIGH.rank:
            severity, why = Severity.HIGH, "; high because it is a shared temp directory"
        results.append(
            CheckResult(
                Status.FAIL,
                f"Directory {code(wd.path)} is writable by every user without the sticky bit "
                f"(mode {mode_text(wd.mode)}): anyone can delete or replace its files{why}",
                resource=wd.path,
                evidence=Evidence(
                    path=wd.path,
                    observed=mode_text(wd.mode),
                    expected="sticky bit (1777) or not writable by others",
                ),
                severity=severity,
            )
        )
    return results


class ExecutedParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kinds: list[str] = Field(
        default_factory=lambda: ["cron", "systemd"],
        description="which runners to look at: `cron`, `systemd`",
    )


def _sticky_dirs(files: FilesFacts) -> set[str]:
    return {d.path for d in files.world_writable_dirs if d.sticky}


def _where(ref: ExecRef) -> str:
    line = f" line {ref.source.line}" if ref.source.line else ""
    if ref.kind == "cron":
        user = f" as {code(ref.user)}" if ref.user else ""
        return f"{ref.source.path}{line}, {ref.directive}{user}"
    return f"{ref.source.path}{line}, {ref.directive}"


def _exec_problem(ref: ExecRef, sticky: set[str]) -> tuple[str, str] | None:
    """(what is wrong, observed) for one executable, or None when it is safe."""
    if ref.world_writable and ref.stat is not None:
        return (
            f"is writable by every user (mode {mode_text(ref.stat.mode)})",
            mode_text(ref.stat.mode),
        )
    exists = ref.stat is not None
    # A sticky directory protects entries that exist (owned by someone else); a missing
    # program below it can still be created by anyone.
    open_dirs = [d for d in ref.writable_dirs if not (exists and d in sticky)]
    if open_dirs:
        state = "sits" if exists else "does not exist and sits"
        verb = "replace" if exists else "create"
        return (
            f"{state} below the world-writable directory {code(open_dirs[0])}: "
            f"anyone can {verb} it",
            f"{open_dirs[0]} world-writable",
        )
    return None


@check_type(
    "world_writable_executed",
    params_model=ExecutedParams,
    missing=MissingPolicy.ERROR,
    needs=("files",),
)
def world_writable_executed(facts: Any, params: ExecutedParams, rule: Rule) -> list[CheckResult]:
    """Fails once per program run by cron or systemd that any user can change or plant.

    That is: the program (after symlinks) is a world-writable file, or a directory above it
    is world-writable — unless that directory is sticky and the program exists, since the
    sticky bit stops others replacing an existing entry they do not own. A missing program
    below a world-writable directory fails: anyone can create it. Each distinct program is
    reported once (resource = its path), naming the first cron line or unit that runs it.
    Absolute paths elsewhere on a cron line (a script given to ``sh``, a redirect target)
    are judged the same way: root reads or writes them.

    Missing fact: the ``files`` facts could not be collected (ERROR by default).
    """
    files = files_facts(facts)
    sticky = _sticky_dirs(files)
    results: list[CheckResult] = []
    seen: set[str] = set()
    for ref in files.exec_refs:
        if ref.kind not in params.kinds:
            continue
        target = ref.resolved or ref.path
        if target is None or target in seen:
            continue
        problem = _exec_problem(ref, sticky)
        if problem is None:
            continue
        seen.add(target)
        what, observed = problem
        shown = code(ref.path or ref.command)
        # An absolute path elsewhere on a cron line may be a script argument or a redirect.
        noun, verb = ("Program", "run") if ref.position == "command" else ("File", "named")
        via = f" (resolves to {code(target)})" if ref.path and target != ref.path else ""
        results.append(
            CheckResult(
                Status.FAIL,
                f"{noun} {shown}{via} {verb} by {ref.kind} ({_where(ref)}) {what}",
                resource=target,
                evidence=Evidence(
                    path=ref.source.path,
                    line=ref.source.line,
                    observed=observed,
                    expected="writable by root only",
                ),
            )
        )
    return results


class PathParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    relative: bool = Field(
        default=True, description="also fail a relative PATH entry (empty, `.`, `bin`)"
    )


def _path_dir_result(pdir: PathDir, origins: list[str]) -> list[CheckResult]:
    where = "; ".join(origins)
    results = []
    path = pdir.resolved or pdir.path
    if pdir.world_writable and pdir.stat is not None:
        results.append(
            CheckResult(
                Status.FAIL,
                f"PATH directory {code(path)} ({where}) is writable by every user "
                f"(mode {mode_text(pdir.stat.mode)}): anyone can plant a program there",
                resource=path,
                evidence=Evidence(
                    path=pdir.source.path,
                    line=pdir.source.line,
                    observed=mode_text(pdir.stat.mode),
                    expected="not writable by others",
                ),
            )
        )
    for name in pdir.writable_entries:
        program = posixpath.join(path, name)
        results.append(
            CheckResult(
                Status.FAIL,
                f"Program {code(program)} on the PATH ({where}) is writable by every user",
                resource=program,
                evidence=Evidence(
                    path=program, observed="world-writable", expected="writable by root only"
                ),
            )
        )
    return results


@check_type(
    "path_world_writable", params_model=PathParams, missing=MissingPolicy.ERROR, needs=("files",)
)
def path_world_writable(facts: Any, params: PathParams, rule: Rule) -> list[CheckResult]:
    """Fails for each world-writable PATH directory and each world-writable program in one.

    PATH is the default one plus those set in ``/etc/environment`` and ``login.defs``
    (``ENV_PATH``/``ENV_SUPATH``). A world-writable PATH directory fails even when sticky:
    the sticky bit does not stop anyone adding a new name that shadows a later directory.
    With ``relative`` (default) a relative PATH entry fails too: root would run programs
    from whatever the current directory is. Each directory is reported once, naming every
    place that puts it on the PATH.

    Missing fact: the ``files`` facts could not be collected (ERROR by default).
    """
    files = files_facts(facts)
    origins: dict[str, list[str]] = {}
    first: dict[str, PathDir] = {}
    results: list[CheckResult] = []
    for pdir in files.path_dirs:
        if pdir.relative:
            if params.relative:
                shown = pdir.path or "(empty)"
                line = f" line {pdir.source.line}" if pdir.source.line else ""
                results.append(
                    CheckResult(
                        Status.FAIL,
                        f"PATH entry {code(shown)} ({pdir.origin}, {pdir.source.path}{line}) "
                        "is relative: programs are looked up in the current directory",
                        resource=f"{pdir.source.path}:{shown}",
                        evidence=Evidence(
                            path=pdir.source.path,
                            line=pdir.source.line,
                            observed=shown,
                            expected="absolute directories only",
                        ),
                    )
                )
            continue
        if pdir.resolved is None:
            continue
        origins.setdefault(pdir.resolved, []).append(pdir.origin)
        first.setdefault(pdir.resolved, pdir)
    for path, pdir in first.items():
        results.extend(_path_dir_result(pdir, list(dict.fromkeys(origins[path]))))
    return results
