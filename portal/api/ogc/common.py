"""Shared pieces of the OGC API routes: base URLs, format negotiation, links, responses."""

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response

from portal.api.deps import base_url

JSON = "application/json"
GEOJSON = "application/geo+json"
HTML = "text/html"
OPENAPI_JSON = "application/vnd.oai.openapi+json;version=3.0"
SCHEMA_JSON = "application/schema+json"
MVT = "application/vnd.mapbox-vector-tile"


def ogc_root(request: Request) -> str:
    """Return the public URL of `/ogc` for this request (proxy headers honoured)."""
    return f"{base_url(request)}/ogc"


def wants_html(request: Request) -> bool:
    """Tell whether the caller asked for HTML: `f=html`, or a browser's Accept header."""
    requested = request.query_params.get("f")
    if requested:
        return requested.lower() == "html"
    accept = request.headers.get("accept", "")
    return HTML in accept and "json" not in accept.split(HTML)[0]


def link(href: str, rel: str, media_type: str, title: str, **extra: Any) -> dict[str, Any]:
    """Build one OGC link object."""
    return {"href": href, "rel": rel, "type": media_type, "title": title, **extra}


def json_response(
    document: Any,
    *,
    media_type: str = JSON,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """Serialise `document` as compact UTF-8 JSON (Japanese stays readable)."""
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status_code=status_code, media_type=media_type, headers=headers)


def url_with(url: str, params: dict[str, str], **changes: str) -> str:
    """Return `url` with the request's parameters, some of them replaced."""
    return f"{url}?{urlencode({**params, **changes})}"
