import json
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from portal.core.errors import InvalidInput
from portal.core.principal import ANONYMOUS
from portal.geo.cql import filter_to_sql, property_equals_sql
from portal.geo.ogc_crs import DEFAULT_CRS, OutputCrs, parse_crs
from portal.geo.registry import LayerSummary, get_layer

NEAR_CITY_HALL = (131.48, 33.27, 131.49, 33.28)
ROAD_QUERYABLES = "路線番号, 路線名, 路線種別, 幅員, 延長, 舗装, 供用年, geometry"


@pytest.fixture(scope="module")
def layers(demo_city, engine: Engine) -> dict[str, LayerSummary]:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return {
            layer_id: get_layer(session, ANONYMOUS, layer_id)
            for layer_id in ("roads", "population", "barriers")
        }


@pytest.fixture(scope="module")
def db(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def matching(
    db: psycopg.Connection,
    layer: LayerSummary,
    text: str,
    *,
    lang: str | None = None,
    crs: OutputCrs = DEFAULT_CRS,
) -> int:
    condition = filter_to_sql(layer, text, lang=lang, crs=crs)
    statement = sql.SQL("SELECT count(*) FROM {} AS t WHERE {}").format(
        sql.Identifier("layers", layer.id), condition
    )
    return int(db.execute(statement).fetchone()[0])  # type: ignore[index]


def counted(db: psycopg.Connection, layer_id: str, where: str) -> int:
    return int(db.execute(f"SELECT count(*) FROM layers.{layer_id} WHERE {where}").fetchone()[0])  # type: ignore[index]


def refusal(layer: LayerSummary, text: str, **options: str) -> str:
    with pytest.raises(InvalidInput) as refused:
        filter_to_sql(layer, text, **options)  # type: ignore[arg-type]
    return refused.value.message


def test_comparisons_on_japanese_property_names_select_the_same_rows_as_sql(
    db: psycopg.Connection, layers: dict[str, LayerSummary]
) -> None:
    roads = layers["roads"]
    assert matching(db, roads, "舗装 = '有'") == counted(db, "roads", "舗装 = '有'") > 0
    assert matching(db, roads, "舗装 <> '有'") == counted(db, "roads", "舗装 <> '有'") > 0
    assert matching(db, roads, "幅員 >= 6 AND 供用年 < 1990") == counted(
        db, "roads", "幅員 >= 6 AND 供用年 < 1990"
    )
    assert matching(db, roads, "NOT (幅員 > 8) OR 舗装 = '無'") == counted(
        db, "roads", "NOT (幅員 > 8) OR 舗装 = '無'"
    )


def test_like_in_between_and_is_null(
    db: psycopg.Connection, layers: dict[str, LayerSummary]
) -> None:
    roads = layers["roads"]
    assert matching(db, roads, "路線名 LIKE '市道%'") == counted(db, "roads", "路線名 LIKE '市道%'")
    assert matching(db, roads, "路線名 NOT LIKE '%１号線'") == counted(
        db, "roads", "路線名 NOT LIKE '%１号線'"
    )
    assert matching(db, roads, "舗装 IN ('有', '無')") == roads.feature_count
    assert matching(db, roads, "舗装 NOT IN ('有')") == counted(db, "roads", "舗装 <> '有'")
    assert matching(db, roads, "幅員 BETWEEN 3 AND 5") == counted(
        db, "roads", "幅員 BETWEEN 3 AND 5"
    )
    assert matching(db, roads, "幅員 IS NULL") == 0
    assert matching(db, roads, "幅員 IS NOT NULL") == roads.feature_count


def test_arithmetic_and_the_feature_id_can_be_filtered(
    db: psycopg.Connection, layers: dict[str, LayerSummary]
) -> None:
    roads = layers["roads"]
    assert matching(db, roads, "延長 * 2 > 200") == counted(db, "roads", "延長 * 2 > 200")
    assert matching(db, roads, "延長 / 0 > 1") == 0
    assert matching(db, roads, "id <= 10") == 10
    assert matching(db, roads, "fid = '7'") == 1


def test_values_are_read_as_the_type_of_the_column_they_meet(
    db: psycopg.Connection, layers: dict[str, LayerSummary]
) -> None:
    roads, population = layers["roads"], layers["population"]
    assert matching(db, roads, "幅員 = '9'") == counted(db, "roads", "幅員 = 9")
    assert matching(db, roads, "路線番号 = 1") == counted(db, "roads", "路線番号 = '1'")
    assert matching(db, population, '"0-4歳男" > 10') == counted(db, "population", '"0-4歳男" > 10')
    assert refusal(roads, "幅員 = 'wide'") == "property '幅員' holds numbers; 'wide' is not one"
    assert refusal(population, "調査年月日 > 'yesterday'") == (
        "property '調査年月日' holds dates; 'yesterday' is not one"
    )


def test_an_injection_attempt_is_only_a_value_and_the_table_survives(
    db: psycopg.Connection, layers: dict[str, LayerSummary]
) -> None:
    roads = layers["roads"]
    assert matching(db, roads, "路線名 = 'a''; DROP TABLE layers.roads; --'") == 0
    message = refusal(roads, '"路線名; DROP TABLE layers.roads; --" = 1')
    assert message.startswith("unknown property '路線名; DROP TABLE layers.roads; --' in filter")
    assert counted(db, "roads", "TRUE") == roads.feature_count


def test_an_unknown_property_names_the_queryable_ones(layers: dict[str, LayerSummary]) -> None:
    assert refusal(layers["roads"], "name = 'x'") == (
        f"unknown property 'name' in filter; queryable properties are: {ROAD_QUERYABLES}"
    )
    assert refusal(layers["population"], "S_INTERSECTS(geometry, POINT(131 33))") == (
        "layer 'population' has no geometries to filter by"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("幅員 = 3 AND", "filter is not valid CQL2 text: it ends too early"),
        ("幅員 = = 3", "filter is not valid CQL2 text: unexpected '=' at column 6"),
        ("幅員 = 3 # 4", "filter is not valid CQL2 text: unexpected '#' at column 8"),
        ("", "filter is empty; give a CQL2 expression such as 名称 = 'x'"),
        (
            "調査年月日 = DATE('2024-13-01')",
            "filter is not valid CQL2 text: month must be in 1..12",
        ),
    ],
)
def test_invalid_cql2_text_is_refused_with_a_short_reason(
    layers: dict[str, LayerSummary], text: str, message: str
) -> None:
    assert refusal(layers["roads"], text) == message


def test_functions_and_misplaced_geometries_are_refused_with_what_to_use(
    layers: dict[str, LayerSummary],
) -> None:
    roads = layers["roads"]
    assert refusal(roads, "upper(路線名) = 'X'") == (
        "function upper() is not supported in filters; use comparisons, LIKE, IN, BETWEEN, "
        "IS NULL, CASEI and the S_ and T_ predicates"
    )
    assert refusal(roads, "geometry = 'x'") == (
        "property 'geometry' is the geometry; use it in spatial predicates such as "
        "S_INTERSECTS(geometry, POINT(131.49 33.28))"
    )
    assert refusal(roads, "S_INTERSECTS(路線名, POINT(131 33))") == (
        "ST_Intersects needs the geometry; '路線名' is not it"
    )
    assert refusal(roads, "a = 1", lang="cql-json") == (
        "filter-lang 'cql-json' is not supported; use cql2-text or cql2-json"
    )


def test_casei_compares_without_case(
    db: psycopg.Connection, layers: dict[str, LayerSummary]
) -> None:
    first = db.execute('SELECT "ID" FROM layers.barriers ORDER BY fid LIMIT 1').fetchone()[0]  # type: ignore[index]
    same = counted(db, "barriers", f"lower(\"ID\") = lower('{first}')")
    assert matching(db, layers["barriers"], f"CASEI(ID) = CASEI('{first.swapcase()}')") == same >= 1


def test_spatial_predicates_with_bbox_wkt_and_geojson_literals(
    db: psycopg.Connection, layers: dict[str, LayerSummary]
) -> None:
    roads = layers["roads"]
    minx, miny, maxx, maxy = NEAR_CITY_HALL
    envelope = f"ST_MakeEnvelope({minx}, {miny}, {maxx}, {maxy}, 4326)"
    inside = counted(db, "roads", f"ST_Intersects(geom, {envelope})")
    within = counted(db, "roads", f"ST_Within(geom, {envelope})")
    polygon = (
        f"POLYGON(({minx} {miny}, {maxx} {miny}, {maxx} {maxy}, {minx} {maxy}, {minx} {miny}))"
    )
    assert 0 < within < inside < roads.feature_count
    assert (
        matching(db, roads, f"S_INTERSECTS(geometry, BBOX({minx}, {miny}, {maxx}, {maxy}))")
        == inside
    )
    assert matching(db, roads, f"BBOX(geom, {minx}, {miny}, {maxx}, {maxy})") == inside
    assert matching(db, roads, f"S_INTERSECTS(geometry, {polygon})") == inside
    assert matching(db, roads, f"S_WITHIN(geometry, {polygon})") == within
    assert matching(db, roads, f"S_DISJOINT(geometry, {polygon})") == roads.feature_count - inside
    assert matching(db, roads, f"S_CONTAINS({polygon}, geometry)") == within
    as_json = json.dumps(
        {
            "op": "s_intersects",
            "args": [{"property": "geometry"}, {"bbox": [minx, miny, maxx, maxy]}],
        }
    )
    assert matching(db, roads, as_json, lang="cql2-json") == inside


def test_filter_geometries_follow_the_axis_order_of_filter_crs(
    db: psycopg.Connection, layers: dict[str, LayerSummary]
) -> None:
    roads = layers["roads"]
    minx, miny, maxx, maxy = NEAR_CITY_HALL
    inside = counted(
        db, "roads", f"ST_Intersects(geom, ST_MakeEnvelope({minx}, {miny}, {maxx}, {maxy}, 4326))"
    )
    lat_first = (
        f"POLYGON(({miny} {minx}, {miny} {maxx}, {maxy} {maxx}, {maxy} {minx}, {miny} {minx}))"
    )
    epsg4326 = parse_crs("http://www.opengis.net/def/crs/EPSG/0/4326", parameter="filter-crs")
    assert matching(db, roads, f"S_INTERSECTS(geometry, {lat_first})", crs=epsg4326) == inside
    # Northing first in zone II: a 1 km square around Beppu city hall.
    zone = parse_crs("EPSG:6670", parameter="filter-crs")
    square = "POLYGON((31168 45270, 31168 46270, 32168 46270, 32168 45270, 31168 45270))"
    expected = counted(
        db,
        "roads",
        "ST_Intersects(ST_Transform(geom, 6670), ST_MakeEnvelope(45270, 31168, 46270, 32168, 6670))",
    )
    assert matching(db, roads, f"S_INTERSECTS(geometry, {square})", crs=zone) == expected > 0


def test_cql2_json_comparisons_between_in_like_and_logic(
    db: psycopg.Connection, layers: dict[str, LayerSummary]
) -> None:
    roads = layers["roads"]

    def run(document: dict) -> int:
        return matching(db, roads, json.dumps(document, ensure_ascii=False), lang="cql2-json")

    width = {"property": "幅員"}
    assert run({"op": "between", "args": [width, 3, 5]}) == counted(
        db, "roads", "幅員 BETWEEN 3 AND 5"
    )
    assert run({"op": "in", "args": [{"property": "舗装"}, ["無"]]}) == counted(
        db, "roads", "舗装 = '無'"
    )
    assert run({"op": "like", "args": [{"property": "路線名"}, "市道%"]}) == counted(
        db, "roads", "路線名 LIKE '市道%'"
    )
    both = {
        "op": "and",
        "args": [
            {"op": ">", "args": [width, 6]},
            {"op": "not", "args": [{"op": "isNull", "args": [{"property": "舗装"}]}]},
        ],
    }
    assert run(both) == counted(db, "roads", "幅員 > 6")
    with pytest.raises(InvalidInput) as refused:
        run({"op": "frobnicate", "args": []})
    assert refused.value.message == "filter is not valid CQL2 JSON: unknown operator 'frobnicate'"
    assert refusal(roads, '{"op": "=",', lang="cql2-json") == (
        "filter is not valid CQL2 JSON: Expecting property name enclosed in double quotes at column 12"
    )


def test_temporal_predicates_on_a_date_column(
    db: psycopg.Connection, layers: dict[str, LayerSummary]
) -> None:
    population = layers["population"]
    everyone = population.feature_count
    assert matching(db, population, "T_AFTER(調査年月日, DATE('2024-01-01'))") == everyone
    assert matching(db, population, "T_BEFORE(調査年月日, DATE('2024-01-01'))") == 0
    assert matching(db, population, "調査年月日 T_EQUALS DATE('2024-03-31')") == everyone
    assert (
        matching(db, population, "T_DURING(調査年月日, INTERVAL('2024-01-01', '..'))") == everyone
    )
    assert matching(db, population, "T_INTERSECTS(調査年月日, INTERVAL('..', '2024-03-30'))") == 0
    assert (
        matching(db, population, "T_AFTER(調査年月日, TIMESTAMP('2024-03-30T23:00:00Z'))")
        == everyone
    )
    document = {
        "op": "t_during",
        "args": [{"property": "調査年月日"}, {"interval": ["2024-03-01", "2024-04-30"]}],
    }
    assert matching(db, population, json.dumps(document), lang="cql2-json") == everyone
    year = "INTERVAL('2024-01-01', '2024-12-31')"
    assert matching(db, population, f"T_CONTAINS({year}, 調査年月日)") == everyone
    assert matching(db, population, f"T_CONTAINS(調査年月日, {year})") == 0
    assert matching(db, population, f"T_OVERLAPS(調査年月日, {year})") == 0
    assert (
        matching(db, population, "T_STARTS(調査年月日, INTERVAL('2024-03-31', '..'))") == everyone
    )
    assert (
        matching(db, population, "T_FINISHES(調査年月日, INTERVAL('..', '2024-03-31'))") == everyone
    )
    assert matching(db, population, "T_DISJOINT(調査年月日, DATE('2024-03-31'))") == 0
    assert refusal(population, "T_AFTER(総人口, DATE('2024-01-01'))") == (
        "T_AFTER needs a date or time property; '総人口' is not one"
    )


def test_property_equals_reads_the_value_as_the_column_type(
    db: psycopg.Connection, layers: dict[str, LayerSummary]
) -> None:
    roads = layers["roads"]
    condition = property_equals_sql(roads, "幅員", "9")
    statement = sql.SQL("SELECT count(*) FROM layers.roads AS t WHERE {}").format(condition)
    assert db.execute(statement).fetchone()[0] == counted(db, "roads", "幅員 = 9")  # type: ignore[index]
    with pytest.raises(InvalidInput) as refused:
        property_equals_sql(roads, "幅員", "wide")
    assert refused.value.message == "property '幅員' holds numbers; 'wide' is not one"
