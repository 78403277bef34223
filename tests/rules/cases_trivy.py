"""Scenarios for trivy's rules: results attached as ``scan --trivy`` does, parsed from reports
trivy wrote (``tests/data/trivy/``).

``secrets.json`` is trivy 0.59's secret scan of a tree with an AWS key and a GitHub token in
``/opt/app/env.sh`` and AWS credentials in ``/root/.aws/credentials`` (values masked by
trivy); ``vulnerabilities.json`` is ``trivy convert`` of a libc6 report with two fixed
vulnerabilities and one unfixed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from imageaudit.facts import Facts
from imageaudit.model import Severity, Status
from imageaudit.vulns.trivy import parse_trivy_json
from imageaudit.vulns.trivy_scan import NO_TRIVY, TrivyFacts, TrivySecret, parse_trivy_secrets
from tests.rules.cases_vulnerability import with_osv
from tests.rules.harness import case
from tests.vulns import osv_data as data

DATA = Path(__file__).resolve().parents[1] / "data" / "trivy"
SECRETS = parse_trivy_secrets((DATA / "secrets.json").read_bytes())
VULNS = parse_trivy_json((DATA / "vulnerabilities.json").read_bytes())
NO_DB = "no trivy vulnerability database in /nowhere/trivy"


def with_trivy(**found: object) -> Callable[[Facts], Facts]:
    """What ``scan --trivy`` attaches (``facts.trivy``)."""
    def attach(facts: Facts) -> Facts:
        return dataclasses.replace(facts, trivy=TrivyFacts(**found))  # type: ignore[arg-type]

    return attach


def then(*steps: Callable[[Facts], Facts]) -> Callable[[Facts], Facts]:
    def attach(facts: Facts) -> Facts:
        for step in steps:
            facts = step(facts)
        return facts

    return attach


ENV_SH = "export GITHUB_TOKEN=masked-in-this-tree\nAWS_ACCESS_KEY_ID=masked-in-this-tree\n"
AWS = "[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = notempty\n"
TREE = {"/opt/app/env.sh": ENV_SH, "/root/.aws/credentials": AWS}

RULE = "trivy_secret"
# The AWS credentials file is reported by secret_credential_files: trivy's two findings there
# are dropped; the two in env.sh are trivy's own. Each names trivy's rule, file and line.
case(RULE, Status.FAIL, TREE, attach=with_trivy(secrets=SECRETS, vuln_problem=NO_DB),
     resources={"/opt/app/env.sh:1 github-pat", "/opt/app/env.sh:2 aws-access-key-id"},
     severity=Severity.CRITICAL,
     message="trivy finds a secret in `/opt/app/env.sh line 1`: GitHub Personal Access Token, "
     "category GitHub, trivy rule `github-pat`, rated CRITICAL by trivy (the value is not "
     "shown)")
# Without the credential file in the image our rules report nothing there: trivy's stay.
case(RULE, Status.FAIL, {"/opt/app/env.sh": ENV_SH}, attach=with_trivy(secrets=SECRETS),
     name="no-dedupe", resources={
         "/opt/app/env.sh:1 github-pat", "/opt/app/env.sh:2 aws-access-key-id",
         "/root/.aws/credentials:2 aws-access-key-id",
         "/root/.aws/credentials:3 aws-secret-access-key"})
case(RULE, Status.PASS, TREE, attach=with_trivy(
    secrets=tuple(s for s in SECRETS if s.path == "/root/.aws/credentials")), name="deduped")
case(RULE, Status.PASS, TREE, attach=with_trivy(vuln_problem=NO_DB), name="nothing-found")
# trivy's own rating below the rule's keeps the rule's; above raises it.
case(RULE, Status.FAIL, {}, attach=with_trivy(secrets=(
    TrivySecret("slack-web-hook", "Slack", "MEDIUM", "Slack Webhook", "/etc/app.yml", 4),)),
     name="moderate", severity=Severity.MODERATE, resources={"/etc/app.yml:4 slack-web-hook"})
case(RULE, Status.FAIL, {}, attach=with_trivy(secrets=(
    TrivySecret("custom", "", "UNKNOWN", "", "/etc/app.yml", None),)),
     name="unrated", severity=Severity.LOW,
     message="trivy finds a secret in `/etc/app.yml`: trivy rule `custom`, rated UNKNOWN by trivy "
     "(the value is not shown)")
case(RULE, Status.ERROR, TREE, attach=with_trivy(secret_problem=NO_TRIVY, vuln_problem=NO_TRIVY),
     name="no-trivy", resources={"trivy"},
     message=f"trivy's secret scan could not run: {NO_TRIVY}")
case(RULE, Status.ERROR, TREE, attach=with_trivy(incomplete="the walk stopped"),
     name="incomplete", resources={"trivy"},
     message="trivy's secret scan did not see the whole image: the walk stopped")
case(RULE, Status.NOT_APPLICABLE, TREE, name="not-asked")

VULN = "trivy_vulnerability"
case(VULN, Status.FAIL, data.BOOKWORM_TREE, attach=with_trivy(vulnerabilities=VULNS),
     resources={"libc6 CVE-2023-4911", "libc6 CVE-2024-2961"},
     message="trivy: package `libc6` `2.36-9+deb12u1` has CVE-2023-4911 (glibc: buffer "
     "overflow in ld.so leading to privilege escalation), fixed in `2.36-9+deb12u3`; rated high by "
     "trivy")
case(VULN, Status.FAIL, data.BOOKWORM_TREE, attach=with_trivy(
    vulnerabilities=tuple(v for v in VULNS if v.id == "CVE-2024-2961")),
     name="moderate", resources={"libc6 CVE-2024-2961"}, severity=Severity.MODERATE)
# Our OSV matching already reports CVE-2023-4911 for libc6 (as an alias): only the other
# stays.
case(VULN, Status.FAIL, data.BOOKWORM_TREE,
     attach=then(with_osv, with_trivy(vulnerabilities=VULNS)), name="deduped",
     resources={"libc6 CVE-2024-2961"})
case(VULN, Status.PASS, data.BOOKWORM_TREE,
     attach=with_trivy(vulnerabilities=tuple(v for v in VULNS if not v.fixed_version)),
     name="unfixed-only")
case(VULN, Status.PASS, data.BOOKWORM_TREE, attach=with_trivy(), name="nothing-found")
case(VULN, Status.ERROR, data.BOOKWORM_TREE, attach=with_trivy(vuln_problem=NO_DB),
     name="no-database", resources={"trivy"},
     message=f"trivy's vulnerability scan could not run: {NO_DB}")
case(VULN, Status.NOT_APPLICABLE, data.BOOKWORM_TREE, name="not-asked")
