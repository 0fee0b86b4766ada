"""上水道管路 (water mains): pipes along every other street, as RFC 7946 GeoJSON."""

from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

from portal.demo.gen_common import WGS84_CRS, plane_to_lonlat, staged_output
from portal.demo.gen_roads import ROAD_CLASSES, StreetGrid

PIPE_OFFSET_M = 3.0  # mains lie under one side of the carriageway, not on its centre line
PIPE_MATERIALS: tuple[str, ...] = (
    "ダクタイル鋳鉄管",
    "鋼管",
    "硬質塩化ビニル管",
    "ポリエチレン管",
    "石綿セメント管",
)
_DUCTILE, _STEEL, _PVC, _POLYETHYLENE, _ASBESTOS = range(5)
# Material mix by era of laying: asbestos cement before the 1970s, polyethylene after 2000.
_MATERIAL_ODDS = {
    "before_1975": (0.40, 0.20, 0.10, 0.00, 0.30),
    "before_2000": (0.55, 0.10, 0.35, 0.00, 0.00),
    "from_2000": (0.60, 0.05, 0.00, 0.35, 0.00),
}
_DIAMETERS_BY_CLASS: dict[str, tuple[int, ...]] = {
    "国道": (300, 400),
    "県道": (200, 300),
    "1級市道": (150, 200),
    "2級市道": (100, 150),
    "その他市道": (50, 75, 100),
}


def water_main_frame(grid: StreetGrid, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """Build the 上水道管路 table: 管路番号, 口径, 管種, 布設年度, 耐震, in WGS 84."""
    on_main_street = grid.line_index % 2 == 0
    coords = grid.coords[on_main_street]
    segment_class = grid.segment_class[on_main_street]
    count = len(coords)

    direction = coords[:, -1] - coords[:, 0]
    normal = np.stack([direction[:, 1], -direction[:, 0]], axis=1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    shifted = coords + normal[:, np.newaxis, :] * PIPE_OFFSET_M
    lon, lat = plane_to_lonlat(shifted[..., 0].ravel(), shifted[..., 1].ravel())
    lonlat = np.round(np.stack([lon, lat], axis=1), 7).reshape(shifted.shape)

    draws = rng.random(count)
    diameter = np.zeros(count, dtype=np.int32)
    for class_index, class_name in enumerate(ROAD_CLASSES):
        options = np.array(_DIAMETERS_BY_CLASS[class_name])
        members = segment_class == class_index
        diameter[members] = options[(draws[members] * len(options)).astype(int)]
    laid = rng.integers(1960, 2025, count).astype(np.int32)
    material = _materials(laid, diameter, rng)
    ductile_modern = (material == _DUCTILE) & (laid >= 1998)
    steel_modern = (material == _STEEL) & (laid >= 1990)
    quake_proof = ductile_modern | steel_modern | (material == _POLYETHYLENE)
    return gpd.GeoDataFrame(
        {
            "管路番号": np.array([f"W{n:06d}" for n in range(1, count + 1)], dtype=object),
            "口径": diameter,
            "管種": np.array(PIPE_MATERIALS, dtype=object)[material],
            "布設年度": laid,
            "耐震": np.where(quake_proof, "有", "無").astype(object),
        },
        geometry=shapely.linestrings(lonlat),
        crs=WGS84_CRS,
    )


def _materials(laid: np.ndarray, diameter: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pick a 管種 index per pipe from its laying year; large mains are metal."""
    odds = np.select(
        [laid[:, np.newaxis] < 1975, laid[:, np.newaxis] < 2000],
        [np.array(_MATERIAL_ODDS["before_1975"]), np.array(_MATERIAL_ODDS["before_2000"])],
        default=np.array(_MATERIAL_ODDS["from_2000"]),
    )
    cumulative = np.cumsum(odds, axis=1)
    material = (rng.random((len(laid), 1)) * cumulative[:, -1:] >= cumulative).sum(axis=1)
    large = diameter >= 300
    return np.where(large & ~np.isin(material, (_DUCTILE, _STEEL)), _DUCTILE, material)


def write_water_mains(path: Path, grid: StreetGrid, rng: np.random.Generator) -> int:
    """Write the 上水道管路 GeoJSON (lon/lat, 7 decimals) and return its feature count."""
    frame = water_main_frame(grid, rng)
    with staged_output(path) as staging_path:
        pyogrio.write_dataframe(
            frame,
            staging_path,
            layer="water_mains",
            driver="GeoJSON",
            layer_options={"RFC7946": "YES", "COORDINATE_PRECISION": "7"},
        )
    return len(frame)
