"""OGC API Features items: read (Parts 1–3), downloads, and edits (Part 4)."""

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from portal.api.deps import EngineDep, PrincipalDep, SessionDep, client_ip
from portal.api.ogc.common import (
    GEOJSON,
    HTML,
    JSON,
    link,
    ogc_root,
    url_with,
    wants_html,
)
from portal.api.ogc.downloads import download_items, is_download
from portal.api.ogc.html import render_ogc_html
from portal.api.routes.downloads import etags_in
from portal.core.errors import InvalidInput, PayloadTooLarge
from portal.core.principal import Principal, Role
from portal.geo import edits
from portal.geo.features import ItemsPage, parse_feature_query, read_item, read_items
from portal.geo.ogc_crs import OutputCrs, parse_crs
from portal.geo.registry import LayerSummary, get_layer

router = APIRouter()
ITEMS = "/ogc/collections/{collection_id}/items"
ITEM = "/ogc/collections/{collection_id}/items/{item_id}"
MAX_EDIT_BYTES = 5 * 1024 * 1024
PAGING_PARAMETERS = ("offset", "cursor")


@router.get(ITEMS, summary="Features of a layer (GeoJSON, HTML or a download format)")
async def items(
    collection_id: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    engine: EngineDep,
) -> Response:
    """Return one page of features, filtered by bbox, datetime, properties and CQL2."""
    if wants_html(request):
        return await render_ogc_html(request, principal, "items", collection_id=collection_id)
    params = dict(request.query_params)
    layer = await run_in_threadpool(get_layer, session, principal, collection_id)
    if is_download(params.get("f")):
        return await download_items(engine, layer, params)
    if params.get("f", "json").lower() not in ("json", "geojson"):
        raise InvalidInput(
            f"f={params['f']!r} is not offered; choose json, html, gpkg, shp, kml, csv or xlsx"
        )
    query = parse_feature_query(layer, params)
    page: ItemsPage = await run_in_threadpool(read_items, engine, principal, collection_id, query)
    root = ogc_root(request)
    here = f"{root}/collections/{collection_id}/items"
    links = [
        link(url_with(here, params, f="json"), "self", GEOJSON, "このページ / this page"),
        link(url_with(here, params, f="html"), "alternate", HTML, "HTML"),
        link(f"{root}/collections/{collection_id}", "collection", JSON, layer.title),
    ]
    if page.next_cursor is not None:
        following = {k: v for k, v in params.items() if k not in PAGING_PARAMETERS}
        links.append(
            link(
                url_with(here, following, f="json", cursor=str(page.next_cursor)),
                "next",
                GEOJSON,
                "次のページ / next page",
            )
        )
    tail: dict[str, Any] = {
        "numberReturned": page.number_returned,
        "timeStamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "links": links,
    }
    if page.number_matched is not None:
        tail["numberMatched"] = page.number_matched
    body = b"".join(
        (
            b'{"type":"FeatureCollection","features":[',
            page.features,
            b"],",
            json.dumps(tail, ensure_ascii=False, separators=(",", ":"))[1:].encode(),
        )
    )
    return Response(body, media_type=GEOJSON, headers={"Content-Crs": f"<{query.crs.uri}>"})


@router.get(ITEM, summary="One feature")
async def item(
    collection_id: str,
    item_id: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    engine: EngineDep,
) -> Response:
    """Return one feature with its ETag (304 when `If-None-Match` still holds)."""
    if wants_html(request):
        return await render_ogc_html(
            request, principal, "item", collection_id=collection_id, item_id=item_id
        )
    crs = parse_crs(request.query_params.get("crs"), parameter="crs")
    feature = await run_in_threadpool(
        read_item, engine, principal, collection_id, _fid(item_id), crs=crs
    )
    headers = {"ETag": feature.etag, "Content-Crs": f"<{crs.uri}>"}
    if feature.etag in etags_in(request.headers.get("if-none-match")):
        return Response(status_code=304, headers=headers)
    root = ogc_root(request)
    here = f"{root}/collections/{collection_id}/items/{item_id}"
    links = [
        link(f"{here}?f=json", "self", GEOJSON, "この地物 / this feature"),
        link(f"{here}?f=html", "alternate", HTML, "HTML"),
        link(f"{root}/collections/{collection_id}", "collection", JSON, collection_id),
    ]
    body = feature.json[:-1] + ',"links":' + json.dumps(links, ensure_ascii=False) + "}"
    return Response(body, media_type=GEOJSON, headers=headers)


@router.options(ITEMS, include_in_schema=False)
async def items_options(
    collection_id: str, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Say which methods the caller may use on the items (QGIS offers editing from this)."""
    layer = await run_in_threadpool(get_layer, session, principal, collection_id)
    allowed = ["GET", "HEAD", "OPTIONS"] + (["POST"] if _may_edit(principal, layer) else [])
    return Response(status_code=204, headers={"Allow": ", ".join(allowed)})


@router.options(ITEM, include_in_schema=False)
async def item_options(
    collection_id: str, item_id: str, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Say which methods the caller may use on one feature."""
    layer = await run_in_threadpool(get_layer, session, principal, collection_id)
    _fid(item_id)
    editing = ["PUT", "PATCH", "DELETE"] if _may_edit(principal, layer) else []
    return Response(
        status_code=204, headers={"Allow": ", ".join(["GET", "HEAD", "OPTIONS", *editing])}
    )


@router.post(ITEMS, status_code=201, summary="Add a feature (editors of the owning department)")
async def create_item(
    collection_id: str, request: Request, principal: PrincipalDep, engine: EngineDep
) -> Response:
    """Add a feature; answers 201 with its Location and ETag."""
    feature = await _feature_body(request)
    crs = _content_crs(request)
    result = await run_in_threadpool(
        lambda: edits.create_feature(
            engine,
            principal,
            layer_id=collection_id,
            feature=feature,
            srid=crs.srid,
            lat_first=crs.lat_first,
            ip=client_ip(request),
        )
    )
    location = f"{ogc_root(request)}/collections/{collection_id}/items/{result.fid}"
    return Response(status_code=201, headers={"Location": location, **_etag_header(result)})


@router.put(ITEM, summary="Replace a feature")
async def replace_item(
    collection_id: str, item_id: str, request: Request, principal: PrincipalDep, engine: EngineDep
) -> Response:
    """Replace a feature's geometry and properties (`If-Match` guards against lost updates)."""
    feature = await _feature_body(request)
    crs = _content_crs(request)
    result = await run_in_threadpool(
        lambda: edits.replace_feature(
            engine,
            principal,
            layer_id=collection_id,
            fid=_fid(item_id),
            feature=feature,
            srid=crs.srid,
            lat_first=crs.lat_first,
            if_match=request.headers.get("if-match"),
            ip=client_ip(request),
        )
    )
    return Response(status_code=204, headers=_etag_header(result))


@router.patch(ITEM, summary="Update part of a feature")
async def update_item(
    collection_id: str, item_id: str, request: Request, principal: PrincipalDep, engine: EngineDep
) -> Response:
    """Merge new property values (and optionally a geometry) into a feature."""
    patch = await _feature_body(request, partial=True)
    crs = _content_crs(request)
    result = await run_in_threadpool(
        lambda: edits.update_feature(
            engine,
            principal,
            layer_id=collection_id,
            fid=_fid(item_id),
            patch=patch,
            srid=crs.srid,
            lat_first=crs.lat_first,
            if_match=request.headers.get("if-match"),
            ip=client_ip(request),
        )
    )
    return Response(status_code=204, headers=_etag_header(result))


@router.delete(ITEM, status_code=204, summary="Delete a feature")
async def delete_item(
    collection_id: str, item_id: str, request: Request, principal: PrincipalDep, engine: EngineDep
) -> Response:
    """Delete a feature (its last version stays in the edit history)."""
    await run_in_threadpool(
        lambda: edits.delete_feature(
            engine,
            principal,
            layer_id=collection_id,
            fid=_fid(item_id),
            if_match=request.headers.get("if-match"),
            ip=client_ip(request),
        )
    )
    return Response(status_code=204)


def _content_crs(request: Request) -> OutputCrs:
    """Read the CRS of a sent feature from `Content-Crs` (CRS84 when absent)."""
    value = request.headers.get("content-crs", "").strip("<> ")
    return parse_crs(value or None, parameter="Content-Crs")


def _etag_header(result: edits.EditResult) -> dict[str, str]:
    return {"ETag": result.etag} if result.etag else {}


def _may_edit(principal: Principal, layer: LayerSummary) -> bool:
    return principal.has_role(layer.department_id, Role.editor)


def _fid(item_id: str) -> int:
    if not item_id.isascii() or not item_id.isdigit() or len(item_id) > 18:
        raise InvalidInput(f"feature id {item_id!r} must be a whole number")
    return int(item_id)


async def _feature_body(request: Request, *, partial: bool = False) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_EDIT_BYTES:
        raise PayloadTooLarge(f"a feature may be at most {MAX_EDIT_BYTES // 1024 // 1024} MB")
    raw = await request.body()
    if len(raw) > MAX_EDIT_BYTES:
        raise PayloadTooLarge(f"a feature may be at most {MAX_EDIT_BYTES // 1024 // 1024} MB")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or (not partial and document.get("type") != "Feature"):
        raise InvalidInput('the body must be a GeoJSON Feature: {"type": "Feature", ...}')
    return document
