"""The catalog's HTML pages: search, dataset, resource and table preview."""

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from portal.api.deps import PrincipalDep, SessionDep, SettingsDep, StorageDep, base_url
from portal.api.routes import catalog_browse
from portal.api.routes.catalog_common import (
    HtmlPageRoute,
    Links,
    basemap_of,
    can_preview_file,
    facet_labels,
    helpers,
    map_config,
    parse_search,
)
from portal.catalog.ckan_queries import DatastoreQuery, datastore_rows
from portal.catalog.datasets import dataset_history, get_dataset
from portal.catalog.preview import TablePreview, preview_table, table_page
from portal.catalog.search import search_datasets
from portal.catalog.views import DatasetView, ResourceView
from portal.core.errors import InvalidInput, NotFound
from portal.core.principal import Principal
from portal.core.settings import Settings
from portal.core.storage import Storage
from portal.geo.registry import LayerSummary, get_layer
from portal.web.templating import render

router = APIRouter(include_in_schema=False, route_class=HtmlPageRoute)
PREVIEW_PAGE_SIZE = 50


@router.get("/dataset", response_class=HTMLResponse)
def search_page(request: Request, session: SessionDep, principal: PrincipalDep) -> HTMLResponse:
    """Search the catalog, with facets, sorting and paging."""
    params = list(request.query_params.multi_items())
    parsed = parse_search(params)
    result = search_datasets(session, principal, parsed.query)
    return render(
        request,
        "dataset/search.html",
        result=result,
        search=parsed,
        links=Links("/dataset", params),
        **facet_labels(session, principal),
        **helpers(),
    )


@router.get("/dataset/{name:dataset_name}", response_class=HTMLResponse)
def dataset_page(
    request: Request,
    name: str,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """Show a dataset: metadata, licence and attribution, resources, map, history."""
    dataset = get_dataset(session, principal, name)
    layers = layers_of(session, principal, dataset)
    resource = next((r for r in dataset.resources if drawable(layers.get(r.id))), None)
    layer = layers[resource.id] if resource else None
    return render(
        request,
        "dataset/show.html",
        dataset=dataset,
        layers=layers,
        attribution=attribution(request, settings, dataset),
        history=dataset_history(session, principal, name) if principal.is_staff else [],
        map=map_config(layer, basemap_of(request, settings)) if layer else None,
        map_resource=resource,
        **helpers(),
    )


@router.get("/dataset/{name:dataset_name}/resource/{resource_id:uuid}", response_class=HTMLResponse)
def resource_page(
    request: Request,
    name: str,
    resource_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    storage: StorageDep,
    page: int = 1,
) -> HTMLResponse:
    """Show one resource with its table preview or map preview."""
    dataset, resource = find_resource(session, principal, name, resource_id)
    layer = layers_of(session, principal, dataset).get(resource.id)
    preview, preview_error = None, None
    try:
        preview = table_preview(session, principal, storage, resource, layer, page)
    except (InvalidInput, NotFound) as exc:
        preview_error = exc.message
    return render(
        request,
        "dataset/resource.html",
        dataset=dataset,
        resource=resource,
        preview=preview,
        preview_error=preview_error,
        attribution=attribution(request, settings, dataset),
        map=map_config(layer, basemap_of(request, settings)) if layer and drawable(layer) else None,
        **helpers(),
    )


@router.get(
    "/dataset/{name:dataset_name}/resource/{resource_id:uuid}/preview",
    response_class=HTMLResponse,
)
def preview_page(
    request: Request,
    name: str,
    resource_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    storage: StorageDep,
    page: int = 1,
    partial: bool = False,
) -> HTMLResponse:
    """One page of a table preview: a whole page, or with `?partial=1` only the fragment."""
    dataset, resource = find_resource(session, principal, name, resource_id)
    layer = layers_of(session, principal, dataset).get(resource.id)
    preview = table_preview(session, principal, storage, resource, layer, page)
    if preview is None:
        raise InvalidInput(f"a {resource.format or resource.kind} resource has no table preview")
    template = "dataset/_preview.html" if partial else "dataset/preview.html"
    return render(
        request, template, dataset=dataset, resource=resource, preview=preview, **helpers()
    )


def find_resource(
    session: Session, principal: Principal, name: str, resource_id: uuid.UUID
) -> tuple[DatasetView, ResourceView]:
    """Return a visible dataset and its visible resource, or `NotFound`."""
    dataset = get_dataset(session, principal, name)
    for resource in dataset.resources:
        if resource.id == resource_id:
            return dataset, resource
    raise NotFound(f"resource {resource_id} not found in dataset {name!r}")


def table_preview(
    session: Session,
    principal: Principal,
    storage: Storage,
    resource: ResourceView,
    layer: LayerSummary | None,
    page: int,
) -> TablePreview | None:
    """Decode one page of a stored CSV/XLSX, or read one from a non-spatial layer's table."""
    if can_preview_file(resource):
        assert resource.storage_key is not None
        path = storage.local_path(resource.storage_key)
        return preview_table(path, resource.format, page=page, page_size=PREVIEW_PAGE_SIZE)
    if layer is None or layer.is_spatial:
        return None
    if page < 1:
        raise InvalidInput(f"page must be 1 or more, got {page}")
    query = DatastoreQuery(limit=PREVIEW_PAGE_SIZE, offset=(page - 1) * PREVIEW_PAGE_SIZE)
    rows = datastore_rows(session, principal, str(resource.id), query)
    columns = [f["id"] for f in rows.fields if f["id"] != "_id"]
    return table_page(
        columns,
        [[record.get(c) for c in columns] for record in rows.records],
        page=page,
        page_size=PREVIEW_PAGE_SIZE,
        total=rows.total or 0,
    )


def layers_of(
    session: Session, principal: Principal, dataset: DatasetView
) -> dict[uuid.UUID, LayerSummary]:
    """Return the layers behind a dataset's layer resources that the caller may see."""
    found = {}
    for resource in dataset.resources:
        if resource.layer_id:
            try:
                found[resource.id] = get_layer(session, principal, resource.layer_id)
            except NotFound:
                continue
    return found


def drawable(layer: LayerSummary | None) -> bool:
    """Tell whether a layer has geometries and an extent to draw."""
    return layer is not None and layer.is_spatial and bool(layer.bbox)


def attribution(request: Request, settings: Settings, dataset: DatasetView) -> str:
    """Fill the licence's attribution wording: the city and department, and the page URL."""
    source = f"{settings.municipality_name} {dataset.department.name}"
    url = f"{base_url(request)}/dataset/{dataset.name}"
    return dataset.license.attribution.format(source=source, url=url)


# The department and group pages share this module's helpers and live in their own module.
router.include_router(catalog_browse.router)
