"""Whole-layer downloads from the items endpoint: `?f=gpkg|shp|kml|csv|xlsx` with any filter."""

from fastapi.responses import Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from portal.api.routes.downloads import stream_export
from portal.core.errors import InvalidInput
from portal.core.principal import Visibility
from portal.geo.exports import MAX_LIMIT, LayerQuery, export_layer
from portal.geo.features import parse_feature_query
from portal.geo.registry import LayerSummary

DOWNLOAD_FORMATS = ("gpkg", "shp", "kml", "csv", "xlsx")


def is_download(fmt: str | None) -> bool:
    """Tell whether `f` asks for a file download rather than a page of GeoJSON."""
    return (fmt or "").lower() in DOWNLOAD_FORMATS


async def download_items(engine: Engine, layer: LayerSummary, params: dict[str, str]) -> Response:
    """Export every feature that matches the request's filters (or the first `limit`)."""
    fmt = params["f"].lower()
    limit = _limit(params.pop("limit", None))
    query = parse_feature_query(layer, params)
    body = await run_in_threadpool(
        export_layer,
        engine,
        layer,
        fmt,
        LayerQuery(limit=limit, encoding=params.get("encoding", "utf-8"), selection=query),
    )
    file_name = body.file_name or f"{layer.id}.{fmt}"
    return stream_export(body, file_name, public=layer.visibility is Visibility.public)


def _limit(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT:,}; got {text!r}")
    return int(text)
