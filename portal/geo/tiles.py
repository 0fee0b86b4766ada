"""Mapbox Vector Tiles of layers, drawn inside PostGIS and kept in a `TileCache`."""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from portal.core.database import LAYERS_SCHEMA
from portal.core.errors import InvalidInput
from portal.core.principal import Principal, Visibility
from portal.geo.pool import STATEMENT_TIMEOUT_MS, read_connection
from portal.geo.registry import LayerSummary, get_layer, list_layers
from portal.geo.tile_cache import (
    LayerStamp,
    TileCache,
    TileKey,
    layer_tile_key,
    portal_tile_key,
    tile_etag,
)
from portal.geo.tile_matrix import (
    TileIndex,
    parse_tile_index,
    tile_size_metres,
)

MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
FEATURE_CAP = 20_000
EXTENT = 4096
BUFFER = 64
DEFAULT_PROPERTY_COUNT = 8
MARKER_LAYER = "_portal"
# Part of every cache key, so tiles drawn by an older version of this module are not reused.
RENDER_VERSION = 1
_CAST = {"numeric": "double precision", "jsonb": "text", "json": "text"}
_UNDRAWN_TYPES = {"jsonb", "json", "bytea"}


@dataclass(frozen=True)
class Tile:
    """A vector tile: its bytes (empty when nothing is there), entity tag and how it was got."""

    data: bytes
    etag: str
    capped: bool
    from_cache: bool
    visibility: Visibility = Visibility.public


@dataclass(frozen=True)
class TilePlan:
    """How a layer is drawn in tiles: the properties carried and whether shapes are thinned."""

    layer_id: str
    properties: tuple[tuple[str, str], ...]
    simplify: bool

    def variant(self, feature_cap: int) -> str:
        """Return a short digest of everything besides the data that shapes the tiles."""
        if feature_cap < 1:
            raise ValueError(f"feature_cap must be 1 or more, got {feature_cap}")
        drawn = json.dumps([RENDER_VERSION, feature_cap, self.properties, self.simplify])
        return hashlib.blake2b(drawn.encode(), digest_size=4).hexdigest()


def render_tile(
    engine: Engine,
    principal: Principal,
    layer_id: str,
    z: int | str,
    x: int | str,
    y: int | str,
    *,
    cache: TileCache | None = None,
    feature_cap: int = FEATURE_CAP,
    session: Session | None = None,
) -> Tile:
    """Return one layer's tile at z/x/y (column x, row y), from the cache when it holds it.

    `session`, when given, is used for the visibility check instead of a new one.
    """
    if session is not None:
        layer = get_layer(session, principal, layer_id)
    else:
        with Session(engine) as own:
            layer = get_layer(own, principal, layer_id)
    index = parse_tile_index(z, y, x)
    if not layer.is_spatial:
        raise InvalidInput(f"layer {layer.id!r} has no geometries to draw as tiles")
    plan = tile_plan(layer)
    key = layer_tile_key(LayerStamp(layer.id, layer.revision, plan.variant(feature_cap)), index)
    return _cached_or_rendered(engine, cache, key, [plan], feature_cap, layer.visibility)


def portal_tile(
    engine: Engine,
    principal: Principal,
    z: int | str,
    x: int | str,
    y: int | str,
    layer_ids: list[str] | None = None,
    *,
    cache: TileCache | None = None,
    feature_cap: int = FEATURE_CAP,
    session: Session | None = None,
) -> Tile:
    """Return one tile with a layer for each spatial layer `principal` may see.

    `layer_ids` narrows the layers; ids that are unknown or hidden are left out unnamed.
    """
    if session is not None:
        layers = spatial_layers(session, principal, layer_ids)
    else:
        with Session(engine) as own:
            layers = spatial_layers(own, principal, layer_ids)
    index = parse_tile_index(z, y, x)
    if not layers:
        return Tile(b"", tile_etag(b""), False, False)
    plans = [tile_plan(layer) for layer in layers]
    stamps = [
        LayerStamp(layer.id, layer.revision, plan.variant(feature_cap))
        for layer, plan in zip(layers, plans, strict=True)
    ]
    key = portal_tile_key(stamps, index)
    visibility = most_restrictive(layer.visibility for layer in layers)
    return _cached_or_rendered(engine, cache, key, plans, feature_cap, visibility)


def spatial_layers(
    session: Session, principal: Principal, layer_ids: list[str] | None = None
) -> list[LayerSummary]:
    """Return the layers with geometries `principal` may see, narrowed to `layer_ids` if given."""
    layers = [layer for layer in list_layers(session, principal) if layer.is_spatial]
    if layer_ids is None:
        return layers
    wanted = set(layer_ids)
    return [layer for layer in layers if layer.id in wanted]


def most_restrictive(visibilities: Iterable[Visibility]) -> Visibility:
    """Return the narrowest of some visibilities (public when there are none)."""
    order = [Visibility.public, Visibility.internal, Visibility.department]
    return max(visibilities, key=order.index, default=Visibility.public)


def tile_plan(layer: LayerSummary) -> TilePlan:
    """Decide which properties a layer's tiles carry and whether lines and areas are thinned."""
    types = {column["name"]: column["type"] for column in layer.columns}
    if layer.tile_properties:
        names = [name for name in dict.fromkeys(layer.tile_properties) if name in types]
    else:
        drawable = [name for name in types if types[name] not in _UNDRAWN_TYPES]
        names = drawable[:DEFAULT_PROPERTY_COUNT]
    points = (layer.geometry_type or "").removeprefix("Multi") == "Point"
    return TilePlan(layer.id, tuple((name, types[name]) for name in names), not points)


def _cached_or_rendered(
    engine: Engine,
    cache: TileCache | None,
    key: TileKey,
    plans: list[TilePlan],
    feature_cap: int,
    visibility: Visibility,
) -> Tile:
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            return Tile(hit.data, hit.etag, hit.capped, True, visibility)
    data, capped = _draw(engine, plans, key.tile, feature_cap)
    if cache is not None:
        stored = cache.put(key, data, capped=capped)
        return Tile(stored.data, stored.etag, stored.capped, False, visibility)
    return Tile(data, tile_etag(data), capped, False, visibility)


def _draw(
    engine: Engine, plans: list[TilePlan], tile: TileIndex, feature_cap: int
) -> tuple[bytes, bool]:
    """Draw a tile in one statement (and a second for the cap marker when a layer hit it)."""
    for attempt in (1, 2):
        try:
            with read_connection(engine) as connection, connection.cursor() as cursor:
                rows = cursor.execute(_tile_sql(plans, tile, feature_cap)).fetchall()
                capped = [plans[ordinal].layer_id for ordinal, over, _ in rows if over]
                ordered = sorted(rows, key=lambda row: row[0])
                data = b"".join(bytes(mvt or b"") for _, _, mvt in ordered)
                if capped:
                    marker = cursor.execute(_marker_sql(capped, feature_cap)).fetchone()
                    data += bytes(marker[0]) if marker else b""
                return data, bool(capped)
        except psycopg.errors.QueryCanceled:
            seconds = STATEMENT_TIMEOUT_MS // 1000
            raise InvalidInput(
                f"tile {tile.z}/{tile.y}/{tile.x} took longer than {seconds} s to draw; zoom in"
            ) from None
        except psycopg.OperationalError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _tile_sql(plans: list[TilePlan], tile: TileIndex, feature_cap: int) -> sql.Composed:
    parts = [_layer_sql(ordinal, plan, tile, feature_cap) for ordinal, plan in enumerate(plans)]
    return sql.SQL(" UNION ALL ").join(parts)


def _layer_sql(ordinal: int, plan: TilePlan, tile: TileIndex, feature_cap: int) -> sql.Composed:
    z, x, y = sql.Literal(tile.z), sql.Literal(tile.x), sql.Literal(tile.y)
    envelope = sql.SQL("ST_TileEnvelope({}, {}, {})").format(z, x, y)
    search = sql.SQL("ST_Transform(ST_TileEnvelope({}, {}, {}, margin => {}), 4326)").format(
        z, x, y, sql.Literal(BUFFER / EXTENT)
    )
    geometry: sql.Composable = sql.SQL("ST_Transform(t.geom, 3857)")
    if plan.simplify:
        half_pixel = tile_size_metres(tile.z) / EXTENT / 2
        geometry = sql.SQL("ST_Simplify({}, {})").format(geometry, sql.Literal(half_pixel))
    columns: list[sql.Composable] = [sql.SQL("t.fid")]
    for name, column_type in plan.properties:
        value: sql.Composable = sql.SQL("t.{}").format(sql.Identifier(name))
        if column_type in _CAST:
            value = sql.SQL("{}::{}").format(value, sql.SQL(_CAST[column_type]))
        columns.append(sql.SQL("{} AS {}").format(value, sql.Identifier(name)))
    return sql.SQL(
        "(WITH picked AS MATERIALIZED ("
        "SELECT * FROM (SELECT {columns}, ST_AsMVTGeom({geometry}, {envelope}, {extent}, "
        "{buffer}, true) AS geom FROM {table} AS t WHERE t.geom && {search} OFFSET 0) AS drawn "
        "WHERE drawn.geom IS NOT NULL LIMIT {over}) "
        "SELECT {ordinal}, (SELECT count(*) FROM picked) > {cap}, "
        "(SELECT ST_AsMVT(kept, {name}, {extent}, 'geom', 'fid') "
        "FROM (SELECT * FROM picked LIMIT {cap}) AS kept))"
    ).format(
        columns=sql.SQL(", ").join(columns),
        geometry=geometry,
        envelope=envelope,
        extent=sql.Literal(EXTENT),
        buffer=sql.Literal(BUFFER),
        table=sql.Identifier(LAYERS_SCHEMA, plan.layer_id),
        search=search,
        over=sql.Literal(feature_cap + 1),
        ordinal=sql.Literal(ordinal),
        cap=sql.Literal(feature_cap),
        name=sql.Literal(plan.layer_id),
    )


def _marker_sql(capped_layer_ids: list[str], feature_cap: int) -> sql.Composed:
    return sql.SQL(
        "SELECT ST_AsMVT(m, {name}, {extent}, 'geom') FROM (SELECT true AS truncated, "
        '{cap}::integer AS "limit", {layers}::text AS layers, '
        "ST_Point({middle}, {middle}) AS geom) AS m"
    ).format(
        name=sql.Literal(MARKER_LAYER),
        extent=sql.Literal(EXTENT),
        cap=sql.Literal(feature_cap),
        layers=sql.Literal(",".join(capped_layer_ids)),
        middle=sql.Literal(EXTENT // 2),
    )
