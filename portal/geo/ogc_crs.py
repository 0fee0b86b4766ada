"""Coordinate reference systems of the OGC APIs: parsing `crs`/`bbox-crs`, axis order, SQL.

Features are stored in EPSG:4326 with x = longitude. A CRS named by an OGC API client uses the
axis order of its definition: EPSG:4326 and EPSG:6668 are latitude first, the JGD2011 plane
rectangular zones (EPSG:6669–6687) are X = northing first, and CRS84, Web Mercator and UTM are
x = easting first.
"""

import re
from dataclasses import dataclass

from psycopg import sql

from portal.core.errors import InvalidInput
from portal.geo.crs import STORAGE_SRID

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/"
GEOGRAPHIC_SRIDS = (4326, 6668)
PLANE_ZONE_SRIDS = tuple(range(6669, 6688))
PROJECTED_SRIDS = (*PLANE_ZONE_SRIDS, 6689, 6690, 3857)
# JGD2011 and WGS 84 coincide well below map precision, so no datum shift is applied.
SAME_AS_STORAGE = frozenset(GEOGRAPHIC_SRIDS)
GEOGRAPHIC_DECIMALS = 8
PROJECTED_DECIMALS = 3

_EPSG = re.compile(
    r"^(?:https?://www\.opengis\.net/def/crs/EPSG/0/|urn:ogc:def:crs:EPSG:[0-9.]*:|EPSG:)(\d{1,6})$",
    re.IGNORECASE,
)
_CRS84 = re.compile(
    r"^(?:https?://www\.opengis\.net/def/crs/OGC/(?:1\.3|0)/|urn:ogc:def:crs:OGC:(?:1\.3)?:|OGC:)?"
    r"CRS84$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class OutputCrs:
    """A CRS the APIs accept: its URI, PostGIS SRID, and whether its first axis is northing."""

    uri: str
    srid: int
    lat_first: bool

    @property
    def is_geographic(self) -> bool:
        """Tell whether coordinates are degrees (CRS84, EPSG:4326, EPSG:6668)."""
        return self.srid in GEOGRAPHIC_SRIDS

    @property
    def decimals(self) -> int:
        """Return the decimals worth writing: about a millimetre in degrees or metres."""
        return GEOGRAPHIC_DECIMALS if self.is_geographic else PROJECTED_DECIMALS


DEFAULT_CRS = OutputCrs(CRS84, STORAGE_SRID, lat_first=False)


def crs_uri(srid: int) -> str:
    """Return the OGC URI of an EPSG code: 4326 -> http://www.opengis.net/def/crs/EPSG/0/4326."""
    return f"{EPSG_URI}{srid}"


def supported_crs_uris() -> list[str]:
    """Return the CRS URIs the APIs accept and answer in, CRS84 first."""
    return [CRS84, *(crs_uri(srid) for srid in (*GEOGRAPHIC_SRIDS, *PROJECTED_SRIDS))]


def crs_for_srid(srid: int) -> OutputCrs:
    """Return the supported CRS of an EPSG code (4326 is the latitude-first EPSG:4326)."""
    if srid not in GEOGRAPHIC_SRIDS and srid not in PROJECTED_SRIDS:
        raise InvalidInput(f"EPSG:{srid} is not supported; use one of: {_supported_list()}")
    lat_first = srid in GEOGRAPHIC_SRIDS or srid in PLANE_ZONE_SRIDS
    return OutputCrs(crs_uri(srid), srid, lat_first)


def parse_crs(value: str | None, *, parameter: str) -> OutputCrs:
    """Parse a CRS given as OGC URI, [EPSG:n] safe CURIE or EPSG:n; None means CRS84."""
    if value is None or not value.strip():
        return DEFAULT_CRS
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1].strip()
    if _CRS84.match(text):
        return DEFAULT_CRS
    match = _EPSG.match(text)
    srid = int(match.group(1)) if match else None
    if srid is None or (srid not in GEOGRAPHIC_SRIDS and srid not in PROJECTED_SRIDS):
        raise InvalidInput(
            f"{parameter} {value!r} is not a supported CRS; use one of: {_supported_list()}"
        )
    return crs_for_srid(srid)


def _supported_list() -> str:
    return ", ".join(supported_crs_uris())


def output_geometry_sql(crs: OutputCrs, geometry: sql.Composable) -> sql.Composable:
    """Return the stored geometry expression in `crs`, with its axes in the CRS's order."""
    if crs.srid not in SAME_AS_STORAGE:
        geometry = sql.SQL("ST_Transform({}, {})").format(geometry, sql.Literal(crs.srid))
    if crs.lat_first:
        geometry = sql.SQL("ST_FlipCoordinates({})").format(geometry)
    return geometry


def to_storage_sql(
    crs: OutputCrs, geometry: sql.Composable, *, segment: float | None = None
) -> sql.Composable:
    """Return a geometry written in `crs` (axes in its order, SRID unset) as EPSG:4326.

    `segment` densifies the edges first, so a rectangle in a projected CRS keeps its shape.
    """
    if crs.lat_first:
        geometry = sql.SQL("ST_FlipCoordinates({})").format(geometry)
    if crs.srid in SAME_AS_STORAGE:
        return sql.SQL("ST_SetSRID({}, {})").format(geometry, sql.Literal(STORAGE_SRID))
    geometry = sql.SQL("ST_SetSRID({}, {})").format(geometry, sql.Literal(crs.srid))
    if segment:
        geometry = sql.SQL("ST_Segmentize({}, {})").format(geometry, sql.Literal(segment))
    return sql.SQL("ST_Transform({}, {})").format(geometry, sql.Literal(STORAGE_SRID))


def envelope_sql(crs: OutputCrs, bbox: tuple[float, float, float, float]) -> sql.Composable:
    """Return a bbox given in `crs` axis order (min1, min2, max1, max2) as an EPSG:4326 polygon."""
    low1, low2, high1, high2 = bbox
    envelope = sql.SQL("ST_MakeEnvelope({}, {}, {}, {})").format(
        *(sql.Literal(float(v)) for v in bbox)
    )
    size = max(high1 - low1, high2 - low2)
    return to_storage_sql(crs, envelope, segment=size / 16 if size > 0 else None)


def bbox_condition_sql(
    geometry: sql.Composable, crs: OutputCrs, bbox: tuple[float, float, float, float]
) -> sql.Composable:
    """Return "geometry intersects the bbox", skipping the exact test for features inside it."""
    envelope = envelope_sql(crs, bbox)
    if not crs.is_geographic:
        return sql.SQL("ST_Intersects({}, {})").format(geometry, envelope)
    # In degrees the envelope is a rectangle: a feature whose box lies within it intersects.
    return sql.SQL("({g} && {e} AND ({g} @ {e} OR ST_Intersects({g}, {e})))").format(
        g=geometry, e=envelope
    )


def check_bbox(crs: OutputCrs, bbox: tuple[float, float, float, float], *, text: str) -> None:
    """Refuse a bbox whose minimum is above its maximum, or beyond the range of degrees."""
    low1, low2, high1, high2 = bbox
    if low1 > high1 or low2 > high2:
        raise InvalidInput(f"bbox {text!r} has a minimum above its maximum; {bbox_order(crs)}")
    if crs.is_geographic:
        lat = (low1, high1) if crs.lat_first else (low2, high2)
        lon = (low2, high2) if crs.lat_first else (low1, high1)
        if not all(-90 <= v <= 90 for v in lat) or not all(-180 <= v <= 180 for v in lon):
            raise InvalidInput(
                f"bbox {text!r} is outside longitudes -180..180 and latitudes -90..90; "
                + bbox_order(crs)
            )


def bbox_order(crs: OutputCrs) -> str:
    """Say in which order a bbox in `crs` lists its numbers."""
    if crs.is_geographic:
        order = "minLat,minLon,maxLat,maxLon" if crs.lat_first else "minLon,minLat,maxLon,maxLat"
    else:
        order = (
            "minNorthing,minEasting,maxNorthing,maxEasting"
            if crs.lat_first
            else "minEasting,minNorthing,maxEasting,maxNorthing"
        )
    return f"in {crs.uri} give {order}"
