"""The WebMercatorQuad tile matrix set (OGC 2D Tile Matrix Set 2.0) and tile addressing."""

import math
import re
from dataclasses import dataclass
from typing import Any

from portal.core.errors import InvalidInput, NotFound

WEB_MERCATOR_QUAD = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
CRS_3857_URI = "http://www.opengis.net/def/crs/EPSG/0/3857"
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
TILING_SCHEME_REL = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"

TMS_MAX_ZOOM = 24
MAX_ZOOM = 22
WORLD_BBOX = (-180.0, -85.0511287798066, 180.0, 85.0511287798066)
HALF_WORLD = 20037508.342789244
TILE_SIZE = 256
_PIXEL_METRES = 0.00028
_WHOLE_NUMBER = re.compile(r"^-?[0-9]{1,10}$")


@dataclass(frozen=True)
class TileIndex:
    """One tile of WebMercatorQuad: zoom `z`, column `x` (west to east), row `y` (north down)."""

    z: int
    x: int
    y: int


def check_tile_matrix_set(tile_matrix_set_id: str) -> None:
    """Raise `NotFound` unless the tile matrix set is the one the portal serves."""
    if tile_matrix_set_id != WEB_MERCATOR_QUAD:
        raise NotFound(
            f"tile matrix set {tile_matrix_set_id!r} is not offered; use {WEB_MERCATOR_QUAD}"
        )


def parse_tile_index(
    tile_matrix: str | int,
    tile_row: str | int,
    tile_col: str | int,
    *,
    max_zoom: int = MAX_ZOOM,
) -> TileIndex:
    """Validate a tile address as sent in .../{tileMatrix}/{tileRow}/{tileCol}."""
    z = _whole_number(
        tile_matrix, f"tile matrix (zoom level) {{}} is not a whole number 0..{max_zoom}"
    )
    if not 0 <= z <= max_zoom:
        raise InvalidInput(f"tile matrix (zoom level) {z} is outside 0..{max_zoom}")
    last = (1 << z) - 1
    y = _whole_number(tile_row, f"tile row {{}} is not a whole number 0..{last}")
    x = _whole_number(tile_col, f"tile column {{}} is not a whole number 0..{last}")
    if not 0 <= y <= last:
        raise InvalidInput(f"tile row {y} is outside 0..{last} at zoom {z}")
    if not 0 <= x <= last:
        raise InvalidInput(f"tile column {x} is outside 0..{last} at zoom {z}")
    return TileIndex(z, x, y)


def _whole_number(value: str | int, message: str) -> int:
    if isinstance(value, bool):
        raise InvalidInput(message.format(repr(value)))
    if isinstance(value, int):
        return value
    if not _WHOLE_NUMBER.match(value):
        raise InvalidInput(message.format(repr(value)))
    return int(value)


def tile_size_metres(z: int) -> float:
    """Return the width (= height) of one tile at zoom `z`, in EPSG:3857 metres."""
    return 2 * HALF_WORLD / (1 << z)


def tile_bounds(tile: TileIndex) -> tuple[float, float, float, float]:
    """Return a tile's (minx, miny, maxx, maxy) in EPSG:3857 metres."""
    size = tile_size_metres(tile.z)
    minx = -HALF_WORLD + tile.x * size
    maxy = HALF_WORLD - tile.y * size
    return (minx, maxy - size, minx + size, maxy)


def tile_containing(lon: float, lat: float, z: int) -> TileIndex:
    """Return the tile at zoom `z` that contains a longitude/latitude (clamped to the world)."""
    n = 1 << z
    lat = max(min(lat, 85.0511287798066), -85.0511287798066)
    x = math.floor((lon + 180.0) / 360.0 * n)
    y = math.floor((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return TileIndex(z, min(max(x, 0), n - 1), min(max(y, 0), n - 1))


def bbox_center(
    bbox: list[float] | tuple[float, ...], *, max_zoom: int = 16
) -> tuple[float, float, int]:
    """Return the middle of a lon/lat bbox and the highest zoom at which it spans 2×2 tiles."""
    minx, miny, maxx, maxy = bbox
    zoom = 0
    for z in range(max_zoom, 0, -1):
        top_left = tile_containing(minx, maxy, z)
        bottom_right = tile_containing(maxx, miny, z)
        if bottom_right.x - top_left.x <= 1 and bottom_right.y - top_left.y <= 1:
            zoom = z
            break
    return ((minx + maxx) / 2, (miny + maxy) / 2, zoom)


def tile_matrix_set_limits(
    bbox: list[float] | tuple[float, ...], *, min_zoom: int = 0, max_zoom: int = MAX_ZOOM
) -> list[dict[str, Any]]:
    """Return tileMatrixSetLimits covering a lon/lat bbox at each zoom from min to max."""
    limits = []
    for z in range(min_zoom, max_zoom + 1):
        top_left = tile_containing(bbox[0], bbox[3], z)
        bottom_right = tile_containing(bbox[2], bbox[1], z)
        limits.append(
            {
                "tileMatrix": str(z),
                "minTileRow": top_left.y,
                "maxTileRow": bottom_right.y,
                "minTileCol": top_left.x,
                "maxTileCol": bottom_right.x,
            }
        )
    return limits


def tile_matrix_set_document() -> dict[str, Any]:
    """Return the WebMercatorQuad definition as OGC 2D Tile Matrix Set 2.0 JSON."""
    matrices = []
    for z in range(TMS_MAX_ZOOM + 1):
        cell_size = tile_size_metres(z) / TILE_SIZE
        matrices.append(
            {
                "id": str(z),
                "scaleDenominator": cell_size / _PIXEL_METRES,
                "cellSize": cell_size,
                "cornerOfOrigin": "topLeft",
                "pointOfOrigin": [-HALF_WORLD, HALF_WORLD],
                "tileWidth": TILE_SIZE,
                "tileHeight": TILE_SIZE,
                "matrixWidth": 1 << z,
                "matrixHeight": 1 << z,
            }
        )
    return {
        "id": WEB_MERCATOR_QUAD,
        "title": "Google Maps Compatible for the World",
        "uri": TMS_URI,
        "crs": CRS_3857_URI,
        "orderedAxes": ["X", "Y"],
        "wellKnownScaleSet": "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
        "tileMatrices": matrices,
    }


def tile_matrix_set_summary(api_url: str) -> dict[str, Any]:
    """Return the entry for WebMercatorQuad in the /tileMatrixSets list."""
    return {
        "id": WEB_MERCATOR_QUAD,
        "title": "Google Maps Compatible for the World",
        "uri": TMS_URI,
        "crs": CRS_3857_URI,
        "links": [
            {
                "rel": TILING_SCHEME_REL,
                "type": "application/json",
                "title": "WebMercatorQuad definition",
                "href": tile_matrix_set_url(api_url),
            }
        ],
    }


def tile_matrix_set_url(api_url: str) -> str:
    """Return the URL of the WebMercatorQuad definition under an API's landing page URL."""
    return f"{api_url.rstrip('/')}/tileMatrixSets/{WEB_MERCATOR_QUAD}"
