"""The loader on awkward real-world inputs: point columns, encodings, XML, zips, mixed types."""

import os
import stat
import zipfile
from pathlib import Path

import geopandas as gpd
import psycopg
import pyogrio
import pytest
import shapely
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.departments import ensure_department
from portal.core.database import session_scope
from portal.core.errors import LoadFailed
from portal.core.principal import Visibility
from portal.geo.archives import extract_zip
from portal.geo.csv_points import PointColumns
from portal.geo.loader import LoadResult, load_layer_from_file
from portal.geo.registry import ensure_layer
from portal.geo.xml_safety import check_xml_safe

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
CITY_HALL = (131.4914, 33.2846)  # Beppu; in JGD2011 zone II: X ≈ 31668.7, Y ≈ 45770.6
CITY_HALL_XY = ("31668.7", "45770.6")
KAGOSHIMA = (130.5571, 31.5966)  # zone II again: X ≈ -155525.3, Y ≈ -42029.2


@pytest.fixture
def load(engine: Engine, sessions: sessionmaker[Session], request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    def load(path: Path, **options: object) -> LoadResult:
        layer_id = "in_" + request.node.name.removeprefix("test_")[:30].lower()
        with session_scope(sessions) as session:
            department = ensure_department(
                session, slug="loadtest", name="読込試験課", name_en=None
            )
            ensure_layer(
                session,
                layer_id=layer_id,
                title=layer_id,
                title_en=None,
                department_id=department,
                visibility=Visibility.public,
            )
        return load_layer_from_file(engine, layer_id=layer_id, path=path, **options)  # type: ignore[arg-type]

    return load


def first_point(database_url: str, result: LoadResult) -> tuple[float, float]:
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            f"SELECT ST_X(geom), ST_Y(geom) FROM layers.{result.table_name} "
            "WHERE geom IS NOT NULL ORDER BY fid LIMIT 1"
        ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


def near_city_hall(point: tuple[float, float]) -> bool:
    return abs(point[0] - CITY_HALL[0]) < 1e-4 and abs(point[1] - CITY_HALL[1]) < 1e-4


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# --- X座標/Y座標 -----------------------------------------------------------------------


def test_x_y_columns_are_northing_and_easting_in_the_given_zone(
    load, tmp_path: Path, database_url: str
) -> None:
    path = write(tmp_path / "xy.csv", "名称,X座標,Y座標\n市役所,{},{}\n".format(*CITY_HALL_XY))
    result = load(path, source_crs="EPSG:6670")
    assert result.geometry_type == "Point" and result.source_crs == "EPSG:6670"
    assert near_city_hall(first_point(database_url, result))


def test_x_y_written_the_gis_way_round_are_exchanged_with_a_warning(
    load, tmp_path: Path, database_url: str
) -> None:
    path = write(tmp_path / "xy.csv", "名称,X,Y\n鹿児島市役所,-42029.2,-155525.3\n")
    result = load(path, source_crs="EPSG:6670")
    lon, lat = first_point(database_url, result)
    assert (lon, lat) == (
        pytest.approx(KAGOSHIMA[0], abs=1e-4),
        pytest.approx(KAGOSHIMA[1], abs=1e-4),
    )
    assert any("X holds the easting and Y the northing" in w for w in result.warnings)


def test_x_y_that_land_outside_the_zone_are_reported(load, tmp_path: Path) -> None:
    # Centimetres instead of metres: the points land far from zone II.
    path = write(tmp_path / "xy.csv", "名称,X座標,Y座標\n市役所,3166870,4577060\n")
    result = load(path, source_crs="EPSG:6670")
    assert any("most points fall outside the area of EPSG:6670" in w for w in result.warnings)


def test_x_y_without_a_zone_fail_unless_they_hold_degrees(
    load, tmp_path: Path, database_url: str
) -> None:
    path = write(tmp_path / "xy.csv", "名称,x座標,y座標\n市役所,{},{}\n".format(*CITY_HALL_XY))
    with pytest.raises(LoadFailed, match=r"zone is not known; add zone"):
        load(path)
    degrees = write(tmp_path / "deg.csv", "名称,X,Y\n市役所,131.4914,33.2846\n")
    result = load(degrees)
    assert near_city_hall(first_point(database_url, result))


def test_named_point_columns_are_used(load, tmp_path: Path, database_url: str) -> None:
    path = write(tmp_path / "xy.csv", "名称,北距,東距\n市役所,{},{}\n".format(*CITY_HALL_XY))
    result = load(path, source_crs="EPSG:6670", point_columns=PointColumns("北距", "東距"))
    assert near_city_hall(first_point(database_url, result))
    with pytest.raises(LoadFailed, match="no column named '北'"):
        load(path, point_columns=PointColumns("北", "東距"))


# --- 緯度/経度 ---------------------------------------------------------------------------


def test_swapped_latitude_and_longitude_are_exchanged_with_a_warning(
    load, tmp_path: Path, database_url: str
) -> None:
    path = write(
        tmp_path / "swap.csv", "名称,緯度,経度\n市役所,131.4914,33.2846\n駅,131.5007,33.2794\n"
    )
    result = load(path)
    assert near_city_hall(first_point(database_url, result))
    assert any(
        w.startswith("緯度 and 経度 are swapped: 緯度 is over 90 in 2 of 2 rows")
        for w in result.warnings
    )


def test_a_few_bad_rows_lose_their_point_with_a_warning(
    load, tmp_path: Path, database_url: str
) -> None:
    rows = [f"地点{i},33.28{i},131.49{i}" for i in range(18)]
    rows += ["住所だけ,別府市上野口町1-15,", "逆,131.49,33.28"]
    result = load(write(tmp_path / "few.csv", "名称,緯度,経度\n" + "\n".join(rows) + "\n"))
    assert result.feature_count == 20
    assert any(
        "1 rows have 緯度/経度 values that are not numbers (row 20: 緯度 = '別府市上野口町1-15')"
        in w
        for w in result.warnings
    )
    assert any("1 rows have 緯度 over 90" in w and "rows 21" in w for w in result.warnings)
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            f"SELECT count(*) FROM layers.{result.table_name} WHERE geom IS NULL"
        ).fetchone()
    assert row == (2,)


def test_plane_values_in_latitude_columns_fail_clearly(load, tmp_path: Path) -> None:
    path = write(tmp_path / "plane.csv", "名称,緯度,経度\n市役所,{},{}\n".format(*CITY_HALL_XY))
    with pytest.raises(LoadFailed, match="name the columns X座標/Y座標 and give the zone"):
        load(path)


def test_points_outside_japan_are_reported(load, tmp_path: Path) -> None:
    path = write(tmp_path / "zero.csv", "名称,lat,lon\n市役所,33.2846,131.4914\n未入力,0,0\n")
    result = load(path)
    assert any("1 rows lie outside Japan (row 3: lat = 0, lon = 0)" in w for w in result.warnings)


def test_latitude_aliases_with_units_and_full_width_letters_are_found(
    load, tmp_path: Path, database_url: str
) -> None:
    path = write(
        tmp_path / "alias.csv",
        "名称,緯度（世界測地系）,ＬＯＮＧＩＴＵＤＥ\n市役所,33.2846,131.4914\n",
    )
    assert near_city_hall(first_point(database_url, load(path)))


def test_tokyo_datum_degrees_carry_the_accuracy_warning(load, tmp_path: Path) -> None:
    path = write(tmp_path / "tokyo.csv", "名称,緯度,経度\n市役所,33.2816,131.4935\n")
    result = load(path, source_crs="EPSG:30162")  # Tokyo datum zone II: degrees in Tokyo datum
    assert result.source_crs == "EPSG:4301"
    assert any("Tokyo datum" in w for w in result.warnings)


# --- metadata rows, encodings, XML, zips -------------------------------------------------


@pytest.mark.skipif(not REAL.is_dir(), reason="shared/data/real is not beside the repo")
def test_a_csv_with_metadata_rows_uses_the_property_row_as_header(load) -> None:
    result = load(REAL / "takamatsu_population_by_chocho_age_202303_utf8bom.csv")
    assert (result.feature_count, result.geometry_type) == (235, None)
    assert any("8 metadata rows" in w for w in result.warnings)


def test_an_euc_jp_dbf_without_cpg_is_read_as_euc_jp(
    load, tmp_path: Path, database_url: str
) -> None:
    frame = gpd.GeoDataFrame(
        {"名称": ["第一種住居地域", "高草山"]}, geometry=[shapely.Point(*CITY_HALL)] * 2, crs=6668
    )
    path = tmp_path / "euc.shp"
    pyogrio.write_dataframe(frame, path, encoding="EUC-JP")
    path.with_suffix(".cpg").unlink()
    result = load(path)
    with psycopg.connect(database_url) as connection:
        names = connection.execute(
            f'SELECT "名称" FROM layers.{result.table_name} ORDER BY fid'
        ).fetchall()
    assert names == [("第一種住居地域",), ("高草山",)]


def test_a_truncated_dbf_is_refused(load, tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {"名称": ["a"] * 50}, geometry=[shapely.Point(*CITY_HALL)] * 50, crs=6668
    )
    path = tmp_path / "cut.shp"
    pyogrio.write_dataframe(frame, path)
    dbf = path.with_suffix(".dbf")
    dbf.write_bytes(dbf.read_bytes()[:200])
    with pytest.raises(LoadFailed, match=r"cut\.dbf: the file is truncated"):
        load(path)


def test_xml_with_a_doctype_or_entity_bomb_is_refused(tmp_path: Path) -> None:
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;">]>'
        "<kml>&b;</kml>"
    )
    with pytest.raises(LoadFailed, match="declares a DOCTYPE or entities"):
        check_xml_safe(write(tmp_path / "laughs.kml", laughs))
    sjis = '<?xml version="1.0" encoding="Shift_JIS"?><kml><name>避難所①</name></kml>'
    check_xml_safe(write(tmp_path / "sjis.kml", sjis, "cp932"))
    with pytest.raises(LoadFailed, match="not well-formed XML"):
        check_xml_safe(write(tmp_path / "broken.kml", '<?xml version="1.0"?>\n<<kml>'))


def test_a_kml_with_an_external_entity_is_refused_by_the_loader(load, tmp_path: Path) -> None:
    evil = (
        '<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        '<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><name>&xxe;</name>'
        "<Point><coordinates>131.49,33.28</coordinates></Point></Placemark></kml>"
    )
    with pytest.raises(LoadFailed, match="declares a DOCTYPE"):
        load(write(tmp_path / "evil.kml", evil))


def test_a_workbook_that_would_expand_too_far_is_refused(load, tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b" " * (64 * 1024 * 1024))
    with pytest.raises(LoadFailed, match="bomb.xlsx: .*zip bomb"):
        load(path)


def test_a_geojson_with_mixed_types_is_stored_as_mixed_with_counts(load, tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {"名称": ["点", "線", "点2"]},
        geometry=[
            shapely.Point(*CITY_HALL),
            shapely.LineString([CITY_HALL, (131.5, 33.29)]),
            shapely.Point(131.5, 33.29),
        ],
        crs=4326,
    )
    path = tmp_path / "mixed.geojson"
    path.write_text(frame.to_json(), encoding="utf-8")
    result = load(path)
    assert result.geometry_type == "Geometry"
    assert any("mix geometry types (2 Point, 1 LineString)" in w for w in result.warnings)


# --- safe zip extraction -----------------------------------------------------------------


def make_zip(path: Path, members: dict[str, bytes], *, link: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return path


@pytest.mark.parametrize(
    ("members", "link", "limit", "message"),
    [
        ({"/etc/cron.d/x": b"x"}, None, 10**6, "would be written outside the folder"),
        ({"a/../../x.csv": b"x"}, None, 10**6, "would be written outside the folder"),
        ({"..\\x.csv": b"x"}, None, 10**6, "would be written outside the folder"),
        ({"C:/x.csv": b"x"}, None, 10**6, "would be written outside the folder"),
        ({}, "data.csv", 10**6, "is a symbolic link"),
        ({"a.csv": b"a" * 5000}, None, 4000, "would expand to 4.9 KB, over the 3.9 KB limit"),
        ({"z.csv": b"\0" * (8 * 1024 * 1024)}, None, 10**9, "compressed .*:1, over the 100:1"),
        ({f"{i}.csv": b"" for i in range(1001)}, None, 10**6, "holds 1,001 files, over the limit"),
    ],
)
def test_unsafe_zips_are_refused_before_anything_is_written(
    tmp_path: Path, members: dict[str, bytes], link: str | None, limit: int, message: str
) -> None:
    archive = make_zip(tmp_path / "bad.zip", members, link=link)
    target = tmp_path / "out"
    with pytest.raises(LoadFailed, match=message):
        extract_zip(archive, target, max_total_bytes=limit)
    assert not target.exists()


def test_a_safe_zip_extracts_without_resource_forks(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "ok.zip",
        {"data/a.csv": b"a\n1\n", "__MACOSX/data/._a.csv": b"junk", "data/.DS_Store": b"junk"},
    )
    written = extract_zip(archive, tmp_path / "out", max_total_bytes=10**6)
    assert [p.relative_to(tmp_path / "out").as_posix() for p in written] == ["data/a.csv"]
    assert not os.path.exists(tmp_path / "out" / "__MACOSX")
