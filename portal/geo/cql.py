"""CQL2 filters (text and JSON, OGC API Features Part 3) compiled into safe SQL for one layer.

`cql_parse` turns the filter into pygeofilter's syntax tree; this module walks the tree into
psycopg `sql` objects in which every value is a `Literal` and every name an `Identifier`
checked against the layer's columns, each value read as the type of the column it meets.
"""

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy
import shapely
import shapely.geometry
from psycopg import sql
from pygeofilter import ast, values

from portal.core.errors import InvalidInput
from portal.geo.cql_parse import is_number, parse_filter
from portal.geo.ogc_crs import (
    DEFAULT_CRS,
    OutputCrs,
    bbox_condition_sql,
    check_bbox,
    parse_crs,
    to_storage_sql,
)
from portal.geo.registry import LayerSummary

GEOMETRY_NAMES = ("geometry", "geom")
ID_NAMES = ("id", "fid")
ALIAS = "t"
MAX_DEPTH = 200
HOLDS = {"number": "numbers", "boolean": "true or false", "date": "dates", "text": "text"}
HOLDS |= {"timestamp": "dates and times"}
NUMBER_TYPES = {"smallint", "integer", "bigint", "real", "double precision", "int2", "int4"}
NUMBER_TYPES |= {"int8", "float4", "float8", "int"}
TEXT_TYPES = ("text", "character", "varchar", "char", "bpchar", "citext", "name")
COMPARISON = {
    ast.ComparisonOp.EQ: "=",
    ast.ComparisonOp.NE: "<>",
    ast.ComparisonOp.LT: "<",
    ast.ComparisonOp.LE: "<=",
    ast.ComparisonOp.GT: ">",
    ast.ComparisonOp.GE: ">=",
}
SPATIAL = {
    ast.GeometryIntersects: "ST_Intersects",
    ast.GeometryDisjoint: "ST_Disjoint",
    ast.GeometryContains: "ST_Contains",
    ast.GeometryWithin: "ST_Within",
    ast.GeometryTouches: "ST_Touches",
    ast.GeometryCrosses: "ST_Crosses",
    ast.GeometryOverlaps: "ST_Overlaps",
    ast.GeometryEquals: "ST_Equals",
}
ARITHMETIC = {ast.Add: "+", ast.Sub: "-", ast.Mul: "*"}
# CQL2's interval relations for an instant property x (an interval [x, x]) against [start, end]
# (an instant t is [t, t]): each is (operator, 0 = start | 1 = end) tests joined by AND.
TEMPORAL: dict[type, tuple[tuple[str, int], ...]] = {
    ast.TimeAfter: ((">", 1),),
    ast.TimeBefore: (("<", 0),),
    ast.TimeContains: (("<", 0), (">", 1)),
    ast.TimeDuring: ((">", 0), ("<", 1)),
    ast.TimeEquals: (("=", 0), ("=", 1)),
    ast.TimeEndedBy: (("<", 0), ("=", 1)),
    ast.TimeEnds: ((">", 0), ("=", 1)),
    ast.TimeMeets: (("=", 0),),
    ast.TimeMetBy: (("=", 1),),
    ast.TimeOverlappedBy: ((">", 0), ("<", 1), (">", 1)),
    ast.TimeOverlaps: (("<", 0), (">", 0), ("<", 1)),
    ast.TimeBegunBy: (("=", 0), (">", 1)),
    ast.TimeBegins: (("=", 0), ("<", 1)),
}
INVERSE_TEMPORAL = {
    ast.TimeAfter: ast.TimeBefore,
    ast.TimeContains: ast.TimeDuring,
    ast.TimeEndedBy: ast.TimeEnds,
    ast.TimeMeets: ast.TimeMetBy,
    ast.TimeOverlappedBy: ast.TimeOverlaps,
    ast.TimeBegunBy: ast.TimeBegins,
}
INVERSE_TEMPORAL |= {value: key for key, value in INVERSE_TEMPORAL.items()}
TEMPORAL_NAMES = {ast.TimeBegins: "T_STARTS", ast.TimeBegunBy: "T_STARTEDBY"}
TEMPORAL_NAMES |= {ast.TimeEnds: "T_FINISHES", ast.TimeEndedBy: "T_FINISHEDBY"}


def queryable_names(layer: LayerSummary) -> list[str]:
    """Return the property names a filter may use: the columns, then `geometry`."""
    return [*layer.column_names, *(["geometry"] if layer.is_spatial else [])]


def column_kind(pg_type: str) -> str:
    """Return how a PostgreSQL type compares: number, text, boolean, date, timestamp."""
    name = pg_type.lower().split("(")[0].strip()
    if name in NUMBER_TYPES or name in ("numeric", "decimal"):
        return "number"
    if name in ("boolean", "bool"):
        return "boolean"
    if name == "date":
        return "date"
    return "timestamp" if name.startswith("timestamp") else "text"


def filter_to_sql(
    layer: LayerSummary, text: str, *, lang: str | None = None, crs: OutputCrs = DEFAULT_CRS
) -> sql.Composable:
    """Compile a CQL2 filter on `layer` into a WHERE condition over alias `t`."""
    tree = parse_filter(text, lang=lang)
    try:
        return _Compiler(layer, crs).condition(tree)
    except RecursionError:
        raise InvalidInput("the filter is nested too deeply") from None


def property_equals_sql(layer: LayerSummary, name: str, value: str) -> sql.Composable:
    """Return `name = value` for a `prop=value` query parameter, the value read as the column's."""
    compiler = _Compiler(layer, DEFAULT_CRS)
    column = compiler.column(name)
    return sql.SQL("{} = {}").format(column.sql, compiler.literal(value, column))


def parse_moment(text: str) -> date | datetime | None:
    """Read an RFC 3339 date or date-time (naive times are UTC), or None if it is neither."""
    text = text.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class _Column:
    """A property as the filter sees it: its SQL and the kind of values it holds."""

    def __init__(self, expression: sql.Composable, kind: str, name: str) -> None:
        self.sql, self.kind, self.name = expression, kind, name


class _Compiler:
    """Walks a parsed filter into SQL, checking names and reading values as their columns'."""

    def __init__(self, layer: LayerSummary, crs: OutputCrs) -> None:
        self.layer, self.crs = layer, crs
        self.types = {column["name"]: column["type"] for column in layer.columns}
        self.depth = 0

    def condition(self, node: Any) -> sql.Composable:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise InvalidInput(f"the filter nests more than {MAX_DEPTH} conditions; simplify it")
        try:
            return self.predicate(node)
        finally:
            self.depth -= 1

    def predicate(self, node: Any) -> sql.Composable:
        if isinstance(node, bool):
            return sql.SQL("TRUE" if node else "FALSE")
        if isinstance(node, ast.And | ast.Or):
            joiner = sql.SQL(" AND " if isinstance(node, ast.And) else " OR ")
            parts = [self.condition(node.lhs), self.condition(node.rhs)]
            return sql.SQL("({})").format(joiner.join(parts))
        if isinstance(node, ast.Not):
            return sql.SQL("NOT ({})").format(self.condition(node.sub_node))
        if isinstance(node, ast.Include):
            return sql.SQL("FALSE" if node.not_ else "TRUE")
        if isinstance(node, ast.Comparison):
            lhs, rhs = self.pair(node.lhs, node.rhs)
            return sql.SQL("{} " + COMPARISON[node.op] + " {}").format(lhs, rhs)
        if isinstance(node, ast.Between):
            column = self.scalar(node.lhs)
            bounds = [self.literal(v, column) for v in (node.low, node.high)]
            template = "{} NOT BETWEEN {} AND {}" if node.not_ else "{} BETWEEN {} AND {}"
            return sql.SQL(template).format(column.sql, *bounds)
        if isinstance(node, ast.Like):
            return self.like(node)
        if isinstance(node, ast.In):
            if not isinstance(node.sub_nodes, list) or not node.sub_nodes:
                raise InvalidInput("IN needs a list of values, such as 舗装 IN ('有', '無')")
            column = self.scalar(node.lhs)
            options = sql.SQL(", ").join([self.literal(v, column) for v in node.sub_nodes])
            template = "NOT ({} IN ({}))" if node.not_ else "{} IN ({})"
            return sql.SQL(template).format(column.sql, options)
        if isinstance(node, ast.IsNull):
            target = self.attribute(node.lhs)
            return sql.SQL("{} IS NOT NULL" if node.not_ else "{} IS NULL").format(target.sql)
        if isinstance(node, ast.SpatialComparisonPredicate):
            function = SPATIAL[type(node)]
            sides = [self.geometry(side, function) for side in (node.lhs, node.rhs)]
            return sql.SQL(function + "({}, {})").format(*sides)
        if isinstance(node, ast.BBox):
            return self.bbox(node)
        if isinstance(node, ast.Relate):
            if not re.fullmatch(r"[TF012*]{9}", str(node.pattern), re.IGNORECASE):
                raise InvalidInput("RELATE needs a DE-9IM pattern of 9 characters from TF012*")
            sides = [self.geometry(side, "RELATE") for side in (node.lhs, node.rhs)]
            return sql.SQL("ST_Relate({}, {}, {})").format(
                *sides, sql.Literal(str(node.pattern).upper())
            )
        if isinstance(node, ast.TemporalPredicate):
            return self.temporal(node)
        if isinstance(node, ast.Function):
            self.refuse_function(node)
        if isinstance(node, ast.Attribute) and self.scalar(node).kind == "boolean":
            return self.scalar(node).sql
        if isinstance(node, ast.ArrayPredicate):
            raise InvalidInput("array predicates (A_EQUALS, A_CONTAINS, ...) are not supported")
        raise InvalidInput(
            f"the filter must be a condition such as 名称 = 'x'; got {_describe(node)}"
        )

    def pair(self, left: Any, right: Any) -> tuple[sql.Composable, sql.Composable]:
        lhs, rhs = (self.operand(side) for side in (left, right))
        if isinstance(lhs, _Column) and isinstance(rhs, _Column):
            lhs, rhs = _plain(lhs), _plain(rhs)
            return (lhs.sql, rhs.sql) if lhs.kind == rhs.kind else (_as_text(lhs), _as_text(rhs))
        if isinstance(lhs, _Column):
            return _plain(lhs).sql, self.literal(rhs, lhs)
        if isinstance(rhs, _Column):
            return self.literal(lhs, rhs), _plain(rhs).sql
        if type(lhs) is not type(rhs) or not isinstance(lhs, str | int | float | date):
            raise InvalidInput(f"cannot compare {_describe(lhs)} with {_describe(rhs)}")
        return sql.Literal(lhs), sql.Literal(rhs)

    def operand(self, node: Any) -> Any:
        if isinstance(node, ast.Attribute):
            return self.attribute(node)
        if isinstance(node, ast.Arithmetic):
            lhs, rhs = (self.number(side) for side in (node.lhs, node.rhs))
            if isinstance(node, ast.Div):
                expression = sql.SQL("({}::numeric / NULLIF({}, 0))").format(lhs, rhs)
            else:
                expression = sql.SQL("({} " + ARITHMETIC[type(node)] + " {})").format(lhs, rhs)
            return _Column(expression, "number", "")
        if isinstance(node, ast.Function):
            return self.function(node)
        if isinstance(node, ast.Node):
            raise InvalidInput(f"{_describe(node)} cannot be used as a value in a filter")
        return node

    def number(self, node: Any) -> sql.Composable:
        value = self.operand(node)
        if isinstance(value, _Column) and value.kind == "number":
            return value.sql
        if is_number(value):
            return sql.Literal(value)
        raise InvalidInput(f"arithmetic needs numbers; {_describe(value)} is not a number")

    def function(self, node: ast.Function) -> Any:
        if node.name.lower() != "lower" or len(node.arguments) != 1:
            self.refuse_function(node)
        value = self.operand(node.arguments[0])
        if isinstance(value, str):
            return value.lower()
        if isinstance(value, _Column) and value.kind != "geometry":
            return _Column(sql.SQL("lower({})").format(_as_text(value)), "text", value.name)
        raise InvalidInput("CASEI needs a property or a text value")

    def refuse_function(self, node: ast.Function) -> None:
        raise InvalidInput(
            f"function {node.name}() is not supported in filters; use comparisons, LIKE, IN, "
            "BETWEEN, IS NULL, CASEI and the S_ and T_ predicates"
        )

    def like(self, node: ast.Like) -> sql.Composable:
        target, pattern = self.operand(node.lhs), self.operand(node.pattern)
        if not isinstance(target, _Column):
            raise InvalidInput("LIKE needs a property on its left, such as 名称 LIKE '%公園%'")
        if not isinstance(pattern, str):
            raise InvalidInput(f"LIKE needs a text pattern; got {_describe(pattern)}")
        operator = ("NOT " if node.not_ else "") + ("ILIKE" if node.nocase else "LIKE")
        text = _as_text(_plain(target))
        return sql.SQL("{} " + operator + " {}").format(text, sql.Literal(pattern))

    def scalar(self, node: Any) -> _Column:
        value = self.operand(node)
        if not isinstance(value, _Column):
            raise InvalidInput(f"expected a property; got {_describe(value)}")
        return _plain(value)

    def attribute(self, node: Any) -> _Column:
        if not isinstance(node, ast.Attribute):
            raise InvalidInput(f"expected a property; got {_describe(node)}")
        return self.column(node.name)

    def column(self, name: str) -> _Column:
        """Return the column of a property name: an attribute, the geometry, or the id."""
        if name in self.types:
            pg_type, identifier = self.types[name].lower(), sql.Identifier(ALIAS, name)
            kind = column_kind(pg_type)
            if kind == "text" and not pg_type.startswith(TEXT_TYPES):
                return _Column(sql.SQL("{}::text").format(identifier), kind, name)
            return _Column(identifier, kind, name)
        if name in GEOMETRY_NAMES and self.layer.is_spatial:
            return _Column(sql.Identifier(ALIAS, "geom"), "geometry", name)
        if name in ID_NAMES:
            return _Column(sql.Identifier(ALIAS, "fid"), "number", name)
        if name in GEOMETRY_NAMES:
            raise InvalidInput(f"layer {self.layer.id!r} has no geometries to filter by")
        raise InvalidInput(
            f"unknown property {name!r} in filter; queryable properties are: "
            + ", ".join(queryable_names(self.layer))
        )

    def literal(self, value: Any, column: _Column) -> sql.Composable:
        """Return a value read as the kind of values `column` holds, or refuse it."""
        value, column = self.operand(value), _plain(column)
        if isinstance(value, _Column):
            _plain(value)
            return value.sql if value.kind == column.kind else _as_text(value)
        converted = _convert(value, column.kind)
        if converted is None:
            subject = f"property {column.name!r}" if column.name else "the expression"
            raise InvalidInput(
                f"{subject} holds {HOLDS[column.kind]}; {_describe(value)} is not one"
            )
        return sql.Literal(converted)

    def geometry(self, node: Any, predicate: str) -> sql.Composable:
        if isinstance(node, ast.Attribute):
            column = self.column(node.name)
            if column.kind != "geometry":
                raise InvalidInput(f"{predicate} needs the geometry; {node.name!r} is not it")
            return column.sql
        if isinstance(node, values.Geometry | values.Envelope):
            return to_storage_sql(self.crs, _geometry_literal(node.geometry))
        raise InvalidInput(
            f"{predicate} needs the geometry and a geometry literal such as POINT(131.49 33.28)"
        )

    def bbox(self, node: ast.BBox) -> sql.Composable:
        crs = parse_crs(node.crs, parameter="BBOX crs") if node.crs else self.crs
        bounds = (node.minx, node.miny, node.maxx, node.maxy)
        if not all(is_number(v) for v in bounds):
            raise InvalidInput("BBOX needs four numbers")
        check_bbox(crs, bounds, text=",".join(str(v) for v in bounds))
        return bbox_condition_sql(self.geometry(node.lhs, "BBOX"), crs, bounds)

    def temporal(self, node: ast.TemporalPredicate) -> sql.Composable:
        kind, lhs, rhs = type(node), node.lhs, node.rhs
        name = TEMPORAL_NAMES.get(kind, "T_" + kind.__name__.removeprefix("Time").upper())
        if kind not in TEMPORAL:
            raise InvalidInput(f"{name} is not supported; use the CQL2 T_ predicates")
        if not isinstance(lhs, ast.Attribute) and isinstance(rhs, ast.Attribute):
            kind, lhs, rhs = INVERSE_TEMPORAL.get(kind, kind), rhs, lhs
        column = self.scalar(lhs)
        if column.kind not in ("date", "timestamp"):
            raise InvalidInput(f"{name} needs a date or time property; {column.name!r} is not one")
        bounds = self.moments(self.operand(rhs), column)
        condition = sql.SQL(" AND ").join(
            sql.SQL("{} " + operator + " {}").format(column.sql, bounds[index % len(bounds)])
            for operator, index in TEMPORAL[kind]
        )
        return sql.SQL("({})").format(condition)

    def moments(self, value: Any, column: _Column) -> list[sql.Composable]:
        """Return one instant, or an interval's two ends (an open end is infinite)."""
        if isinstance(value, _Column):
            if value.kind not in ("date", "timestamp"):
                raise InvalidInput(f"property {value.name!r} holds no dates or times")
            return [value.sql]
        cast = "date" if column.kind == "date" else "timestamptz"
        if isinstance(value, values.Interval):
            ends: list[sql.Composable] = []
            for end, infinite in ((value.start, "-infinity"), (value.end, "infinity")):
                converted = None if end in (None, "..") else _convert(end, column.kind)
                if converted is None and end not in (None, ".."):
                    raise InvalidInput(
                        "an INTERVAL needs two dates or times ('..' for an open end)"
                    )
                ends.append(
                    sql.SQL("{}::" + cast).format(sql.Literal(infinite))
                    if converted is None
                    else sql.Literal(converted)
                )
            return ends
        converted = _convert(value, column.kind)
        if converted is None:
            raise InvalidInput(f"{_describe(value)} is not a date or time")
        return [sql.Literal(converted)]


def _plain(column: _Column) -> _Column:
    if column.kind == "geometry":
        raise InvalidInput(
            f"property {column.name!r} is the geometry; use it in spatial predicates such as "
            "S_INTERSECTS(geometry, POINT(131.49 33.28))"
        )
    return column


def _as_text(column: _Column) -> sql.Composable:
    return column.sql if column.kind == "text" else sql.SQL("({})::text").format(column.sql)


def _convert(value: Any, kind: str) -> Any:
    """Return `value` as the kind of values a column holds, or None if it cannot be one."""
    if isinstance(value, values.Geometry | values.Envelope | values.Interval | list | dict):
        return None
    if kind == "text":
        if isinstance(value, bool):
            return "true" if value else "false"
        return value.isoformat() if isinstance(value, date) else str(value)
    if kind == "number":
        if is_number(value) or not isinstance(value, str):
            return value if is_number(value) else None
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    if kind == "boolean":
        text = str(value).strip().lower()
        return value if isinstance(value, bool) else {"true": True, "false": False}.get(text)
    moment = parse_moment(value) if isinstance(value, str) else value
    if isinstance(moment, datetime):
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment if isinstance(moment, date) else None


def _describe(value: Any) -> str:
    if isinstance(value, _Column):
        return f"property {value.name!r}" if value.name else "the expression"
    if isinstance(value, values.Geometry | values.Envelope):
        return "a geometry"
    if isinstance(value, values.Interval):
        return "an interval"
    if isinstance(value, ast.Node):
        return f"an expression ({type(value).__name__})"
    return repr(value.isoformat()) if isinstance(value, date) else repr(value)


def _geometry_literal(geojson: Any) -> sql.Composable:
    """Return a filter's geometry as WKT for PostGIS, after checking it with shapely."""
    try:
        geometry = shapely.geometry.shape(geojson)
        finite = bool(numpy.isfinite(shapely.get_coordinates(geometry)).all())
    except (ValueError, TypeError, LookupError, AttributeError, shapely.errors.ShapelyError):
        geometry, finite = None, False
    if geometry is None or geometry.is_empty or not finite:
        raise InvalidInput(
            "the filter's geometry is not valid GeoJSON or WKT with finite coordinates"
        )
    if not geometry.is_valid:
        raise InvalidInput(f"the filter's geometry is invalid: {shapely.is_valid_reason(geometry)}")
    return sql.SQL("ST_GeomFromText({})").format(sql.Literal(geometry.wkt))
