"""Check types over the package inventory and the update feeds matched to it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from imageaudit.checks import MissingFact, MissingPolicy, check_type
from imageaudit.facts.packages.model import InstalledPackage
from imageaudit.findings import CheckResult, Rule, code
from imageaudit.model import Evidence, Status
from imageaudit.vulns.model import PendingUpdate, VulnerabilityFacts

NO_FEED = "no update feed given; run imageaudit feeds sync, then scan --feeds DIR"


class UpdatesPendingParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: Literal["security", "other", "all"] = Field(
        default="security",
        description="which update channels count: `security` (`<suite>-security`, "
        "`--rpm-security` repositories), `other` (every other update feed: `<suite>-updates`, "
        "rpm and Alpine repositories) or `all`",
    )
    max_snapshot_age_days: float = Field(
        default=30, gt=0, description="an older feed snapshot makes the rule an ERROR"
    )


def _feeds_for_image(facts: Any) -> VulnerabilityFacts:
    vulns = facts.vulnerabilities
    if vulns is None:
        raise MissingFact("vulnerabilities", NO_FEED)
    if not isinstance(vulns, VulnerabilityFacts):
        raise MissingFact("vulnerabilities", f"unexpected record {type(vulns).__name__}")
    if vulns.release is None:
        reasons = "; ".join(p.message for p in vulns.problems) or "no update feed applies"
        raise MissingFact("vulnerabilities", reasons)
    return vulns


def _installed(facts: Any, update: PendingUpdate) -> InstalledPackage | None:
    found: tuple[InstalledPackage, ...] = facts.packages.named(update.package, update.manager)
    return next((p for p in found if p.arch == update.arch), None)


def _age(vulns: VulnerabilityFacts) -> str:
    date = (vulns.snapshot_date or "?")[:10]
    days = vulns.snapshot_age_days
    return f"feed snapshot of {date}, {days:.0f} days old" if days is not None else date


def _update_result(
    facts: Any, update: PendingUpdate, resource: str, vulns: VulnerabilityFacts, rule: Rule
) -> CheckResult:
    pkg = _installed(facts, update)
    kind = "security update" if update.security else "update"
    if update.matched_by == "source":
        what = (
            f"Package {code(resource)} (source {code(update.source_name)} "
            f"{code(update.installed_version)}) has a pending {kind}: source "
            f"{code(update.source_name)} {code(update.available_version)} in {update.suite}"
        )
    else:
        what = (
            f"Package {code(resource)} {code(update.installed_version)} has a pending {kind} "
            f"to {code(update.available_version)} in {update.suite}"
        )
    why = ""
    if update.severity is not None and update.severity is not rule.severity:
        named = ", ".join(update.advisories[:3]) or "an advisory"
        why = f"; severity {update.severity.value} from {named}"
    elif update.advisories:
        why = f"; fixes {', '.join(update.advisories[:3])}"
    where = f", {pkg.source}" if pkg is not None else ""
    return CheckResult(
        Status.FAIL,
        f"{what} ({_age(vulns)}{where}{why})",
        resource=resource,
        evidence=Evidence(
            path=pkg.source.path if pkg is not None else None,
            line=pkg.source.line if pkg is not None else None,
            observed=update.installed_version,
            expected=f">= {update.available_version}",
        ),
        severity=update.severity,
    )


def _best(manager: str, updates: list[PendingUpdate]) -> PendingUpdate:
    from imageaudit.vulns.versions import compare

    best = updates[0]
    for update in updates[1:]:
        try:
            newer = compare(manager, update.available_version, best.available_version) > 0
        except ValueError:
            newer = False
        rank = update.severity.rank if update.severity else -1
        best_rank = best.severity.rank if best.severity else -1
        if rank > best_rank or (rank == best_rank and newer):
            best = update
    return best


@check_type(
    "package_updates_pending",
    params_model=UpdatesPendingParams,
    missing=MissingPolicy.ERROR,
    needs=("packages",),
)
def package_updates_pending(
    facts: Any, params: UpdatesPendingParams, rule: Rule
) -> list[CheckResult]:
    """Fails once per installed package with a newer build in an update feed of its release.

    The feeds are the user's snapshot (``scan --feeds``): Debian/Ubuntu ``-security`` and
    ``-updates`` suites, rpm repositories, Alpine indexes. A package is matched by binary
    name and architecture, or by source package when the feed has no build of the binary.
    ``channels`` selects security channels, the other update feeds, or both, so that two
    rules do not report the same update twice. The finding's severity is the
    advisory's when an advisory names the fixed version (OSV matching), else the rule's; the
    message names the suite, the snapshot date and age. A passing result says the same.
    A snapshot older than ``max_snapshot_age_days`` gives ERROR.

    Missing fact: no ``--feeds`` or no feed for the image's release gives the rule's
    ``missing`` (ERROR, "no update feed given; run imageaudit feeds sync") -- never a PASS.
    An image without any package database is not applicable.
    """
    vulns = _feeds_for_image(facts)
    if not facts.packages.databases:
        return [CheckResult(Status.NOT_APPLICABLE, "Not applicable: no package database found")]
    age = vulns.snapshot_age_days
    if age is not None and age > params.max_snapshot_age_days:
        return [CheckResult(
            Status.ERROR,
            f"Could not evaluate: the {_age(vulns)} is older than "
            f"{params.max_snapshot_age_days:g} days; run imageaudit feeds sync",
            evidence=Evidence(observed=vulns.snapshot_date,
                              expected=f"<= {params.max_snapshot_age_days:g} days old"),
        )]
    chosen = [u for u in vulns.pending if params.channels == "all"
              or u.security == (params.channels == "security")]
    groups: dict[tuple[str, str | None, str], list[PendingUpdate]] = {}
    for update in chosen:
        groups.setdefault((update.package, update.arch, update.manager), []).append(update)
    arches: dict[str, set[str | None]] = {}
    for name, arch, _manager in groups:
        arches.setdefault(name, set()).add(arch)
    results = []
    for (name, arch, manager), updates in sorted(groups.items(), key=lambda g: str(g[0])):
        resource = f"{name}:{arch}" if len(arches[name]) > 1 else name
        results.append(_update_result(facts, _best(manager, updates), resource, vulns, rule))
    if not results:
        kind = {"security": "security updates", "other": "non-security updates",
                "all": "updates"}[params.channels]
        channels = ", ".join(f.suite for f in vulns.feeds)
        results.append(CheckResult(
            Status.PASS,
            f"No pending {kind} for the {len(facts.packages.packages)} installed packages in "
            f"{channels} ({_age(vulns)})",
        ))
    return results


class PackageAbsentParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    packages: dict[str, str] = Field(
        min_length=1,
        description="package name -> why it must not be installed (said in the message)",
    )


@check_type(
    "package_absent",
    params_model=PackageAbsentParams,
    missing=MissingPolicy.ERROR,
    needs=("packages",),
)
def package_absent(facts: Any, params: PackageAbsentParams, rule: Rule) -> list[CheckResult]:
    """Fails once per installed package whose name is listed (any manager, any architecture).

    Packages dpkg records as removed (``config-files``) do not count. The message quotes the
    reason given in the rule and where the package database lists the package.

    Missing fact: without the ``packages`` facts (or without any package database in the
    image) nothing can be said; the rule's ``missing`` applies.
    """
    if not facts.packages.databases:
        raise MissingFact("packages", "no package database found in the image")
    results = []
    seen: set[str] = set()
    for pkg in facts.packages.packages:
        why = params.packages.get(pkg.name)
        if why is None or not pkg.present or pkg.name in seen:
            continue
        seen.add(pkg.name)
        results.append(CheckResult(
            Status.FAIL,
            f"Package {code(pkg.name)} {code(pkg.full_version)} is installed: {why} "
            f"({pkg.source})",
            resource=pkg.name,
            evidence=Evidence(path=pkg.source.path, line=pkg.source.line,
                              observed=pkg.full_version, expected="not installed"),
        ))
    return results

