"""CKAN datastore_search over the layer tables: rows, filters, order, visibility and injection."""

import json
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from tests.api.ckan_support import catalog, error, result, suido
from tests.conftest import LiveServer
from tests.staff import Staff

__all__ = ["catalog", "suido"]


@pytest.fixture(scope="module")
def population_resource(http_module: httpx.Client, catalog: list[str]) -> str:
    dataset = result(http_module, "package_show", {"id": "population-by-chocho-age"})
    found = [r for r in dataset["resources"] if r["layer_id"] == "population"]
    assert found and found[0]["datastore_active"]
    return str(found[0]["id"])


@pytest.fixture(scope="module")
def http_module(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        yield client


def test_datastore_search_reads_the_table(http: httpx.Client, population_resource: str) -> None:
    page = result(http, "datastore_search", {"resource_id": population_resource})
    assert page["total"] > 0 and 0 < len(page["records"]) <= 100
    names = [f["id"] for f in page["fields"]]
    assert names[0] == "_id" and "町丁名" in names and "総人口" in names
    types = {f["id"]: f["type"] for f in page["fields"]}
    assert types["_id"] == "int" and types["総人口"] == "int4" and types["町丁名"] == "text"
    first = page["records"][0]
    assert page["_links"]["start"].startswith("/api/3/action/datastore_search?resource_id=")
    assert "offset=100" in page["_links"]["next"]

    district = first["町丁名"]
    filtered = result(
        http,
        "datastore_search",
        {"resource_id": population_resource, "filters": json.dumps({"町丁名": district})},
    )
    assert filtered["total"] >= 1
    assert all(r["町丁名"] == district for r in filtered["records"])
    by_post = result(
        http,
        "datastore_search",
        {"resource_id": population_resource, "filters": {"町丁名": [district]}, "limit": 1},
        post=True,
    )
    assert by_post["total"] == filtered["total"] and len(by_post["records"]) == 1

    searched = result(http, "datastore_search", {"resource_id": population_resource, "q": district})
    assert searched["total"] >= filtered["total"]

    ordered = result(
        http,
        "datastore_search",
        {
            "resource_id": population_resource,
            "sort": "総人口 desc",
            "fields": "町丁名,総人口",
            "limit": 5,
            "offset": 1,
        },
    )
    totals = [r["総人口"] for r in ordered["records"]]
    assert totals == sorted(totals, reverse=True) and len(totals) == 5
    assert set(ordered["records"][0]) == {"町丁名", "総人口"}


def test_datastore_search_refuses_unknown_columns_and_injection(
    http: httpx.Client, population_resource: str, database_url: str
) -> None:
    unknown = error(
        http,
        "datastore_search",
        {"resource_id": population_resource, "filters": json.dumps({"colour": "red"})},
        409,
    )
    assert "unknown column 'colour'" in unknown["message"]
    attack = '名称" ; DROP TABLE layers.population; --'
    injected = error(
        http,
        "datastore_search",
        {"resource_id": population_resource, "filters": {attack: 1}},
        409,
        post=True,
    )
    assert injected["__type"] == "Validation Error" and "unknown column" in injected["message"]
    value_attack = result(
        http,
        "datastore_search",
        {
            "resource_id": population_resource,
            "filters": {"町丁名": "x'; DROP TABLE layers.population; --"},
        },
        post=True,
    )
    assert value_attack["total"] == 0
    for params in (
        {"sort": f"{attack} desc"},
        {"fields": attack},
        {"q": json.dumps({attack: "x"})},
        {"filters": "[1, 2]"},
        {"limit": 32001},
        {"records_format": "csv"},
    ):
        error(http, "datastore_search", {"resource_id": population_resource, **params}, 409)
    with psycopg.connect(database_url) as connection:
        still = connection.execute("SELECT to_regclass('layers.population')").fetchone()
        table = connection.execute(
            "SELECT table_name FROM portal.layers WHERE id = 'population'"
        ).fetchone()
        assert still is not None and still[0] is not None
        assert table is not None
        rows = connection.execute(f'SELECT count(*) FROM layers."{table[0]}"').fetchone()
        assert rows is not None and rows[0] > 0


def test_datastore_search_hides_what_the_caller_may_not_see(
    http: httpx.Client, catalog: list[str], suido: Staff
) -> None:
    water = result(http, "package_show", {"id": "water-mains"}, token=suido.token)
    layer = next(r for r in water["resources"] if r["layer_id"] == "water_mains")
    hidden = error(http, "datastore_search", {"resource_id": layer["id"]}, 404)
    assert hidden["__type"] == "Not Found Error"
    own = result(http, "datastore_search", {"resource_id": layer["id"]}, token=suido.token)
    assert own["total"] > 0
    original = next(r for r in water["resources"] if not r["layer_id"])
    error(http, "datastore_search", {"resource_id": original["id"]}, 404, token=suido.token)
    error(http, "datastore_search", {}, 409)
