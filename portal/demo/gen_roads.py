"""道路台帳 (road ledger): a jittered street grid around the city hall, as a CP932 Shapefile."""

import math
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

from portal.demo.city import SAMPLE_LABEL
from portal.demo.gen_common import (
    FIXED_DATETIME,
    PLANE_CRS,
    full_width,
    plane_center,
    staged_output,
)

SEGMENTS_PER_SCALE = 2000
_MINOR_LINK_DROP = 0.06  # share of その他市道 links left out, as dead ends and gaps
_DROPPED_SHARE = 0.028  # the same, as a share of all links (minor links are under half)
ROUTE_CHUNK = 8  # segments per 市道 route; long grid lines are several routes in a ledger
ROAD_CLASSES: tuple[str, ...] = ("国道", "県道", "1級市道", "2級市道", "その他市道")
_NATIONAL, _PREFECTURAL, _GRADE1, _GRADE2, _OTHER = range(5)
_WIDTH_RANGE = {
    _NATIONAL: (16.0, 20.0),
    _PREFECTURAL: (10.0, 14.0),
    _GRADE1: (8.0, 12.0),
    _GRADE2: (5.5, 8.0),
    _OTHER: (4.0, 6.0),
}
_OPENED_RANGE = {
    _NATIONAL: (1955, 1975),
    _PREFECTURAL: (1955, 1985),
    _GRADE1: (1960, 2000),
    _GRADE2: (1965, 2015),
    _OTHER: (1970, 2024),
}


@dataclass(frozen=True)
class StreetGrid:
    """Road segments of the sample city in EPSG:6670, one row per segment."""

    coords: np.ndarray  # (n, 3, 2): start, slightly bent middle, end; x = easting
    line_index: np.ndarray  # which grid line (street) the segment lies on
    route_index: np.ndarray  # which ledger route (路線) the segment belongs to
    route_class: np.ndarray  # per route: index into ROAD_CLASSES
    route_number: np.ndarray  # per route: number within its class
    outline: shapely.Polygon  # the grid's outer boundary, for zoning
    half_extent: float  # metres from the centre to the outline, roughly

    @property
    def segment_class(self) -> np.ndarray:
        """Return each segment's road class index."""
        return self.route_class[self.route_index]


def nodes_per_side(scale: int) -> int:
    """Return the grid size n whose 2·n·(n−1) links leave about 2,000 × scale segments."""
    planned = SEGMENTS_PER_SCALE * scale / (1 - _DROPPED_SHARE)
    return round((1 + math.sqrt(1 + 2 * planned)) / 2)


def build_street_grid(rng: np.random.Generator, scale: int) -> StreetGrid:
    """Lay out a warped, rotated, jittered street grid centred on the city hall."""
    n = nodes_per_side(scale)
    # Uneven block sizes (70–110 m) make it look surveyed rather than drawn.
    u_axis = np.concatenate([[0.0], np.cumsum(rng.uniform(70.0, 110.0, n - 1))])
    v_axis = np.concatenate([[0.0], np.cumsum(rng.uniform(70.0, 110.0, n - 1))])
    u_axis -= u_axis[-1] / 2
    v_axis -= v_axis[-1] / 2
    u, v = np.meshgrid(u_axis, v_axis)  # node (row i, column j) at u[i, j], v[i, j]
    u = u + rng.normal(0.0, 3.0, u.shape)
    v = v + rng.normal(0.0, 3.0, v.shape)
    nodes = place_on_plane(u, v)

    horizontal = np.stack([nodes[:, :-1], nodes[:, 1:]], axis=2).reshape(-1, 2, 2)
    vertical = np.stack([nodes[:-1, :], nodes[1:, :]], axis=2).reshape(-1, 2, 2)
    ends = np.concatenate([horizontal, vertical])
    rows = np.arange(n)
    h_line = np.repeat(rows, n - 1)
    v_line = n + np.tile(rows, n - 1)  # vertical[i, j] lies on column j, lines n..2n-1
    line = np.concatenate([h_line, v_line])
    position = np.concatenate([np.tile(np.arange(n - 1), n), np.repeat(np.arange(n - 1), n)])

    classes_of_line = _line_classes(n)
    chunk = np.where(classes_of_line[line] <= _PREFECTURAL, 0, position // ROUTE_CHUNK)
    route_key = line * n + chunk
    unique_keys, route_index = np.unique(route_key, return_inverse=True)
    route_class = classes_of_line[unique_keys // n]
    route_number = _number_routes(route_class)

    # Dead ends and missing links: a few minor segments are dropped.
    keep = ~((route_class[route_index] == _OTHER) & (rng.random(len(ends)) < _MINOR_LINK_DROP))
    ends, line, route_index = ends[keep], line[keep], route_index[keep]

    middle = ends.mean(axis=1)
    direction = ends[:, 1] - ends[:, 0]
    normal = np.stack([-direction[:, 1], direction[:, 0]], axis=1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    middle += normal * rng.normal(0.0, 1.5, (len(ends), 1))
    coords = np.stack([ends[:, 0], middle, ends[:, 1]], axis=1)

    ring = np.concatenate([nodes[0, :], nodes[1:, -1], nodes[-1, -2::-1], nodes[-2:0:-1, 0]])
    return StreetGrid(
        coords=coords,
        line_index=line,
        route_index=route_index,
        route_class=route_class,
        route_number=route_number,
        outline=shapely.Polygon(ring),
        half_extent=float(max(u_axis[-1], v_axis[-1])),
    )


def place_on_plane(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bend, rotate and move local grid coordinates (metres) onto EPSG:6670; adds an xy axis."""
    # A gentle wave keeps long streets from being ruler-straight.
    u_bent = u + 20.0 * np.sin(v / 650.0)
    v_bent = v + 20.0 * np.sin(u / 800.0)
    angle = math.radians(-12.0)  # the old town grid runs slightly askew to north
    x = u_bent * math.cos(angle) - v_bent * math.sin(angle)
    y = u_bent * math.sin(angle) + v_bent * math.cos(angle)
    center_x, center_y = plane_center()
    return np.stack([x + center_x, y + center_y], axis=-1)


def _line_classes(n: int) -> np.ndarray:
    """Give each grid line (rows 0..n-1, then columns) a road class index."""
    index = np.arange(2 * n) % n
    classes = np.full(2 * n, _OTHER)
    classes[index % 2 == 0] = _GRADE2
    classes[index % 4 == 0] = _GRADE1
    classes[index % 8 == 4] = _PREFECTURAL
    # The national road runs north–south near the coast, as 国道10号 does in Beppu.
    classes[2 * n - 1 - max(1, n // 8)] = _NATIONAL  # a column a few blocks from the east edge
    return classes


def _number_routes(route_class: np.ndarray) -> np.ndarray:
    """Number routes 1, 2, … within each class, in layout order."""
    number = np.zeros(len(route_class), dtype=np.int64)
    for road_class in range(len(ROAD_CLASSES)):
        members = route_class == road_class
        number[members] = np.arange(1, int(members.sum()) + 1)
    # Numbered from 10 so the sample national road reads like Beppu's coastal 国道10号.
    number[route_class == _NATIONAL] += 9
    return number


def road_ledger_frame(grid: StreetGrid, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """Build the 道路台帳 attribute table (路線番号, 路線名, 幅員, 延長, …) with geometry."""
    routes = list(zip(grid.route_class.tolist(), grid.route_number.tolist(), strict=True))
    codes = [_route_code(road_class, number) for road_class, number in routes]
    names = [_route_name(road_class, number) for road_class, number in routes]
    width_range = np.array([_WIDTH_RANGE[road_class] for road_class, _ in routes])
    width = np.round(rng.uniform(width_range[:, 0], width_range[:, 1]) * 2) / 2  # to 0.5 m
    opened_range = np.array([_OPENED_RANGE[road_class] for road_class, _ in routes])
    opened = rng.integers(opened_range[:, 0], opened_range[:, 1] + 1)

    geometry = shapely.linestrings(grid.coords)
    segment_class = grid.segment_class
    unpaved = (segment_class == _OTHER) & (rng.random(len(segment_class)) < 0.08)
    route = grid.route_index
    return gpd.GeoDataFrame(
        {
            "路線番号": np.array(codes, dtype=object)[route],
            "路線名": np.array(names, dtype=object)[route],
            "路線種別": np.array(ROAD_CLASSES, dtype=object)[segment_class],
            "幅員": width[route],
            "延長": np.round(shapely.length(geometry), 2),
            "舗装": np.where(unpaved, "無", "有").astype(object),
            "供用年": opened[route].astype(np.int32),
        },
        geometry=geometry,
        crs=PLANE_CRS,
    )


def _route_code(road_class: int, number: int) -> str:
    """Return a 路線番号 such as 1-023 (class digit for 市道, K/N for 県道/国道)."""
    prefix = {_NATIONAL: "N", _PREFECTURAL: "K", _GRADE1: "1", _GRADE2: "2", _OTHER: "3"}
    return f"{prefix[road_class]}-{number:03d}"


def _route_name(road_class: int, number: int) -> str:
    """Return a 路線名 such as 市道サンプル２３号線."""
    kind = {_NATIONAL: "国道", _PREFECTURAL: "県道"}.get(road_class, "市道")
    suffix = "号" if road_class == _NATIONAL else "号線"
    return f"{kind}{SAMPLE_LABEL}{full_width(number)}{suffix}"


def write_road_ledger(path: Path, grid: StreetGrid, rng: np.random.Generator) -> int:
    """Write the 道路台帳 Shapefile set (CP932 .dbf with .cpg) and return its feature count."""
    frame = road_ledger_frame(grid, rng)
    with staged_output(path) as staging_path:
        pyogrio.write_dataframe(
            frame,
            staging_path,
            driver="ESRI Shapefile",
            encoding="CP932",
            # Without this GDAL stamps today's date into the .dbf header.
            layer_options={"DBF_DATE_LAST_UPDATE": FIXED_DATETIME.strftime("%Y-%m-%d")},
        )
    return len(frame)


def points_along_streets(
    grid: StreetGrid, rng: np.random.Generator, count: int, offset_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return `count` random (easting, northing) points beside the streets, `offset_m` off."""
    chosen = rng.integers(0, len(grid.coords), count)
    start, end = grid.coords[chosen, 0], grid.coords[chosen, -1]
    along = rng.uniform(0.15, 0.85, (count, 1))
    direction = end - start
    normal = np.stack([-direction[:, 1], direction[:, 0]], axis=1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    side = np.where(rng.random((count, 1)) < 0.5, -1.0, 1.0)
    point = start + direction * along + normal * side * offset_m
    return point[:, 0], point[:, 1]
