"""Load a file into PostGIS as a new layer version, swapped in atomically."""

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
from psycopg import sql
from psycopg.types.json import Jsonb
from pyproj import CRS
from sqlalchemy import Engine

from portal.core.database import LAYERS_SCHEMA
from portal.core.errors import LoadFailed, NotFound
from portal.geo import writer
from portal.geo.columns import ColumnSpec, plan_columns
from portal.geo.crs import crs_label, datum_warnings, parse_crs, transformer_to_storage
from portal.geo.csv_points import PointColumns
from portal.geo.geometry import combined_type, prepare_geometries
from portal.geo.sources import SourceStream, open_source

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
WKB_EXTENSIONS = {b"ogc.wkb", b"geoarrow.wkb"}


@dataclass
class LoadResult:
    """What a load wrote, for the registry, the CLI and (later) harvest job records."""

    layer_id: str
    table_name: str
    version: int
    feature_count: int
    geometry_type: str | None
    bbox: list[float] | None
    source_crs: str | None
    warnings: list[str] = field(default_factory=list)


def load_layer_from_file(
    engine: Engine,
    *,
    layer_id: str,
    path: Path,
    source_layer: str | None = None,
    encoding: str | None = None,
    source_crs: str | None = None,
    progress: Progress | None = None,
    point_columns: PointColumns | None = None,
) -> LoadResult:
    """Load `path` into the registered layer `layer_id`; on any error the old version stays.

    `point_columns` names a CSV's coordinate columns when they are not 緯度/経度 or X座標/Y座標.
    """
    if not path.is_file():
        raise LoadFailed(f"{path.name}: file not found")
    digest = file_sha256(path)
    with open_source(
        path,
        layer=source_layer,
        encoding=encoding,
        source_crs=source_crs,
        point_columns=point_columns,
    ) as source:
        crs = _source_crs(source, path, source.crs_override or source_crs)
        notes = list(source.warnings) + (datum_warnings(crs) if crs else [])
        connection = psycopg.connect(_libpq_url(engine), autocommit=False)
        try:
            result = _load(connection, layer_id, path, source, crs, notes, digest, progress)
            connection.commit()
        except psycopg.Error as exc:
            connection.rollback()
            raise LoadFailed(
                f"{path.name}: the database refused the data ({_reason(exc)})"
            ) from exc
        except BaseException:
            connection.rollback()
            raise
        finally:
            connection.close()
    _drop_replaced(engine)
    return result


def file_sha256(path: Path) -> str:
    """Return the SHA-256 of a file (of every part, for a Shapefile)."""
    digest = hashlib.sha256()
    parts = sorted(path.parent.glob(path.stem + ".*")) if path.suffix.lower() == ".shp" else [path]
    for part in parts:
        with part.open("rb") as handle:
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
    return digest.hexdigest()


def _load(
    connection: psycopg.Connection[Any],
    layer_id: str,
    path: Path,
    source: SourceStream,
    crs: CRS | None,
    notes: list[str],
    digest: str,
    progress: Progress | None,
) -> LoadResult:
    cursor = connection.cursor()
    cursor.execute("SELECT version FROM portal.layers WHERE id = %s", (layer_id,))
    if cursor.fetchone() is None:
        raise NotFound(f"layer {layer_id!r} is not registered")
    schema = source.batches.schema
    geometry_column = _geometry_column(schema)
    columns = plan_columns(schema, geometry_column)
    cursor.execute("SELECT nextval('portal.layer_table_seq')")
    row = cursor.fetchone()
    assert row is not None
    table = writer.version_table_name(layer_id, int(row[0]))
    writer.create_version_table(cursor, table, columns, spatial=geometry_column is not None)
    transformer = transformer_to_storage(crs.to_wkt()) if crs and geometry_column else None
    type_names: set[str] = set()
    dropped = done = 0
    invalid_fids: list[int] = []
    for batch in _batches(source, path):
        arrays = [batch.column(c.source) for c in columns]
        if geometry_column is not None:
            prepared = prepare_geometries(batch.column(geometry_column), transformer)
            type_names |= prepared.type_names
            dropped += prepared.dropped
            # COPY assigns the identity fid in row order, starting at 1, in this private table.
            invalid_fids.extend((prepared.invalid_rows + done + 1).tolist())
            arrays.append(prepared.wkb_hex)
        writer.copy_batch(
            cursor, table, columns, pa.table(arrays, names=[str(i) for i in range(len(arrays))])
        )
        done += batch.num_rows
        if progress:
            progress(done, max(source.feature_count, done))
    geometry_type = combined_type(type_names) if geometry_column else None
    stats = writer.finalize_version_table(
        cursor,
        table,
        geometry_type,
        invalid_fids=invalid_fids,
        promote_to_multi=bool(
            geometry_type and geometry_type.startswith("Multi") and len(type_names) > 1
        ),
    )
    if dropped:
        notes.append(
            f"{dropped} features had coordinates outside the globe and were loaded without geometry"
        )
    if stats.repaired:
        notes.append(f"{stats.repaired} invalid geometries were repaired with ST_MakeValid")
    if geometry_type == "Geometry":
        notes.append(_mixed_types_note(cursor, table))
    label = crs_label(crs) if crs else None
    writer.swap_in(
        cursor,
        layer_id,
        table,
        {
            "feature_count": stats.feature_count,
            "geometry_type": geometry_type,
            "bbox": stats.bbox,
            "source_crs": label,
            "source_path": str(path),
            "source_sha256": digest,
            "columns": Jsonb([c.as_json() for c in columns]),
            "warnings": Jsonb(notes),
        },
    )
    cursor.execute("SELECT version FROM portal.layers WHERE id = %s", (layer_id,))
    version_row = cursor.fetchone()
    assert version_row is not None
    return LoadResult(
        layer_id=layer_id,
        table_name=table,
        version=int(version_row[0]),
        feature_count=stats.feature_count,
        geometry_type=geometry_type,
        bbox=stats.bbox,
        source_crs=label,
        warnings=notes,
    )


def _mixed_types_note(cursor: psycopg.Cursor[Any], table: str) -> str:
    """Say which geometry types a mixed layer holds, so the odd ones can be found."""
    cursor.execute(
        sql.SQL(
            "SELECT substr(ST_GeometryType(geom), 4), count(*) FROM {}.{} WHERE geom IS NOT NULL "
            "GROUP BY 1 ORDER BY 2 DESC, 1"
        ).format(sql.Identifier(LAYERS_SCHEMA), sql.Identifier(table))
    )
    counts = ", ".join(f"{count:,} {name}" for name, count in cursor.fetchall())
    return (
        f"the features mix geometry types ({counts}); the layer is stored as mixed "
        "(Geometry): maps show it, but downloads that hold one type (XLSX) are not offered. "
        "Split the file by type if that is not intended"
    )


def _batches(source: SourceStream, path: Path):  # type: ignore[no-untyped-def]
    """Iterate the source's batches, turning read errors into `LoadFailed`."""
    iterator = iter(source.batches)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except (pa.ArrowException, OSError, RuntimeError) as exc:
            raise LoadFailed(f"{path.name}: the file is damaged or truncated ({exc})") from exc
        yield batch


def _source_crs(source: SourceStream, path: Path, forced: str | None) -> CRS | None:
    """Choose the CRS: forced by the caller, declared by the file, or WGS 84 for CSV points."""
    if forced:
        return parse_crs(forced, file_name=path.name)
    if source.crs:
        return parse_crs(source.crs, file_name=path.name)
    if source.geometry_type is None:
        return None
    if path.suffix.lower() in {".csv", ".txt"}:
        return CRS.from_epsg(4326)
    raise LoadFailed(
        f"{path.name}: the file does not say which coordinate reference system it uses "
        "(add a .prj, or give source_crs such as EPSG:6670)"
    )


def _geometry_column(schema: pa.Schema) -> str | None:
    for field_ in schema:
        metadata = field_.metadata or {}
        if metadata.get(b"ARROW:extension:name") in WKB_EXTENSIONS:
            return str(field_.name)
    return None


def _libpq_url(engine: Engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def _reason(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    return primary or str(exc).splitlines()[0]


def _drop_replaced(engine: Engine) -> None:
    """Drop version tables no layer points at any more; a busy table waits for next time."""
    try:
        with psycopg.connect(_libpq_url(engine), autocommit=True) as connection:
            connection.execute("SET lock_timeout = '5s'")
            dropped = writer.drop_orphan_tables(connection.cursor())
            if dropped:
                log.info("dropped replaced layer tables: %s", ", ".join(dropped))
    except psycopg.Error as exc:
        log.warning("could not drop replaced layer tables yet: %s", _reason(exc))


__all__ = ["ColumnSpec", "LoadResult", "PointColumns", "load_layer_from_file"]
