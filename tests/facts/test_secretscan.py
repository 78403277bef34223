"""The ``secretscan`` collector: its pattern file, its scope and budgets, masking in every
output, and silence on a clean Debian root and the clean built-in example.

Tokens are put together at run time (:func:`tests.rules.cases_secret_patterns.noise`): this
file holds no token-shaped literal.
"""

from __future__ import annotations

import dataclasses
import json
import string
import time
from pathlib import Path

import pytest

from imageaudit.certify import load_levels
from imageaudit.checks import default_registry
from imageaudit.engine import evaluate_rule, rule_status, scan_facts
from imageaudit.facts import collect_facts, secretscan
from imageaudit.facts.base import CollectContext
from imageaudit.facts.secretscan import (
    MAX_FILE_BYTES,
    PatternError,
    check_regex,
    collect,
    load_patterns,
    scan_text,
    shipped_patterns,
)
from imageaudit.model import Status, to_jsonable
from imageaudit.openers.directory import DirectoryFS
from imageaudit.report import FORMATS, render
from imageaudit.rules import RuleSet
from tests.builders.debian import debian_root_dir  # noqa: F401 - pytest fixture
from tests.builders.example_tree import clean_scenario
from tests.rules.cases_secret_patterns import ALNUM, B64URL, HEX, jwt, noise
from tests.rules.harness import RULES_DIR, rules
from tests.scenario import File, Scenario, write_tree

RULE_IDS = ("secret_token_patterns", "secret_config_assignment")
UPPER = string.ascii_uppercase
DIGITS = string.digits


def _n(seed: str, n: int, alphabet: str = ALNUM) -> str:
    return noise("facts-" + seed, n, alphabet)


# One sample line per token pattern of the shipped file, each built from its prefix.
SAMPLES: dict[str, str] = {
    "aws-access-key-id": "id: " + "AS" + "IA" + _n("aws", 16, UPPER + "234567"),
    "aws-secret-access-key": "aws_secret_access_key = " + _n("awss", 40, ALNUM + "/+"),
    "gcp-api-key": "key=" + "AI" + "za" + _n("gcp", 35, ALNUM + "_-"),
    "gcp-service-account": '{"type": "service' + '_account", "project_id": "p"}',
    "azure-storage-account-key": "DefaultEndpointsProtocol=https;Account" + "Key="
    + _n("az", 86, ALNUM + "+/") + "==;",
    "azure-ad-client-secret": "secret: " + _n("aad1", 3) + "8" + "Q~"
    + _n("aad2", 32, ALNUM + "_~.-"),
    "alibaba-access-key-id": "LT" + "AI" + _n("ali", 20),
    "digitalocean-token": "do" + "p_v1_" + _n("do", 64, HEX),
    "openshift-user-token": "sha256" + "~" + _n("os", 43, B64URL),
    "github-pat": "gh" + "p_" + _n("ghp", 36),
    "github-fine-grained-pat": "github" + "_pat_" + _n("ghf1", 22) + "_" + _n("ghf2", 59),
    "github-oauth-token": "gh" + "o_" + _n("gho", 36),
    "github-app-token": "gh" + "s_" + _n("ghs", 36),
    "github-refresh-token": "gh" + "r_" + _n("ghr", 76),
    "gitlab-pat": "gl" + "pat-" + _n("glpat", 20, ALNUM + "_-"),
    "gitlab-runner-token": "gl" + "rt-" + _n("glrt", 20, ALNUM + "_-"),
    "gitlab-deploy-token": "gl" + "dt-" + _n("gldt", 20, ALNUM + "_-"),
    "gitlab-token": "gl" + "ptt-" + _n("glptt", 40, HEX),
    "npm-access-token": "np" + "m_" + _n("npm", 36),
    "imageaudit-catalogue-token": "IMAGEAUDIT_TOKEN=" + "ia" + "c_" + _n("iac", 43, B64URL),
    "pypi-upload-token": "py" + "pi-AgEIcHlwaS5vcmc" + _n("pypi", 70, B64URL),
    "rubygems-api-token": "ruby" + "gems_" + _n("gem", 48, HEX),
    "docker-hub-pat": "dckr" + "_pat_" + _n("dckr", 27, B64URL),
    "docker-config-secret": ".dockerconfig" + "json: " + "ey" + _n("dcj", 60, ALNUM + "+/"),
    "private-packagist-token": "packagist" + "_out_" + _n("pkg", 68, HEX),
    "artifactory-token": "AK" + "Cp" + _n("akcp", 69),
    "slack-bot-token": "xo" + "xb-" + _n("sb1", 12, DIGITS) + "-" + _n("sb2", 24),
    "slack-user-token": "xo" + "xp-" + "-".join(_n(f"su{i}", 12, DIGITS) for i in range(3))
    + "-" + _n("su", 32),
    "slack-legacy-token": "xo" + "xs-" + _n("sl", 40),
    "slack-app-token": "xa" + "pp-1-" + _n("sa1", 11, UPPER + DIGITS) + "-" + _n("sa2", 13, DIGITS)
    + "-" + _n("sa3", 64, string.ascii_lowercase + DIGITS),
    "slack-config-token": "xo" + "xe-1-" + _n("sc", 146),
    "slack-webhook-url": "https://hooks" + ".slack.com/services/" + _n("sw", 44),
    "discord-webhook-url": "https://discord" + ".com/api/webhooks/" + _n("dw1", 18, DIGITS) + "/"
    + _n("dw2", 64, B64URL),
    "discord-token": "DISCORD" + "_BOT_TOKEN=" + _n("dt", 59, B64URL + "."),
    "telegram-bot-token": "1" + _n("tg1", 8, DIGITS) + ":" + "AA" + _n("tg2", 33, B64URL),
    "twilio-api-key": "S" + "K" + _n("tw", 32, HEX),
    "sendgrid-api-token": "S" + "G." + _n("sg1", 22, B64URL) + "." + _n("sg2", 43, B64URL),
    "mailgun-api-key": "MAILGUN" + "_API_KEY=" + "key" + "-" + _n("mg", 32, HEX),
    "brevo-api-key": "xkey" + "sib-" + _n("br1", 64, HEX) + "-" + _n("br2", 16),
    "stripe-secret-key": "s" + "k_live_" + _n("st", 24),
    "shopify-token": "shp" + "at_" + _n("sh", 32, HEX),
    "square-token": "sq0" + "atp-" + _n("sq", 22, B64URL),
    "vault-token": "hv" + "s." + _n("vt", 96, B64URL),
    "terraform-cloud-token": _n("tf1", 14) + ".atlas" + "v1." + _n("tf2", 64, B64URL),
    "doppler-token": "dp" + ".pt." + _n("dp", 43),
    "onepassword-service-token": "ops" + "_eyJ" + _n("op", 300, ALNUM + "+/"),
    "age-secret-key": "AGE-SECRET" + "-KEY-1" + _n("age", 58, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"),
    "pulumi-token": "pu" + "l-" + _n("pul", 40, HEX),
    "databricks-token": "da" + "pi" + _n("dapi", 32, HEX),
    "grafana-token": "gl" + "sa_" + _n("gf1", 32) + "_" + _n("gf2", 8, HEX),
    "sentry-token": "sntr" + "yu_" + _n("se", 64, HEX),
    "new-relic-api-key": "NR" + "AK-" + _n("nr", 27, UPPER + DIGITS),
    "dynatrace-token": "dt0" + "c01." + _n("dy1", 24) + "." + _n("dy2", 64),
    "postman-api-key": "PM" + "AK-" + _n("pm1", 24, HEX) + "-" + _n("pm2", 34, HEX),
    "atlassian-api-token": "ATA" + "TT3" + _n("at", 186, B64URL),
    "linear-api-key": "lin" + "_api_" + _n("li", 40),
    "planetscale-token": "pscale" + "_tkn_" + _n("ps", 43),
    "flyio-token": "fo" + "1_" + _n("fly", 43, B64URL),
    "heroku-api-key": "HR" + "KU-AA" + _n("hk", 58, B64URL),
    "openai-api-key": "s" + "k-proj-" + _n("oa1", 58, B64URL) + "T3Blbk" + "FJ" + _n("oa2", 58),
    "anthropic-api-key": "s" + "k-ant-api03-" + _n("an", 93, B64URL) + "AA",
    "huggingface-token": "h" + "f_" + _n("hf", 34),
    "perplexity-api-key": "pp" + "lx-" + _n("px", 48),
    "facebook-access-token": "EA" + "AC" + _n("fb", 120),
    "mapbox-secret-token": "s" + "k.eyJ" + _n("mb1", 60, B64URL) + "." + _n("mb2", 22, B64URL),
    "notion-token": "nt" + "n_" + _n("no1", 11, DIGITS) + _n("no2", 35),
    "jwt": "Authorization: Bearer " + jwt(),
    "private-key": "-----BEGIN " + "EC PRIVATE KEY-----\n" + _n("pk", 64, ALNUM + "+/") + "\n",
    "url-credentials": "url = https://deploy:" + _n("url", 16) + "@git.internal/repo.git",
}


def run(tree: Scenario, tmp_path: Path) -> tuple[secretscan.SecretScanFacts, CollectContext]:
    root = write_tree(tree, tmp_path / "root")
    fs = DirectoryFS(root)
    ctx = CollectContext(fs=fs, current=secretscan.NAME)
    return collect(ctx), ctx


def found(facts: secretscan.SecretScanFacts) -> list[tuple[str, str, int | None]]:
    return [(m.pattern, m.path, m.source.line) for m in facts.matches if m.ignored is None]


# -- the pattern file -----------------------------------------------------------------------------


def test_the_shipped_pattern_file_loads_and_every_token_pattern_has_a_sample() -> None:
    patterns = shipped_patterns()
    ids = {t.spec.id for t in patterns.tokens}
    assert ids == set(SAMPLES), "every token pattern needs a sample here (and only those)"


@pytest.mark.parametrize("pattern_id", sorted(SAMPLES))
def test_each_token_pattern_finds_its_sample_and_shows_only_its_prefix(pattern_id: str) -> None:
    line = SAMPLES[pattern_id]
    matches, cut = scan_text("/opt/app/notes.txt", "first line\n" + line + "\n", shipped_patterns())
    assert not cut
    hits = [m for m in matches if m.pattern == pattern_id]
    assert hits, f"{pattern_id} not found in {line!r}: {matches}"
    hit = hits[0]
    assert hit.ignored is None, hit
    assert hit.source.line == 2
    spec = next(t.spec for t in shipped_patterns().tokens if t.spec.id == pattern_id)
    assert hit.shown == "" or hit.shown in spec.prefix


def test_the_aws_documentation_key_and_low_entropy_tokens_are_ignored() -> None:
    text = (
        "id = " + "AK" + "IA" + "IOSFODNN7" + "EXAMPLE\n"
        "token = " + "gh" + "p_" + "0" * 36 + "\n"
        "aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY\n"
    )
    matches, _ = scan_text("/etc/app.conf", text, shipped_patterns())
    reasons = {m.pattern: m.ignored for m in matches if m.kind == "token"}
    assert reasons == {
        "aws-access-key-id": "documentation value",
        "github-pat": "entropy below 3.0",
        "aws-secret-access-key": "documentation value",
    }


@pytest.mark.parametrize(
    "regex",
    [r"a+", r"a*", r"a{2,}", r"(?:ab{1,3}){1,3}", r"(a)\1", r"a{1,20000}", r"(?:a|b+)?"],
)
def test_unsafe_expressions_are_refused(regex: str) -> None:
    with pytest.raises(PatternError):
        check_regex(regex)


def test_safe_expressions_pass() -> None:
    assert check_regex(r"(?<![a-z])ab{1,3}(?:c|d)?[0-9]{4}").search("-abbc1234")


def _pattern_file(tmp_path: Path, edit: str, old: str) -> Path:
    text = (RULES_DIR / "data" / "secret-patterns.yaml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "secret-patterns.yaml"
    path.write_text(text.replace(old, edit, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        ("[0-9A-Za-z]{36})(?![A-Za-z0-9_])'", "[0-9A-Za-z]+)(?![A-Za-z0-9_])'", "unbounded"),
        ("(?P<secret>ghp_", "(?P<s>ghp_", "secret"),
        ("keywords: [ghp_]", "keywords: [GHP_]", "lower case"),
        ("- id: github-oauth-token", "- id: github-pat", "duplicate"),
        ('non_values: ["true",', "non_values: [yes,", "str"),
        ("severity: critical", "severity: urgent", "severity"),
    ],
)
def test_a_bad_pattern_file_is_refused(tmp_path: Path, old: str, new: str, why: str) -> None:
    with pytest.raises(PatternError, match=why):
        load_patterns(_pattern_file(tmp_path, new, old))


def test_hostile_text_is_scanned_in_linear_time() -> None:
    patterns = shipped_patterns()
    keywords = " ".join(k for t in patterns.tokens for k in t.spec.keywords) + "\n"
    bodies = [
        "a" * MAX_FILE_BYTES,
        "eyJ" * (MAX_FILE_BYTES // 3),
        ("http://" + "a" * 60 + ":" + "b" * 100 + "@") * (MAX_FILE_BYTES // 170),
        ("-----BEGIN " + "A" * 90 + " PRIVATE KEY-----\n ") * (MAX_FILE_BYTES // 120),
        ("password_secret_token=" + "x" * 40 + " ") * (MAX_FILE_BYTES // 63),
    ]
    for body in bodies:
        t0 = time.perf_counter()
        scan_text("/etc/hostile.conf", keywords + body, patterns)
        assert time.perf_counter() - t0 < 5.0


# -- scope and budgets -----------------------------------------------------------------------------

GITHUB = "gh" + "p_" + _n("scope", 36)


def test_scope_binary_files_and_partial_reads(tmp_path: Path) -> None:
    big = "x = 1\n" * (MAX_FILE_BYTES // 6 + 1000)
    tree: Scenario = {
        "/etc/passwd": "root:x:0:0:root:/root:/bin/sh\nsvc:x:1:1::/usr/sbin:/bin/false\n"
        "data:x:1001:1001::/data/home:/bin/sh\n",
        "/etc/app/token": GITHUB + "\n",
        "/data/home/.env": "T=" + GITHUB + "\n",  # a home outside the scan roots
        "/data/other/.env": "T=" + GITHUB + "\n",  # not a home: not scanned
        "/usr/sbin/tool": "T=" + GITHUB + "\n",  # a system account's home: not scanned
        "/opt/app/bin/tool": File(b"\x7fELF\x00" + GITHUB.encode(), mode=0o755),
        "/opt/app/big.log": "T=" + GITHUB + "\n" + big + "T=" + "gh" + "p_" + _n("late", 36),
        "/opt/app/node_modules/x/.env": "T=" + GITHUB + "\n",
        "/usr/local/lib/python3.11/site.cfg": "T=" + GITHUB + "\n",
        "/var/lib/dpkg/info/x.conffiles": "T=" + GITHUB + "\n",
    }
    facts, ctx = run(tree, tmp_path)
    assert sorted(p for _id, p, _line in found(facts)) == [
        "/data/home/.env",
        "/etc/app/token",
        "/opt/app/big.log",
    ]
    assert facts.partial == ("/opt/app/big.log",)
    assert facts.binary_skipped == 1
    assert not facts.truncated and not [e for e in ctx.errors if e.incomplete]


def test_the_file_budget_leaves_the_facts_incomplete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(secretscan, "MAX_FILES", 1)
    facts, ctx = run({"/etc/a.conf": "a = 1\n", "/etc/b.conf": "b = 2\n"}, tmp_path)
    assert facts.truncated
    assert [e.collector for e in ctx.errors if e.incomplete] == ["secretscan"]


def test_the_facts_hold_no_value(tmp_path: Path) -> None:
    password = "Pw" + _n("pw", 18)
    facts, _ = run({"/opt/app/.env": f"DB_PASSWORD={password}\nGH={GITHUB}\n"}, tmp_path)
    dumped = json.dumps(to_jsonable(facts))
    assert password not in dumped and GITHUB not in dumped
    assert GITHUB[4:12] not in dumped and password[2:10] not in dumped
    assert [(m.pattern, m.key, m.shown, m.length) for m in facts.matches if not m.ignored] == [
        ("github-pat", None, "ghp_", 40),
        ("config-assignment", "DB_PASSWORD", "", 20),
    ]


# -- judged, rendered ---------------------------------------------------------------------------


def _my_rules() -> RuleSet:
    every = rules()
    return dataclasses.replace(every, rules=tuple(r for r in every if r.id in RULE_IDS))


def test_no_output_format_shows_a_secret(tmp_path: Path) -> None:
    secrets = {
        "/opt/app/.env": ("DB_PASSWORD=", "Pw" + _n("out-pw", 18)),
        "/root/.bashrc": ("export GITHUB_TOKEN=", GITHUB),
        "/etc/app/app.yaml": ("aws_secret_access_key: ", _n("out-aws", 40, ALNUM + "/+")),
        "/etc/app/hook.conf": ("url = ", "https://hooks" + ".slack.com/services/" + _n("h", 44)),
        "/etc/app/jwt.conf": ("session = ", jwt()),
    }
    tree: Scenario = {path: f"{left}{value}\n" for path, (left, value) in secrets.items()}
    tree["/etc/passwd"] = "root:x:0:0:root:/root:/bin/sh\n"
    root = write_tree(tree, tmp_path / "root")
    with DirectoryFS(root) as fs:
        facts = collect_facts(fs)
    report = scan_facts(facts, _my_rules(), load_levels(RULES_DIR / "levels.yaml"))
    fails = [f for f in report.findings if f.status is Status.FAIL]
    assert {f.resource for f in fails} == set(secrets)
    outputs = {fmt: render(report, fmt) for fmt in FORMATS}
    # Our own facts; other collectors keep the lines they judge (a profile's commands).
    outputs["facts"] = json.dumps(facts.to_json()["secretscan"])
    for fmt, text in outputs.items():
        for _left, value in secrets.values():
            # neither the value nor any 8 characters of it past a format's public prefix
            tail = value.split("://", 1)[-1]
            pieces = {tail[i : i + 8] for i in range(24, len(tail) - 8, 8)} | {value}
            leaked = [p for p in pieces if p in text]
            assert not leaked, f"{fmt} shows a secret: {leaked}"


def _judge(facts: object) -> dict[str, list[str]]:
    out = {}
    for rule_id in RULE_IDS:
        rule = rules().get(rule_id)
        assert rule is not None
        findings = evaluate_rule(rule, facts, default_registry())  # type: ignore[arg-type]
        out[rule_id] = [f"{f.status.value} {f.resource}: {f.message}" for f in findings]
        assert rule_status(findings) is Status.PASS, out[rule_id]
    return out


def test_the_clean_example_gives_no_finding(tmp_path: Path) -> None:
    root = write_tree(clean_scenario(), tmp_path / "root")
    with DirectoryFS(root) as fs:
        facts = collect_facts(fs)
    _judge(facts)


@pytest.mark.network
@pytest.mark.slow
def test_a_clean_debian_root_gives_no_finding(debian_root_dir: Path) -> None:  # noqa: F811
    with DirectoryFS(debian_root_dir) as fs:
        facts = collect_facts(fs)
    assert facts.secretscan is not None
    assert not [e for e in facts.errors if e.collector == "secretscan"], facts.errors
    assert facts.secretscan.files_scanned > 50
    _judge(facts)
    # what the scan costs on a real root (read with -s; the budget is generous)
    spent = facts.timings["collect.secretscan"]
    print(f"secretscan on the Debian root: {spent:.3f}s, {facts.secretscan.files_scanned} "
          f"files, {facts.secretscan.bytes_scanned} bytes")
    assert spent < 10.0
