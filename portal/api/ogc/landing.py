"""The OGC API landing page, conformance declaration and OpenAPI document."""

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from portal.api.deps import PrincipalDep, SessionDep, SettingsDep
from portal.api.ogc.common import (
    GEOJSON,
    HTML,
    JSON,
    OPENAPI_JSON,
    json_response,
    link,
    ogc_root,
    wants_html,
)
from portal.api.ogc.conformance import CONFORMS_TO
from portal.api.ogc.html import render_ogc_html
from portal.api.ogc.openapi import openapi_document
from portal.geo.registry import list_layers

router = APIRouter()


@router.get("/ogc", summary="OGC API landing page")
@router.get("/ogc/", include_in_schema=False)
async def landing(request: Request, principal: PrincipalDep, settings: SettingsDep) -> Response:
    """Describe the service and link to its conformance, API document, collections and tiles."""
    if wants_html(request):
        return await render_ogc_html(request, principal, "landing")
    root = ogc_root(request)
    return json_response(
        {
            "title": f"{settings.municipality_name} 統合型GIS OGC API",
            "description": (
                f"{settings.municipality_name} ({settings.municipality_name_en}) の地図レイヤーと"
                "データカタログ: OGC API Features, Tiles, Records"
            ),
            "links": [
                link(f"{root}?f=json", "self", JSON, "このページ / this document"),
                link(f"{root}?f=html", "alternate", HTML, "HTML"),
                link(f"{root}/api", "service-desc", OPENAPI_JSON, "OpenAPI 3.0"),
                link(f"{root}/api?f=html", "service-doc", HTML, "API の説明 / API documentation"),
                link(f"{root}/conformance", "conformance", JSON, "適合クラス / conformance"),
                link(f"{root}/collections", "data", JSON, "コレクション / collections"),
                link(
                    f"{root}/collections",
                    "http://www.opengis.net/def/rel/ogc/1.0/data",
                    JSON,
                    "コレクション / collections",
                ),
                link(
                    f"{root}/tileMatrixSets",
                    "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes",
                    JSON,
                    "タイル行列集合 / tile matrix sets",
                ),
                link(
                    f"{root}/tiles",
                    "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
                    JSON,
                    "全レイヤーのタイル / all layers as tiles",
                ),
                link(
                    f"{root}/collections/catalog",
                    "http://www.opengis.net/def/rel/ogc/1.0/catalog",
                    JSON,
                    "データカタログ / data catalog (OGC API Records)",
                ),
                link(
                    f"{root}/collections/catalog/items",
                    "items",
                    GEOJSON,
                    "データカタログのレコード / catalog records",
                ),
            ],
        }
    )


@router.get("/ogc/conformance", summary="Conformance classes")
async def conformance(request: Request, principal: PrincipalDep) -> Response:
    """List the conformance classes this API implements."""
    if wants_html(request):
        return await render_ogc_html(request, principal, "conformance")
    return json_response({"conformsTo": CONFORMS_TO})


@router.get("/ogc/api", summary="OpenAPI 3.0 document of the OGC APIs")
async def api_document(request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    """Return the self-contained OpenAPI document (no remote references, so it works offline)."""
    layers = await run_in_threadpool(list_layers, session, principal)
    return json_response(openapi_document(ogc_root(request), layers), media_type=OPENAPI_JSON)
