import csv
import hashlib
import io
import json
import math
import re
from datetime import datetime
from pathlib import Path

import numpy as np
import openpyxl
import pyogrio
import pytest
import shapely

from portal.demo.city import CENTER_LAT, CENTER_LON, demo_files
from portal.demo.generator import generate_demo_city

ROADS = "doboku/road_ledger.shp"
ZONING = "toshikeikaku/youto_chiiki.gpkg"
WATER = "suido/water_mains.geojson"
BARRIERS = "fukushi/barrier_free.csv"
EVACUATION = "bosai/442020_evacuation_space.csv"
POPULATION = "shimin/population_by_chocho_age.xlsx"

# Typed out again from REFERENCE.md on purpose: the generator must match the reference,
# not its own constants.
A29_ZONES = {
    1: "第一種低層住居専用地域",
    2: "第二種低層住居専用地域",
    3: "第一種中高層住居専用地域",
    4: "第二種中高層住居専用地域",
    5: "第一種住居地域",
    6: "第二種住居地域",
    7: "準住居地域",
    8: "近隣商業地域",
    9: "商業地域",
    10: "準工業地域",
    11: "工業地域",
    12: "工業専用地域",
    21: "田園住居地域",
}
EVACUATION_HEADER = [
    "全国地方公共団体コード", "ID", "地方公共団体名", "名称", "名称_カナ", "名称_英語",
    "所在地_全国地方公共団体コード", "町字ID", "所在地_連結表記", "所在地_都道府県",
    "所在地_市区町村", "所在地_町字", "所在地_番地以下", "建物名等(方書)", "緯度", "経度",
    "標高", "電話番号",
    "災害種別_洪水", "災害種別_崖崩れ、土石流及び地滑り", "災害種別_高潮", "災害種別_地震",
    "災害種別_津波", "災害種別_大規模な火事", "災害種別_内水氾濫", "災害種別_火山現象",
    "指定避難所との重複", "想定収容人数", "対象となる町会・自治会", "URL", "備考",
]  # fmt: skip
HAZARD_COLUMNS = [name for name in EVACUATION_HEADER if name.startswith("災害種別_")]


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("city")
    generate_demo_city(root)
    return root


@pytest.fixture(scope="module")
def city_scale3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("city3")
    generate_demo_city(root, scale=3)
    return root


def _distance_km(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Approximate ground distance from the city hall, good enough at city size."""
    dx = (lon - CENTER_LON) * 111.32 * math.cos(math.radians(CENTER_LAT))
    dy = (lat - CENTER_LAT) * 110.57
    return np.hypot(dx, dy)


def _assert_near_city_hall(lon: np.ndarray, lat: np.ndarray, km: float = 4.0) -> None:
    # Swapped axes would put latitudes near 131 and fail both checks.
    assert np.all((33.0 < lat) & (lat < 33.6)), "latitudes are not around Beppu (swapped?)"
    assert np.all((131.2 < lon) & (lon < 131.8)), "longitudes are not around Beppu"
    assert _distance_km(lon, lat).max() < km


def _dbf_first_value(dbf: bytes, field: str) -> bytes:
    """Return the raw bytes of `field` in the first record, reading the dBASE header."""
    header_length = int.from_bytes(dbf[8:10], "little")
    offset = 1  # each record starts with a deletion flag
    for start in range(32, header_length - 1, 32):
        descriptor = dbf[start : start + 32]
        if descriptor[0] == 0x0D:
            break
        name = descriptor[:11].rstrip(b"\x00").decode("cp932")
        length = descriptor[16]
        if name == field:
            return dbf[header_length + offset : header_length + offset + length]
        offset += length
    raise AssertionError(f"field {field} not in the .dbf header")


def _sha256_tree(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


# --- the file drop as a whole ---------------------------------------------------------------


def test_writes_exactly_the_files_city_py_lists_and_reports_progress(tmp_path: Path) -> None:
    seen: list[str] = []
    written = generate_demo_city(tmp_path, progress=seen.append)
    expected = [f.path for f in demo_files("442020")]
    assert written == [(tmp_path / path).resolve() for path in expected]
    assert all(path.is_absolute() and path.is_file() for path in written)
    assert seen == expected
    sidecars = {".shp", ".shx", ".dbf", ".prj", ".cpg"}
    assert {p.suffix for p in (tmp_path / "doboku").iterdir()} == sidecars
    all_files = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert all_files == set(expected) | {f"doboku/road_ledger{s}" for s in sidecars}


def test_same_arguments_give_byte_identical_files(tmp_path: Path, city: Path) -> None:
    # GDAL stamps dates into the .dbf header and gpkg_contents, openpyxl into the zip; the
    # generator pins all three, so even the GeoPackage is compared byte for byte.
    generate_demo_city(tmp_path)
    assert _sha256_tree(tmp_path) == _sha256_tree(city)


def test_another_seed_gives_other_roads(tmp_path: Path, city: Path) -> None:
    generate_demo_city(tmp_path, seed=1)
    assert (tmp_path / ROADS).read_bytes() != (city / ROADS).read_bytes()


def test_generating_over_an_existing_drop_overwrites_it_and_leaves_no_temp_files(
    tmp_path: Path, city: Path
) -> None:
    generate_demo_city(tmp_path, seed=1)
    generate_demo_city(tmp_path)
    assert _sha256_tree(tmp_path) == _sha256_tree(city)
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]


@pytest.mark.parametrize("scale", [0, -3, 1.5, True, "2"])
def test_scale_below_one_or_not_an_int_is_refused(tmp_path: Path, scale: object) -> None:
    with pytest.raises(ValueError, match="scale"):
        generate_demo_city(tmp_path, scale=scale)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


def test_bad_municipality_code_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="municipality_code"):
        generate_demo_city(tmp_path, municipality_code="442021")


def test_other_municipality_gets_its_prefecture_and_file_name(tmp_path: Path) -> None:
    generate_demo_city(tmp_path, municipality_code="402133", municipality_name="行橋市")
    text = (tmp_path / "bosai/402133_evacuation_space.csv").read_bytes().decode("cp932")
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["全国地方公共団体コード"] == "402133"
    assert row["地方公共団体名"] == "福岡県行橋市"
    assert row["所在地_都道府県"] == "福岡県"
    zoning = pyogrio.read_dataframe(tmp_path / ZONING)
    assert set(zoning["A29_001"]) == {"40213"}
    assert set(zoning["A29_002"]) == {"行橋市"}


# --- 道路台帳 (road ledger Shapefile) ---------------------------------------------------------


def test_road_ledger_is_jgd2011_zone_ii(city: Path) -> None:
    info = pyogrio.read_info(city / ROADS)
    assert info["crs"] == "EPSG:6670"
    assert info["geometry_type"] == "LineString"
    assert list(info["fields"]) == [
        "路線番号",
        "路線名",
        "路線種別",
        "幅員",
        "延長",
        "舗装",
        "供用年",
    ]


def test_road_ledger_dbf_is_cp932_and_gdal_decodes_it_through_the_cpg(city: Path) -> None:
    assert (city / "doboku/road_ledger.cpg").read_text().strip().upper() == "CP932"
    roads = pyogrio.read_dataframe(city / ROADS)
    assert roads["路線名"].str.contains("サンプル").all()
    assert roads["路線名"].str.match(r"^(市道|県道|国道)サンプル[０-９]+号").all()

    raw = _dbf_first_value((city / "doboku/road_ledger.dbf").read_bytes(), "路線名").rstrip(b" ")
    assert raw.decode("cp932") == roads["路線名"].iloc[0]
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")


def test_road_ledger_attributes_are_plausible(city: Path) -> None:
    roads = pyogrio.read_dataframe(city / ROADS)
    assert set(roads["路線種別"]) == {"1級市道", "2級市道", "その他市道", "県道", "国道"}
    assert roads["路線番号"].str.fullmatch(r"[123KN]-\d{3}").all()
    assert roads["幅員"].between(4.0, 20.0).all()
    assert set(roads["舗装"]) == {"有", "無"}
    assert roads["供用年"].between(1950, 2024).all()
    # 延長 is the measured length of the segment, in metres of the plane CRS.
    assert np.allclose(roads["延長"], roads.geometry.length, atol=0.01)
    assert roads["延長"].between(30, 200).all()


def test_road_ledger_has_about_2000_segments_growing_linearly_with_scale(
    city: Path, city_scale3: Path
) -> None:
    count = pyogrio.read_info(city / ROADS)["features"]
    count3 = pyogrio.read_info(city_scale3 / ROADS)["features"]
    assert 1500 <= count <= 2500
    assert 2.7 <= count3 / count <= 3.3


def test_roads_lie_around_beppu_city_hall_with_easting_as_x(city: Path) -> None:
    roads = pyogrio.read_dataframe(city / ROADS)
    # EPSG:6670 x is easting: Beppu city hall is at about x 45770, y 31669.
    centre = shapely.centroid(shapely.union_all(roads.geometry.values))
    assert abs(centre.x - 45770.6) < 500 and abs(centre.y - 31668.7) < 500
    lonlat = shapely.get_coordinates(roads.to_crs(4326).geometry.values)
    _assert_near_city_hall(lonlat[:, 0], lonlat[:, 1])


# --- 用途地域 (zoning GeoPackage) ------------------------------------------------------------


def test_zoning_layer_uses_a29_codes_with_matching_names(city: Path) -> None:
    assert [tuple(layer) for layer in pyogrio.list_layers(city / ZONING)] == [
        ("youto_chiiki", "Polygon")
    ]
    assert pyogrio.read_info(city / ZONING, layer="youto_chiiki")["crs"] == "EPSG:6668"
    zoning = pyogrio.read_dataframe(city / ZONING, layer="youto_chiiki")
    assert 100 <= len(zoning) <= 200
    assert set(zoning["A29_004"]) <= set(A29_ZONES)
    assert len(set(zoning["A29_004"])) >= 8
    assert all(A29_ZONES[c] == n for c, n in zip(zoning["A29_004"], zoning["A29_005"], strict=True))
    assert set(zoning["A29_001"]) == {"44202"}
    assert set(zoning["A29_002"]) == {"別府市"}
    assert zoning["A29_006"].between(30, 80).all()
    assert zoning["A29_007"].between(50, 600).all()
    assert set(zoning["備考"]) == {"サンプルデータ"}


def test_zoning_polygons_are_valid_and_do_not_overlap(city: Path) -> None:
    zoning = pyogrio.read_dataframe(city / ZONING).to_crs(6670)
    geometries = zoning.geometry.values
    assert shapely.is_valid(geometries).all()
    union_area = shapely.union_all(geometries).area
    assert union_area > 1e6
    assert math.isclose(shapely.area(geometries).sum(), union_area, rel_tol=1e-6)


def test_zoning_puts_commerce_at_the_centre_and_industry_to_the_east(city: Path) -> None:
    zoning = pyogrio.read_dataframe(city / ZONING)
    centroids = shapely.centroid(zoning.to_crs(6670).geometry.values)
    x = shapely.get_x(centroids) - 45770.6
    distance = np.hypot(x, shapely.get_y(centroids) - 31668.7)
    commercial = zoning["A29_004"].isin([8, 9]).to_numpy()
    industrial = zoning["A29_004"].isin([10, 11, 12]).to_numpy()
    assert distance[commercial].mean() < distance[~commercial].mean()
    assert x[industrial].min() > 0
    lonlat = shapely.get_coordinates(zoning.geometry.values)
    _assert_near_city_hall(lonlat[:, 0], lonlat[:, 1])


# --- 上水道管路 (water mains GeoJSON) --------------------------------------------------------


def test_water_mains_are_rfc7946_geojson_along_the_streets(city: Path) -> None:
    info = pyogrio.read_info(city / WATER)
    assert info["crs"] == "EPSG:4326"
    assert 800 <= info["features"] <= 1200
    mains = pyogrio.read_dataframe(city / WATER)
    assert mains["口径"].isin([50, 75, 100, 150, 200, 300, 400]).all()
    materials = {"ダクタイル鋳鉄管", "鋼管", "硬質塩化ビニル管", "ポリエチレン管", "石綿セメント管"}
    assert set(mains["管種"]) <= materials
    assert mains["布設年度"].between(1960, 2024).all()
    assert set(mains["耐震"]) == {"有", "無"}
    assert mains["管路番号"].is_unique
    lonlat = shapely.get_coordinates(mains.geometry.values)
    _assert_near_city_hall(lonlat[:, 0], lonlat[:, 1])
    # Mains follow the streets, a few metres to one side.
    roads = pyogrio.read_dataframe(city / ROADS).to_crs(4326)
    nearest = shapely.distance(
        shapely.points(lonlat[:50]), shapely.union_all(roads.geometry.values)
    )
    assert (nearest * 111_000 < 10).all()


def test_water_mains_json_has_no_crs_member_and_seven_decimals(city: Path) -> None:
    document = json.loads((city / WATER).read_text(encoding="utf-8"))
    assert "crs" not in document
    first = document["features"][0]
    assert set(first["properties"]) == {"管路番号", "口径", "管種", "布設年度", "耐震"}
    for lon, lat in first["geometry"]["coordinates"]:
        assert round(lon, 7) == lon and round(lat, 7) == lat
        assert 131 < lon < 132 and 33 < lat < 34


# --- バリアフリー (barrier-free CSV) ---------------------------------------------------------


def test_barrier_csv_is_utf8_with_bom_and_crlf(city: Path) -> None:
    data = (city / BARRIERS).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.count(b"\n") == data.count(b"\r\n") > 250
    header = data.decode("utf-8-sig").split("\r\n", 1)[0].split(",")
    assert header == [
        "ID", "名称", "緯度", "経度", "種別",
        "width", "vtcl_slope", "lev_diff", "route_type", "brail_tile", "handrail", "備考",
    ]  # fmt: skip


def test_barrier_csv_reads_with_gdal_as_points_near_beppu(city: Path) -> None:
    points = pyogrio.read_dataframe(
        city / BARRIERS, X_POSSIBLE_NAMES="経度", Y_POSSIBLE_NAMES="緯度"
    )
    assert 250 <= len(points) <= 350
    assert set(points.geometry.geom_type) == {"Point"}
    _assert_near_city_hall(points.geometry.x.to_numpy(), points.geometry.y.to_numpy())
    assert points["名称"].str.startswith("サンプル").all()


def test_barrier_csv_uses_mlit_codes(city: Path) -> None:
    text = (city / BARRIERS).read_bytes().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["width"] for r in rows} <= {"1", "2", "3", "4", "99"}
    assert {r["vtcl_slope"] for r in rows} <= {"1", "2", "99"}
    assert {r["lev_diff"] for r in rows} <= {"1", "2", "99"}
    assert {r["brail_tile"] for r in rows} <= {"0", "1"}
    assert {r["handrail"] for r in rows} <= {"0", "1", "99"}
    # Coordinates are text with 6 or 7 decimals, as in real municipal files.
    degrees = [r[name] for r in rows for name in ("緯度", "経度")]
    assert all(re.fullmatch(r"\d{2,3}\.\d{6,7}", value) for value in degrees)
    route_types = {
        "エレベーター": "4",
        "階段": "6",
        "スロープ": "7",
        "段差": "",
        "多機能トイレ": "",
    }
    assert {r["種別"] for r in rows} == set(route_types)
    assert all(r["route_type"] == route_types[r["種別"]] for r in rows)


# --- 指定緊急避難場所 (evacuation sites CSV, CP932) ------------------------------------------


def test_evacuation_csv_is_cp932_not_utf8_nor_strict_shift_jis(city: Path) -> None:
    data = (city / EVACUATION).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    with pytest.raises(UnicodeDecodeError):
        data.decode("shift_jis")
    text = data.decode("cp932")
    assert "サンプル避難場所" in text
    # NEC special characters such as ① are what real CP932 files trip strict decoders on.
    assert "①" in text
    assert data.count(b"\n") == data.count(b"\r\n")


def test_evacuation_csv_has_the_standard_columns_and_flags(city: Path) -> None:
    text = (city / EVACUATION).read_bytes().decode("cp932")
    reader = csv.reader(io.StringIO(text))
    assert next(reader) == EVACUATION_HEADER
    rows = [dict(zip(EVACUATION_HEADER, row, strict=True)) for row in reader]
    assert len(rows) == 60
    for row in rows:
        assert {row[name] for name in HAZARD_COLUMNS} <= {"1", ""}
        assert row["全国地方公共団体コード"] == "442020"
        assert row["地方公共団体名"] == "大分県別府市"
        assert re.fullmatch(r"サンプル避難場所 \d+（.+）", row["名称"])
        assert row["指定避難所との重複"] in {"有", "無"}
        assert row["想定収容人数"].isdigit()
        assert row["所在地_連結表記"].startswith("大分県別府市サンプル")
        assert row["備考"].startswith("サンプルデータ")
    for name in HAZARD_COLUMNS:
        assert any(row[name] == "1" for row in rows), f"{name} never set"
    lat = np.array([float(r["緯度"]) for r in rows])
    lon = np.array([float(r["経度"]) for r in rows])
    _assert_near_city_hall(lon, lat)
    assert len({r["ID"] for r in rows}) == len(rows)


def test_evacuation_sites_scale_with_scale(city_scale3: Path) -> None:
    text = (city_scale3 / EVACUATION).read_bytes().decode("cp932")
    assert len(text.strip("\r\n").split("\r\n")) == 1 + 180


# --- 地域・年齢別人口 (population XLSX) ------------------------------------------------------


def test_population_workbook_has_text_codes_dates_and_consistent_totals(city: Path) -> None:
    workbook = openpyxl.load_workbook(city / POPULATION)
    assert workbook.sheetnames == ["人口"]
    sheet = workbook["人口"]
    header = [cell.value for cell in sheet[1]]
    assert header[:7] == ["全国地方公共団体コード", "地方公共団体名", "町丁名", "調査年月日",
                          "総人口", "男性", "女性"]  # fmt: skip
    assert header[7:9] == ["0-4歳男", "0-4歳女"]
    assert "85歳以上女" in header and "世帯数" in header
    male_bands = [i for i, name in enumerate(header) if re.fullmatch(r".+歳(以上)?男", name)]
    female_bands = [i for i, name in enumerate(header) if re.fullmatch(r".+歳(以上)?女", name)]
    assert len(male_bands) == len(female_bands) == 18

    data = list(sheet.iter_rows(min_row=2))
    assert len(data) == 50
    for row in data:
        code_cell = row[0]
        assert code_cell.data_type == "s" and code_cell.value == "442020"
        assert row[1].value == "大分県別府市"
        assert re.fullmatch(r"サンプル.+町[０-９]+丁目", row[2].value)
        assert isinstance(row[3].value, datetime)
        values = [cell.value for cell in row]
        total, male, female = values[4:7]
        assert total == male + female
        assert male == sum(values[i] for i in male_bands)
        assert female == sum(values[i] for i in female_bands)
        assert 0 < values[header.index("世帯数")] <= total
    assert len({row[2].value for row in data}) == 50


def test_population_workbook_dates_are_pinned(city: Path) -> None:
    workbook = openpyxl.load_workbook(city / POPULATION)
    assert workbook.properties.created == workbook.properties.modified
    assert "サンプル" in (workbook.properties.title or "")
