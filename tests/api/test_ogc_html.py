"""The HTML pages of /ogc (pygeoapi with the portal's templates) over real HTTP and in Chromium."""

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pygeoapi
import pytest
from pygeoapi.util import render_j2_template
from sqlalchemy import delete, update
from sqlalchemy.orm import Session, sessionmaker

from portal.api.ogc.html import TEMPLATES, WORLD, build_config
from portal.catalog.datasets import create_dataset
from portal.catalog.models import Dataset
from portal.catalog.schemas import DatasetCreate
from portal.core.database import session_scope
from portal.core.principal import SYSTEM
from portal.core.settings import Settings
from portal.geo.models import Layer
from tests.conftest import LiveServer
from tests.staff import Staff, make_staff, sign_in

HTML = {"Accept": "text/html"}
XSS = "<script>alert(1)</script>"
WATER = ("water_mains", "water-mains", "上水道管路", "Water mains", "上下水道局")
CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.usefixtures("demo_city")


@pytest.fixture(scope="module")
def server_url(demo_city: object, live_server: LiveServer) -> str:
    """The live server's URL, once the demo city is loaded."""
    return live_server.url


@pytest.fixture(scope="module")
def suido(demo_city: object, sessions: sessionmaker[Session]) -> Staff:
    return make_staff(sessions, department="suido")


def page(
    http: httpx.Client, path: str, status: int = 200, headers: dict[str, str] | None = None
) -> str:
    """GET an /ogc page as a browser does and check it is a whole HTML page."""
    response = http.get(path, headers=HTML | (headers or {}))
    assert response.status_code == status, f"{path}: {response.status_code} {response.text[:500]}"
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.startswith("<!doctype html>")
    return response.text


def feature_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-feature="(\d+)">', html)


class References(HTMLParser):
    """Collects every URL a page loads or links to."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.links: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "img", "iframe") and values.get("src"):
            self.loads.append(values["src"] or "")
        if tag == "link" and values.get("rel") == "stylesheet":
            self.loads.append(values.get("href") or "")
        if tag in ("a", "form") and (values.get("href") or values.get("action")):
            self.links.append(
                (values.get("href") or values.get("action") or "", values.get("rel") or "")
            )


def references(html: str) -> References:
    parsed = References()
    parsed.feed(html)
    return parsed


# --- Japanese pages -----------------------------------------------------------------------


def test_the_landing_page_is_japanese_and_links_to_collections_catalog_and_api(
    http: httpx.Client, server_url: str
) -> None:
    html = page(http, "/ogc?f=html")
    assert '<html lang="ja">' in html
    assert "<h1>別府市 統合型GIS OGC API</h1>" in html
    assert f'href="{server_url}/ogc/collections?f=html"' in html
    assert f'href="{server_url}/ogc/collections/catalog/items?f=html"' in html
    assert f'href="{server_url}/ogc/api"' in html
    assert (
        f'href="{server_url}/ogc?f=json" type="application/json" data-format="json">JSON</a>'
        in html
    )
    assert "OGC API トップ" in html and "動作確認用に生成したもので、実在しません" in html


def test_the_collections_page_lists_layers_and_the_catalog_in_japanese(
    http: httpx.Client, server_url: str
) -> None:
    html = page(http, "/ogc/collections?f=html")
    assert "<h1>コレクション</h1>" in html and "地図レイヤー" in html
    listed = re.findall(r'<tr data-collection="([a-z_]+)">', html)
    # Other test modules add public layers of their own; the demo's come in department order.
    demo = {"roads", "zoning", "water_mains", "barriers", "evacuation_sites", "population"}
    assert [c for c in listed if c in demo] == [
        "roads",
        "zoning",
        "barriers",
        "evacuation_sites",
        "population",
    ]
    assert listed[-1] == "catalog"
    assert f'<a href="{server_url}/ogc/collections/roads?f=html">道路台帳（サンプル）</a>' in html
    assert '<span class="badge sample" data-sample>サンプル</span>' in html
    assert "データカタログ" in html


def test_a_layer_page_describes_the_layer_with_its_licence_and_links(
    http: httpx.Client, server_url: str
) -> None:
    html = page(http, "/ogc/collections/roads?f=html")
    assert '<section id="collection" data-collection="roads" data-item-type="feature">' in html
    assert "<h1>道路台帳（サンプル）" in html and "土木課の道路台帳（サンプル）" in html
    assert (
        f'href="{server_url}/ogc/collections/roads/items?f=html" data-rel="items">地物の一覧</a>'
        in html
    )
    assert f'href="{server_url}/ogc/collections/roads/queryables?f=html"' in html
    assert f'href="{server_url}/dataset/road-ledger"' in html
    assert 'rel="license noopener external"' in html
    assert "格納時の座標参照系" in html and 'id="collection-map"' in html


def test_the_items_page_shows_a_page_of_features_with_a_map_and_a_pager(
    http: httpx.Client, server_url: str
) -> None:
    html = page(http, "/ogc/collections/roads/items?f=html")
    ids = feature_ids(html)
    assert len(ids) == 10
    assert "1〜10 件目" in html and re.search(r"（全 [\d,]+ 件）", html)
    assert 'data-ogc-map="items-map-data"' in html and "背景地図なし（オフライン表示）" in html
    assert (
        f'<a href="{server_url}/ogc/collections/roads/items/{ids[0]}?f=html">{ids[0]}</a>' in html
    )
    nxt = re.search(r'<a rel="next" href="([^"]+)">', html)
    assert nxt and "offset=10" in nxt.group(1) and "f=html" in nxt.group(1)
    second = page(http, nxt.group(1).replace("&amp;", "&").removeprefix(server_url))
    assert "11〜20 件目" in second and not set(feature_ids(second)) & set(ids)
    assert '<a rel="prev"' in second


def test_an_item_page_shows_the_feature_properties_and_its_location(http: httpx.Client) -> None:
    first = feature_ids(page(http, "/ogc/collections/evacuation_sites/items?f=html&limit=1"))[0]
    html = page(http, f"/ogc/collections/evacuation_sites/items/{first}?f=html")
    assert f'<article id="item" data-collection="evacuation_sites" data-item="{first}">' in html
    assert '<th scope="row">名称</th>' in html and 'id="item-map"' in html
    assert "指定緊急避難場所一覧（サンプル）" in html


def test_the_catalog_records_are_listed_and_each_has_a_page(
    http: httpx.Client, server_url: str
) -> None:
    html = page(http, "/ogc/collections/catalog/items?f=html&limit=50")
    records = re.findall(r'<tr data-record="([^"]+)">', html)
    assert {"road-ledger", "evacuation-space", "population-by-chocho-age"} <= set(records)
    assert "<h1>データカタログ</h1>" in html
    record = page(http, "/ogc/collections/catalog/items/road-ledger?f=html")
    assert '<article id="item" data-collection="catalog" data-item="road-ledger">' in record
    assert "<h1>道路台帳（サンプル）" in record and "出典の表記" in record
    assert f'href="{server_url}/dataset/road-ledger"' in record


def test_queryables_and_conformance_pages(http: httpx.Client) -> None:
    queryables = page(http, "/ogc/collections/zoning/queryables?f=html")
    assert "検索できる属性" in queryables and 'data-queryable="geometry"' in queryables
    conformance = page(http, "/ogc/conformance?f=html")
    assert "<h1>適合クラス</h1>" in conformance
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conformance


def test_pages_are_english_with_lang_en_or_accept_language(http: httpx.Client) -> None:
    english = page(http, "/ogc/collections?f=html&lang=en")
    assert '<html lang="en">' in english and "<h1>Collections</h1>" in english
    assert ">Road ledger (sample)</a>" in english
    assert "lang=en" not in english.split("<main", 1)[1].split("</main>")[0]
    http.cookies.clear()
    header = page(
        http, "/ogc/collections/roads/items?f=html", headers={"Accept-Language": "en-US,en;q=0.9"}
    )
    assert '<html lang="en">' in header and "Items 1–10" in header
    japanese = page(http, "/ogc?f=html", headers={"Accept-Language": "ja,en;q=0.5"})
    assert '<html lang="ja">' in japanese


def test_errors_are_japanese_pages_with_the_right_status(http: httpx.Client) -> None:
    missing = page(http, "/ogc/collections/roads/items/999999999?f=html", status=404)
    assert "<h1>エラー</h1>" in missing and "ページが見つかりません" in missing
    bad = page(http, "/ogc/collections/roads/items?f=html&limit=abc", status=400)
    assert "パラメータの値が正しくありません" in bad and "limit value should be an integer" in bad


# --- who sees what ------------------------------------------------------------------------


PUBLIC_PAGES = (
    "/ogc?f=html",
    "/ogc/collections?f=html",
    "/ogc/collections?f=html&lang=en",
    "/ogc/collections/roads?f=html",
    "/ogc/collections/roads/items?f=html",
    "/ogc/collections/catalog?f=html",
    "/ogc/collections/catalog/items?f=html&limit=100",
    "/ogc/conformance?f=html",
)


def test_anonymous_callers_never_see_water_mains(http: httpx.Client) -> None:
    for path in PUBLIC_PAGES:
        html = page(http, path)
        for marker in WATER:
            assert marker not in html, f"{marker} leaked through {path}"
    hidden = http.get("/ogc/collections/water_mains?f=html", headers=HTML)
    made_up = http.get("/ogc/collections/no_such_layer?f=html", headers=HTML)
    assert hidden.status_code == made_up.status_code == 404
    assert hidden.text == made_up.text
    for path in ("/items", "/items/1", "/queryables"):
        assert (
            http.get(f"/ogc/collections/water_mains{path}?f=html", headers=HTML).status_code == 404
        )
    record = http.get("/ogc/collections/catalog/items/water-mains?f=html", headers=HTML)
    assert record.status_code == 404


def test_suido_staff_see_water_mains_with_a_token_or_a_session(
    http: httpx.Client, suido: Staff
) -> None:
    bearer = {"Authorization": f"Bearer {suido.token}"}
    html = page(http, "/ogc/collections?f=html", headers=bearer)
    assert '<tr data-collection="water_mains">' in html and "上水道管路（サンプル）" in html
    items = page(http, "/ogc/collections/water_mains/items?f=html", headers=bearer)
    assert len(feature_ids(items)) == 10
    assert "water-mains" in page(
        http, "/ogc/collections/catalog/items?f=html&limit=100", headers=bearer
    )
    anonymous = page(http, "/ogc/collections?f=html")
    assert "water_mains" not in anonymous


def test_forwarded_headers_change_the_links_on_the_page(http: httpx.Client) -> None:
    html = page(
        http,
        "/ogc/collections?f=html",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "gis.example.jp"},
    )
    assert 'href="https://gis.example.jp/ogc/collections/roads?f=html"' in html
    assert "127.0.0.1" not in html
    prefixed = page(
        http,
        "/ogc/collections/roads/items?f=html",
        headers={"X-Forwarded-Host": "gis.example.jp", "X-Forwarded-Prefix": "/opendata"},
    )
    assert 'href="http://gis.example.jp/opendata/ogc/collections/roads/items/1?f=html"' in prefixed
    assert 'href="/opendata/static/portal.css"' in prefixed
    assert '<a class="brand" href="/opendata/">' in prefixed
    plain = page(http, "/ogc/collections?f=html")
    assert "gis.example.jp" not in plain


def test_no_page_loads_anything_from_another_host(http: httpx.Client, server_url: str) -> None:
    own = urlsplit(server_url).netloc
    for path in (*PUBLIC_PAGES, "/ogc/collections/catalog/items/road-ledger?f=html"):
        html = page(http, path)
        assert "unpkg.com" not in html and "cdnjs" not in html and "jsdelivr" not in html
        found = references(html)
        for url in found.loads:
            assert url.startswith("/") and not url.startswith("//"), (path, url)
        for url, rel in found.links:
            # Another host only behind a deliberate click on a link marked as leaving the portal.
            host = urlsplit(url).netloc
            assert not host or host == own or "external" in rel.split(), (path, url)


# --- a real browser -----------------------------------------------------------------------


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed at /usr/bin/chromium")
def test_a_browser_draws_the_items_map_without_requests_to_other_hosts(server_url: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    requested: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless", "--disable-gpu"]
        )
        try:
            tab = browser.new_page(viewport={"width": 390, "height": 844}, locale="ja-JP")
            tab.on("request", lambda request: requested.append(request.url))
            errors: list[str] = []
            tab.on("pageerror", lambda error: errors.append(str(error)))
            tab.goto(f"{server_url}/ogc/collections/roads/items?f=html")
            assert tab.get_attribute("html", "lang") == "ja"
            assert "1〜10 件目" in tab.inner_text(".result-count")
            tab.wait_for_selector(".map[data-state]")
            assert tab.get_attribute(".map", "data-state") == "drawn"
            drawn = tab.locator(".map path.map-feature").count()
            assert drawn == int(tab.get_attribute(".map", "data-drawn") or 0) == 10
            assert tab.locator(".leaflet-tile").count() == 0
            # Phone width: nothing wider than the screen except inside scrolling wrappers.
            assert tab.evaluate("document.documentElement.scrollWidth") <= 390
            tab.goto(f"{server_url}/ogc/collections/evacuation_sites/items?f=html&limit=50")
            tab.wait_for_selector(".map[data-state]")
            assert tab.locator(".map path.map-feature").count() == 50
            tab.locator(".map path.map-feature").first.click(force=True)
            popup = tab.locator(".leaflet-popup-content a")
            popup.wait_for()
            assert "/ogc/collections/evacuation_sites/items/" in (popup.get_attribute("href") or "")
            tab.goto(f"{server_url}/ogc/collections/roads?f=html")
            tab.wait_for_selector(".map[data-state='bbox']")
            tab.goto(f"{server_url}/ogc/collections/roads/items/1?f=html")
            tab.wait_for_selector(".map[data-state='drawn']")
            for path in (*PUBLIC_PAGES, "/ogc/collections/catalog/items/road-ledger?f=html"):
                tab.goto(f"{server_url}{path}")
            assert errors == []
        finally:
            browser.close()
    own = urlsplit(server_url).netloc
    foreign = [url for url in requested if urlsplit(url).netloc not in (own, "")]
    assert foreign == [], foreign
    assert any(url.endswith("/static/vendor/leaflet/leaflet.js") for url in requested)


def test_a_signed_in_suido_session_sees_water_mains(live_server: LiveServer, suido: Staff) -> None:
    with httpx.Client(base_url=live_server.url, timeout=60) as browser:
        assert sign_in(browser, suido.email).status_code in (200, 303)
        html = page(browser, "/ogc/collections?f=html")
        assert '<tr data-collection="water_mains">' in html
        layer = page(browser, "/ogc/collections/water_mains?f=html")
        assert "上下水道局の上水道管路（サンプル）" in layer


def test_pygeoapi_objects_are_shared_by_callers_who_see_the_same_layers(
    http: httpx.Client, live_server: LiveServer, sessions: sessionmaker[Session], suido: Staff
) -> None:
    cache = live_server.requests.app.state.ogc_html_apis  # most recently used last
    page(http, "/ogc/collections?f=html")
    anonymous = list(cache)[-1]
    entries = len(cache)
    page(http, "/ogc/collections/roads/items?f=html")
    fukushi = make_staff(sessions, department="fukushi")
    page(http, "/ogc/collections?f=html", headers={"Authorization": f"Bearer {fukushi.token}"})
    assert list(cache)[-1] == anonymous and len(cache) == entries
    assert anonymous[0] == live_server.url and anonymous[2] == "ja"
    assert "water_mains" not in dict(anonymous[1])
    page(http, "/ogc/collections?f=html", headers={"Authorization": f"Bearer {suido.token}"})
    assert "water_mains" in dict(list(cache)[-1][1])


def test_a_new_layer_revision_builds_a_fresh_pygeoapi_object(
    http: httpx.Client, live_server: LiveServer, sessions: sessionmaker[Session]
) -> None:
    cache = live_server.requests.app.state.ogc_html_apis
    page(http, "/ogc/collections?f=html")
    with session_scope(sessions) as session:
        session.execute(
            update(Layer).where(Layer.id == "zoning").values(revision=Layer.revision + 1)
        )
        revision = session.get(Layer, "zoning").revision  # type: ignore[union-attr]
    assert "用途地域（サンプル）" in page(http, "/ogc/collections/zoning/items?f=html")
    assert any(dict(key[1]).get("zoning") == revision for key in cache)


def test_markup_in_a_record_is_shown_as_text(
    http: httpx.Client, sessions: sessionmaker[Session]
) -> None:
    with session_scope(sessions) as session:
        create_dataset(
            session,
            SYSTEM,
            DatasetCreate(
                name="ogc-html-markup",
                title=XSS,
                department="shimin",
                notes='<img src=x onerror="alert(2)">',
                bbox=(131.48, 33.27, 131.50, 33.29),
            ),
        )
    try:
        listing = page(http, "/ogc/collections/catalog/items?f=html&limit=100")
        record = page(http, "/ogc/collections/catalog/items/ogc-html-markup?f=html")
        for html in (listing, record):
            assert XSS not in html and "<img src=x" not in html
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert '<tr data-record="ogc-html-markup">' in listing
    finally:
        with session_scope(sessions) as session:
            session.execute(delete(Dataset).where(Dataset.name == "ogc-html-markup"))


def test_the_items_page_filters_like_the_json_api_and_keeps_filters_when_paging(
    http: httpx.Client,
) -> None:
    html = page(http, "/ogc/collections/roads/items?f=html&路線種別=2級市道")
    matched = int(re.findall(r'data-number-matched="(\d+)"', html)[0])
    everything = page(http, "/ogc/collections/roads/items?f=html")
    total = int(re.findall(r'data-number-matched="(\d+)"', everything)[0])
    assert 10 < matched < total
    assert html.count("<td>2級市道</td>") == 10 and "<td>1級市道</td>" not in html
    nxt = re.search(r'<a rel="next" href="([^"]+)">', html)
    assert nxt and "%E8%B7%AF%E7%B7%9A%E7%A8%AE%E5%88%A5=2%E7%B4%9A%E5%B8%82%E9%81%93" in nxt.group(
        1
    )
    boxed = page(http, "/ogc/collections/roads/items?f=html&bbox=131.47,33.27,131.48,33.28")
    assert 0 < int(re.findall(r'data-number-matched="(\d+)"', boxed)[0]) < total
    records = page(http, "/ogc/collections/catalog/items?f=html&q=道路")
    assert re.findall(r'<tr data-record="([^"]+)">', records) == ["road-ledger"]
    assert 'name="q" value="道路"' in records


def test_every_pygeoapi_template_that_loads_from_a_cdn_is_replaced(settings: Settings) -> None:
    originals = Path(pygeoapi.__file__).parent / "templates"
    loads_remote = re.compile(r'<(?:script|link)[^>]+(?:src|href)="(?:https?:)?//')
    replaced = [t for t in originals.rglob("*.html") if loads_remote.search(t.read_text())]
    assert len(replaced) >= 9
    for template in replaced:
        assert (TEMPLATES / template.relative_to(originals)).exists(), template
    for template in TEMPLATES.rglob("*.html"):
        assert not loads_remote.search(template.read_text()), template
    config = build_config(
        root="https://gis.example.jp",
        language="ja",
        layers=[],
        licences={},
        catalog_bbox=WORLD,
        settings=settings,
    )
    swagger = render_j2_template(
        config, config["server"]["templates"], "openapi/swagger.html", {}, "ja"
    )
    assert "この画面の表示用ビューアーは用意していません" in swagger
    assert not loads_remote.search(swagger)
