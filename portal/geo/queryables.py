"""Queryables and feature schemas of layers, as JSON Schema (OGC API Features Part 3)."""

from typing import Any

from portal.geo.cql import column_kind
from portal.geo.features import temporal_column
from portal.geo.registry import LayerSummary

JSON_SCHEMA = "https://json-schema.org/draft/2020-12/schema"
GEOMETRY_FORMATS = {
    "Point": "geometry-point",
    "MultiPoint": "geometry-multipoint",
    "LineString": "geometry-linestring",
    "MultiLineString": "geometry-multilinestring",
    "Polygon": "geometry-polygon",
    "MultiPolygon": "geometry-multipolygon",
    "GeometryCollection": "geometry-geometrycollection",
}


def queryables(layer: LayerSummary) -> dict[str, Any]:
    """Return the Part 3 queryables of a layer as JSON Schema; the caller fills in `$id`."""
    properties = {c["name"]: {"title": c["name"], **_json_type(c["type"])} for c in layer.columns}
    if layer.is_spatial:
        properties["geometry"] = {
            "title": "geometry",
            "format": GEOMETRY_FORMATS.get(layer.geometry_type or "", "geometry-any"),
            "x-ogc-role": "primary-geometry",
        }
    return {
        "$schema": JSON_SCHEMA,
        "$id": "",
        "type": "object",
        "title": layer.title,
        "properties": properties,
        "additionalProperties": False,
    }


def layer_schema(layer: LayerSummary) -> dict[str, Any]:
    """Return the JSON Schema of a layer's feature properties (for `describedby`)."""
    document = queryables(layer)
    document["additionalProperties"] = True
    temporal = temporal_column(layer)
    if temporal is not None:
        document["properties"][temporal]["x-ogc-role"] = "primary-instant"
    return document


def _json_type(pg_type: str) -> dict[str, str]:
    name = pg_type.lower().split("(")[0].strip()
    if name in ("smallint", "integer", "bigint", "int2", "int4", "int8", "int"):
        return {"type": "integer"}
    kind = column_kind(name)
    if kind in ("number", "boolean"):
        return {"type": kind}
    formats = {"date": "date", "timestamp": "date-time", "time": "time", "uuid": "uuid"}
    if kind in formats or name in formats:
        return {"type": "string", "format": formats.get(kind, formats.get(name, ""))}
    return {} if name in ("json", "jsonb") else {"type": "string"}
