"""Check an incoming GeoJSON Feature against a layer: its geometry type, geometry and columns."""

import json
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from pyproj import CRS
from pyproj.exceptions import CRSError

from portal.core.errors import InvalidInput, PayloadTooLarge
from portal.geo.registry import LayerSummary

MAX_VERTICES = 100_000
STORAGE_SRID = 4326
AREA_MARGIN_DEGREES = 1.0
GEOMETRY_TYPES = {
    "Point": 0,
    "MultiPoint": 1,
    "LineString": 1,
    "MultiLineString": 2,
    "Polygon": 2,
    "MultiPolygon": 3,
}
INTEGER_BITS = {"smallint": 16, "int2": 16, "integer": 32, "int4": 32, "int": 32}
INTEGER_BITS |= {"bigint": 64, "int8": 64}
FLOAT_TYPES = {"double precision", "float8", "real", "float4", "numeric", "decimal"}
TEXT_TYPES = {"text", "character varying", "varchar", "character", "char", "bpchar"}


@dataclass(frozen=True)
class FeatureInput:
    """A Feature checked against a layer: column values ready for psycopg, and its geometry.

    `geometry` is a GeoJSON geometry (or None for no location); `has_geometry` says whether
    the body said anything about the geometry, which matters for a partial update.
    """

    values: dict[str, Any]
    geometry: dict[str, Any] | None
    has_geometry: bool


@dataclass(frozen=True)
class PreparedGeometry:
    """A geometry in EPSG:4326 (x = longitude) as EWKB, with its bounds."""

    ewkb: bytes
    bbox: tuple[float, float, float, float]


def parse_feature(
    layer: LayerSummary, body: object, *, fid: int | None = None, partial: bool = False
) -> FeatureInput:
    """Check a Feature (or, with `partial`, a merge patch of one) against a layer's columns.

    `fid` is the feature named in the URL: an `id` in the body must then match it.
    """
    if not isinstance(body, dict):
        raise InvalidInput(f"the body must be a GeoJSON Feature object; got {_kind(body)}")
    kind = body.get("type")
    if kind != "Feature" and not (partial and kind is None):
        raise InvalidInput(f'the body must be a GeoJSON Feature ("type": "Feature"); got {kind!r}')
    properties = body.get("properties", {} if partial else None)
    if properties is not None and not isinstance(properties, dict):
        raise InvalidInput(f'"properties" must be an object or null; got {_kind(properties)}')
    properties = dict(properties or {})
    for given in (body.get("id"), properties.pop("fid", None)):
        _check_id(given, fid)
    columns = {column["name"]: column["type"] for column in layer.columns}
    if partial and body.get("properties", {}) is None:
        values: dict[str, Any] = dict.fromkeys(columns)
    elif partial:
        values = {}
    else:
        values = dict.fromkeys(columns)
    for name, value in properties.items():
        if name not in columns:
            known = ", ".join(columns) or "(none)"
            raise InvalidInput(f"unknown property {name!r}; the layer's properties are: {known}")
        values[name] = coerce_value(name, columns[name], value)
    has_geometry = "geometry" in body or not partial
    geometry = body.get("geometry")
    if geometry is not None:
        geometry = check_geometry(geometry)
    return FeatureInput(values, geometry, has_geometry)


def coerce_value(name: str, sql_type: str, value: Any) -> Any:
    """Turn a JSON value into the Python value psycopg writes to a column of `sql_type`."""
    kind = re.sub(r"\(.*\)", "", sql_type).strip().lower()
    if value is None:
        return None
    if kind in INTEGER_BITS:
        return _integer(name, value, INTEGER_BITS[kind])
    if kind in FLOAT_TYPES:
        if not _finite(value):
            raise InvalidInput(f"property {name!r} must be a number; got {_shown(value)}")
        return Decimal(str(value)) if kind in {"numeric", "decimal"} else float(value)
    if kind in {"boolean", "bool"}:
        if not isinstance(value, bool):
            raise InvalidInput(f"property {name!r} must be true or false; got {_shown(value)}")
        return value
    if kind in {"jsonb", "json"}:
        return Jsonb(value)
    if not isinstance(value, str):
        expected = "text" if kind in TEXT_TYPES else f"a string holding a {kind} value"
        raise InvalidInput(f"property {name!r} must be {expected}; got {_shown(value)}")
    if "\x00" in value:
        raise InvalidInput(f"property {name!r} contains a NUL character, which text cannot hold")
    if kind == "date":
        return _parsed(name, value, date.fromisoformat, "a date such as 2024-04-01")
    if kind in {"timestamptz", "timestamp with time zone"}:
        moment = _parsed(name, value, datetime.fromisoformat, _WITH_OFFSET)
        if moment.tzinfo is None:
            raise InvalidInput(f"property {name!r} must be {_WITH_OFFSET}; got {_shown(value)}")
        return moment
    if kind in {"timestamp", "timestamp without time zone"}:
        moment = _parsed(name, value, datetime.fromisoformat, _WITHOUT_OFFSET)
        if moment.tzinfo is not None:
            raise InvalidInput(f"property {name!r} must be {_WITHOUT_OFFSET}; got {_shown(value)}")
        return moment
    if kind in {"time", "time without time zone"}:
        return _parsed(name, value, time.fromisoformat, "a time such as 09:30:00")
    return value


def check_geometry(geometry: object) -> dict[str, Any]:
    """Check a GeoJSON geometry's structure and size; return it without foreign members."""
    count = _check_geometry(geometry, depth=0)
    if count > MAX_VERTICES:
        raise PayloadTooLarge(
            f"the geometry has {count:,} vertices; at most {MAX_VERTICES:,} are accepted "
            "in one feature"
        )
    assert isinstance(geometry, dict)
    return _core(geometry)


def store_as_multi(layer: LayerSummary, geometry_type: str) -> bool:
    """Tell whether a geometry must be promoted to Multi to fit the layer; refuse a misfit."""
    held = layer.geometry_type
    if held in (None, "Geometry") or held == geometry_type:
        return False
    if held == "Multi" + geometry_type:
        return True
    raise InvalidInput(f"layer {layer.id!r} holds {held} geometries; got {geometry_type}")


def prepare_geometry(
    cursor: psycopg.Cursor[Any],
    geometry: dict[str, Any],
    *,
    srid: int,
    lat_first: bool,
    multi: bool,
) -> PreparedGeometry:
    """Validate a checked geometry in PostGIS and return it in EPSG:4326 as EWKB."""
    geographic, area = crs_facts(srid)
    label = "CRS84" if srid == STORAGE_SRID and not lat_first else f"EPSG:{srid}"
    if geographic:
        _check_globe(geometry, lat_first, label)
    stored: sql.Composable = sql.SQL("raw")
    if lat_first:
        stored = sql.SQL("ST_FlipCoordinates({})").format(stored)
    stored = sql.SQL("ST_SetSRID({}, %(srid)s)").format(stored)
    if srid != STORAGE_SRID:
        stored = sql.SQL("ST_Transform({}, {})").format(stored, sql.Literal(STORAGE_SRID))
    if multi:
        stored = sql.SQL("ST_Multi({})").format(stored)
    statement = sql.SQL(
        "SELECT ST_IsValidReason(raw), ST_AsEWKB(stored), ST_XMin(stored), ST_YMin(stored), "
        "ST_XMax(stored), ST_YMax(stored) FROM (SELECT raw, {} AS stored FROM "
        "(SELECT ST_Force2D(ST_GeomFromGeoJSON(%(geojson)s)) AS raw) AS parsed) AS prepared"
    ).format(stored)
    try:
        with cursor.connection.transaction():
            cursor.execute(statement, {"srid": srid, "geojson": json.dumps(geometry)})
            row = cursor.fetchone()
    except (psycopg.DataError, psycopg.InternalError) as exc:
        raise InvalidInput(
            f"the geometry cannot be read as {label} coordinates ({_reason(exc)}); "
            "check the CRS and the axis order"
        ) from exc
    assert row is not None
    reason, ewkb, *bounds = row
    if reason != "Valid Geometry":
        raise InvalidInput(
            f"the geometry is invalid ({reason}); repair it (for example with QGIS's "
            "Fix Geometries) and send it again"
        )
    west, south, east, north = area
    if not (
        all(math.isfinite(b) for b in bounds)
        and west - AREA_MARGIN_DEGREES <= bounds[0] <= bounds[2] <= east + AREA_MARGIN_DEGREES
        and south - AREA_MARGIN_DEGREES <= bounds[1] <= bounds[3] <= north + AREA_MARGIN_DEGREES
    ):
        raise InvalidInput(
            f"the geometry lies outside the area {label} is defined for (longitude "
            f"{west:g}..{east:g}, latitude {south:g}..{north:g}); check the CRS and the axis order"
        )
    return PreparedGeometry(bytes(ewkb), (bounds[0], bounds[1], bounds[2], bounds[3]))


@lru_cache(maxsize=64)
def crs_facts(srid: int) -> tuple[bool, tuple[float, float, float, float]]:
    """Return whether an EPSG CRS is geographic, and its area of use in degrees."""
    try:
        crs = CRS.from_epsg(srid)
    except CRSError as exc:
        raise InvalidInput(f"EPSG:{srid} is not a coordinate reference system") from exc
    area = crs.area_of_use
    bounds = area.bounds if area is not None else (-180.0, -90.0, 180.0, 90.0)
    return crs.is_geographic, bounds


_WITH_OFFSET = "a date and time with a UTC offset such as 2024-04-01T09:00:00+09:00"
_WITHOUT_OFFSET = "a date and time without a UTC offset such as 2024-04-01T09:00:00"


def _reason(exc: psycopg.Error) -> str:
    primary = exc.diag.message_primary
    return primary or str(exc).splitlines()[0]


def _check_id(given: object, fid: int | None) -> None:
    if given is None or fid is None or str(given) == str(fid):
        return
    raise InvalidInput(
        f"the body names feature {_shown(given)} but the URL names feature {fid}; "
        "leave the id out or make them match"
    )


def _integer(name: str, value: Any, bits: int) -> int:
    if _finite(value) and value == int(value):
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        if low <= int(value) <= high:
            return int(value)
        raise InvalidInput(
            f"property {name!r} must be a whole number from {low} to {high}; got {_shown(value)}"
        )
    raise InvalidInput(f"property {name!r} must be a whole number; got {_shown(value)}")


def _parsed(name: str, value: str, parse: Any, expected: str) -> Any:
    try:
        return parse(value)
    except ValueError as exc:
        raise InvalidInput(f"property {name!r} must be {expected}; got {_shown(value)}") from exc


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite(value: object) -> bool:
    """Tell whether a value is a JSON number that fits a double (huge integers do not)."""
    if not _is_number(value):
        return False
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except OverflowError:
        return False


def _shown(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _kind(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if _is_number(value) else type(value).__name__)


def _check_geometry(geometry: object, depth: int) -> int:
    """Check one geometry's structure; return how many positions it has."""
    if not isinstance(geometry, dict):
        raise InvalidInput(f'"geometry" must be a GeoJSON geometry object; got {_kind(geometry)}')
    kind = geometry.get("type")
    if kind == "GeometryCollection" and depth == 0:
        members = geometry.get("geometries")
        if not isinstance(members, list) or not members:
            raise InvalidInput('a GeometryCollection needs a non-empty "geometries" array')
        return sum(_check_geometry(member, depth + 1) for member in members)
    if kind not in GEOMETRY_TYPES:
        known = ", ".join(GEOMETRY_TYPES) + ("" if depth else ", GeometryCollection")
        raise InvalidInput(f"unknown geometry type {_shown(kind)}; use one of {known}")
    positions = _positions(geometry.get("coordinates"), GEOMETRY_TYPES[kind], kind)
    if not positions:
        raise InvalidInput(
            f'the {kind} is empty; send "geometry": null for a feature without a location'
        )
    return positions


def _positions(coordinates: object, depth: int, kind: str) -> int:
    if depth == 0:
        _check_position(coordinates)
        return 1
    if not isinstance(coordinates, list):
        raise InvalidInput(f"the {kind}'s coordinates must be nested arrays of positions")
    if kind in ("LineString", "MultiLineString") and depth == 1 and len(coordinates) < 2:
        raise InvalidInput(f"every line of a {kind} needs at least 2 positions")
    if kind in ("Polygon", "MultiPolygon") and depth == 1:
        if len(coordinates) < 4 or coordinates[0] != coordinates[-1]:
            raise InvalidInput(
                f"every ring of a {kind} needs at least 4 positions and must end where it starts"
            )
    return sum(_positions(item, depth - 1, kind) for item in coordinates)


def _check_position(position: object) -> None:
    if not isinstance(position, list) or len(position) not in (2, 3):
        raise InvalidInput(f"a position must be an array of 2 or 3 numbers; got {_shown(position)}")
    for number in position:
        if not _finite(number):
            raise InvalidInput(f"coordinates must be finite numbers; got {_shown(position)}")


def _core(geometry: dict[str, Any]) -> dict[str, Any]:
    if geometry["type"] == "GeometryCollection":
        return {
            "type": "GeometryCollection",
            "geometries": [_core(g) for g in geometry["geometries"]],
        }
    return {"type": geometry["type"], "coordinates": geometry["coordinates"]}


def _check_globe(geometry: dict[str, Any], lat_first: bool, label: str) -> None:
    for x, y in _each_position(geometry):
        lon, lat = (y, x) if lat_first else (x, y)
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            order = "latitude, longitude" if lat_first else "longitude, latitude"
            raise InvalidInput(
                f"position {_shown([x, y])} is off the globe: {label} coordinates are sent as "
                f"{order} (longitude -180..180, latitude -90..90)"
            )


def _each_position(geometry: dict[str, Any]) -> Any:
    if geometry["type"] == "GeometryCollection":
        for member in geometry["geometries"]:
            yield from _each_position(member)
        return
    stack = [geometry["coordinates"]]
    while stack:
        item = stack.pop()
        if item and not isinstance(item[0], list):
            yield item[0], item[1]
        else:
            stack.extend(item)
