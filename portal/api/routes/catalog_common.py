"""Shared pieces of the catalog's HTML pages: HTML errors, search parameters, links, formats."""

import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.convertors import Convertor, register_url_convertor

from portal.api.errors import status_for
from portal.catalog.ckan_queries import groups_with_counts
from portal.catalog.departments import list_departments
from portal.catalog.licenses import get_license
from portal.catalog.package import resource_url
from portal.catalog.preview import can_preview
from portal.catalog.search import DEFAULT_SORT, FACET_FIELDS, DatasetQuery
from portal.catalog.views import ResourceView
from portal.core.errors import InvalidInput, PortalError
from portal.core.principal import Principal
from portal.core.settings import Settings
from portal.geo.registry import LayerSummary
from portal.web.templating import render_error_page

PAGE_SIZE = 20
MAX_PAGE = 5_000
MAP_FEATURE_LIMIT = 5_000
SORTS: dict[str, tuple[tuple[str, str], ...]] = {
    "relevance": DEFAULT_SORT,
    "newest": (("metadata_modified", "desc"),),
    "name": (("name", "asc"),),
}
GSI_PALE = "https://cyberjapandata.gsi.go.jp/xyz/pale/{z}/{x}/{y}.png"
GSI_ATTRIBUTION = '<a href="https://maps.gsi.go.jp/development/ichiran.html">地理院タイル</a>'
TOKYO = ZoneInfo("Asia/Tokyo")


class DatasetNameConvertor(Convertor[str]):
    """Dataset names are `[a-z0-9_-]`; `/dataset/x.ttl` is left to the DCAT routes."""

    regex = "[a-z0-9_-]+"

    def convert(self, value: str) -> str:
        """Return the name as is."""
        return value

    def to_string(self, value: str) -> str:
        """Return the name as is."""
        return value


register_url_convertor("dataset_name", DatasetNameConvertor())


class HtmlPageRoute(APIRoute):
    """A route whose domain and validation errors become the HTML error page, not JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler so errors render as pages with the right status."""
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except PortalError as exc:
                return render_error_page(request, status_for(exc), exc.message)
            except RequestValidationError as exc:
                return render_error_page(request, 400, validation_message(exc))

        return page_handler


def validation_message(exc: RequestValidationError) -> str:
    """Summarise FastAPI's validation errors in one line."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "path"))
        parts.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return "; ".join(parts) or "invalid request"


@dataclass
class SearchPage:
    """A parsed search request: the domain query plus what the page needs to show it."""

    query: DatasetQuery
    page: int
    sort: str


def parse_search(params: list[tuple[str, str]], fixed: dict[str, str] | None = None) -> SearchPage:
    """Turn `/dataset` query parameters into a `DatasetQuery`; bad values raise InvalidInput."""
    values: dict[str, list[str]] = {}
    for key, value in params:
        values.setdefault(key, []).append(value)
    single = {key: items[-1] for key, items in values.items()}
    sort = single.get("sort") or "relevance"
    if sort not in SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
    page = _int(single.get("page") or "1", "page")
    if not 1 <= page <= MAX_PAGE:
        raise InvalidInput(f"page must be between 1 and {MAX_PAGE}, got {page}")
    filters = {f: [v for v in values.get(f, []) if v.strip()] for f in FACET_FIELDS}
    for key, value in (fixed or {}).items():
        filters[key] = [value, *filters[key]]
    point = None
    if "lat" in single or "lon" in single:
        if not single.get("lat") or not single.get("lon"):
            raise InvalidInput("give both lat and lon to find datasets covering a point")
        point = (
            _coordinate(single["lon"], "lon", 180),
            _coordinate(single["lat"], "lat", 90),
        )
    query = DatasetQuery(
        q=single.get("q", "").strip(),
        filters={key: items for key, items in filters.items() if items},
        bbox=parse_bbox(single["bbox"]) if single.get("bbox") else None,
        point=point,
        sort=SORTS[sort],
        rows=PAGE_SIZE,
        start=(page - 1) * PAGE_SIZE,
        facet_fields=FACET_FIELDS,
        facet_limit=30,
    )
    return SearchPage(query, page, sort)


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """Parse `minx,miny,maxx,maxy` in degrees (longitude first)."""
    parts = text.split(",")
    if len(parts) != 4:
        raise InvalidInput(f"bbox must be minx,miny,maxx,maxy (four numbers), got {text!r}")
    minx, maxx = (_coordinate(parts[i], "bbox longitude", 180) for i in (0, 2))
    miny, maxy = (_coordinate(parts[i], "bbox latitude", 90) for i in (1, 3))
    if minx > maxx or miny > maxy:
        raise InvalidInput(f"bbox must have minx ≤ maxx and miny ≤ maxy, got {text!r}")
    return minx, miny, maxx, maxy


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise InvalidInput(f"{name} must be a whole number, got {text!r}") from exc


def _coordinate(text: str, name: str, limit: float) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise InvalidInput(f"{name} must be a number in degrees, got {text!r}") from exc
    if not math.isfinite(value) or abs(value) > limit:
        raise InvalidInput(f"{name} must be between -{limit:g} and {limit:g}, got {text!r}")
    return value


class Links:
    """Builds links to the same page with filters added, removed, or another page or order."""

    def __init__(self, path: str, params: list[tuple[str, str]]) -> None:
        # `lang` lives in a cookie once chosen; repeating it would pin every link.
        self.path = path
        self.params = [(k, v) for k, v in params if k not in ("lang", "page", "basemap") and v]

    def has(self, key: str, value: str) -> bool:
        """Tell whether a filter is on."""
        return (key, value) in self.params

    def toggle(self, key: str, value: str) -> str:
        """Link with the filter switched on or off, back on page 1."""
        if self.has(key, value):
            return self._url([p for p in self.params if p != (key, value)])
        return self._url([*self.params, (key, value)])

    def without(self, *keys: str) -> str:
        """Link without any value of the given parameters."""
        return self._url([p for p in self.params if p[0] not in keys])

    def page(self, number: int) -> str:
        """Link to another page of the same results."""
        return self._url(self.params, page=number)

    def sort(self, name: str) -> str:
        """Link to the same results in another order."""
        return self._url([p for p in self.params if p[0] != "sort"] + [("sort", name)])

    def _url(self, params: list[tuple[str, str]], page: int = 1) -> str:
        query = list(params) + ([("page", str(page))] if page > 1 else [])
        return f"{self.path}?{urlencode(query)}" if query else self.path


def human_size(size: int | None) -> str:
    """Format a byte count as people read it: 980 B, 12.3 KB, 1.2 MB."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def local_time(value: datetime | None, with_time: bool = True) -> str:
    """Show a timestamp in Japan time."""
    if value is None:
        return ""
    shown = value.astimezone(TOKYO) if value.tzinfo else value
    return shown.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def basemap_of(request: Request, settings: Settings) -> str:
    """Return `gsi` when asked for (or configured), else the offline basemap."""
    asked = request.query_params.get("basemap")
    if asked in ("gsi", "offline"):
        return asked
    configured = getattr(settings, "basemap", "offline")
    return configured if configured in ("gsi", "offline") else "offline"


def map_config(layer: LayerSummary, basemap: str) -> dict[str, Any]:
    """Return what catalog.js needs to draw a layer preview; large layers get only a bbox."""
    small = layer.feature_count <= MAP_FEATURE_LIMIT
    return {
        "layer": layer.id,
        "geojson": f"/download/{layer.id}.geojson" if small else None,
        "bbox": layer.bbox,
        "featureCount": layer.feature_count,
        "limit": MAP_FEATURE_LIMIT,
        "geometryType": layer.geometry_type,
        "basemap": basemap,
        "tiles": GSI_PALE if basemap == "gsi" else None,
        "attribution": GSI_ATTRIBUTION if basemap == "gsi" else None,
    }


def can_preview_file(resource: ResourceView) -> bool:
    """Tell whether a resource is a stored CSV/XLSX file."""
    return resource.kind == "file" and bool(resource.storage_key) and can_preview(resource.format)


def facet_labels(session: Session, principal: Principal) -> dict[str, Any]:
    """Return departments and groups by key, so facets can show names in either language."""
    return {
        "departments": {d.slug: d for d in list_departments(session)},
        "groups": {c.group.name: c.group for c in groups_with_counts(session, principal)},
    }


def helpers() -> dict[str, Any]:
    """Formatting helpers the catalog templates share."""
    return {
        "human_size": human_size,
        "local_time": local_time,
        "download_url": lambda dataset, resource: resource_url("", dataset.name, resource),
        "can_preview_file": can_preview_file,
        "license_of": get_license,
    }
