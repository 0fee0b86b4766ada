"""Points from CSV columns: 緯度/経度 (lat/lon) in degrees, or X座標/Y座標 in a plane zone.

In the Japanese plane rectangular systems X points north and Y points east, so X座標 is
the northing. `PointColumns` therefore names columns by direction, not by letter.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from pyproj import CRS, Transformer

from portal.catalog.standard_datasets import column_key
from portal.core.errors import LoadFailed
from portal.geo.crs import crs_label

# Header spellings, most specific first (compared after `_key` folding).
LATITUDE_KEYS = ("緯度", "北緯", "LATITUDE", "LAT")
LONGITUDE_KEYS = ("経度", "東経", "LONGITUDE", "LON", "LNG", "LONG")
NORTHING_KEYS = ("X座標", "座標X", "X座標値", "X_COORD", "XCOORD", "X")
EASTING_KEYS = ("Y座標", "座標Y", "Y座標値", "Y_COORD", "YCOORD", "Y")
# Japan, generously: Okinotorishima to Etorofu, Yonaguni to Minamitorishima.
JAPAN_LAT = (20.0, 46.0)
JAPAN_LON = (122.0, 154.0)
FEW_BAD = 0.1  # up to this share of rows may lack a usable point (with a warning)
SAMPLE_ROWS = 2_000
_NUMBER = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"
_UNIT_SUFFIX = re.compile(r"[(\[].*[)\]]$")


@dataclass(frozen=True)
class PointColumns:
    """The columns holding a point: north (緯度, or X座標 northing) and east (経度, Y座標)."""

    north: str
    east: str


@dataclass
class PointPlan:
    """How GDAL should build points, and what the values told us."""

    columns: PointColumns
    crs_override: str | None = None
    warnings: list[str] = field(default_factory=list)

    def gdal_options(self) -> dict[str, str]:
        """The CSV open options that make GDAL build x = east, y = north."""
        return {
            "X_POSSIBLE_NAMES": self.columns.east,
            "Y_POSSIBLE_NAMES": self.columns.north,
            "KEEP_GEOM_COLUMNS": "YES",
        }


def plan_points(
    csv_path: Path,
    header: list[str],
    *,
    forced_crs: CRS | None,
    columns: PointColumns | None = None,
) -> PointPlan | None:
    """Find the point columns of a UTF-8 CSV and check their values; None for a plain table."""
    projected = forced_crs is not None and forced_crs.is_projected
    if columns is not None:
        missing = [name for name in (columns.north, columns.east) if name not in header]
        if missing:
            raise LoadFailed(
                f"{csv_path.name}: no column named {', '.join(map(repr, missing))} "
                f"(the columns are: {', '.join(header[:30])})"
            )
        chosen, plane = columns, projected
    else:
        degrees = _find(header, LATITUDE_KEYS, LONGITUDE_KEYS)
        plane_columns = _find(header, NORTHING_KEYS, EASTING_KEYS)
        if plane_columns and (projected or not degrees):
            chosen, plane = plane_columns, True
        elif degrees:
            chosen, plane = degrees, False
        else:
            return None
    values = _read_columns(csv_path, chosen)
    if values is None:
        return PointPlan(chosen)
    north, east, bad = _numbers(csv_path, chosen, values)
    plan = PointPlan(chosen, warnings=bad)
    if plane and not projected:
        return _xy_without_zone(csv_path, plan, north, east)
    if plane:
        assert forced_crs is not None
        return _check_plane(plan, north, east, forced_crs)
    if projected:
        assert forced_crs is not None
        geographic = forced_crs.geodetic_crs
        assert geographic is not None
        # Degrees in the datum of the given zone (Tokyo datum zones mean Tokyo degrees).
        plan.crs_override = crs_label(geographic)
    return _check_degrees(csv_path, plan, north, east)


def _find(
    header: list[str], north_keys: tuple[str, ...], east_keys: tuple[str, ...]
) -> PointColumns | None:
    keys = {_key(name): name for name in reversed(header)}
    north = next((keys[k] for k in north_keys if k in keys), None)
    east = next((keys[k] for k in east_keys if k in keys), None)
    return PointColumns(north, east) if north and east else None


def _key(name: str) -> str:
    """Fold a header for matching: NFKC, no spaces, upper case, no trailing (unit)."""
    return _UNIT_SUFFIX.sub("", column_key(name))


def _read_columns(path: Path, columns: PointColumns) -> pa.Table | None:
    """Read just the two columns as text (Arrow's reader: fast, and it keeps quoted newlines)."""
    names = list(dict.fromkeys([columns.north, columns.east]))
    try:
        return pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(
                newlines_in_values=True, invalid_row_handler=lambda _: "skip"
            ),
            convert_options=pacsv.ConvertOptions(
                include_columns=names,
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        # Duplicate or odd headers: GDAL still builds the points, without our checks.
        return None


def _numbers(
    path: Path, columns: PointColumns, table: pa.Table
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Parse both columns; refuse text that is not numbers unless only a few rows have it."""
    texts = [pc.utf8_trim_whitespace(table.column(name)) for name in (columns.north, columns.east)]
    empty = [pc.equal(text, "") for text in texts]
    numeric = [pc.match_substring_regex(text, _NUMBER) for text in texts]
    both_empty = pc.and_(empty[0], empty[1]).to_numpy(zero_copy_only=False)
    usable = pc.and_(numeric[0], numeric[1]).to_numpy(zero_copy_only=False)
    bad_rows = np.flatnonzero(~usable & ~both_empty)
    filled = int(np.count_nonzero(~both_empty))
    north = np.full(table.num_rows, np.nan)
    east = np.full(table.num_rows, np.nan)
    north[usable] = pc.cast(pc.filter(texts[0], usable), pa.float64()).to_numpy()
    east[usable] = pc.cast(pc.filter(texts[1], usable), pa.float64()).to_numpy()
    warnings: list[str] = []
    if len(bad_rows):
        row = int(bad_rows[0])
        column = columns.north if not numeric[0][row].as_py() else columns.east
        sample = texts[0 if column == columns.north else 1][row].as_py() or "(empty)"
        where = f"row {row + 2}: {column} = {sample!r}"
        if len(bad_rows) > FEW_BAD * filled:
            raise LoadFailed(
                f"{path.name}: {column} holds values that are not numbers in "
                f"{len(bad_rows):,} of {filled:,} rows ({where}). {columns.north} and "
                f"{columns.east} must hold coordinates such as 33.2846 and 131.4914; if they "
                "hold addresses, rename the columns (for example to 住所) or add coordinates"
            )
        warnings.append(
            f"{len(bad_rows):,} rows have {columns.north}/{columns.east} values that are not "
            f"numbers ({where}); they were loaded without a point"
        )
    return north, east, warnings


def _check_degrees(path: Path, plan: PointPlan, north: np.ndarray, east: np.ndarray) -> PointPlan:
    """Exchange 緯度 and 経度 when most rows have them the wrong way round."""
    columns = plan.columns
    present = ~np.isnan(north)
    count = int(np.count_nonzero(present))
    if not count:
        return plan
    with np.errstate(invalid="ignore"):
        swapped = (np.abs(north) > 90) & (np.abs(east) <= 90)
        projected = (np.abs(north) > 90) & (np.abs(east) > 180)
    if np.count_nonzero(projected) * 2 > count:
        row = int(np.flatnonzero(projected)[0])
        raise LoadFailed(
            f"{path.name}: {columns.north}/{columns.east} hold values that are not degrees "
            f"(row {row + 2}: {north[row]:g}, {east[row]:g}); if they are plane rectangular "
            "coordinates, name the columns X座標/Y座標 and give the zone (zone: 2 in meta.yaml)"
        )
    if np.count_nonzero(swapped) * 2 > count:
        row = int(np.flatnonzero(swapped)[0])
        plan.columns = PointColumns(columns.east, columns.north)
        plan.warnings.append(
            f"{columns.north} and {columns.east} are swapped: {columns.north} is over 90 in "
            f"{int(np.count_nonzero(swapped)):,} of {count:,} rows (row {row + 2}: "
            f"{columns.north} = {north[row]:g}, {columns.east} = {east[row]:g}); the points "
            "were placed with the two columns exchanged. Please correct the column names"
        )
        north, east = east, north
    elif np.any(swapped):
        rows = ", ".join(str(r + 2) for r in np.flatnonzero(swapped)[:5])
        plan.warnings.append(
            f"{int(np.count_nonzero(swapped)):,} rows have {columns.north} over 90 "
            f"({columns.north} and {columns.east} swapped?; rows {rows}); "
            "they were loaded without a point"
        )
    _warn_outside_japan(plan, north, east)
    return plan


def _check_plane(plan: PointPlan, north: np.ndarray, east: np.ndarray, crs: CRS) -> PointPlan:
    """Exchange X and Y when the file uses x = easting (GIS habit) instead of X = northing.

    Only points that land outside the zone's area one way and inside it the other way tell;
    near the zone's origin both ways land inside, and the survey order (X north) stands.
    """
    present = np.flatnonzero(~np.isnan(north))[:SAMPLE_ROWS]
    if not len(present):
        return plan
    area = crs.area_of_use
    bounds = area.bounds if area else (JAPAN_LON[0], JAPAN_LAT[0], JAPAN_LON[1], JAPAN_LAT[1])
    to_degrees = Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True)
    as_named = _inside(*to_degrees.transform(east[present], north[present]), bounds)
    exchanged = _inside(*to_degrees.transform(north[present], east[present]), bounds)
    columns = plan.columns
    if exchanged.sum() > as_named.sum() and exchanged.sum() * 2 > len(present):
        plan.columns = PointColumns(columns.east, columns.north)
        plan.warnings.append(
            f"{columns.north} holds the easting and {columns.east} the northing here "
            f"(in {crs_label(crs)}, X座標 is normally the northing); the points were placed "
            "with the two columns exchanged"
        )
    elif as_named.sum() * 2 <= len(present):
        plan.warnings.append(
            f"most points fall outside the area of {crs_label(crs)} ({crs.name}); check the "
            "zone (平面直角座標系の系番号) or source_crs"
        )
    return plan


def _xy_without_zone(path: Path, plan: PointPlan, north: np.ndarray, east: np.ndarray) -> PointPlan:
    """X/Y columns without a zone: fine when they hold degrees, else ask for the zone."""
    present = ~np.isnan(north)
    if np.any(present):
        gis = _inside_japan(north[present], east[present])  # X = longitude, Y = latitude
        survey = _inside_japan(east[present], north[present])
        if gis.sum() * 2 > present.sum() or survey.sum() * 2 > present.sum():
            if gis.sum() > survey.sum():
                plan.columns = PointColumns(plan.columns.east, plan.columns.north)
            plan.warnings.append(
                f"{plan.columns.north}/{plan.columns.east} hold degrees; they were read as "
                "latitude/longitude"
            )
            return plan
    raise LoadFailed(
        f"{path.name}: the columns {plan.columns.north}/{plan.columns.east} hold plane "
        "rectangular coordinates, but the zone is not known; add zone (the 系番号, e.g. "
        "zone: 2) or source_crs (e.g. EPSG:6670) to the sidecar (meta.yaml)"
    )


def _inside_japan(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return _inside(lon, lat, (JAPAN_LON[0], JAPAN_LAT[0], JAPAN_LON[1], JAPAN_LAT[1]))


def _inside(
    lon: np.ndarray, lat: np.ndarray, bounds: tuple[float, float, float, float]
) -> np.ndarray:
    west, south, east, north = bounds
    lon, lat = np.asarray(lon), np.asarray(lat)
    with np.errstate(invalid="ignore"):
        return (lat >= south) & (lat <= north) & (lon >= west) & (lon <= east)


def _warn_outside_japan(plan: PointPlan, north: np.ndarray, east: np.ndarray) -> None:
    present = ~np.isnan(north)
    with np.errstate(invalid="ignore"):
        plausible = present & (np.abs(north) <= 90) & (np.abs(east) <= 180)
    outside = np.flatnonzero(plausible & ~_inside_japan(east, north))
    if len(outside):
        row = int(outside[0])
        plan.warnings.append(
            f"{len(outside):,} rows lie outside Japan (row {row + 2}: "
            f"{plan.columns.north} = {north[row]:g}, {plan.columns.east} = {east[row]:g}); "
            "check their coordinates"
        )
