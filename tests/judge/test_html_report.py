"""The HTML report's structure: the level against the required one, one summary row per finding
linked to its details, levels linked to the rules that block them, and every string from the
image escaped (a hostile image chooses paths, names and values)."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser

from imageaudit.findings import Report
from imageaudit.report import render
from tests.judge.helpers import demo_report


class Page(HTMLParser):
    """The elements of a page, each as (tag, attributes, the text inside it)."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None], list[str]]] = []
        self._open: list[list[str]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        texts: list[str] = []
        self.elements.append((tag, dict(attrs), texts))
        if tag not in ("meta", "br", "col", "input", "link"):
            self._open.append(texts)

    def handle_endtag(self, tag: str) -> None:
        if self._open and tag not in ("meta", "br", "col", "input", "link"):
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for texts in self._open:
            texts.append(data)

    def text(self, **attrs: str) -> list[str]:
        return ["".join(t).strip() for _, a, t in self.elements
                if all(a.get(k) == v for k, v in attrs.items())]

    def ids(self) -> set[str]:
        return {a["id"] for _, a, _ in self.elements if a.get("id")}

    def hrefs(self) -> list[str]:
        return [a["href"] or "" for tag, a, _ in self.elements if tag == "a" and "href" in a]

    def rows(self) -> list[list[str]]:
        """The summary table's rows: the text of each cell."""
        rows: list[list[str]] = []
        inside = False
        for tag, attrs, texts in self.elements:
            if tag == "table":
                inside = attrs.get("id") == "summary"
            elif inside and tag == "tr" and attrs.get("data-rule"):
                rows.append([])
            elif inside and tag == "td" and rows:
                rows[-1].append(" ".join("".join(texts).split()))
        return rows


def hostile() -> Report:
    """The demo report, with an object and references as a hostile image could make them."""
    report = demo_report()
    findings = tuple(
        dataclasses.replace(
            f,
            resource='<script>alert("object")</script>',
            references=("javascript:alert(1)", "https://example.org/a b", *f.references),
        )
        if f.resource == "admin" else f
        for f in report.findings
    )
    return dataclasses.replace(report, findings=findings)


def test_level_and_the_required_level_not_reached() -> None:
    page = Page(render(demo_report(), "html", required="standard"))
    assert page.text(id="level-badge") == ["none"]
    assert page.text(id="required") == ["required: standard — not reached"]


def test_required_level_reached_and_none_required() -> None:
    report = demo_report()
    cert = report.certification
    levels = tuple(dataclasses.replace(lv, granted=lv.name == "basic", blocking=())
                   if lv.name == "basic" else lv for lv in cert.levels)
    granted = dataclasses.replace(report, certification=dataclasses.replace(
        cert, level="basic", levels=levels))
    page = Page(render(granted, "html", required="basic"))
    assert page.text(id="level-badge") == ["basic"]
    assert page.text(id="required") == ["required: basic — reached"]
    assert Page(render(granted, "html")).text(id="required") == []


def test_sha512_is_shortened_on_screen_but_whole_in_the_page() -> None:
    text = render(demo_report(), "html")
    assert f'<code class="sha" id="sha512" title="{"0" * 128}">{"0" * 128}</code>' in text


def test_summary_has_one_row_per_finding_shown_worst_first() -> None:
    page = Page(render(demo_report(), "html"))
    assert page.rows() == [
        ["1", "critical", "failed", "password_default", "admin",
         "User admin has the default password admin (/etc/shadow line 23)"],
        ["2", "critical", "failed", "password_default", "operator",
         "User operator has the default password <script>alert(1)</script> "
         "(/etc/shadow line 24)"],
        ["3", "high", "could not evaluate", "crashing_check", "—",
         "Could not evaluate: check explodes failed: ValueError: unexpected byte 0xff in "
         "/etc/shadow"],
        ["4", "moderate", "waived (failed)", "image_read_completely", "files",
         "Collector files could not read everything (/var/log/huge.log): read only the first "
         "1048576 of 2000000 bytes"],
    ]


def test_every_internal_link_resolves_and_levels_link_their_blockers() -> None:
    page = Page(render(demo_report(), "html", required="standard"))
    internal = [h[1:] for h in page.hrefs() if h.startswith("#")]
    assert set(internal) <= page.ids()
    assert {"finding-1", "finding-2", "finding-3", "finding-4"} <= set(internal)
    # the ladder links each level to its row, whose links go to the blocking rules' details
    assert [h for h in internal if h.startswith("level-")] == [
        "level-basic", "level-standard", "level-hardened"]
    blockers = [a.get("href") for tag, a, _ in page.elements
                if tag == "a" and (a.get("href") or "").startswith("#rule-")]
    assert blockers[:3] == ["#rule-password_default", "#rule-crashing_check",
                            "#rule-password_default"]


def test_could_not_evaluate_is_listed_at_the_top() -> None:
    page = Page(render(demo_report(), "html"))
    (box,) = page.text(id="unevaluated")
    assert " ".join(box.split()) == (
        "Could not evaluate (1): no level is granted on what was not evaluated crashing_check "
        "check explodes failed: ValueError: unexpected byte 0xff in /etc/shadow")


def test_counts_per_severity_and_status() -> None:
    page = Page(render(demo_report(), "html"))
    assert [" ".join(t.split()) for t in page.text(**{"class": "stat"})] == [
        "critical 2", "high 1", "moderate 1", "low 0", "info 0",
        "1passed", "2failed", "1could not evaluate", "2not applicable", "1waived",
    ]


def test_hostile_object_and_references_are_escaped_and_never_scripts() -> None:
    text = render(hostile(), "html")
    page = Page(text)
    assert "<script" not in text
    assert "&lt;script&gt;alert(&#34;object&#34;)&lt;/script&gt;" in text
    active = ("script", "iframe", "img", "object")
    assert [tag for tag, _, _ in page.elements if tag in active] == []
    # only http(s) references without spaces become links; the rest stays text
    external = [h for h in page.hrefs() if not h.startswith("#")]
    assert external == ["https://example.org/defaults", "https://example.org/ref"]
    refs = page.text(**{"class": "text refs"})
    assert refs[0] == ("References: javascript:alert(1)https://example.org/a b"
                       "https://example.org/defaultsEGI image policy")


def test_page_loads_nothing() -> None:
    text = render(demo_report(), "html")
    assert "src=" not in text and "<link" not in text and "@import" not in text
    assert "default-src 'none'" in text
