"""Containment records on SQLite and PostgreSQL: a site's action log posted by an operator over
HTTP and read back in time order, sent again (whole, or resumed with more) without a duplicate,
addressed by image id or by SHA-512; records of another image, wrong tokens, malformed and
oversized logs refused, with nothing stored."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from integrations.appdb.catalogue import Catalogue
from integrations.appdb.containment import MAX_RECORDS
from integrations.appdb.db import AuditEntry, ContainmentRecord, utcnow
from integrations.appdb.imagelist import parse_imagelist
from tests.appdb.helpers import ADMIN, image_entry, imagelist, live_server, sha512_of
from tests.appdb.test_campaign_api import auth

OLD, NEW, OTHER = sha512_of("img-a 1.0"), sha512_of("img-a 2.0"), sha512_of("img-b")
PATH = "/api/v1/images/img-a/containment"


def register(cat: Catalogue) -> None:
    """img-a (1.0, then 2.0 current) and img-b."""
    for version, sha in (("1.0", OLD), ("2.0", NEW)):
        data = imagelist([image_entry("img-a", sha, "fedcloud", "A", version),
                          image_entry("img-b", OTHER, "fedcloud", "B")], dn="/CN=e", ca="/CN=c")
        cat.import_imagelist(parse_imagelist(data, ca_dir=None, now=utcnow()), ADMIN)


def step(second: int, action: str, kind: str = "server", result: str = "done", *,
         image: str = "img-a", cloud: str = "site-a", incident: str = "INC-42",
         obj: str = "vm-1", **more: Any) -> dict[str, Any]:
    """One record of an action log, as ``imageaudit cloud contain`` writes it."""
    record: dict[str, Any] = {
        "time": f"2026-12-04T17:03:{second:02d}Z", "cloud": cloud, "incident": incident,
        "image": image, "object": {"kind": kind, "id": obj, "name": f"{obj} name",
                                   "project": "physics"},
        "action": action, "before": {"status": "ACTIVE"}, "after": {"status": "PAUSED"},
        "result": result}
    record.update(more)
    return record


LOG = [step(1, "deactivate", "image", image=NEW, obj="glance-1",
            before={"status": "active", "visibility": "public"},
            after={"status": "deactivated", "visibility": "public"}),
       step(2, "make-private", "image", "already", image=NEW, obj="glance-1"),
       step(3, "snapshot", after={"snapshot": "snap-1"}),
       step(5, "pause", result="failed", reason="Conflict: server vm-1 is locked"),
       step(4, "lock", before={"locked": False}, after={"locked": True})]


def times(entries: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return [(e["time"][-3:-1], e["cloud"], e["action"], e["result"]) for e in entries]


def stored(cat: Catalogue) -> int:
    with cat.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(ContainmentRecord)) or 0)


def test_log_is_stored_once_and_read_in_time_order(catalogue: Catalogue) -> None:
    register(catalogue)
    operator, reader = auth(catalogue, "operator"), auth(catalogue, "reader")
    with live_server(catalogue) as url, httpx.Client(base_url=url, timeout=30) as c:
        r = c.post(PATH, json={"records": LOG}, headers=operator)
        assert (r.status_code, r.json()) == (201, {"image_id": "img-a", "new": 5, "existing": 0})
        # sent again after a network failure: nothing new
        r = c.post(PATH, json={"records": LOG}, headers=operator)
        assert (r.status_code, r.json()) == (200, {"image_id": "img-a", "new": 0, "existing": 5})
        # a resumed run sends its whole log, with its new steps; another site's log by SHA-512
        resumed = [*LOG, step(6, "pause"), step(6, "pause")]
        r = c.post(PATH, json={"records": resumed}, headers=operator)
        assert (r.status_code, r.json()) == (201, {"image_id": "img-a", "new": 1, "existing": 6})
        other_site = [step(2, "stop", "instance", cloud="aws-east", obj="i-0abc", image=OLD,
                           incident="INC-43")]
        r = c.post(f"/api/v1/images/{OLD}/containment", json={"records": other_site},
                   headers=operator)
        assert (r.status_code, r.json()) == (201, {"image_id": "img-a", "new": 1, "existing": 0})

        r = c.get(PATH, headers=reader)
        assert r.status_code == 200
        assert times(r.json()) == [
            ("01", "site-a", "deactivate", "done"), ("02", "site-a", "make-private", "already"),
            ("02", "aws-east", "stop", "done"), ("03", "site-a", "snapshot", "done"),
            ("04", "site-a", "lock", "done"), ("05", "site-a", "pause", "failed"),
            ("06", "site-a", "pause", "done")]
        first, failed = r.json()[0], r.json()[5]
        assert first["received"].endswith("Z")
        assert {k: v for k, v in first.items() if k != "received"} == {
            **LOG[0], "reason": None, "sha512": NEW, "sent_by": "operator",
            "object": {"kind": "image", "id": "glance-1", "name": "glance-1 name",
                       "project": "physics"}}
        assert (failed["reason"], failed["sha512"], failed["image"]) == (
            "Conflict: server vm-1 is locked", None, "img-a")
        assert r.json()[2]["sha512"] == OLD
        # the same records by the image's SHA-512, and paged
        assert c.get(f"/api/v1/images/{NEW}/containment", headers=reader).json() == r.json()
        assert c.get(PATH, params={"limit": 2, "offset": 5}, headers=reader).json() == r.json()[5:]
        assert c.get("/api/v1/images/img-b/containment", headers=reader).json() == []
    assert stored(catalogue) == 7
    with catalogue.sessions() as s:
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "containment.add")
                          .order_by(AuditEntry.id)).all()
    assert [(a.actor, a.object_id, json.loads(a.detail)) for a in audit] == [
        ("operator (operator)", "img-a",
         {"new": 5, "existing": 0, "sites": ["site-a"], "incidents": ["INC-42"]}),
        ("operator (operator)", "img-a",
         {"new": 1, "existing": 6, "sites": ["site-a"], "incidents": ["INC-42"]}),
        ("operator (operator)", "img-a",
         {"new": 1, "existing": 0, "sites": ["aws-east"], "incidents": ["INC-43"]})]


def test_records_of_another_image_and_wrong_tokens_are_refused(catalogue: Catalogue) -> None:
    register(catalogue)
    operator, reader = auth(catalogue, "operator"), auth(catalogue, "reader")
    auditor = auth(catalogue, "auditor")
    log = {"records": LOG}
    with live_server(catalogue) as url, httpx.Client(base_url=url, timeout=30) as c:
        r = c.post(PATH, json=log)
        assert (r.status_code, r.json()) == (401, {"detail": "a valid bearer token is required"})
        for who in (reader, auditor):
            r = c.post(PATH, json=log, headers=who)
            assert r.status_code == 403
            assert r.json()["detail"].endswith("may not do this; needs admin or operator")
        assert c.get(PATH).status_code == 401

        mixed = [*LOG, step(7, "pause", image="img-b"), step(8, "lock", image=OTHER)]
        r = c.post(PATH, json={"records": mixed}, headers=operator)
        assert (r.status_code, r.json()) == (422, {"detail": (
            "records[5] (2026-12-04T17:03:07Z site-a INC-42: pause server vm-1) names image "
            "img-b, not image img-a nor the SHA-512 of one of its versions (and 1 more); no "
            "record was stored")})
        r = c.post(f"/api/v1/images/{OTHER}/containment", json=log, headers=operator)
        assert r.status_code == 422
        assert r.json()["detail"].startswith("records[0] (2026-12-04T17:03:01Z site-a INC-42: "
                                             f"deactivate image glance-1) names image {NEW}, "
                                             "not image img-b nor")
        for missing in ("nope", sha512_of("unregistered")):
            r = c.post(f"/api/v1/images/{missing}/containment", json=log, headers=operator)
            assert (r.status_code, r.json()) == (404, {"detail": (
                f"no image {missing} (neither an image id nor the SHA-512 of a registered image "
                "version)")})
        assert c.get("/api/v1/images/nope/containment", headers=reader).status_code == 404
        assert c.get(PATH, headers=reader).json() == []
    assert stored(catalogue) == 0


DEEP = {"a": {"b": {"c": {"d": {"e": 1}}}}}


def server(ident: str) -> dict[str, str]:
    return {"kind": "server", "id": ident}


MALFORMED: list[tuple[dict[str, Any], str, str]] = [
    (step(1, "pause", color="red"), "records.0.color", "Extra inputs are not permitted"),
    (step(1, "pause", object={"kind": "server", "id": "x", "host": "h"}),
     "records.0.object.host", "Extra inputs are not permitted"),
    (step(1, "pause", "database"), "records.0.object.kind",
     "Input should be 'image', 'server', 'snapshot', 'volume' or 'instance'"),
    (step(1, "pause", result="ok"), "records.0.result",
     "Input should be 'done', 'already', 'failed', 'planned' or 'skipped'"),
    (step(1, "Pause!"), "records.0.action", "String should match pattern"),
    (step(1, "pause", cloud="site a"), "records.0.cloud", "String should match pattern"),
    (step(1, "pause", incident="INC 42"), "records.0.incident", "String should match pattern"),
    (step(1, "pause", incident="I" * 65), "records.0.incident", "String should match pattern"),
    (step(1, "pause", time="2026-12-04 17:03:01"), "records.0.time",
     "String should match pattern"),
    (step(1, "pause", time="2026-13-04T17:03:01Z"), "records.0.time", "does not match format"),
    (step(1, "pause", image="../img-a"), "records.0.image", "String should match pattern"),
    (step(1, "pause", object=server("")), "records.0.object.id", "at least 1 character"),
    (step(1, "pause", object=server("x" * 256)), "records.0.object.id", "at most 255 characters"),
    (step(1, "pause", object=server("vm\x1b[31m-1")), "records.0.object.id",
     "has a control or direction character (U+001B) at character 2"),
    (step(1, "pause", object=server("vm-1\u202egpj.exe")), "records.0.object.id",
     "has a control or direction character (U+202E) at character 4"),
    (step(1, "pause", reason="line one\nline two"), "records.0.reason",
     "has a control or direction character (U+000A) at character 8"),
    (step(1, "pause", reason="r" * 4001), "records.0.reason", "at most 4000 characters"),
    (step(1, "pause", before=DEEP), "records.0.before", "nests deeper than 4 levels (at .a.b.c.d)"),
    (step(1, "pause", before={"log": "x" * 5000}), "records.0.before",
     "is 5010 bytes as JSON; at most 4096"),
    (step(1, "pause", after={"status": "ok\x00"}), "records.0.after",
     ".status has a control or direction character (U+0000) at character 2"),
    (step(1, "pause", after={"st\tatus": "ok"}), "records.0.after",
     "a key at top has a control or direction character (U+0009) at character 2"),
    (step(1, "pause", after=["PAUSED"]), "records.0.after", "Input should be a valid dictionary"),
]


@pytest.mark.parametrize(("record", "where", "message"), MALFORMED,
                         ids=[f"{n}-{m[1]}" for n, m in enumerate(MALFORMED)])
def test_malformed_records_are_refused(sqlite_catalogue: Catalogue, record: dict[str, Any],
                                       where: str, message: str) -> None:
    register(sqlite_catalogue)
    operator = auth(sqlite_catalogue, "operator")
    with live_server(sqlite_catalogue) as url, httpx.Client(base_url=url, timeout=30) as c:
        r = c.post(PATH, json={"records": [LOG[0], record]}, headers=operator)
    assert r.status_code == 422, r.text
    errors = [(".".join(map(str, e["loc"])), e["msg"]) for e in r.json()["detail"]]
    assert len(errors) == 1 and errors[0][0] == where.replace("records.0", "body.records.1")
    assert message in errors[0][1], errors
    assert stored(sqlite_catalogue) == 0


def test_what_json_allows_and_text_cannot_hold_is_refused(catalogue: Catalogue) -> None:
    register(catalogue)
    operator = auth(catalogue, "operator")
    record = json.dumps(LOG[2])
    with live_server(catalogue) as url, httpx.Client(base_url=url, timeout=30) as c:
        def post(text: str) -> httpx.Response:
            return c.post(PATH, content=b'{"records": [' + text.encode() + b"]}",
                          headers={**operator, "Content-Type": "application/json"})

        r = post(record.replace('"snap-1"', '"snap-\\ud800"'))  # a lone surrogate
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == ["body", "records", 0, "after"]
        r = post(record.replace('"snap-1"', "NaN"))
        assert (r.status_code, r.json()["detail"][0]["msg"]) == (
            422, "Value error, .snapshot is not a finite number")
        r = post(record.replace('"vm-1 name"', '"vm-\\u0000"'))
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"] == ["body", "records", 0, "object", "name"]
        assert post(record).status_code == 201
    assert stored(catalogue) == 1


def test_bounds_of_a_post(sqlite_catalogue: Catalogue) -> None:
    """At most MAX_RECORDS records and 8 MB in one post (413 beyond, whether or not the length
    is announced); an empty log is refused too."""
    register(sqlite_catalogue)
    operator = auth(sqlite_catalogue, "operator")
    many = [step(n % 60, "pause", obj=f"vm-{n}") for n in range(MAX_RECORDS + 1)]
    with live_server(sqlite_catalogue) as url, httpx.Client(base_url=url, timeout=120) as c:
        r = c.post(PATH, json={"records": many}, headers=operator)
        assert r.status_code == 422
        assert r.json()["detail"][0]["msg"] == (
            "List should have at most 5000 items after validation, not 5001")
        r = c.post(PATH, json={"records": []}, headers=operator)
        assert r.status_code == 422
        r = c.post(PATH, json={"records": many[:MAX_RECORDS]}, headers=operator)
        assert (r.status_code, r.json()["new"]) == (201, MAX_RECORDS)
        big = b'{"records": [' + b" " * (8 * 1024 * 1024) + b"]}"
        r = c.post(PATH, content=big, headers={**operator, "Content-Type": "application/json"})
        assert (r.status_code, r.json()) == (413, {"detail": "request body too large"})

        def chunks() -> Any:
            yield b'{"records": ['
            for _ in range(9):
                yield b" " * (1024 * 1024)
            yield b"]}"

        r = c.post(PATH, content=chunks(), headers={**operator,
                                                     "Content-Type": "application/json"})
        assert (r.status_code, r.json()) == (413, {"detail": "request body too large"})
    assert stored(sqlite_catalogue) == MAX_RECORDS


def test_one_log_posted_at_once_from_many_agents_is_stored_once(catalogue: Catalogue) -> None:
    """The database decides what is new: of eight posts of the same log at the same moment,
    together they add each record once."""
    register(catalogue)
    operator = auth(catalogue, "operator")
    log = [step(n % 60, "lock", obj=f"vm-{n}") for n in range(200)]
    with live_server(catalogue) as url, httpx.Client(base_url=url, timeout=60) as c, \
            ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: c.post(PATH, json={"records": log}, headers=operator),
                                range(8)))
    assert {r.status_code for r in answers} <= {200, 201}
    assert sum(r.json()["new"] for r in answers) == 200
    assert all(r.json()["new"] + r.json()["existing"] == 200 for r in answers)
    assert stored(catalogue) == 200
