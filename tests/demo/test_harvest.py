import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.datasets import get_dataset
from portal.catalog.departments import department_id_by_slug
from portal.catalog.models import Dataset
from portal.catalog.sharing import dataset_access
from portal.core.database import session_scope
from portal.core.errors import InvalidInput
from portal.core.principal import ANONYMOUS, SYSTEM, Principal, Role, Visibility
from portal.core.settings import Settings
from portal.core.storage import LocalStorage
from portal.demo.catalog import publish_demo_catalog
from portal.demo.city import demo_files
from portal.demo.generator import generate_demo_city
from portal.demo.harvest import DemoHarvest, harvest_demo_city
from portal.demo.load import load_demo_city
from portal.geo.models import Layer
from portal.geo.registry import list_layers
from portal.harvesters.models import HarvestSource
from tests.demo.databases import own_database
from tests.harvest_support import add_source, harvest

DATASETS = {
    # name: (layer, department, visibility, title)
    "road-ledger": ("roads", "doboku", "public", "道路台帳（サンプル）"),
    "youto-chiiki": ("zoning", "toshikeikaku", "public", "用途地域（サンプル）"),
    "water-mains": ("water_mains", "suido", "department", "上水道管路（サンプル）"),
    "barrier-free": ("barriers", "fukushi", "public", "バリアフリー情報（サンプル）"),
    "evacuation-space": (
        "evacuation_sites",
        "bosai",
        "public",
        "指定緊急避難場所一覧（サンプル）",
    ),
    "population-by-chocho-age": ("population", "shimin", "public", "地域・年齢別人口（サンプル）"),
}


def _staff_of(sessions: sessionmaker[Session], department: str) -> Principal:
    with session_scope(sessions) as session:
        department_id = department_id_by_slug(session, department)
    return Principal(kind="session", user_id=1, memberships={department_id: Role.viewer})


def _statuses(harvests: list[DemoHarvest]) -> dict[str, str]:
    return {o.path: o.status for h in harvests for o in h.objects}


def _layer_versions(sessions: sessionmaker[Session]) -> dict[str, int]:
    layers = [row[0] for row in DATASETS.values()]
    with session_scope(sessions) as session:
        rows = session.execute(select(Layer.id, Layer.version).where(Layer.id.in_(layers)))
        return {row.id: row.version for row in rows}


# --- the session's demo city -------------------------------------------------------------


def test_each_department_folder_is_a_directory_source_that_harvested_its_files(
    demo_city: list[DemoHarvest], demo_root: Path, sessions: sessionmaker[Session]
) -> None:
    assert [h.source for h in demo_city] == [
        "demo-doboku", "demo-toshikeikaku", "demo-suido", "demo-fukushi", "demo-bosai",
        "demo-shimin",
    ]  # fmt: skip
    assert all(h.succeeded and h.error is None for h in demo_city)
    assert sorted(_statuses(demo_city)) == sorted(f.path for f in demo_files("442020"))
    with session_scope(sessions) as session:
        sources = session.execute(
            select(HarvestSource.name, HarvestSource.kind, HarvestSource.url, HarvestSource.title)
            .where(HarvestSource.name.like("demo-%"))
            .order_by(HarvestSource.name)
        ).all()
    assert [(name, kind) for name, kind, _, _ in sources] == sorted(
        (h.source, "directory") for h in demo_city
    )
    assert {url for _, _, url, _ in sources} == {
        str(demo_root.resolve() / h.department) for h in demo_city
    }
    assert all(title.endswith("（サンプル）") for _, _, _, title in sources)


def test_every_file_becomes_its_layer_with_the_sidecars_id_and_visibility(
    demo_city: list[DemoHarvest],
) -> None:
    found = {o.layer_id: o for h in demo_city for o in h.objects}
    assert set(found) == {row[0] for row in DATASETS.values()}
    assert found["roads"].source_crs == "EPSG:6670"
    assert found["water_mains"].visibility is Visibility.department
    assert found["water_mains"].shared_with == ("doboku",)
    assert all(o.shared_with == () for k, o in found.items() if k != "water_mains")
    assert found["evacuation_sites"].feature_count == 60
    assert found["population"].feature_count == 50
    assert all(o.feature_count for o in found.values())


def test_the_water_mains_stay_with_suido_and_doboku(
    demo_city: list[DemoHarvest], sessions: sessionmaker[Session]
) -> None:
    seen = {}
    for who in ("suido", "doboku", "fukushi"):
        principal = _staff_of(sessions, who)
        with session_scope(sessions) as session:
            seen[who] = {layer.id for layer in list_layers(session, principal)}
    with session_scope(sessions) as session:
        seen["anonymous"] = {layer.id for layer in list_layers(session, ANONYMOUS)}
    assert "water_mains" in seen["suido"] and "water_mains" in seen["doboku"]
    assert "water_mains" not in seen["fukushi"] and "water_mains" not in seen["anonymous"]
    assert {"roads", "zoning", "barriers", "evacuation_sites", "population"} <= seen["anonymous"]


def test_the_datasets_carry_the_sidecar_metadata_and_the_demos_resource_names(
    demo_city: list[DemoHarvest], sessions: sessionmaker[Session]
) -> None:
    for name, (layer_id, department, visibility, title) in DATASETS.items():
        with session_scope(sessions) as session:
            dataset = get_dataset(session, SYSTEM, name)
        assert (dataset.title, dataset.department.slug, dataset.visibility.value) == (
            title,
            department,
            visibility,
        )
        assert "サンプル" in dataset.tags and "サンプル" in dataset.notes
        assert dataset.extras["harvest_source"] == f"demo-{department}"
        kind = "表データ" if layer_id == "population" else "地図レイヤ"
        assert [(r.name, r.kind, r.layer_id) for r in dataset.resources] == [
            (f"{title}（元ファイル）", "file", None),
            (f"{title}（{kind}）", "layer", layer_id),
        ]
    with session_scope(sessions) as session:
        water = dataset_access(session, SYSTEM, "water-mains")
        evacuation = get_dataset(session, SYSTEM, "evacuation-space")
    assert water.shared_with == ["doboku"]
    assert evacuation.standard_dataset == "A-03" and evacuation.license.id == "pdl-1.0"
    assert {g.name for g in evacuation.groups} == {"justice-safety-environment"}


def test_a_second_harvest_reads_no_file_again_and_adds_nothing(
    demo_city: list[DemoHarvest],
    demo_root: Path,
    sessions: sessionmaker[Session],
    settings: Settings,
) -> None:
    before = _layer_versions(sessions)
    with session_scope(sessions) as session:
        datasets = session.execute(select(Dataset.name).order_by(Dataset.name)).scalars().all()
        sources = session.execute(select(HarvestSource.id)).scalars().all()
    again = harvest_demo_city(settings, sessions, demo_root)
    assert set(_statuses(again).values()) == {"unchanged"}
    assert all(o.skipped and o.layer_id for h in again for o in h.objects)
    assert _layer_versions(sessions) == before
    with session_scope(sessions) as session:
        assert session.execute(select(Dataset.name).order_by(Dataset.name)).scalars().all() == (
            datasets
        )
        assert session.execute(select(HarvestSource.id)).scalars().all() == sources


# --- a database of its own: an older demo, --force and a moved drop ----------------------


@dataclass
class OwnPortal:
    settings: Settings
    sessions: sessionmaker[Session]
    root: Path


@pytest.fixture(scope="module")
def own_portal(
    database_url: str, demo_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OwnPortal]:
    """A database of its own, holding the demo as an older `portal demo` left it."""
    data = tmp_path_factory.mktemp("own-data")
    with own_database(database_url, data) as (settings, sessions):
        engine = sessions.kw["bind"]
        code = settings.municipality_code
        load_demo_city(engine, sessions, demo_root, municipality_code=code)
        with session_scope(sessions) as session:
            publish_demo_catalog(
                session,
                LocalStorage(data),
                demo_root,
                municipality_code=code,
                max_bytes=settings.max_upload_bytes,
            )
        yield OwnPortal(settings, sessions, demo_root)


def _names(sessions: sessionmaker[Session]) -> list[str]:
    with session_scope(sessions) as session:
        return list(session.execute(select(Dataset.name).order_by(Dataset.name)).scalars())


def test_datasets_an_older_demo_published_directly_are_taken_over_not_duplicated(
    own_portal: OwnPortal,
) -> None:
    names = _names(own_portal.sessions)
    assert names == sorted(DATASETS)
    before = _layer_versions(own_portal.sessions)
    harvests = harvest_demo_city(own_portal.settings, own_portal.sessions, own_portal.root)
    assert all(h.succeeded for h in harvests), [(h.source, h.objects) for h in harvests]
    assert set(_statuses(harvests).values()) == {"updated"}
    assert _names(own_portal.sessions) == names
    after = _layer_versions(own_portal.sessions)
    assert all(after[layer] == version + 1 for layer, version in before.items())
    with session_scope(own_portal.sessions) as session:
        dataset = get_dataset(session, SYSTEM, "road-ledger")
    # A reloaded original goes after the layer, as every harvested update puts it.
    assert sorted(r.name for r in dataset.resources) == [
        "道路台帳（サンプル）（元ファイル）",
        "道路台帳（サンプル）（地図レイヤ）",
    ]


def test_force_reloads_every_file_and_the_next_run_skips_them_again(
    own_portal: OwnPortal,
) -> None:
    before = _layer_versions(own_portal.sessions)
    forced = harvest_demo_city(
        own_portal.settings, own_portal.sessions, own_portal.root, force=True
    )
    assert set(_statuses(forced).values()) == {"updated"}
    assert _layer_versions(own_portal.sessions) == {k: v + 1 for k, v in before.items()}
    again = harvest_demo_city(own_portal.settings, own_portal.sessions, own_portal.root)
    assert set(_statuses(again).values()) == {"unchanged"}
    assert _names(own_portal.sessions) == sorted(DATASETS)


def test_a_moved_drop_repoints_the_sources_and_reads_nothing_again(
    own_portal: OwnPortal, tmp_path: Path
) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(own_portal.root, moved)
    before = _layer_versions(own_portal.sessions)
    harvests = harvest_demo_city(own_portal.settings, own_portal.sessions, moved)
    assert set(_statuses(harvests).values()) == {"unchanged"}
    assert _layer_versions(own_portal.sessions) == before
    with session_scope(own_portal.sessions) as session:
        urls = set(session.execute(select(HarvestSource.url)).scalars())
    assert urls == {str(moved.resolve() / h.department) for h in harvests}


def test_a_regenerated_drop_is_unchanged_content_so_nothing_reloads(
    own_portal: OwnPortal, tmp_path: Path
) -> None:
    fresh = tmp_path / "fresh"
    generate_demo_city(fresh, sidecars=True)
    before = _layer_versions(own_portal.sessions)
    harvests = harvest_demo_city(own_portal.settings, own_portal.sessions, fresh)
    assert set(_statuses(harvests).values()) == {"unchanged"}
    assert _layer_versions(own_portal.sessions) == before


# --- sidecar layer ids cannot take over another dataset's layer ---------------------------


def _csv_with_sidecar(folder: Path, sidecar: str) -> None:
    folder.mkdir(parents=True)
    (folder / "places.csv").write_text("名称,緯度,経度\r\n別府駅,33.2794,131.5007\r\n", "utf-8")
    (folder / "places.meta.yaml").write_text(sidecar, "utf-8")


@pytest.mark.parametrize(
    ("department", "message"),
    [
        ("fukushi", "layer id 'roads' belongs to another department's layer"),
        ("doboku", "layer id 'roads' is already the layer of dataset 'road-ledger'"),
    ],
)
def test_a_sidecar_cannot_load_over_the_layer_of_another_department_or_dataset(
    demo_city: list[DemoHarvest],
    sessions: sessionmaker[Session],
    settings: Settings,
    tmp_path: Path,
    department: str,
    message: str,
) -> None:
    _csv_with_sidecar(tmp_path / "drop", "title: 乗っ取り\nlayer_id: roads\n")
    name = f"claim-{department}"
    add_source(
        sessions,
        name=name,
        kind="directory",
        url=str(tmp_path / "drop"),
        department=department,
        visibility=Visibility.department,
        config={"name_prefix": name},
    )
    before = _layer_versions(sessions)
    outcome = harvest(sessions, settings, name)
    assert outcome.status == "failed"
    [failed] = outcome.objects
    assert failed.status == "failed" and failed.dataset_id is None
    assert failed.message == f"{message}; choose another layer_id in the sidecar"
    assert _layer_versions(sessions) == before


def test_a_layer_id_names_one_layer_and_must_be_a_valid_id(
    demo_city: list[DemoHarvest],
    sessions: sessionmaker[Session],
    settings: Settings,
    tmp_path: Path,
) -> None:
    drop = tmp_path / "drop"
    _csv_with_sidecar(drop, "layer_id: Roads!\n")
    frame = gpd.GeoDataFrame({"名称": ["別府駅"]}, geometry=[shapely.Point(131.5, 33.28)], crs=4326)
    for layer in ("stations", "stops"):
        pyogrio.write_dataframe(frame, drop / "two.gpkg", layer=layer, append=layer == "stops")
    (drop / "two.meta.yaml").write_text("layer_id: transit\n", "utf-8")
    add_source(
        sessions,
        name="layer-id-checks",
        kind="directory",
        url=str(drop),
        visibility=Visibility.department,
        config={"name_prefix": "layer-id-checks"},
    )
    outcome = harvest(sessions, settings, "layer-id-checks")
    messages = {o.remote_id: o.message or "" for o in outcome.by_status("failed")}
    assert messages["two.gpkg"] == (
        "two.gpkg: layer_id 'transit' names one layer, but the file holds 2; remove layer_id "
        "from its sidecar, or split the file"
    )
    assert "layer_id: 'Roads!' must start with a letter" in messages["places.csv"]


def test_a_bare_drop_is_refused_before_any_source_is_registered(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    generate_demo_city(tmp_path / "bare")
    with session_scope(sessions) as session:
        before = session.execute(select(HarvestSource.id)).scalars().all()
    with pytest.raises(InvalidInput, match="road_ledger.meta.yaml is missing: without its sidecar"):
        harvest_demo_city(settings, sessions, tmp_path / "bare")
    with pytest.raises(InvalidInput, match=r"road_ledger.shp is missing; generate the drop first"):
        harvest_demo_city(settings, sessions, tmp_path / "nothing")
    with session_scope(sessions) as session:
        assert session.execute(select(HarvestSource.id)).scalars().all() == before
