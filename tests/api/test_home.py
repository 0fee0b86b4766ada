import re

import httpx
import psycopg
import pytest

from portal.demo.load import DemoLoad


@pytest.fixture(autouse=True)
def loaded(demo_city: list[DemoLoad]) -> list[DemoLoad]:
    return demo_city


def _counts(html: str) -> dict[str, int]:
    rows = re.findall(r'data-layer="([a-z_]+)".*?data-count="(\d+)"', html, re.S)
    return {layer: int(count) for layer, count in rows}


def test_home_lists_the_six_departments_in_japanese(http: httpx.Client) -> None:
    response = http.get("/")
    assert response.status_code == 200
    assert '<html lang="ja">' in response.text
    for name in ("土木課", "都市計画課", "上下水道局", "福祉課", "防災危機管理課", "市民課"):
        assert name in response.text
    assert "別府市 オープンデータ・統合型GISポータル" in response.text


def test_home_shows_public_layers_with_their_feature_counts(
    http: httpx.Client, database_url: str
) -> None:
    counts = _counts(http.get("/").text)
    with psycopg.connect(database_url) as connection:
        expected = {
            layer: connection.execute(f"SELECT count(*) FROM layers.{layer}").fetchone()[0]  # type: ignore[index]
            for layer in counts
        }
    assert counts == expected
    assert {"roads", "zoning", "barriers", "evacuation_sites", "population"} <= set(counts)
    assert "water_mains" not in counts
    assert all(count > 0 for count in counts.values())


def test_the_department_only_water_mains_are_not_shown_to_anonymous_visitors(
    http: httpx.Client,
) -> None:
    html = http.get("/").text
    assert "water_mains" not in html
    assert "上水道管路" not in html


def test_the_english_switch_translates_the_page_and_is_remembered(http: httpx.Client) -> None:
    response = http.get("/?lang=en")
    assert '<html lang="en">' in response.text
    assert "Beppu City Open Data and Integrated GIS Portal" in response.text
    assert "Civil Engineering Division" in response.text
    assert "lang=en" in response.headers["set-cookie"]
    again = http.get("/")
    assert '<html lang="en">' in again.text
    back = http.get("/?lang=ja")
    assert '<html lang="ja">' in back.text


def test_pages_load_no_assets_from_other_hosts(http: httpx.Client) -> None:
    html = http.get("/").text
    assert not re.search(r'(src|href)="(https?:)?//', html)
    css = http.get("/static/portal.css")
    assert css.status_code == 200


def test_message_catalogs_have_the_same_keys() -> None:
    from portal.web.i18n import catalog

    assert set(catalog("ja")) == set(catalog("en"))
