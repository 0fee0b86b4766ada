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

from portal.catalog.preview import check_xlsx_archive
from portal.core.errors import InvalidInput, LoadFailed
from portal.geo.csv_points import PointColumns
from portal.geo.csv_source import prepare_csv
from portal.geo.dbf import check_dbf_complete, choose_dbf_encoding, cpg_codec
from portal.geo.xml_safety import check_xml_safe

BATCH_SIZE = 20_000
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
    # A CRS worked out from the caller's source_crs and the data, which beats both.
    crs_override: str | None = None


@contextmanager
def open_source(
    path: Path,
    *,
    layer: str | None = None,
    encoding: str | None = None,
    batch_size: int = BATCH_SIZE,
    source_crs: str | None = None,
    point_columns: PointColumns | None = None,
) -> Iterator[SourceStream]:
    """Open `path` and yield its features in Arrow batches; raise `LoadFailed` if unreadable.

    `source_crs` is the CRS the caller forces (it decides how CSV X/Y columns are read);
    `point_columns` names a CSV's coordinate columns when they are not the usual ones.
    """
    if not path.is_file():
        raise LoadFailed(f"{path.name}: file not found")
    with tempfile.TemporaryDirectory(prefix="portal-load-") as scratch:
        readable, options, detected, crs_override, notes = _prepare(
            path, Path(scratch), encoding, source_crs, point_columns
        )
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
                        warnings=notes + caught,
                        crs_override=crs_override,
                    )
        except (DataSourceError, DataLayerError, OSError, RuntimeError) as exc:
            raise LoadFailed(
                f"{path.name}: GDAL cannot read this file ({_first_line(exc)})"
            ) from exc


def _prepare(
    path: Path,
    scratch: Path,
    encoding: str | None,
    source_crs: str | None,
    point_columns: PointColumns | None,
) -> tuple[Path, dict[str, Any], str | None, str | None, list[str]]:
    """Return a path GDAL can read, its open options, the encoding, a CRS override, notes."""
    suffix = path.suffix.lower()
    codec = _python_codec(encoding) if encoding else None
    if suffix in {".csv", ".txt"}:
        csv = prepare_csv(
            path,
            scratch,
            codec=codec,
            source_crs=source_crs,
            point_columns=point_columns,
        )
        return csv.path, csv.options, csv.encoding, csv.crs_override, csv.warnings
    if suffix == ".shp":
        check_shapefile_complete(path)
        options, detected = _shapefile_options(path, codec)
        return path, options, detected, None, []
    if suffix in {".kml", ".gml"}:
        check_xml_safe(path)
    if suffix == ".xlsx":
        _check_workbook(path)
    return path, {}, encoding, None, []


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


def _shapefile_options(path: Path, codec: str | None) -> tuple[dict[str, Any], str | None]:
    """Choose the DBF encoding (the caller's, the `.cpg`, or detected) and check the text."""
    dbf = _part(path, ".dbf")
    if dbf is None:
        raise LoadFailed(
            f"{path.name}: the .dbf part of this Shapefile is missing; copy every part "
            "(.shp, .shx, .dbf, .prj, .cpg) together"
        )
    check_dbf_complete(dbf)
    cpg = _part(path, ".cpg")
    declared_by = "the encoding setting" if codec else None
    if codec is None and cpg is not None:
        codec, declared_by = cpg_codec(cpg), f"its .cpg file ({cpg.name})"
        if codec is None:
            return {}, None  # a code page we do not know: GDAL reads the .cpg itself
    chosen = choose_dbf_encoding(dbf, codec, declared_by)
    return ({"ENCODING": _gdal_encoding(chosen)} if chosen else {}), chosen


def _part(path: Path, suffix: str) -> Path | None:
    """A Shapefile part beside the .shp, in either letter case."""
    for candidate in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
        if candidate.exists():
            return candidate
    return None


def _check_workbook(path: Path) -> None:
    """Refuse an XLSX that is not a workbook or would expand too far, before GDAL opens it."""
    try:
        check_xlsx_archive(path)
    except InvalidInput as exc:
        raise LoadFailed(f"{path.name}: {exc.message}") from exc


def _python_codec(encoding: str) -> str:
    """Map user-facing encoding names to Python codecs (Shift_JIS means CP932 in practice)."""
    name = encoding.lower().replace("-", "_")
    if name in {"shift_jis", "sjis", "cp932", "windows_31j", "ms932"}:
        return "cp932"
    if name in {"euc_jp", "eucjp", "ujis"}:
        return "euc_jp"
    if name in {"utf_8_sig", "utf8_sig"}:
        return "utf-8-sig"
    return "utf-8" if name in {"utf_8", "utf8"} else encoding


def _gdal_encoding(encoding: str) -> str:
    """Map a Python codec name to the name GDAL's recoder knows."""
    codec = _python_codec(encoding)
    names = {"cp932": "CP932", "utf-8": "UTF-8", "utf-8-sig": "UTF-8", "euc_jp": "EUC-JP"}
    return names.get(codec, codec)


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
