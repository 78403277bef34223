"""Check type over the package integrity facts: programs, libraries, PAM modules and kernel
modules that are not what their package installed (the offline ``debsums`` / ``rpm -V``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from imageaudit.checks import MissingPolicy, NotApplicable, check_type
from imageaudit.facts.integrity import ChangedFile, IntegrityFacts, MissingFile, Unverified
from imageaudit.findings import CheckResult, Rule, code
from imageaudit.model import Evidence, Status

MAX_NAMED = 3


class PackageFilesParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    report: Literal["changed", "missing"] = Field(
        default="changed",
        description="`changed`: files whose content (or type) differs from the package's "
        "recorded digest; `missing`: files the package lists that are not in the image",
    )


def _title(kind: str) -> str:
    return kind[:1].upper() + kind[1:]


def _changed(item: ChangedFile) -> CheckResult:
    where = code(item.path)
    if item.diverted_to is not None:
        where += f" (diverted to {code(item.diverted_to)})"
    if item.actual is None:
        what = f"is {item.found} instead of a regular file"
    else:
        what = (f"differs from what the package recorded ({item.algorithm} "
                f"{item.actual[:16]}…, recorded {item.expected[:16]}…)")
    return CheckResult(
        Status.FAIL,
        f"{_title(item.kind)} {where} of package {code(item.package)} {what} "
        f"({item.source})",
        resource=item.read_path,
        evidence=Evidence(path=item.source.path, line=item.source.line,
                          observed=item.actual or item.found,
                          expected=f"{item.algorithm} {item.expected}"),
    )


def _missing(item: MissingFile) -> CheckResult:
    return CheckResult(
        Status.FAIL,
        f"{_title(item.kind)} {code(item.path)} of package {code(item.package)} is not in "
        f"the image ({item.source})",
        resource=item.path,
        evidence=Evidence(path=item.source.path, line=item.source.line, observed="missing",
                          expected="the packaged file"),
    )


def _unverified(items: tuple[Unverified, ...], count: int, what: str) -> CheckResult:
    named = "; ".join(f"{code(u.path)}: {u.reason}" for u in items[:MAX_NAMED])
    more = f"; and {count - MAX_NAMED} more" if count > MAX_NAMED else ""
    return CheckResult(
        Status.ERROR,
        f"Could not evaluate: {count} {what} could not be verified ({named}{more})",
        resource=items[0].path if items else None,
        evidence=Evidence(path=items[0].path if items else None, observed=f"{count} not verified",
                          expected="every packaged file compared"),
    )


@check_type(
    "package_files_verify",
    params_model=PackageFilesParams,
    missing=MissingPolicy.ERROR,
    needs=("integrity",),
)
def package_files_verify(facts: Any, params: PackageFilesParams, rule: Rule) -> list[CheckResult]:
    """Fails once per packaged program, library, PAM module or kernel module whose content
    differs from the digest its package manager recorded (``report: changed``: dpkg
    ``md5sums``, rpm file digests, apk ``Z:`` checksums) or that is not there at all
    (``report: missing``), under ``/bin``, ``/sbin``, ``/usr/bin``, ``/usr/sbin``,
    ``/usr/libexec``, ``/lib*`` and ``/usr/lib*``. Configuration files, symlinks, rpm
    ``%ghost`` files, files taken over by another package and dpkg diversions are not
    judged (a diverted file is compared at its diverted name). The message names the file,
    its package and where the recorded digest is.

    Files or digest lists that could not be read whole (over the size caps, unreadable) give
    one ERROR naming them, never a PASS; for ``missing``, only digest lists and paths that
    could not be looked up count. An image without any recorded file digest is not
    applicable. Missing fact: the ``integrity`` facts could not be collected; the rule's
    ``missing`` applies (ERROR by default).
    """
    integrity: IntegrityFacts = facts.integrity
    if not integrity.databases and not integrity.unverified_count:
        raise NotApplicable("Not applicable: no package database records file digests")
    results: list[CheckResult] = []
    if params.report == "changed":
        results.extend(_changed(item) for item in integrity.changed)
        hidden = integrity.changed_count - len(integrity.changed)
        unverified = integrity.unverified
        count = integrity.unverified_count
    else:
        results.extend(_missing(item) for item in integrity.missing)
        hidden = integrity.missing_count - len(integrity.missing)
        unverified = tuple(u for u in integrity.unverified if u.stage != "read")
        count = integrity.presence_unverified_count
    if hidden > 0:
        results.append(CheckResult(
            Status.FAIL, f"{hidden} more package files {params.report} (not listed one by one)",
            evidence=Evidence(observed=f"{hidden} more"),
        ))
    if count:
        results.append(_unverified(unverified, count, "package files or digest lists"))
    if not results:
        results.append(CheckResult(
            Status.PASS,
            f"The {integrity.verified} packaged programs and libraries of "
            f"{integrity.packages} packages match their recorded digests"
            if params.report == "changed" else
            f"No packaged program or library of {integrity.packages} packages is missing",
        ))
    return results
