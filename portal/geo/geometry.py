"""Turn GDAL's WKB into hex EWKB in EPSG:4326, dropping coordinates that cannot be real."""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import shapely
from pyproj import Transformer

from portal.geo.crs import STORAGE_SRID


@dataclass
class GeometryBatch:
    """A batch of geometries ready for COPY, and what was done to them."""

    ewkb_hex: pa.Array
    type_names: set[str]
    dropped: int


def prepare_geometries(wkb: pa.Array, transformer: Transformer | None) -> GeometryBatch:
    """Reproject a WKB column and return hex EWKB with SRID 4326."""
    geometries = shapely.from_wkb(np.asarray(wkb.to_numpy(zero_copy_only=False), dtype=object))
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
    geometries = shapely.set_srid(geometries, STORAGE_SRID)
    present = geometries[~shapely.is_missing(geometries)]
    type_names = set(np.unique(shapely.get_type_id(present)).tolist()) if len(present) else set()
    hex_values = shapely.to_wkb(geometries, hex=True, include_srid=True)
    return GeometryBatch(
        ewkb_hex=pa.array(hex_values, type=pa.string(), from_pandas=True),
        type_names={_TYPE_NAMES[t] for t in type_names},
        dropped=dropped,
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
