"""Downloads over real HTTP: originals, converted tables, layer exports, visibility, bad input."""

import codecs
import csv
import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.datasets import create_dataset, get_dataset
from portal.catalog.models import Dataset, Resource
from portal.catalog.package import resource_url
from portal.catalog.resources import add_resource
from portal.catalog.schemas import DatasetCreate, ResourceCreate
from portal.catalog.views import ResourceView
from portal.core.database import session_scope
from portal.core.errors import PayloadTooLarge
from portal.core.principal import SYSTEM
from portal.core.settings import Settings
from portal.core.storage import LocalStorage
from portal.demo.catalog import publish_demo_catalog
from portal.geo.registry import get_layer
from tests.staff import Staff, make_staff

PREFIX = "downloads-test-"
UPLOADS = PREFIX + "uploads"
EVACUATION_FILE = "bosai/442020_evacuation_space.csv"


@pytest.fixture(scope="module")
def catalog(
    demo_city: object, demo_root: Path, sessions: sessionmaker[Session], settings: Settings
) -> Iterator[None]:
    """The demo datasets (published idempotently) and a public dataset for test uploads."""
    with session_scope(sessions) as session:
        publish_demo_catalog(
            session,
            LocalStorage(settings.data_dir),
            demo_root,
            municipality_code=settings.municipality_code,
            max_bytes=settings.max_upload_bytes,
        )
        create_dataset(
            session,
            SYSTEM,
            DatasetCreate(name=UPLOADS, title="ダウンロード試験", department="bosai"),
        )
    yield
    with session_scope(sessions) as session:
        session.execute(delete(Dataset).where(Dataset.name.startswith(PREFIX)))


def upload(
    sessions: sessionmaker[Session], settings: Settings, file_name: str, data: bytes
) -> ResourceView:
    with session_scope(sessions) as session:
        return add_resource(
            session,
            SYSTEM,
            UPLOADS,
            ResourceCreate(name=file_name),
            upload=io.BytesIO(data),
            file_name=file_name,
            storage=LocalStorage(settings.data_dir),
            max_bytes=settings.max_upload_bytes,
        )


def resources(sessions: sessionmaker[Session], dataset: str) -> dict[str, ResourceView]:
    """The dataset's resources by kind: `file` (the original) and `layer`."""
    with session_scope(sessions) as session:
        return {r.kind: r for r in get_dataset(session, SYSTEM, dataset).resources}


def url(dataset: str, resource: ResourceView) -> str:
    """The path the catalog links to (package.resource_url), relative to the server."""
    return resource_url("", dataset, resource)


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def problem(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    detail: str = response.json()["detail"]
    return detail


def bearer(staff: Staff) -> dict[str, str]:
    return {"Authorization": f"Bearer {staff.token}"}


# --- originals ---------------------------------------------------------------------------


def test_the_original_is_byte_identical_with_sha256_etag(
    http: httpx.Client, catalog: None, sessions: sessionmaker[Session], demo_root: Path
) -> None:
    original = (demo_root / EVACUATION_FILE).read_bytes()
    digest = hashlib.sha256(original).hexdigest()
    link = url("evacuation-space", resources(sessions, "evacuation-space")["file"])
    assert link.endswith("/download/442020_evacuation_space.csv")
    response = http.get(link)
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == digest
    assert response.headers["etag"] == f'"{digest}"'
    assert response.headers["content-length"] == str(len(original))
    assert response.headers["content-type"] == "text/csv; charset=Shift_JIS"
    assert response.headers["content-disposition"] == (
        'attachment; filename="442020_evacuation_space.csv"'
    )
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"
    again = http.get(link, headers={"If-None-Match": f'"{digest}"'})
    assert again.status_code == 304 and again.content == b""
    head = http.head(link)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(original))
    part = http.get(link, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == original[:10]


def test_a_japanese_file_name_gets_an_rfc5987_disposition(
    http: httpx.Client, catalog: None, sessions: sessionmaker[Session], settings: Settings
) -> None:
    data = "名称,緯度,経度\r\n公民館,33.28,131.49\r\n".encode()
    resource = upload(sessions, settings, "避難所一覧.csv", data)
    link = url(UPLOADS, resource)
    assert link.endswith("/download/" + quote("避難所一覧.csv"))
    response = http.get(link)
    assert response.status_code == 200 and response.content == data
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"download.csv\"; filename*=UTF-8''"
        + quote("避難所一覧.csv", safe="")
    )
    assert response.headers["content-type"] == "text/csv; charset=utf-8"


def test_wrong_names_and_ids_are_404(
    http: httpx.Client, catalog: None, sessions: sessionmaker[Session]
) -> None:
    file = resources(sessions, "evacuation-space")["file"]
    base = f"/dataset/evacuation-space/resource/{file.id}"
    assert http.get(f"{base}/download/other.csv").status_code == 404
    assert http.get(f"/dataset/road-ledger/resource/{file.id}/download/x.csv").status_code == 404
    assert http.get("/dataset/evacuation-space/resource/nope/download/x.csv").status_code == 404
    layer = resources(sessions, "evacuation-space")["layer"]
    assert http.get(f"/dataset/evacuation-space/resource/{layer.id}/download/a").status_code == 404


# --- conversions -------------------------------------------------------------------------


def test_the_cp932_evacuation_csv_converts_to_utf8_with_bom(
    http: httpx.Client, catalog: None, sessions: sessionmaker[Session], demo_root: Path
) -> None:
    expected = rows_of((demo_root / EVACUATION_FILE).read_bytes().decode("cp932"))
    file = resources(sessions, "evacuation-space")["file"]
    response = http.get(f"/dataset/evacuation-space/resource/{file.id}/convert.csv")
    assert response.status_code == 200
    assert response.content.startswith(codecs.BOM_UTF8)
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="442020_evacuation_space.csv"' in response.headers["content-disposition"]
    assert rows_of(response.content.decode("utf-8-sig")) == expected
    assert len(expected) == 61 and "①" in expected[1][-1]

    cp932 = http.get(
        f"/dataset/evacuation-space/resource/{file.id}/convert.csv", params={"encoding": "cp932"}
    )
    assert cp932.status_code == 200
    assert cp932.headers["content-type"] == "text/csv; charset=Shift_JIS"
    assert rows_of(cp932.content.decode("cp932")) == expected


def test_the_evacuation_csv_converts_to_xlsx_with_the_same_rows(
    http: httpx.Client, catalog: None, sessions: sessionmaker[Session], demo_root: Path
) -> None:
    expected = rows_of((demo_root / EVACUATION_FILE).read_bytes().decode("cp932"))
    file = resources(sessions, "evacuation-space")["file"]
    response = http.get(f"/dataset/evacuation-space/resource/{file.id}/convert.xlsx")
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(response.content))
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    workbook = load_workbook(io.BytesIO(response.content), read_only=True)
    got = [
        ["" if v is None else v for v in row]
        for row in workbook.worksheets[0].iter_rows(values_only=True)
    ]
    assert got == expected


def test_the_population_workbook_converts_to_csv(
    http: httpx.Client, catalog: None, sessions: sessionmaker[Session]
) -> None:
    file = resources(sessions, "population-by-chocho-age")["file"]
    response = http.get(f"/dataset/population-by-chocho-age/resource/{file.id}/convert.csv")
    assert response.status_code == 200
    rows = rows_of(response.content.decode("utf-8-sig"))
    assert rows[0][:3] == ["全国地方公共団体コード", "地方公共団体名", "町丁名"]
    assert len(rows) == 51 and rows[1][0] == "442020"


def test_a_character_outside_cp932_is_a_400_naming_it(
    http: httpx.Client, catalog: None, sessions: sessionmaker[Session], settings: Settings
) -> None:
    data = "ID,名称\r\n1,吉田商店\r\n2,𠮷野家\r\n".encode()
    resource = upload(sessions, settings, "stores.csv", data)
    base = f"/dataset/{UPLOADS}/resource/{resource.id}"
    detail = problem(http.get(f"{base}/convert.csv", params={"encoding": "cp932"}), 400)
    assert "𠮷" in detail and "U+20BB7" in detail and "row 3, column 2 (名称)" in detail
    utf8 = http.get(f"{base}/convert.csv")
    assert utf8.status_code == 200 and "𠮷野家" in utf8.content.decode("utf-8-sig")
    assert "euc" in problem(http.get(f"{base}/convert.csv", params={"encoding": "euc-jp"}), 400)


def test_a_zip_bomb_xlsx_is_refused_on_conversion(
    http: httpx.Client, catalog: None, sessions: sessionmaker[Session], settings: Settings
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"0" * (60 * 1024 * 1024))
    resource = upload(sessions, settings, "bomb.xlsx", buffer.getvalue())
    base = f"/dataset/{UPLOADS}/resource/{resource.id}"
    assert "zip bomb" in problem(http.get(f"{base}/convert.csv"), 400)
    assert "zip bomb" in problem(http.get(f"{base}/convert.xlsx"), 400)
    # The original is still offered as it was uploaded.
    assert http.get(url(UPLOADS, resource)).content == buffer.getvalue()


def test_a_csv_that_is_not_csv_is_refused_on_conversion(
    http: httpx.Client, catalog: None, sessions: sessionmaker[Session], settings: Settings
) -> None:
    resource = upload(sessions, settings, "data.csv", bytes(range(256)) * 100)
    base = f"/dataset/{UPLOADS}/resource/{resource.id}"
    assert "binary" in problem(http.get(f"{base}/convert.xlsx"), 400)
    html = upload(sessions, settings, "page.csv", b"<!DOCTYPE html><html><body>404</body></html>")
    detail = problem(http.get(f"/dataset/{UPLOADS}/resource/{html.id}/convert.csv"), 400)
    assert "HTML" in detail


def test_non_tabular_resources_and_unknown_formats_are_refused(
    http: httpx.Client, catalog: None, sessions: sessionmaker[Session]
) -> None:
    file = resources(sessions, "youto-chiiki")["file"]  # a GeoPackage
    detail = problem(http.get(f"/dataset/youto-chiiki/resource/{file.id}/convert.csv"), 400)
    assert "CSV and XLSX" in detail
    evac = resources(sessions, "evacuation-space")["file"]
    assert http.get(f"/dataset/evacuation-space/resource/{evac.id}/convert.pdf").status_code == 404


def test_layer_resources_convert_through_the_layer_exports(
    http: httpx.Client, catalog: None, sessions: sessionmaker[Session]
) -> None:
    layer = resources(sessions, "population-by-chocho-age")["layer"]
    response = http.get(f"/dataset/population-by-chocho-age/resource/{layer.id}/convert.xlsx")
    assert response.status_code == 200
    workbook = load_workbook(io.BytesIO(response.content), read_only=True)
    rows = list(workbook.worksheets[0].iter_rows(values_only=True))
    assert len(rows) == 51 and rows[0][0] == "全国地方公共団体コード"
    assert isinstance(rows[1][4], int)  # 総人口 stays a number
    roads = resources(sessions, "road-ledger")["layer"]
    detail = problem(http.get(f"/dataset/road-ledger/resource/{roads.id}/convert.xlsx"), 400)
    assert "LineString" in detail


# --- layer exports -----------------------------------------------------------------------


@pytest.mark.parametrize("layer_id", ["roads", "zoning", "barriers", "evacuation_sites"])
def test_layer_geojson_has_every_feature(
    http: httpx.Client, catalog: None, sessions: sessionmaker[Session], layer_id: str
) -> None:
    with session_scope(sessions) as session:
        expected = get_layer(session, SYSTEM, layer_id).feature_count
    response = http.get(f"/download/{layer_id}.geojson")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/geo+json"
    assert response.headers["content-disposition"] == f'attachment; filename="{layer_id}.geojson"'
    collection = json.loads(response.content)
    assert collection["type"] == "FeatureCollection"
    assert len(collection["features"]) == expected > 0
    feature = collection["features"][0]
    assert feature["type"] == "Feature" and feature["geometry"]["type"]
    assert isinstance(feature["id"], int) and "geom" not in feature["properties"]


def test_the_catalog_links_layer_resources_to_the_exports(
    http: httpx.Client, catalog: None, sessions: sessionmaker[Session]
) -> None:
    for name in ("road-ledger", "population-by-chocho-age"):
        link = url(name, resources(sessions, name)["layer"])
        assert http.get(link).status_code == 200, link


def test_layer_csv_has_a_bom_and_coordinates(
    http: httpx.Client, catalog: None, sessions: sessionmaker[Session]
) -> None:
    with session_scope(sessions) as session:
        expected = get_layer(session, SYSTEM, "evacuation_sites").feature_count
    response = http.get("/download/evacuation_sites.csv")
    assert response.status_code == 200 and response.content.startswith(codecs.BOM_UTF8)
    rows = rows_of(response.content.decode("utf-8-sig"))
    assert len(rows) == expected + 1
    lat, lon = rows[0].index("緯度"), rows[0].index("経度")
    assert 33 < float(rows[1][lat]) < 34 and 131 < float(rows[1][lon]) < 132
    roads = rows_of(http.get("/download/roads.csv", params={"limit": 3}).text.lstrip("\ufeff"))
    assert roads[0][-1] == "wkt" and roads[1][-1].startswith("LINESTRING") and len(roads) == 4
    cp932 = http.get("/download/evacuation_sites.csv", params={"encoding": "cp932"})
    assert cp932.status_code == 200 and cp932.headers["content-length"]
    assert rows_of(cp932.content.decode("cp932")) == rows
    population = http.get("/download/population.csv")
    assert population.status_code == 200
    assert len(rows_of(population.content.decode("utf-8-sig"))) == 51


def test_limit_and_bbox_cut_the_export(http: httpx.Client, catalog: None) -> None:
    five = http.get("/download/roads.geojson", params={"limit": 5}).json()
    assert len(five["features"]) == 5
    box = (131.48, 33.27, 131.50, 33.29)
    inside = http.get("/download/barriers.geojson", params={"bbox": ",".join(map(str, box))})
    features = inside.json()["features"]
    everything = http.get("/download/barriers.geojson").json()["features"]
    assert 0 < len(features) < len(everything)
    for feature in features:
        x, y = feature["geometry"]["coordinates"]
        assert box[0] <= x <= box[2] and box[1] <= y <= box[3]
    csv_rows = rows_of(
        http.get("/download/barriers.csv", params={"bbox": ",".join(map(str, box))}).text
    )
    assert len(csv_rows) == len(features) + 1


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"bbox": "1,2,3"}, "four numbers"),
        ({"bbox": "a,b,c,d"}, "four numbers"),
        ({"bbox": "132,33,131,34"}, "minimum not above"),
        ({"bbox": "0,95,1,96"}, "latitudes"),
        ({"limit": "0"}, "limit"),
        ({"limit": "100001"}, "limit"),
        ({"encoding": "latin-1"}, "cp932"),
    ],
)
def test_bad_export_parameters_are_400_with_the_reason(
    http: httpx.Client, catalog: None, params: dict[str, str], needle: str
) -> None:
    assert needle in problem(http.get("/download/roads.geojson", params=params), 400)


def test_a_table_layer_has_no_geojson_and_unknown_formats_are_404(
    http: httpx.Client, catalog: None
) -> None:
    assert "without geometries" in problem(http.get("/download/population.geojson"), 400)
    assert http.get("/download/roads.pdf").status_code == 404
    assert http.get("/download/nosuchlayer.geojson").status_code == 404


# --- visibility --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def staff(catalog: None, sessions: sessionmaker[Session]) -> dict[str, Staff]:
    return {d: make_staff(sessions, department=d) for d in ("suido", "doboku", "fukushi")}


@pytest.mark.parametrize("fmt", ["geojson", "csv", "xlsx"])
def test_water_mains_exports_only_for_suido_and_doboku(
    http: httpx.Client, staff: dict[str, Staff], fmt: str
) -> None:
    path = f"/download/water_mains.{fmt}"
    anonymous = http.get(path)
    assert anonymous.status_code == 404 and "water_mains" in anonymous.json()["detail"]
    assert http.get(path, headers=bearer(staff["fukushi"])).status_code == 404
    if fmt == "xlsx":  # lines have no XLSX export, but the answer is 400 only once visible
        assert http.get(path, headers=bearer(staff["suido"])).status_code == 400
        return
    for department in ("suido", "doboku"):
        response = http.get(path, headers=bearer(staff[department]))
        assert response.status_code == 200, department
        assert response.headers["cache-control"] == "private, no-store"


def test_the_water_mains_original_and_conversions_are_hidden(
    http: httpx.Client, staff: dict[str, Staff], sessions: sessionmaker[Session]
) -> None:
    found = resources(sessions, "water-mains")
    original = url("water-mains", found["file"])
    convert = f"/dataset/water-mains/resource/{found['layer'].id}/convert.csv"
    for path in (original, convert):
        assert http.get(path).status_code == 404
        assert http.get(path, headers=bearer(staff["fukushi"])).status_code == 404
    response = http.get(original, headers=bearer(staff["suido"]))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "private, no-store"
    assert json.loads(response.content)["type"] == "FeatureCollection"
    assert http.get(convert, headers=bearer(staff["doboku"])).status_code == 200


# --- uploads -----------------------------------------------------------------------------


def test_an_upload_over_the_size_limit_is_refused_and_leaves_nothing(
    catalog: None, sessions: sessionmaker[Session], settings: Settings
) -> None:
    def count() -> int:
        with session_scope(sessions) as session:
            return int(session.execute(select(func.count()).select_from(Resource)).scalar_one())

    before = count()
    with pytest.raises(PayloadTooLarge, match="larger than the limit of 1,024 bytes"):
        with session_scope(sessions) as session:
            add_resource(
                session,
                SYSTEM,
                UPLOADS,
                ResourceCreate(name="too big"),
                upload=io.BytesIO(b"x" * 4096),
                file_name="big.csv",
                storage=LocalStorage(settings.data_dir),
                max_bytes=1024,
            )
    assert count() == before
    assert not list(Path(settings.data_dir).rglob(".upload-*"))


def test_hidden_answers_look_exactly_like_missing_ones(
    http: httpx.Client, staff: dict[str, Staff], sessions: sessionmaker[Session]
) -> None:
    """The 404 for a hidden layer or file is the 404 for a made-up one: no existence oracle."""
    for caller in ({}, bearer(staff["fukushi"])):
        hidden = http.get("/download/water_mains.geojson", headers=caller)
        missing = http.get("/download/water_mainz.geojson", headers=caller)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["detail"].replace("water_mains", "X") == missing.json()[
            "detail"
        ].replace("water_mainz", "X")
        file = resources(sessions, "water-mains")["file"]
        real = http.get(url("water-mains", file), headers=caller)
        fake_url = url("water-mains", file).replace(str(file.id), str(uuid.uuid4()))
        fake = http.get(fake_url, headers=caller)
        assert real.status_code == fake.status_code == 404
        assert real.json() == fake.json()
