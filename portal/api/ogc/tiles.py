"""OGC API Tiles: vector tiles (MVT) of each layer and of all visible layers together."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from portal.api.deps import EngineDep, PrincipalDep, SessionDep, get_principal
from portal.api.ogc.common import JSON, MVT, json_response, link, ogc_root
from portal.api.routes.downloads import etags_in
from portal.core.principal import Visibility
from portal.geo.registry import get_layer
from portal.geo.tile_matrix import (
    check_tile_matrix_set,
    parse_tile_index,
    tile_matrix_set_document,
    tile_matrix_set_summary,
)
from portal.geo.tiles import Tile, portal_tile, render_tile
from portal.geo.tilesets import portal_tileset, tilejson, tileset_metadata

router = APIRouter()
LAYER_TILES = "/ogc/collections/{collection_id}/tiles"
TILESETS_REL = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"


@router.get("/ogc/tileMatrixSets", summary="Tile matrix sets")
async def tile_matrix_sets(request: Request) -> Response:
    """List the tiling schemes offered (WebMercatorQuad)."""
    return json_response({"tileMatrixSets": [tile_matrix_set_summary(ogc_root(request))]})


@router.get("/ogc/tileMatrixSets/{tile_matrix_set_id}", summary="One tile matrix set")
async def tile_matrix_set(tile_matrix_set_id: str) -> Response:
    """Return the definition of a tiling scheme."""
    check_tile_matrix_set(tile_matrix_set_id)
    return json_response(tile_matrix_set_document())


@router.get(LAYER_TILES, summary="Tilesets of a layer")
async def layer_tilesets(
    collection_id: str, request: Request, session: SessionDep, principal: PrincipalDep
) -> Response:
    """List the layer's tilesets (one, in WebMercatorQuad)."""
    layer = await run_in_threadpool(get_layer, session, principal, collection_id)
    root = ogc_root(request)
    metadata = tileset_metadata(layer, root)
    return json_response(
        {
            "links": [link(f"{root}/collections/{collection_id}/tiles", "self", JSON, layer.title)],
            "tilesets": [_summary(metadata)],
        }
    )


@router.get(LAYER_TILES + "/{tile_matrix_set_id}", summary="Tileset of a layer")
async def layer_tileset(
    collection_id: str,
    tile_matrix_set_id: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> Response:
    """Return the tileset metadata, or TileJSON with `f=tilejson`."""
    check_tile_matrix_set(tile_matrix_set_id)
    layer = await run_in_threadpool(get_layer, session, principal, collection_id)
    if request.query_params.get("f") == "tilejson":
        return json_response(tilejson(layer, ogc_root(request)))
    return json_response(tileset_metadata(layer, ogc_root(request)))


@router.get(
    LAYER_TILES + "/{tile_matrix_set_id}/{tile_matrix}/{tile_row}/{tile_col}",
    summary="A vector tile of a layer",
)
async def layer_tile(
    collection_id: str,
    tile_matrix_set_id: str,
    tile_matrix: str,
    tile_row: str,
    tile_col: str,
    request: Request,
    engine: EngineDep,
) -> Response:
    """Return one MVT tile (204 when the tile holds nothing)."""
    check_tile_matrix_set(tile_matrix_set_id)
    index = parse_tile_index(tile_matrix, tile_row, tile_col)
    cache = request.app.state.tile_cache

    def draw() -> Tile:
        # One worker thread and one session for the caller and the layer: tiles are hot.
        with request.app.state.session_factory() as session:
            principal = get_principal(request, session)
            return render_tile(
                engine,
                principal,
                collection_id,
                index.z,
                index.x,
                index.y,
                cache=cache,
                session=session,
            )

    tile = await run_in_threadpool(draw)
    return _tile_response(request, tile, public=tile.visibility == Visibility.public)


@router.get("/ogc/tiles", summary="Tilesets of all visible layers")
async def portal_tilesets(
    request: Request, session: SessionDep, principal: PrincipalDep
) -> Response:
    """List the multi-layer tileset that the map draws."""
    root = ogc_root(request)
    metadata = await run_in_threadpool(portal_tileset, session, principal, root)
    return json_response(
        {
            "links": [link(f"{root}/tiles", "self", JSON, "tilesets")],
            "tilesets": [_summary(metadata)],
        }
    )


@router.get("/ogc/tiles/{tile_matrix_set_id}", summary="Tileset of all visible layers")
async def portal_tileset_metadata(
    tile_matrix_set_id: str, request: Request, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Return the multi-layer tileset metadata."""
    check_tile_matrix_set(tile_matrix_set_id)
    return json_response(
        await run_in_threadpool(portal_tileset, session, principal, ogc_root(request))
    )


@router.get(
    "/ogc/tiles/{tile_matrix_set_id}/{tile_matrix}/{tile_row}/{tile_col}",
    summary="A vector tile of all visible layers",
)
async def all_layers_tile(
    tile_matrix_set_id: str,
    tile_matrix: str,
    tile_row: str,
    tile_col: str,
    request: Request,
    engine: EngineDep,
) -> Response:
    """Return one MVT tile with a layer per visible layer (`collections=a,b` narrows it)."""
    check_tile_matrix_set(tile_matrix_set_id)
    index = parse_tile_index(tile_matrix, tile_row, tile_col)
    wanted = request.query_params.get("collections")
    layer_ids = [part for part in wanted.split(",") if part] if wanted else None
    cache = request.app.state.tile_cache

    def draw() -> Tile:
        with request.app.state.session_factory() as session:
            principal = get_principal(request, session)
            return portal_tile(
                engine,
                principal,
                index.z,
                index.x,
                index.y,
                layer_ids=layer_ids,
                cache=cache,
                session=session,
            )

    tile = await run_in_threadpool(draw)
    return _tile_response(request, tile, public=tile.visibility == Visibility.public)


def _summary(metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        key: metadata[key]
        for key in ("title", "dataType", "crs", "tileMatrixSetURI", "links")
        if key in metadata
    }


def _tile_response(request: Request, tile: Tile, *, public: bool) -> Response:
    headers = {
        "ETag": tile.etag,
        # Tiles of internal layers must not sit in shared caches.
        "Cache-Control": "public, max-age=60" if public else "private, max-age=60",
        "Vary": "Authorization, Cookie",
    }
    if tile.capped:
        headers["X-Tile-Truncated"] = "true"
    if tile.etag in etags_in(request.headers.get("if-none-match")):
        return Response(status_code=304, headers=headers)
    if not tile.data:
        return Response(status_code=204, headers=headers)
    return Response(tile.data, media_type=MVT, headers=headers)
