from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from pyproj import Transformer

from portal.core.errors import InvalidInput
from portal.geo.ogc_crs import (
    CRS84,
    DEFAULT_CRS,
    check_bbox,
    crs_uri,
    envelope_sql,
    output_geometry_sql,
    parse_crs,
    supported_crs_uris,
    to_storage_sql,
)

CITY_HALL = sql.SQL("ST_SetSRID(ST_MakePoint(131.4914, 33.2846), 4326)")
ZONE_II = "http://www.opengis.net/def/crs/EPSG/0/6670"


@pytest.fixture(scope="module")
def db(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url) as connection:
        yield connection


def _xy(db: psycopg.Connection, geometry: sql.Composable) -> tuple[float, float]:
    row = db.execute(sql.SQL("SELECT ST_X(g), ST_Y(g) FROM (SELECT {} AS g) AS p").format(geometry))
    x, y = row.fetchone() or (None, None)
    return float(x), float(y)


@pytest.mark.parametrize(
    "value",
    [
        ZONE_II,
        "https://www.opengis.net/def/crs/EPSG/0/6670",
        "[EPSG:6670]",
        "EPSG:6670",
        "epsg:6670",
        "urn:ogc:def:crs:EPSG::6670",
    ],
)
def test_every_spelling_of_zone_ii_names_the_same_northing_first_crs(value: str) -> None:
    crs = parse_crs(value, parameter="crs")
    assert (crs.uri, crs.srid, crs.lat_first) == (ZONE_II, 6670, True)


@pytest.mark.parametrize("value", [None, "", CRS84, "[OGC:CRS84]", "urn:ogc:def:crs:OGC:1.3:CRS84"])
def test_crs84_is_the_default_and_keeps_longitude_first(value: str | None) -> None:
    assert parse_crs(value, parameter="crs") == DEFAULT_CRS
    assert (DEFAULT_CRS.uri, DEFAULT_CRS.srid, DEFAULT_CRS.lat_first) == (CRS84, 4326, False)


def test_axis_order_follows_each_crs_definition() -> None:
    order = {srid: parse_crs(f"EPSG:{srid}", parameter="crs").lat_first for srid in (4326, 6668)}
    order |= {srid: parse_crs(crs_uri(srid), parameter="crs").lat_first for srid in (6669, 6687)}
    order |= {srid: parse_crs(f"[EPSG:{srid}]", parameter="crs").lat_first for srid in (3857, 6689)}
    assert order == {4326: True, 6668: True, 6669: True, 6687: True, 3857: False, 6689: False}


def test_supported_crs_list_starts_with_crs84_and_holds_all_plane_zones() -> None:
    uris = supported_crs_uris()
    assert uris[:3] == [CRS84, crs_uri(4326), crs_uri(6668)]
    assert all(crs_uri(srid) in uris for srid in range(6669, 6688))
    assert crs_uri(3857) in uris
    assert len(uris) == len(set(uris))


def test_an_unsupported_crs_is_refused_naming_the_parameter_and_the_choices() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_crs("EPSG:2444", parameter="bbox-crs")
    assert refused.value.message == (
        "bbox-crs 'EPSG:2444' is not a supported CRS; use one of: "
        + ", ".join(supported_crs_uris())
    )
    with pytest.raises(InvalidInput, match=r"^crs 'http://example\.com/crs' is not a supported"):
        parse_crs("http://example.com/crs", parameter="crs")


def test_beppu_city_hall_comes_out_northing_first_in_zone_ii(db: psycopg.Connection) -> None:
    crs = parse_crs(ZONE_II, parameter="crs")
    x, y = _xy(db, output_geometry_sql(crs, CITY_HALL))
    assert x == pytest.approx(31668.7, abs=0.1)  # X: northing
    assert y == pytest.approx(45770.6, abs=0.1)  # Y: easting


def test_city_hall_is_latitude_first_in_epsg_4326_and_longitude_first_in_crs84(
    db: psycopg.Connection,
) -> None:
    lat_first = _xy(db, output_geometry_sql(parse_crs("EPSG:4326", parameter="crs"), CITY_HALL))
    lon_first = _xy(db, output_geometry_sql(DEFAULT_CRS, CITY_HALL))
    assert lat_first == pytest.approx((33.2846, 131.4914))
    assert lon_first == pytest.approx((131.4914, 33.2846))
    mercator = _xy(db, output_geometry_sql(parse_crs("EPSG:3857", parameter="crs"), CITY_HALL))
    expected = Transformer.from_crs(4326, 3857, always_xy=True).transform(131.4914, 33.2846)
    assert mercator == pytest.approx(expected, abs=0.01)


def test_coordinates_in_zone_ii_axis_order_are_stored_as_longitude_latitude(
    db: psycopg.Connection,
) -> None:
    crs = parse_crs("EPSG:6670", parameter="filter-crs")
    point = sql.SQL("ST_MakePoint(31668.69, 45770.55)")
    assert _xy(db, to_storage_sql(crs, point)) == pytest.approx((131.4914, 33.2846), abs=1e-6)


def test_a_latitude_first_bbox_builds_the_same_envelope_as_crs84(db: psycopg.Connection) -> None:
    lat_first = envelope_sql(
        parse_crs("EPSG:4326", parameter="bbox-crs"), (33.2, 131.4, 33.3, 131.5)
    )
    lon_first = envelope_sql(DEFAULT_CRS, (131.4, 33.2, 131.5, 33.3))
    same = db.execute(sql.SQL("SELECT ST_Equals({}, {})").format(lat_first, lon_first)).fetchone()
    assert same == (True,)


def test_a_bbox_with_its_minimum_above_its_maximum_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        check_bbox(DEFAULT_CRS, (131.5, 33.2, 131.4, 33.3), text="131.5,33.2,131.4,33.3")
    assert refused.value.message == (
        "bbox '131.5,33.2,131.4,33.3' has a minimum above its maximum; "
        f"in {CRS84} give minLon,minLat,maxLon,maxLat"
    )


def test_degrees_out_of_range_are_refused_in_the_axis_order_of_the_crs() -> None:
    lat_first = parse_crs("EPSG:4326", parameter="bbox-crs")
    check_bbox(lat_first, (33.2, 131.4, 33.3, 131.5), text="ok")
    with pytest.raises(InvalidInput) as refused:
        check_bbox(lat_first, (131.4, 33.2, 131.5, 33.3), text="131.4,33.2,131.5,33.3")
    assert refused.value.message == (
        "bbox '131.4,33.2,131.5,33.3' is outside longitudes -180..180 and latitudes -90..90; "
        "in http://www.opengis.net/def/crs/EPSG/0/4326 give minLat,minLon,maxLat,maxLon"
    )
