"""Layer exports built inside PostGIS and streamed: GeoJSON, CSV and XLSX, by format name.

`EXPORTS` maps a format to its writer, so the OGC issue can add GPKG, SHP or KML by adding
entries. Streaming writers open their own connection lazily (the request's session is closed
before the body is sent); writers that need the whole result first (CP932 CSV, XLSX) finish
into a temporary file before the response starts, so their errors still become clean 4xx.
"""

import codecs
import io
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from psycopg import sql
from sqlalchemy import Engine

from portal.catalog.convert import CSV_MEDIA_TYPES, XLSX_MEDIA_TYPE, write_table
from portal.core.database import LAYERS_SCHEMA
from portal.core.errors import InvalidInput, NotFound
from portal.geo.registry import LayerSummary

MAX_LIMIT = 100_000
FETCH_ROWS = 500
CHUNK_CHARS = 256 * 1024
GEOJSON_MEDIA_TYPE = "application/geo+json"


@dataclass(frozen=True)
class LayerQuery:
    """What part of a layer to export."""

    bbox: tuple[float, float, float, float] | None = None
    limit: int | None = None
    encoding: str = "utf-8"


@dataclass
class ExportBody:
    """An export ready to send: its chunks, and its size when known up front."""

    chunks: Iterator[bytes]
    media_type: str
    size: int | None = None


@dataclass(frozen=True)
class LayerExport:
    """One export format: its media type, which layers it suits, and its writer."""

    media_type: str
    write: Callable[[Engine, LayerSummary, LayerQuery], ExportBody]
    spatial_only: bool = False
    points_or_tables_only: bool = False


@dataclass(frozen=True)
class _Plan:
    """The current version table of a layer and the columns to export."""

    table: str
    columns: list[str]
    geometry_type: str | None


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


def export_layer(engine: Engine, layer: LayerSummary, fmt: str, query: LayerQuery) -> ExportBody:
    """Export a layer the caller may see (checked by the caller) in `fmt`."""
    export = EXPORTS.get(fmt)
    if export is None:
        raise NotFound(f"layer exports come as {', '.join(sorted(EXPORTS))}; not as {fmt!r}")
    if export.spatial_only and not layer.is_spatial:
        raise InvalidInput(
            f"layer {layer.id!r} is a table without geometries; download it as CSV instead"
        )
    if export.points_or_tables_only and layer.geometry_type not in (None, "Point"):
        raise InvalidInput(
            f"{fmt.upper()} is offered for tables and point layers; {layer.id!r} holds "
            f"{layer.geometry_type} geometries, so download GeoJSON or CSV (WKT) instead"
        )
    if query.bbox is not None and not layer.is_spatial:
        raise InvalidInput(f"layer {layer.id!r} has no geometries to filter by bbox")
    return export.write(engine, layer, query)


def _geojson(engine: Engine, layer: LayerSummary, query: LayerQuery) -> ExportBody:
    def chunks() -> Iterator[bytes]:
        with _connection(engine) as connection:
            plan = _plan(connection, layer.id)
            # Each feature is assembled by PostgreSQL; row_to_json keeps the column order.
            properties = (
                sql.SQL("(SELECT row_to_json(p) FROM (SELECT {}) AS p)").format(
                    sql.SQL(", ").join(
                        sql.SQL("t.{}").format(sql.Identifier(c)) for c in plan.columns
                    )
                )
                if plan.columns
                else sql.SQL("'{{}}'::json")
            )
            feature = sql.SQL(
                "json_build_object('type', 'Feature', 'id', t.fid, "
                "'geometry', ST_AsGeoJSON(t.geom)::json, 'properties', {})::text"
            ).format(properties)
            statement = _select(plan, [feature], query)
            head = json.dumps({"type": "FeatureCollection", "name": layer.id}, ensure_ascii=False)
            yield (head[:-1] + ', "features": [\n').encode()
            with connection.cursor(name=f"export_{layer.id}") as cursor:
                cursor.itersize = FETCH_ROWS
                cursor.execute(statement)
                separator, pending = "", io.StringIO()
                for (text,) in cursor:
                    pending.write(separator)
                    pending.write(text)
                    separator = ",\n"
                    # Send about CHUNK_CHARS at a time: big polygons stay out of one huge chunk.
                    if pending.tell() >= CHUNK_CHARS:
                        yield pending.getvalue().encode()
                        pending = io.StringIO()
                yield pending.getvalue().encode() + b"\n]}\n"

    return ExportBody(chunks(), GEOJSON_MEDIA_TYPE)


def _csv(engine: Engine, layer: LayerSummary, query: LayerQuery) -> ExportBody:
    if query.encoding != "utf-8":
        return _table_file(engine, layer, query, "csv")

    def chunks() -> Iterator[bytes]:
        yield codecs.BOM_UTF8  # Excel reads UTF-8 only with a BOM
        with _connection(engine) as connection:
            plan = _plan(connection, layer.id)
            statement = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true)").format(
                _select(plan, _tabular_columns(plan), query)
            )
            with connection.cursor() as cursor, cursor.copy(statement) as copy:
                for data in copy:
                    yield bytes(data)

    return ExportBody(chunks(), CSV_MEDIA_TYPES["utf-8"])


def _xlsx(engine: Engine, layer: LayerSummary, query: LayerQuery) -> ExportBody:
    return _table_file(engine, layer, query, "xlsx")


def _table_file(engine: Engine, layer: LayerSummary, query: LayerQuery, target: str) -> ExportBody:
    """Write the layer's rows to a temporary CSV or XLSX file, then stream that."""
    with _connection(engine) as connection:
        plan = _plan(connection, layer.id)
        expressions = _tabular_columns(plan)
        with connection.cursor(name=f"export_{layer.id}") as cursor:
            cursor.itersize = FETCH_ROWS
            cursor.execute(_select(plan, expressions, query))
            header = [column.name for column in cursor.description or []]

            def rows() -> Iterator[Any]:
                yield header
                yield from cursor

            converted = write_table(rows(), target, encoding=query.encoding, title=layer.title)
    return ExportBody(converted.chunks(), converted.media_type, converted.size)


def _tabular_columns(plan: _Plan) -> list[sql.Composable]:
    """Attributes, then the geometry as 緯度/経度 (points) or WKT (anything else)."""
    is_point = plan.geometry_type == "Point"
    expressions: list[sql.Composable] = []
    for column in plan.columns:
        if is_point and column in ("緯度", "経度"):
            # The stored geometry is what the map shows; its coordinates replace the text.
            function = "ST_Y" if column == "緯度" else "ST_X"
            expressions.append(sql.SQL(function + "(t.geom) AS {}").format(sql.Identifier(column)))
        else:
            expressions.append(sql.SQL("t.{}").format(sql.Identifier(column)))
    if is_point:
        for name, function in (("緯度", "ST_Y"), ("経度", "ST_X")):
            if name not in plan.columns:
                expressions.append(
                    sql.SQL(function + "(t.geom) AS {}").format(sql.Identifier(name))
                )
    elif plan.geometry_type is not None:
        expressions.append(sql.SQL("ST_AsText(t.geom, 9) AS wkt"))
    return expressions


def _select(plan: _Plan, expressions: list[sql.Composable], query: LayerQuery) -> sql.Composed:
    """SELECT the expressions in feature order, filtered by bbox and cut at the limit.

    COPY takes no parameters, so the (already validated) numbers always go in as literals.
    """
    where: sql.Composable = sql.SQL("")
    if query.bbox is not None:
        where = sql.SQL(
            " WHERE t.geom && ST_MakeEnvelope({}, {}, {}, {}, 4326) "
            "AND ST_Intersects(t.geom, ST_MakeEnvelope({}, {}, {}, {}, 4326))"
        ).format(*[sql.Literal(float(v)) for v in query.bbox * 2])
    limit = (
        sql.SQL(" LIMIT {}").format(sql.Literal(int(query.limit))) if query.limit else sql.SQL("")
    )
    return sql.SQL("SELECT {} FROM {} AS t{} ORDER BY t.fid{}").format(
        sql.SQL(", ").join(expressions),
        sql.Identifier(LAYERS_SCHEMA, plan.table),
        where,
        limit,
    )


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


def _plan(connection: Any, layer_id: str) -> _Plan:
    """Read the layer's current table inside the export's own transaction."""
    row = connection.execute(
        "SELECT table_name, columns, geometry_type FROM portal.layers WHERE id = %s", (layer_id,)
    ).fetchone()
    if row is None or row[0] is None:
        raise NotFound(f"layer {layer_id!r} has no data loaded")
    return _Plan(row[0], [column["name"] for column in row[1]], row[2])


EXPORTS: dict[str, LayerExport] = {
    "geojson": LayerExport(GEOJSON_MEDIA_TYPE, _geojson, spatial_only=True),
    "csv": LayerExport(CSV_MEDIA_TYPES["utf-8"], _csv),
    "xlsx": LayerExport(XLSX_MEDIA_TYPE, _xlsx, points_or_tables_only=True),
}
