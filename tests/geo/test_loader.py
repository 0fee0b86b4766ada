import shutil
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.departments import ensure_department
from portal.core.database import session_scope
from portal.core.errors import LoadFailed, NotFound
from portal.core.principal import ANONYMOUS, Visibility
from portal.geo.loader import load_layer_from_file
from portal.geo.registry import ensure_layer, get_layer

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
YOUTO = REAL / "yaizu_youto_1jukyo_shp" / "yaizu_youto_1jukyo.shp"
BUNKA = REAL / "yaizu_cultural_properties_geojson" / "yaizu_cultural_properties.geojson"

pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason="shared/data/real is not beside the repo")


@pytest.fixture
def register(sessions: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    def register(layer_id: str) -> str:
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
        return layer_id

    return register


def _scalar(database_url: str, query: str) -> object:
    with psycopg.connect(database_url) as connection:
        row = connection.execute(query).fetchone()
    assert row is not None
    return row[0]


def test_a_jgd2000_shapefile_is_reprojected_to_4326_and_repaired(
    engine: Engine, register, database_url: str
) -> None:
    result = load_layer_from_file(engine, layer_id=register("yaizu_youto"), path=YOUTO)
    assert result.feature_count == 30
    assert result.source_crs == "EPSG:2450"
    assert result.geometry_type == "Polygon"
    minx, miny, maxx, maxy = result.bbox or []
    assert 138.2 < minx < maxx < 138.4 and 34.7 < miny < maxy < 34.95
    assert "2 invalid geometries were repaired with ST_MakeValid" in result.warnings
    table = f"layers.{result.table_name}"
    assert (
        _scalar(database_url, f"SELECT Find_SRID('layers', '{result.table_name}', 'geom')") == 4326
    )
    assert _scalar(database_url, f"SELECT count(*) FROM {table} WHERE NOT ST_IsValid(geom)") == 0
    assert _scalar(database_url, f'SELECT "SAFIELD000" FROM {table} LIMIT 1') == "第一種住居地域"
    indexes = _scalar(
        database_url,
        f"SELECT string_agg(indexdef, ';') FROM pg_indexes WHERE tablename = '{result.table_name}'",
    )
    assert "USING gist (geom)" in str(indexes)


def test_a_cp932_csv_with_latitude_and_longitude_becomes_points(
    engine: Engine, register, database_url: str
) -> None:
    path = REAL / "yaizu_care_facilities_cp932.csv"
    result = load_layer_from_file(engine, layer_id=register("yaizu_care"), path=path)
    assert result.feature_count == 277
    assert result.geometry_type == "Point"
    name = _scalar(
        database_url,
        f'SELECT "要配慮者利用施設名称" FROM layers.{result.table_name} ORDER BY fid LIMIT 1',
    )
    assert name == "くすのき"
    numbered = _scalar(database_url, f'SELECT "№" FROM layers.{result.table_name} LIMIT 1')
    assert numbered == "285"


def test_a_utf8_bom_csv_keeps_codes_as_text(engine: Engine, register, database_url: str) -> None:
    path = REAL / "yaizu_public_facilities_utf8bom.csv"
    result = load_layer_from_file(engine, layer_id=register("yaizu_facilities"), path=path)
    assert result.feature_count == 28
    code = _scalar(
        database_url,
        f'SELECT "都道府県コード又は市区町村コード" FROM layers.{result.table_name} LIMIT 1',
    )
    assert code == "222127"


def test_features_with_impossible_coordinates_lose_their_geometry_with_a_warning(
    engine: Engine, register, database_url: str
) -> None:
    result = load_layer_from_file(engine, layer_id=register("yaizu_bunka"), path=BUNKA)
    assert result.feature_count == 157
    assert any("outside the globe" in w for w in result.warnings)
    assert result.bbox is not None and result.bbox[0] > 138
    nulls = _scalar(
        database_url, f"SELECT count(*) FROM layers.{result.table_name} WHERE geom IS NULL"
    )
    assert nulls == 1


def test_a_reload_swaps_in_a_new_version_and_drops_the_old_table(
    engine: Engine, register, database_url: str, sessions: sessionmaker[Session]
) -> None:
    layer_id = register("yaizu_reload")
    first = load_layer_from_file(engine, layer_id=layer_id, path=BUNKA)
    second = load_layer_from_file(engine, layer_id=layer_id, path=BUNKA)
    assert second.version == first.version + 1
    assert second.table_name != first.table_name
    assert _scalar(database_url, f"SELECT to_regclass('layers.{first.table_name}')") is None
    assert _scalar(database_url, f"SELECT count(*) FROM layers.{layer_id}") == 157
    with session_scope(sessions) as session:
        assert get_layer(session, ANONYMOUS, layer_id).version == second.version


def test_a_truncated_shapefile_fails_with_its_name_and_keeps_the_previous_version(
    engine: Engine, register, database_url: str, tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    layer_id = register("yaizu_truncated")
    good = load_layer_from_file(engine, layer_id=layer_id, path=YOUTO)
    for part in YOUTO.parent.glob("yaizu_youto_1jukyo.*"):
        shutil.copy(part, tmp_path / part.name)
    broken = tmp_path / "yaizu_youto_1jukyo.shp"
    broken.write_bytes(broken.read_bytes()[:2000])
    with pytest.raises(LoadFailed, match=r"yaizu_youto_1jukyo\.shp: the file is truncated"):
        load_layer_from_file(engine, layer_id=layer_id, path=broken)
    with session_scope(sessions) as session:
        layer = get_layer(session, ANONYMOUS, layer_id)
    assert (layer.version, layer.feature_count) == (good.version, 30)
    assert _scalar(database_url, f"SELECT count(*) FROM layers.{good.table_name}") == 30


def test_a_file_that_is_not_spatial_data_fails_clearly(
    engine: Engine, register, tmp_path: Path
) -> None:
    fake = tmp_path / "roads.gpkg"
    fake.write_bytes(b"this is not a GeoPackage")
    with pytest.raises(LoadFailed, match=r"roads\.gpkg: GDAL cannot read this file"):
        load_layer_from_file(engine, layer_id=register("fake_gpkg"), path=fake)


def test_a_missing_file_fails_clearly(engine: Engine, register, tmp_path: Path) -> None:
    with pytest.raises(LoadFailed, match=r"nothing\.geojson: file not found"):
        load_layer_from_file(
            engine, layer_id=register("missing"), path=tmp_path / "nothing.geojson"
        )


def test_a_shapefile_without_prj_asks_for_a_crs(engine: Engine, register, tmp_path: Path) -> None:
    for part in YOUTO.parent.glob("yaizu_youto_1jukyo.*"):
        if part.suffix != ".prj":
            shutil.copy(part, tmp_path / part.name)
    with pytest.raises(LoadFailed, match="does not say which coordinate reference system"):
        load_layer_from_file(engine, layer_id=register("no_prj"), path=tmp_path / YOUTO.name)
    forced = load_layer_from_file(
        engine, layer_id="no_prj", path=tmp_path / YOUTO.name, source_crs="EPSG:2450"
    )
    assert forced.feature_count == 30


def test_a_csv_in_an_unknown_encoding_fails_clearly(
    engine: Engine, register, tmp_path: Path
) -> None:
    path = tmp_path / "broken.csv"
    path.write_bytes("名称,緯度,経度\n".encode() + b"\xff\xfe\xfa\xfb,33.1,131.1\n")
    with pytest.raises(LoadFailed, match="not valid"):
        load_layer_from_file(engine, layer_id=register("broken_csv"), path=path, encoding="utf-8")


def test_loading_an_unregistered_layer_is_refused(engine: Engine) -> None:
    with pytest.raises(NotFound, match="not registered"):
        load_layer_from_file(engine, layer_id="never_registered", path=BUNKA)
