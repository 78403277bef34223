"""Test-only check types, Facts stand-ins and rule-file writers for the judging tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from imageaudit.checks import MissingFact, MissingPolicy, Registry, default_registry
from imageaudit.facts.os import OSFacts, OSValue
from imageaudit.findings import CheckResult, code
from imageaudit.model import CollectorError, Evidence, Source, Status

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)

try:  # the real aggregate once every collector module is in the tree
    from imageaudit.facts import Facts as _RealFacts
    from imageaudit.facts import ImageInfo as _RealImageInfo
except ImportError:  # pragma: no cover - depends on the other collectors' progress
    _RealFacts = None
    _RealImageInfo = None


@dataclass(frozen=True)
class StandInImage:
    kind: str
    format: str
    source: str


@dataclass(frozen=True)
class StandInFacts:
    image: StandInImage
    os: Any = None
    accounts: Any = None
    errors: tuple[CollectorError, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Account:
    name: str
    password: str
    path: str
    line: int


@dataclass(frozen=True)
class AccountsStandIn:
    accounts: tuple[Account, ...]


def make_facts(
    kind: str = "vm",
    fmt: str = "qcow2",
    source: str = "images/demo.qcow2",
    accounts: Any = None,
    os: Any = None,
    errors: tuple[CollectorError, ...] = (),
) -> Any:
    """``Facts`` (real when importable) with only the families the tests need."""
    if _RealFacts is not None and _RealImageInfo is not None:
        image = _RealImageInfo(kind=kind, format=fmt, source=source)
        return _RealFacts(image=image, accounts=accounts, os=os, errors=errors)
    return StandInFacts(
        image=StandInImage(kind, fmt, source), accounts=accounts, os=os, errors=errors
    )


class DefaultPasswordParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    passwords: list[str] = Field(min_length=1, description="passwords that count as default")


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def judge_registry(builtins: bool = False) -> Registry:
    """A registry with the test-only check types (and the built-in ones if asked)."""
    reg = default_registry().copy() if builtins else Registry()

    @reg.check_type(
        "default_password",
        params_model=DefaultPasswordParams,
        missing=MissingPolicy.ERROR,
        needs=("accounts",),
    )
    def default_password(facts: Any, params: DefaultPasswordParams, rule: Any) -> list[CheckResult]:
        """Fails for each account whose (test, clear-text) password is a default one.

        Missing fact: ``accounts`` absent gives the rule's ``missing`` (default error).
        """
        return [
            CheckResult(
                Status.FAIL,
                f"User {code(a.name)} has the default password {code(a.password)} "
                f"({a.path} line {a.line})",
                resource=a.name,
                evidence=Evidence(
                    path=a.path, line=a.line, observed=a.password, expected="no default"
                ),
            )
            for a in facts.accounts.accounts
            if a.password in params.passwords
        ]

    @reg.check_type("always_pass", params_model=NoParams, missing=MissingPolicy.PASS)
    def always_pass(facts: Any, params: NoParams, rule: Any) -> list[CheckResult]:
        """Reports nothing. Missing fact: never needs one."""
        return []

    @reg.check_type("explodes", params_model=NoParams, missing=MissingPolicy.ERROR)
    def explodes(facts: Any, params: NoParams, rule: Any) -> list[CheckResult]:
        """Raises, as a check tripping over a hostile image would. Missing fact: n/a."""
        raise ValueError("unexpected byte 0xff in /etc/shadow")

    @reg.check_type("needs_deeper", params_model=NoParams, missing=MissingPolicy.NOT_APPLICABLE)
    def needs_deeper(facts: Any, params: NoParams, rule: Any) -> list[CheckResult]:
        """Raises MissingFact. Missing fact: not applicable by default."""
        raise MissingFact("files", "the walk was cut short")

    @reg.check_type("bad_return", params_model=NoParams, missing=MissingPolicy.ERROR)
    def bad_return(facts: Any, params: NoParams, rule: Any) -> Any:
        """Returns a string instead of results. Missing fact: n/a."""
        return "oops"

    return reg


def rule_doc(rule_id: str, **overrides: Any) -> dict[str, Any]:
    """A valid rule document using a test-only check type."""
    doc: dict[str, Any] = {
        "id": rule_id,
        "title": f"Title of {rule_id}",
        "description": f"Description of {rule_id}.",
        "rationale": f"Rationale of {rule_id}.",
        "category": "password",
        "severity": "critical",
        "remediation": f"Fix {rule_id}.",
        "references": ["https://example.org/ref"],
        "check": {"type": "always_pass", "params": {}},
        "levels": [],
        "version": 1,
    }
    doc.update(overrides)
    return doc


def write_rule(root: Path, area: str, doc: dict[str, Any], name: str | None = None) -> Path:
    path = root / area / f"{name or doc['id']}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


DATA = Path(__file__).resolve().parents[1] / "data"
JUDGE_RULES = DATA / "judge" / "rules"


def demo_accounts() -> AccountsStandIn:
    return AccountsStandIn(
        (
            Account("admin", "admin", "/etc/shadow", 23),
            Account("operator", "<script>alert(1)</script>", "/etc/shadow", 24),
            Account("bob", "s3cret", "/etc/shadow", 25),
        )
    )


def demo_facts() -> Any:
    """A VM with two default passwords, a Debian OS and one collector error."""
    return make_facts(
        accounts=demo_accounts(),
        os=OSFacts(kind="vm", id=OSValue("debian", Source("/etc/os-release", 1))),
        errors=(
            CollectorError(
                "files", "read only the first 1048576 of 2000000 bytes", "/var/log/huge.log"
            ),
        ),
    )


def demo_report() -> Any:
    """The report of the judge rule tree over :func:`demo_facts`, fully deterministic."""
    import datetime as dt

    from imageaudit.certify import load_levels
    from imageaudit.engine import scan_facts
    from imageaudit.identity import ImageIdentity
    from imageaudit.rules import load_rules
    from imageaudit.waivers import Waiver

    registry = judge_registry(builtins=True)
    return scan_facts(
        demo_facts(),
        load_rules(JUDGE_RULES, registry),
        load_levels(Path(__file__).resolve().parents[2] / "imageaudit" / "ruleset" / "levels.yaml"),
        (
            Waiver(
                "image_read_completely",
                "log rotation runs at boot",
                dt.date(2025, 6, 30),
                "alice@example.org",
                resource="files",
            ),
            Waiver("password_default", "expired waiver", dt.date(2025, 1, 1), "bob"),
        ),
        ImageIdentity("images/demo.qcow2", "0" * 128, 4096),
        registry=registry,
        now=NOW,
        tool_version="0.0.0-test",
    )
