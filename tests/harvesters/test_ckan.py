"""The ckan kind: portal B harvests portal A over its CKAN API, and a recorded BODIK fixture."""

import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.datasets import delete_dataset, get_dataset, patch_dataset
from portal.catalog.departments import ensure_department
from portal.catalog.models import Dataset, Resource
from portal.catalog.schemas import DatasetUpdate
from portal.catalog.views import DatasetView
from portal.core.database import create_db_engine, make_session_factory, session_scope
from portal.core.errors import InvalidInput
from portal.core.principal import SYSTEM
from portal.core.settings import DEFAULT_DATABASE_URL, Settings, to_libpq_url
from portal.core.storage import LocalStorage
from portal.demo.catalog import publish_demo_catalog
from portal.demo.load import load_demo_city
from portal.geo.models import Layer
from portal.harvesters.kinds.ckan import CkanHarvester, filter_query, site_root
from portal.harvesters.kinds.ckan_mapping import closest_license
from portal.migrations import runner
from tests.conftest import LiveServer
from tests.harvest_support import HarvestOutcome, add_source, harvest
from tests.harvesters.test_http import Answer, LocalServer, Request

FIXTURES = Path(__file__).parent / "fixtures" / "bodik"
HTML = "<!DOCTYPE html><html lang='ja'><head><title>別府市オープンデータ</title></head></html>"


@dataclass
class Portal:
    """A portal on its own throwaway database (served over HTTP when it is a remote)."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    url: str = ""

    def harvest(self, source: str) -> HarvestOutcome:
        """Run a harvest job of this portal's source."""
        return harvest(self.sessions, self.settings, source)

    def datasets(self, source: str) -> dict[str, DatasetView]:
        """The active datasets a source created, by name."""
        with session_scope(self.sessions) as session:
            rows = session.execute(select(Dataset).where(Dataset.state == "active")).scalars()
            names = [d.name for d in rows if d.extras.get("harvest_source") == source]
            return {name: get_dataset(session, SYSTEM, name) for name in names}

    def dataset(self, name: str) -> DatasetView:
        """One dataset by name."""
        with session_scope(self.sessions) as session:
            return get_dataset(session, SYSTEM, name)

    def resources(self, dataset: str) -> list[Resource]:
        """A dataset's resources in order."""
        with session_scope(self.sessions) as session:
            rows = list(
                session.execute(
                    select(Resource)
                    .join(Dataset, Dataset.id == Resource.dataset_id)
                    .where(Dataset.name == dataset)
                    .order_by(Resource.position)
                ).scalars()
            )
            session.expunge_all()
        return rows

    def layers(self, dataset: str) -> list[Layer]:
        """The layers behind a dataset's layer resources."""
        with session_scope(self.sessions) as session:
            ids = [r.layer_id for r in self.resources(dataset) if r.layer_id]
            layers = [session.get(Layer, i) for i in ids]
            session.expunge_all()
        return [layer for layer in layers if layer is not None]


@contextmanager
def throwaway_portal(data_dir: Path, *, demo_root: Path | None = None) -> Iterator[Portal]:
    """A migrated database of its own; with `demo_root`, the demo city served over HTTP."""
    server = to_libpq_url(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    base = server.rpartition("/")[0]
    name = f"portal_test_{secrets.token_hex(4)}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    engine = None
    try:
        runner.upgrade(f"{base}/{name}")
        settings = Settings(env="test", database_url=f"{base}/{name}", data_dir=data_dir)
        engine = create_db_engine(settings)
        sessions = make_session_factory(engine)
        with session_scope(sessions) as session:
            ensure_department(session, slug="doboku", name="土木課", name_en="Civil Engineering")
        if demo_root is None:
            yield Portal(settings, engine, sessions)
            return
        code = settings.municipality_code
        load_demo_city(engine, sessions, demo_root, municipality_code=code)
        with session_scope(sessions) as session:
            publish_demo_catalog(
                session,
                LocalStorage(data_dir),
                demo_root,
                municipality_code=code,
                max_bytes=settings.max_upload_bytes,
            )
        with LiveServer(settings) as live:
            yield Portal(settings, engine, sessions, live.url)
    finally:
        if engine is not None:
            engine.dispose()
        with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def portal_a(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    with throwaway_portal(tmp_path_factory.mktemp("portal-a"), demo_root=demo_root) as portal:
        yield portal


@pytest.fixture(scope="module")
def portal_b(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    with throwaway_portal(tmp_path_factory.mktemp("portal-b")) as portal:
        yield portal


class BodikServer(LocalServer):
    """Serves the recorded BODIK package_search, paged by start/rows, and its files."""

    def __init__(self) -> None:
        super().__init__()
        self.mode = "ok"
        self.routes["/api/3/action/package_search"] = self.search
        for path in (FIXTURES / "files").iterdir():
            kind = "application/pdf" if path.suffix == ".pdf" else "text/csv"
            self.static(f"/files/{path.name}", path.read_bytes(), kind)
        self.static("/kanko/map", HTML, "text/html; charset=utf-8")

    def search(self, request: Request) -> Answer:
        if self.mode == "html":
            return 200, {"Content-Type": "text/html; charset=utf-8"}, HTML.encode()
        start, rows = int(request.query.get("start", 0)), int(request.query.get("rows", 10))
        if self.mode == "hang" and start > 0:
            return self.hang(10)
        text = (FIXTURES / "package_search.json").read_text(encoding="utf-8")
        document = json.loads(text.replace("{base}", self.url))
        results = sorted(document["result"]["results"], key=lambda p: p["id"])
        document["result"]["results"] = results[start : start + rows]
        return (
            200,
            {"Content-Type": "application/json;charset=utf-8"},
            json.dumps(document).encode(),
        )


@pytest.fixture
def bodik() -> Iterator[BodikServer]:
    with BodikServer() as server:
        yield server


def a_layers(portal_a: Portal) -> dict[str, int]:
    """Portal A's feature counts by dataset name (of its layer resources)."""
    counts = {}
    for name in ("road-ledger", "youto-chiiki", "barrier-free", "evacuation-space"):
        counts[name] = portal_a.layers(name)[0].feature_count
    counts["population-by-chocho-age"] = portal_a.layers("population-by-chocho-age")[
        0
    ].feature_count
    return counts


def test_organization_filter(portal_a: Portal, portal_b: Portal) -> None:
    add_source(portal_b.sessions, name="a-bosai", kind="ckan", url=portal_a.url,
               config={"organizations": ["bosai"], "name_prefix": "bosai-"})  # fmt: skip
    outcome = portal_b.harvest("a-bosai")
    assert (outcome.status, outcome.stats) == ("succeeded", {"created": 1})
    assert list(portal_b.datasets("a-bosai")) == ["bosai-evacuation-space"]
    # The portal's fq has no OR: the harvester falls back to one query per organization.
    add_source(portal_b.sessions, name="a-two", kind="ckan", url=portal_a.url,
               config={"organizations": ["bosai", "toshikeikaku"], "name_prefix": "two-",
                       "resources": "link"})  # fmt: skip
    outcome = portal_b.harvest("a-two")
    assert outcome.status == "succeeded", outcome.error
    assert sorted(portal_b.datasets("a-two")) == ["two-evacuation-space", "two-youto-chiiki"]


def test_tags_filter(portal_a: Portal, portal_b: Portal) -> None:
    add_source(portal_b.sessions, name="a-tags", kind="ckan", url=portal_a.url,
               config={"tags": ["用途地域"], "name_prefix": "tag-", "resources": "link"})  # fmt: skip
    outcome = portal_b.harvest("a-tags")
    assert outcome.status == "succeeded", outcome.error
    assert list(portal_b.datasets("a-tags")) == ["tag-youto-chiiki"]


def test_resources_as_links(portal_a: Portal, portal_b: Portal) -> None:
    add_source(portal_b.sessions, name="a-links", kind="ckan", url=portal_a.url + "/api/3/action",
               config={"organizations": ["doboku"], "resources": "link", "name_prefix": "l-"})  # fmt: skip
    outcome = portal_b.harvest("a-links")
    assert (outcome.status, outcome.stats) == ("succeeded", {"created": 1})
    resources = portal_b.resources("l-road-ledger")
    assert {r.kind for r in resources} == {"url"}
    assert all(r.url and r.url.startswith(portal_a.url) for r in resources)
    assert {r.format for r in resources} == {"SHP", "GEOJSON"}
    assert portal_b.layers("l-road-ledger") == []


def test_a_source_on_a_private_network_needs_the_allowance(
    portal_a: Portal, portal_b: Portal
) -> None:
    add_source(portal_b.sessions, name="a-private", kind="ckan", url=portal_a.url,
               private_network=False)  # fmt: skip
    outcome = portal_b.harvest("a-private")
    assert outcome.status == "failed"
    assert outcome.error == (
        "refused: 127.0.0.1 is a loopback address; "
        "ask a site admin to allow private networks for this source"
    )


@pytest.mark.parametrize(
    ("url", "config", "message"),
    [
        (
            "https://data.example.jp",
            {"rows": 5000},
            "rows: Input should be less than or equal to 1000",
        ),
        (
            "https://data.example.jp",
            {"resource": "link"},
            "unknown setting 'resource'; use one of:",
        ),
        (
            "https://data.example.jp",
            {"resources": "copy"},
            "resources: Input should be 'download' or 'link'",
        ),
        ("https://data.example.jp", {"organizations": ["防災 課"]}, "is not an organization name"),
        ("https://data.example.jp", {"name_prefix": "Beppu "}, "name_prefix: String should match"),
        ("ftp://data.example.jp", {}, "only http:// and https:// addresses can be harvested"),
    ],
)
def test_config_is_checked_on_save(url: str, config: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        CkanHarvester().validate_config(url, config)


def test_queries_and_licences() -> None:
    assert (
        site_root("https://data.bodik.jp/api/3/action/package_search?q=x")
        == "https://data.bodik.jp"
    )
    assert site_root("https://example.jp/ckan/") == "https://example.jp/ckan"
    assert filter_query("", ["a", "b"], ["防災"]) == '+organization:(a OR b) +tags:"防災"'
    assert filter_query("res_format:CSV", ["a"], []) == "res_format:CSV +organization:a"
    assert closest_license("CC-BY-2.1-JP", "クリエイティブ・コモンズ 表示 2.1 日本") == "cc-by-4.0"
    assert closest_license("cc-by-nc-4.0", "表示-非営利 4.0") == "cc-by-nc-4.0"
    assert closest_license("odc-pddl") == "cc-zero"
    assert closest_license("other-at", "その他 (帰属)") is None


def test_recorded_bodik_fixture(portal_b: Portal, bodik: BodikServer) -> None:
    add_source(portal_b.sessions, name="bodik", kind="ckan", url=bodik.url,
               config={"rows": 2, "name_prefix": "bodik-"})  # fmt: skip
    outcome = portal_b.harvest("bodik")
    assert (outcome.status, outcome.stats) == ("succeeded", {"created": 5}), outcome.objects
    assert bodik.hits["/api/3/action/package_search"] == 3
    datasets = portal_b.datasets("bodik")
    aed = datasets["bodik-442020-aed"]
    assert (aed.title, aed.license.id, aed.update_frequency) == (
        "AED設置箇所一覧",
        "cc-by-4.0",
        "annual",
    )
    assert aed.standard_dataset == "A-01" and aed.contact_name == "別府市 防災危機管理課"
    assert {"AED", "救急", "医療"} <= set(aed.tags)
    [layer] = portal_b.layers("bodik-442020-aed")  # a Shift_JIS CSV with 緯度/経度
    assert (layer.feature_count, layer.geometry_type) == (5, "Point")
    evacuation = datasets["bodik-442020-evacuation-space"]
    assert evacuation.extras["harvest_remote_license"] == "CC-BY-2.1-JP"
    assert evacuation.extras["harvest_remote_organization"] == "大分県別府市"
    kinds = sorted((r.kind, r.format) for r in portal_b.resources(evacuation.name))
    assert kinds == [("file", "CSV"), ("file", "PDF"), ("layer", "GEOJSON")]
    population = datasets["bodik-442020-population"]
    assert population.license.id == "pdl-1.0"
    assert [g.name for g in population.groups] == ["population-households"]
    assert (
        aed.groups == []
    )  # 健康・福祉 is not one of the portal's groups  # other-at is unknown here: the default
    [table] = portal_b.layers(population.name)
    assert (table.feature_count, table.geometry_type) == (2, None)
    [note] = [o for o in outcome.objects if o.remote_id.startswith("5e0d3a77")][0].warnings
    assert note == "licence 'other-at' is not one the portal knows; the default is used"
    [tourism] = portal_b.layers("bodik-442020-tourism")
    assert tourism.feature_count == 2
    # A dead link and a web page listed as resources stay links, with a note each.
    for name, title, note in (
        (
            "bodik-442020-public-toilet",
            "公衆トイレ一覧（平成31年度版）",
            "returned 404 Not Found; kept as a link",
        ),
        ("bodik-442020-tourism", "別府市観光マップ", "is a web page, not a file; kept as a link"),
    ):
        [link] = [r for r in portal_b.resources(name) if r.kind == "url"]
        assert link.name == title
        [remote_id] = [str(d.extras["harvest_remote_id"]) for n, d in datasets.items() if n == name]
        [warning] = [o.warnings for o in outcome.objects if o.remote_id == remote_id][0]
        assert warning.startswith(f"{title}: {bodik.url}/") and warning.endswith(note), warning
    again = portal_b.harvest("bodik")
    assert (again.status, again.stats) == ("succeeded", {"unchanged": 5})


def test_html_instead_of_the_api_fails_the_job(portal_b: Portal, bodik: BodikServer) -> None:
    bodik.mode = "html"
    add_source(portal_b.sessions, name="bodik-html", kind="ckan", url=bodik.url)
    outcome = portal_b.harvest("bodik-html")
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.startswith(f"{bodik.url}/api/3/action/package_search?")
    assert outcome.error.endswith(
        " returned HTML, not JSON: is this the address of a CKAN site "
        "(for example https://data.example.jp)?"
    )


def test_a_source_that_hangs_halfway_keeps_the_previous_harvest(
    portal_b: Portal, bodik: BodikServer
) -> None:
    add_source(portal_b.sessions, name="bodik-slow", kind="ckan", url=bodik.url,
               config={"rows": 2, "timeout": 1, "retries": 0, "resources": "link",
                       "name_prefix": "slow-"})  # fmt: skip
    first = portal_b.harvest("bodik-slow")
    assert (first.status, first.stats) == ("succeeded", {"created": 5})
    bodik.mode = "hang"  # the second page now answers after 10 s
    started = time.monotonic()
    second = portal_b.harvest("bodik-slow")
    assert second.status == "failed"
    assert second.error is not None
    assert re.fullmatch(
        rf"timed out after 1 s reading {re.escape(bodik.url)}/api/3/action/package_search\?\S*start=2\S*",
        second.error,
    ), second.error
    assert time.monotonic() - started < 8
    assert len(portal_b.datasets("bodik-slow")) == 5


def test_portal_b_harvests_portal_a(portal_a: Portal, portal_b: Portal) -> None:
    add_source(portal_b.sessions, name="portal-a", kind="ckan", url=portal_a.url,
               config={"rows": 2, "name_prefix": "a-"})  # fmt: skip
    started = time.monotonic()
    first = portal_b.harvest("portal-a")
    first_seconds = time.monotonic() - started
    assert (first.status, first.stats) == ("succeeded", {"created": 5}), first.objects
    datasets = portal_b.datasets("portal-a")
    assert sorted(datasets) == [
        "a-barrier-free", "a-evacuation-space", "a-population-by-chocho-age", "a-road-ledger",
        "a-youto-chiiki",
    ]  # fmt: skip
    for name, count in a_layers(portal_a).items():
        layers = portal_b.layers(f"a-{name}")
        assert [layer.feature_count for layer in layers] == [count], name
    evacuation = datasets["a-evacuation-space"]
    assert [g.name for g in evacuation.groups] == ["justice-safety-environment"]
    assert (evacuation.license.id, evacuation.standard_dataset) == ("pdl-1.0", "A-03")
    assert "避難場所" in evacuation.tags
    assert [r.kind for r in portal_b.resources("a-evacuation-space")] == ["file", "layer"]
    # The road ledger's original is a zipped Shapefile: its layer comes from A's GeoJSON export.
    roads = portal_b.resources("a-road-ledger")
    assert sorted((r.kind, r.format) for r in roads) == [("file", "SHP"), ("layer", "GEOJSON")]

    started = time.monotonic()
    second = portal_b.harvest("portal-a")
    second_seconds = time.monotonic() - started
    assert (second.status, second.stats) == ("succeeded", {"unchanged": 5})
    print(f"no-change re-harvest: {second_seconds / first_seconds:.1%} of the first run")  # noqa: T201

    with session_scope(portal_a.sessions) as session:
        patch_dataset(
            session, SYSTEM, "evacuation-space", DatasetUpdate(title="指定緊急避難場所（改訂）")
        )
        delete_dataset(session, SYSTEM, "barrier-free")
    third = portal_b.harvest("portal-a")
    assert (third.status, third.stats) == (
        "succeeded",
        {"updated": 1, "unchanged": 3, "deleted": 1},
    )
    assert [o.remote_id for o in third.by_status("updated")] == [
        str(evacuation.extras["harvest_remote_id"])
    ]
    after = portal_b.datasets("portal-a")
    assert after["a-evacuation-space"].title == "指定緊急避難場所（改訂）"
    assert "a-barrier-free" not in after
    [layer] = portal_b.layers("a-evacuation-space")
    assert layer.feature_count == a_layers(portal_a)["evacuation-space"]
