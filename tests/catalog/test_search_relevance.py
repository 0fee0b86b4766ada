"""Search relevance over the demo city and real municipal files, all harvested from folders.

The catalog lives in a database of this module's own: the session's catalog gains public
datasets from other tests (a harvested 避難所 layer, an AED list…) that rightly compete for
the same queries, so exact top results could only be asserted there by ignoring them.
"""

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.departments import department_id_by_slug, ensure_department
from portal.catalog.search import DatasetQuery, search_datasets
from portal.core.database import session_scope
from portal.core.principal import ANONYMOUS, Principal, Role
from portal.core.settings import Settings
from portal.demo.harvest import harvest_demo_city
from tests.demo.databases import own_database
from tests.harvest_support import add_source, harvest

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
pytestmark = pytest.mark.skipif(
    not REAL.is_dir(), reason="shared/data/real is not beside the repository"
)

DEMO = {
    "road-ledger",
    "youto-chiiki",
    "barrier-free",
    "evacuation-space",
    "population-by-chocho-age",
}
# What a data steward writes beside the real files; the two smartmap folders keep only the
# config.yml and attributes.csv they were published with.
STEWARD_SIDECAR = """\
defaults:
  license_id: cc-by-4.0
files:
  yaizu_evacuation_space_utf8.csv:
    name: yaizu-evacuation-space
    title: 焼津市 指定緊急避難場所一覧
    title_en: Yaizu designated evacuation sites
    tags: [避難場所, 防災, 焼津市]
  yaizu_public_facilities_utf8bom.csv:
    name: yaizu-public-facilities
    title: 焼津市 公共施設一覧
    tags: [公共施設, 焼津市]
  yaizu_public_toilet_utf8.csv:
    name: yaizu-public-toilets
    title: 焼津市 公衆トイレ一覧
    title_en: Yaizu public toilets
    tags: [公衆トイレ, 焼津市]
  yaizu_care_facilities_cp932.csv:
    name: yaizu-care-facilities
    title: 焼津市 要配慮者利用施設一覧
    tags: [要配慮者利用施設, 防災, 焼津市]
  takamatsu_population_by_chocho_age_202303_utf8bom.csv:
    name: takamatsu-population
    title: 高松市 地域・年齢別人口（2023年3月1日現在）
    tags: [人口, 世帯, 高松市]
"""
REAL_NAMES = {
    "yaizu-evacuation-space",
    "yaizu-public-facilities",
    "yaizu-public-toilets",
    "yaizu-care-facilities",
    "takamatsu-population",
    "real-yaizu-youto-1jukyo",
    "real-yaizu-cultural-properties",
}
EVACUATION = {"evacuation-space", "yaizu-evacuation-space"}
POPULATION = {"population-by-chocho-age", "takamatsu-population"}

# query: the datasets that must come first, in any order among themselves
EXPECTED_TOP: dict[str, set[str]] = {
    "避難所": EVACUATION,
    "ひなん": EVACUATION,
    "ヒナン": EVACUATION,
    "避難場所": EVACUATION,
    "evacuation": EVACUATION,
    "焼津 避難": {"yaizu-evacuation-space"},
    "用途地域": {"youto-chiiki"},
    "Zoning": {"youto-chiiki"},
    "第一種住居地域": {"real-yaizu-youto-1jukyo"},
    "都市計画": {"youto-chiiki", "real-yaizu-youto-1jukyo"},
    "道路": {"road-ledger"},
    "道路台帳": {"road-ledger"},
    "人口": POPULATION,
    "世帯": POPULATION,
    "高松 人口": {"takamatsu-population"},
    "バリアフリー": {"barrier-free"},
    "ﾊﾞﾘｱﾌﾘｰ": {"barrier-free"},
    "ｂａｒｒｉｅｒ": {"barrier-free"},
    "車いす": {"barrier-free"},
    "トイレ": {"yaizu-public-toilets"},
    "公衆トイレ": {"yaizu-public-toilets"},
    "toilets": {"yaizu-public-toilets"},
    "文化財": {"real-yaizu-cultural-properties"},
    "公共施設": {"yaizu-public-facilities"},
    "要配慮者": {"yaizu-care-facilities"},
    "サンプル": DEMO,
}


@dataclass
class Catalog:
    sessions: sessionmaker[Session]
    settings: Settings


@pytest.fixture(scope="module")
def catalog(
    database_url: str, demo_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Catalog]:
    """The demo city and the real files, each harvested from its folder into one catalog."""
    drop = tmp_path_factory.mktemp("real-drop")
    for path in REAL.iterdir():
        if path.is_dir():
            shutil.copytree(path, drop / path.name, copy_function=shutil.copyfile)
        elif path.suffix != ".md":
            shutil.copyfile(path, drop / path.name)
    (drop / "meta.yaml").write_text(STEWARD_SIDECAR, encoding="utf-8")
    with own_database(database_url, tmp_path_factory.mktemp("relevance-data")) as (
        settings,
        sessions,
    ):
        demo = harvest_demo_city(settings, sessions, demo_root)
        assert all(h.succeeded for h in demo), [(h.source, h.objects) for h in demo]
        with session_scope(sessions) as session:
            ensure_department(
                session,
                slug="real-files",
                name="他市の公開データ（実ファイル）",
                name_en="Real files of other cities",
            )
        add_source(
            sessions,
            name="real-files",
            kind="directory",
            url=str(drop),
            department="real-files",
            config={"name_prefix": "real"},
        )
        outcome = harvest(sessions, settings, "real-files")
        assert outcome.status == "succeeded", [(o.remote_id, o.message) for o in outcome.objects]
        yield Catalog(sessions, settings)


def _search(catalog: Catalog, query: str, principal: Principal = ANONYMOUS) -> list[str]:
    with session_scope(catalog.sessions) as session:
        result = search_datasets(session, principal, DatasetQuery(q=query, rows=50))
    return [dataset.name for dataset in result.datasets]


def test_the_catalog_holds_the_public_demo_and_every_real_file(catalog: Catalog) -> None:
    assert set(_search(catalog, "")) == DEMO | REAL_NAMES


@pytest.mark.parametrize(("query", "expected"), EXPECTED_TOP.items())
def test_the_expected_datasets_rank_first(catalog: Catalog, query: str, expected: set[str]) -> None:
    names = _search(catalog, query)
    assert set(names[: len(expected)]) == expected, names


def test_sample_data_is_never_mixed_up_with_the_real_files(catalog: Catalog) -> None:
    assert set(_search(catalog, "サンプル")) == DEMO
    # The smartmap folders say only 文化財マップ and 都市計画図, not which city published them.
    assert set(_search(catalog, "焼津市")) == {
        "yaizu-evacuation-space",
        "yaizu-public-facilities",
        "yaizu-public-toilets",
        "yaizu-care-facilities",
    }


def test_water_mains_are_found_only_by_the_departments_they_are_shared_with(
    catalog: Catalog,
) -> None:
    with session_scope(catalog.sessions) as session:
        ids = {slug: department_id_by_slug(session, slug) for slug in ("suido", "doboku", "bosai")}
    staff = {
        slug: Principal(kind="session", user_id=1, memberships={i: Role.viewer})
        for slug, i in ids.items()
    }
    assert _search(catalog, "水道") == []
    assert _search(catalog, "水道", staff["bosai"]) == []
    assert _search(catalog, "水道", staff["suido"])[:1] == ["water-mains"]
    assert _search(catalog, "上水道", staff["doboku"])[:1] == ["water-mains"]


@pytest.mark.parametrize("query", ["AED", "ＡＥＤ", "ロケット", "避難 給食"])
def test_queries_without_a_matching_dataset_find_nothing(catalog: Catalog, query: str) -> None:
    assert _search(catalog, query) == []
