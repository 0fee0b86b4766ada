"""Layer exports as GeoPackage, zipped Shapefile and KML, with bbox, CQL2 filters and CRS."""

import csv
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pyogrio
import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.departments import department_id_by_slug
from portal.core.accounts import principal_for_user
from portal.core.database import session_scope
from portal.core.errors import InvalidInput, NotFound
from portal.core.principal import ANONYMOUS, Visibility
from portal.geo.export_formats import shapefile_field_names
from portal.geo.exports import (
    EXPORTS,
    ExportBody,
    LayerQuery,
    export_format,
    export_layer,
    split_download_name,
)
from portal.geo.features import parse_feature_query
from portal.geo.loader import load_layer_from_file
from portal.geo.registry import LayerSummary, ensure_layer, get_layer
from tests.staff import make_staff

KML = "{http://www.opengis.net/kml/2.2}"
# 別府市役所 (Beppu city hall); in plane zone II its X (northing) is 31668.7, Y (easting) 45770.6.
CITY_HALL = (131.4914, 33.2846)
CITY_HALL_EASTING, CITY_HALL_NORTHING = 45770.55, 31668.69
BOX = (131.48, 33.27, 131.50, 33.29)


def feature(geometry: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def load_small_layer(
    engine: Engine, sessions: sessionmaker[Session], tmp: Path, layer_id: str, features: list[Any]
) -> None:
    path = tmp / f"{layer_id}.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    with session_scope(sessions) as session:
        ensure_layer(
            session,
            layer_id=layer_id,
            title=layer_id,
            title_en=None,
            department_id=department_id_by_slug(session, "doboku"),
            visibility=Visibility.public,
        )
    load_layer_from_file(engine, layer_id=layer_id, path=path)


@pytest.fixture(scope="module")
def layers(
    demo_city: Any, engine: Engine, sessions: sessionmaker[Session], tmp_path_factory: Any
) -> dict[str, LayerSummary]:
    """The public demo layers and two small ones, as anonymous visitors see them."""
    tmp = tmp_path_factory.mktemp("layers")
    hall = feature({"type": "Point", "coordinates": list(CITY_HALL)}, 名称="別府市役所")
    load_small_layer(engine, sessions, tmp, "city_hall", [hall])
    square = [[[131.49, 33.28], [131.5, 33.28], [131.5, 33.29], [131.49, 33.28]]]
    shapes = [
        feature({"type": "Point", "coordinates": [131.49, 33.28]}, 名称="点"),
        feature(
            {"type": "LineString", "coordinates": [[131.49, 33.28], [131.5, 33.29]]}, 名称="線"
        ),
        feature({"type": "Polygon", "coordinates": square}, 名称="面"),
        feature({"type": "Point", "coordinates": [131.5, 33.29]}, 名称="点2"),
    ]
    load_small_layer(engine, sessions, tmp, "mixed_shapes", shapes)
    names = ("roads", "evacuation_sites", "population", "barriers", "city_hall", "mixed_shapes")
    with session_scope(sessions) as session:
        return {name: get_layer(session, ANONYMOUS, name) for name in names}


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private temporary directory that exports write into, to see what they leave."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


def export(engine: Engine, layer: LayerSummary, fmt: str, out: Path, **query: Any) -> Path:
    """Export and save the body under `out`; a Shapefile zip is unpacked next to it."""
    body = export_layer(engine, layer, fmt, LayerQuery(**query))
    assert body.media_type == EXPORTS[fmt].media_type or query.get("encoding") == "cp932"
    path = out / (body.file_name or "export")
    data = b"".join(body.chunks)
    assert body.size is None or body.size == len(data)
    path.write_bytes(data)
    if fmt == "shp":
        with zipfile.ZipFile(path) as archive:
            archive.extractall(out / layer.id)
    return path


def database_rows(engine: Engine, statement: str) -> list[Any]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(statement))]


def open_files_under(directory: Path) -> list[str]:
    """The files this process still holds open under `directory` (deleted ones too)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found


# --- formats -----------------------------------------------------------------------------


def test_the_registry_offers_every_format_with_its_media_type_and_suffix() -> None:
    offered = {fmt: (e.media_type, e.suffix) for fmt, e in EXPORTS.items()}
    assert offered == {
        "geojson": ("application/geo+json", "geojson"),
        "csv": ("text/csv; charset=utf-8", "csv"),
        "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
        "gpkg": ("application/geopackage+sqlite3", "gpkg"),
        "shp": ("application/zip", "shp.zip"),
        "kml": ("application/vnd.google-earth.kml+xml", "kml"),
    }
    assert split_download_name("roads.shp.zip") == ("roads", "shp")
    assert split_download_name("roads.gpkg") == ("roads", "gpkg")
    assert export_format("SHP") == "shp"
    with pytest.raises(NotFound, match=r"come as \.geojson, \.csv, \.xlsx, \.gpkg, \.shp\.zip"):
        export_format("pdf")


@pytest.mark.parametrize(
    ("layer_id", "text_column"), [("roads", "路線名"), ("evacuation_sites", "名称")]
)
def test_geopackage_round_trips_features_columns_and_japanese_text(
    engine: Engine, layers: dict[str, LayerSummary], tmp_path: Path, layer_id: str, text_column: str
) -> None:
    layer = layers[layer_id]
    path = export(engine, layer, "gpkg", tmp_path)
    assert path.name == f"{layer_id}.gpkg"
    info = pyogrio.read_info(path)
    assert info["crs"] == "EPSG:4326" and info["fid_column"] == "fid"
    assert info["geometry_type"] == layer.geometry_type
    frame = pyogrio.read_dataframe(path, fid_as_index=True)
    assert len(frame) == layer.feature_count > 0
    assert list(frame.columns) == [*layer.column_names, "geometry"]
    expected = database_rows(
        engine, f'SELECT fid, "{text_column}" FROM layers.{layer_id} ORDER BY fid'
    )
    assert list(zip(frame.index, frame[text_column], strict=True)) == expected


@pytest.mark.parametrize(
    ("layer_id", "text_column"), [("roads", "路線名"), ("evacuation_sites", "名称")]
)
def test_a_shapefile_zip_holds_utf8_parts_and_a_map_of_its_field_names(
    engine: Engine, layers: dict[str, LayerSummary], tmp_path: Path, layer_id: str, text_column: str
) -> None:
    layer = layers[layer_id]
    path = export(engine, layer, "shp", tmp_path)
    assert path.name == f"{layer_id}.shp.zip"
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
    parts = [f"{layer_id}.{suffix}" for suffix in ("cpg", "dbf", "prj", "shp", "shx")]
    assert names == sorted([*parts, f"{layer_id}_fields.csv"])
    unpacked = tmp_path / layer_id
    assert (unpacked / f"{layer_id}.cpg").read_text() == "UTF-8"
    assert 'GEOGCS["GCS_WGS_1984"' in (unpacked / f"{layer_id}.prj").read_text()
    mapping = list(
        csv.reader(io.StringIO((unpacked / f"{layer_id}_fields.csv").read_text("utf-8-sig")))
    )
    assert mapping[0] == ["shapefile_field", "column"]
    assert [row[1] for row in mapping[1:]] == ["fid", *layer.column_names]
    assert all(len(row[0].encode()) <= 10 for row in mapping[1:])
    field = {column: short for short, column in mapping[1:]}
    frame = pyogrio.read_dataframe(unpacked / f"{layer_id}.shp")
    assert list(frame.columns) == [row[0] for row in mapping[1:]] + ["geometry"]
    assert len(frame) == layer.feature_count
    expected = database_rows(
        engine, f'SELECT fid, "{text_column}" FROM layers.{layer_id} ORDER BY fid'
    )
    got = list(zip(frame["fid"], frame[field[text_column]], strict=True))
    assert got == expected


def test_shapefile_field_names_fit_ten_bytes_and_stay_unique() -> None:
    columns = [
        "fid",
        "名称",
        "全国地方公共団体コード",
        "全国地方公共団体名",
        "0-4歳男",
        "建物名等(方書)",
    ]
    columns += ["ID", "id", "所在地_連結表記", "所在地_都道府県", "width"]
    assert shapefile_field_names(columns) == [
        "fid", "名称", "全国地", "全国_2", "F0_4歳男", "建物名",
        "ID", "id_2", "所在地", "所在_2", "width",
    ]  # fmt: skip


def test_kml_names_placemarks_from_the_name_column_in_longitude_latitude(
    engine: Engine, layers: dict[str, LayerSummary], tmp_path: Path
) -> None:
    path = export(engine, layers["evacuation_sites"], "kml", tmp_path)
    placemarks = ElementTree.parse(path).getroot().findall(f".//{KML}Placemark")
    expected = database_rows(
        engine, 'SELECT "名称", "経度", "緯度" FROM layers.evacuation_sites ORDER BY fid'
    )
    assert len(placemarks) == len(expected) == 60
    for placemark, (name, lon, lat) in zip(placemarks, expected, strict=True):
        assert placemark.findtext(f"{KML}name") == name
        x, y = map(float, placemark.findtext(f".//{KML}coordinates", "").split(","))
        assert (x, y) == pytest.approx((lon, lat), abs=1e-7)
    roads = ElementTree.parse(export(engine, layers["roads"], "kml", tmp_path)).getroot()
    road_marks = roads.findall(f".//{KML}Placemark")
    assert len(road_marks) == layers["roads"].feature_count
    data = {d.get("name"): d.text for d in road_marks[0].iter(f"{KML}SimpleData")}
    assert data["路線名"] == "市道サンプル１号線" and road_marks[0].findtext(f"{KML}name") is None


def test_plane_rectangular_downloads_put_easting_first_with_the_zone_srs(
    engine: Engine, layers: dict[str, LayerSummary], tmp_path: Path
) -> None:
    hall = layers["city_hall"]
    zone = "http://www.opengis.net/def/crs/EPSG/0/6670"
    gpkg = export(engine, hall, "gpkg", tmp_path, crs=zone)
    assert pyogrio.read_info(gpkg)["crs"] == "EPSG:6670"
    point = pyogrio.read_dataframe(gpkg).geometry[0]
    assert (point.x, point.y) == pytest.approx((CITY_HALL_EASTING, CITY_HALL_NORTHING), abs=0.05)
    export(engine, hall, "shp", tmp_path, crs="EPSG:6670")
    prj = (tmp_path / "city_hall" / "city_hall.prj").read_text()
    assert prj.startswith('PROJCS["JGD_2011_Japan_Zone_2"')
    point = pyogrio.read_dataframe(tmp_path / "city_hall" / "city_hall.shp").geometry[0]
    assert (point.x, point.y) == pytest.approx((CITY_HALL_EASTING, CITY_HALL_NORTHING), abs=0.05)
    collection = json.loads(export(engine, hall, "geojson", tmp_path, crs=zone).read_bytes())
    assert collection["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::6670"
    x, y = collection["features"][0]["geometry"]["coordinates"]
    assert (x, y) == pytest.approx((CITY_HALL_EASTING, CITY_HALL_NORTHING), abs=0.05)
    rows = list(
        csv.reader(
            io.StringIO(export(engine, hall, "csv", tmp_path, crs=zone).read_text("utf-8-sig"))
        )
    )
    assert rows[0] == ["名称", "緯度", "経度", "wkt"]
    assert rows[1][:3] == ["別府市役所", "33.2846", "131.4914"]
    assert rows[1][3] == "POINT(45770.554 31668.692)"


def test_geojson_csv_and_xlsx_still_export_every_row(
    engine: Engine, layers: dict[str, LayerSummary], tmp_path: Path
) -> None:
    sites = layers["evacuation_sites"]
    collection = json.loads(export(engine, sites, "geojson", tmp_path).read_bytes())
    assert len(collection["features"]) == 60 and "crs" not in collection
    lon, lat = collection["features"][0]["geometry"]["coordinates"]
    assert 131 < lon < 132 and 33 < lat < 34
    rows = list(
        csv.reader(io.StringIO(export(engine, sites, "csv", tmp_path).read_text("utf-8-sig")))
    )
    assert len(rows) == 61 and "wkt" not in rows[0]
    cp932 = export(engine, sites, "csv", tmp_path, encoding="cp932").read_bytes().decode("cp932")
    assert list(csv.reader(io.StringIO(cp932))) == rows
    workbook = load_workbook(export(engine, sites, "xlsx", tmp_path), read_only=True)
    assert len(list(workbook.worksheets[0].iter_rows(values_only=True))) == 61


def test_a_table_exports_as_a_geopackage_attribute_table(
    engine: Engine, layers: dict[str, LayerSummary], tmp_path: Path
) -> None:
    population = layers["population"]
    info = pyogrio.read_info(export(engine, population, "gpkg", tmp_path))
    assert info["geometry_type"] is None and info["features"] == 50
    assert list(info["fields"]) == population.column_names


def test_a_mixed_layer_becomes_one_shapefile_per_geometry_family(
    engine: Engine, layers: dict[str, LayerSummary], tmp_path: Path
) -> None:
    mixed = layers["mixed_shapes"]
    assert mixed.geometry_type == "Geometry"
    export(engine, mixed, "shp", tmp_path)
    found = {}
    for family in ("point", "line", "polygon"):
        frame = pyogrio.read_dataframe(tmp_path / "mixed_shapes" / f"mixed_shapes_{family}.shp")
        found[family] = sorted(frame["名称"])
    assert found == {"point": ["点", "点2"], "line": ["線"], "polygon": ["面"]}
    assert pyogrio.read_info(export(engine, mixed, "gpkg", tmp_path))["features"] == 4


# --- filters -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["gpkg", "shp", "kml", "geojson", "csv"])
def test_bbox_and_a_cql2_filter_cut_every_format(
    engine: Engine, layers: dict[str, LayerSummary], tmp_path: Path, fmt: str
) -> None:
    def count(layer_id: str, **query: Any) -> int:
        path = export(engine, layers[layer_id], fmt, tmp_path, **query)
        if fmt == "gpkg":
            return int(pyogrio.read_info(path)["features"])
        if fmt == "shp":
            return int(pyogrio.read_info(tmp_path / layer_id / f"{layer_id}.shp")["features"])
        if fmt == "kml":
            return len(ElementTree.parse(path).getroot().findall(f".//{KML}Placemark"))
        if fmt == "geojson":
            return len(json.loads(path.read_bytes())["features"])
        return len(list(csv.reader(io.StringIO(path.read_text("utf-8-sig"))))) - 1

    (inside,) = database_rows(
        engine,
        "SELECT count(*) FROM layers.barriers "
        f"WHERE ST_Intersects(geom, ST_MakeEnvelope({', '.join(map(str, BOX))}, 4326))",
    )[0]
    assert 0 < count("barriers", bbox=BOX) == inside < layers["barriers"].feature_count
    assert count("roads", filter="路線種別 = '国道'") == 32
    assert count("roads", filter="路線種別 = '国道'", limit=5) == 5


def test_an_ogc_items_query_is_exported_with_its_properties_and_without_its_paging(
    engine: Engine, layers: dict[str, LayerSummary], tmp_path: Path
) -> None:
    roads = layers["roads"]
    params = {"properties": "路線名,幅員", "filter": "路線種別 = '国道'", "limit": "2"}
    selection = parse_feature_query(roads, params)
    path = export(engine, roads, "gpkg", tmp_path, selection=selection)
    frame = pyogrio.read_dataframe(path)
    assert list(frame.columns) == ["路線名", "幅員", "geometry"] and len(frame) == 32
    bare = parse_feature_query(roads, {"properties": ""})
    collection = json.loads(
        export(engine, roads, "geojson", tmp_path, selection=bare, limit=3).read_bytes()
    )
    assert [f["properties"] for f in collection["features"]] == [{}, {}, {}]


def test_a_filter_postgresql_cannot_apply_is_refused_and_leaves_no_files(
    engine: Engine, layers: dict[str, LayerSummary], scratch: Path
) -> None:
    with pytest.raises(
        InvalidInput, match="cannot be applied to layer 'roads': value out of range: overflow"
    ):
        export_layer(engine, layers["roads"], "gpkg", LayerQuery(filter="幅員 * 1e300 * 1e300 > 1"))
    assert list(scratch.iterdir()) == []


# --- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer_id", "fmt", "query", "message"),
    [
        (
            "population",
            "kml",
            {},
            "'population' is a table without geometries, which KML cannot hold",
        ),
        (
            "population",
            "shp",
            {},
            "'population' is a table without geometries, which SHP cannot hold",
        ),
        ("roads", "kml", {"crs": "EPSG:6670"}, "KML is always in WGS 84 longitude/latitude"),
        ("roads", "gpkg", {"crs": "EPSG:9999"}, "crs 'EPSG:9999' is not a supported CRS"),
        (
            "roads",
            "shp",
            {"filter": "路線種別 = "},
            "filter is not valid CQL2 text: it ends too early",
        ),
        ("roads", "xlsx", {}, "XLSX is offered for tables and point layers"),
        ("population", "gpkg", {"bbox": BOX}, "'population' has no geometries to filter by bbox"),
    ],
)
def test_unusable_exports_are_refused_before_anything_is_written(
    engine: Engine,
    layers: dict[str, LayerSummary],
    scratch: Path,
    layer_id: str,
    fmt: str,
    query: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(InvalidInput) as refused:
        export_layer(engine, layers[layer_id], fmt, LayerQuery(**query))
    assert message in refused.value.message
    assert list(scratch.iterdir()) == []


# --- temporary files and visibility -------------------------------------------------------


def test_temporary_files_are_gone_once_the_body_is_done_or_dropped(
    engine: Engine, layers: dict[str, LayerSummary], scratch: Path
) -> None:
    for fmt in ("gpkg", "shp", "kml"):
        body: ExportBody = export_layer(engine, layers["roads"], fmt, LayerQuery())
        assert list(scratch.iterdir()) == []  # the finished file is open, its name already gone
        assert len(open_files_under(scratch)) == 1
        chunks: Any = body.chunks
        next(chunks)
        chunks.close()  # what the server does when the client goes away mid-download
        assert open_files_under(scratch) == []
    unstarted = export_layer(engine, layers["roads"], "gpkg", LayerQuery())
    del unstarted
    assert open_files_under(scratch) == []


def test_a_hidden_layer_cannot_be_exported_by_anonymous_but_is_by_its_department(
    engine: Engine, sessions: sessionmaker[Session], layers: dict[str, LayerSummary], tmp_path: Path
) -> None:
    with session_scope(sessions) as session:
        with pytest.raises(NotFound, match="^layer 'water_mains' not found$"):
            get_layer(session, ANONYMOUS, "water_mains")
    staff = make_staff(sessions, department="suido")
    with session_scope(sessions) as session:
        suido = principal_for_user(session, staff.user_id, kind="session")
        water_mains = get_layer(session, suido, "water_mains")
    assert water_mains.visibility is Visibility.department
    path = export(engine, water_mains, "gpkg", tmp_path)
    assert pyogrio.read_info(path)["features"] == water_mains.feature_count > 0
