from pathlib import Path
from typing import Any

import mapbox_vector_tile
import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.departments import department_id_by_slug
from portal.core.errors import InvalidInput, NotFound
from portal.core.principal import ANONYMOUS, Principal, Role, Visibility
from portal.geo.registry import get_layer
from portal.geo.tile_cache import LayerStamp, TileCache, layer_tile_key, portal_tile_key
from portal.geo.tile_matrix import (
    TileIndex,
    parse_tile_index,
    tile_containing,
    tile_matrix_set_document,
)
from portal.geo.tiles import BUFFER, EXTENT, portal_tile, render_tile
from portal.geo.tilesets import portal_tileset, tilejson, tileset_metadata

BEPPU = (131.49, 33.28)
BASE = "https://portal.example/ogc"
DEMO_LAYERS = {"roads", "zoning", "water_mains", "barriers", "evacuation_sites", "population"}
ROAD_COLUMNS = {"路線番号", "路線名", "路線種別", "幅員", "延長", "舗装", "供用年"}


@pytest.fixture(autouse=True)
def loaded(demo_city: object) -> object:
    return demo_city


@pytest.fixture
def cache(tmp_path: Path) -> TileCache:
    return TileCache(tmp_path / "tiles")


def staff_of(sessions: sessionmaker[Session], slug: str) -> Principal:
    with sessions() as session:
        department = department_id_by_slug(session, slug)
    return Principal(
        kind="session",
        user_id=1,
        display_name=f"{slug} staff",
        memberships={department: Role.viewer},
    )


def over_beppu(z: int) -> TileIndex:
    return tile_containing(*BEPPU, z)


def decode(data: bytes) -> dict[str, Any]:
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


def positions(geometry: dict[str, Any]) -> list[tuple[float, float]]:
    def walk(value: Any) -> list[tuple[float, float]]:
        if isinstance(value[0], int | float):
            return [(value[0], value[1])]
        return [p for part in value for p in walk(part)]

    return walk(geometry["coordinates"])


def bump_revision(engine: Engine, layer_id: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE portal.layers SET revision = revision + 1 WHERE id = :id"),
            {"id": layer_id},
        )


def test_a_z14_tile_over_beppu_carries_roads_with_their_columns_and_fids(
    engine: Engine, database_url: str
) -> None:
    tile = over_beppu(14)
    rendered = render_tile(engine, ANONYMOUS, "roads", tile.z, tile.x, tile.y)
    layers = decode(rendered.data)
    assert list(layers) == ["roads"]
    roads = layers["roads"]
    assert roads["extent"] == EXTENT
    assert len(roads["features"]) > 100
    assert not rendered.capped and not rendered.from_cache
    assert rendered.visibility == Visibility.public
    first = roads["features"][0]
    assert set(first["properties"]) == ROAD_COLUMNS
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            'SELECT "路線名", "幅員", "供用年" FROM layers.roads WHERE fid = %s', (first["id"],)
        ).fetchone()
    assert row == (
        first["properties"]["路線名"],
        first["properties"]["幅員"],
        first["properties"]["供用年"],
    )
    ids = [feature["id"] for feature in roads["features"]]
    assert len(set(ids)) == len(ids)
    every = [p for feature in roads["features"] for p in positions(feature["geometry"])]
    assert all(
        -BUFFER <= x <= EXTENT + BUFFER and -BUFFER <= y <= EXTENT + BUFFER for x, y in every
    )
    assert sum(0 <= x <= EXTENT and 0 <= y <= EXTENT for x, y in every) > len(every) / 2


def test_tile_properties_of_a_layer_choose_what_its_tiles_carry(engine: Engine) -> None:
    tile = over_beppu(14)
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE portal.layers SET tile_properties = ARRAY['路線名', '幅員', 'nope'] WHERE id = 'roads'"
            )
        )
    try:
        roads = decode(render_tile(engine, ANONYMOUS, "roads", tile.z, tile.x, tile.y).data)[
            "roads"
        ]
    finally:
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE portal.layers SET tile_properties = NULL WHERE id = 'roads'")
            )
    assert {tuple(feature["properties"]) for feature in roads["features"]} == {("路線名", "幅員")}


def test_a_tile_over_the_cap_keeps_the_cap_and_says_so_in_a_portal_layer(engine: Engine) -> None:
    tile = over_beppu(12)
    capped = render_tile(engine, ANONYMOUS, "roads", tile.z, tile.x, tile.y, feature_cap=50)
    layers = decode(capped.data)
    assert capped.capped
    assert len(layers["roads"]["features"]) == 50
    [marker] = layers["_portal"]["features"]
    assert marker["properties"] == {"truncated": True, "limit": 50, "layers": "roads"}
    whole = render_tile(engine, ANONYMOUS, "roads", tile.z, tile.x, tile.y)
    assert not whole.capped
    assert list(decode(whole.data)) == ["roads"]
    assert len(decode(whole.data)["roads"]["features"]) > 50


def test_lines_are_thinned_at_low_zoom(engine: Engine, database_url: str) -> None:
    tile = over_beppu(10)
    ours = decode(render_tile(engine, ANONYMOUS, "roads", tile.z, tile.x, tile.y).data)["roads"]
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT ST_AsMVT(q, 'roads', 4096, 'geom', 'fid') FROM (SELECT fid, "
            "ST_AsMVTGeom(ST_Transform(geom, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4096, 64, true) AS geom "
            "FROM layers.roads WHERE geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 64/4096.0), 4326)) q",
            {"z": tile.z, "x": tile.x, "y": tile.y},
        ).fetchone()
    assert row is not None
    unthinned = decode(row[0])["roads"]
    count = lambda layer: sum(len(positions(f["geometry"])) for f in layer["features"])  # noqa: E731
    assert count(ours) < 0.9 * count(unthinned)


@pytest.mark.parametrize(
    ("z", "y", "x", "message"),
    [
        (23, 0, 0, "tile matrix (zoom level) 23 is outside 0..22"),
        (-1, 0, 0, "tile matrix (zoom level) -1 is outside 0..22"),
        ("abc", 0, 0, "tile matrix (zoom level) 'abc' is not a whole number 0..22"),
        (3, 0, 9, "tile column 9 is outside 0..7 at zoom 3"),
        (3, 8, 0, "tile row 8 is outside 0..7 at zoom 3"),
        (3, -1, 0, "tile row -1 is outside 0..7 at zoom 3"),
        (3, 0, "1.5", "tile column '1.5' is not a whole number 0..7"),
        (3, " 2", 0, "tile row ' 2' is not a whole number 0..7"),
    ],
)
def test_a_tile_outside_the_matrix_is_refused_with_the_valid_range(
    z: int | str, y: int | str, x: int | str, message: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_tile_index(z, y, x)
    assert raised.value.message == message


def test_render_tile_refuses_a_column_outside_the_matrix(engine: Engine) -> None:
    with pytest.raises(InvalidInput) as raised:
        render_tile(engine, ANONYMOUS, "roads", 3, 9, 0)
    assert raised.value.message == "tile column 9 is outside 0..7 at zoom 3"


def test_a_table_without_geometries_cannot_be_drawn(engine: Engine) -> None:
    with pytest.raises(InvalidInput) as raised:
        render_tile(engine, ANONYMOUS, "population", 14, 0, 0)
    assert raised.value.message == "layer 'population' has no geometries to draw as tiles"


def test_a_tile_with_nothing_in_it_is_empty(engine: Engine) -> None:
    tokyo = tile_containing(139.76, 35.68, 14)
    empty = render_tile(engine, ANONYMOUS, "roads", tokyo.z, tokyo.x, tokyo.y)
    assert empty.data == b"" and not empty.capped


def test_a_hidden_layer_stays_hidden_after_staff_filled_the_cache(
    engine: Engine, sessions: sessionmaker[Session], cache: TileCache, tmp_path: Path
) -> None:
    tile = over_beppu(14)
    suido = staff_of(sessions, "suido")
    drawn = render_tile(engine, suido, "water_mains", tile.z, tile.x, tile.y, cache=cache)
    assert not drawn.from_cache and drawn.visibility == Visibility.department
    assert len(decode(drawn.data)["water_mains"]["features"]) > 10
    [kept] = (tmp_path / "tiles" / "water_mains").glob(f"r*/{tile.z}/{tile.x}/{tile.y}.mvt")
    assert kept.read_bytes() == drawn.data
    for outsider in (ANONYMOUS, staff_of(sessions, "fukushi")):
        with pytest.raises(NotFound) as raised:
            render_tile(engine, outsider, "water_mains", tile.z, tile.x, tile.y, cache=cache)
        assert raised.value.message == "layer 'water_mains' not found"
    with pytest.raises(NotFound) as missing:
        render_tile(engine, ANONYMOUS, "no_such_layer", tile.z, tile.x, tile.y, cache=cache)
    assert missing.value.message == "layer 'no_such_layer' not found"
    shared = render_tile(
        engine, staff_of(sessions, "doboku"), "water_mains", tile.z, tile.x, tile.y, cache=cache
    )
    assert shared.from_cache and shared.etag == drawn.etag


def test_a_revision_bump_makes_the_next_render_a_miss_and_drops_the_old_files(
    engine: Engine, cache: TileCache, tmp_path: Path
) -> None:
    tile = over_beppu(14)
    first = render_tile(engine, ANONYMOUS, "roads", tile.z, tile.x, tile.y, cache=cache)
    again = render_tile(engine, ANONYMOUS, "roads", tile.z, tile.x, tile.y, cache=cache)
    assert (first.from_cache, again.from_cache) == (False, True)
    assert again.data == first.data and again.etag == first.etag
    [old] = (tmp_path / "tiles" / "roads").iterdir()
    bump_revision(engine, "roads")
    after = render_tile(engine, ANONYMOUS, "roads", tile.z, tile.x, tile.y, cache=cache)
    assert not after.from_cache
    [new] = (tmp_path / "tiles" / "roads").iterdir()
    assert new.name != old.name and not old.exists()


def test_the_portal_tile_holds_each_layer_the_caller_may_see(
    engine: Engine, sessions: sessionmaker[Session], cache: TileCache
) -> None:
    tile = over_beppu(14)
    suido = staff_of(sessions, "suido")
    staff = portal_tile(engine, suido, tile.z, tile.x, tile.y, cache=cache)
    # Other test modules add layers of their own to the session's database; look at the demo's.
    assert set(decode(staff.data)) & DEMO_LAYERS == {
        "roads",
        "zoning",
        "water_mains",
        "barriers",
        "evacuation_sites",
    }
    assert staff.visibility == Visibility.department
    public = portal_tile(engine, ANONYMOUS, tile.z, tile.x, tile.y, cache=cache)
    assert set(decode(public.data)) & DEMO_LAYERS == {
        "roads",
        "zoning",
        "barriers",
        "evacuation_sites",
    }
    assert not public.from_cache and public.visibility == Visibility.public
    assert portal_tile(engine, ANONYMOUS, tile.z, tile.x, tile.y, cache=cache).from_cache
    narrowed = portal_tile(engine, ANONYMOUS, tile.z, tile.x, tile.y, ["roads", "water_mains"])
    assert list(decode(narrowed.data)) == ["roads"]
    assert portal_tile(engine, ANONYMOUS, tile.z, tile.x, tile.y, ["water_mains"]).data == b""


def test_tileset_metadata_links_the_tile_template_and_describes_the_properties(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        roads = get_layer(session, ANONYMOUS, "roads")
        everything = portal_tileset(session, ANONYMOUS, BASE)
    metadata = tileset_metadata(roads, BASE)
    assert metadata["dataType"] == "vector"
    assert (
        metadata["tileMatrixSetURI"]
        == "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
    )
    [item] = [link for link in metadata["links"] if link["rel"] == "item"]
    assert item == {
        "rel": "item",
        "type": "application/vnd.mapbox-vector-tile",
        "title": f"{roads.title} (Mapbox Vector Tiles)",
        "templated": True,
        "href": f"{BASE}/collections/roads/tiles/WebMercatorQuad/{{tileMatrix}}/{{tileRow}}/{{tileCol}}?f=mvt",
    }
    [layer] = metadata["layers"]
    assert (layer["id"], layer["geometryType"], layer["geometryDimension"]) == (
        "roads",
        "LineString",
        1,
    )
    schema = layer["propertiesSchema"]["properties"]
    assert set(schema) == ROAD_COLUMNS
    assert (schema["幅員"], schema["供用年"], schema["路線名"]) == (
        {"type": "number"},
        {"type": "integer"},
        {"type": "string"},
    )
    assert roads.bbox and metadata["boundingBox"]["lowerLeft"] == roads.bbox[:2]
    limits = {limit["tileMatrix"]: limit for limit in metadata["tileMatrixSetLimits"]}
    beppu = over_beppu(14)
    assert limits["14"]["minTileCol"] <= beppu.x <= limits["14"]["maxTileCol"]
    assert limits["14"]["minTileRow"] <= beppu.y <= limits["14"]["maxTileRow"]
    assert {layer["id"] for layer in everything["layers"]} & DEMO_LAYERS == {
        "roads",
        "zoning",
        "barriers",
        "evacuation_sites",
    }


def test_tilejson_lists_the_tile_url_with_row_before_column(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        roads = get_layer(session, ANONYMOUS, "roads")
    document = tilejson(roads, BASE)
    assert document["tilejson"] == "3.0.0"
    assert document["tiles"] == [
        f"{BASE}/collections/roads/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}?f=mvt"
    ]
    assert (document["minzoom"], document["maxzoom"]) == (0, 22)
    lon, lat, zoom = document["center"]
    assert 131.47 < lon < 131.51 and 33.26 < lat < 33.30 and zoom == 13
    [layer] = document["vector_layers"]
    assert layer["fields"]["幅員"] == "Number" and layer["fields"]["路線名"] == "String"


def test_the_tile_matrix_set_document_is_web_mercator_quad() -> None:
    document = tile_matrix_set_document()
    matrices = document["tileMatrices"]
    assert document["crs"] == "http://www.opengis.net/def/crs/EPSG/0/3857"
    assert [m["id"] for m in matrices] == [str(z) for z in range(25)]
    assert matrices[0]["scaleDenominator"] == pytest.approx(559082264.0287178)
    assert matrices[3]["matrixWidth"] == 8 and matrices[3]["pointOfOrigin"] == [
        -20037508.342789244,
        20037508.342789244,
    ]


def test_the_cache_keeps_recent_tiles_in_memory_and_reads_the_rest_from_disk(
    tmp_path: Path,
) -> None:
    cache = TileCache(tmp_path, memory_bytes=1000)
    keys = [layer_tile_key(LayerStamp("roads", 3, "ab"), TileIndex(14, x, 1)) for x in range(3)]
    for key in keys:
        cache.put(key, b"x" * 300, capped=key.tile.x == 1)
    assert not list(tmp_path.rglob("*.tmp"))
    assert cache.path_of(keys[1], capped=True).read_bytes() == b"x" * 300
    cache.clear_memory()
    got = cache.get(keys[1])
    assert got is not None and got.capped and got.data == b"x" * 300
    assert cache.get(layer_tile_key(LayerStamp("roads", 3, "ab"), TileIndex(14, 9, 1))) is None


def test_purging_a_layer_drops_older_revisions_and_the_portal_tiles_drawn_from_them(
    tmp_path: Path,
) -> None:
    cache = TileCache(tmp_path)
    tile = TileIndex(1, 0, 0)
    old_portal = portal_tile_key(
        [LayerStamp("roads", 1, "ab"), LayerStamp("zoning", 1, "cd")], tile
    )
    cache.put(layer_tile_key(LayerStamp("roads", 1, "ab"), tile), b"old", capped=False)
    cache.put(old_portal, b"both", capped=False)
    cache.put(layer_tile_key(LayerStamp("zoning", 1, "cd"), tile), b"zoning", capped=False)
    cache.put(layer_tile_key(LayerStamp("roads", 2, "ab"), tile), b"new", capped=False)
    assert [p.name for p in (tmp_path / "roads").iterdir()] == ["r2-ab"]
    assert not (tmp_path / "_portal").exists() or not any((tmp_path / "_portal").iterdir())
    assert cache.get(old_portal) is None
    assert cache.purge_layer("zoning") == 1
    assert not (tmp_path / "zoning").exists() or not any((tmp_path / "zoning").iterdir())


def test_the_cache_key_names_revisions_not_callers() -> None:
    tile = TileIndex(5, 1, 2)
    stamps = [LayerStamp("zoning", 4, "cd"), LayerStamp("roads", 3, "ab")]
    assert portal_tile_key(stamps, tile) == portal_tile_key(list(reversed(stamps)), tile)
    assert portal_tile_key(stamps, tile).folder != portal_tile_key(stamps[:1], tile).folder
    with pytest.raises(ValueError):
        layer_tile_key(LayerStamp("../etc", 1, "ab"), tile)
