"""Bad files in a drop folder: each fails with a message a clerk can act on, and the data
harvested before stays as it was."""

import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.datasets import get_dataset
from portal.core.database import session_scope
from portal.core.principal import SYSTEM
from portal.core.settings import Settings
from portal.geo.models import Layer
from tests.harvest_support import HarvestOutcome, harvest
from tests.harvesters.directory_support import (
    PLACES,
    dataset_for,
    ensure_departments,
    kml,
    layers_of,
    message_of,
    place_rows,
    placemark,
    scalar,
    source,
    write_csv,
    write_shapefile,
)


@pytest.fixture(scope="module", autouse=True)
def departments(sessions: sessionmaker[Session]) -> None:
    ensure_departments(sessions)


@dataclass
class Before:
    """A harvested object's dataset and layer before the bad file arrived."""

    dataset_name: str
    layer: Layer
    rows: int


def good_then_bad(
    sessions: sessionmaker[Session],
    settings: Settings,
    database_url: str,
    drop: Path,
    remote_id: str,
    spoil: Callable[[], None],
    **config: object,
) -> tuple[HarvestOutcome, Before]:
    """Harvest the good file, spoil it, harvest again; return the second run and the first state."""
    name = source(sessions, drop, **config)
    first = harvest(sessions, settings, name)
    dataset = dataset_for(sessions, first, remote_id)
    (layer,) = layers_of(sessions, dataset)
    before = Before(
        dataset.name, layer, scalar(database_url, f"SELECT count(*) FROM layers.{layer.id}")
    )
    spoil()
    return harvest(sessions, settings, name), before


def assert_intact(sessions: sessionmaker[Session], database_url: str, before: Before) -> None:
    with session_scope(sessions) as session:
        dataset = get_dataset(session, SYSTEM, before.dataset_name)
        layer = session.get(Layer, before.layer.id)
        assert layer is not None
        assert (layer.version, layer.table_name, layer.feature_count) == (
            before.layer.version,
            before.layer.table_name,
            before.layer.feature_count,
        )
    assert any(r.layer_id == before.layer.id for r in dataset.resources)
    assert scalar(database_url, f"SELECT count(*) FROM layers.{before.layer.id}") == before.rows


def test_a_truncated_shapefile_fails_and_keeps_the_old_layer(
    sessions: sessionmaker[Session], settings: Settings, database_url: str, tmp_path: Path
) -> None:
    shp = tmp_path / "doboku" / "施設.shp"
    write_shapefile(shp)

    def spoil() -> None:
        shp.write_bytes(shp.read_bytes()[:150])

    outcome, before = good_then_bad(
        sessions, settings, database_url, tmp_path, "doboku/施設.shp", spoil
    )
    assert "施設.shp: the file is truncated" in message_of(outcome, "doboku/施設.shp")
    assert outcome.status == "failed"
    assert_intact(sessions, database_url, before)


def test_a_shapefile_without_its_shx_names_the_missing_part(
    sessions: sessionmaker[Session], settings: Settings, database_url: str, tmp_path: Path
) -> None:
    shp = tmp_path / "roads.shp"
    write_shapefile(shp)
    outcome, before = good_then_bad(
        sessions,
        settings,
        database_url,
        tmp_path,
        "roads.shp",
        lambda: shp.with_suffix(".shx").unlink(),
    )
    assert "the .shx part is missing" in message_of(outcome, "roads.shp")
    assert_intact(sessions, database_url, before)


def test_a_dbf_in_another_encoding_than_its_cpg_says_fails_with_the_fix(
    sessions: sessionmaker[Session], settings: Settings, database_url: str, tmp_path: Path
) -> None:
    shp = tmp_path / "places.shp"
    write_shapefile(shp, encoding="UTF-8")

    def spoil() -> None:
        write_shapefile(shp, encoding="CP932")
        shp.with_suffix(".cpg").write_text("UTF-8")  # the .cpg still says UTF-8

    outcome, before = good_then_bad(sessions, settings, database_url, tmp_path, "places.shp", spoil)
    message = message_of(outcome, "places.shp")
    assert (
        "places.dbf: the attribute text is not UTF-8 as its .cpg file (places.cpg) says" in message
    )
    assert "it looks like CP932 (Shift_JIS): correct the .cpg file to say CP932" in message
    assert_intact(sessions, database_url, before)


def test_a_csv_with_addresses_in_its_latitude_column_fails_naming_a_value(
    sessions: sessionmaker[Session], settings: Settings, database_url: str, tmp_path: Path
) -> None:
    csv = tmp_path / "shisetsu.csv"
    write_csv(csv, place_rows(), encoding="cp932")
    addresses = [(name, "大分県別府市上野口町1-15", "") for name, _, _ in PLACES]
    outcome, before = good_then_bad(
        sessions,
        settings,
        database_url,
        tmp_path,
        "shisetsu.csv",
        lambda: write_csv(csv, addresses, encoding="cp932"),
    )
    message = message_of(outcome, "shisetsu.csv")
    assert "緯度 holds values that are not numbers in 3 of 3 rows" in message
    assert "row 2: 緯度 = '大分県別府市上野口町1-15'" in message
    assert "rename the columns (for example to 住所)" in message
    assert_intact(sessions, database_url, before)


def test_a_csv_with_latitude_and_longitude_swapped_is_placed_right_with_a_warning(
    sessions: sessionmaker[Session], settings: Settings, database_url: str, tmp_path: Path
) -> None:
    csv = tmp_path / "swapped.csv"
    write_csv(csv, place_rows())
    swapped = [(name, lon, lat) for name, lat, lon in place_rows()]
    outcome, before = good_then_bad(
        sessions, settings, database_url, tmp_path, "swapped.csv", lambda: write_csv(csv, swapped)
    )
    (found,) = outcome.objects
    assert found.status == "updated"
    assert any(
        "緯度 and 経度 are swapped: 緯度 is over 90 in 3 of 3 rows" in w for w in found.warnings
    )
    lat = scalar(
        database_url, f"SELECT ST_Y(geom) FROM layers.{before.layer.id} ORDER BY fid LIMIT 1"
    )
    assert lat == pytest.approx(33.2846)


def test_a_zip_with_a_path_out_of_the_folder_is_refused(
    sessions: sessionmaker[Session], settings: Settings, database_url: str, tmp_path: Path
) -> None:
    parts = tmp_path / "parts"
    write_shapefile(parts / "places.shp")
    archive = tmp_path / "drop" / "places.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zipped:
        for part in parts.iterdir():
            zipped.write(part, part.name)

    def spoil() -> None:
        with zipfile.ZipFile(archive, "a") as zipped:
            zipped.writestr("../../escaped.csv", "a,b\n1,2\n")

    outcome, before = good_then_bad(
        sessions, settings, database_url, tmp_path / "drop", "places.zip", spoil
    )
    assert "'../../escaped.csv' would be written outside the folder" in message_of(
        outcome, "places.zip"
    )
    assert not (tmp_path / "escaped.csv").exists()
    assert_intact(sessions, database_url, before)


def test_a_zip_bomb_is_refused_before_it_expands(
    sessions: sessionmaker[Session], settings: Settings, database_url: str, tmp_path: Path
) -> None:
    parts = tmp_path / "parts"
    write_shapefile(parts / "places.shp")
    archive = tmp_path / "drop" / "places.zip"
    archive.parent.mkdir()

    def build(bomb: bool) -> None:
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            for part in parts.iterdir():
                zipped.write(part, part.name)
            if bomb:
                zipped.writestr("places.csv", b"0" * (64 * 1024 * 1024))

    build(bomb=False)
    outcome, before = good_then_bad(
        sessions, settings, database_url, tmp_path / "drop", "places.zip", lambda: build(bomb=True)
    )
    message = message_of(outcome, "places.zip")
    assert "the member 'places.csv' is compressed" in message and "looks like a zip bomb" in message
    assert_intact(sessions, database_url, before)


def test_a_file_over_the_size_limit_is_refused_without_reading_it(
    sessions: sessionmaker[Session], settings: Settings, database_url: str, tmp_path: Path
) -> None:
    csv = tmp_path / "big.csv"
    write_csv(csv, place_rows())

    def spoil() -> None:
        os.truncate(csv, 2 * 1024**3)  # sparse: 2 GB on paper, nothing on disk

    outcome, before = good_then_bad(
        sessions, settings, database_url, tmp_path, "big.csv", spoil, max_file_bytes=10 * 1024**2
    )
    message = message_of(outcome, "big.csv")
    assert "big.csv is 2.0 GB, over this source's limit of 10.0 MB (max_file_bytes)" in message
    assert_intact(sessions, database_url, before)


def test_the_size_limit_never_reads_the_big_file(
    sessions: sessionmaker[Session],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    big = tmp_path / "huge.geojson"
    with big.open("wb") as handle:
        handle.truncate(3 * 1024**3)
    real_open = Path.open
    opened: list[str] = []

    def watching_open(self: Path, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(self.name)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", watching_open)
    outcome = harvest(sessions, settings, source(sessions, tmp_path, max_file_bytes=100 * 1024**2))
    assert "huge.geojson is 3.0 GB, over this source's limit of 100.0 MB" in message_of(
        outcome, "huge.geojson"
    )
    assert "huge.geojson" not in opened


def test_a_geojson_with_mixed_geometry_types_loads_as_mixed_with_a_warning(
    sessions: sessionmaker[Session], settings: Settings, database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "parks.geojson"
    point = '{"type":"Feature","properties":{"名称":"%s"},"geometry":{"type":"Point","coordinates":[131.49,33.28]}}'
    polygon = (
        '{"type":"Feature","properties":{"名称":"公園"},"geometry":{"type":"Polygon",'
        '"coordinates":[[[131.48,33.27],[131.49,33.27],[131.49,33.28],[131.48,33.27]]]}}'
    )

    def write(*features: str) -> None:
        path.write_text('{"type":"FeatureCollection","features":[' + ",".join(features) + "]}")

    write(point % "A", point % "B")
    outcome, before = good_then_bad(
        sessions,
        settings,
        database_url,
        tmp_path,
        "parks.geojson",
        lambda: write(point % "A", point % "B", polygon),
    )
    (found,) = outcome.objects
    assert found.status == "updated"
    assert any("mix geometry types (2 Point, 1 Polygon)" in w for w in found.warnings)
    with session_scope(sessions) as session:
        layer = session.get(Layer, before.layer.id)
        assert layer is not None and (layer.geometry_type, layer.feature_count) == ("Geometry", 3)


def test_a_kml_with_an_external_entity_is_refused_before_gdal_reads_it(
    sessions: sessionmaker[Session], settings: Settings, database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "hinanjo.kml"
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    path.write_text(
        kml("".join(placemark(n, lon, lat) for n, lon, lat in PLACES)), encoding="utf-8"
    )
    evil = kml(
        "<Placemark><name>&xxe;</name><Point><coordinates>131.49,33.28</coordinates></Point></Placemark>",
        prolog=f'<!DOCTYPE kml [<!ENTITY xxe SYSTEM "file://{secret}">]>\n',
    )
    outcome, before = good_then_bad(
        sessions,
        settings,
        database_url,
        tmp_path,
        "hinanjo.kml",
        lambda: path.write_text(evil, encoding="utf-8"),
    )
    message = message_of(outcome, "hinanjo.kml")
    assert "hinanjo.kml: the file declares a DOCTYPE or entities" in message
    assert "it was not opened" in message
    assert_intact(sessions, database_url, before)
    assert (
        scalar(
            database_url,
            f"SELECT count(*) FROM layers.{before.layer.id} WHERE \"Name\" LIKE '%secret%'",
        )
        == 0
    )
