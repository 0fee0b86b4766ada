"""The catalog's HTML pages over real HTTP: search, facets, dataset and resource pages, previews."""

import io
import re
import zipfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from sqlalchemy import delete, update
from sqlalchemy.orm import Session, sessionmaker

from portal.api.routes.catalog_common import human_size
from portal.catalog.datasets import create_dataset, get_dataset
from portal.catalog.models import Dataset, Resource
from portal.catalog.resources import add_resource
from portal.catalog.schemas import DatasetCreate, ResourceCreate
from portal.core.database import session_scope
from portal.core.principal import SYSTEM
from portal.core.settings import Settings
from portal.core.storage import LocalStorage
from portal.demo.catalog import publish_demo_catalog
from tests.conftest import LiveServer
from tests.staff import Staff, make_staff

PREFIX = "pages-test-"
REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
TAKAMATSU = REAL / "takamatsu_population_by_chocho_age_202303_utf8bom.csv"
NEEDS_REAL_FILES = pytest.mark.skipif(
    not TAKAMATSU.is_file(), reason="shared/data/real is not beside the repository"
)
XSS = "<script>alert(1)</script>"
DEMO = (
    "road-ledger",
    "youto-chiiki",
    "barrier-free",
    "evacuation-space",
    "population-by-chocho-age",
)
HTML = {"Accept": "text/html"}


def zip_bomb() -> bytes:
    """An XLSX-shaped zip whose sheet XML unpacks to 40 MB from a few dozen kilobytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:
            chunk = (b"<row><c><v>0</v></c></row>" * 40_000)[: 1024 * 1024]
            for _ in range(40):
                sheet.write(chunk)
    return buffer.getvalue()


def add_file(session: Session, storage: LocalStorage, dataset: str, name: str, data: bytes) -> None:
    add_resource(
        session,
        SYSTEM,
        dataset,
        ResourceCreate(name=name),
        upload=io.BytesIO(data),
        file_name=name,
        storage=storage,
        max_bytes=100_000_000,
    )


def new_dataset(session: Session, suffix: str, **fields: object) -> str:
    name = PREFIX + suffix
    values: dict[str, object] = {"title": f"試験データ {suffix}", "department": "shimin"}
    create_dataset(session, SYSTEM, DatasetCreate(name=name, **(values | fields)))
    return name


@pytest.fixture(scope="module")
def catalog(
    demo_city: object, demo_root: Path, sessions: sessionmaker[Session], settings: Settings
) -> Iterator[None]:
    """The demo catalog plus this module's test datasets (removed afterwards)."""
    storage = LocalStorage(settings.data_dir)
    with session_scope(sessions) as session:
        publish_demo_catalog(
            session,
            storage,
            demo_root,
            municipality_code=settings.municipality_code,
            max_bytes=settings.max_upload_bytes,
        )
    with session_scope(sessions) as session:
        new_dataset(session, "xss", title=XSS, notes="<img src=x onerror=alert(2)>\n二行目")
        add_file(session, storage, PREFIX + "xss", "xss.csv", f"名称,{XSS}\n{XSS},1\n".encode())
        new_dataset(session, "takamatsu", title="高松市の町丁別人口（実データ）")
        if TAKAMATSU.is_file():
            add_file(session, storage, PREFIX + "takamatsu", TAKAMATSU.name, TAKAMATSU.read_bytes())
        new_dataset(session, "bad-files", title="壊れたファイルの試験")
        add_file(session, storage, PREFIX + "bad-files", "bomb.xlsx", zip_bomb())
        add_file(
            session,
            storage,
            PREFIX + "bad-files",
            "page.csv",
            b"<!DOCTYPE html>\n<html><head><title>404</title></head><body>Not Found</body></html>",
        )
        for i in range(23):
            new_dataset(
                session, f"bulk-{i:02d}", title=f"ページ送り試験 {i:02d}", tags=["ページ送り試験"]
            )
    yield
    with session_scope(sessions) as session:
        session.execute(delete(Dataset).where(Dataset.name.startswith(PREFIX)))


@pytest.fixture(scope="module")
def suido(catalog: None, sessions: sessionmaker[Session]) -> Staff:
    return make_staff(sessions, department="suido")


def page(http: httpx.Client, path: str, status: int = 200, **kwargs: object) -> str:
    """GET an HTML page and check its status and that it is a whole, phone-ready page."""
    response = http.get(path, headers=HTML | kwargs.pop("headers", {}), **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, f"{path}: {response.status_code} {response.text[:300]}"
    assert response.headers["content-type"].startswith("text/html")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in response.text
    return response.text


def datasets_listed(html: str) -> list[str]:
    return re.findall(r'<li class="dataset-item" data-dataset="([^"]+)"', html)


def resource_ids(http: httpx.Client, dataset: str) -> dict[str, str]:
    """Map resource names to ids, read from the dataset page."""
    html = page(http, f"/dataset/{dataset}")
    found = re.findall(
        r'data-resource="([0-9a-f-]{36})" data-kind="[a-z]+">\s*<div class="resource-main">\s*'
        r'(?:<span class="badge format"[^>]*>[^<]*</span>)?\s*<a class="resource-name" [^>]*>([^<]+)</a>',
        html,
    )
    return {name: rid for rid, name in found}


# --- search ------------------------------------------------------------------------------


def test_searching_hinan_lists_the_evacuation_sites_first(
    http: httpx.Client, catalog: None
) -> None:
    html = page(http, "/dataset", params={"q": "避難"})
    assert datasets_listed(html)[0] == "evacuation-space"
    assert "「避難」の検索結果" in html


def test_the_search_page_lists_every_public_dataset_but_not_water_mains(
    http: httpx.Client, catalog: None
) -> None:
    html = page(http, "/dataset", params={"q": "", "sort": "name"})
    listed = datasets_listed(html)
    assert set(DEMO) <= set(listed + datasets_listed(page(http, "/dataset?sort=name&page=2")))
    assert "water-mains" not in html and "上水道管路" not in html


def test_facets_show_counts_and_link_to_filtered_results(http: httpx.Client, catalog: None) -> None:
    html = page(http, "/dataset")
    facet = re.search(
        r'<a href="([^"]+)" data-facet-value="bosai">\s*<span class="facet-name">([^<]+)</span>\s*'
        r'<span class="facet-count" data-count="(\d+)">',
        html,
    )
    assert facet, "the department facet lists bosai"
    href, label, count = facet.groups()
    assert label == "防災危機管理課" and count == "1"
    for field in ("organization", "groups", "tags", "res_format", "license_id"):
        assert f'data-facet="{field}"' in html
    assert re.search(r'data-facet-value="CSV">\s*<span class="facet-name">CSV</span>', html)
    filtered = page(http, href.replace("&amp;", "&"))
    assert datasets_listed(filtered) == ["evacuation-space"]
    assert 'class="chip" data-filter="organization=bosai"' in filtered
    assert 'aria-current="true"' in filtered
    # Two filters combine; the licence facet shows the licence's name.
    both = page(http, "/dataset?organization=bosai&license_id=cc-by-4.0")
    assert datasets_listed(both) == []
    licensed = page(http, "/dataset?license_id=cc-by-4.0")
    assert datasets_listed(licensed) == ["youto-chiiki"]
    assert "クリエイティブ・コモンズ 表示 4.0 国際" in licensed


def test_search_pages_twenty_at_a_time(http: httpx.Client, catalog: None) -> None:
    first = page(http, "/dataset", params={"tags": "ページ送り試験", "sort": "name"})
    assert len(datasets_listed(first)) == 20
    assert datasets_listed(first)[0] == PREFIX + "bulk-00"
    assert 'data-count="23"' in first and "1 / 2 ページ" in first
    next_link = re.search(r'<a rel="next" href="([^"]+)"', first)
    assert next_link
    second = page(http, next_link.group(1).replace("&amp;", "&"))
    assert datasets_listed(second) == [PREFIX + f"bulk-{i}" for i in (20, 21, 22)]
    assert '<a rel="prev"' in second and '<a rel="next"' not in second


def test_sorting_by_newest_and_by_name(http: httpx.Client, catalog: None) -> None:
    by_name = datasets_listed(page(http, "/dataset?tags=サンプル&sort=name"))
    assert by_name == sorted(by_name)
    newest = datasets_listed(page(http, "/dataset?sort=newest"))
    assert newest[0].startswith(PREFIX)


def test_spatial_filters_by_point_and_by_box(http: httpx.Client, catalog: None) -> None:
    beppu = datasets_listed(page(http, "/dataset?lat=33.2846&lon=131.4914"))
    assert "evacuation-space" in beppu and not any(n.startswith(PREFIX) for n in beppu)
    assert datasets_listed(page(http, "/dataset?lat=35.68&lon=139.76")) == []
    boxed = datasets_listed(page(http, "/dataset?bbox=131.4,33.2,131.6,33.4"))
    assert "road-ledger" in boxed


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("bbox=1,2,3", "bbox must be minx,miny,maxx,maxy"),
        ("bbox=131,34,130,33", "minx ≤ maxx"),
        ("lat=91&lon=0", "lat must be between -90 and 90"),
        ("lat=33", "give both lat and lon"),
        ("lon=east&lat=33", "lon must be a number"),
        ("page=abc", "page must be a whole number"),
        ("page=0", "page must be between 1"),
        ("sort=random", "sort must be one of relevance, newest, name"),
        ("license_id=no-such-licence", "unknown licence"),
    ],
)
def test_bad_search_parameters_get_a_400_page_with_the_reason(
    http: httpx.Client, catalog: None, query: str, message: str
) -> None:
    html = page(http, f"/dataset?{query}", status=400)
    assert message in html.replace("&#39;", "'").replace("&lt;", "<")
    assert 'class="error-message"' in html


def test_the_english_pages(http: httpx.Client, catalog: None) -> None:
    html = page(http, "/dataset?lang=en&q=避難")
    assert "Find data" in html and '<html lang="en">' in html
    assert "Disaster Prevention Division" in html and "Designated evacuation sites" in html
    assert "Results for “避難”: 1" in html
    assert "Justice, safety and environment" in html
    shown = page(http, "/dataset/evacuation-space?lang=en")
    assert "How to credit" in shown and "Annual" in shown
    assert "Creative Commons" not in shown and "Public Data License (Version 1.0)" in shown
    # Without ?lang the cookie keeps English; switching back works.
    assert "Find data" in page(http, "/dataset")
    assert "データを探す" in page(http, "/dataset?lang=ja")


# --- dataset page ------------------------------------------------------------------------


def test_the_dataset_page_shows_metadata_licence_attribution_and_downloads(
    http: httpx.Client, catalog: None, live_server: LiveServer, sessions: sessionmaker[Session]
) -> None:
    html = page(http, "/dataset/evacuation-space")
    with session_scope(sessions) as session:
        dataset = get_dataset(session, SYSTEM, "evacuation-space")
    assert f"<h1>{dataset.title}</h1>" in html
    assert "公共データ利用規約（第1.0版）" in html
    attribution = (
        f"出典：別府市 防災危機管理課（{live_server.url}/dataset/evacuation-space）、PDL1.0"
    )
    assert f"<code>{attribution}</code>" in html
    assert (
        'href="/organization/bosai"' in html and 'href="/group/justice-safety-environment"' in html
    )
    assert 'href="/dataset?tags=%E9%81%BF%E9%9B%A3%E5%A0%B4%E6%89%80"' in html  # 避難場所
    assert "毎年" in html and "A-03" in html
    original = next(r for r in dataset.resources if r.kind == "file")
    layer = next(r for r in dataset.resources if r.kind == "layer")
    assert (
        original.size and f'data-bytes="{original.size}">{human_size(original.size)}</span>' in html
    )
    assert re.search(r"\d+\.\d KB", human_size(original.size))
    assert (
        f'href="/dataset/evacuation-space/resource/{original.id}/download/442020_evacuation_space.csv"'
        in html
    )
    assert 'href="/download/evacuation_sites.geojson"' in html
    assert html.count('class="button download"') == 2
    assert f'href="/dataset/evacuation-space/resource/{original.id}#preview"' in html
    assert f'href="/dataset/evacuation-space/resource/{layer.id}#map"' in html
    for suffix in (".ttl", ".rdf", ".jsonld"):
        assert f'href="/dataset/evacuation-space{suffix}"' in html
    assert 'href="/api/3/action/package_show?id=evacuation-space"' in html
    assert "変更履歴" not in html  # staff only


def test_a_dataset_page_for_population_has_no_map_but_a_table_preview_link(
    http: httpx.Client, catalog: None
) -> None:
    html = page(http, "/dataset/population-by-chocho-age")
    assert "data-map-config" not in html and "leaflet.js" not in html
    assert "表をプレビュー" in html and "毎月" in html


def test_titles_and_notes_with_markup_are_escaped_everywhere(
    http: httpx.Client, catalog: None
) -> None:
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    shown = page(http, f"/dataset/{PREFIX}xss")
    search = page(http, "/dataset", params={"q": "alert"})
    department = page(http, "/organization/shimin", params={"q": "alert"})
    for html in (shown, search, department):
        assert XSS not in html and escaped in html
        assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in shown
    rid = resource_ids(http, PREFIX + "xss")["xss.csv"]
    preview = page(http, f"/dataset/{PREFIX}xss/resource/{rid}")
    assert XSS not in preview and f'<th scope="col">{escaped}</th>' in preview
    assert f"<td>{escaped}</td>" in preview


def test_the_water_mains_page_exists_only_for_its_departments(
    http: httpx.Client, catalog: None, suido: Staff
) -> None:
    assert "not found" in page(http, "/dataset/water-mains", status=404)
    html = page(http, "/dataset/water-mains", headers={"Authorization": f"Bearer {suido.token}"})
    assert "上水道管路" in html and "部署限定" in html
    assert "変更履歴（職員のみ）" in html and 'data-action="created"' in html
    hidden = page(http, "/dataset?q=上水道")
    assert "water-mains" not in hidden
    visible = http.get("/dataset?q=上水道", headers={"Authorization": f"Bearer {suido.token}"})
    assert "water-mains" in visible.text


def test_names_with_a_dot_are_left_to_the_dcat_routes(http: httpx.Client, catalog: None) -> None:
    response = http.get("/dataset/evacuation-space.ttl")
    assert response.status_code in (200, 404)
    assert 'class="dataset"' not in response.text
    if response.status_code == 200:
        assert "text/turtle" in response.headers["content-type"]


def test_unknown_datasets_and_resources_are_404_pages(http: httpx.Client, catalog: None) -> None:
    page(http, "/dataset/no-such-dataset", status=404)
    page(
        http, "/dataset/evacuation-space/resource/00000000-0000-0000-0000-000000000000", status=404
    )
    page(http, "/organization/no-such-department", status=404)
    page(http, "/group/no-such-group", status=404)


@NEEDS_REAL_FILES
def test_a_quality_panel_shows_what_the_checker_left(
    http: httpx.Client, catalog: None, sessions: sessionmaker[Session]
) -> None:
    rid = resource_ids(http, PREFIX + "takamatsu")[TAKAMATSU.name]
    quality = {
        "stars": 3,
        "standard": {
            "id": "A-04",
            "title": "地域・年齢別人口",
            "edition": "old",
            "missing_required": ["全国地方公共団体コード"],
            "missing_columns": [],
            "bad_codes": [{"row": 2, "value": "37201"}],
            "bad_coordinates": 1,
            "rows": 235,
        },
        "encoding": "utf-8-sig",
        "problems": ["<b>列名</b>が標準と違います"],
    }
    with session_scope(sessions) as session:
        session.execute(
            update(Resource).where(Resource.name == TAKAMATSU.name).values(quality=quality)
        )
    html = page(http, f"/dataset/{PREFIX}takamatsu")
    assert 'data-stars="3"' in html and "★★★☆☆" in html
    assert "A-04 地域・年齢別人口" in html and "旧版" in html
    assert "全国地方公共団体コード" in html and "2 行目：37201" in html
    assert "座標の誤り：1 行" in html and "&lt;b&gt;列名&lt;/b&gt;" in html
    assert "quality-panel" in page(http, f"/dataset/{PREFIX}takamatsu/resource/{rid}")
    with session_scope(sessions) as session:
        session.execute(
            update(Resource).where(Resource.name == TAKAMATSU.name).values(quality={"stars": 2})
        )
    html = page(http, f"/dataset/{PREFIX}takamatsu")
    assert 'data-stars="2"' in html and "問題は見つかりませんでした" in html


# --- table previews ----------------------------------------------------------------------


def test_the_cp932_evacuation_csv_previews_in_japanese_and_pages(
    http: httpx.Client, catalog: None
) -> None:
    rid = resource_ids(http, "evacuation-space")["指定緊急避難場所一覧（サンプル）（元ファイル）"]
    html = page(http, f"/dataset/evacuation-space/resource/{rid}")
    assert 'data-encoding="cp932"' in html and "Shift_JIS（CP932）" in html
    assert '<th scope="col">名称</th>' in html and '<th scope="col">災害種別_洪水</th>' in html
    assert "サンプル避難場所" in html and "大分県別府市" in html
    assert "1〜50 行目（全 60 行）" in html
    assert html.count('<th scope="row" class="num row-number">') == 50
    second = page(http, f"/dataset/evacuation-space/resource/{rid}/preview?page=2")
    assert "51〜60 行目（全 60 行）" in second and '<a rel="next"' not in second
    assert second.count('<th scope="row" class="num row-number">') == 10
    fragment = http.get(f"/dataset/evacuation-space/resource/{rid}/preview?page=2&partial=1")
    assert fragment.status_code == 200 and fragment.text.lstrip().startswith(
        '<section class="preview"'
    )
    assert "<html" not in fragment.text


def test_the_population_workbook_previews(http: httpx.Client, catalog: None) -> None:
    ids = resource_ids(http, "population-by-chocho-age")
    rid = next(rid for name, rid in ids.items() if "元ファイル" in name)
    html = page(http, f"/dataset/population-by-chocho-age/resource/{rid}")
    assert "シート: <span data-sheet>人口</span>" in html
    assert '<th scope="col">町丁名</th>' in html and "サンプル新浜町" in html
    assert "data-encoding" not in html
    # The non-spatial layer (the table loaded into PostGIS) previews through the datastore.
    table_id = next(rid for name, rid in ids.items() if "表データ" in name)
    assert f'resource/{table_id}#preview"' in page(http, "/dataset/population-by-chocho-age")
    table = page(http, f"/dataset/population-by-chocho-age/resource/{table_id}")
    assert '<th scope="col">町丁名</th>' in table and "1〜50 行目（全 50 行）" in table
    assert "data-map-config" not in table


@NEEDS_REAL_FILES
def test_the_real_takamatsu_csv_previews_with_its_metadata_rows_as_notes(
    http: httpx.Client, catalog: None
) -> None:
    rid = resource_ids(http, PREFIX + "takamatsu")[TAKAMATSU.name]
    html = page(http, f"/dataset/{PREFIX}takamatsu/resource/{rid}")
    assert "UTF-8（BOM付き）" in html and "1〜50 行目（全 235 行）" in html
    assert '<th scope="col">regionName</th>' in html and "<td>塩屋町</td>" in html
    assert "<li>attribution_name: 高松市</li>" in html
    assert "<td>#LINK</td>" not in html and "<td>#object_type_xsd</td>" not in html
    last = page(http, f"/dataset/{PREFIX}takamatsu/resource/{rid}?page=5")
    assert "201〜235 行目（全 235 行）" in last


def test_a_zip_bomb_and_a_csv_that_is_html_get_clear_errors(
    http: httpx.Client, catalog: None
) -> None:
    ids = resource_ids(http, PREFIX + "bad-files")
    bomb = page(http, f"/dataset/{PREFIX}bad-files/resource/{ids['bomb.xlsx']}")
    assert "data-preview-error" in bomb and "zip bomb" in bomb and "zip爆弾" in bomb
    assert 'class="button download"' in bomb  # the page itself still works
    refused = page(
        http, f"/dataset/{PREFIX}bad-files/resource/{ids['bomb.xlsx']}/preview", status=400
    )
    assert "zip bomb" in refused
    html = page(http, f"/dataset/{PREFIX}bad-files/resource/{ids['page.csv']}")
    assert "HTML or XML page saved under a CSV name" in html
    page(http, f"/dataset/{PREFIX}bad-files/resource/{ids['page.csv']}/preview", status=400)


def test_resources_without_a_table_have_no_preview_endpoint(
    http: httpx.Client, catalog: None
) -> None:
    ids = resource_ids(http, "road-ledger")
    rid = next(rid for name, rid in ids.items() if "元ファイル" in name)
    html = page(http, f"/dataset/road-ledger/resource/{rid}/preview", status=400)
    assert "has no table preview" in html


# --- maps --------------------------------------------------------------------------------


def test_a_layer_gets_an_offline_map_preview_unless_gsi_is_asked_for(
    http: httpx.Client, catalog: None
) -> None:
    html = page(http, "/dataset/evacuation-space")
    config = re.search(
        r'<script type="application/json" id="map-config-evacuation_sites">(.+?)</script>', html
    )
    assert (
        config and '"basemap": "offline"' in config.group(1) and '"tiles": null' in config.group(1)
    )
    assert '"geojson": "/download/evacuation_sites.geojson"' in config.group(1)
    assert "/static/vendor/leaflet/leaflet.js" in html and "/static/catalog.js" in html
    assert "地理院タイル</a>" not in html and "cyberjapandata" not in html
    gsi = page(http, "/dataset/evacuation-space?basemap=gsi")
    assert '<a href="https://maps.gsi.go.jp/development/ichiran.html">地理院タイル</a>' in gsi
    assert "cyberjapandata.gsi.go.jp/xyz/pale/" in gsi


# --- pages, links and phones -------------------------------------------------------------


class PageAudit(HTMLParser):
    """Collect every reference a page makes, and tables that are not wrapped for phones."""

    def __init__(self) -> None:
        super().__init__()
        self.references: list[tuple[str, str, dict[str, str]]] = []
        self.unwrapped_tables = 0
        self.stack: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        for key in ("src", "href", "action", "data", "poster"):
            if key in values:
                self.references.append((tag, values[key], values))
        if tag == "table" and not any("table-wrap" in cls for _, cls in self.stack):
            self.unwrapped_tables += 1
        if tag not in ("img", "input", "link", "meta", "br", "hr", "source"):
            self.stack.append((tag, values.get("class", "")))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break


def pages_to_audit(http: httpx.Client) -> list[str]:
    paths = ["/dataset", "/dataset?q=避難", "/dataset?lang=en", "/organization", "/group"]
    paths += ["/organization/bosai", "/group/population-households", "/dataset?lang=ja"]
    for name in DEMO:
        paths.append(f"/dataset/{name}")
        paths += [f"/dataset/{name}/resource/{rid}" for rid in resource_ids(http, name).values()]
    return paths


def test_no_page_loads_or_links_anything_from_another_host(
    http: httpx.Client, catalog: None, live_server: LiveServer
) -> None:
    own = urlsplit(live_server.url).netloc
    for path in pages_to_audit(http):
        html = page(http, path)
        assert "gsi.go.jp" not in html and "地理院タイル</a>" not in html
        audit = PageAudit()
        audit.feed(html)
        for tag, value, attrs in audit.references:
            host = urlsplit(value).netloc
            if tag in ("script", "link", "img", "iframe", "source", "video", "audio"):
                assert value.startswith("/") and not value.startswith("//"), (path, tag, value)
            elif host and host != own:
                # Only the licence text may be linked away from the portal (a deliberate click).
                assert tag == "a" and "license" in attrs.get("rel", ""), (path, value)
        assert audit.unwrapped_tables == 0, f"{path} has a table outside .table-wrap"


def test_department_and_group_pages(http: httpx.Client, catalog: None) -> None:
    departments = page(http, "/organization")
    assert 'data-department="bosai"' in departments and "防災危機管理課" in departments
    assert re.search(
        r'data-department="suido">\s*<a[^>]+>上下水道局</a>\s*<span class="card-meta" data-count="0">',
        departments,
    )
    bosai = page(http, "/organization/bosai")
    assert datasets_listed(bosai) == ["evacuation-space"]
    assert '<h1 data-department="bosai">防災危機管理課</h1>' in bosai
    groups = page(http, "/group")
    assert groups.count('<li class="card') == 17
    justice = page(http, "/group/justice-safety-environment")
    assert datasets_listed(justice) == ["evacuation-space"]
    assert "司法・安全・環境" in justice
    english = page(http, "/group?lang=en")
    assert "Population and households" in english
    page(http, "/dataset?lang=ja")


def test_facet_links_keep_the_query_and_drop_the_page(http: httpx.Client, catalog: None) -> None:
    html = page(http, "/dataset?q=サンプル&page=1&sort=name")
    facet = re.search(r'<a href="([^"]+)" data-facet-value="shimin">', html)
    assert facet
    params = parse_qsl(urlsplit(facet.group(1).replace("&amp;", "&")).query)
    assert ("q", "サンプル") in params and ("sort", "name") in params
    assert ("organization", "shimin") in params and not any(k == "page" for k, _ in params)


# --- a real browser ----------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed at /usr/bin/chromium")
def test_a_browser_draws_the_map_preview_and_pages_the_table_without_other_hosts(
    http: httpx.Client, catalog: None, live_server: LiveServer
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if http.get("/download/evacuation_sites.geojson").status_code == 404:
        pytest.skip("the layer export /download/{layer}.geojson is not served yet")
    csv_id = resource_ids(http, "evacuation-space")[
        "指定緊急避難場所一覧（サンプル）（元ファイル）"
    ]
    requested: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless", "--disable-gpu"]
        )
        try:
            tab = browser.new_page(viewport={"width": 390, "height": 844})
            tab.on("request", lambda request: requested.append(request.url))
            tab.goto(f"{live_server.url}/dataset/evacuation-space")
            tab.wait_for_function(
                "['drawn', 'error'].includes(document.querySelector('.map').dataset.state)"
            )
            assert tab.get_attribute(".map", "data-state") == "drawn"
            drawn = tab.locator(".map path.map-feature").count()
            assert drawn == int(tab.get_attribute(".map", "data-drawn") or 0) > 0
            assert tab.locator(".leaflet-tile").count() == 0  # the offline basemap
            # Phone width: nothing wider than the screen except inside scrolling wrappers.
            assert tab.evaluate("document.documentElement.scrollWidth") <= 390
            tab.goto(f"{live_server.url}/dataset/evacuation-space/resource/{csv_id}")
            tab.click(".preview a[rel=next]")
            tab.wait_for_selector(".preview[data-page='2']")
            assert "51〜60 行目" in tab.inner_text(".preview-info")
        finally:
            browser.close()
    own = urlsplit(live_server.url).netloc
    foreign = [url for url in requested if urlsplit(url).netloc not in (own, "")]
    assert foreign == [], foreign
    assert any(url.endswith("/download/evacuation_sites.geojson") for url in requested)


@pytest.mark.parametrize("department", [None, "fukushi"])
def test_water_mains_leak_through_no_catalog_page(
    http: httpx.Client, catalog: None, sessions: sessionmaker[Session], department: str | None
) -> None:
    headers = {}
    if department:
        headers["Authorization"] = f"Bearer {make_staff(sessions, department=department).token}"
    paths = ["/dataset", "/dataset?q=上水道", "/dataset?q=water", "/dataset?organization=suido"]
    paths += ["/dataset?tags=上水道", "/dataset?groups=energy-water", "/organization"]
    paths += ["/organization/suido", "/group", "/group/energy-water", "/dataset?lang=en"]
    for path in paths:
        html = page(http, path, headers=headers)
        for marker in ("water-mains", "water_mains", "上水道管路", "Water mains", "管路"):
            assert marker not in html, f"{marker} leaked through {path}"
    page(http, "/dataset/water-mains", status=404, headers=headers)
