"""Turn GDAL's WKB into hex WKB in EPSG:4326, dropping coordinates that cannot be real."""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import shapely
from pyproj import Transformer


@dataclass
class GeometryBatch:
    """A batch of geometries ready for COPY, and what was done to them."""

    wkb_hex: pa.Array
    type_names: set[str]
    dropped: int
    invalid_rows: np.ndarray


def prepare_geometries(wkb: pa.Array, transformer: Transformer | None) -> GeometryBatch:
    """Reproject a WKB column to EPSG:4326 and return it as hex WKB, with what was dropped.

    The WKB carries no SRID: PostGIS stamps the column's 4326 on it.
    """
    geometries = shapely.from_wkb(np.asarray(wkb.to_numpy(zero_copy_only=False), dtype=object))
    if shapely.has_z(geometries).any():
        geometries = shapely.force_2d(geometries)
    if transformer is not None:
        geometries = shapely.transform(geometries, _project(transformer))
    bounds = shapely.bounds(geometries)
    with np.errstate(invalid="ignore"):
        implausible = ~shapely.is_missing(geometries) & (
            ~np.isfinite(bounds).all(axis=1)
            | (bounds[:, 0] < -180)
            | (bounds[:, 2] > 180)
            | (bounds[:, 1] < -90)
            | (bounds[:, 3] > 90)
        )
    empty = shapely.is_empty(geometries)
    dropped = int(np.count_nonzero(implausible & ~empty))
    geometries = np.where(implausible | empty, None, geometries)
    missing = shapely.is_missing(geometries)
    present = geometries[~missing]
    type_names = set(np.unique(shapely.get_type_id(present)).tolist()) if len(present) else set()
    # Plain WKB plus bytes.hex() is several times faster than shapely's hex writer.
    hex_values = [None if value is None else value.hex() for value in shapely.to_wkb(geometries)]
    return GeometryBatch(
        wkb_hex=pa.array(hex_values, type=pa.string()),
        type_names={_TYPE_NAMES[t] for t in type_names},
        dropped=dropped,
        invalid_rows=np.flatnonzero(~missing & ~shapely.is_valid(geometries)),
    )


def _project(transformer: Transformer):  # type: ignore[no-untyped-def]
    def project(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return project


def combined_type(type_names: set[str]) -> str | None:
    """Name the layer's geometry type: one type, its Multi form, or Geometry when mixed."""
    if not type_names:
        return None
    if len(type_names) == 1:
        return next(iter(type_names))
    families = {name.removeprefix("Multi") for name in type_names}
    if len(families) == 1:
        return "Multi" + next(iter(families))
    return "Geometry"


_TYPE_NAMES = {
    0: "Point",
    1: "LineString",
    2: "LineString",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}
