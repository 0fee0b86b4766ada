"""Dataset reads: package_search, package_show, package_list and the recent-changes list."""

import math
from typing import Any

from portal.api.ckan.context import ActionContext
from portal.api.ckan.envelope import validation_error
from portal.api.ckan.fq import parse_fq, split_q
from portal.api.ckan.params import Params
from portal.catalog.datasets import get_dataset, list_dataset_names
from portal.catalog.package import package_dict
from portal.catalog.search import (
    DEFAULT_SORT,
    FACET_FIELDS,
    MAX_ROWS,
    SORT_KEYS,
    DatasetQuery,
    SearchResult,
    search_datasets,
)
from portal.catalog.views import load_views
from portal.core.principal import ANONYMOUS

MAX_FACET_LIMIT = 1000


def package_search(ctx: ActionContext, params: Params) -> dict[str, Any]:
    """Search datasets: q, fq, fq_list, rows, start, sort, facet.*, include_private, ext_bbox."""
    q, q_terms = split_q(params.text("q"))
    wanted = parse_fq([*params.strings("fq"), *params.strings("fq_list"), *q_terms])
    facet_limit = params.integer("facet.limit", 50, minimum=-1)
    query = DatasetQuery(
        q=q,
        filters=wanted.filters,
        bbox=parse_bbox(params.text("ext_bbox")),
        modified_since=wanted.modified_since,
        modified_until=wanted.modified_until,
        sort=parse_sort(params.text("sort")),
        rows=params.integer("rows", 10, maximum=MAX_ROWS),
        start=params.integer("start", 0),
        facet_fields=facet_fields(params.strings("facet.field")),
        facet_limit=MAX_FACET_LIMIT if facet_limit < 0 else min(facet_limit, MAX_FACET_LIMIT),
        facet_mincount=params.integer("facet.mincount", 1),
    )
    # Without include_private only public datasets match, even for staff; with it, whatever
    # the caller may see. Visibility is always the principal's: the flag can only narrow it.
    include_private = params.boolean("include_private", False)
    searcher = ctx.principal if include_private else ANONYMOUS
    result = search_datasets(ctx.session, searcher, query)
    datasets = result.datasets
    if searcher is not ctx.principal and datasets:
        datasets = load_views(ctx.session, ctx.principal, [d.id for d in datasets])
    results = [package_dict(ctx.base_url, d) for d in datasets]
    fl = [f.strip() for f in params.text("fl").replace(",", " ").split() if f.strip()]
    if fl and "*" not in fl:
        results = [{k: r[k] for k in fl if k in r} for r in results]
    return {
        "count": result.count,
        "results": results,
        "sort": ", ".join(f"{key} {way}" for key, way in result.sort),
        **facets(result),
    }


def package_show(ctx: ActionContext, params: Params) -> dict[str, Any]:
    """Return a dataset by name or id; a missing or hidden one is Not Found."""
    key = params.text("id").strip() or params.text("name").strip() or params.required("id")
    return package_dict(ctx.base_url, get_dataset(ctx.session, ctx.principal, key))


def package_list(ctx: ActionContext, params: Params) -> list[str]:
    """Return the names of the datasets the caller may see (limit, offset)."""
    limit = params.integer("limit", -1, minimum=-1)
    return list_dataset_names(
        ctx.session,
        ctx.principal,
        limit=None if limit < 0 else limit,
        offset=params.integer("offset", 0),
    )


def current_package_list_with_resources(ctx: ActionContext, params: Params) -> list[Any]:
    """Return full datasets with their resources, most recently modified first (limit, offset)."""
    query = DatasetQuery(
        sort=(("metadata_modified", "desc"),),
        rows=params.integer("limit", 10, maximum=MAX_ROWS),
        start=params.integer("offset", 0),
    )
    result = search_datasets(ctx.session, ctx.principal, query)
    return [package_dict(ctx.base_url, d) for d in result.datasets]


def facets(result: SearchResult) -> dict[str, Any]:
    """Return CKAN's `search_facets` and the older `facets` of a search result."""
    return {
        "search_facets": {
            name: {
                "title": name,
                "items": [
                    {"name": i.name, "display_name": i.display_name, "count": i.count}
                    for i in items
                ],
            }
            for name, items in result.facets.items()
        },
        "facets": {name: {i.name: i.count for i in items} for name, items in result.facets.items()},
    }


def facet_fields(names: list[str]) -> tuple[str, ...]:
    """Check the requested facet fields."""
    for name in names:
        if name not in FACET_FIELDS:
            allowed = ", ".join(FACET_FIELDS)
            raise validation_error({"facet.field": [f"unknown facet {name!r}; use {allowed}"]})
    return tuple(dict.fromkeys(names))


def parse_sort(text: str) -> tuple[tuple[str, str], ...]:
    """Parse `key dir, key dir`; the default is relevance, then the newest."""
    if not text.strip():
        return DEFAULT_SORT
    order: list[tuple[str, str]] = []
    for part in text.split(","):
        words = part.split()
        if not words:
            continue
        key, way = words[0], (words[1].lower() if len(words) > 1 else "asc")
        if key not in SORT_KEYS or way not in ("asc", "desc") or len(words) > 2:
            allowed = ", ".join(SORT_KEYS)
            raise validation_error(
                {"sort": [f"cannot sort by {part.strip()!r}; use {allowed} with asc or desc"]}
            )
        order.append((key, way))
    return tuple(order) or DEFAULT_SORT


def parse_bbox(text: str) -> tuple[float, float, float, float] | None:
    """Parse `ext_bbox=minx,miny,maxx,maxy` in degrees (WGS 84)."""
    if not text.strip():
        return None
    problem = "must be minx,miny,maxx,maxy in degrees (e.g. 131.4,33.2,131.6,33.4)"
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise validation_error({"ext_bbox": [f"{text!r} {problem}"]}) from None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise validation_error({"ext_bbox": [f"{text!r} {problem}"]})
    minx, miny, maxx, maxy = values
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise validation_error(
            {"ext_bbox": [f"{text!r} {problem}, longitudes within ±180, latitudes within ±90"]}
        )
    return minx, miny, maxx, maxy
