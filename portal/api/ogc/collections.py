"""OGC API collections: the layers the caller may see, each with its metadata and links."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from portal.api.deps import PrincipalDep, SessionDep, base_url
from portal.api.ogc.common import (
    GEOJSON,
    HTML,
    JSON,
    MVT,
    SCHEMA_JSON,
    json_response,
    link,
    ogc_root,
    wants_html,
)
from portal.api.ogc.html import render_ogc_html
from portal.catalog.records import catalog_collection
from portal.geo.layer_metadata import LayerDataset, datasets_by_layer
from portal.geo.ogc_crs import CRS84, supported_crs_uris
from portal.geo.registry import LayerSummary, get_layer, list_layers
from portal.geo.styles import layer_style

router = APIRouter()
RECORDS_ID = "catalog"


@router.get("/ogc/collections", summary="Collections (layers and the data catalog)")
async def collections(request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    """List the layers `principal` may see (`itemType=record` lists the data catalog)."""
    if wants_html(request):
        return await render_ogc_html(request, principal, "collections")
    root = ogc_root(request)

    def build() -> list[dict[str, Any]]:
        layers = list_layers(session, principal)
        datasets = datasets_by_layer(session, principal)
        described = [describe_layer(root, layer, datasets.get(layer.id)) for layer in layers]
        # GDAL (and so QGIS) opens every listed collection as a layer, whatever its itemType,
        # so the records collection is listed only on request; the landing page links it.
        if request.query_params.get("itemType") == "record":
            return [catalog_collection(session, principal, base_url=base_url(request))]
        return described

    return json_response(
        {
            "links": [
                link(f"{root}/collections?f=json", "self", JSON, "このページ / this document"),
                link(f"{root}/collections?f=html", "alternate", HTML, "HTML"),
            ],
            "collections": await run_in_threadpool(build),
            "crs": supported_crs_uris(),
        }
    )


@router.get("/ogc/collections/{collection_id}", summary="One collection")
async def collection(
    collection_id: str, request: Request, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Describe one layer (404 whether it is missing or hidden from the caller)."""
    if wants_html(request):
        return await render_ogc_html(request, principal, "collection", collection_id=collection_id)
    root = ogc_root(request)

    def build() -> dict[str, Any]:
        if collection_id == RECORDS_ID:
            return catalog_collection(session, principal, base_url=base_url(request))
        layer = get_layer(session, principal, collection_id)
        return describe_layer(root, layer, datasets_by_layer(session, principal).get(layer.id))

    return json_response(await run_in_threadpool(build))


def describe_layer(root: str, layer: LayerSummary, dataset: LayerDataset | None) -> dict[str, Any]:
    """Return the OGC collection document of a layer."""
    here = f"{root}/collections/{layer.id}"
    links = [
        link(f"{here}?f=json", "self", JSON, layer.title),
        link(f"{here}?f=html", "alternate", HTML, layer.title),
        link(f"{here}/items?f=json", "items", GEOJSON, "地物 / features (GeoJSON)"),
        link(f"{here}/items?f=html", "items", HTML, "地物 / features (HTML)"),
        link(
            f"{here}/queryables",
            "http://www.opengis.net/def/rel/ogc/1.0/queryables",
            SCHEMA_JSON,
            "検索可能な属性 / queryables",
        ),
        link(f"{here}/schema", "describedby", SCHEMA_JSON, "スキーマ / schema"),
        link(
            f"{here}/schema",
            "http://www.opengis.net/def/rel/ogc/1.0/schema",
            SCHEMA_JSON,
            "スキーマ / schema",
        ),
    ]
    for fmt, media_type in DOWNLOADS.items():
        links.append(
            link(
                f"{here}/items?f={fmt}&limit=unlimited",
                "enclosure",
                media_type,
                f"ダウンロード / download ({fmt})",
            )
        )
    if layer.is_spatial:
        links.append(
            link(
                f"{here}/tiles",
                "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
                JSON,
                "ベクトルタイル / vector tiles",
            )
        )
        links.append(
            link(
                f"{here}/tiles/WebMercatorQuad/{{tileMatrix}}/{{tileRow}}/{{tileCol}}",
                "item",
                MVT,
                "ベクトルタイル / vector tiles",
                templated=True,
            )
        )
    document: dict[str, Any] = {
        "id": layer.id,
        "title": layer.title,
        "description": f"{layer.department_name} の{layer.title}",
        "itemType": "feature",
        "links": links,
        "crs": supported_crs_uris() if layer.is_spatial else [CRS84],
        "storageCrs": CRS84,
        "keywords": [layer.department_name],
        "featureCount": layer.feature_count,
        "geometryType": layer.geometry_type,
        "department": layer.department_name,
        "visibility": layer.visibility.value,
        "updated": layer.loaded_at.isoformat() if layer.loaded_at else None,
        "style": layer_style(layer),
    }
    if layer.title_en:
        document["title_en"] = layer.title_en
    if layer.bbox:
        document["extent"] = {"spatial": {"bbox": [list(layer.bbox)], "crs": CRS84}}
    if dataset is not None:
        document["license"] = dataset.license_id
        document["attribution"] = dataset.attribution
        document["links"].append(link(dataset.license_url, "license", HTML, dataset.license_title))
        document["links"].append(
            link(
                f"{root.removesuffix('/ogc')}/dataset/{dataset.name}",
                "related",
                HTML,
                dataset.title,
            )
        )
    return document


DOWNLOADS = {
    "geojson": GEOJSON,
    "gpkg": "application/geopackage+sqlite3",
    "shp": "application/zip",
    "kml": "application/vnd.google-earth.kml+xml",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
