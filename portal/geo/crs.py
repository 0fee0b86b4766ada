"""Coordinate reference systems: reading what a file declares, and transforming to EPSG:4326."""

from functools import lru_cache

from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from portal.core.errors import LoadFailed

STORAGE_SRID = 4326
TOKYO_DATUM_CODES = {4301, *range(30161, 30180)}


def parse_crs(value: str, *, file_name: str) -> CRS:
    """Parse a CRS given as EPSG code, URN, WKT or PROJ string."""
    try:
        return CRS.from_user_input(value)
    except CRSError as exc:
        raise LoadFailed(f"{file_name}: unknown coordinate reference system {value!r}") from exc


def crs_label(crs: CRS) -> str:
    """Return `EPSG:nnnn` when the CRS has an EPSG code, else its name."""
    code = crs.to_epsg(min_confidence=70)
    return f"EPSG:{code}" if code else crs.name


def datum_warnings(crs: CRS) -> list[str]:
    """Warn about datums whose transformation to JGD2011 is approximate here."""
    code = crs.to_epsg(min_confidence=70)
    name = crs.name.lower()
    if (code in TOKYO_DATUM_CODES) or "tokyo" in name:
        return [
            "旧日本測地系 (Tokyo datum): converted without the TKY2JGD grid, "
            "positions may be off by about 9 m"
        ]
    return []


@lru_cache(maxsize=64)
def transformer_to_storage(source_wkt: str) -> Transformer | None:
    """Return a transformer to EPSG:4326 (x = longitude), or None when none is needed."""
    source = CRS.from_wkt(source_wkt)
    if source.to_epsg(min_confidence=90) in (4326, 6668, 4612):
        # JGD2011 and JGD2000 geographic coincide with WGS 84 well below map precision.
        return None
    return Transformer.from_crs(source, CRS.from_epsg(STORAGE_SRID), always_xy=True)
