import json
import secrets
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.datasets import create_dataset, delete_dataset, list_dataset_names
from portal.catalog.records import (
    RecordPage,
    catalog_collection,
    check_bbox,
    get_record,
    parse_bbox,
    search_records,
)
from portal.catalog.schemas import DatasetCreate
from portal.core.database import session_scope
from portal.core.errors import InvalidInput, NotFound
from portal.core.principal import ANONYMOUS, SYSTEM, Principal
from portal.core.tokens import authenticate_token
from portal.demo.load import DemoLoad
from tests.staff import make_staff

BASE = "https://opendata.example.jp"
BEPPU = (131.3, 33.2, 131.7, 33.45)
SAPPORO = (141.2, 42.9, 141.5, 43.2)
SPATIAL = {"road-ledger", "youto-chiiki", "barrier-free", "evacuation-space"}


@pytest.fixture(autouse=True)
def loaded(demo_city: list[DemoLoad]) -> list[DemoLoad]:
    return demo_city


@pytest.fixture(scope="module")
def suido(sessions: sessionmaker[Session], demo_city: list[DemoLoad]) -> Principal:
    staff = make_staff(sessions, department="suido")
    with sessions() as session:
        return authenticate_token(session, staff.token, ip=None)


def search(session: Session, principal: Principal = ANONYMOUS, /, **given: Any) -> RecordPage:
    arguments: dict[str, Any] = {
        "q": None,
        "bbox": None,
        "datetime_range": None,
        "limit": 100,
        "offset": 0,
        "base_url": BASE,
    }
    return search_records(session, principal, **(arguments | given))


def ids(page: RecordPage) -> list[str]:
    return [record["id"] for record in page.records]


def test_searching_for_hinan_finds_the_evacuation_space_first(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as session:
        page = search(session, q="避難")
    assert ids(page)[0] == "evacuation-space"
    assert page.number_returned == len(page.records) == page.number_matched
    assert page.records[0]["properties"]["title"] == "指定緊急避難場所一覧（サンプル）"


def test_a_bbox_around_beppu_finds_the_spatial_datasets_and_a_far_one_none(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as session:
        beppu = search(session, bbox=BEPPU)
        sapporo = search(session, bbox=SAPPORO)
    assert set(ids(beppu)) >= SPATIAL
    assert "population-by-chocho-age" not in ids(beppu)
    assert all(record["geometry"]["type"] == "Polygon" for record in beppu.records)
    assert (sapporo.records, sapporo.number_matched, sapporo.number_returned) == ([], 0, 0)


def test_anonymous_never_sees_or_counts_the_department_only_water_mains(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as session:
        everything = search(session, limit=1000)
        by_word = search(session, q="上水道")
        public = list_dataset_names(session, ANONYMOUS)
        with pytest.raises(NotFound) as hidden:
            get_record(session, ANONYMOUS, "water-mains", base_url=BASE)
        with pytest.raises(NotFound) as missing:
            get_record(session, ANONYMOUS, "no-such-dataset", base_url=BASE)
    assert "water-mains" not in ids(everything)
    assert everything.number_matched == len(public)
    assert (by_word.records, by_word.number_matched) == ([], 0)
    assert str(hidden.value) == "dataset 'water-mains' not found"
    assert str(missing.value) == "dataset 'no-such-dataset' not found"


def test_suido_staff_find_and_read_the_water_mains_record(
    sessions: sessionmaker[Session], suido: Principal
) -> None:
    with session_scope(sessions) as session:
        found = search(session, suido, q="上水道")
        anonymous_count = search(session, limit=1000).number_matched
        staff_count = search(session, suido, limit=1000).number_matched
        record = get_record(session, suido, "water-mains", base_url=BASE)
    assert ids(found) == ["water-mains"]
    assert staff_count == anonymous_count + 1
    assert record["properties"]["contacts"][0]["organization"] == "上下水道局"
    enclosures = [link["href"] for link in record["links"] if link["rel"] == "enclosure"]
    assert f"{BASE}/download/water_mains.geojson" in enclosures


def test_paging_returns_every_public_record_exactly_once(sessions: sessionmaker[Session]) -> None:
    seen: list[str] = []
    with session_scope(sessions) as session:
        public = list_dataset_names(session, ANONYMOUS)
        offset = 0
        while True:
            page = search(session, limit=2, offset=offset)
            assert page.number_matched == len(public)
            if not page.records:
                break
            seen += ids(page)
            offset += 2
    assert len(seen) == len(set(seen))
    assert sorted(seen) == sorted(public)


def test_a_record_carries_the_dataset_metadata_and_its_links(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as session:
        record = get_record(
            session, ANONYMOUS, "evacuation-space", base_url=BASE, municipality_name="別府市"
        )
    properties = record["properties"]
    assert (record["id"], record["type"], record["time"]) == ("evacuation-space", "Feature", None)
    ring = record["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and 131 < ring[0][0] < 132 and 33 < ring[0][1] < 34
    assert properties["type"] == "dataset"
    assert properties["title_en"] == "Designated evacuation sites (sample)"
    assert properties["description"].startswith("指定緊急避難場所の一覧（サンプル）")
    assert set(properties["keywords"]) >= {"避難場所", "防災", "自治体標準オープンデータセット"}
    assert properties["language"]["code"] == "ja"
    assert properties["themes"][0] == {
        "scheme": f"{BASE}/group",
        "concepts": [
            {
                "id": "justice-safety-environment",
                "title": properties["themes"][0]["concepts"][0]["title"],
                "url": f"{BASE}/group/justice-safety-environment",
            }
        ],
    }
    assert [c["id"] for c in properties["themes"][1]["concepts"]] == ["JUST", "ENVI"]
    assert properties["contacts"][0] == {
        "identifier": "bosai",
        "organization": "防災危機管理課",
        "links": [
            {
                "href": f"{BASE}/organization/bosai",
                "rel": "about",
                "type": "text/html",
                "title": "防災危機管理課",
            }
        ],
        "roles": ["publisher"],
    }
    assert properties["license"] == "other"
    assert properties["rights"] == (
        f"出典：別府市 防災危機管理課（{BASE}/dataset/evacuation-space）、PDL1.0"
    )
    assert {"name": "GeoJSON", "mediaType": "application/geo+json"} in properties["formats"]
    assert {"name": "CSV", "mediaType": "text/csv"} in properties["formats"]
    rels = {(link["rel"], link["href"]) for link in record["links"]}
    assert rels >= {
        ("self", f"{BASE}/ogc/collections/catalog/items/evacuation-space"),
        ("alternate", f"{BASE}/dataset/evacuation-space"),
        ("alternate", f"{BASE}/dataset/evacuation-space.ttl"),
        ("collection", f"{BASE}/ogc/collections/catalog"),
        ("license", "https://www.digital.go.jp/resources/open_data/public_data_license_v1.0"),
        ("enclosure", f"{BASE}/download/evacuation_sites.geojson"),
    }
    files = [link for link in record["links"] if link["rel"] == "enclosure"]
    assert any("/resource/" in link["href"] and link["length"] > 0 for link in files)
    assert "指定緊急避難場所" in json.dumps(record, ensure_ascii=False)


@pytest.fixture
def surveyed(sessions: sessionmaker[Session]) -> Iterator[str]:
    """A public dataset covering fiscal year 2020, withdrawn afterwards."""
    name = f"survey-{secrets.token_hex(3)}"
    with session_scope(sessions) as session:
        create_dataset(
            session,
            SYSTEM,
            DatasetCreate(
                name=name,
                title="令和2年度 通行量調査",
                department="doboku",
                tags=["通行量"],
                temporal_start=date(2020, 4, 1),
                temporal_end=date(2021, 3, 31),
                contact_name="道路係",
                contact_email="doro@city.example.jp",
                license_id="cc-by-4.0",
            ),
        )
    yield name
    with session_scope(sessions) as session:
        delete_dataset(session, SYSTEM, name)


def test_datetime_matches_temporal_coverage_else_the_modification_time(
    sessions: sessionmaker[Session], surveyed: str
) -> None:
    june_2020 = (datetime(2020, 6, 1, tzinfo=UTC), datetime(2020, 6, 30, tzinfo=UTC))
    with session_scope(sessions) as session:
        in_2020 = search(session, datetime_range=june_2020)
        since_2022 = search(session, datetime_range=(datetime(2022, 1, 1), None))
        until_2000 = search(session, datetime_range=(None, datetime(2000, 1, 1, tzinfo=UTC)))
        last_day = search(session, datetime_range=(datetime(2021, 3, 31, 14, 59), None))
        after_it = search(session, datetime_range=(datetime(2021, 3, 31, 15, 0), None))
        record = get_record(session, ANONYMOUS, surveyed, base_url=BASE)
        public = list_dataset_names(session, ANONYMOUS)
        collection = catalog_collection(session, ANONYMOUS, base_url=BASE)
    assert ids(in_2020) == [surveyed]
    assert surveyed not in ids(since_2022)
    assert since_2022.number_matched == len(public) - 1
    assert until_2000.number_matched == 0
    assert surveyed in ids(last_day) and surveyed not in ids(after_it)
    assert record["time"] == {"interval": ["2020-04-01", "2021-03-31"]}
    assert collection["extent"]["temporal"]["interval"][0][0] == "2020-04-01"
    assert record["properties"]["license"] == "CC-BY-4.0"
    assert record["properties"]["contacts"][1] == {
        "name": "道路係",
        "organization": "土木課",
        "roles": ["pointOfContact"],
        "emails": [{"value": "doro@city.example.jp"}],
    }


def test_datetime_paging_counts_only_the_matches(
    sessions: sessionmaker[Session], surveyed: str
) -> None:
    since_2022 = (datetime(2022, 1, 1, tzinfo=UTC), None)
    with session_scope(sessions) as session:
        everything = search(session, datetime_range=since_2022)
        second = search(session, datetime_range=since_2022, limit=2, offset=2)
    assert ids(second) == ids(everything)[2:4]
    assert second.number_matched == everything.number_matched


def test_the_collection_describes_the_visible_catalog(
    sessions: sessionmaker[Session], suido: Principal
) -> None:
    with session_scope(sessions) as session:
        collection = catalog_collection(session, ANONYMOUS, base_url=BASE)
        records = search(session, limit=1000).records
        staff = catalog_collection(session, suido, base_url=BASE)
    assert (collection["id"], collection["itemType"]) == ("catalog", "record")
    assert collection["title"] == "データカタログ"
    rings = [r["geometry"]["coordinates"][0] for r in records if r["geometry"]]
    xs = [x for ring in rings for x, _ in ring]
    ys = [y for ring in rings for _, y in ring]
    expected = [min(xs), min(ys), max(xs), max(ys)]
    assert collection["extent"]["spatial"]["bbox"][0] == pytest.approx(expected)
    start, end = collection["extent"]["temporal"]["interval"][0]
    assert start is not None and end is not None
    assert {link["rel"] for link in collection["links"]} >= {"self", "items"}
    assert staff["extent"]["spatial"]["bbox"][0][0] <= expected[0]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"limit": 0}, "limit must be between 1 and 1000, got 0"),
        ({"limit": -5}, "limit must be between 1 and 1000, got -5"),
        ({"limit": 10**9}, "limit must be between 1 and 1000, got 1000000000"),
        ({"offset": -1}, "offset must be between 0 and 10,000,000, got -1"),
        (
            {"bbox": (131.7, 33.2, 131.3, 33.45)},
            "bbox must have -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90 "
            "(degrees, WGS 84); got 131.7,33.2,131.3,33.45",
        ),
        (
            {"datetime_range": (datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 4, 1))},
            "datetime must not end before it starts; got 2024-05-01T00:00:00Z/2024-04-01T00:00:00Z",
        ),
    ],
)
def test_bad_search_parameters_are_refused_with_the_allowed_range(
    sessions: sessionmaker[Session], given: dict[str, object], message: str
) -> None:
    with session_scope(sessions) as session, pytest.raises(InvalidInput) as refused:
        search(session, **given)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "131.4,33.2,131.6",
            "bbox must be minx,miny,maxx,maxy in degrees (WGS 84 longitude and latitude), "
            "for example 131.4,33.2,131.6,33.4; got '131.4,33.2,131.6'",
        ),
        (
            "131.4,33.2,east,33.4",
            "bbox must be minx,miny,maxx,maxy in degrees (WGS 84 longitude and latitude), "
            "for example 131.4,33.2,131.6,33.4; got '131.4,33.2,east,33.4'",
        ),
        (
            "131.4,33.2,131.6,nan",
            "bbox must be minx,miny,maxx,maxy in degrees (WGS 84 longitude and latitude), "
            "for example 131.4,33.2,131.6,33.4; got 131.4,33.2,131.6,nan",
        ),
        (
            "131.4,95,131.6,96",
            "bbox must have -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90 "
            "(degrees, WGS 84); got 131.4,95,131.6,96",
        ),
    ],
)
def test_malformed_bbox_text_is_refused_with_an_example(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_bbox(text)
    assert str(refused.value) == message


def test_bbox_text_is_parsed_in_two_and_three_dimensions() -> None:
    assert parse_bbox("131.3,33.2,131.7,33.45") == BEPPU
    assert parse_bbox("131.3,33.2,0,131.7,33.45,100") == BEPPU
    assert parse_bbox("") is None and parse_bbox(None) is None
    assert check_bbox(BEPPU) == BEPPU
