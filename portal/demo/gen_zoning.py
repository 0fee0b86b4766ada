"""用途地域 (zoning): Voronoi blocks over the street grid, as an A29-style GeoPackage."""

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

from portal.demo.gen_common import (
    FIXED_DATETIME,
    GEOGRAPHIC_CRS,
    SAMPLE_NOTE,
    SampleCity,
    plane_center,
    plane_to_lonlat,
    staged_output,
)
from portal.demo.gen_roads import StreetGrid, place_on_plane

ZONING_LAYER = "youto_chiiki"
ZONES_PER_SCALE = 150

# 国土数値情報 A29 用途地域 codes and names (A29_004 / A29_005).
ZONE_NAMES: dict[int, str] = {
    1: "第一種低層住居専用地域",
    2: "第二種低層住居専用地域",
    3: "第一種中高層住居専用地域",
    4: "第二種中高層住居専用地域",
    5: "第一種住居地域",
    6: "第二種住居地域",
    7: "準住居地域",
    8: "近隣商業地域",
    9: "商業地域",
    10: "準工業地域",
    11: "工業地域",
    12: "工業専用地域",
    21: "田園住居地域",
}
# (建ぺい率 %, 容積率 %) pairs a city may choose for each zone under the Building Standards Act.
_RATIOS: dict[int, tuple[tuple[int, int], ...]] = {
    1: ((50, 100), (40, 80), (60, 150)),
    2: ((60, 150), (50, 100)),
    3: ((60, 200), (60, 150)),
    4: ((60, 200), (60, 300)),
    5: ((60, 200), (60, 300)),
    6: ((60, 200), (60, 300)),
    7: ((60, 200),),
    8: ((80, 300), (80, 200)),
    9: ((80, 400), (80, 600), (80, 500)),
    10: ((60, 200), (60, 300)),
    11: ((60, 200),),
    12: ((60, 200), (50, 200)),
    21: ((50, 100), (40, 80)),
}


def build_zone_polygons(grid: StreetGrid, rng: np.random.Generator, scale: int) -> np.ndarray:
    """Split the grid outline into Voronoi cells; returns valid, non-overlapping polygons."""
    k = round(math.sqrt(ZONES_PER_SCALE * scale))
    # Seeds on a jittered lattice give even-sized blocks, unlike uniform random points.
    steps = (np.arange(k) + 0.5) / k * 2 - 1
    u, v = np.meshgrid(steps, steps)
    u = (u + rng.uniform(-0.35, 0.35, u.shape) / k) * grid.half_extent
    v = (v + rng.uniform(-0.35, 0.35, v.shape) / k) * grid.half_extent
    # Seeds go through the streets' own bend and rotation, so they all fall inside the outline.
    seeds = shapely.points(place_on_plane(u, v).reshape(-1, 2))
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=grid.outline, ordered=True)
    )
    clipped = shapely.intersection(cells, grid.outline)
    polygons = np.array([_largest_polygon(cell) for cell in clipped], dtype=object)
    return polygons[~shapely.is_empty(polygons)]


def _largest_polygon(geometry: shapely.Geometry) -> shapely.Polygon:
    """Return the polygon itself, or the largest polygon of a clipped collection."""
    if isinstance(geometry, shapely.Polygon):
        return geometry
    parts = [p for p in shapely.get_parts(geometry) if isinstance(p, shapely.Polygon)]
    return max(parts, key=lambda p: p.area) if parts else shapely.Polygon()


def assign_zone_codes(
    polygons: np.ndarray, grid: StreetGrid, rng: np.random.Generator
) -> np.ndarray:
    """Pick an A29 zone code per polygon: commerce at the centre, industry on the east coast."""
    center_x, center_y = plane_center()
    centroids = shapely.centroid(polygons)
    dx = (shapely.get_x(centroids) - center_x) / grid.half_extent
    dy = (shapely.get_y(centroids) - center_y) / grid.half_extent
    distance = np.hypot(dx, dy)
    draw = rng.random(len(polygons))
    inner_residential = np.array([5, 6, 7, 3, 4])[rng.integers(0, 5, len(polygons))]
    outer_residential = np.array([1, 2, 3, 1])[rng.integers(0, 4, len(polygons))]
    rural = np.array([1, 21, 2])[rng.integers(0, 3, len(polygons))]
    return np.select(
        [
            distance < 0.15,
            distance < 0.3,
            (dx > 0.85) & (draw < 0.5),
            dx > 0.7,
            dx > 0.55,
            distance < 0.6,
            distance < 0.9,
        ],
        [
            np.full(len(polygons), 9),
            np.where(draw < 0.3, 9, 8),
            np.full(len(polygons), 12),
            np.full(len(polygons), 11),
            np.full(len(polygons), 10),
            inner_residential,
            outer_residential,
        ],
        default=rural,
    )


def zoning_frame(
    grid: StreetGrid, rng: np.random.Generator, scale: int, city: SampleCity
) -> gpd.GeoDataFrame:
    """Build the A29-style 用途地域 table in JGD2011 geographic coordinates."""
    polygons = build_zone_polygons(grid, rng, scale)
    codes = assign_zone_codes(polygons, grid, rng)
    choice = rng.random(len(codes))
    coverage, floor_area = zip(
        *(
            _RATIOS[int(code)][int(pick * len(_RATIOS[int(code)]))]
            for code, pick in zip(codes, choice, strict=True)
        ),
        strict=True,
    )
    geographic = shapely.transform(polygons, _to_geographic)
    return gpd.GeoDataFrame(
        {
            "A29_001": np.full(len(codes), city.jis_code, dtype=object),
            "A29_002": np.full(len(codes), city.name, dtype=object),
            "A29_004": codes.astype(np.int32),
            "A29_005": np.array([ZONE_NAMES[int(c)] for c in codes], dtype=object),
            "A29_006": np.array(coverage, dtype=np.int32),
            "A29_007": np.array(floor_area, dtype=np.int32),
            "備考": np.full(len(codes), SAMPLE_NOTE, dtype=object),
        },
        geometry=geographic,
        crs=GEOGRAPHIC_CRS,
    )


def _to_geographic(xy: np.ndarray) -> np.ndarray:
    """Transform an (n, 2) EPSG:6670 coordinate array to (lon, lat) in EPSG:6668."""
    lon, lat = plane_to_lonlat(xy[:, 0], xy[:, 1], GEOGRAPHIC_CRS)
    return np.stack([lon, lat], axis=1)


def write_zoning(
    path: Path, grid: StreetGrid, rng: np.random.Generator, scale: int, city: SampleCity
) -> int:
    """Write the 用途地域 GeoPackage (layer youto_chiiki) and return its feature count."""
    frame = zoning_frame(grid, rng, scale, city)
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    # GDAL stamps gpkg_contents.last_change with "now" unless OGR_CURRENT_DATE pins it.
    # The option is process-wide, so it is restored straight after the write.
    pyogrio.set_gdal_config_options(
        {"OGR_CURRENT_DATE": FIXED_DATETIME.strftime("%Y-%m-%dT%H:%M:%S.000Z")}
    )
    try:
        with staged_output(path) as staging_path:
            pyogrio.write_dataframe(frame, staging_path, layer=ZONING_LAYER, driver="GPKG")
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})
    return len(frame)
