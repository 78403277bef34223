"""Check types over legacy sshd settings: SSH protocol 1 and weak algorithms.

Follows: sshd_config(5) (``Ciphers``, ``MACs``, ``KexAlgorithms`` with ``+``/``-``/``^``
prefixes and wildcards), OpenSSH 7.4 release notes (SSH-1 server support removed).
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from imageaudit.checks import MissingPolicy, check_type
from imageaudit.checks.ssh_config import global_setting, installed_sshd
from imageaudit.facts.sshd import SshdFacts
from imageaudit.findings import CheckResult, Rule, code
from imageaudit.model import Evidence, Status

_PROTOCOL_RE = re.compile(r"^\s*protocol(?:\s*=\s*|\s+)(.*)$", re.IGNORECASE)
_VERSION_RE = re.compile(r"OpenSSH_(\d+)\.(\d+)")
# OpenSSH 7.4 removed the SSH-1 server; from then on sshd ignores ``Protocol``.
SSH1_REMOVED = (7, 4)


def _version(sshd: SshdFacts) -> tuple[int, int] | None:
    m = _VERSION_RE.match(sshd.version or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


class ProtocolParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@check_type(
    "sshd_protocol_1", params_model=ProtocolParams, missing=MissingPolicy.ERROR, needs=("sshd",)
)
def sshd_protocol_1(facts: Any, params: ProtocolParams, rule: Rule) -> list[CheckResult]:
    """Fails for each ``Protocol`` line that enables SSH-1, unless sshd is known to ignore it.

    The sshd facts keep ``Protocol`` lines among the deprecated (malformed) lines, since
    OpenSSH ≥ 7.4 ignores the keyword. A line listing ``1`` fails when the OpenSSH version
    is older than 7.4 or unknown (the message says which); with a known newer version it
    passes: that sshd cannot speak SSH-1.

    Missing fact: without ``sshd`` facts nothing can be said (default ``error``).
    Not applicable when the image has no sshd.
    """
    sshd = installed_sshd(facts)
    version = _version(sshd)
    if version is not None and version >= SSH1_REMOVED:
        return []
    if version is None:
        why = "the OpenSSH version is unknown, and releases before 7.4 honour it"
    else:
        why = f"OpenSSH {version[0]}.{version[1]} honours it"
    results = []
    for line in sshd.malformed:
        m = _PROTOCOL_RE.match(line.text)
        if m is None:
            continue
        value = m.group(1).split("#", 1)[0].strip()
        if "1" not in re.split(r"[\s,]+", value):
            continue
        results.append(
            CheckResult(
                Status.FAIL,
                f"sshd enables the broken SSH protocol 1 ({code('Protocol ' + value)}, "
                f"{line.source}): {why}",
                resource="Protocol",
                evidence=Evidence(
                    path=line.source.path,
                    line=line.source.line,
                    observed=f"Protocol {value}",
                    expected="Protocol 2",
                ),
            )
        )
    return results


class AlgorithmsParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    option: str = Field(description="`Ciphers`, `MACs`, `KexAlgorithms`, `HostKeyAlgorithms`...")
    weak: list[str] = Field(min_length=1, description="algorithm names that fail")


def _listed(value: str) -> list[str]:
    """The algorithms a list adds: none for ``-`` (it only removes from the defaults)."""
    value = value.strip()
    if value.startswith("-"):
        return []
    return [a.strip() for a in value.lstrip("+^").split(",") if a.strip()]


@check_type(
    "sshd_weak_algorithms",
    params_model=AlgorithmsParams,
    missing=MissingPolicy.ERROR,
    needs=("sshd",),
)
def sshd_weak_algorithms(facts: Any, params: AlgorithmsParams, rule: Rule) -> list[CheckResult]:
    """Fails when the configured algorithm list of ``option`` enables one of ``weak``.

    A list replaces the defaults, ``+list`` appends and ``^list`` prepends (both enable what
    they name), ``-list`` only removes. Entries may be wildcards (``*-cbc``): a weak name
    matching one counts. Not set: passes, since the defaults depend on the build and no
    OpenSSH release of the last decade enables these by default. One finding naming every
    weak algorithm found.

    Missing fact: without ``sshd`` facts nothing can be said (default ``error``).
    Not applicable when the image has no sshd.
    """
    sshd = installed_sshd(facts)
    setting = global_setting(sshd, params.option)
    if setting is None or setting.source is None:
        return []
    entries = _listed(setting.value)
    found = [w for w in params.weak if any(fnmatchcase(w, e) for e in entries)]
    if not found:
        return []
    names = ", ".join(code(f) for f in found)
    return [
        CheckResult(
            Status.FAIL,
            f"sshd enables weak {params.option} {names} {setting.where()}",
            resource=setting.resource,
            evidence=Evidence(
                path=setting.source.path,
                line=setting.source.line,
                observed=", ".join(found),
                expected=f"no {', '.join(params.weak)}",
            ),
        )
    ]
