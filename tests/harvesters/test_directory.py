import os
import zipfile
from pathlib import Path

import pyogrio
import pytest
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.datasets import get_dataset
from portal.core.database import session_scope
from portal.core.errors import InvalidInput, NotFound
from portal.core.principal import SYSTEM
from portal.core.settings import Settings
from portal.demo.city import demo_files
from portal.demo.generator import generate_demo_city
from portal.harvesters.registry import harvester_for
from tests.harvest_support import HarvestOutcome, harvest
from tests.harvesters.directory_support import (
    copy_real,
    dataset_for,
    ensure_departments,
    layers_of,
    message_of,
    needs_real,
    only,
    place_rows,
    places_frame,
    scalar,
    source,
    write_csv,
    write_shapefile,
)


@pytest.fixture(scope="module", autouse=True)
def departments(sessions: sessionmaker[Session]) -> None:
    ensure_departments(sessions)


# --- config ------------------------------------------------------------------------------


def test_the_folder_must_exist_and_be_a_readable_folder(tmp_path: Path) -> None:
    harvester = harvester_for("directory")
    with pytest.raises(InvalidInput, match="does not exist"):
        harvester.validate_config(str(tmp_path / "missing"), {})
    (tmp_path / "file.csv").write_text("a\n1\n")
    with pytest.raises(InvalidInput, match="this is a file, not a folder"):
        harvester.validate_config(str(tmp_path / "file.csv"), {})
    with pytest.raises(InvalidInput, match="absolute path"):
        harvester.validate_config("drop/doboku", {})
    with pytest.raises(InvalidInput, match="system folders"):
        harvester.validate_config("/etc", {})
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o000)
    try:
        if not os.access(locked, os.R_OK):  # root reads everything
            with pytest.raises(InvalidInput, match="may not read this folder"):
                harvester.validate_config(str(locked), {})
    finally:
        locked.chmod(0o755)
    assert harvester.validate_config(f"file://{tmp_path}", {"zone": 2}) == {"zone": 2}


def test_config_mistakes_name_the_field(tmp_path: Path) -> None:
    harvester = harvester_for("directory")
    with pytest.raises(InvalidInput, match="recursiv"):
        harvester.validate_config(str(tmp_path), {"recursiv": False})
    with pytest.raises(InvalidInput, match="zone or source_crs, not both"):
        harvester.validate_config(str(tmp_path), {"zone": 2, "source_crs": "EPSG:6670"})
    with pytest.raises(InvalidInput, match="unknown coordinate reference system"):
        harvester.validate_config(str(tmp_path), {"source_crs": "EPSG:nope"})
    with pytest.raises(InvalidInput, match="unknown encoding"):
        harvester.validate_config(str(tmp_path), {"encoding": "klingon"})


# --- the demo drop -----------------------------------------------------------------------


def test_the_demo_drop_harvests_incrementally(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    generate_demo_city(drop, scale=1, municipality_code=settings.municipality_code)
    name = source(sessions, drop)
    first = harvest(sessions, settings, name)
    files = demo_files(settings.municipality_code)
    assert first.status == "succeeded", [(o.remote_id, o.message) for o in first.objects]
    assert sorted(only(first, "created")) == sorted(f.path for f in files)
    for demo_file in files:
        dataset = dataset_for(sessions, first, demo_file.path)
        path = drop / demo_file.path
        expected = sum(
            int(pyogrio.read_info(path, layer=layer, encoding=demo_file.encoding)["features"])
            for layer, _ in pyogrio.list_layers(path)
        )
        layers = layers_of(sessions, dataset)
        assert layers, demo_file.path
        assert sum(layer.feature_count for layer in layers) == expected, demo_file.path
        assert any(r.kind == "file" for r in dataset.resources)
    evacuation = dataset_for(
        sessions, first, f"bosai/{settings.municipality_code}_evacuation_space.csv"
    )
    assert evacuation.title == "指定緊急避難場所一覧"
    assert evacuation.standard_dataset == "A-03" and "A-03" in evacuation.tags
    roads = layers_of(sessions, dataset_for(sessions, first, "doboku/road_ledger.shp"))
    assert roads[0].geometry_type in ("LineString", "MultiLineString")

    second = harvest(sessions, settings, name)
    assert second.stats == {"unchanged": len(files)}

    os.utime(drop / "fukushi/barrier_free.csv")  # a new mtime, the same bytes
    with (drop / "suido/water_mains.geojson").open("a") as handle:
        handle.write("\n")  # new bytes
    third = harvest(sessions, settings, name)
    assert only(third, "updated") == ["suido/water_mains.geojson"]
    assert len(only(third, "unchanged")) == len(files) - 1

    for part in (drop / "doboku").glob("road_ledger.*"):
        part.unlink()
    fourth = harvest(sessions, settings, name)
    assert only(fourth, "deleted") == ["doboku/road_ledger.shp"]
    with session_scope(sessions) as session, pytest.raises(NotFound):
        get_dataset(session, SYSTEM, roads_name(first))


def roads_name(outcome: HarvestOutcome) -> str:
    found = next(o for o in outcome.objects if o.remote_id == "doboku/road_ledger.shp")
    return str(found.dataset_id)


# --- real files --------------------------------------------------------------------------


@needs_real
def test_real_municipal_files_harvest_with_crs_and_readable_japanese(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path, database_url: str
) -> None:
    drop = tmp_path / "real"
    copy_real(
        drop,
        "yaizu_youto_1jukyo_shp",
        "yaizu_cultural_properties_geojson",
        "takamatsu_population_by_chocho_age_202303_utf8bom.csv",
        "yaizu_care_facilities_cp932.csv",
        "yaizu_evacuation_space_utf8.csv",
        "yaizu_public_facilities_utf8bom.csv",
        "yaizu_public_toilet_utf8.csv",
    )
    outcome = harvest(sessions, settings, source(sessions, drop))
    assert outcome.status == "succeeded", [(o.remote_id, o.message) for o in outcome.objects]
    assert len(only(outcome, "created")) == 7  # config.yml and attributes.csv are sidecars

    youto = dataset_for(sessions, outcome, "yaizu_youto_1jukyo_shp/yaizu_youto_1jukyo.shp")
    assert youto.title == "都市計画図（第一種住居地域）"
    assert youto.extras["column_labels"]["SAFIELD000"] == "用途地域"
    (layer,) = layers_of(sessions, youto)
    assert (layer.feature_count, layer.source_crs, layer.geometry_type) == (
        30,
        "EPSG:2450",
        "Polygon",
    )
    assert "2 invalid geometries were repaired with ST_MakeValid" in layer.warnings
    zone = scalar(database_url, f'SELECT DISTINCT "SAFIELD000" FROM layers.{layer.id}')
    assert zone == "第一種住居地域"
    assert any(r.format == "SHP" and r.kind == "file" for r in youto.resources)

    bunka = dataset_for(
        sessions, outcome, "yaizu_cultural_properties_geojson/yaizu_cultural_properties.geojson"
    )
    (layer,) = layers_of(sessions, bunka)
    assert layer.feature_count == 157 and layer.source_crs == "EPSG:4326"
    assert any("outside the globe" in w for w in layer.warnings)
    assert scalar(database_url, f"SELECT count(*) FROM layers.{layer.id} WHERE geom IS NULL") == 1
    assert (
        scalar(database_url, f"SELECT count(*) FROM layers.{layer.id} WHERE item5 = '高草山'") >= 2
    )
    found = next(o for o in outcome.objects if o.remote_id.endswith(".geojson"))
    assert any("outside the globe" in w for w in found.warnings)

    care = dataset_for(sessions, outcome, "yaizu_care_facilities_cp932.csv")
    (layer,) = layers_of(sessions, care)
    assert (layer.feature_count, layer.geometry_type) == (277, "Point")
    first = scalar(
        database_url, f'SELECT "要配慮者利用施設名称" FROM layers.{layer.id} ORDER BY fid LIMIT 1'
    )
    assert first == "くすのき"

    population = dataset_for(
        sessions, outcome, "takamatsu_population_by_chocho_age_202303_utf8bom.csv"
    )
    (layer,) = layers_of(sessions, population)
    assert (layer.feature_count, layer.geometry_type) == (235, None)
    assert [c["name"] for c in layer.columns][:3] == ["#", "prefCode", "regionCode"]
    assert scalar(database_url, f'SELECT "cityName" FROM layers.{layer.id} LIMIT 1') == "高松市"

    for remote_id, count in (
        ("yaizu_evacuation_space_utf8.csv", 31),
        ("yaizu_public_facilities_utf8bom.csv", 28),
        ("yaizu_public_toilet_utf8.csv", 112),
    ):
        (layer,) = layers_of(sessions, dataset_for(sessions, outcome, remote_id))
        assert (layer.feature_count, layer.geometry_type) == (count, "Point"), remote_id
        minx, miny, maxx, maxy = layer.bbox or []
        assert 138.2 < minx <= maxx < 138.4 and 34.7 < miny <= maxy < 34.95, remote_id


# --- sidecars, names and formats ---------------------------------------------------------


def test_a_file_sidecar_beats_the_folder_sidecar_which_beats_the_file_name(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    write_csv(tmp_path / "hinanjo.csv", place_rows())
    write_csv(tmp_path / "toilet.csv", place_rows())
    write_csv(tmp_path / "公園一覧.csv", place_rows())
    (tmp_path / "meta.yaml").write_text(
        "defaults:\n  license_id: cc-by-4.0\n  tags: [防災]\n"
        "files:\n  hinanjo.csv:\n    title: 避難所（フォルダ）\n    update_frequency: monthly\n"
        "  toilet:\n    title: 公衆トイレ\n    visibility: internal\n",
        encoding="utf-8",
    )
    (tmp_path / "hinanjo.meta.json").write_text(
        '{"title": "避難所一覧", "title_en": "Shelters", "name": "shelters", "notes": "毎月更新"}',
        encoding="utf-8",
    )
    outcome = harvest(sessions, settings, name := source(sessions, tmp_path))
    assert outcome.status == "succeeded", [(o.remote_id, o.message) for o in outcome.objects]
    shelters = dataset_for(sessions, outcome, "hinanjo.csv")
    assert (shelters.name, shelters.title, shelters.title_en) == (
        "shelters",
        "避難所一覧",
        "Shelters",
    )
    assert (shelters.update_frequency, shelters.license.id, shelters.notes) == (
        "monthly",
        "cc-by-4.0",
        "毎月更新",
    )
    assert shelters.tags == ["防災"]
    toilet = dataset_for(sessions, outcome, "toilet.csv")
    assert (toilet.name, toilet.title, toilet.visibility) == (
        f"{name}-toilet",
        "公衆トイレ",
        "internal",
    )
    park = dataset_for(sessions, outcome, "公園一覧.csv")
    assert park.title == "公園一覧"
    assert park.name.startswith(f"{name}-{name}-") and len(park.name) == 2 * len(name) + 8

    (tmp_path / "toilet.meta.yaml").write_text("titel: 誤字\n", encoding="utf-8")
    again = harvest(sessions, settings, name)
    message = message_of(again, "toilet.csv")
    assert "toilet.meta.yaml" in message and "'titel' is not a known field" in message
    assert only(again, "unchanged") == ["hinanjo.csv", "公園一覧.csv"]


def test_sidecar_values_are_checked_before_anything_loads(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    write_csv(tmp_path / "a.csv", place_rows())
    (tmp_path / "a.meta.yaml").write_text(
        "license_id: all-rights\nvisibility: secret\ngroups: [nogroup]\n", encoding="utf-8"
    )
    outcome = harvest(sessions, settings, name := source(sessions, tmp_path))
    message = message_of(outcome, "a.csv")
    assert "license_id: unknown licence 'all-rights'" in message
    assert "visibility: Input should be 'public', 'internal' or 'department'" in message
    (tmp_path / "a.meta.yaml").write_text("groups: nogroup\n", encoding="utf-8")
    again = harvest(sessions, settings, name)
    assert "unknown group 'nogroup' in the sidecar; use one of:" in message_of(again, "a.csv")


def test_plane_rectangular_x_y_columns_with_a_zone_become_points(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path, database_url: str
) -> None:
    # Beppu city hall in JGD2011 zone II: X (northing) ≈ 31668.7, Y (easting) ≈ 45770.6.
    (tmp_path / "survey.csv").write_text(
        "名称,X座標,Y座標\n別府市役所,31668.7,45770.6\n", encoding="utf-8"
    )
    (tmp_path / "survey.meta.yaml").write_text("zone: 2\n", encoding="utf-8")
    outcome = harvest(sessions, settings, source(sessions, tmp_path))
    (layer,) = layers_of(sessions, dataset_for(sessions, outcome, "survey.csv"))
    assert layer.source_crs == "EPSG:6670"
    lon, lat = scalar(database_url, f"SELECT ARRAY[ST_X(geom), ST_Y(geom)] FROM layers.{layer.id}")
    assert (lon, lat) == (pytest.approx(131.4914, abs=1e-4), pytest.approx(33.2846, abs=1e-4))


def test_x_y_columns_without_a_zone_ask_for_it(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "survey.csv").write_text(
        "名称,X座標,Y座標\n市役所,31668.7,45770.6\n", encoding="utf-8"
    )
    outcome = harvest(sessions, settings, source(sessions, tmp_path))
    assert "add zone (the 系番号, e.g. zone: 2)" in message_of(outcome, "survey.csv")


def test_a_geopackage_loads_every_layer_and_is_stored_once(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "toshi.gpkg"
    frame = places_frame()
    pyogrio.write_dataframe(frame, path, layer="facilities")
    pyogrio.write_dataframe(frame.iloc[:2], path, layer="stations", append=True)
    outcome = harvest(sessions, settings, source(sessions, tmp_path))
    dataset = dataset_for(sessions, outcome, "toshi.gpkg")
    layers = layers_of(sessions, dataset)
    assert sorted((layer.title, layer.feature_count) for layer in layers) == [
        ("toshi - facilities", 3),
        ("toshi - stations", 2),
    ]
    assert [r.format for r in dataset.resources if r.kind == "file"] == ["GPKG"]


def test_a_zipped_shapefile_with_cp932_names_is_one_dataset(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path, database_url: str
) -> None:
    parts = tmp_path / "parts"
    write_shapefile(parts / "施設.shp")
    drop = tmp_path / "drop"
    drop.mkdir()
    with zipfile.ZipFile(drop / "施設.zip", "w") as archive:
        for part in parts.iterdir():
            info = zipfile.ZipInfo(part.name.encode("cp932").decode("cp437"))  # as Windows writes
            archive.writestr(info, part.read_bytes())
    (drop / "~$施設.xlsx").write_bytes(b"lock")
    (drop / ".hidden.csv").write_text("a\n1\n")
    (drop / "readme.pdf").write_bytes(b"%PDF")
    outcome = harvest(sessions, settings, source(sessions, drop))
    assert [o.remote_id for o in outcome.objects] == ["施設.zip"]
    dataset = dataset_for(sessions, outcome, "施設.zip")
    assert dataset.title == "施設"
    (layer,) = layers_of(sessions, dataset)
    assert layer.feature_count == 3
    assert (
        scalar(database_url, f'SELECT "名称" FROM layers.{layer.id} ORDER BY fid LIMIT 1')
        == "別府市役所"
    )
    assert [r.format for r in dataset.resources if r.kind == "file"] == ["SHP"]


def test_include_exclude_and_recursive_choose_the_files(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    for relative in ("a.csv", "old/b.csv", "sub/c.csv", "sub/d.geojson"):
        write_csv(tmp_path / relative, place_rows())
    (tmp_path / "sub/d.geojson").write_text(places_frame(4326).to_json(), encoding="utf-8")
    outcome = harvest(
        sessions, settings, source(sessions, tmp_path, include=["*.csv"], exclude=["old/*"])
    )
    assert sorted(o.remote_id for o in outcome.objects) == ["a.csv", "sub/c.csv"]
    flat = harvest(sessions, settings, source(sessions, tmp_path, recursive=False))
    assert [o.remote_id for o in flat.objects] == ["a.csv"]


def test_an_emptied_folder_withdraws_nothing(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    write_csv(tmp_path / "a.csv", place_rows())
    first = harvest(sessions, settings, name := source(sessions, tmp_path))
    dataset = dataset_for(sessions, first, "a.csv")
    (tmp_path / "a.csv").unlink()  # as an unmounted share looks
    outcome = harvest(sessions, settings, name)
    assert outcome.status == "failed"
    assert "is empty, but 1 datasets came from it; nothing was withdrawn" in (outcome.error or "")
    with session_scope(sessions) as session:
        assert get_dataset(session, SYSTEM, dataset.name).name == dataset.name


def test_a_sidecar_shares_a_department_dataset_and_its_layer(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    from portal.core.tokens import authenticate_token
    from portal.geo.registry import list_layers
    from tests.staff import make_staff

    write_csv(tmp_path / "kanro.csv", place_rows())
    (tmp_path / "kanro.meta.yaml").write_text(
        "title: 管路点検箇所\nvisibility: department\nshared_with: [fukushi]\n", encoding="utf-8"
    )
    outcome = harvest(sessions, settings, source(sessions, tmp_path))
    assert outcome.status == "succeeded", [(o.remote_id, o.message) for o in outcome.objects]
    dataset = dataset_for(sessions, outcome, "kanro.csv")
    layer_id = next(r.layer_id for r in dataset.resources if r.layer_id)
    shared, outsider = (
        make_staff(sessions, department="fukushi"),
        make_staff(sessions, department="bosai"),
    )
    with session_scope(sessions) as session:
        for staff, expected in ((shared, True), (outsider, False)):
            principal = authenticate_token(session, staff.token, ip=None)
            assert (layer_id in {layer.id for layer in list_layers(session, principal)}) == expected
            found = search_visible(session, principal, dataset.name)
            assert found == expected


def search_visible(session: Session, principal: object, name: str) -> bool:
    from portal.catalog.datasets import list_dataset_names

    return name in list_dataset_names(session, principal)  # type: ignore[arg-type]
