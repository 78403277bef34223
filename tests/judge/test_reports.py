from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from typing import Any

import jsonschema
import pytest

from imageaudit.report import FORMATS, render
from imageaudit.report.json_report import report_schema
from imageaudit.report.sarif import to_sarif
from tests.judge.helpers import DATA, demo_report

GOLDEN = DATA / "golden"


@pytest.mark.parametrize(
    ("fmt", "name"),
    [("json", "report.json"), ("sarif", "report.sarif"), ("junit", "report.junit.xml")],
)
def test_golden(fmt: str, name: str, update_golden: bool) -> None:
    text = render(demo_report(), fmt)
    path = GOLDEN / name
    if update_golden:
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), (
        f"regenerate with pytest --update-golden ({name})"
    )


def test_json_matches_the_shipped_schema() -> None:
    data = json.loads(render(demo_report(), "json"))
    jsonschema.Draft202012Validator.check_schema(report_schema())
    jsonschema.Draft202012Validator(report_schema()).validate(data)
    assert data["certification"]["level"] == "none"
    assert data["summary"] == {"PASS": 1, "FAIL": 2, "ERROR": 1, "NOT_APPLICABLE": 2, "WAIVED": 1}


def test_sarif_matches_the_official_schema() -> None:
    schema = json.loads((DATA / "schemas" / "sarif-2.1.0.json").read_text(encoding="utf-8"))
    data = json.loads(render(demo_report(), "sarif"))
    jsonschema.Draft7Validator(schema).validate(data)
    results = data["runs"][0]["results"]
    assert [(r["ruleId"], r["kind"], r["level"]) for r in results] == [
        ("crashing_check", "open", "none"),
        ("image_read_completely", "fail", "warning"),
        ("password_default", "fail", "error"),
        ("password_default", "fail", "error"),
    ]
    assert results[1]["suppressions"] == [
        {
            "kind": "external",
            "status": "accepted",
            "justification": "log rotation runs at boot "
            "(waived by alice@example.org until 2025-06-30)",
        }
    ]
    assert results[2]["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "etc/shadow", "uriBaseId": "IMAGEROOT"},
        "region": {"startLine": 23},
    }
    # a finding without a file of its own points at the image file, as the user named it
    assert results[0]["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "images/demo.qcow2", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 1},
    }
    assert "uri" not in data["runs"][0]["originalUriBaseIds"]["IMAGEROOT"]


def test_sarif_fingerprints_ignore_the_image_and_tell_findings_apart() -> None:
    report = demo_report()
    rebuilt = replace(report, image=replace(report.image, source="/srv/build/demo-2.qcow2",
                                            sha512="ab" * 64, size=12345))

    def prints(log: dict[str, Any]) -> list[str]:
        return [r["partialFingerprints"]["imageaudit/v1"] for r in log["runs"][0]["results"]]

    first, second = to_sarif(report), to_sarif(rebuilt)
    assert prints(first) == prints(second)
    assert len(set(prints(first))) == len(prints(first))
    assert second["runs"][0]["results"][0]["locations"][0]["physicalLocation"][
        "artifactLocation"] == {"uri": "file:///srv/build/demo-2.qcow2"}
    # the same finding twice (one object, one file, two lines) keeps two alerts
    operator = next(f for f in report.findings if f.resource == "operator")
    again = replace(operator, evidence=replace(operator.evidence, line=40))
    doubled = prints(to_sarif(replace(report, findings=(*report.findings, again))))
    assert doubled[:-1] == prints(first)
    assert doubled[-1] == prints(first)[-1] + ":2"


def test_junit_one_testcase_per_rule() -> None:
    root = ET.fromstring(render(demo_report(), "junit"))
    cases = {c.get("name"): [child.tag for child in c] for c in root.iter("testcase")}
    assert cases == {
        "container_only": ["skipped"],
        "crashing_check": ["error"],
        "image_read_completely": ["skipped"],
        "password_default": ["failure"],
        "rhel_only": ["skipped"],
        "ssh_all_good": [],
    }
    assert root.attrib == {
        "name": "imageaudit",
        "tests": "6",
        "failures": "1",
        "errors": "1",
        "skipped": "3",
    }
    failure = root.find(".//testcase[@name='password_default']/failure")
    assert failure is not None
    assert failure.get("message") == (
        "2 findings; first: User `admin` has the default password `admin` (/etc/shadow line 23)"
    )


def test_html_escapes_image_strings() -> None:
    html = render(demo_report(), "html")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'id="level-badge" class="pill big lv-none" title="level reached">none</span>' in html
    assert "http://" not in html.replace("http-equiv", "")
    assert "src=" not in html and "<link" not in html


def test_markdown_and_text_put_the_level_first() -> None:
    report = demo_report()
    md = render(report, "markdown")
    assert md.splitlines()[0] == "## imageaudit: `images/demo.qcow2` certified **none**"
    assert (
        "- **FAIL** `password_default`: User `operator` has the default password "
        "`<script>alert(1)</script>` (/etc/shadow line 24)"
    ) in md.splitlines()
    text = render(report, "text")
    assert text.splitlines()[0] == "Level: NONE   images/demo.qcow2"
    assert (
        "  FAIL           password_default  User admin has the default password admin"
        " (/etc/shadow line 23)"
    ) in text.splitlines()


def test_every_format_renders_and_unknown_is_refused() -> None:
    report = demo_report()
    for fmt in FORMATS:
        assert render(report, fmt)
    with pytest.raises(ValueError, match="unknown report format 'pdf'"):
        render(report, "pdf")
