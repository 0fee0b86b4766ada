"""Dataset search: Japanese full text, filters, facets, sorting and paging, all in SQL."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, case, cast, desc, distinct, false, func, or_, select
from sqlalchemy.orm import Session

from portal.catalog.licenses import get_license
from portal.catalog.models import (
    Dataset,
    Department,
    Group,
    Resource,
    dataset_groups,
    dataset_tags,
)
from portal.catalog.textsearch import normalize, to_tsquery_text
from portal.catalog.views import DatasetView, dataset_visible, load_views, resource_visible
from portal.core.errors import InvalidInput
from portal.core.principal import Principal

MAX_ROWS = 1000
FACET_FIELDS = ("organization", "groups", "tags", "res_format", "license_id")
SORT_KEYS = {
    "score": None,
    "metadata_modified": Dataset.modified_at,
    "metadata_created": Dataset.created_at,
    "name": Dataset.name,
    "title": Dataset.title,
    "title_string": Dataset.title,
    "id": Dataset.id,
}
DEFAULT_SORT = (("score", "desc"), ("metadata_modified", "desc"))


@dataclass
class DatasetQuery:
    """A search: text, filters, a place, a period, the order and the page."""

    q: str = ""
    filters: dict[str, list[str]] = field(default_factory=dict)
    bbox: tuple[float, float, float, float] | None = None
    point: tuple[float, float] | None = None
    modified_since: datetime | None = None
    modified_until: datetime | None = None
    sort: tuple[tuple[str, str], ...] = DEFAULT_SORT
    rows: int = 10
    start: int = 0
    facet_fields: tuple[str, ...] = ()
    facet_limit: int = 50
    facet_mincount: int = 1


@dataclass(frozen=True)
class FacetItem:
    """One value of a facet with the number of matching datasets."""

    name: str
    display_name: str
    count: int


@dataclass
class SearchResult:
    """A page of matching datasets, the total count and the facets."""

    count: int
    datasets: list[DatasetView]
    facets: dict[str, list[FacetItem]]
    sort: tuple[tuple[str, str], ...]


def search_datasets(session: Session, principal: Principal, query: DatasetQuery) -> SearchResult:
    """Search the datasets `principal` may see; facets count only those."""
    _check(query)
    tsquery = to_tsquery_text(query.q) if query.q.strip() else None
    matched = select(Dataset.id).where(
        dataset_visible(principal), *_conditions(query, tsquery, principal)
    )
    count = session.execute(select(func.count()).select_from(matched.subquery())).scalar_one()
    ordered = matched.order_by(*_order(query, tsquery)).limit(query.rows).offset(query.start)
    ids = list(session.execute(ordered).scalars()) if query.rows else []
    facets = {name: _facet(session, principal, name, matched, query) for name in query.facet_fields}
    return SearchResult(count, load_views(session, principal, ids), facets, query.sort)


def _check(query: DatasetQuery) -> None:
    if query.rows < 0 or query.rows > MAX_ROWS:
        raise InvalidInput(f"rows must be between 0 and {MAX_ROWS}, got {query.rows}")
    if query.start < 0:
        raise InvalidInput(f"start must not be negative, got {query.start}")
    for key, direction in query.sort:
        if key not in SORT_KEYS or direction not in ("asc", "desc"):
            allowed = ", ".join(SORT_KEYS)
            raise InvalidInput(
                f"cannot sort by {key!r} {direction!r}; use one of {allowed} with asc or desc"
            )
    for name in (*query.filters, *query.facet_fields):
        if name not in (*FACET_FIELDS, "name", "id"):
            raise InvalidInput(f"unknown field {name!r}; use one of {', '.join(FACET_FIELDS)}")
    if len(query.q) > 500:
        raise InvalidInput("the search text is longer than 500 characters")


def _conditions(query: DatasetQuery, tsquery: str | None, principal: Principal) -> list[Any]:
    conditions: list[Any] = []
    text = normalize(query.q)
    if text:
        matches: list[Any] = []
        if tsquery:
            matches.append(Dataset.search_vector.op("@@")(func.to_tsquery("simple", tsquery)))
        if len(text) >= 2:
            matches.append(Dataset.search_text.contains(text, autoescape=True))
        conditions.append(or_(*matches) if matches else false())
    for name, values in query.filters.items():
        for value in values:
            conditions.append(_filter(name, value, principal))
    if query.bbox:
        conditions.append(
            func.ST_Intersects(Dataset.spatial, func.ST_MakeEnvelope(*query.bbox, 4326))
        )
    if query.point:
        conditions.append(
            func.ST_Covers(Dataset.spatial, func.ST_SetSRID(func.ST_MakePoint(*query.point), 4326))
        )
    if query.modified_since:
        conditions.append(Dataset.modified_at >= query.modified_since)
    if query.modified_until:
        conditions.append(Dataset.modified_at <= query.modified_until)
    return conditions


def _filter(name: str, value: str, principal: Principal) -> Any:
    if name == "organization":
        return Dataset.department_id.in_(select(Department.id).where(Department.slug == value))
    if name == "groups":
        return Dataset.id.in_(
            select(dataset_groups.c.dataset_id)
            .join(Group, Group.id == dataset_groups.c.group_id)
            .where(Group.name == value)
        )
    if name == "tags":
        return Dataset.id.in_(select(dataset_tags.c.dataset_id).where(dataset_tags.c.tag == value))
    if name == "res_format":
        return Dataset.id.in_(
            select(Resource.dataset_id)
            .join(Dataset, Dataset.id == Resource.dataset_id)
            .where(func.upper(Resource.format) == value.upper(), resource_visible(principal))
        )
    if name == "license_id":
        return Dataset.license_id == get_license(value).id
    if name == "name":
        return Dataset.name == value
    return cast(Dataset.id, String) == value


def _order(query: DatasetQuery, tsquery: str | None) -> list[Any]:
    order: list[Any] = []
    for key, direction in query.sort:
        column = SORT_KEYS[key]
        if column is None:
            if not tsquery:
                continue
            rank = func.ts_rank_cd(
                Dataset.search_vector, func.to_tsquery("simple", tsquery)
            ) + case(
                (Dataset.search_text.startswith(normalize(query.q), autoescape=True), 1.0),
                else_=0.0,
            )
            order.append(desc(rank) if direction == "desc" else rank)
        else:
            order.append(column.desc() if direction == "desc" else column.asc())
    order.append(Dataset.id)
    return order


def _facet(
    session: Session, principal: Principal, name: str, matched: Select[Any], query: DatasetQuery
) -> list[FacetItem]:
    ids = select(matched.subquery().c.id)
    count: Any = func.count()
    if name == "organization":
        key, label = Department.slug, Department.name
        statement = (
            select(key, label, count)
            .select_from(Dataset)
            .join(Department, Department.id == Dataset.department_id)
            .where(Dataset.id.in_(ids))
        )
    elif name == "groups":
        key, label = Group.name, Group.title
        statement = (
            select(key, label, count)
            .select_from(dataset_groups)
            .join(Group, Group.id == dataset_groups.c.group_id)
            .where(dataset_groups.c.dataset_id.in_(ids))
        )
    elif name == "tags":
        key = label = dataset_tags.c.tag
        statement = select(key, label, count).where(dataset_tags.c.dataset_id.in_(ids))
    elif name == "res_format":
        key = label = func.upper(Resource.format)
        count = func.count(distinct(Resource.dataset_id))
        statement = (
            select(key, label, count)
            .join(Dataset, Dataset.id == Resource.dataset_id)
            .where(Resource.dataset_id.in_(ids), Resource.format != "", resource_visible(principal))
        )
    else:
        key = label = Dataset.license_id
        statement = select(key, label, count).where(Dataset.id.in_(ids))
    statement = (
        statement.group_by(key, label)
        .having(count >= query.facet_mincount)
        .order_by(desc(count), key)
        .limit(query.facet_limit)
    )
    rows = session.execute(statement).all()
    if name == "license_id":
        return [FacetItem(r[0], get_license(r[0]).title, r[2]) for r in rows]
    return [FacetItem(str(r[0]), str(r[1]), int(r[2])) for r in rows]
