"""Every write endpoint: 401 without a token (or with an unknown one), 403 with a wrong role.
(Campaign queries, which need a token to read, are tested in test_campaign_api.py.)"""

from __future__ import annotations

import httpx
import pytest

from integrations.appdb.catalogue import Catalogue, Principal
from integrations.appdb.db import Token
from tests.appdb.helpers import body, live_server, sha512_of
from tests.builders.reports import make_report

ADMIN = Principal("test", "admin")
REPORT = body(make_report(sha512_of("a"), "basic"))
# (method, path, json body or raw text, roles that may call it besides admin)
WRITES = [
    ("POST", "/api/v1/reports", REPORT, {"auditor"}),
    ("POST", "/api/v1/images/img-a/reports", REPORT, {"auditor"}),
    ("POST", "/api/v1/images/img-a/suspension", {"reason": "test"}, {"operator"}),
    ("DELETE", "/api/v1/images/img-a/suspension", None, {"operator"}),
    ("PUT", "/api/v1/vos/fedcloud", {"min_level": "basic"}, {"operator"}),
    ("POST", "/api/v1/tokens", {"name": "x", "role": "reader"}, set()),
    ("POST", "/api/v1/imagelists", "{}", {"operator"}),
    ("POST", "/api/v1/campaigns", {"name": "c1", "query": {"package": "x"}}, {"operator"}),
    ("POST", "/api/v1/campaigns/saved/c1/runs", None, {"operator"}),
    ("PUT", "/api/v1/sites/site-a/holdings", {"holdings": []}, {"operator"}),
    ("POST", "/api/v1/images/img-a/containment", {"records": []}, {"operator"}),
    # a query, posted because its indicator file is the body: any role may
    ("POST", "/api/v1/campaigns/ioc", "filename\nkworker\n", {"reader", "auditor", "operator"}),
]


def test_write_endpoints_are_in_the_openapi_document(sqlite_catalogue: Catalogue) -> None:
    with live_server(sqlite_catalogue) as url:
        paths = httpx.get(f"{url}/api/v1/openapi.json").json()["paths"]
    writes = {(m.upper(), p) for p, ops in paths.items() for m in ops if m != "get"}
    assert writes == {(m, p.replace("img-a", "{image_id}").replace("fedcloud", "{vo}")
                       .replace("/saved/c1/", "/saved/{campaign}/")
                       .replace("/sites/site-a/", "/sites/{site}/")) for m, p, _, _ in WRITES}


@pytest.mark.parametrize(("method", "path", "payload", "roles"), WRITES,
                         ids=[f"{m} {p}" for m, p, _, _ in WRITES])
def test_write_needs_the_right_role(sqlite_catalogue: Catalogue, method: str, path: str,
                                    payload: object, roles: set[str]) -> None:
    tokens = {role: sqlite_catalogue.create_token(role, role, ADMIN)
              for role in ("reader", "auditor", "operator")}
    with live_server(sqlite_catalogue) as url, httpx.Client(base_url=url) as c:

        def call(headers: dict[str, str]) -> httpx.Response:
            if isinstance(payload, str):
                return c.request(method, path, content=payload, headers=headers)
            return c.request(method, path, json=payload, headers=headers)

        r = call({})
        assert (r.status_code, r.json()) == (401, {"detail": "a valid bearer token is required"})
        assert r.headers["www-authenticate"] == "Bearer"
        assert call({"Authorization": "Bearer not-a-token"}).status_code == 401
        for role, token in tokens.items():
            r = call({"Authorization": f"Bearer {token}"})
            if role in roles:
                assert r.status_code not in (401, 403), (role, r.text)
            else:
                allowed = " or ".join(sorted(roles | {"admin"}))
                assert (r.status_code, r.json()) == (
                    403, {"detail": f"role {role} may not do this; needs {allowed}"})


def test_tokens_are_stored_hashed(sqlite_catalogue: Catalogue) -> None:
    token = sqlite_catalogue.create_token("ci", "auditor", ADMIN)
    with sqlite_catalogue.sessions() as s:
        stored = [t.sha256 for t in s.query(Token).all()]
    assert token not in stored
    assert len(stored) == 1 and len(stored[0]) == 64
    assert sqlite_catalogue.authenticate(token) == Principal("ci", "auditor")


def test_tokens_never_read_as_an_option(sqlite_catalogue: Catalogue) -> None:
    # A random URL-safe token starts with "-" once in 64: `--token -x...` then fails to parse.
    tokens = [sqlite_catalogue.create_token(f"t{i}", "reader", ADMIN) for i in range(200)]
    assert all(t.startswith("iac_") and len(t) == 47 for t in tokens)
    assert len(set(tokens)) == 200


def test_request_size_limit(sqlite_catalogue: Catalogue) -> None:
    token = sqlite_catalogue.create_token("ci", "auditor", ADMIN)
    big = b'{"report_id": "ab", "report": "' + b"x" * (17 * 1024 * 1024) + b'"}'
    with live_server(sqlite_catalogue) as url:
        r = httpx.post(f"{url}/api/v1/reports", content=big, timeout=30,
                       headers={"Authorization": f"Bearer {token}",
                                "Content-Type": "application/json"})
    assert (r.status_code, r.json()) == (413, {"detail": "request body too large"})
