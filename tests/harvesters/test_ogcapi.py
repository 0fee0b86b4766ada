"""The ogcapi harvester against a small static OGC API - Features server on 127.0.0.1."""

import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.departments import ensure_department
from portal.catalog.models import Dataset, Resource
from portal.core.database import session_scope
from portal.core.errors import InvalidInput
from portal.core.settings import Settings
from portal.harvesters import http
from portal.harvesters.kinds import gdal_net
from portal.harvesters.kinds.ogcapi import CRS84, OgcApiConfig, OgcApiHarvester
from tests.harvest_support import add_source, harvest

FIXTURES = Path(__file__).parent / "fixtures" / "ogcapi"
DEPARTMENT = "ogcapi-test"


class OgcServer:
    """Serves the fixture files as an OGC API; records every request; pages by ?page=N."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.overrides: dict[str, str] = {}
        self.failing: set[str] = set()
        self.broken: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append(self.path)
                body = owner.answer(self.path)
                if any(fragment in self.path for fragment in owner.failing):
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    owner.broken.append(self.path)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, raw_path: str) -> str | None:
        parts = urlsplit(raw_path)
        path = parts.path.rstrip("/")
        page = parse_qs(parts.query).get("page", ["1"])[0]
        if path == "/collections":
            files = sorted((FIXTURES / "collections").glob("*.json"))
            return json.dumps({"collections": [json.loads(self.text(f) or "") for f in files]})
        key = {
            "": "landing.json",
            "/conformance": "conformance.json",
        }.get(path)
        if key is None and path.startswith("/collections/"):
            segments = path.split("/")
            if len(segments) == 3:
                key = f"collections/{segments[2]}.json"
            elif len(segments) == 4 and segments[3] == "items":
                key = f"collections/{segments[2]}/items-{page}.json"
        if key is None:
            return None
        return self.text(FIXTURES / key)

    def text(self, file: Path) -> str | None:
        key = str(file.relative_to(FIXTURES))
        if key in self.overrides:
            return self.overrides[key].replace("{base}", self.url)
        if not file.is_file():
            return None
        return file.read_text(encoding="utf-8").replace("{base}", self.url)

    def saw(self, fragment: str) -> bool:
        return any(fragment in request for request in self.requests)


@pytest.fixture
def ogc_server() -> Iterator[OgcServer]:
    server = OgcServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


@pytest.fixture(scope="module", autouse=True)
def department(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        ensure_department(session, slug=DEPARTMENT, name="OGC試験課", name_en=None)


def _source(sessions: sessionmaker[Session], url: str, **config: object) -> str:
    name = f"ogc-{secrets.token_hex(3)}"
    add_source(
        sessions, name=name, kind="ogcapi", url=url, department=DEPARTMENT, config=dict(config)
    )
    return name


def _datasets(sessions: sessionmaker[Session], source: str) -> dict[str, Dataset]:
    with session_scope(sessions) as session:
        rows = session.execute(
            select(Dataset).where(Dataset.name.like(f"{source}-%"), Dataset.state == "active")
        ).scalars()
        found = {d.name: d for d in rows}
        session.expunge_all()
    return found


def _layer_rows(
    sessions: sessionmaker[Session], settings: Settings, dataset: str, column: str
) -> list[tuple[str, str]]:
    with session_scope(sessions) as session:
        layer_id = session.execute(
            select(Resource.layer_id)
            .join(Dataset, Dataset.id == Resource.dataset_id)
            .where(Dataset.name == dataset, Resource.kind == "layer")
        ).scalar_one()
    with psycopg.connect(settings.database_url) as connection:
        return [
            (str(row[0]), str(row[1]))
            for row in connection.execute(
                f'SELECT "{column}", ST_AsText(geom) FROM layers."{layer_id}" ORDER BY fid'
            )
        ]


def test_config_defaults_and_refusals() -> None:
    harvester = OgcApiHarvester()
    assert harvester.validate_config("https://gis.example.jp/ogc/", {}) == {}
    defaults = OgcApiConfig.model_validate({})
    assert (defaults.collections, defaults.max_features, defaults.crs) == ([], 1_000_000, CRS84)
    chosen = {"collections": [" shelters ", "shelters"], "crs": "EPSG:6670", "max_features": 10}
    assert harvester.validate_config("https://a.example.jp", chosen) == {
        "collections": ["shelters"],
        "crs": "EPSG:6670",
        "max_features": 10,
    }
    for url, bad in (
        ("ftp://a.example.jp", {}),
        ("https://a.example.jp/?key=1", {}),
        ("https://a.example.jp", {"layers": ["x"]}),
        ("https://a.example.jp", {"collections": "shelters"}),
        ("https://a.example.jp", {"max_features": 0}),
        ("https://a.example.jp", {"crs": "EPSG:999999"}),
    ):
        with pytest.raises(InvalidInput):
            harvester.validate_config(url, bad)


def test_harvest_pages_through_next_links(
    ogc_server: OgcServer, sessions: sessionmaker[Session], settings: Settings
) -> None:
    source = _source(sessions, ogc_server.url + "/")
    outcome = harvest(sessions, settings, source)
    assert outcome.status == "succeeded", (outcome.error, [o.message for o in outcome.objects])
    assert outcome.stats == {"created": 2}
    # Every page of the shelters collection was requested, by following rel=next.
    assert ogc_server.saw("/collections/shelters/items?page=2")
    assert ogc_server.saw("/collections/shelters/items?page=3")
    datasets = _datasets(sessions, source)
    assert {d.title for d in datasets.values()} == {"指定避難所", "河川"}
    shelters = datasets[f"{source}-shelters"]
    assert shelters.notes == "災害時に生活する指定避難所の所在地と収容人数"
    assert shelters.extras["ogcapi_features"] == 5
    rows = _layer_rows(sessions, settings, shelters.name, "名称")
    assert [name for name, _ in rows] == [
        "別府市役所",
        "浜脇中学校",
        "亀川小学校",
        "鉄輪公民館",
        "南部公民館",
    ]
    assert rows[0][1] == "POINT(131.4914 33.2846)"
    rivers = _layer_rows(sessions, settings, f"{source}-rivers", "河川名")
    assert [name for name, _ in rivers] == ["境川", "朝見川"]
    assert rivers[0][1].startswith("LINESTRING(131.462 33.289")
    with session_scope(sessions) as session:
        files = session.execute(
            select(Resource.format, Resource.size).where(
                Resource.dataset_id == shelters.id, Resource.kind == "file"
            )
        ).all()
    assert len(files) == 1 and files[0][0] == "GPKG" and files[0][1] > 0


def test_reharvest_without_change_is_unchanged_and_change_updates(
    ogc_server: OgcServer, sessions: sessionmaker[Session], settings: Settings
) -> None:
    source = _source(sessions, ogc_server.url)
    assert harvest(sessions, settings, source).stats == {"created": 2}
    ogc_server.requests.clear()
    again = harvest(sessions, settings, source)
    assert again.status == "succeeded"
    assert again.stats == {"unchanged": 2}
    # rivers says when it was updated, so its features are not even downloaded again;
    # shelters does not, so it is downloaded and its content hash decides.
    assert not ogc_server.saw("/collections/rivers/items")
    assert ogc_server.saw("/collections/shelters/items?page=3")

    page = (FIXTURES / "collections/shelters/items-3.json").read_text(encoding="utf-8")
    ogc_server.overrides["collections/shelters/items-3.json"] = page.replace(
        '"収容人数": 90', '"収容人数": 95'
    ).replace("南部公民館", "南部地区公民館")
    changed = harvest(sessions, settings, source)
    assert changed.stats == {"updated": 1, "unchanged": 1}
    assert [o.remote_id for o in changed.by_status("updated")] == ["shelters"]
    names = [n for n, _ in _layer_rows(sessions, settings, f"{source}-shelters", "名称")]
    assert names[-1] == "南部地区公民館"


def test_feature_limit_fails_the_collection_with_an_actionable_message(
    ogc_server: OgcServer, sessions: sessionmaker[Session], settings: Settings
) -> None:
    source = _source(sessions, ogc_server.url, max_features=3)
    outcome = harvest(sessions, settings, source)
    assert outcome.status == "partial"
    [failed] = outcome.by_status("failed")
    assert failed.remote_id == "shelters"
    assert failed.message is not None and "max_features" in failed.message
    assert "has 5 features, over the limit of 3" in failed.message
    # The server announced 5 (numberMatched), so nothing past the first page was downloaded.
    assert not ogc_server.saw("page=2")
    assert [o.remote_id for o in outcome.by_status("created")] == ["rivers"]


def test_chosen_collections_and_a_missing_one(
    ogc_server: OgcServer, sessions: sessionmaker[Session], settings: Settings
) -> None:
    source = _source(sessions, ogc_server.url, collections=["rivers", "parks"])
    outcome = harvest(sessions, settings, source)
    assert outcome.status == "partial"
    assert [o.remote_id for o in outcome.by_status("created")] == ["rivers"]
    [missing] = outcome.by_status("failed")
    assert missing.remote_id == "parks"
    assert missing.message is not None and "does not list the collection 'parks'" in missing.message
    assert not ogc_server.saw("/collections/shelters/items")


def test_private_address_refused_without_the_admin_allowance(
    ogc_server: OgcServer, sessions: sessionmaker[Session], settings: Settings
) -> None:
    name = f"ogc-{secrets.token_hex(3)}"
    add_source(
        sessions,
        name=name,
        kind="ogcapi",
        url=ogc_server.url,
        department=DEPARTMENT,
        private_network=False,
    )
    outcome = harvest(sessions, settings, name)
    assert outcome.status == "failed"
    assert outcome.error is not None and "loopback address" in outcome.error
    assert ogc_server.requests == []


def test_next_link_to_a_refused_host_is_never_fetched(
    ogc_server: OgcServer,
    sessions: sessionmaker[Session],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GDAL follows rel=next itself; the proxy still checks every host it is sent to."""
    elsewhere = OgcServer()
    elsewhere.thread.start()
    try:
        refused_port = elsewhere.server.server_address[1]
        checked = gdal_net.vet_host

        def vet(host: str, port: int, *, allow_private: bool) -> list[str]:
            if port == refused_port:
                raise http.Refused(f"{host} is an internal address (test)")
            return checked(host, port, allow_private=allow_private)

        monkeypatch.setattr(gdal_net, "vet_host", vet)
        page = (FIXTURES / "collections/shelters/items-1.json").read_text(encoding="utf-8")
        ogc_server.overrides["collections/shelters/items-1.json"] = page.replace(
            "{base}/collections/shelters/items?page=2", f"{elsewhere.url}/secrets?page=2"
        )
        source = _source(sessions, ogc_server.url, collections=["shelters"])
        outcome = harvest(sessions, settings, source)
    finally:
        elsewhere.server.shutdown()
        elsewhere.server.server_close()
    assert outcome.status == "failed"
    [failed] = outcome.by_status("failed")
    assert failed.message is not None and "internal address (test)" in failed.message
    assert elsewhere.requests == []
    assert _datasets(sessions, source) == {}


def test_html_instead_of_collections_fails_the_job(
    ogc_server: OgcServer, sessions: sessionmaker[Session], settings: Settings
) -> None:
    ogc_server.overrides["collections"] = "<html><body>メンテナンス中</body></html>"
    original = ogc_server.answer

    def answer(raw_path: str) -> str | None:
        if urlsplit(raw_path).path.rstrip("/") == "/collections":
            return ogc_server.overrides["collections"]
        return original(raw_path)

    ogc_server.answer = answer  # type: ignore[method-assign]
    source = _source(sessions, ogc_server.url)
    outcome = harvest(sessions, settings, source)
    assert outcome.status == "failed"
    assert outcome.error is not None and "returned HTML, not JSON" in outcome.error


def test_a_failed_page_fails_the_collection_instead_of_truncating_it(
    ogc_server: OgcServer, sessions: sessionmaker[Session], settings: Settings
) -> None:
    """GDAL ends a layer quietly when a page fails; the harvester must notice."""
    source = _source(sessions, ogc_server.url, collections=["shelters"], retries=0)
    assert harvest(sessions, settings, source).stats == {"created": 1}
    # Without numberMatched, the last response's error status gives it away.
    for number in (1, 2, 3):
        key = f"collections/shelters/items-{number}.json"
        page = json.loads((FIXTURES / key).read_text(encoding="utf-8"))
        del page["numberMatched"]
        ogc_server.overrides[key] = json.dumps(page, ensure_ascii=False)
    ogc_server.failing.add("page=3")
    outcome = harvest(sessions, settings, source)
    assert outcome.status == "failed"
    [failed] = outcome.by_status("failed")
    assert failed.message is not None and "HTTP 500" in failed.message
    assert ogc_server.saw("page=3")
    # With numberMatched, a next link GDAL cannot follow at all is caught by the count.
    ogc_server.overrides.clear()
    ogc_server.failing.clear()
    page = (FIXTURES / "collections/shelters/items-1.json").read_text(encoding="utf-8")
    ogc_server.overrides["collections/shelters/items-1.json"] = page.replace(
        "{base}/collections/shelters/items?page=2", "file:///etc/hostname"
    )
    outcome = harvest(sessions, settings, source)
    [failed] = outcome.by_status("failed")
    assert failed.message is not None
    assert "announced 5 features but only 2 could be read" in failed.message
    # The previous version stays in place.
    names = [n for n, _ in _layer_rows(sessions, settings, f"{source}-shelters", "名称")]
    assert len(names) == 5


def test_download_limit_applies_to_what_gdal_fetches(
    ogc_server: OgcServer, sessions: sessionmaker[Session], settings: Settings
) -> None:
    source = _source(sessions, ogc_server.url, max_download_bytes=1024)
    outcome = harvest(sessions, settings, source)
    assert outcome.status == "failed"
    messages = [o.message or "" for o in outcome.by_status("failed")]
    assert len(messages) == 2
    assert all("more than 1,024 bytes, the download limit" in m for m in messages), messages
    assert _datasets(sessions, source) == {}
