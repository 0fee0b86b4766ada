"""Open a spatial or tabular file with GDAL as a stream of Arrow batches."""

import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyogrio
from pyogrio.errors import DataLayerError, DataSourceError

from portal.core.errors import LoadFailed
from portal.geo.encoding import SNIFF_BYTES, sniff_encoding, transcode_to_utf8

BATCH_SIZE = 20_000
LATITUDE_NAMES = ("緯度", "lat", "latitude", "LAT", "Lat", "Latitude")
LONGITUDE_NAMES = ("経度", "lon", "lng", "long", "longitude", "LON", "Lon", "Longitude")
SHAPEFILE_MAGIC = 9994


@dataclass
class SourceStream:
    """An open source: its batches, and what GDAL told about it."""

    batches: pa.RecordBatchReader
    crs: str | None
    geometry_type: str | None
    feature_count: int
    encoding: str | None
    warnings: list[str] = field(default_factory=list)


@contextmanager
def open_source(
    path: Path,
    *,
    layer: str | None = None,
    encoding: str | None = None,
    batch_size: int = BATCH_SIZE,
) -> Iterator[SourceStream]:
    """Open `path` and yield its features in Arrow batches; raise `LoadFailed` if unreadable."""
    if not path.is_file():
        raise LoadFailed(f"{path.name}: file not found")
    with tempfile.TemporaryDirectory(prefix="portal-load-") as scratch:
        readable, options, detected = _prepare(path, Path(scratch), encoding)
        caught: list[str] = []
        try:
            with warnings.catch_warnings(record=True) as recorded:
                warnings.simplefilter("always")
                info = pyogrio.read_info(readable, layer=layer, **options)
                with pyogrio.open_arrow(
                    readable, layer=layer, batch_size=batch_size, use_pyarrow=True, **options
                ) as (meta, reader):
                    caught = [str(w.message) for w in recorded]
                    yield SourceStream(
                        batches=reader,
                        crs=meta.get("crs"),
                        geometry_type=_geometry_type(meta),
                        feature_count=int(info.get("features") or 0),
                        encoding=detected,
                        warnings=caught,
                    )
        except (DataSourceError, DataLayerError, OSError, RuntimeError) as exc:
            raise LoadFailed(
                f"{path.name}: GDAL cannot read this file ({_first_line(exc)})"
            ) from exc


def _prepare(
    path: Path, scratch: Path, encoding: str | None
) -> tuple[Path, dict[str, Any], str | None]:
    """Return a path GDAL can read as UTF-8, the open options, and the detected encoding."""
    suffix = path.suffix.lower()
    if suffix in {".csv", ".txt"}:
        return _prepare_csv(path, scratch, encoding)
    if suffix == ".shp":
        check_shapefile_complete(path)
        return path, _shapefile_options(path, encoding), encoding
    return path, {}, encoding


def _prepare_csv(
    path: Path, scratch: Path, encoding: str | None
) -> tuple[Path, dict[str, Any], str]:
    """Transcode a CSV to UTF-8 and find its latitude/longitude columns."""
    with path.open("rb") as handle:
        sample = handle.read(SNIFF_BYTES)
    detected = _python_codec(encoding) if encoding else sniff_encoding(sample)
    readable = scratch / (path.stem + ".csv")
    transcode_to_utf8(path, readable, detected)
    with readable.open(encoding="utf-8-sig") as handle:
        header = [name.strip().strip('"') for name in handle.readline().rstrip("\r\n").split(",")]
    options: dict[str, Any] = {
        "SEPARATOR": "COMMA",
        "AUTODETECT_TYPE": "NO",
        "EMPTY_STRING_AS_NULL": "NO",
    }
    latitude = next((name for name in LATITUDE_NAMES if name in header), None)
    longitude = next((name for name in LONGITUDE_NAMES if name in header), None)
    if latitude and longitude:
        options |= {
            "X_POSSIBLE_NAMES": longitude,
            "Y_POSSIBLE_NAMES": latitude,
            "KEEP_GEOM_COLUMNS": "YES",
        }
    return readable, options, detected


def check_shapefile_complete(path: Path) -> None:
    """Refuse a .shp shorter than its header says: GDAL would read empty geometries."""
    with path.open("rb") as handle:
        header = handle.read(100)
    if len(header) < 100 or int.from_bytes(header[:4], "big") != SHAPEFILE_MAGIC:
        raise LoadFailed(f"{path.name}: not a Shapefile (the .shp header is missing or damaged)")
    declared = int.from_bytes(header[24:28], "big") * 2
    actual = path.stat().st_size
    if actual < declared:
        raise LoadFailed(
            f"{path.name}: the file is truncated ({actual:,} of {declared:,} bytes); "
            "copy the complete .shp again"
        )


def _shapefile_options(path: Path, encoding: str | None) -> dict[str, Any]:
    """Choose the DBF encoding: the caller's, the `.cpg`, or a sniff of the DBF."""
    if encoding:
        return {"ENCODING": _gdal_encoding(encoding)}
    if path.with_suffix(".cpg").exists() or path.with_suffix(".CPG").exists():
        return {}
    dbf = next(
        (p for p in (path.with_suffix(".dbf"), path.with_suffix(".DBF")) if p.exists()), None
    )
    if dbf is None:
        raise LoadFailed(f"{path.name}: the .dbf file of this Shapefile is missing")
    with dbf.open("rb") as handle:
        sample = handle.read(SNIFF_BYTES)
    return {"ENCODING": _gdal_encoding(sniff_encoding(sample))}


def _python_codec(encoding: str) -> str:
    """Map user-facing encoding names to Python codecs (Shift_JIS means CP932 in practice)."""
    name = encoding.lower().replace("-", "_")
    if name in {"shift_jis", "sjis", "cp932", "windows_31j", "ms932"}:
        return "cp932"
    if name in {"utf_8_sig", "utf8_sig"}:
        return "utf-8-sig"
    return "utf-8" if name in {"utf_8", "utf8"} else encoding


def _gdal_encoding(encoding: str) -> str:
    """Map a Python codec name to the name GDAL's recoder knows."""
    codec = _python_codec(encoding)
    return {"cp932": "CP932", "utf-8": "UTF-8", "utf-8-sig": "UTF-8"}.get(codec, codec)


def _geometry_type(meta: dict[str, Any]) -> str | None:
    """Return GDAL's geometry type name, or None for a table without geometry."""
    if not meta.get("geometry_name") and meta.get("geometry_type") in (None, "None"):
        return None
    value = meta.get("geometry_type")
    return None if value in (None, "None") else str(value)


def _first_line(exc: BaseException) -> str:
    """Return the first line of an exception message, without GDAL's noise."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
