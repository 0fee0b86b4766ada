"""The OGC API over HTTP: documents, paging, CRS, bad input, editing rules, tiles, records."""

import json
from pathlib import Path

import httpx
import mapbox_vector_tile
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from portal.api.ogc.conformance import CONFORMS_TO
from portal.core.principal import Role
from tests.ogc.support import load_points_layer
from tests.staff import make_staff

QGIS_FILTER_CLASSES = {
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
}
BEPPU_Z14 = "14/6584/14176"


@pytest.fixture(scope="module")
def points(
    engine: Engine, sessions: sessionmaker[Session], tmp_path_factory: pytest.TempPathFactory
) -> str:
    return load_points_layer(
        engine, sessions, tmp_path_factory.mktemp("api"), layer_id="api_points"
    )


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "description"}
    assert "SELECT" not in body["description"] and "Traceback" not in body["description"]
    return str(body["description"])


def test_the_landing_page_links_the_api_conformance_collections_and_catalog(
    demo_city: object, http: httpx.Client
) -> None:
    links = {link["rel"]: link for link in http.get("/ogc").json()["links"]}
    assert links["service-desc"]["type"].startswith("application/vnd.oai.openapi+json")
    assert http.get(links["service-desc"]["href"]).json()["openapi"].startswith("3.0")
    assert links["conformance"]["href"].endswith("/ogc/conformance")
    assert links["data"]["href"].endswith("/ogc/collections")
    assert links["http://www.opengis.net/def/rel/ogc/1.0/catalog"]["href"].endswith(
        "/ogc/collections/catalog"
    )


def test_links_follow_the_proxy_headers(demo_city: object, http: httpx.Client) -> None:
    headers = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "opendata.city.example.jp",
        "X-Forwarded-Prefix": "/portal",
    }
    body = http.get("/ogc/collections/roads", headers=headers).json()
    assert all(
        link["href"].startswith("https://opendata.city.example.jp/portal/ogc/")
        for link in body["links"]
        if "/ogc/" in link["href"]
    )
    hostile = http.get("/ogc", headers={"X-Forwarded-Host": "evil.example/<script>"}).json()
    assert all("evil.example" not in link["href"] for link in hostile["links"])


def test_conformance_declares_what_qgis_needs_to_push_filters(http: httpx.Client) -> None:
    declared = set(http.get("/ogc/conformance").json()["conformsTo"])
    assert QGIS_FILTER_CLASSES <= declared
    assert declared == set(CONFORMS_TO)


def test_the_openapi_document_resolves_offline(demo_city: object, http: httpx.Client) -> None:
    document = http.get("/ogc/api").text
    assert "schemas.opengis.net" not in document
    refs = [value for value in _walk(json.loads(document)) if isinstance(value, str)]
    assert refs and all(ref.startswith("#/") for ref in refs)


def _walk(node: object) -> list[object]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [ref for value in node.values() for ref in _walk(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _walk(value)]
    return []


def test_a_collection_carries_extent_crs_licence_department_and_style(
    demo_city: object, http: httpx.Client
) -> None:
    zoning = http.get("/ogc/collections/zoning").json()
    assert zoning["storageCrs"] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    assert "http://www.opengis.net/def/crs/EPSG/0/6670" in zoning["crs"]
    assert len(zoning["extent"]["spatial"]["bbox"][0]) == 4
    assert zoning["featureCount"] > 0 and zoning["department"]
    assert zoning["style"]["classify"]["property"] == "A29_004"
    assert any(link["rel"] == "license" for link in zoning["links"])
    assert {link["type"] for link in zoning["links"] if link["rel"] == "enclosure"} >= {
        "application/geopackage+sqlite3",
        "application/zip",
    }


def test_paging_with_next_links_returns_every_feature_once(
    demo_city: object, http: httpx.Client, engine: Engine
) -> None:
    with engine.connect() as connection:
        expected = connection.scalar(text("SELECT count(*) FROM layers.evacuation_sites"))
    seen: list[int] = []
    url: str | None = "/ogc/collections/evacuation_sites/items?limit=7"
    while url:
        page = http.get(url).json()
        assert page["numberMatched"] == expected
        seen.extend(feature["id"] for feature in page["features"])
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert sorted(seen) == sorted(set(seen)) and len(seen) == expected


def test_a_crs_request_gives_plane_coordinates_northing_first_and_says_so(
    points: str, http: httpx.Client
) -> None:
    response = http.get(f"/ogc/collections/{points}/items?crs=EPSG:6670&filter=番号=1")
    assert response.headers["content-crs"] == "<http://www.opengis.net/def/crs/EPSG/0/6670>"
    x, y = response.json()["features"][0]["geometry"]["coordinates"]
    assert x == pytest.approx(31668.7, abs=1) and y == pytest.approx(45770.6, abs=1)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("bbox=131,33,132", "must be 4 numbers"),
        ("bbox=132,33,131,34", "minimum above its maximum"),
        ("bbox=a,b,c,d", "must be 4 numbers"),
        ("crs=EPSG:9999", "crs 'EPSG:9999' is not a supported CRS"),
        ("bbox-crs=EPSG:2000&bbox=1,2,3,4", "bbox-crs 'EPSG:2000' is not a supported CRS"),
        ("limit=0", "limit must be a whole number"),
        ("limit=-1", "limit must be a whole number"),
        ("limit=10001", "limit must be a whole number"),
        ("limit=99999999999999999999", "limit must be a whole number"),
        ("filter=路線名 = ", "filter"),
        ("filter=nosuch = 1", "unknown property 'nosuch'"),
        ("filter=路線名 = 'x'; DROP TABLE layers.roads; --", "filter"),
        ("filter=pg_sleep(10) = 1", "pg_sleep"),
        ('filter-lang=cql2-json&filter={"op": "="}', "filter"),
        ("datetime=yesterday", "datetime"),
        ("f=xml", "f='xml' is not offered; choose json, html, gpkg, shp, kml, csv or xlsx"),
    ],
)
def test_bad_item_queries_get_a_400_that_names_the_problem(
    demo_city: object, http: httpx.Client, engine: Engine, query: str, message: str
) -> None:
    description = _error(http.get(f"/ogc/collections/roads/items?{query}"), 400)
    assert message in description
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM layers.roads")) > 0


@pytest.mark.parametrize(
    ("tile", "message"),
    [
        ("23/0/0", "tile matrix (zoom level) 23 is outside 0..22"),
        ("3/8/0", "tile row 8 is outside 0..7 at zoom 3"),
        ("3/0/9", "tile column 9 is outside 0..7 at zoom 3"),
        ("3/-1/0", "tile row -1 is outside 0..7 at zoom 3"),
        ("3/x/0", "tile row 'x' is not a whole number 0..7"),
    ],
)
def test_tile_coordinates_out_of_range_get_a_400(
    demo_city: object, http: httpx.Client, tile: str, message: str
) -> None:
    response = http.get(f"/ogc/collections/roads/tiles/WebMercatorQuad/{tile}")
    assert _error(response, 400) == message


def test_a_tile_is_mvt_and_the_second_request_comes_from_the_cache(
    demo_city: object, http: httpx.Client
) -> None:
    first = http.get(f"/ogc/collections/roads/tiles/WebMercatorQuad/{BEPPU_Z14}")
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    decoded = mapbox_vector_tile.decode(first.content)
    assert decoded["roads"]["features"]
    again = http.get(
        f"/ogc/collections/roads/tiles/WebMercatorQuad/{BEPPU_Z14}",
        headers={"If-None-Match": first.headers["etag"]},
    )
    assert again.status_code == 304


def test_tilejson_and_tileset_metadata_point_at_the_tiles(
    demo_city: object, http: httpx.Client
) -> None:
    tilejson = http.get("/ogc/collections/roads/tiles/WebMercatorQuad?f=tilejson").json()
    assert tilejson["tiles"][0].endswith(
        "/ogc/collections/roads/tiles/WebMercatorQuad/{z}/{y}/{x}?f=mvt"
    )
    tileset = http.get("/ogc/collections/roads/tiles/WebMercatorQuad").json()
    assert tileset["dataType"] == "vector"


def test_options_offers_editing_only_to_editors_of_the_owning_department(
    points: str, http: httpx.Client, sessions: sessionmaker[Session]
) -> None:
    anonymous = http.options(f"/ogc/collections/{points}/items")
    assert anonymous.headers["allow"] == "GET, HEAD, OPTIONS"
    viewer = make_staff(sessions, department="doboku", role=Role.viewer)
    editor = make_staff(sessions, department="doboku", role=Role.editor)
    other = make_staff(sessions, department="fukushi", role=Role.admin)
    for staff, allowed in ((viewer, False), (editor, True), (other, False)):
        headers = {"Authorization": f"Bearer {staff.token}"}
        items = http.options(f"/ogc/collections/{points}/items", headers=headers)
        item = http.options(f"/ogc/collections/{points}/items/1", headers=headers)
        assert ("POST" in items.headers["allow"]) is allowed
        assert ("PUT" in item.headers["allow"] and "DELETE" in item.headers["allow"]) is allowed


def test_edits_check_geometry_type_validity_and_the_etag(
    points: str, http: httpx.Client, sessions: sessionmaker[Session]
) -> None:
    editor = make_staff(sessions, department="doboku", role=Role.editor)
    auth = {"Authorization": f"Bearer {editor.token}", "Content-Type": "application/geo+json"}
    url = f"/ogc/collections/{points}/items"
    line = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "LineString", "coordinates": [[131.49, 33.28], [131.5, 33.29]]},
    }
    assert "holds Point geometries; got LineString" in _error(
        http.post(url, json=line, headers=auth), 400
    )
    broken = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Point", "coordinates": [131.49]},
    }
    _error(http.post(url, json=broken, headers=auth), 400)
    assert "the body is not valid JSON" in _error(http.post(url, content=b"{", headers=auth), 400)

    created = http.post(
        url,
        json={
            "type": "Feature",
            "properties": {"名称": "ベンチ"},
            "geometry": {"type": "Point", "coordinates": [131.49, 33.28]},
        },
        headers=auth,
    )
    assert created.status_code == 201
    item = created.headers["location"].split("/ogc", 1)[1]
    etag = http.get(f"/ogc{item}").headers["etag"]
    assert etag == created.headers["etag"]
    patched = http.patch(
        f"/ogc{item}", json={"properties": {"名称": "新ベンチ"}}, headers={**auth, "If-Match": etag}
    )
    assert patched.status_code == 204 and patched.headers["etag"] != etag
    stale = http.patch(
        f"/ogc{item}", json={"properties": {"名称": "古い"}}, headers={**auth, "If-Match": etag}
    )
    assert "has changed since you read it" in _error(stale, 412)
    assert http.get(f"/ogc{item}").json()["properties"]["名称"] == "新ベンチ"
    assert (
        http.delete(
            f"/ogc{item}", headers={**auth, "If-Match": patched.headers["etag"]}
        ).status_code
        == 204
    )
    assert http.get(f"/ogc{item}").status_code == 404


def test_an_oversized_edit_is_refused_before_it_is_read(
    points: str, http: httpx.Client, sessions: sessionmaker[Session]
) -> None:
    editor = make_staff(sessions, department="doboku", role=Role.editor)
    body = b'{"type": "Feature", "properties": {"x": "' + b"a" * (6 * 1024 * 1024) + b'"}}'
    response = http.post(
        f"/ogc/collections/{points}/items",
        content=body,
        headers={"Authorization": f"Bearer {editor.token}", "Content-Type": "application/geo+json"},
    )
    assert _error(response, 413) == "a feature may be at most 5 MB"


def test_records_search_the_catalog_in_japanese(demo_city: object, http: httpx.Client) -> None:
    page = http.get("/ogc/collections/catalog/items", params={"q": "避難", "limit": 100}).json()
    # Harvester tests add shelters of their own to the session's catalog; the demo's must be there.
    assert "evacuation-space" in [record["id"] for record in page["features"]]
    assert page["numberMatched"] == len(page["features"])
    assert "water-mains" not in [record["id"] for record in page["features"]]
    record = http.get("/ogc/collections/catalog/items/evacuation-space").json()
    assert record["properties"]["title"].startswith("指定緊急避難場所")
    assert _error(http.get("/ogc/collections/catalog/items?limit=0"), 400) == (
        "limit must be between 1 and 1000, got 0"
    )


def test_layer_downloads_take_the_same_filters_and_crs(
    demo_city: object, http: httpx.Client, tmp_path: Path
) -> None:
    import pyogrio

    response = http.get(
        "/ogc/collections/roads/items",
        params={"f": "gpkg", "crs": "EPSG:6670", "bbox": "131.485,33.275,131.495,33.285"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/geopackage+sqlite3"
    target = tmp_path / "roads.gpkg"
    target.write_bytes(response.content)
    info = pyogrio.read_info(target)
    whole = http.get("/ogc/collections/roads").json()["featureCount"]
    assert 0 < info["features"] < whole
    assert info["crs"] == "EPSG:6670"
