"""Downloads: original files, converted tables, and layer exports.

URL scheme (every lookup goes through the visibility rules; hidden answers 404 like missing):
- `/dataset/{name}/resource/{id}/download/{file}`: the stored original, byte for byte.
- `/dataset/{name}/resource/{id}/convert.csv?encoding=utf-8|cp932` and `.../convert.xlsx`:
  a CSV or XLSX file resource, or a table/point layer resource, converted.
- `/download/{layer_id}.geojson|.gpkg|.shp.zip|.kml|.csv|.xlsx?bbox=…&filter=…&crs=…`: a layer
  export built from PostGIS (`limit=N`; `encoding=cp932` for CSV too).
"""

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse

from portal.api.deps import EngineDep, PrincipalDep, SessionDep, StorageDep
from portal.catalog.convert import csv_encoding
from portal.catalog.downloads import convert_resource, find_original, find_resource, is_public
from portal.core.errors import NotFound
from portal.core.principal import Visibility
from portal.geo.exports import (
    MAX_LIMIT,
    ExportBody,
    LayerQuery,
    export_layer,
    parse_bbox,
    split_download_name,
)
from portal.geo.registry import get_layer

router = APIRouter(tags=["downloads"])
CONVERSIONS = ("csv", "xlsx")
ORIGINAL = "/dataset/{name}/resource/{resource_id}/download/{filename}"
EncodingQuery = Annotated[str, Query(description="utf-8 (with BOM, the default) or cp932")]


@router.head(ORIGINAL, include_in_schema=False)  # link checkers (CKAN's among them) use HEAD
@router.get(ORIGINAL)
def download_original(
    name: str,
    resource_id: str,
    filename: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    storage: StorageDep,
) -> Response:
    """Send a stored original unchanged, with its SHA-256 as ETag (Range requests work)."""
    original = find_original(session, principal, storage, name, resource_id, filename)
    etag = f'"{original.sha256}"' if original.sha256 else None
    headers = _headers(original.file_name, public=original.public, etag=etag)
    if etag and etags_in(request.headers.get("if-none-match")) & {etag, "*"}:
        return Response(status_code=304, headers=headers)
    return FileResponse(original.path, media_type=original.media_type, headers=headers)


@router.get("/dataset/{name}/resource/{resource_id}/convert.{fmt}")
def convert(
    name: str,
    resource_id: str,
    fmt: str,
    session: SessionDep,
    principal: PrincipalDep,
    storage: StorageDep,
    engine: EngineDep,
    encoding: EncodingQuery = "utf-8",
) -> Response:
    """Send a CSV/XLSX file resource or a table/point layer resource as CSV or XLSX.

    CSV is UTF-8 with a BOM, or CP932 with `?encoding=cp932`; a character CP932 cannot hold
    is a 400 naming its row, column and code point. The whole file is converted first.
    """
    if fmt not in CONVERSIONS:
        raise NotFound(f"conversions come as convert.csv or convert.xlsx, not convert.{fmt}")
    dataset, resource = find_resource(session, principal, name, resource_id)
    chosen = csv_encoding(encoding)
    public = is_public(dataset, resource)
    if resource.kind == "layer" and resource.layer_id:
        layer = get_layer(session, principal, resource.layer_id)
        body = export_layer(engine, layer, fmt, LayerQuery(encoding=chosen))
        public = public and layer.visibility is Visibility.public
        return stream_export(body, f"{layer.id}.{fmt}", public=public)
    converted, file_name = convert_resource(storage, resource, fmt, encoding=chosen)
    body = ExportBody(converted.chunks(), converted.media_type, converted.size)
    return stream_export(body, file_name, public=public)


@router.get("/download/{file_name}")
def download_layer(
    file_name: str,
    session: SessionDep,
    principal: PrincipalDep,
    engine: EngineDep,
    limit: Annotated[int | None, Query(ge=1, le=MAX_LIMIT)] = None,
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy in degrees")] = None,
    encoding: EncodingQuery = "utf-8",
    filter: Annotated[str | None, Query(description="CQL2 filter (text or JSON)")] = None,
    filter_lang: Annotated[
        str | None, Query(alias="filter-lang", description="cql2-text or cql2-json")
    ] = None,
    crs: Annotated[str | None, Query(description="output CRS, e.g. EPSG:6670")] = None,
) -> Response:
    """Export a layer the caller may see, as `{layer}.{geojson,gpkg,shp.zip,kml,csv,xlsx}`.

    `bbox`, a CQL2 `filter` and `crs` select the part and the coordinates; `limit` (at most
    100,000) serves map previews.
    """
    layer_id, fmt = split_download_name(file_name)
    layer = get_layer(session, principal, layer_id)
    query = LayerQuery(
        parse_bbox(bbox),
        limit,
        csv_encoding(encoding),
        filter=filter,
        filter_lang=filter_lang,
        crs=crs,
    )
    body = export_layer(engine, layer, fmt, query)
    return stream_export(
        body, body.file_name or file_name, public=layer.visibility is Visibility.public
    )


def stream_export(body: ExportBody, file_name: str, *, public: bool) -> StreamingResponse:
    """Send an export as an attachment, kept out of shared caches unless it is public."""
    headers = _headers(file_name, public=public)
    if body.size is not None:
        headers["content-length"] = str(body.size)
    return StreamingResponse(body.chunks, media_type=body.media_type, headers=headers)


def _headers(file_name: str, *, public: bool, etag: str | None = None) -> dict[str, str]:
    """Attachment headers; uploaded files must never render as pages of the portal."""
    headers = {
        "content-disposition": content_disposition(file_name),
        "x-content-type-options": "nosniff",
        "content-security-policy": "default-src 'none'; sandbox",
        # Public files may be cached but are revalidated; others stay out of shared caches.
        "cache-control": "no-cache" if public else "private, no-store",
    }
    if etag:
        headers["etag"] = etag
    return headers


def content_disposition(file_name: str) -> str:
    """Return `attachment` with an ASCII fallback name and the RFC 5987 UTF-8 name."""
    ascii_name = "".join(
        ch if 0x20 < ord(ch) < 0x7F and ch not in '"\\;%' else "_" for ch in file_name
    )
    stem, dot, suffix = ascii_name.rpartition(".")
    if not dot or not stem.strip("_"):
        ascii_name = "download" + (f".{suffix}" if dot else "")
    value = f'attachment; filename="{ascii_name}"'
    if ascii_name != file_name:
        value += f"; filename*=UTF-8''{quote(file_name, safe='')}"
    return value


def etags_in(header: str | None) -> set[str]:
    """Return the entity tags an `If-None-Match` or `If-Match` header lists (weakness ignored)."""
    if not header:
        return set()
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}
