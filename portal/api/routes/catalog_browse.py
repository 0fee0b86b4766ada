"""Browsing the catalog by department (CKAN organization) and by group (e-Stat category)."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from portal.api.deps import PrincipalDep, SessionDep
from portal.api.routes.catalog_common import (
    HtmlPageRoute,
    Links,
    facet_labels,
    helpers,
    parse_search,
)
from portal.catalog.ckan_queries import departments_with_counts, groups_with_counts
from portal.catalog.search import search_datasets
from portal.core.errors import NotFound
from portal.web.templating import render

router = APIRouter(include_in_schema=False, route_class=HtmlPageRoute)


@router.get("/organization", response_class=HTMLResponse)
def organization_list(
    request: Request, session: SessionDep, principal: PrincipalDep
) -> HTMLResponse:
    """List the departments with the number of datasets the caller may see."""
    counted = departments_with_counts(session, principal)
    return render(request, "dataset/organization_list.html", departments=counted)


@router.get("/organization/{slug}", response_class=HTMLResponse)
def organization_page(
    request: Request, slug: str, session: SessionDep, principal: PrincipalDep
) -> HTMLResponse:
    """Show a department and its datasets the caller may see, searchable and paged."""
    found = [c for c in departments_with_counts(session, principal) if c.department.slug == slug]
    if not found:
        raise NotFound(f"department {slug!r} not found")
    params = list(request.query_params.multi_items())
    parsed = parse_search(params, fixed={"organization": slug})
    return render(
        request,
        "dataset/organization_show.html",
        department=found[0].department,
        result=search_datasets(session, principal, parsed.query),
        search=parsed,
        links=Links(f"/organization/{slug}", params),
        **facet_labels(session, principal),
        **helpers(),
    )


@router.get("/group", response_class=HTMLResponse)
def group_list(request: Request, session: SessionDep, principal: PrincipalDep) -> HTMLResponse:
    """List the 17 groups with the number of datasets the caller may see."""
    return render(request, "dataset/group_list.html", groups=groups_with_counts(session, principal))


@router.get("/group/{name}", response_class=HTMLResponse)
def group_page(
    request: Request, name: str, session: SessionDep, principal: PrincipalDep
) -> HTMLResponse:
    """Show a group and its datasets the caller may see, searchable and paged."""
    found = [c for c in groups_with_counts(session, principal) if c.group.name == name]
    if not found:
        raise NotFound(f"group {name!r} not found")
    params = list(request.query_params.multi_items())
    parsed = parse_search(params, fixed={"groups": name})
    return render(
        request,
        "dataset/group_show.html",
        group=found[0].group,
        result=search_datasets(session, principal, parsed.query),
        search=parsed,
        links=Links(f"/group/{name}", params),
        **facet_labels(session, principal),
        **helpers(),
    )
