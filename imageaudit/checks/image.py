"""Check types over what every scan has: the image description and the collectors' errors."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from imageaudit.checks import MissingPolicy, check_type
from imageaudit.findings import CheckResult, Rule, code
from imageaudit.model import Evidence, Status


class CollectorSucceededParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    collectors: list[str] = Field(
        default_factory=list,
        description="collector names (`accounts`, `sshd`, `walk`, ...) to look at; "
        "every collector when empty",
    )


@check_type(
    "collector_succeeded", params_model=CollectorSucceededParams, missing=MissingPolicy.FAIL
)
def collector_succeeded(
    facts: Any, params: CollectorSucceededParams, rule: Rule
) -> list[CheckResult]:
    """Fails once per error a collector recorded (an unreadable file, a truncated walk...).

    Use it for a rule "the image could be read completely": the other rules turn a missing
    fact into their own ``missing`` result, this one names every reason in one place.
    The resource is the collector name, the evidence path the file it could not read.

    Missing fact: none; it only reads ``Facts.errors``.
    """
    wanted = set(params.collectors)
    results = []
    for err in facts.errors:
        if wanted and err.collector not in wanted:
            continue
        where = f" ({err.path})" if err.path else ""
        results.append(
            CheckResult(
                Status.FAIL,
                f"Collector {code(err.collector)} could not read everything{where}: {err.message}",
                resource=err.collector,
                evidence=Evidence(path=err.path, observed=err.message),
            )
        )
    return results


class ImageKindParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kinds: list[str] = Field(
        default_factory=list, description="accepted image kinds (`vm`, `container`, `directory`)"
    )
    formats: list[str] = Field(
        default_factory=list,
        description="accepted formats (`qcow2`, `raw`, `oci-layout`...); any when empty",
    )


@check_type("image_kind_in", params_model=ImageKindParams, missing=MissingPolicy.ERROR)
def image_kind_in(facts: Any, params: ImageKindParams, rule: Rule) -> list[CheckResult]:
    """Fails when the image's kind or format is not one of those listed.

    For catalogues that publish only some formats (a VM catalogue refusing `vmdk`, say).
    An empty list accepts everything.

    Missing fact: none; ``Facts.image`` is always present.
    """
    image = facts.image
    results = []
    if params.kinds and image.kind not in params.kinds:
        results.append(
            CheckResult(
                Status.FAIL,
                f"Image {code(image.source)} is a {code(image.kind)} image, "
                f"not one of {', '.join(params.kinds)}",
                resource=image.source,
                evidence=Evidence(observed=image.kind, expected=", ".join(params.kinds)),
            )
        )
    if params.formats and image.format not in params.formats:
        results.append(
            CheckResult(
                Status.FAIL,
                f"Image {code(image.source)} has format {code(image.format)}, "
                f"not one of {', '.join(params.formats)}",
                resource=image.source,
                evidence=Evidence(observed=image.format, expected=", ".join(params.formats)),
            )
        )
    return results


class FactCollectedParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    families: list[str] = Field(
        min_length=1, description="`Facts` fields that must be present (`os`, `accounts`...)"
    )


@check_type("fact_collected", params_model=FactCollectedParams, missing=MissingPolicy.FAIL)
def fact_collected(facts: Any, params: FactCollectedParams, rule: Rule) -> list[CheckResult]:
    """Fails once per listed fact family that is absent (its collector failed or is unknown).

    For rules such as "the operating system could be identified": without it no package or
    vulnerability rule can be trusted. The message quotes the collector's recorded errors.

    Missing fact: this check *is* about missing facts; it never triggers ``missing``.
    """
    results = []
    for family in params.families:
        if getattr(facts, family, None) is not None:
            continue
        reasons = "; ".join(e.message for e in facts.errors if e.collector == family)
        because = f": {reasons}" if reasons else ""
        results.append(
            CheckResult(
                Status.FAIL,
                f"The {code(family)} facts could not be collected{because}",
                resource=family,
                evidence=Evidence(observed=reasons or "absent", expected="collected"),
            )
        )
    return results
