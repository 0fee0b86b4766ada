"""datastore_search: rows of the table behind a tabular resource."""

import json
from typing import Any
from urllib.parse import urlencode

from portal.api.ckan.context import ActionContext
from portal.api.ckan.envelope import validation_error
from portal.api.ckan.params import Params
from portal.catalog.ckan_queries import DATASTORE_MAX_LIMIT, DatastoreQuery, datastore_rows


def datastore_search(ctx: ActionContext, params: Params) -> dict[str, Any]:
    """Search a resource's rows (resource_id, q, filters, fields, sort, limit, offset)."""
    resource_id = params.text("resource_id").strip() or params.required("id")
    if params.text("records_format", "objects") != "objects":
        raise validation_error({"records_format": ["only 'objects' is supported"]})
    query = DatastoreQuery(
        q=_q(params),
        filters=params.mapping("filters"),
        fields=_names(params.strings("fields")) or None,
        sort=_sort(params.text("sort")),
        limit=params.integer("limit", 100, maximum=DATASTORE_MAX_LIMIT),
        offset=params.integer("offset", 0),
        include_total=params.boolean("include_total", True),
    )
    page = datastore_rows(ctx.session, ctx.principal, resource_id, query)
    result: dict[str, Any] = {
        "resource_id": resource_id,
        "fields": page.fields,
        "records": page.records,
        "records_format": "objects",
        "limit": query.limit,
        "offset": query.offset,
        "include_total": query.include_total,
        "_links": _links(resource_id, params, query),
    }
    if page.total is not None:
        result["total"] = page.total
        result["total_was_estimated"] = False
    if query.q:
        result["q"] = query.q
    if query.filters:
        result["filters"] = query.filters
    if query.sort:
        result["sort"] = ", ".join(f"{name} {way}" for name, way in query.sort)
    return result


def _q(params: Params) -> str | dict[str, str]:
    raw = params.get("q")
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    text = params.text("q")
    if text.lstrip().startswith("{"):
        return {k: str(v) for k, v in params.mapping("q").items()}
    return text


def _names(values: list[str]) -> list[str]:
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def _sort(text: str) -> list[tuple[str, str]]:
    order: list[tuple[str, str]] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, way = part, "asc"
        head, _, tail = part.rpartition(" ")
        if head and tail.lower() in ("asc", "desc"):
            name, way = head.strip(), tail.lower()
        order.append((name.strip('"'), way))
    return order


def _links(resource_id: str, params: Params, query: DatastoreQuery) -> dict[str, str]:
    kept: dict[str, Any] = {"resource_id": resource_id}
    if query.q:
        kept["q"] = query.q if isinstance(query.q, str) else json.dumps(query.q, ensure_ascii=False)
    if query.filters:
        kept["filters"] = json.dumps(query.filters, ensure_ascii=False)
    if params.text("sort"):
        kept["sort"] = params.text("sort")
    if query.limit != 100:
        kept["limit"] = query.limit
    start = "/api/3/action/datastore_search?" + urlencode(kept)
    following = urlencode({**kept, "offset": query.offset + query.limit})
    return {"start": start, "next": "/api/3/action/datastore_search?" + following}
