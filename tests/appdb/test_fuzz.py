"""The API fuzzed from its own OpenAPI document with schemathesis: never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from integrations.appdb.catalogue import Catalogue, Principal
from integrations.appdb.db import utcnow
from integrations.appdb.imagelist import parse_imagelist
from tests.appdb.helpers import image_entry, imagelist, live_server, sha512_of

ADMIN = Principal("test", "admin")
# FastAPI emits OpenAPI 3.1, which schemathesis 3 supports behind this switch.
schemathesis.experimental.OPEN_API_3_1.enable()
_state: dict[str, str] = {}


@pytest.fixture
def api_schema(sqlite_catalogue: Catalogue) -> Iterator[Any]:
    data = imagelist([image_entry("img-a", sha512_of("a"), "fedcloud", "A")], dn="/CN=e",
                     ca="/CN=c")
    sqlite_catalogue.import_imagelist(parse_imagelist(data, ca_dir=None, now=utcnow()), ADMIN)
    _state["token"] = sqlite_catalogue.create_token("fuzz", "admin", ADMIN)
    with live_server(sqlite_catalogue) as url:
        yield schemathesis.from_uri(f"{url}/api/v1/openapi.json", base_url=url)


schema = schemathesis.from_pytest_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: Any) -> None:
    response = case.call(headers={"Authorization": f"Bearer {_state['token']}"}, timeout=30)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
