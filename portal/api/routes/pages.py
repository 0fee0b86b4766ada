"""HTML pages: the home page (catalog pages arrive with the catalog)."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from portal.api.deps import PrincipalDep, SessionDep, SettingsDep
from portal.catalog.departments import list_departments
from portal.geo.registry import list_layers
from portal.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request, session: SessionDep, principal: PrincipalDep, settings: SettingsDep
) -> HTMLResponse:
    """List the departments and the layers the caller may see."""
    layers = list_layers(session, principal)
    departments = list_departments(session)
    counts = {d.slug: 0 for d in departments}
    for layer in layers:
        counts[layer.department_slug] = counts.get(layer.department_slug, 0) + 1
    return render(
        request,
        "home.html",
        departments=departments,
        layer_counts=counts,
        layers=[layer for layer in layers if layer.is_spatial],
        tables=[layer for layer in layers if not layer.is_spatial],
        municipality_code=settings.municipality_code,
    )
