"""Reads the CKAN API needs beyond search: counts, tags and datastore rows, all visibility-filtered.

Every count is computed in SQL over the datasets the caller may see, so a department-only
dataset changes no number shown to anyone outside that department.
"""

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from psycopg import sql
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.catalog.departments import DepartmentPublic
from portal.catalog.models import Dataset, Department, Group, dataset_groups, dataset_tags
from portal.catalog.resources import get_resource
from portal.catalog.views import GroupPublic, dataset_visible
from portal.core.database import LAYERS_SCHEMA
from portal.core.errors import InvalidInput, NotFound
from portal.core.principal import Principal
from portal.geo.models import Layer

DATASTORE_MAX_LIMIT = 32_000
DATASTORE_TYPES = {
    "smallint": "int2", "integer": "int4", "bigint": "int8", "double precision": "float8",
    "numeric": "numeric", "date": "date", "timestamp": "timestamp", "timestamptz": "timestamptz",
    "time": "time", "boolean": "bool", "jsonb": "json", "text": "text",
}  # fmt: skip
ROW_ID = "_id"
STATEMENT_TIMEOUT = "15s"


@dataclass(frozen=True)
class CountedDepartment:
    """A department with the number of its datasets the caller may see."""

    department: DepartmentPublic
    package_count: int


@dataclass(frozen=True)
class CountedGroup:
    """A group with the number of its datasets the caller may see."""

    group: GroupPublic
    package_count: int


@dataclass(frozen=True)
class TagCount:
    """A tag of at least one visible dataset, with how many visible datasets carry it."""

    name: str
    count: int


def departments_with_counts(session: Session, principal: Principal) -> list[CountedDepartment]:
    """Return every department with its count of datasets visible to `principal`, by slug."""
    counts = (
        select(Dataset.department_id, func.count().label("n"))
        .where(dataset_visible(principal))
        .group_by(Dataset.department_id)
        .subquery()
    )
    rows = session.execute(
        select(Department, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.department_id == Department.id)
        .order_by(Department.slug)
    ).all()
    return [
        CountedDepartment(DepartmentPublic(d.id, d.slug, d.name, d.name_en), int(n))
        for d, n in rows
    ]


def groups_with_counts(session: Session, principal: Principal) -> list[CountedGroup]:
    """Return every group with its count of datasets visible to `principal`, in e-Stat order."""
    counts = (
        select(dataset_groups.c.group_id, func.count().label("n"))
        .join(Dataset, Dataset.id == dataset_groups.c.dataset_id)
        .where(dataset_visible(principal))
        .group_by(dataset_groups.c.group_id)
        .subquery()
    )
    rows = session.execute(
        select(Group, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.group_id == Group.id)
        .order_by(Group.id)
    ).all()
    return [CountedGroup(GroupPublic(g.name, g.title, g.title_en), int(n)) for g, n in rows]


def visible_tags(
    session: Session, principal: Principal, *, contains: str = "", limit: int | None = None
) -> list[TagCount]:
    """Return the tags of datasets `principal` may see, optionally those containing a text."""
    count = func.count()
    statement = (
        select(dataset_tags.c.tag, count)
        .join(Dataset, Dataset.id == dataset_tags.c.dataset_id)
        .where(dataset_visible(principal))
        .group_by(dataset_tags.c.tag)
        .order_by(dataset_tags.c.tag)
    )
    if contains:
        statement = statement.where(dataset_tags.c.tag.icontains(contains, autoescape=True))
    if limit is not None:
        statement = statement.limit(limit)
    return [TagCount(str(tag), int(n)) for tag, n in session.execute(statement).all()]


@dataclass
class DatastoreQuery:
    """A datastore_search: text, equality filters, columns, order and page."""

    q: str | dict[str, str] = ""
    filters: dict[str, Any] = field(default_factory=dict)
    fields: list[str] | None = None
    sort: list[tuple[str, str]] = field(default_factory=list)
    limit: int = 100
    offset: int = 0
    include_total: bool = True


@dataclass
class DatastorePage:
    """Rows of a resource's table: the columns, the records and the matching total."""

    fields: list[dict[str, str]]
    records: list[dict[str, Any]]
    total: int | None


def datastore_rows(
    session: Session, principal: Principal, resource_id: str, query: DatastoreQuery
) -> DatastorePage:
    """Read rows of the layer table behind a resource `principal` may see."""
    resource = get_resource(session, principal, resource_id)
    layer = session.get(Layer, resource.layer_id) if resource.layer_id else None
    if layer is None or not layer.table_name:
        raise NotFound(f"resource {resource_id!r} has no table to search (datastore inactive)")
    types = {str(c["name"]): str(c.get("type", "text")) for c in layer.columns}
    _check_datastore(query, types)
    chosen = query.fields if query.fields else [ROW_ID, *types]
    table = sql.Identifier(LAYERS_SCHEMA, layer.table_name)
    where, params = _where(query, types)
    columns = sql.SQL(", ").join(_column(name) for name in chosen)
    order = _order_by(query.sort)
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor:
        cursor.execute("SELECT set_config('statement_timeout', %s, true)", (STATEMENT_TIMEOUT,))
        cursor.execute(
            sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT %s OFFSET %s").format(
                columns, table, where, order
            ),
            [*params, query.limit, query.offset],
        )
        records = [
            {name: _jsonable(value) for name, value in zip(chosen, row, strict=True)}
            for row in cursor.fetchall()
        ]
        total = None
        if query.include_total:
            cursor.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(table, where), params)
            counted = cursor.fetchone()
            total = int(counted[0]) if counted else 0
    fields = [{"id": name, "type": _field_type(name, types)} for name in chosen]
    return DatastorePage(fields, records, total)


def _check_datastore(query: DatastoreQuery, types: dict[str, str]) -> None:
    known = [ROW_ID, *types]
    names = [
        *(("filters", name) for name in query.filters),
        *(("fields", name) for name in query.fields or []),
        *(("sort", name) for name, _ in query.sort),
        *(("q", name) for name in (query.q if isinstance(query.q, dict) else {})),
    ]
    for where, name in names:
        if name not in known:
            sample = ", ".join(known[:8]) + (", …" if len(known) > 8 else "")
            raise InvalidInput(f"{where}: unknown column {name!r}; the columns are {sample}")
    if not 0 <= query.limit <= DATASTORE_MAX_LIMIT:
        raise InvalidInput(f"limit must be between 0 and {DATASTORE_MAX_LIMIT}, got {query.limit}")
    if query.offset < 0:
        raise InvalidInput(f"offset must not be negative, got {query.offset}")


def _column(name: str) -> sql.Composable:
    return sql.Identifier("fid") if name == ROW_ID else sql.Identifier(name)


def _where(query: DatastoreQuery, types: dict[str, str]) -> tuple[sql.Composable, list[Any]]:
    parts: list[sql.Composable] = []
    params: list[Any] = []
    for name, value in query.filters.items():
        column = sql.SQL("{}::text").format(_column(name))
        if value is None:
            parts.append(sql.SQL("{} IS NULL").format(_column(name)))
        elif isinstance(value, list):
            parts.append(sql.SQL("{} = ANY(%s)").format(column))
            params.append([_text(v) for v in value])
        else:
            parts.append(sql.SQL("{} = %s").format(column))
            params.append(_text(value))
    if isinstance(query.q, dict):
        for name, text in query.q.items():
            parts.append(sql.SQL("{}::text ILIKE %s").format(_column(name)))
            params.append(_pattern(str(text)))
    elif query.q.strip() and types:
        row_text = sql.SQL("concat_ws(' ', {})").format(
            sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(n)) for n in types)
        )
        parts.append(sql.SQL("{} ILIKE %s").format(row_text))
        params.append(_pattern(query.q.strip()))
    where = sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")
    return where, params


def _order_by(sort: list[tuple[str, str]]) -> sql.Composable:
    keys = [
        sql.SQL("{} {}").format(_column(name), sql.SQL("DESC" if way == "desc" else "ASC"))
        for name, way in sort
    ]
    return sql.SQL(", ").join([*keys, sql.Identifier("fid")])


def _field_type(name: str, types: dict[str, str]) -> str:
    return "int" if name == ROW_ID else DATASTORE_TYPES.get(types[name], "text")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        raise InvalidInput(f"filters: a value must be text or a number, got {value!r}")
    return str(value)


def _pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        number = float(value)
        return number if math.isfinite(number) else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return value
