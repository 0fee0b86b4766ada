"""Feature queries of OGC API Features Parts 1–3: parse the parameters, select, read pages.

A page of GeoJSON is assembled by PostgreSQL in one statement (features joined by commas, in
fid order) and handed over as UTF-8 bytes, so no Python work is done per feature.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any

import psycopg
from psycopg import sql
from psycopg.adapt import Buffer, Loader
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from portal.core.database import LAYERS_SCHEMA
from portal.core.errors import InvalidInput, NotFound
from portal.core.principal import Principal
from portal.geo.cql import column_kind, filter_to_sql, parse_moment, property_equals_sql
from portal.geo.edits import etag_sql
from portal.geo.ogc_crs import (
    DEFAULT_CRS,
    OutputCrs,
    bbox_condition_sql,
    bbox_order,
    check_bbox,
    output_geometry_sql,
    parse_crs,
)
from portal.geo.pool import STATEMENT_TIMEOUT_MS, read_connection
from portal.geo.registry import LayerSummary, get_layer

DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000
NUMBER_MATCHED_LIMIT = 100_000
QUERY_PARAMETERS = frozenset(
    {"bbox", "bbox-crs", "crs", "datetime", "filter", "filter-lang", "filter-crs"}
    | {"properties", "limit", "offset", "cursor"}
)
Period = tuple[datetime | None, datetime | None]


@dataclass(frozen=True)
class FeatureQuery:
    """Which features of a layer to return, in which CRS, and which page of them.

    `bbox` is in `bbox_crs` axis order as sent; `filter_sql` names the layer's row `t`.
    """

    bbox: tuple[float, float, float, float] | None = None
    bbox_crs: OutputCrs = DEFAULT_CRS
    crs: OutputCrs = DEFAULT_CRS
    datetime: Period | None = None
    filter_sql: sql.Composable | None = field(default=None, compare=False)
    properties: tuple[str, ...] | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    after_fid: int | None = None

    @property
    def is_filtered(self) -> bool:
        """Tell whether anything but paging narrows the features."""
        return self.bbox is not None or self.datetime is not None or self.filter_sql is not None


@dataclass(frozen=True)
class ItemsPage:
    """One page of features: the Feature objects joined by commas, as UTF-8 bytes."""

    features: bytes
    number_returned: int
    number_matched: int | None
    next_cursor: int | None

    @property
    def features_json(self) -> str:
        """Return the features as text (decoding costs time on big pages; prefer `features`)."""
        return self.features.decode()


@dataclass(frozen=True)
class FeatureText:
    """One GeoJSON Feature as text, and its strong ETag (the one edits check If-Match with)."""

    json: str
    etag: str


def parse_feature_query(layer: LayerSummary, params: Mapping[str, str]) -> FeatureQuery:
    """Read the query parameters of /items; `prop=value` pairs on columns become filters."""
    bbox_crs = parse_crs(params.get("bbox-crs"), parameter="bbox-crs")
    bbox = _parse_bbox(params.get("bbox"), bbox_crs)
    if bbox is not None and not layer.is_spatial:
        raise InvalidInput(f"layer {layer.id!r} has no geometries to filter by bbox")
    period = parse_datetime_interval(params.get("datetime"))
    if period is not None and temporal_column(layer) is None:
        raise InvalidInput(f"layer {layer.id!r} has no date or time column to filter by datetime")
    conditions = [
        property_equals_sql(layer, name, value)
        for name, value in params.items()
        if name not in QUERY_PARAMETERS and name in layer.column_names
    ]
    text = params.get("filter")
    if text is not None:
        crs = parse_crs(params.get("filter-crs"), parameter="filter-crs")
        conditions.append(filter_to_sql(layer, text, lang=params.get("filter-lang"), crs=crs))
    return FeatureQuery(
        bbox=bbox,
        bbox_crs=bbox_crs,
        crs=parse_crs(params.get("crs"), parameter="crs"),
        datetime=period,
        filter_sql=sql.SQL(" AND ").join(conditions) if conditions else None,
        properties=_parse_properties(layer, params.get("properties")),
        limit=_whole(params.get("limit"), "limit", DEFAULT_LIMIT, high=MAX_LIMIT, low=1),
        offset=_whole(params.get("offset"), "offset", 0),
        after_fid=_cursor(params.get("cursor")),
    )


def parse_datetime_interval(text: str | None) -> Period | None:
    """Read `datetime`: an instant, a date (the whole day, UTC) or start/end with `..` open."""
    if text is None or not text.strip():
        return None
    parts = text.strip().split("/")
    if len(parts) > 2 or parts == [".."]:
        raise InvalidInput(_datetime_help(text))
    start = _moment(parts[0], text, end=False)
    end = _moment(parts[-1], text, end=True)
    if len(parts) == 1 or start is None or end is None:
        return start, end
    if start > end:
        raise InvalidInput(f"datetime {text!r} starts after it ends")
    return start, end


def temporal_column(layer: LayerSummary) -> str | None:
    """Return the column `datetime` filters on: the first date or timestamp column."""
    for column in layer.columns:
        if column_kind(column["type"]) in ("date", "timestamp"):
            return column["name"]
    return None


def selection_sql(layer: LayerSummary, query: FeatureQuery, *, paged: bool = True) -> sql.Composed:
    """SELECT fid, the columns and geom (in `query.crs`, axis order of the CRS) in fid order."""
    columns = [sql.SQL("t.fid"), *(_column(name) for name in _properties(layer, query))]
    if layer.is_spatial:
        geometry = output_geometry_sql(query.crs, sql.SQL("t.geom"))
        columns.append(sql.SQL("{} AS geom").format(geometry))
    statement = sql.SQL("SELECT {} FROM {} AS t{} ORDER BY t.fid").format(
        sql.SQL(", ").join(columns), _table(layer), _where(_conditions(layer, query, paged))
    )
    return statement + _page(query) if paged else statement


def read_items(
    engine: Engine,
    principal: Principal,
    layer_id: str,
    query: FeatureQuery,
    *,
    number_matched_limit: int = NUMBER_MATCHED_LIMIT,
) -> ItemsPage:
    """Return one page of a layer's features; numberMatched is None above the limit."""
    layer = _loaded_layer(engine, principal, layer_id)
    keyset = _conditions(layer, query, True)
    names = _properties(layer, query)
    # row_to_json of a LATERAL row keeps the column names and order, and measured fastest.
    properties = sql.SQL(", LATERAL (SELECT {}) AS p").format(
        sql.SQL(", ").join(_column(name) for name in names)
    )
    columns = [sql.SQL("t.fid"), *([sql.SQL("t.geom")] if layer.is_spatial else [])]
    matched: sql.Composable = sql.SQL("NULL::bigint")
    if query.is_filtered:
        matched = sql.SQL("(SELECT count(*) FROM (SELECT FROM {} AS t{} LIMIT {}) AS c)").format(
            _table(layer),
            _where(_conditions(layer, query, False)),
            sql.Literal(number_matched_limit + 1),
        )
    # EXISTS after the last fid tells whether a next page follows, cheaper than one more row.
    statement = sql.SQL(
        "SELECT a.features, a.n, a.last,"
        " a.n = {limit} AND EXISTS (SELECT FROM {table} AS t{after}), {matched}"
        " FROM (SELECT string_agg({feature}, ',') AS features, count(*) AS n, max(t.fid) AS last"
        " FROM (SELECT {columns}, p FROM {table} AS t{properties}{where} ORDER BY t.fid{page})"
        " AS t) AS a"
    ).format(
        limit=sql.Literal(query.limit),
        table=_table(layer),
        after=_where([*keyset, sql.SQL("t.fid > a.last")]),
        matched=matched,
        feature=_feature_sql(layer, query, sql.SQL("row_to_json(t.p)")),
        columns=sql.SQL(", ").join(columns),
        properties=properties,
        where=_where(keyset),
        page=_page(query),
    )
    features, count, last, more, counted = _fetch(engine, statement) or (None, 0, None, False, 0)
    if not query.is_filtered:
        counted = layer.feature_count
    elif counted is not None and counted > number_matched_limit:
        counted = None
    return ItemsPage(features or b"", int(count), counted, int(last) if more else None)


def read_item(
    engine: Engine, principal: Principal, layer_id: str, fid: int, *, crs: OutputCrs = DEFAULT_CRS
) -> FeatureText:
    """Return one feature as GeoJSON text with its ETag, or NotFound."""
    layer = _loaded_layer(engine, principal, layer_id)
    statement = sql.SQL("SELECT {}, {} FROM {} AS t WHERE t.fid = {}").format(
        _feature_sql(layer, FeatureQuery(crs=crs)),
        etag_sql(alias="t"),
        _table(layer),
        sql.Literal(fid),
    )
    row = _fetch(engine, statement)
    if row is None:
        raise NotFound(f"feature {fid} not found in layer {layer_id!r}")
    return FeatureText(row[0].decode(), row[1].decode())


def feature_sql(layer: LayerSummary, crs: OutputCrs = DEFAULT_CRS) -> sql.Composable:
    """Return the SQL expression of one row `t` of the layer as a GeoJSON Feature (text)."""
    return _feature_sql(layer, FeatureQuery(crs=crs))


def _feature_sql(
    layer: LayerSummary, query: FeatureQuery, properties: sql.Composable | None = None
) -> sql.Composable:
    """A Feature as text from row `t`; `properties` is its JSON object (else built from t)."""
    names = _properties(layer, query)
    if properties is None:
        properties = sql.SQL("(SELECT row_to_json(p) FROM (SELECT {}) AS p)").format(
            sql.SQL(", ").join(_column(name) for name in names)
        )
    geometry: sql.Composable = sql.SQL("'null'")
    if layer.is_spatial:
        geometry = sql.SQL("COALESCE(ST_AsGeoJSON({}, {}, 0), 'null')").format(
            output_geometry_sql(query.crs, sql.SQL("t.geom")), sql.Literal(query.crs.decimals)
        )
    return sql.SQL(
        """'{{"type":"Feature","id":' || t.fid || ',"geometry":' || {} """
        """|| ',"properties":' || {} || '}}'"""
    ).format(geometry, properties if names else sql.SQL("'{}'"))


def _loaded_layer(engine: Engine, principal: Principal, layer_id: str) -> LayerSummary:
    with Session(engine) as session:
        layer = get_layer(session, principal, layer_id)
    if layer.version == 0:
        raise NotFound(f"layer {layer_id!r} has no data loaded")
    return layer


def _conditions(layer: LayerSummary, query: FeatureQuery, keyset: bool) -> list[sql.Composable]:
    conditions: list[sql.Composable] = []
    if query.bbox is not None:
        conditions.append(bbox_condition_sql(sql.SQL("t.geom"), query.bbox_crs, query.bbox))
    column = temporal_column(layer)
    if query.datetime is not None and column is not None:
        is_date = column_kind(_type_of(layer, column)) == "date"
        for moment, operator in zip(query.datetime, (">=", "<="), strict=True):
            if moment is not None:
                value = moment.date() if is_date else moment
                conditions.append(
                    sql.SQL("{} " + operator + " {}").format(_column(column), sql.Literal(value))
                )
    if query.filter_sql is not None:
        conditions.append(sql.SQL("({})").format(query.filter_sql))
    if keyset and query.after_fid is not None:
        conditions.append(sql.SQL("t.fid > {}").format(sql.Literal(query.after_fid)))
    return conditions


def _where(conditions: list[sql.Composable]) -> sql.Composable:
    if not conditions:
        return sql.SQL("")
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions)


def _page(query: FeatureQuery) -> sql.Composable:
    offset = (
        sql.SQL(" OFFSET {}").format(sql.Literal(query.offset)) if query.offset else sql.SQL("")
    )
    return sql.SQL(" LIMIT {}").format(sql.Literal(query.limit)) + offset


def _properties(layer: LayerSummary, query: FeatureQuery) -> list[str]:
    return list(query.properties) if query.properties is not None else layer.column_names


def _column(name: str) -> sql.Composable:
    return sql.Identifier("t", name)


def _table(layer: LayerSummary) -> sql.Composable:
    return sql.Identifier(LAYERS_SCHEMA, layer.id)


def _type_of(layer: LayerSummary, name: str) -> str:
    return next(column["type"] for column in layer.columns if column["name"] == name)


class _BytesLoader(Loader):
    """Hands text over as the UTF-8 bytes PostgreSQL sent, skipping decode and re-encode."""

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


def _fetch(engine: Engine, statement: sql.Composed) -> tuple[Any, ...] | None:
    """Run one statement on a pooled read-only connection and return its one row."""
    for attempt in (1, 2):
        try:
            with read_connection(engine) as connection, connection.cursor() as cursor:
                cursor.adapters.register_loader("text", _BytesLoader)
                return cursor.execute(statement).fetchone()
        except psycopg.errors.QueryCanceled:
            raise InvalidInput(
                f"the query took longer than {STATEMENT_TIMEOUT_MS // 1000} s; narrow it with "
                "bbox, a filter or a smaller limit"
            ) from None
        except (psycopg.errors.DataError, psycopg.errors.InternalError_) as exc:
            reason = exc.diag.message_primary or "the database refused it"
            raise InvalidInput(f"the query cannot be answered: {reason}") from None
        except psycopg.OperationalError:
            if attempt == 2:
                raise
    return None


def _parse_bbox(text: str | None, crs: OutputCrs) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        numbers = [float(part) for part in text.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) not in (4, 6) or not all(math.isfinite(v) for v in numbers):
        raise InvalidInput(
            f"bbox {text!r} must be 4 numbers (or 6 with heights) separated by commas; "
            + bbox_order(crs)
        )
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    bbox = (numbers[0], numbers[1], numbers[2], numbers[3])
    check_bbox(crs, bbox, text=text)
    return bbox


def _parse_properties(layer: LayerSummary, text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in layer.column_names]
    if unknown:
        raise InvalidInput(
            f"unknown property {unknown[0]!r} in properties; the properties of layer "
            f"{layer.id!r} are: {', '.join(layer.column_names)}"
        )
    return names


def _whole(
    text: str | None, name: str, default: int, *, high: int | None = None, low: int = 0
) -> int:
    if text is None:
        return default
    value = (
        int(text) if text.strip().isascii() and text.strip().isdigit() and len(text) < 19 else None
    )
    if value is None or value < low or (high is not None and value > high):
        limits = f"from {low} to {high}" if high is not None else f"of {low} or more"
        raise InvalidInput(f"{name} must be a whole number {limits}; got {text!r}")
    return value


def _cursor(text: str | None) -> int | None:
    if text is None:
        return None
    if not (text.isascii() and text.isdigit() and len(text) < 19):
        raise InvalidInput(
            f"cursor {text!r} is not valid; follow the next link of the previous page"
        )
    return int(text)


def _moment(text: str, whole: str, *, end: bool) -> datetime | None:
    """Read one end of `datetime`; a date stands for its first or last instant (UTC)."""
    if text in ("", ".."):
        return None
    moment = parse_moment(text)
    if moment is None:
        raise InvalidInput(_datetime_help(whole))
    if isinstance(moment, datetime):
        return moment
    return datetime.combine(moment, time.max if end else time.min, tzinfo=UTC)


def _datetime_help(text: str) -> str:
    return (
        f"datetime {text!r} must be a date-time such as 2024-04-01T09:00:00+09:00, a date "
        "such as 2024-04-01, or an interval start/end with .. for an open end"
    )
