"""Layer exports by format name: GeoJSON, CSV, XLSX, GeoPackage, zipped Shapefile and KML.

`EXPORTS` maps a format to its writer. Every format selects its rows through
`features.selection_sql`, so bbox, CQL2 filter and output CRS mean the same as in the OGC
API; files get x = easting/longitude whatever the CRS's axis order. GeoJSON and UTF-8 CSV are
built in PostGIS and streamed from their own connection (the request's session is closed
before the body is sent); the other formats are finished in a temporary file before the
response starts, so their errors still become clean 4xx.
"""

import codecs
import io
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine

from portal.catalog.convert import CSV_MEDIA_TYPES, XLSX_MEDIA_TYPE, write_table
from portal.core.errors import InvalidInput, NotFound
from portal.geo import export_formats
from portal.geo.export_formats import FileChunks, Selection
from portal.geo.features import FeatureQuery, parse_feature_query, selection_sql
from portal.geo.ogc_crs import CRS84
from portal.geo.registry import LayerSummary

MAX_LIMIT = 100_000
FETCH_ROWS = 500
CHUNK_CHARS = 256 * 1024
GEOJSON_MEDIA_TYPE = "application/geo+json"
KML_SRID = 4326


@dataclass(frozen=True)
class LayerQuery:
    """What part of a layer to export, and in which CRS.

    `bbox` is in degrees (CRS84); `filter` is CQL2 (`filter_lang` cql2-text or cql2-json);
    `crs` names the output CRS (an OGC URI or EPSG:n, CRS84 when None). An OGC items request
    passes its parsed query as `selection` instead; its paging is ignored, `limit` applies.
    """

    bbox: tuple[float, float, float, float] | None = None
    limit: int | None = None
    encoding: str = "utf-8"
    filter: str | None = None
    filter_lang: str | None = None
    crs: str | None = None
    selection: FeatureQuery | None = None


@dataclass
class ExportBody:
    """An export ready to send: its chunks, and its size and file name when known."""

    chunks: Iterator[bytes]
    media_type: str
    size: int | None = None
    file_name: str | None = None


@dataclass(frozen=True)
class LayerExport:
    """One export format: media type, file suffix, which layers it suits, and its writer."""

    media_type: str
    write: Callable[[Engine, LayerSummary, FeatureQuery, LayerQuery], ExportBody]
    suffix: str
    spatial_only: bool = False
    points_or_tables_only: bool = False
    lonlat_only: bool = False


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """Parse `minx,miny,maxx,maxy` in degrees (CRS84), or refuse it with the reason."""
    if text is None or not text.strip():
        return None
    parts = text.split(",")
    try:
        values = [float(part) for part in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise InvalidInput(f"bbox {text!r} must be four numbers: minx,miny,maxx,maxy (degrees)")
    minx, miny, maxx, maxy = values
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise InvalidInput(
            f"bbox {text!r} must be minx,miny,maxx,maxy with longitudes -180..180, latitudes "
            "-90..90, and each minimum not above its maximum"
        )
    return minx, miny, maxx, maxy


def export_format(name: str) -> str:
    """Return the EXPORTS key for a format name or file suffix (`shp.zip` -> `shp`)."""
    key = name.lower()
    for fmt, export in EXPORTS.items():
        if key in (fmt, export.suffix):
            return fmt
    suffixes = ", ".join(f".{export.suffix}" for export in EXPORTS.values())
    raise NotFound(f"layer downloads come as {suffixes}; not as {name!r}")


def split_download_name(file_name: str) -> tuple[str, str]:
    """Split `roads.shp.zip` into the layer id and the format (`roads`, `shp`)."""
    layer_id, dot, suffix = file_name.partition(".")
    if not dot:
        raise NotFound(f"name the download as <layer>.<format>, not {file_name!r}")
    return layer_id, export_format(suffix)


def export_layer(engine: Engine, layer: LayerSummary, fmt: str, query: LayerQuery) -> ExportBody:
    """Export a layer the caller may see (checked by the caller with `get_layer`) in `fmt`."""
    export = EXPORTS.get(fmt)
    if export is None:
        raise NotFound(f"layer exports come as {', '.join(sorted(EXPORTS))}; not as {fmt!r}")
    if export.spatial_only and not layer.is_spatial:
        raise InvalidInput(
            f"layer {layer.id!r} is a table without geometries, which {fmt.upper()} cannot "
            "hold; download it as CSV instead"
        )
    if export.points_or_tables_only and layer.geometry_type not in (None, "Point"):
        raise InvalidInput(
            f"{fmt.upper()} is offered for tables and point layers; {layer.id!r} holds "
            f"{layer.geometry_type} geometries, so download GeoJSON or CSV (WKT) instead"
        )
    if query.bbox is not None and not layer.is_spatial:
        raise InvalidInput(f"layer {layer.id!r} has no geometries to filter by bbox")
    if layer.loaded_at is None:
        raise NotFound(f"layer {layer.id!r} has no data loaded")
    features = feature_query(layer, query)
    if export.lonlat_only and features.crs.srid != KML_SRID:
        raise InvalidInput(
            f"{fmt.upper()} is always in WGS 84 longitude/latitude; leave out crs (or ask for "
            f"{CRS84}), or download GeoPackage or Shapefile for {features.crs.uri}"
        )
    body = export.write(engine, layer, features, query)
    return replace(body, file_name=f"{layer.id}.{export.suffix}")


def feature_query(layer: LayerSummary, query: LayerQuery) -> FeatureQuery:
    """Return the OGC selection of an export, with x = easting/longitude as files have it."""
    selection = query.selection
    if selection is None:
        params = {
            "bbox": ",".join(repr(v) for v in query.bbox) if query.bbox else None,
            "filter": query.filter,
            "filter-lang": query.filter_lang,
            "crs": query.crs,
        }
        selection = parse_feature_query(layer, {k: v for k, v in params.items() if v})
    return replace(selection, crs=replace(selection.crs, lat_first=False))


def _geojson(
    engine: Engine, layer: LayerSummary, features: FeatureQuery, query: LayerQuery
) -> ExportBody:
    columns = _columns(layer, features)
    statement = _rows(layer, features, query)
    _check(engine, layer, statement)
    head: dict[str, Any] = {"type": "FeatureCollection", "name": layer.id}
    if features.crs.uri != CRS84:  # GeoJSON 2008 names any other CRS; x is still easting
        urn = f"urn:ogc:def:crs:EPSG::{features.crs.srid}"
        head["crs"] = {"type": "name", "properties": {"name": urn}}

    def chunks() -> Iterator[bytes]:
        with _connection(engine) as connection:
            # Each feature is assembled by PostgreSQL; row_to_json keeps the column order.
            properties = (
                sql.SQL("(SELECT row_to_json(p) FROM (SELECT {}) AS p)").format(
                    sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in columns)
                )
                if columns
                else sql.SQL("'{}'::json")
            )
            feature = sql.SQL(
                "SELECT json_build_object('type', 'Feature', 'id', s.fid, "
                "'geometry', ST_AsGeoJSON(s.geom, {})::json, 'properties', {})::text "
                "FROM ({}) AS s ORDER BY s.fid"
            ).format(sql.Literal(features.crs.decimals), properties, statement)
            text = json.dumps(head, ensure_ascii=False)
            yield (text[:-1] + ', "features": [\n').encode()
            with connection.cursor(name=f"export_{layer.id}") as cursor:
                cursor.itersize = FETCH_ROWS
                cursor.execute(feature)
                separator, pending = "", io.StringIO()
                for (row,) in cursor:
                    pending.write(separator)
                    pending.write(row)
                    separator = ",\n"
                    # Send about CHUNK_CHARS at a time: big polygons stay out of one huge chunk.
                    if pending.tell() >= CHUNK_CHARS:
                        yield pending.getvalue().encode()
                        pending = io.StringIO()
                yield pending.getvalue().encode() + b"\n]}\n"

    return ExportBody(chunks(), GEOJSON_MEDIA_TYPE)


def _csv(
    engine: Engine, layer: LayerSummary, features: FeatureQuery, query: LayerQuery
) -> ExportBody:
    if query.encoding != "utf-8":
        return _table_file(engine, layer, features, query, "csv")
    statement = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true)").format(
        _tabular(layer, features, query)
    )
    _check(engine, layer, _tabular(layer, features, query))

    def chunks() -> Iterator[bytes]:
        yield codecs.BOM_UTF8  # Excel reads UTF-8 only with a BOM
        with _connection(engine) as connection:
            with connection.cursor() as cursor, cursor.copy(statement) as copy:
                for data in copy:
                    yield bytes(data)

    return ExportBody(chunks(), CSV_MEDIA_TYPES["utf-8"])


def _xlsx(
    engine: Engine, layer: LayerSummary, features: FeatureQuery, query: LayerQuery
) -> ExportBody:
    return _table_file(engine, layer, features, query, "xlsx")


def _table_file(
    engine: Engine, layer: LayerSummary, features: FeatureQuery, query: LayerQuery, target: str
) -> ExportBody:
    """Write the layer's rows to a temporary CSV or XLSX file, then stream that."""
    with _connection(engine) as connection, _filter_errors(layer):
        with connection.cursor(name=f"export_{layer.id}") as cursor:
            cursor.itersize = FETCH_ROWS
            cursor.execute(_tabular(layer, features, query))
            header = [column.name for column in cursor.description or []]

            def rows() -> Iterator[Any]:
                yield header
                yield from cursor

            converted = write_table(rows(), target, encoding=query.encoding, title=layer.title)
    return ExportBody(converted.chunks(), converted.media_type, converted.size)


def _file_writer(
    write: Callable[[Any, Selection, Path], Path], media_type: str
) -> Callable[[Engine, LayerSummary, FeatureQuery, LayerQuery], ExportBody]:
    """Make an export that has GDAL write a whole file before the response starts."""

    def export(
        engine: Engine, layer: LayerSummary, features: FeatureQuery, query: LayerQuery
    ) -> ExportBody:
        selection = Selection(
            statement=_rows(layer, features, query),
            columns=tuple(_columns(layer, features)),
            layer_name=layer.id,
            geometry_type=layer.geometry_type,
            srid=features.crs.srid,
        )
        with _connection(engine) as connection, _filter_errors(layer):
            file, size = export_formats.write_temporary(
                lambda directory: write(connection, selection, directory)
            )
        return ExportBody(FileChunks(file), media_type, size)

    return export


def _columns(layer: LayerSummary, features: FeatureQuery) -> list[str]:
    """The attribute columns the selection returns, in its order."""
    return layer.column_names if features.properties is None else list(features.properties)


def _rows(layer: LayerSummary, features: FeatureQuery, query: LayerQuery) -> sql.Composable:
    """The selection of every matching feature in fid order, cut at the export's limit."""
    statement = selection_sql(layer, features, paged=False)
    if not query.limit:
        return statement
    return sql.SQL("SELECT * FROM ({}) AS chosen ORDER BY fid LIMIT {}").format(
        statement, sql.Literal(int(query.limit))
    )


def _tabular(layer: LayerSummary, features: FeatureQuery, query: LayerQuery) -> sql.Composed:
    """Attributes, then the geometry as 緯度/経度 (points) or WKT (anything else).

    Points in a projected CRS keep 緯度/経度 in degrees and add their WKT in that CRS.
    """
    columns = _columns(layer, features)
    crs = features.crs
    is_point = layer.geometry_type == "Point"
    degrees = sql.SQL("s.geom" if crs.is_geographic else "ST_Transform(s.geom, 4326)")
    coordinate = {"緯度": "ST_Y", "経度": "ST_X"}
    expressions: list[sql.Composable] = []
    for column in columns:
        if is_point and column in coordinate:
            # The stored geometry is what the map shows; its coordinates replace the text.
            expressions.append(
                sql.SQL(coordinate[column] + "({}) AS {}").format(degrees, sql.Identifier(column))
            )
        else:
            expressions.append(sql.SQL("s.{}").format(sql.Identifier(column)))
    if is_point:
        for name, function in coordinate.items():
            if name not in columns:
                expressions.append(
                    sql.SQL(function + "({}) AS {}").format(degrees, sql.Identifier(name))
                )
    if layer.geometry_type is not None and not (is_point and crs.is_geographic):
        expressions.append(
            sql.SQL("ST_AsText(s.geom, {}) AS wkt").format(sql.Literal(crs.decimals))
        )
    return sql.SQL("SELECT {} FROM ({}) AS s ORDER BY s.fid").format(
        sql.SQL(", ").join(expressions) if expressions else sql.SQL("s.fid"),
        _rows(layer, features, query),
    )


def _check(engine: Engine, layer: LayerSummary, statement: sql.Composable) -> None:
    """Plan a streamed export's query first, so a filter PostgreSQL refuses is a clean 400."""
    with _connection(engine) as connection, _filter_errors(layer):
        connection.execute(sql.SQL("EXPLAIN {}").format(statement))


@contextmanager
def _filter_errors(layer: LayerSummary) -> Iterator[None]:
    """Turn what PostgreSQL says about an unusable filter value into InvalidInput."""
    try:
        yield
    except (psycopg.errors.DataError, psycopg.errors.UndefinedFunction) as exc:
        reason = exc.diag.message_primary or str(exc)
        raise InvalidInput(f"the filter cannot be applied to layer {layer.id!r}: {reason}") from exc


@contextmanager
def _connection(engine: Engine) -> Iterator[Any]:
    """A pooled psycopg connection in a read-only transaction, returned to the pool after."""
    raw = engine.raw_connection()
    try:
        connection: Any = raw.driver_connection
        connection.execute("SET TRANSACTION READ ONLY")
        yield connection
    finally:
        try:
            raw.rollback()
        except Exception:
            # A COPY cut short by a client that went away can leave the connection unusable.
            raw.invalidate()
        raw.close()


EXPORTS: dict[str, LayerExport] = {
    "geojson": LayerExport(GEOJSON_MEDIA_TYPE, _geojson, "geojson", spatial_only=True),
    "csv": LayerExport(CSV_MEDIA_TYPES["utf-8"], _csv, "csv"),
    "xlsx": LayerExport(XLSX_MEDIA_TYPE, _xlsx, "xlsx", points_or_tables_only=True),
    "gpkg": LayerExport(
        export_formats.GPKG_MEDIA_TYPE,
        _file_writer(export_formats.write_geopackage, export_formats.GPKG_MEDIA_TYPE),
        "gpkg",
    ),
    "shp": LayerExport(
        export_formats.SHAPEFILE_MEDIA_TYPE,
        _file_writer(export_formats.write_shapefile_zip, export_formats.SHAPEFILE_MEDIA_TYPE),
        "shp.zip",
        spatial_only=True,
    ),
    "kml": LayerExport(
        export_formats.KML_MEDIA_TYPE,
        _file_writer(export_formats.write_kml, export_formats.KML_MEDIA_TYPE),
        "kml",
        spatial_only=True,
        lonlat_only=True,
    ),
}
