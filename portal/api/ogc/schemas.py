"""Queryables and schemas of layers (OGC API Features Part 3 and `describedby`)."""

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from portal.api.deps import PrincipalDep, SessionDep
from portal.api.ogc.common import SCHEMA_JSON, json_response, ogc_root, wants_html
from portal.api.ogc.html import render_ogc_html
from portal.geo.queryables import layer_schema, queryables
from portal.geo.registry import get_layer

router = APIRouter()


@router.get("/ogc/collections/{collection_id}/queryables", summary="Queryable properties")
async def collection_queryables(
    collection_id: str, request: Request, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Return the JSON Schema of the properties a CQL2 filter may name."""
    if wants_html(request):
        return await render_ogc_html(request, principal, "queryables", collection_id=collection_id)
    layer = await run_in_threadpool(get_layer, session, principal, collection_id)
    document = queryables(layer)
    document["$id"] = f"{ogc_root(request)}/collections/{collection_id}/queryables"
    return json_response(document, media_type=SCHEMA_JSON)


@router.get("/ogc/collections/{collection_id}/schema", summary="Feature schema")
async def collection_schema(
    collection_id: str, request: Request, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Return the JSON Schema of the layer's features."""
    layer = await run_in_threadpool(get_layer, session, principal, collection_id)
    document = layer_schema(layer)
    document["$id"] = f"{ogc_root(request)}/collections/{collection_id}/schema"
    return json_response(document, media_type=SCHEMA_JSON)
