"""A hostile publisher, endorser or client against a real catalogue server on 127.0.0.1.

The catalogue trusts nothing it is sent: the report id is recomputed, the SHA-512 binding and
the level are checked against the findings, reports must carry a registered auditor's
signature; image lists are validated like the API; served URLs never come from the Host
header; wrong tokens are throttled.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from imageaudit.signing import key_id, report_digest, sign_report
from integrations.appdb.api import Settings
from integrations.appdb.catalogue import Catalogue
from integrations.appdb.db import utcnow
from integrations.appdb.imagelist import ImageListError, parse_imagelist
from integrations.appdb.verify import shipped_levels_file
from tests.appdb.conftest import catalogue, postgres  # noqa: F401  (fixtures)
from tests.appdb.helpers import (
    ADMIN,
    AUDITOR,
    AUDITOR_KEY,
    add_auditor,
    body,
    image_entry,
    imagelist,
    live_server,
    sha512_of,
    store_report,
)
from tests.builders.reports import make_report

SHA = sha512_of("target")
OTHER = sha512_of("other")
VO = "fedcloud"


@pytest.fixture
def served(catalogue: Catalogue) -> Iterator[tuple[Catalogue, httpx.Client, dict[str, str]]]:  # noqa: F811
    """A catalogue with two registered images, the test auditor's key and tokens, served."""
    data = imagelist([image_entry("img-target", SHA, VO, "Target"),
                      image_entry("img-other", OTHER, VO, "Other")], dn="/CN=e", ca="/CN=c")
    catalogue.import_imagelist(parse_imagelist(data, ca_dir=None, now=utcnow()), ADMIN)
    add_auditor(catalogue)
    tokens = {"auditor": catalogue.create_token(AUDITOR, "auditor", ADMIN),
              "mallory": catalogue.create_token("mallory", "auditor", ADMIN),
              "operator": catalogue.create_token("ops", "operator", ADMIN)}
    with live_server(catalogue) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield catalogue, client, tokens


def _post(client: httpx.Client, token: str, doc: dict[str, Any]) -> httpx.Response:
    return client.post("/api/v1/reports", json=doc, headers={"Authorization": f"Bearer {token}"})


def _forged_hardened(sha: str) -> dict[str, Any]:
    """The golden report (level none: password_default FAILs, critical) claiming hardened."""
    report = make_report(sha, "none")
    cert = report["certification"]
    cert["level"] = "hardened"
    for lv in cert["levels"]:
        lv.update(granted=True, blocking=[], unevaluated=[])
    return report


def _listed(client: httpx.Client) -> list[str]:
    doc = client.get(f"/api/v1/vos/{VO}/image.list").json()
    return [e["hv:image"]["dc:identifier"] for e in doc["hv:imagelist"]["hv:images"]]


def test_report_id_is_recomputed(served: tuple[Catalogue, httpx.Client, dict[str, str]]) -> None:
    _, client, tokens = served
    report = make_report(SHA, "basic")
    doc = body(report)
    doc["report_id"] = "ab" * 32
    r = _post(client, tokens["auditor"], doc)
    assert (r.status_code, r.json()) == (422, {"detail": (
        f"report refused: report_id abababababababab... is not the SHA-256 of the canonical "
        f"report ({report_digest(report)[:16]}...)")})
    assert client.get("/api/v1/images/img-target").json()["level"] == "none"


def test_sha512_must_agree_everywhere(
    served: tuple[Catalogue, httpx.Client, dict[str, str]],
) -> None:
    _, client, tokens = served
    report = make_report(SHA, "basic")
    report["image"]["sha512"] = OTHER
    r = _post(client, tokens["auditor"], body(report))
    assert (r.status_code, r.json()) == (422, {"detail": (
        "report refused: image.sha512 differs from certification.image_sha512")})
    report = make_report(SHA, "basic")
    report["certification"]["image_size"] = report["image"]["size"] = 999
    r = _post(client, tokens["auditor"], body(report))
    assert (r.status_code, r.json()) == (422, {"detail": (
        "report refused: the report is for a 999-byte image; the registered version with "
        "this SHA-512 has 4096 bytes")})


def test_forged_level_is_refused_and_not_listed(
    served: tuple[Catalogue, httpx.Client, dict[str, str]],
) -> None:
    _, client, tokens = served
    r = _post(client, tokens["auditor"], body(_forged_hardened(SHA)))
    assert (r.status_code, r.json()) == (422, {"detail": (
        "report refused: level basic does not follow from the findings: not granted "
        "(blocked by password_default)")})
    only_level = _forged_hardened(SHA)
    only_level["certification"]["levels"] = make_report(SHA, "none")["certification"]["levels"]
    r = _post(client, tokens["auditor"], body(only_level))
    assert (r.status_code, r.json()) == (422, {"detail": (
        "report refused: certification.level hardened does not follow from the findings, "
        "which give none")})
    # Hiding the failures in the rule's status is no way round: statuses follow findings.
    hidden = _forged_hardened(SHA)
    for rule in hidden["rules"]:
        if rule["id"] == "password_default":
            rule["status"] = "PASS"
    r = _post(client, tokens["auditor"], body(hidden))
    assert (r.status_code, r.json()) == (422, {"detail": (
        "report refused: rule 'password_default' has status PASS but its findings give FAIL")})
    standing = client.get("/api/v1/images/img-target").json()
    assert (standing["level"], standing["listed"]) == ("none", False)
    assert _listed(client) == []


def test_unknown_levels_definition_is_refused(
    served: tuple[Catalogue, httpx.Client, dict[str, str]],
) -> None:
    _, client, tokens = served
    report = make_report(SHA, "basic")
    report["certification"]["levels_version"] = "sha256:" + "0" * 64
    r = _post(client, tokens["auditor"], body(report))
    assert r.status_code == 422
    assert r.json()["detail"].startswith(
        f"report refused: levels definition sha256:{'0' * 64} is not known to this catalogue "
        "(known: sha256:")


def test_squatting_a_genuine_id_is_impossible(
    served: tuple[Catalogue, httpx.Client, dict[str, str]],
) -> None:
    _, client, tokens = served
    genuine = body(make_report(SHA, "standard"))
    forged = body(_forged_hardened(SHA))
    forged["report_id"] = genuine["report_id"]
    r = _post(client, tokens["auditor"], forged)
    assert r.status_code == 422
    r = _post(client, tokens["auditor"], genuine)
    assert (r.status_code, r.json()) == (201, {
        "report_id": genuine["report_id"], "image_id": "img-target", "level": "standard",
        "listed": True, "signer": AUDITOR})
    assert client.get("/api/v1/images/img-target/report").json() == genuine["report"]
    assert _listed(client) == ["img-target"]


def test_signatures(served: tuple[Catalogue, httpx.Client, dict[str, str]]) -> None:
    cat, client, tokens = served
    report = make_report(SHA, "basic")
    r = _post(client, tokens["auditor"], body(report, key=None))
    assert (r.status_code, r.json()) == (422, {"detail": (
        "report is not signed: the catalogue takes only reports signed by a registered "
        "auditor key (imageaudit publish --signing-key)")})
    stranger = Ed25519PrivateKey.generate()
    r = _post(client, tokens["auditor"], body(report, key=stranger))
    assert (r.status_code, r.json()) == (422, {"detail": (
        f"report signed with key {key_id(stranger.public_key())}, which is not registered "
        "(imageaudit catalogue auditor add)")})
    # A registered key's signature over another report does not carry over.
    doc = body(report)
    doc["signature"] = sign_report(make_report(OTHER, "basic"), AUDITOR_KEY)
    r = _post(client, tokens["auditor"], doc)
    assert (r.status_code, r.json()) == (422, {"detail": (
        "bad signature: the signature does not verify against the report")})
    # Another auditor's token cannot publish what this auditor signed, nor the reverse.
    r = _post(client, tokens["mallory"], body(report))
    assert (r.status_code, r.json()) == (403, {"detail": (
        f"report signed with a key of auditor {AUDITOR}; the token is mallory's")})
    cat.revoke_auditor_key(key_id(AUDITOR_KEY.public_key()), ADMIN)
    r = _post(client, tokens["auditor"], body(report))
    assert (r.status_code, r.json()) == (422, {"detail": (
        f"report signed with key {key_id(AUDITOR_KEY.public_key())}, which is revoked")})
    assert client.get("/api/v1/images/img-target").json()["level"] == "none"


def test_signer_is_recorded_and_shown(
    served: tuple[Catalogue, httpx.Client, dict[str, str]],
) -> None:
    _, client, tokens = served
    doc = body(make_report(SHA, "basic"))
    assert _post(client, tokens["auditor"], doc).status_code == 201
    summary = client.get("/api/v1/images/img-target").json()
    assert (summary["signer"], summary["report_id"]) == (AUDITOR, doc["report_id"])
    page = client.get("/images/img-target").text
    assert f'<td id="signer">{AUDITOR}</td>' in page
    assert client.get("/api/v1/images/img-other").json()["signer"] is None


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("hv:uri", "javascript:alert(1)",
     "image img-x: hv:uri 'javascript:alert(1)' is not an http or https URL"),
    ("hv:uri", "file:///etc/passwd",
     "image img-x: hv:uri 'file:///etc/passwd' is not an http or https URL"),
    ("hv:uri", " JavaScript:alert(1)",
     "image img-x: hv:uri ' JavaScript:alert(1)' is not an http or https URL"),
    ("hv:uri", "https:///no-host", "image img-x: hv:uri 'https:///no-host' is not an http or "
                                   "https URL"),
    ("ad:mpuri", "javascript:alert(1)",
     "image img-x: ad:mpuri 'javascript:alert(1)' is not an http or https URL"),
    ("ad:vo", "bad vo/../x", "image img-x: ad:vo 'bad vo/../x' is not a VO name (letters, "
                             "digits, '.', '_', '-'; up to 63)"),
    ("ad:vo", "-leading", "image img-x: ad:vo '-leading' is not a VO name (letters, digits, "
                          "'.', '_', '-'; up to 63)"),
])
def test_image_list_links_and_vo_names_are_validated(
    served: tuple[Catalogue, httpx.Client, dict[str, str]], field: str, value: str,
    reason: str,
) -> None:
    _, client, tokens = served
    entry = image_entry("img-x", sha512_of("x"), VO, "X")
    entry["hv:image"][field] = value
    r = client.post("/api/v1/imagelists", content=imagelist([entry], dn="/CN=e", ca="/CN=c",
                                                            ident="list-x"),
                    headers={"Authorization": f"Bearer {tokens['operator']}",
                             "Content-Type": "text/plain"})
    assert (r.status_code, r.json()) == (422, {"detail": f"image list refused: {reason}"})
    assert client.get("/api/v1/images/img-x").status_code == 404


def test_image_list_top_level_links_are_validated() -> None:
    doc = json.loads(imagelist([], dn="/CN=e", ca="/CN=c"))
    for key, value in (("hv:uri", "javascript:alert(1)"), ("dc:source", "file:///x")):
        bad = copy.deepcopy(doc)
        bad["hv:imagelist"][key] = value
        with pytest.raises(ImageListError) as refused:
            parse_imagelist(json.dumps(bad).encode(), ca_dir=None, now=utcnow())
        assert str(refused.value) == f"list {key} '{value}' is not an http or https URL"
    free_text = copy.deepcopy(doc)
    free_text["hv:imagelist"]["dc:source"] = "the endorser's build farm"
    assert parse_imagelist(json.dumps(free_text).encode(), ca_dir=None,
                           now=utcnow()).source == "the endorser's build farm"


def test_host_header_never_reaches_served_urls(catalogue: Catalogue) -> None:  # noqa: F811
    data = imagelist([image_entry("img-target", SHA, VO, "Target")], dn="/CN=e", ca="/CN=c")
    catalogue.import_imagelist(parse_imagelist(data, ca_dir=None, now=utcnow()), ADMIN)
    add_auditor(catalogue)
    store_report(catalogue, make_report(SHA, "basic"))
    evil = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    with live_server(catalogue) as url:
        text = httpx.get(f"{url}/api/v1/vos/{VO}/image.list", headers=evil).text
        assert "evil.example" not in text
        top = json.loads(text)["hv:imagelist"]
        assert top["hv:uri"] == f"{url}/api/v1/vos/{VO}/image.list"
        assert top["hv:images"][0]["hv:image"]["ad:mpuri"] == f"{url}/images/img-target"
        assert "evil.example" not in httpx.get(f"{url}/", headers=evil).text
    base = "https://catalogue.example.org/appdb"
    with live_server(catalogue, Settings(base_url=base)) as url:
        top = httpx.get(f"{url}/api/v1/vos/{VO}/image.list", headers=evil).json()["hv:imagelist"]
    assert (top["dc:source"], top["hv:uri"]) == (base, f"{base}/api/v1/vos/{VO}/image.list")


def test_security_headers(served: tuple[Catalogue, httpx.Client, dict[str, str]]) -> None:
    _, client, _ = served
    for path in ("/", "/images/img-target", "/images/nope", "/api/v1/images",
                 f"/api/v1/vos/{VO}/image.list", "/api/v1/health"):
        r = client.get(path)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["x-frame-options"] == "DENY", path
        assert r.headers["content-security-policy"] == (
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"), path
    refused = _post(client, "wrong", {})
    assert refused.headers["x-content-type-options"] == "nosniff"


def test_wrong_tokens_are_throttled_per_address(
    catalogue: Catalogue, caplog: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    good = catalogue.create_token(AUDITOR, "auditor", ADMIN)
    with (caplog.at_level(logging.WARNING, logger="imageaudit.catalogue"),
          live_server(catalogue, Settings(auth_failures=3, auth_window=60)) as url,
          httpx.Client(base_url=url, timeout=30) as client):
        codes = [_post(client, f"guess-{n}", {}).status_code for n in range(3)]
        throttled = _post(client, "guess-3", {})
        still = _post(client, good, {})  # the right token waits out the window too
        reads = client.get("/api/v1/images")
    assert codes == [401, 401, 401]
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["retry-after"]) <= 60
    assert throttled.json() == {"detail": "too many failed authentications from this address; "
                                          f"try again in {throttled.headers['retry-after']} s"}
    assert still.status_code == 429
    assert reads.status_code == 200  # public reads are not throttled
    lines = [r.getMessage() for r in caplog.records if r.name == "imageaudit.catalogue"]
    assert lines == [
        "wrong bearer token from 127.0.0.1: 1 failure(s) in the last 60 s",
        "wrong bearer token from 127.0.0.1: 2 failure(s) in the last 60 s",
        "wrong bearer token from 127.0.0.1: 3 failure(s) in the last 60 s; throttled (429)",
    ]


def test_shipped_levels_are_known(catalogue: Catalogue) -> None:  # noqa: F811
    import hashlib

    digest = "sha256:" + hashlib.sha256(shipped_levels_file().read_bytes()).hexdigest()
    assert list(catalogue.levels) == [digest]
