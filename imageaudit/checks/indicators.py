"""Check types over what the user brought to the scan: indicators of compromise (``--ioc``) and
YARA rules (``--yara``), matched against the image's files by :mod:`imageaudit.malware`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from imageaudit.checks import NotApplicable, check_type
from imageaudit.findings import CheckResult, MissingPolicy, Rule, code
from imageaudit.malware.iocscan import IocMatch, IocResults
from imageaudit.malware.yarascan import YaraResults
from imageaudit.model import Evidence, Status


class IocParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_shown: int = Field(default=3, ge=1, description="indicators named in one message")


class YaraParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _short(value: str, kind: str) -> str:
    """A hash shortened for a message (the evidence keeps it whole); names as they are."""
    return value[:16] + "…" if kind in ("sha256", "sha1", "md5") else value


def _origin(match: IocMatch) -> str:
    shown = "; ".join(match.provenance[:2]) or match.source
    more = f" and {len(match.provenance) - 2} more" if len(match.provenance) > 2 else ""
    return f"{shown}{more}"


@check_type("ioc_match", params_model=IocParams, missing=MissingPolicy.ERROR)
def ioc_match(facts: Any, params: IocParams, rule: Rule) -> list[CheckResult]:
    """Fails once per file of the image matching an indicator of compromise given with
    ``scan --ioc``: its SHA-256, SHA-1 or MD5 (the files the ``filehashes`` collector hashed),
    its path or its name (every file of the walk). A name or path the indicators give only
    with hashes (MISP ``filename|sha256``) counts only beside one of those hashes. The message
    names the indicator and where it came from (the MISP event, the CSV line).

    Missing fact: without ``--ioc`` the rule is NOT_APPLICABLE. Files that were not hashed
    (over the collector's size caps, unreadable, after a cut walk) give an ERROR naming them:
    what was not read never passes.
    """
    results: IocResults | None = facts.ioc
    if results is None:
        raise NotApplicable("Not applicable: no indicators of compromise given (scan --ioc FILE)")
    out: list[CheckResult] = []
    for hit in results.hits:
        shown = ", ".join(f"{m.kind} {code(_short(m.value, m.kind))} ({_origin(m)})"
                          for m in hit.matches[:params.max_shown])
        more = len(hit.matches) - params.max_shown
        if more > 0:
            shown += f" and {more} more"
        out.append(CheckResult(
            Status.FAIL,
            f"File {code(hit.path)} matches an indicator of compromise: {shown}",
            resource=hit.path,
            evidence=Evidence(path=hit.path,
                              observed="; ".join(f"{m.kind} {m.value}" for m in hit.matches),
                              expected="no file matching the indicators"),
        ))
    if results.hits_total > len(results.hits):
        out.append(CheckResult(
            Status.FAIL,
            f"{results.hits_total - len(results.hits)} more files match indicators of "
            "compromise (not listed one by one)",
            evidence=Evidence(observed=f"{results.hits_total} matching files")))
    if results.hashes_missing:
        out.append(CheckResult(
            Status.ERROR,
            "Could not evaluate the files by hash: the `filehashes` facts are missing",
            evidence=Evidence(observed="no file hashes", expected="every file hashed")))
    elif results.not_hashed_count:
        examples = "; ".join(f"{code(n.path)}: {n.reason}" for n in results.not_hashed[:3])
        out.append(CheckResult(
            Status.ERROR,
            f"Could not evaluate {results.not_hashed_count} files by hash: they were not "
            f"hashed ({examples})",
            resource="files not hashed",
            evidence=Evidence(path=results.not_hashed[0].path if results.not_hashed else None,
                              observed=f"{results.not_hashed_count} files not hashed",
                              expected="every file hashed"),
        ))
    return out


@check_type("yara_match", params_model=YaraParams, missing=MissingPolicy.ERROR)
def yara_match(facts: Any, params: YaraParams, rule: Rule) -> list[CheckResult]:
    """Fails once per file and YARA rule given with ``scan --yara`` that matched it, naming the
    rule, its file and its ``description`` meta. The files are those the ``filehashes``
    collector selected (executables, libraries, scripts, persistence files), matched in a
    resource-limited child process under size and time caps.

    Missing fact: without ``--yara`` the rule is NOT_APPLICABLE. A file that was not matched
    (over a size cap, unreadable, timed out, the child killed at its CPU or memory limit, not
    selected because the walk was cut) gives an ERROR naming it and why: never a PASS.
    """
    results: YaraResults | None = facts.yara
    if results is None:
        raise NotApplicable("Not applicable: no YARA rules given (scan --yara DIR)")
    out: list[CheckResult] = []
    for hit in results.hits:
        about = f": {hit.description}" if hit.description else ""
        out.append(CheckResult(
            Status.FAIL,
            f"File {code(hit.path)} matches YARA rule {code(hit.rule)} "
            f"({hit.namespace}{about})",
            resource=f"{hit.path} {hit.rule}",
            evidence=Evidence(path=hit.path, observed=f"{hit.namespace}:{hit.rule}",
                              expected="no YARA rule matching"),
        ))
    if results.hits_total > len(results.hits):
        out.append(CheckResult(
            Status.FAIL,
            f"{results.hits_total - len(results.hits)} more YARA matches (not listed one by one)",
            evidence=Evidence(observed=f"{results.hits_total} matches")))
    for problem in results.problems:
        out.append(CheckResult(
            Status.ERROR,
            f"Could not match {code(problem.path)} against the YARA rules: {problem.reason}",
            resource=problem.path,
            evidence=Evidence(path=problem.path, observed=problem.reason,
                              expected="every file matched"),
        ))
    left = results.problems_total - sum(p.files for p in results.problems)
    if left > 0:
        out.append(CheckResult(
            Status.ERROR,
            f"Could not match {left} more files against the YARA rules (not listed one by one)",
            evidence=Evidence(observed=f"{left} more files not matched")))
    return out
