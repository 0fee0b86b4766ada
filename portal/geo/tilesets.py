"""Tileset metadata and TileJSON documents for layers and for the multi-layer portal tileset."""

import html
from typing import Any

from sqlalchemy.orm import Session

from portal.core.principal import Principal
from portal.geo.registry import LayerSummary
from portal.geo.tile_matrix import (
    CRS84_URI,
    CRS_3857_URI,
    MAX_ZOOM,
    TILING_SCHEME_REL,
    TMS_URI,
    WEB_MERCATOR_QUAD,
    WORLD_BBOX,
    bbox_center,
    tile_matrix_set_limits,
    tile_matrix_set_url,
)
from portal.geo.tiles import MVT_MEDIA_TYPE, spatial_layers, tile_plan

PORTAL_TITLE = "全レイヤー / all layers"
_JSON_TYPE = {
    **dict.fromkeys(("smallint", "integer", "bigint"), "integer"),
    **dict.fromkeys(("real", "double precision", "numeric"), "number"),
    "boolean": "boolean",
}
_JSON_FORMAT = {
    "date": "date",
    **dict.fromkeys(("timestamp", "timestamptz", "timestamp with time zone"), "date-time"),
    "timestamp without time zone": "date-time",
}
_TILEJSON_FIELD = {"integer": "Number", "number": "Number", "boolean": "Boolean"}


def tileset_url(layer: LayerSummary, base_url: str) -> str:
    """Return a layer's WebMercatorQuad tileset URL under the API landing page `base_url`."""
    return f"{base_url.rstrip('/')}/collections/{layer.id}/tiles/{WEB_MERCATOR_QUAD}"


def portal_tileset_url(base_url: str) -> str:
    """Return the URL of the all-layers WebMercatorQuad tileset under `base_url`."""
    return f"{base_url.rstrip('/')}/tiles/{WEB_MERCATOR_QUAD}"


def tileset_metadata(layer: LayerSummary, base_url: str) -> dict[str, Any]:
    """Return a layer's OGC API Tiles tileset metadata (vector, WebMercatorQuad)."""
    collection = {
        "rel": "collection",
        "type": "application/json",
        "title": layer.title,
        "href": f"{base_url.rstrip('/')}/collections/{layer.id}",
    }
    return _tileset(layer.title, tileset_url(layer, base_url), base_url, [layer], [collection])


def portal_tileset(session: Session, principal: Principal, base_url: str) -> dict[str, Any]:
    """Return the tileset metadata of all layers `principal` may see, one tile layer each."""
    layers = spatial_layers(session, principal)
    return _tileset(PORTAL_TITLE, portal_tileset_url(base_url), base_url, layers, [])


def tilejson(layer: LayerSummary, base_url: str) -> dict[str, Any]:
    """Return a layer's TileJSON 3.0.0 document (tile URLs are .../{z}/{y}/{x})."""
    document = _tilejson(layer.title, tileset_url(layer, base_url), [layer])
    document["description"] = layer.title_en or layer.title
    document["attribution"] = html.escape(layer.department_name)
    return document


def portal_tilejson(session: Session, principal: Principal, base_url: str) -> dict[str, Any]:
    """Return the TileJSON 3.0.0 document of all layers `principal` may see."""
    layers = spatial_layers(session, principal)
    return _tilejson(PORTAL_TITLE, portal_tileset_url(base_url), layers)


def _tileset(
    title: str,
    own_url: str,
    base_url: str,
    layers: list[LayerSummary],
    links: list[dict[str, Any]],
) -> dict[str, Any]:
    tms_url = tile_matrix_set_url(base_url)
    document: dict[str, Any] = {
        "title": title,
        "dataType": "vector",
        "crs": CRS_3857_URI,
        "tileMatrixSetURI": TMS_URI,
        # GDAL releases before 3.7 find the tile matrix set only through this member.
        "tileMatrixSetDefinition": tms_url,
        "links": [
            {"rel": "self", "type": "application/json", "title": title, "href": own_url},
            {"rel": TILING_SCHEME_REL, "type": "application/json", "href": tms_url},
            {
                "rel": "item",
                "type": MVT_MEDIA_TYPE,
                "title": f"{title} (Mapbox Vector Tiles)",
                "templated": True,
                "href": f"{own_url}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}?f=mvt",
            },
            *links,
        ],
        "layers": [_tileset_layer(layer) for layer in layers],
    }
    bbox = _union_bbox(layers)
    if bbox:
        lon, lat, zoom = bbox_center(bbox)
        point = {"coordinates": [lon, lat], "tileMatrix": str(zoom), "crs": CRS84_URI}
        document["boundingBox"] = {"lowerLeft": bbox[:2], "upperRight": bbox[2:], "crs": CRS84_URI}
        document["centerPoint"] = point
        document["tileMatrixSetLimits"] = tile_matrix_set_limits(bbox)
    return document


def _tileset_layer(layer: LayerSummary) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name, column_type in tile_plan(layer).properties:
        properties[name] = {"type": _JSON_TYPE.get(column_type, "string")}
        if column_type in _JSON_FORMAT:
            properties[name]["format"] = _JSON_FORMAT[column_type]
    base = (layer.geometry_type or "").removeprefix("Multi")
    return {
        "id": layer.id,
        "title": layer.title,
        "dataType": "vector",
        "geometryType": layer.geometry_type,
        "geometryDimension": {"Point": 0, "LineString": 1, "Polygon": 2}.get(base),
        "minTileMatrix": "0",
        "maxTileMatrix": str(MAX_ZOOM),
        "propertiesSchema": {"type": "object", "properties": properties},
    }


def _tilejson(name: str, own_url: str, layers: list[LayerSummary]) -> dict[str, Any]:
    bounds = _union_bbox(layers) or list(WORLD_BBOX)
    return {
        "tilejson": "3.0.0",
        "name": name,
        "scheme": "xyz",
        "tiles": [f"{own_url}/{{z}}/{{y}}/{{x}}?f=mvt"],
        "minzoom": 0,
        "maxzoom": MAX_ZOOM,
        "bounds": bounds,
        "center": list(bbox_center(bounds)),
        "vector_layers": [
            {
                "id": layer.id,
                "description": layer.title,
                "fields": {
                    name: _TILEJSON_FIELD.get(_JSON_TYPE.get(kind, "string"), "String")
                    for name, kind in tile_plan(layer).properties
                },
                "minzoom": 0,
                "maxzoom": MAX_ZOOM,
            }
            for layer in layers
        ],
    }


def _union_bbox(layers: list[LayerSummary]) -> list[float] | None:
    boxes = [layer.bbox for layer in layers if layer.bbox]
    if not boxes:
        return None
    minx, miny, maxx, maxy = zip(*boxes, strict=True)
    return [min(minx), min(miny), max(maxx), max(maxy)]
