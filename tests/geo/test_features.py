import json
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.departments import department_id_by_slug
from portal.core.database import session_scope
from portal.core.errors import InvalidInput, NotFound
from portal.core.principal import ANONYMOUS, Visibility
from portal.geo.features import (
    FeatureQuery,
    ItemsPage,
    feature_sql,
    parse_datetime_interval,
    parse_feature_query,
    read_item,
    read_items,
    selection_sql,
)
from portal.geo.ogc_crs import CRS84, parse_crs
from portal.geo.pool import close_pools
from portal.geo.queryables import layer_schema, queryables
from portal.geo.registry import LayerSummary, ensure_layer, get_layer

NEAR_CITY_HALL = "131.48,33.27,131.49,33.28"
SAME_LAT_FIRST = "33.27,131.48,33.28,131.49"


@pytest.fixture(scope="module")
def layers(demo_city, engine: Engine) -> Iterator[dict[str, LayerSummary]]:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        yield {
            layer_id: get_layer(session, ANONYMOUS, layer_id)
            for layer_id in ("roads", "population", "barriers")
        }
    close_pools()


@pytest.fixture(scope="module")
def db(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def page_of(engine: Engine, layer: LayerSummary, **params: str) -> tuple[ItemsPage, list[Any]]:
    page = read_items(engine, ANONYMOUS, layer.id, parse_feature_query(layer, params))
    return page, json.loads(b"[" + page.features + b"]")


def refusal(layer: LayerSummary, **params: str) -> str:
    with pytest.raises(InvalidInput) as refused:
        parse_feature_query(layer, params)
    return refused.value.message


def fids(db: psycopg.Connection, where: str) -> list[int]:
    return [
        row[0] for row in db.execute(f"SELECT fid FROM layers.roads WHERE {where} ORDER BY fid")
    ]


def test_a_page_holds_geojson_features_in_fid_order_with_a_next_cursor(
    engine: Engine, layers: dict[str, LayerSummary]
) -> None:
    roads = layers["roads"]
    page, features = page_of(engine, roads, limit="3")
    assert [f["id"] for f in features] == [1, 2, 3]
    assert features[0]["type"] == "Feature"
    assert features[0]["geometry"]["type"] == "LineString"
    assert list(features[0]["properties"]) == roads.column_names
    assert (page.number_returned, page.number_matched, page.next_cursor) == (
        3,
        roads.feature_count,
        3,
    )
    assert page.features_json == page.features.decode()


def test_keyset_paging_returns_every_feature_exactly_once(
    engine: Engine, layers: dict[str, LayerSummary]
) -> None:
    roads = layers["roads"]
    seen: list[int] = []
    params = {"limit": "500"}
    while True:
        page, features = page_of(engine, roads, **params)
        seen += [feature["id"] for feature in features]
        if page.next_cursor is None:
            break
        params["cursor"] = str(page.next_cursor)
    assert len(seen) == len(set(seen)) == roads.feature_count
    assert seen == sorted(seen)


def test_paging_through_a_filter_stops_at_its_last_match(
    engine: Engine, layers: dict[str, LayerSummary], db: psycopg.Connection
) -> None:
    roads = layers["roads"]
    expected = fids(db, "舗装 = '無'")
    page, first = page_of(engine, roads, filter="舗装 = '無'", limit="50")
    page2, second = page_of(
        engine, roads, filter="舗装 = '無'", limit="50", cursor=str(page.next_cursor)
    )
    assert [f["id"] for f in first + second] == expected
    assert page2.next_cursor is None
    assert page.number_matched == page2.number_matched == len(expected)


def test_offset_skips_features(engine: Engine, layers: dict[str, LayerSummary]) -> None:
    _, features = page_of(engine, layers["roads"], limit="2", offset="5")
    assert [f["id"] for f in features] == [6, 7]


def test_number_matched_counts_filters_up_to_a_cap(
    engine: Engine, layers: dict[str, LayerSummary], db: psycopg.Connection
) -> None:
    roads = layers["roads"]
    wide = len(fids(db, "幅員 > 6"))
    query = parse_feature_query(roads, {"filter": "幅員 > 6"})
    assert read_items(engine, ANONYMOUS, "roads", query).number_matched == wide
    capped = read_items(engine, ANONYMOUS, "roads", query, number_matched_limit=wide - 1)
    assert capped.number_matched is None
    assert (
        read_items(engine, ANONYMOUS, "roads", query, number_matched_limit=wide).number_matched
        == wide
    )


def test_bbox_in_crs84_and_in_latitude_first_epsg_4326_select_the_same_features(
    engine: Engine, layers: dict[str, LayerSummary], db: psycopg.Connection
) -> None:
    roads = layers["roads"]
    expected = fids(db, "ST_Intersects(geom, ST_MakeEnvelope(131.48, 33.27, 131.49, 33.28, 4326))")
    _, crs84 = page_of(engine, roads, bbox=NEAR_CITY_HALL, limit="10000")
    _, lat_first = page_of(
        engine, roads, bbox=SAME_LAT_FIRST, limit="10000", **{"bbox-crs": "EPSG:4326"}
    )
    assert [f["id"] for f in crs84] == [f["id"] for f in lat_first] == expected
    assert 0 < len(expected) < roads.feature_count


def test_a_bbox_in_zone_ii_is_read_northing_first(
    engine: Engine, layers: dict[str, LayerSummary], db: psycopg.Connection
) -> None:
    roads = layers["roads"]
    # 1 km around Beppu city hall (X = northing 31668.7, Y = easting 45770.6).
    expected = fids(
        db,
        "ST_Intersects(ST_Transform(geom, 6670), "
        "ST_MakeEnvelope(45270, 31168, 46270, 32168, 6670))",
    )
    page, features = page_of(
        engine, roads, bbox="31168,45270,32168,46270", limit="10000", **{"bbox-crs": "[EPSG:6670]"}
    )
    assert [f["id"] for f in features] == expected
    assert page.number_matched == len(expected) > 0


def test_output_crs_transforms_and_orders_axes(
    engine: Engine, layers: dict[str, LayerSummary], db: psycopg.Connection
) -> None:
    barriers = layers["barriers"]
    lon, lat = db.execute(
        "SELECT ST_X(geom), ST_Y(geom) FROM layers.barriers WHERE fid = 1"
    ).fetchone()  # type: ignore[misc]
    east, north = db.execute(
        "SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_Transform(geom, 6670) AS g "
        "FROM layers.barriers WHERE fid = 1) AS p"
    ).fetchone()  # type: ignore[misc]
    _, [plane] = page_of(
        engine, barriers, limit="1", crs="http://www.opengis.net/def/crs/EPSG/0/6670"
    )
    _, [degrees] = page_of(engine, barriers, limit="1", crs="EPSG:4326")
    _, [default] = page_of(engine, barriers, limit="1")
    assert plane["geometry"]["coordinates"] == pytest.approx([north, east], abs=0.001)
    assert degrees["geometry"]["coordinates"] == pytest.approx([lat, lon], abs=1e-8)
    assert default["geometry"]["coordinates"] == pytest.approx([lon, lat], abs=1e-8)


def test_properties_choose_the_columns_and_their_order(
    engine: Engine, layers: dict[str, LayerSummary]
) -> None:
    _, [feature] = page_of(engine, layers["roads"], limit="1", properties="幅員,路線名")
    assert list(feature["properties"]) == ["幅員", "路線名"]
    _, [bare] = page_of(engine, layers["roads"], limit="1", properties="")
    assert bare["properties"] == {}


def test_property_equals_parameters_filter_and_other_parameters_are_ignored(
    engine: Engine, layers: dict[str, LayerSummary], db: psycopg.Connection
) -> None:
    roads = layers["roads"]
    page, features = page_of(engine, roads, 舗装="無", f="json", lang="ja", token="x", limit="1000")
    assert [f["id"] for f in features] == fids(db, "舗装 = '無'")
    assert page.number_matched == len(features)


def test_datetime_filters_the_first_date_column(
    engine: Engine, layers: dict[str, LayerSummary]
) -> None:
    population = layers["population"]
    page, features = page_of(engine, population, datetime="2024-03-31", limit="100")
    assert page.number_returned == population.feature_count
    assert features[0]["geometry"] is None
    assert page_of(engine, population, datetime="../2024-03-30")[0].number_returned == 0
    assert page_of(engine, population, datetime="2024-03-01T00:00:00Z/..")[0].number_matched == 50


def test_datetime_values_and_intervals_are_read_as_utc_instants() -> None:
    start, end = parse_datetime_interval("2024-04-01") or (None, None)
    assert (start.isoformat(), end.isoformat()) == (  # type: ignore[union-attr]
        "2024-04-01T00:00:00+00:00",
        "2024-04-01T23:59:59.999999+00:00",
    )
    assert parse_datetime_interval("2024-04-01T09:00:00+09:00/..") == (
        parse_datetime_interval("2024-04-01T00:00:00Z")[0],  # type: ignore[index]
        None,
    )
    assert parse_datetime_interval(None) is None


def test_read_item_returns_one_feature_with_a_strong_etag(
    engine: Engine, layers: dict[str, LayerSummary]
) -> None:
    item = read_item(engine, ANONYMOUS, "roads", 5, crs=parse_crs("EPSG:6670", parameter="crs"))
    feature = json.loads(item.json)
    assert feature["id"] == 5 and feature["type"] == "Feature"
    assert feature["geometry"]["coordinates"][0][0] > 20_000  # northing in metres
    assert re.fullmatch(r'"[0-9a-f]{32}"', item.etag)
    assert read_item(engine, ANONYMOUS, "roads", 5).etag == item.etag
    with pytest.raises(NotFound) as missing:
        read_item(engine, ANONYMOUS, "roads", 99_999_999)
    assert missing.value.message == "feature 99999999 not found in layer 'roads'"


def test_a_department_layer_is_as_missing_to_anonymous_as_a_made_up_one(engine: Engine) -> None:
    messages = []
    for layer_id in ("water_mains", "no_such_layer"):
        with pytest.raises(NotFound) as missing:
            read_items(engine, ANONYMOUS, layer_id, FeatureQuery())
        messages.append(missing.value.message)
        with pytest.raises(NotFound):
            read_item(engine, ANONYMOUS, layer_id, 1)
    assert messages == ["layer 'water_mains' not found", "layer 'no_such_layer' not found"]


def test_selection_sql_unpaged_returns_every_matching_row_in_the_asked_crs(
    layers: dict[str, LayerSummary], db: psycopg.Connection
) -> None:
    roads = layers["roads"]
    query = parse_feature_query(roads, {"filter": "舗装 = '無'", "limit": "5", "crs": "EPSG:4326"})
    rows = db.execute(selection_sql(roads, query, paged=False)).fetchall()
    assert [row[0] for row in rows] == fids(db, "舗装 = '無'")
    assert len(db.execute(selection_sql(roads, query)).fetchall()) == 5
    lat, lon = db.execute(
        f"SELECT ST_X(g), ST_Y(g) FROM ({selection_sql(roads, query).as_string(db)}) AS s, "
        "ST_PointN(s.geom, 1) AS g LIMIT 1"
    ).fetchone()  # type: ignore[misc]
    assert 33 < lat < 34 and 131 < lon < 132


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "0"}, "limit must be a whole number from 1 to 10000; got '0'"),
        ({"limit": "-1"}, "limit must be a whole number from 1 to 10000; got '-1'"),
        ({"limit": "10001"}, "limit must be a whole number from 1 to 10000; got '10001'"),
        ({"limit": "abc"}, "limit must be a whole number from 1 to 10000; got 'abc'"),
        ({"offset": "-5"}, "offset must be a whole number of 0 or more; got '-5'"),
        ({"cursor": "x1"}, "cursor 'x1' is not valid; follow the next link of the previous page"),
        (
            {"bbox": "131,33,132"},
            "bbox '131,33,132' must be 4 numbers (or 6 with heights) separated by commas; "
            f"in {CRS84} give minLon,minLat,maxLon,maxLat",
        ),
        (
            {"bbox": "131,33,nan,34"},
            "bbox '131,33,nan,34' must be 4 numbers (or 6 with heights) separated by commas; "
            f"in {CRS84} give minLon,minLat,maxLon,maxLat",
        ),
        (
            {"bbox": "132,33,131,34"},
            f"bbox '132,33,131,34' has a minimum above its maximum; in {CRS84} give "
            "minLon,minLat,maxLon,maxLat",
        ),
        (
            {"bbox": "131,33,200,34"},
            "bbox '131,33,200,34' is outside longitudes -180..180 and latitudes -90..90; "
            f"in {CRS84} give minLon,minLat,maxLon,maxLat",
        ),
        (
            {"crs": "EPSG:2444"},
            "crs 'EPSG:2444' is not a supported CRS; use one of: " + CRS84,
        ),
        (
            {"datetime": "yesterday"},
            "datetime 'yesterday' must be a date-time such as 2024-04-01T09:00:00+09:00, a date "
            "such as 2024-04-01, or an interval start/end with .. for an open end",
        ),
        (
            {"datetime": "2024-05-01/2024-04-01"},
            "datetime '2024-05-01/2024-04-01' starts after it ends",
        ),
        (
            {"datetime": "2024-04-01"},
            "layer 'roads' has no date or time column to filter by datetime",
        ),
        (
            {"properties": "路線名,nope"},
            "unknown property 'nope' in properties; the properties of layer 'roads' are: "
            "路線番号, 路線名, 路線種別, 幅員, 延長, 舗装, 供用年",
        ),
        ({"filter": "幅員 >"}, "filter is not valid CQL2 text: it ends too early"),
        ({"舗装": "有", "幅員": "wide"}, "property '幅員' holds numbers; 'wide' is not one"),
    ],
)
def test_bad_parameters_are_refused_with_what_to_send(
    layers: dict[str, LayerSummary], params: dict[str, str], message: str
) -> None:
    assert refusal(layers["roads"], **params).startswith(message)


def test_bbox_on_a_table_without_geometries_is_refused(layers: dict[str, LayerSummary]) -> None:
    assert refusal(layers["population"], bbox=NEAR_CITY_HALL) == (
        "layer 'population' has no geometries to filter by bbox"
    )


def test_queryables_and_schema_describe_columns_and_geometry(
    layers: dict[str, LayerSummary],
) -> None:
    roads = layers["roads"]
    document = queryables(roads)
    assert document["type"] == "object"
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["properties"]["幅員"] == {"title": "幅員", "type": "number"}
    assert document["properties"]["供用年"] == {"title": "供用年", "type": "integer"}
    assert document["properties"]["路線名"] == {"title": "路線名", "type": "string"}
    assert document["properties"]["geometry"]["format"] == "geometry-linestring"
    date = layer_schema(layers["population"])["properties"]["調査年月日"]
    assert date == {
        "title": "調査年月日",
        "type": "string",
        "format": "date",
        "x-ogc-role": "primary-instant",
    }
    assert "geometry" not in layer_schema(layers["population"])["properties"]


def test_feature_sql_builds_the_same_feature_text_as_read_item(
    engine: Engine, layers: dict[str, LayerSummary], db: psycopg.Connection
) -> None:
    crs = parse_crs("EPSG:4326", parameter="crs")
    statement = sql.SQL("SELECT {} FROM layers.roads AS t WHERE t.fid = 5").format(
        feature_sql(layers["roads"], crs)
    )
    assert db.execute(statement).fetchone() == (
        read_item(engine, ANONYMOUS, "roads", 5, crs=crs).json,
    )


def test_a_registered_layer_without_data_is_not_found_saying_so(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    with session_scope(sessions) as session:
        ensure_layer(
            session,
            layer_id="feature_test_empty",
            title="空のレイヤ",
            title_en=None,
            department_id=department_id_by_slug(session, "doboku"),
            visibility=Visibility.public,
        )
    with pytest.raises(NotFound) as missing:
        read_items(engine, ANONYMOUS, "feature_test_empty", FeatureQuery())
    assert missing.value.message == "layer 'feature_test_empty' has no data loaded"
