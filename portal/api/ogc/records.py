"""OGC API Records: the data catalog's datasets as records at `/ogc/collections/catalog`."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from portal.api.deps import PrincipalDep, SessionDep, SettingsDep, base_url
from portal.api.ogc.common import GEOJSON, HTML, JSON, json_response, link, url_with, wants_html
from portal.api.ogc.html import render_ogc_html
from portal.catalog.records import get_record, parse_bbox, search_records
from portal.core.errors import InvalidInput
from portal.geo.features import parse_datetime_interval

router = APIRouter()
RECORDS = "/ogc/collections/catalog/items"
DEFAULT_LIMIT = 10


@router.get(RECORDS, summary="Catalog records (datasets)")
async def records(
    request: Request, session: SessionDep, principal: PrincipalDep, settings: SettingsDep
) -> Response:
    """Search the catalog's records by keywords (q), bbox and datetime."""
    if wants_html(request):
        return await render_ogc_html(request, principal, "records")
    params = dict(request.query_params)
    limit = _whole(params.get("limit"), "limit", DEFAULT_LIMIT)
    offset = _whole(params.get("offset"), "offset", 0)
    portal = base_url(request)
    page = await run_in_threadpool(
        lambda: search_records(
            session,
            principal,
            q=params.get("q") or None,
            bbox=parse_bbox(params.get("bbox")),
            datetime_range=parse_datetime_interval(params.get("datetime")),
            limit=limit,
            offset=offset,
            base_url=portal,
            municipality_name=settings.municipality_name,
        )
    )
    here = f"{portal}{RECORDS}"
    links = [
        link(url_with(here, params, f="json"), "self", GEOJSON, "このページ / this page"),
        link(url_with(here, params, f="html"), "alternate", HTML, "HTML"),
        link(f"{portal}/ogc/collections/catalog", "collection", JSON, "データカタログ / catalog"),
    ]
    if offset + page.number_returned < page.number_matched:
        links.append(
            link(
                url_with(here, params, f="json", offset=str(offset + limit)),
                "next",
                GEOJSON,
                "次のページ / next page",
            )
        )
    if offset > 0:
        links.append(
            link(
                url_with(here, params, f="json", offset=str(max(offset - limit, 0))),
                "prev",
                GEOJSON,
                "前のページ / previous page",
            )
        )
    document: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": page.records,
        "numberMatched": page.number_matched,
        "numberReturned": page.number_returned,
        "links": links,
    }
    return json_response(document, media_type=GEOJSON)


@router.get(RECORDS + "/{record_id}", summary="One catalog record")
async def record(
    record_id: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> Response:
    """Return one dataset as a record (404 whether it is missing or hidden)."""
    if wants_html(request):
        return await render_ogc_html(request, principal, "record", item_id=record_id)
    document = await run_in_threadpool(
        lambda: get_record(
            session,
            principal,
            record_id,
            base_url=base_url(request),
            municipality_name=settings.municipality_name,
        )
    )
    return json_response(document, media_type=GEOJSON)


def _whole(text: str | None, name: str, default: int) -> int:
    if text is None or text == "":
        return default
    if not text.isascii() or not text.lstrip("-").isdigit():
        raise InvalidInput(f"{name} must be a whole number; got {text!r}")
    return int(text)
