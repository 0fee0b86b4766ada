"""Organizations, groups, tags, licences, resources and the site status."""

from typing import Any

from portal import __version__
from portal.api.ckan.context import ActionContext
from portal.api.ckan.envelope import validation_error
from portal.api.ckan.params import Params
from portal.catalog.ckan_queries import (
    CountedDepartment,
    CountedGroup,
    departments_with_counts,
    groups_with_counts,
    visible_tags,
)
from portal.catalog.datasets import get_dataset
from portal.catalog.licenses import LICENSES, License
from portal.catalog.package import organization_dict, package_dict, resource_dict
from portal.catalog.resources import get_resource
from portal.catalog.search import MAX_ROWS, DatasetQuery, search_datasets
from portal.core.errors import NotFound

CKAN_VERSION = "2.10.4"
EXTENSIONS = ["datastore", "spatial_query", "dcat", "scheming_datasets"]
LIST_SORTS = ("name", "title", "package_count")


def organization_list(ctx: ActionContext, params: Params) -> list[Any]:
    """List departments (names, or dicts with all_fields), with the datasets the caller may see."""
    rows = [_organization(c) for c in departments_with_counts(ctx.session, ctx.principal)]
    return _listing(rows, params, "organizations")


def organization_show(ctx: ActionContext, params: Params) -> dict[str, Any]:
    """Return a department; include_datasets adds the datasets the caller may see."""
    key = params.required("id")
    found = [c for c in departments_with_counts(ctx.session, ctx.principal) if _is(c, key)]
    if not found:
        raise NotFound(f"organization {key!r} not found")
    shown = _organization(found[0])
    return _with_datasets(ctx, params, shown, "organization", found[0].department.slug)


def group_list(ctx: ActionContext, params: Params) -> list[Any]:
    """List the groups (e-Stat categories), with the datasets the caller may see."""
    rows = [_group(c) for c in groups_with_counts(ctx.session, ctx.principal)]
    return _listing(rows, params, "groups")


def group_show(ctx: ActionContext, params: Params) -> dict[str, Any]:
    """Return a group; include_datasets adds the datasets the caller may see."""
    key = params.required("id")
    found = [c for c in groups_with_counts(ctx.session, ctx.principal) if c.group.name == key]
    if not found:
        raise NotFound(f"group {key!r} not found")
    return _with_datasets(ctx, params, _group(found[0]), "groups", found[0].group.name)


def tag_list(ctx: ActionContext, params: Params) -> list[Any]:
    """List the tags of datasets the caller may see (query filters, all_fields gives dicts)."""
    if params.text("vocabulary_id"):
        return []
    tags = visible_tags(ctx.session, ctx.principal, contains=params.text("query").strip())
    if not params.boolean("all_fields", False):
        return [t.name for t in tags]
    return [
        {"id": t.name, "name": t.name, "display_name": t.name, "vocabulary_id": None} for t in tags
    ]


def license_list(ctx: ActionContext, params: Params) -> list[dict[str, Any]]:
    """List the licences a dataset may carry."""
    return [_license(license) for license in LICENSES]


def resource_show(ctx: ActionContext, params: Params) -> dict[str, Any]:
    """Return a resource the caller may see; a missing or hidden one is Not Found."""
    resource = get_resource(ctx.session, ctx.principal, params.required("id"))
    dataset = get_dataset(ctx.session, ctx.principal, str(resource.dataset_id))
    return resource_dict(ctx.base_url, dataset, resource)


def status_show(ctx: ActionContext, params: Params) -> dict[str, Any]:
    """Describe the site: the CKAN version it is compatible with, its title and extensions."""
    settings = ctx.settings
    return {
        "ckan_version": CKAN_VERSION,
        "portal_version": __version__,
        "site_title": f"{settings.municipality_name} オープンデータ",
        "site_url": ctx.base_url,
        "site_description": (
            f"{settings.municipality_name}（{settings.municipality_name_en}）の"
            "オープンデータカタログと地図"
        ),
        "error_emails_to": None,
        "locale_default": "ja",
        "extensions": EXTENSIONS,
    }


def _is(counted: CountedDepartment, key: str) -> bool:
    return key in (counted.department.slug, str(counted.department.id))


def _organization(counted: CountedDepartment) -> dict[str, Any]:
    return {
        **organization_dict(counted.department),
        "package_count": counted.package_count,
        "num_followers": 0,
    }


def _group(counted: CountedGroup) -> dict[str, Any]:
    group = counted.group
    return {
        "id": group.name,
        "name": group.name,
        "title": group.title,
        "display_name": group.title,
        "title_en": group.title_en,
        "description": "",
        "image_url": "",
        "image_display_url": "",
        "type": "group",
        "is_organization": False,
        "approval_status": "approved",
        "state": "active",
        "package_count": counted.package_count,
        "num_followers": 0,
    }


def _listing(rows: list[dict[str, Any]], params: Params, subset_key: str) -> list[Any]:
    """Apply CKAN's list options: a subset, q, sort, limit, offset, all_fields."""
    wanted = set(params.strings(subset_key))
    if wanted:
        rows = [r for r in rows if r["name"] in wanted]
    text = params.text("q").strip().lower()
    if text:
        rows = [r for r in rows if text in r["name"].lower() or text in r["title"].lower()]
    sort = params.text("sort", "name asc").split() or ["name"]
    key, way = sort[0], sort[1].lower() if len(sort) > 1 else "asc"
    if key not in LIST_SORTS or way not in ("asc", "desc"):
        raise validation_error({"sort": [f"use one of {', '.join(LIST_SORTS)} with asc or desc"]})
    rows.sort(key=lambda r: r[key], reverse=way == "desc")
    offset = params.integer("offset", 0)
    limit = params.integer("limit", len(rows))
    rows = rows[offset : offset + limit]
    if not params.boolean("all_fields", False):
        return [r["name"] for r in rows]
    if not params.boolean("include_dataset_count", True):
        rows = [{k: v for k, v in r.items() if k != "package_count"} for r in rows]
    return rows


def _with_datasets(
    ctx: ActionContext, params: Params, shown: dict[str, Any], facet: str, value: str
) -> dict[str, Any]:
    shown |= {"extras": [], "tags": [], "groups": [], "users": []}
    if params.boolean("include_datasets", False):
        query = DatasetQuery(
            filters={facet: [value]}, sort=(("name", "asc"),), rows=MAX_ROWS, start=0
        )
        found = search_datasets(ctx.session, ctx.principal, query)
        shown["packages"] = [package_dict(ctx.base_url, d) for d in found.datasets]
    return shown


def _license(license: License) -> dict[str, Any]:
    conformance = "approved" if license.is_open else "not reviewed"
    return {
        "id": license.id,
        "title": license.title,
        "title_en": license.title_en,
        "url": license.url,
        "attribution": license.attribution,
        "status": "active",
        "maintainer": "",
        "family": "",
        "domain_content": True,
        "domain_data": True,
        "domain_software": False,
        "is_generic": False,
        "is_okd_compliant": license.is_open,
        "is_osi_compliant": False,
        "od_conformance": conformance,
        "osd_conformance": "not reviewed",
    }
