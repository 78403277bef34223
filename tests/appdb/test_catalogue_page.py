"""The catalogue's image page on SQLite and PostgreSQL: each image's state told apart (listed,
suspended, below its VO's minimum, could not be audited, never audited, certification
expired), the VO's minimum level, the last scan and the API's own reason; filters by VO, level
and state as query parameters; pages; hostile strings escaped."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from integrations.appdb.api import Settings
from integrations.appdb.catalogue import Catalogue
from integrations.appdb.db import utcnow
from integrations.appdb.imagelist import parse_imagelist
from integrations.appdb.listing import STATES
from tests.appdb.helpers import (
    ADMIN,
    add_auditor,
    image_entry,
    imagelist,
    live_server,
    sha512_of,
    store_report,
)
from tests.builders.reports import make_report

HOSTILE = '<img src=x onerror="alert(1)">'
VOS = {"img-listed": "fedcloud", "img-incomplete": "fedcloud", "img-failed": "fedcloud",
       "img-new": "fedcloud", "img-lapsed": "fedcloud", "img-suspended": "other",
       "img-other": "other", "img-stale": "other"}
ALL = sorted(VOS)
STALE = "2026-01-01T00:00:00Z"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class Node:
    """An element of the parsed page: tag, attributes, children and text."""

    def __init__(self, tag: str, attrs: dict[str, str | None]) -> None:
        self.tag, self.attrs = tag, attrs
        self.children: list[Node] = []
        self.parts: list[str] = []

    @property
    def text(self) -> str:
        return " ".join("".join(self.parts).split())

    def find_all(self, tag: str, **attrs: str) -> list[Node]:
        out = []
        for c in self.children:
            if c.tag == tag and all(c.attrs.get(k.rstrip("_")) == v for k, v in attrs.items()):
                out.append(c)
            out += c.find_all(tag, **attrs)
        return out

    def find(self, tag: str, **attrs: str) -> Node:
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, (tag, attrs, len(found))
        return found[0]


class Page(HTMLParser):
    """The page as a tree (the stdlib parser; the page is the catalogue's own HTML)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        for node in self.stack:
            node.parts.append(data)


def rows(html: str) -> dict[str, dict[str, Any]]:
    """Each image row of the page: its cells as the page shows them."""
    out = {}
    for tr in Page(html).root.find("table", id="images").find_all("tr"):
        if "data-image" not in tr.attrs:
            continue
        state = tr.find("span", class_=f"badge {tr.attrs['data-state']}")
        scanned = tr.find("td", class_="scanned")
        times = scanned.find_all("time")
        out[str(tr.attrs["data-image"])] = {
            "state": (tr.attrs["data-state"], state.attrs["data-state"], state.text),
            "level": tr.find_all("td")[4].text,
            "state cell": tr.find_all("td")[5].text,
            "vo": tr.find_all("td")[2].text,
            "reason": tr.find_all("td")[6].text or None,
            "scanned": (times[0].attrs["datetime"], times[0].text) if times else scanned.text,
        }
    return out


def shown(html: str) -> list[str]:
    return list(rows(html))


def populate(cat: Catalogue) -> dict[str, str]:
    """The eight images (see VOS), fedcloud's minimum raised to standard; when each image's
    newest report was issued."""
    images = [image_entry(ident, sha512_of(ident), vo,
                          "Other " + HOSTILE if ident == "img-other" else ident.title())
              for ident, vo in VOS.items()]
    images[-1]["hv:image"]["dc:date:expires"] = STALE  # img-stale: its entry has expired
    data = imagelist(images, dn="/CN=e", ca="/CN=c")
    cat.import_imagelist(parse_imagelist(data, ca_dir=None, now=utcnow()), ADMIN)
    cat.set_vo("fedcloud", "standard", ADMIN)
    add_auditor(cat)
    issued = {}
    for ident, level, age in (("img-listed", "standard", timedelta(minutes=-3)),
                              ("img-incomplete", "basic", timedelta(hours=-5)),
                              ("img-failed", "none", timedelta(days=-2)),
                              ("img-suspended", "basic", timedelta(minutes=-1)),
                              ("img-other", "basic", timedelta(minutes=-1)),
                              ("img-stale", "basic", timedelta(minutes=-1))):
        report = make_report(sha512_of(ident), level, issued=age)
        store_report(cat, report)
        issued[ident] = report["certification"]["issued"]
    lapsed = make_report(sha512_of("img-lapsed"), "standard", issued=timedelta(days=-40),
                         expires=timedelta(days=-10))
    store_report(cat, lapsed)
    issued["img-lapsed"] = lapsed["certification"]["issued"]
    cat.suspend("img-suspended", "root password " + HOSTILE, ADMIN)
    return issued


def test_each_state_its_level_minimum_reason_and_last_scan(catalogue: Catalogue) -> None:
    issued = populate(catalogue)
    with live_server(catalogue) as url, httpx.Client(base_url=url, timeout=30) as c:
        page = c.get("/")
        api = {x["image_id"]: x["unlisted_reason"] for x in c.get("/api/v1/images").json()}
    assert page.status_code == 200
    got = rows(page.text)
    assert {k: (v["state"], v["level"], v["vo"]) for k, v in got.items()} == {
        "img-failed": (("below-minimum",) * 2 + ("below the VO's minimum",), "none",
                       "fedcloud (minimum standard)"),
        "img-incomplete": (("incomplete",) * 2 + ("could not be audited",), "basic",
                           "fedcloud (minimum standard)"),
        "img-lapsed": (("certification-expired",) * 2 + ("certification expired",), "no level",
                       "fedcloud (minimum standard)"),
        "img-listed": (("listed",) * 2 + ("listed",), "standard", "fedcloud (minimum standard)"),
        "img-new": (("never-audited",) * 2 + ("never audited",), "no level",
                    "fedcloud (minimum standard)"),
        "img-other": (("listed",) * 2 + ("listed",), "basic", "other (minimum basic)"),
        "img-suspended": (("suspended",) * 2 + ("suspended",), "basic", "other (minimum basic)"),
        "img-stale": (("unlisted",) * 2 + ("not listed",), "basic", "other (minimum basic)"),
    }
    # An audit that could not evaluate what the minimum needs names those rules.
    assert {k: v["state cell"] for k, v in got.items() if v["state cell"] != v["state"][2]} \
        == {"img-incomplete": "could not be audited not evaluated: crashing_check"}
    # The page's reason is the API's, word for word (hostile text included).
    assert {k: v["reason"] for k, v in got.items()} == api
    assert api["img-new"] == "it has no report"
    assert api["img-incomplete"] == "level basic does not reach VO fedcloud's minimum standard"
    assert api["img-suspended"] == "suspended: root password " + HOSTILE
    assert api["img-stale"] == f"its image list entry expired at {STALE}"
    # Last scanned: the newest report's issue time, also when it has expired since.
    assert got["img-new"]["scanned"] == "never"
    assert {k: v["scanned"][0] for k, v in got.items() if k != "img-new"} == issued
    assert re.fullmatch(r"[34] minutes ago", got["img-listed"]["scanned"][1])
    assert got["img-incomplete"]["scanned"][1] == "5 hours ago"
    assert got["img-failed"]["scanned"][1] == "2 days ago"
    assert got["img-lapsed"]["scanned"][1] == "40 days ago"
    # The VOs and their minimum levels, each a link to its images.
    vos = Page(page.text).root.find("details", id="vos")
    assert [(tr.attrs["data-vo"], tr.find("a").attrs["href"], tr.find_all("td")[1].text,
             tr.find_all("td")[2].text) for tr in vos.find_all("tr") if "data-vo" in tr.attrs] \
        == [("fedcloud", "/?vo=fedcloud", "standard", "5"), ("other", "/?vo=other", "basic", "3")]
    # Image strings are text, never markup.
    assert "<img" not in page.text
    assert "Other &lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page.text
    assert got["img-other"]["reason"] is None


def test_filters_by_vo_level_and_state(catalogue: Catalogue) -> None:
    populate(catalogue)
    with live_server(catalogue) as url, httpx.Client(base_url=url, timeout=30) as c:
        def get(**params: str) -> list[str]:
            r = c.get("/", params=params)
            assert r.status_code == 200, r.text
            return shown(r.text)

        assert get() == ALL
        assert get(vo="other") == ["img-other", "img-stale", "img-suspended"]
        assert get(state="unlisted") == ["img-stale"]
        assert get(level="none") == ["img-failed"]
        assert get(level="basic") == ["img-incomplete", "img-other", "img-stale",
                                      "img-suspended"]
        assert get(level="hardened") == []
        assert get(state="never-audited") == ["img-new"]
        assert get(state="incomplete") == ["img-incomplete"]
        assert get(state="certification-expired") == ["img-lapsed"]
        assert get(state="below-minimum", vo="fedcloud") == ["img-failed"]
        assert get(state="listed") == ["img-listed", "img-other"]
        assert get(vo="other", state="listed", level="basic") == ["img-other"]
        assert get(vo="fedcloud", q="lapsed") == ["img-lapsed"]
        assert get(vo="nosuchvo") == []

        page = c.get("/", params={"vo": "other", "state": "listed"})
        doc = Page(page.text).root
        # the form shows the filters it applied, and offers every state
        assert [o.attrs.get("value") for o in doc.find("select", id="vo").find_all("option")
                if "selected" in o.attrs] == ["other"]
        assert [o.attrs.get("value") for o in doc.find("select", id="state").find_all("option")
                if "selected" in o.attrs] == ["listed"]
        assert [o.attrs.get("value") for o in doc.find("select", id="state").find_all(
            "option")] == ["", *STATES]
        assert [o.attrs.get("value") for o in doc.find("select", id="level").find_all(
            "option")] == ["", "none", "basic", "standard", "hardened"]
        assert doc.find("p", id="count").text == "1 image(s) match; 1–1 shown."
        # a row's VO link keeps the other filters: a link to share
        row = doc.find("tr", **{"data-image": "img-other"})
        assert row.find_all("td")[2].find("a").attrs["href"] == "/?vo=other&state=listed"

        bad = c.get("/", params={"state": "failed"})
        assert bad.status_code == 400
        assert Page(bad.text).root.find("p", id="error").text == (
            "no state 'failed' (states: " + ", ".join(STATES) + ")")
        hostile = c.get("/", params={"level": HOSTILE, "q": "<script>x</script>"})
        assert hostile.status_code == 400
        assert "<img" not in hostile.text and "<script>" not in hostile.text
        doc = Page(hostile.text).root
        assert doc.find("input", name="q").attrs["value"] == "<script>x</script>"
        assert doc.find("p", id="error").text.startswith(f"no level '{HOSTILE}' (levels: none")


def next_link(html: str) -> str | None:
    found = Page(html).root.find_all("a", rel="next")
    return found[0].attrs["href"] if found else None


def test_pages_follow_the_filters(sqlite_catalogue: Catalogue) -> None:
    populate(sqlite_catalogue)
    with live_server(sqlite_catalogue, Settings(page_size=2)) as url, \
            httpx.Client(base_url=url, timeout=30) as c:
        seen, link, links = [], "/", []
        while link is not None:
            links.append(link)
            html = c.get(link).text
            seen.append(shown(html))
            link = next_link(html)
        assert links == ["/", "/?offset=2", "/?offset=4", "/?offset=6"]
        assert seen == [ALL[0:2], ALL[2:4], ALL[4:6], ALL[6:8]]

        first = c.get("/?level=basic").text
        assert shown(first) == ["img-incomplete", "img-other"]
        assert Page(first).root.find("p", id="count").text == "4 image(s) match; 1–2 shown."
        assert next_link(first) == "/?level=basic&offset=2"
        second = c.get("/?level=basic&offset=2").text
        assert shown(second) == ["img-stale", "img-suspended"]
        assert next_link(second) is None
        assert Page(second).root.find("a", rel="prev").attrs["href"] == "/?level=basic"
        assert Page(second).root.find("p", id="count").text == "4 image(s) match; 3–4 shown."


@pytest.mark.parametrize(("image", "state", "label", "level", "scanned"), [
    ("img-new", "never-audited", "never audited", "no level", "never"),
    ("img-incomplete", "incomplete", "could not be audited", "basic", "5 hours ago"),
])
def test_image_page_says_the_same(sqlite_catalogue: Catalogue, image: str, state: str,
                                  label: str, level: str, scanned: str) -> None:
    populate(sqlite_catalogue)
    with live_server(sqlite_catalogue) as url, httpx.Client(base_url=url, timeout=30) as c:
        page = c.get(f"/images/{image}")
        reason = c.get(f"/api/v1/images/{image}").json()["unlisted_reason"]
    assert page.status_code == 200
    doc = Page(page.text).root
    assert doc.find("span", class_=f"badge {state}").text == label
    assert [x.text for x in doc.find_all("span") if "data-level" in x.attrs] == [level]
    assert doc.find("span", id="unlisted-reason").text == reason
    assert doc.find("td", class_="scanned").text == scanned
    assert doc.find("span", class_="minimum").text == "(minimum standard)"
