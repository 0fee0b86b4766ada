"""Dataset search: Japanese full text, filters, facets, sorting and paging, all in SQL."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, case, cast, desc, func, literal, literal_column, select, true
from sqlalchemy.dialects.postgresql import aggregate_order_by
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
MAX_START = 10_000_000
FACET_FIELDS = ("organization", "groups", "tags", "res_format", "license_id")
SORT_KEYS = (
    "score",
    "metadata_modified",
    "metadata_created",
    "name",
    "title",
    "title_string",
    "id",
)
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
    """Search the datasets `principal` may see; facets count only those.

    Words are matched through the tokenised index first; substring matching (slower, it
    cannot use an index for two-character Japanese words) runs only when that finds nothing.
    """
    _check(query)
    tsquery = to_tsquery_text(query.q) if query.q.strip() else None
    text = normalize(query.q)
    result = _run(session, principal, query, tsquery, substring=None if tsquery else text or None)
    if result.count == 0 and tsquery and len(text) >= 2:
        result = _run(session, principal, query, None, substring=text)
    return result


def _run(
    session: Session,
    principal: Principal,
    query: DatasetQuery,
    tsquery: str | None,
    *,
    substring: str | None,
) -> SearchResult:
    """Count, page and facet in one statement over a materialised set of matches."""
    conditions = [dataset_visible(principal), *_conditions(query, principal)]
    if tsquery:
        conditions.append(Dataset.search_vector.op("@@")(func.to_tsquery("simple", tsquery)))
    if substring:
        conditions.append(Dataset.search_text.contains(substring, autoescape=True))
    rank = _rank(query, tsquery)
    matched = (
        select(
            Dataset.id,
            Dataset.department_id,
            Dataset.license_id,
            Dataset.name,
            Dataset.title,
            Dataset.created_at,
            Dataset.modified_at,
            Dataset.tag_list,
            Dataset.public_formats,
            rank.label("rank"),
        )
        .where(*conditions)
        .cte("matched")
        .prefix_with("MATERIALIZED")
    )
    order = _order(query, matched)
    page = (
        select(matched.c.id, func.row_number().over(order_by=order).label("position"))
        .order_by(*order)
        .limit(query.rows)
        .offset(query.start)
        .subquery("page")
    )
    columns: list[Any] = [
        select(func.count()).select_from(matched).scalar_subquery(),
        select(func.array_agg(aggregate_order_by(page.c.id, page.c.position)))
        .select_from(page)
        .scalar_subquery(),
    ]
    columns += [_facet(name, matched, principal, query) for name in query.facet_fields]
    row = session.execute(select(*columns)).one()
    ids = list(row[1] or []) if query.rows else []
    facets = {
        name: _facet_items(name, value)
        for name, value in zip(query.facet_fields, row[2:], strict=True)
    }
    return SearchResult(int(row[0]), load_views(session, principal, ids), facets, query.sort)


def _check(query: DatasetQuery) -> None:
    if query.rows < 0 or query.rows > MAX_ROWS:
        raise InvalidInput(f"rows must be between 0 and {MAX_ROWS}, got {query.rows}")
    if not 0 <= query.start <= MAX_START:
        raise InvalidInput(f"start must be between 0 and {MAX_START:,}, got {query.start}")
    for key, direction in query.sort:
        if key not in SORT_KEYS or direction not in ("asc", "desc"):
            allowed = ", ".join(SORT_KEYS)
            raise InvalidInput(
                f"cannot sort by {key!r} {direction!r}; use one of {allowed} with asc or desc"
            )
    for name in query.filters:
        if name not in (*FACET_FIELDS, "name", "id"):
            raise InvalidInput(f"unknown field {name!r}; use one of {', '.join(FACET_FIELDS)}")
    for name in query.facet_fields:
        if name not in FACET_FIELDS:
            raise InvalidInput(f"cannot facet on {name!r}; use one of {', '.join(FACET_FIELDS)}")
    if len(query.q) > 500:
        raise InvalidInput("the search text is longer than 500 characters")


def _conditions(query: DatasetQuery, principal: Principal) -> list[Any]:
    conditions: list[Any] = []
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


def _rank(query: DatasetQuery, tsquery: str | None) -> Any:
    """Relevance: the weighted text rank, plus a bonus when the title starts with the query."""
    if not tsquery or not any(key == "score" for key, _ in query.sort):
        return literal(0.0)
    return func.ts_rank(Dataset.search_vector, func.to_tsquery("simple", tsquery)) + case(
        (Dataset.search_text.startswith(normalize(query.q), autoescape=True), 1.0), else_=0.0
    )


def _order(query: DatasetQuery, matched: Any) -> list[Any]:
    columns = {
        "score": matched.c.rank,
        "metadata_modified": matched.c.modified_at,
        "metadata_created": matched.c.created_at,
        "name": matched.c.name,
        "title": matched.c.title,
        "title_string": matched.c.title,
        "id": matched.c.id,
    }
    order = [
        columns[key].desc() if direction == "desc" else columns[key].asc()
        for key, direction in query.sort
    ]
    return [*order, matched.c.id]


def _facet(name: str, matched: Any, principal: Principal, query: DatasetQuery) -> Any:
    """A scalar subquery returning the facet's top values as JSON [[key, label, count], …]."""
    count: Any = func.count()
    key: Any
    label: Any
    if name == "organization":
        key, label = Department.slug, Department.name
        statement = (
            select(key, label, count)
            .select_from(matched)
            .join(Department, Department.id == matched.c.department_id)
        )
    elif name == "groups":
        key, label = Group.name, Group.title
        statement = (
            select(key, label, count)
            .select_from(matched)
            .join(dataset_groups, dataset_groups.c.dataset_id == matched.c.id)
            .join(Group, Group.id == dataset_groups.c.group_id)
        )
    elif name in ("tags", "res_format"):
        values = _facet_values(name, matched, principal)
        key = label = values.c.value
        statement = select(key, label, count).select_from(matched).join(values, true())
    else:
        key = label = matched.c.license_id
        statement = select(key, label, count).select_from(matched)
    top = (
        statement.group_by(key, label)
        .having(count >= query.facet_mincount)
        .order_by(desc(count), key)
        .limit(query.facet_limit)
        .subquery()
    )
    cells = [top.c[column] for column in top.c.keys()]
    return (
        select(
            func.coalesce(
                func.json_agg(func.json_build_array(*cells)), literal_column("'[]'::json")
            )
        )
        .select_from(top)
        .scalar_subquery()
    )


def _facet_values(name: str, matched: Any, principal: Principal) -> Any:
    """The tags, or the visible resource formats, of each matched dataset, one row each."""
    if name == "tags":
        array: Any = matched.c.tag_list
    elif not principal.is_staff and not principal.is_site_admin:
        array = matched.c.public_formats
    else:
        # Staff may see internal resources, whose formats the public array leaves out.
        formats = (
            select(func.upper(Resource.format))
            .join(Dataset, Dataset.id == Resource.dataset_id)
            .where(Resource.dataset_id == matched.c.id, Resource.format != "")
            .where(resource_visible(principal))
            .distinct()
        )
        array = func.array(formats.scalar_subquery())
    return func.unnest(array).table_valued("value").render_derived().lateral()


def _facet_items(name: str, value: list[list[Any]]) -> list[FacetItem]:
    """Turn a facet's JSON into items, most frequent first."""
    items = sorted(value, key=lambda item: (-int(item[2]), str(item[0])))
    if name == "license_id":
        return [FacetItem(str(k), get_license(str(k)).title, int(c)) for k, _, c in items]
    return [FacetItem(str(k), str(label), int(c)) for k, label, c in items]
