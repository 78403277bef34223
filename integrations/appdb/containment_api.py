"""The containment records' routes: a site's agent posts its action log for an image
(operator), readers get an image's records in time order (``containment.py`` stores them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, FastAPI, Query
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from integrations.appdb import API_PREFIX, containment
from integrations.appdb.catalogue import Catalogue
from integrations.appdb.containment import (
    MAX_LISTED,
    ContainmentEntry,
    ContainmentLog,
    ContainmentStored,
)
from integrations.appdb.principal import Principal
from integrations.appdb.schemas import IMAGE_ID_PATTERN

CONTAINMENT_PATH = f"{API_PREFIX}/images/{{image_id}}/containment"
# Paths this route answers on (an image id has no slash), for the body limit of its own.
CONTAINMENT_PATTERN = rf"{API_PREFIX}/images/[^/]+/containment$"
ImageId = Annotated[str, PathParam(pattern=IMAGE_ID_PATTERN)]


def add_containment_routes(app: FastAPI, catalogue: Catalogue, *,
                           operator: Callable[..., Principal],
                           reader: Callable[..., Principal]) -> None:
    """Mount ``POST`` (``operator``'s dependency) and ``GET`` (``reader``'s) of
    ``/images/{image_id}/containment``; ``{image_id}`` is an image id or the SHA-512 of one of
    the catalogue's image versions."""

    @app.post(CONTAINMENT_PATH, response_model=ContainmentStored, status_code=201,
              responses={200: {"model": ContainmentStored}, 401: {}, 403: {}, 404: {},
                         413: {}, 422: {}, 429: {}})
    def post_containment(image_id: ImageId, req: ContainmentLog,
                         who: Principal = Depends(operator)) -> JSONResponse:  # noqa: B008
        # 201 when something was new, 200 when the catalogue had every record already.
        stored = containment.add_records(catalogue, image_id, req.records, who)
        return JSONResponse(stored.model_dump(), status_code=201 if stored.new else 200)

    @app.get(CONTAINMENT_PATH, response_model=list[ContainmentEntry],
             responses={401: {}, 403: {}, 404: {}, 429: {}})
    def get_containment(image_id: ImageId,
                        limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = MAX_LISTED,
                        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
                        who: Principal = Depends(reader)) -> list[ContainmentEntry]:  # noqa: B008
        return containment.records(catalogue, image_id, limit=limit, offset=offset)[1]
