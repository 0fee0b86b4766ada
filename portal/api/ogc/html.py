"""The HTML pages of `/ogc`, rendered by pygeoapi with the portal's templates (no CDN).

pygeoapi's `API` is built from a configuration made in memory: the layers the caller may
see (visibility is applied in SQL by `list_layers`) and the catalog's records collection.
Building it is slow, so built objects are kept per (base URL, visible layers and their
revisions, language). The caller reaches pygeoapi's providers through `OGC_CALLER`.
"""

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from contextvars import ContextVar
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from pygeoapi import l10n
from pygeoapi.api import API, APIRequest, describe_collections, landing_page
from pygeoapi.api.itemtypes import (
    get_collection_item,
    get_collection_items,
    get_collection_queryables,
)
from pygeoapi.util import render_j2_template
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from portal.api.deps import base_url
from portal.api.ogc.conformance import CONFORMS_TO
from portal.api.routes.catalog_common import GSI_ATTRIBUTION, GSI_PALE
from portal.catalog.record_format import COLLECTION_DESCRIPTION, COLLECTION_ID, COLLECTION_TITLE
from portal.catalog.records import catalog_collection
from portal.core.principal import ANONYMOUS, Principal
from portal.core.settings import Settings
from portal.geo.layer_metadata import LayerDataset, datasets_by_layer
from portal.geo.ogc_crs import CRS84, supported_crs_uris
from portal.geo.ogc_provider import OGC_CALLER, OgcCaller
from portal.geo.registry import LayerSummary, list_layers
from portal.web.i18n import COOKIE, LANGUAGES, catalog, translate
from portal.web.templating import STATIC_DIR, WEB_DIR

TEMPLATES = WEB_DIR / "templates" / "pygeoapi"
FEATURE_PROVIDER = "portal.geo.ogc_provider.PortalFeatureProvider"
RECORDS_PROVIDER = "portal.catalog.records_provider.PortalRecordsProvider"
# Columns that name a feature, in order of preference (the item page's heading).
TITLE_COLUMNS = ("名称", "施設名", "路線名", "地区名", "A29_005", "name", "NAME", "title")
WORLD = [-180.0, -90.0, 180.0, 90.0]
CACHE_SIZE = 32
DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000
SAMPLE_LABEL = "サンプル"
# Labels the OGC pages share with the rest of the portal.
SHARED_LABELS = {
    **{name: f"site.{name}" for name in ("skip", "switch_language", "footer")},
    **{name: f"pager.{name}" for name in ("prev", "next")},
    **{f"map_{name}": f"mapview.{name}" for name in ("offline", "noscript", "error")},
    "nav_datasets": "nav.datasets",
    "sample_notice": "home.sample_notice",
}

ApiKey = tuple[str, tuple[tuple[str, int], ...], str]
PageResult = tuple[dict[str, str], int, str]

_RENDERING: ContextVar[ApiKey | None] = ContextVar("ogc_html_rendering", default=None)
_CACHE_LOCK = threading.Lock()


async def render_ogc_html(
    request: Request, principal: Principal, view: str, **path_params: str
) -> Response:
    """Render one `/ogc` page as HTML for `principal`.

    Views: landing, conformance, collections, collection (collection_id), items
    (collection_id), item (collection_id, item_id), queryables (collection_id), records and
    record (item_id) of the "catalog" collection.
    """
    page = VIEWS.get(view)
    if page is None or set(path_params) - set(PATH_PARAMETERS):
        raise ValueError(f"unknown OGC page {view!r} {path_params}; pages: {', '.join(VIEWS)}")
    if view in ("records", "record"):
        path_params.setdefault("collection_id", COLLECTION_ID)
    arguments = [path_params[name] for name in PATH_PARAMETERS if name in path_params]
    app: FastAPI = request.app
    settings: Settings = app.state.settings
    sessions: Callable[[], Session] = app.state.session_factory
    language = page_language(request, settings.default_language)
    root = base_url(request)
    layers = await run_in_threadpool(_visible_layers, sessions, principal)
    key: ApiKey = (root, tuple(sorted((layer.id, layer.revision) for layer in layers)), language)
    api = await run_in_threadpool(_api_for, app, key, layers)
    api_request = await APIRequest.from_starlette(_html_request(request, language), api.locales)
    params = dict(request.query_params)
    caller = OGC_CALLER.set(OgcCaller(principal=principal, engine=app.state.engine, params=params))
    rendering = _RENDERING.set(key)
    try:
        headers, status, content = await run_in_threadpool(page, api, api_request, *arguments)
    finally:
        _RENDERING.reset(rendering)
        OGC_CALLER.reset(caller)
    response = HTMLResponse(content, status_code=int(status))
    if "Content-Language" in headers:
        response.headers["Content-Language"] = headers["Content-Language"]
    response.headers["Vary"] = "Accept, Accept-Language, Cookie"
    return response


def page_language(request: Request, default: str) -> str:
    """Choose the page language: `?lang=`, the portal's cookie, Accept-Language, the default."""
    for chosen in (request.query_params.get("lang"), request.cookies.get(COOKIE)):
        if chosen in LANGUAGES:
            return str(chosen)
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(request.headers.get("accept-language", "").split(",")):
        tag, _, weight = part.replace(" ", "").partition(";q=")
        try:
            quality = float(weight) if weight else 1.0
        except ValueError:
            continue
        if tag.split("-")[0].lower() in LANGUAGES and quality > 0:
            ranked.append((-quality, position, tag.split("-")[0].lower()))
    return min(ranked)[2] if ranked else default


def _html_request(request: Request, language: str) -> Request:
    """The request as pygeoapi should see it: f=html, and the chosen language as its locale.

    `lang` is dropped so that pygeoapi's links do not pin it (the portal's cookie keeps it).
    """
    query = [(k, v) for k, v in request.query_params.multi_items() if k not in ("f", "lang")]
    headers = [(k, v) for k, v in request.scope["headers"] if k != b"accept-language"]
    headers.append((b"accept-language", language.encode()))
    scope = {
        **request.scope,
        "query_string": urlencode([*query, ("f", "html")]).encode(),
        "headers": headers,
    }
    return Request(scope, request.receive)


def _visible_layers(sessions: Callable[[], Session], principal: Principal) -> list[LayerSummary]:
    with sessions() as session:
        return list_layers(session, principal)


# --- the pygeoapi API objects ------------------------------------------------------------


def _api_for(app: FastAPI, key: ApiKey, layers: list[LayerSummary]) -> API:
    """Return the cached pygeoapi API for `key`, building it when it is new."""
    with _CACHE_LOCK:
        cache: OrderedDict[ApiKey, API] | None = getattr(app.state, "ogc_html_apis", None)
        if cache is None:
            cache = OrderedDict()
            app.state.ogc_html_apis = cache
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
    root, _, language = key
    with app.state.session_factory() as session:
        # Public facts only: one API object serves every caller who sees the same layers.
        licences = datasets_by_layer(session, ANONYMOUS)
        extent = catalog_collection(session, ANONYMOUS, base_url=root).get("extent", {})
    catalog_bbox = extent.get("spatial", {}).get("bbox", [WORLD])[0]
    config = build_config(
        root=root,
        language=language,
        layers=layers,
        licences=licences,
        catalog_bbox=catalog_bbox,
        settings=app.state.settings,
    )
    # API() calls logging.basicConfig; a handler on the root logger turns that into a no-op,
    # so pygeoapi does not configure the whole portal's logging.
    guard = logging.NullHandler()
    logging.getLogger().addHandler(guard)
    try:
        api = API(config, openapi={})
    finally:
        logging.getLogger().removeHandler(guard)
    with _CACHE_LOCK:
        cache[key] = api
        while len(cache) > CACHE_SIZE:
            cache.popitem(last=False)
    return api


def build_config(
    *,
    root: str,
    language: str,
    layers: list[LayerSummary],
    licences: dict[str, LayerDataset],
    catalog_bbox: list[float],
    settings: Settings,
) -> dict[str, Any]:
    """Return the pygeoapi configuration of the pages for these layers, in one language."""
    name = {"ja": settings.municipality_name, "en": settings.municipality_name_en}
    resources: dict[str, Any] = {
        layer.id: _layer_resource(root, layer, licences.get(layer.id)) for layer in layers
    }
    resources[COLLECTION_ID] = _catalog_resource(root, catalog_bbox, settings)
    path = urlsplit(root).path.rstrip("/")
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": 0},
            "url": f"{root}/ogc",
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["ja", "en"],
            "pretty_print": False,
            "limits": {"default_items": DEFAULT_LIMIT, "max_items": MAX_LIMIT},
            "map": _basemap(settings),
            "templates": {"path": str(TEMPLATES), "static": str(STATIC_DIR)},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": {
                    lang: translate(lang, "ogc.api_title", municipality=name[lang]) for lang in name
                },
                "description": {lang: translate(lang, "ogc.api_description") for lang in name},
                "keywords": {
                    lang: translate(lang, "ogc.api_keywords").split("、") for lang in name
                },
                "keywords_type": "theme",
                "terms_of_service": f"{root}/dataset",
                "url": f"{root}/",
            },
            "license": {
                "name": translate(language, "ogc.license_per_dataset"),
                "url": f"{root}/dataset",
            },
            "provider": {"name": name, "url": f"{root}/"},
            "contact": {"name": name, "url": f"{root}/organization", "role": "pointOfContact"},
        },
        "resources": resources,
        "portal": {
            "base": root,
            "lang": language,
            "other_lang": "en" if language == "ja" else "ja",
            "home": f"{path}/",
            "static": f"{path}/static",
            "labels": page_labels(language, settings),
            "sample": SAMPLE_LABEL,
            "records_id": COLLECTION_ID,
        },
    }


def _layer_resource(root: str, layer: LayerSummary, dataset: LayerDataset | None) -> dict[str, Any]:
    title_en = layer.title_en or layer.title
    links: list[dict[str, str]] = []
    if dataset is not None:
        links.append(_html_link("describedby", dataset.title, f"{root}/dataset/{dataset.name}"))
        if dataset.license_url:
            links.append(_html_link("license", dataset.license_title, dataset.license_url))
    geometry = [translate(lang, f"geometry.{layer.geometry_type}") for lang in ("ja", "en")]
    return {
        "type": "collection",
        "title": {"ja": layer.title, "en": title_en},
        "description": {
            "ja": f"{layer.department_name}の{layer.title}",
            "en": f"{title_en} ({layer.department_name})",
        },
        "keywords": {
            "ja": [layer.department_name, *([geometry[0]] if layer.is_spatial else [])],
            "en": [layer.department_name, *([geometry[1]] if layer.is_spatial else [])],
        },
        "links": links,
        "extents": {"spatial": {"bbox": list(layer.bbox or WORLD), "crs": CRS84}},
        "providers": [
            {
                "type": "feature",
                "name": FEATURE_PROVIDER,
                "data": layer.id,
                "id_field": "fid",
                "title_field": next((c for c in TITLE_COLUMNS if c in layer.column_names), None),
                "crs": supported_crs_uris() if layer.is_spatial else [CRS84],
                "storage_crs": CRS84,
            }
        ],
    }


def _catalog_resource(root: str, bbox: list[float], settings: Settings) -> dict[str, Any]:
    return {
        "type": "collection",
        "title": {"ja": COLLECTION_TITLE, "en": translate("en", "ogc.catalog_title")},
        "description": {"ja": COLLECTION_DESCRIPTION, "en": translate("en", "ogc.catalog_about")},
        "keywords": {"ja": ["データカタログ"], "en": ["data catalog"]},
        "links": [_html_link("alternate", COLLECTION_TITLE, f"{root}/dataset")],
        "extents": {"spatial": {"bbox": list(bbox), "crs": CRS84}},
        "providers": [
            {
                "type": "record",
                "name": RECORDS_PROVIDER,
                "data": COLLECTION_ID,
                "id_field": "id",
                "title_field": "title",
                "base_url": root,
                "municipality_name": settings.municipality_name,
            }
        ],
    }


def _html_link(rel: str, title: str, href: str) -> dict[str, str]:
    return {"type": "text/html", "rel": rel, "title": title, "href": href}


def _basemap(settings: Settings) -> dict[str, str]:
    """The offline basemap (no tiles) unless the portal is configured for GSI tiles."""
    if getattr(settings, "basemap", "offline") == "gsi":
        return {"url": GSI_PALE, "attribution": GSI_ATTRIBUTION}
    return {"url": "", "attribution": ""}


def page_labels(language: str, settings: Settings) -> dict[str, str]:
    """Return the labels of the pygeoapi templates in one language (`ogc.*` plus shared ones)."""
    labels = {
        key.removeprefix("ogc."): translate(language, key)
        for key in catalog("ja")
        if key.startswith("ogc.")
    }
    municipality = settings.municipality_name if language == "ja" else settings.municipality_name_en
    labels["site_title"] = translate(language, "site.title", municipality=municipality)
    for name, key in SHARED_LABELS.items():
        labels[name] = translate(language, key)
    return labels


# --- the pages -----------------------------------------------------------------------------


def _conformance(api: API, request: APIRequest) -> PageResult:
    """The portal's own conformance list (what `/ogc/conformance` declares as JSON)."""
    headers = request.get_response_headers(**api.api_headers)
    json_link = {"rel": "alternate", "type": "application/json", "title": "JSON"}
    data = {
        "conformsTo": list(CONFORMS_TO),
        "links": [{**json_link, "href": f"{api.base_url}/conformance?f=json"}],
    }
    content = render_j2_template(
        api.tpl_config, api.config["server"]["templates"], "conformance.html", data, request.locale
    )
    return headers, HTTPStatus.OK, content


# Each view is called as view(api, request, [collection_id, [item_id]]).
VIEWS: dict[str, Callable[..., PageResult]] = {
    "landing": landing_page,
    "conformance": _conformance,
    "collections": describe_collections,
    "collection": describe_collections,
    "items": get_collection_items,
    "item": get_collection_item,
    "queryables": get_collection_queryables,
    "records": get_collection_items,
    "record": get_collection_item,
}
PATH_PARAMETERS = ("collection_id", "item_id")


# --- pygeoapi's cache of translated configurations -------------------------------------------


class _TranslatedConfigs:
    """Translated configurations kept per API object and locale, not per locale alone."""

    def __init__(self, size: int) -> None:
        self._entries: OrderedDict[tuple[ApiKey, str], Any] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, locale: object, default: Any = None) -> Any:
        """Return the configuration translated for the API being rendered, if cached."""
        key = _RENDERING.get()
        if key is None:
            return default
        with self._lock:
            return self._entries.get((key, str(locale)), default)

    def __setitem__(self, locale: object, value: Any) -> None:
        key = _RENDERING.get()
        if key is None:
            return
        with self._lock:
            self._entries[(key, str(locale))] = value
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


# pygeoapi caches the configuration its templates see by locale alone; with one API object
# per base URL and set of visible layers, a page would show another caller's collections
# and links. Outside our renders nothing is cached, which is always correct.
l10n._cfg_cache = _TranslatedConfigs(CACHE_SIZE * 2)
