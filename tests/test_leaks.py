"""Visibility: a department-only layer leaks through no surface.

Every surface that shows layers, datasets or their contents must be listed in
SURFACES below. Later work (catalog search and facets, the CKAN API, DCAT,
downloads, OGC collections, items, tiles and records, the map, reports) must
add its new surfaces here, so that this one test keeps proving that
`water_mains` (department `suido`, shared with `doboku`) is visible exactly to
suido and doboku staff: nobody else may see its name, its features or its count.
"""

from collections.abc import Callable

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from portal.core.database import session_scope
from portal.core.principal import ANONYMOUS, Role
from portal.core.tokens import authenticate_token
from portal.demo.load import DemoLoad
from portal.geo.registry import get_layer, list_layers
from tests.staff import Staff, make_staff

SURFACES = [
    "/",
    "/?lang=en",
    "/staff",
    "/staff/layers",
    "/staff/tokens",
    "/staff/datasets",
    "/staff/harvest",
    "/openapi.json",
    "/healthz",
    "/dataset",
    "/dataset?q=上水道",
    "/dataset?q=water",
    "/dataset?organization=suido",
    "/dataset?tags=上水道",
    "/dataset?groups=energy-water",
    "/dataset?lang=en",
    "/organization",
    "/organization/suido",
    "/group",
    "/group/energy-water",
    "/api/3/action/package_search?q=水道",
    "/api/3/action/package_search?q=water",
    "/api/3/action/package_search?rows=1000&include_private=true",
    '/api/3/action/package_search?include_private=true&facet.field=["organization","groups","tags","res_format","license_id"]',
    "/api/3/action/package_list",
    "/api/action/package_list",
    "/api/3/action/current_package_list_with_resources?limit=1000",
    "/api/3/action/organization_list?all_fields=true",
    "/api/3/action/organization_show?id=suido&include_datasets=true",
    "/api/3/action/group_list?all_fields=true",
    "/api/3/action/group_show?id=energy-water&include_datasets=true",
    "/api/3/action/tag_list?all_fields=true",
    "/catalog.ttl",
    "/catalog.rdf",
    "/catalog.jsonld",
    "/catalog.ttl?modified_since=2000-01-01&page_size=2&page=2",
    "/dataset/road-ledger.ttl",
    "/dataset/road-ledger.jsonld",
    "/download/roads.geojson",
    "/download/roads.csv",
    "/download/barriers.csv?encoding=cp932",
    "/download/evacuation_sites.geojson?limit=10&bbox=131,33,132,34",
    "/download/roads.gpkg",
    "/download/roads.shp.zip",
    "/download/roads.kml",
    "/download/barriers.xlsx",
    "/ogc",
    "/ogc?f=html",
    "/ogc/conformance",
    "/ogc/api",
    "/ogc/collections",
    "/ogc/collections?f=html",
    "/ogc/collections?itemType=record",
    "/ogc/collections/roads",
    "/ogc/collections/roads?f=html",
    "/ogc/collections/roads/items?limit=5",
    "/ogc/collections/roads/items?f=html&limit=5",
    "/ogc/collections/roads/items?f=gpkg&limit=5",
    "/ogc/collections/roads/tiles",
    "/ogc/collections/catalog",
    "/ogc/collections/catalog/items?q=水道",
    "/ogc/collections/catalog/items?q=water",
    "/ogc/collections/catalog/items?limit=100",
    "/ogc/collections/catalog/items?f=html&limit=100",
    "/ogc/tiles",
    "/ogc/tiles/WebMercatorQuad",
    # The z14 tile over central Beppu, where the demo's water mains run.
    "/ogc/tiles/WebMercatorQuad/14/6584/14176",
    "/ogc/tiles/WebMercatorQuad/14/6584/14176?collections=water_mains,roads",
]
# Each hidden URL is compared with the same URL for a name that does not exist: callers who
# may not see water_mains must get exactly the answer a made-up name gets.
HIDDEN = [
    ("/dataset/water-mains", "water-mains"),
    ("/staff/datasets/water-mains/history", "water-mains"),
    ("/dataset/water-mains.ttl", "water-mains"),
    ("/dataset/water-mains.jsonld", "water-mains"),
    ("/api/3/action/package_show?id=water-mains", "water-mains"),
    ("/download/water_mains.geojson", "water_mains"),
    ("/download/water_mains.csv", "water_mains"),
    ("/download/water_mains.csv?encoding=cp932", "water_mains"),
    ("/download/water_mains.gpkg", "water_mains"),
    ("/download/water_mains.shp.zip", "water_mains"),
    ("/download/water_mains.kml", "water_mains"),
    ("/ogc/collections/water_mains", "water_mains"),
    ("/ogc/collections/water_mains?f=html", "water_mains"),
    ("/ogc/collections/water_mains/items", "water_mains"),
    ("/ogc/collections/water_mains/items?f=html", "water_mains"),
    ("/ogc/collections/water_mains/items/1", "water_mains"),
    ("/ogc/collections/water_mains/items?f=gpkg", "water_mains"),
    ("/ogc/collections/water_mains/items?f=shp", "water_mains"),
    ("/ogc/collections/water_mains/items?f=kml", "water_mains"),
    ("/ogc/collections/water_mains/items?f=csv", "water_mains"),
    ("/ogc/collections/water_mains/queryables", "water_mains"),
    ("/ogc/collections/water_mains/schema", "water_mains"),
    ("/ogc/collections/water_mains/tiles", "water_mains"),
    ("/ogc/collections/water_mains/tiles/WebMercatorQuad", "water_mains"),
    ("/ogc/collections/water_mains/tiles/WebMercatorQuad/14/6584/14176", "water_mains"),
    ("/ogc/collections/catalog/items/water-mains", "water-mains"),
    ("/ogc/collections/catalog/items/water-mains?f=html", "water-mains"),
]
SECRET_MARKERS = ("water_mains", "上水道管路", "Water mains")
CALLERS: dict[str, Callable[[sessionmaker[Session]], Staff | None]] = {
    "anonymous": lambda sessions: None,
    "other department": lambda sessions: make_staff(sessions, department="fukushi"),
    "other department admin": lambda sessions: make_staff(
        sessions, department="bosai", role=Role.admin
    ),
    "shared department": lambda sessions: make_staff(sessions, department="doboku"),
    "owner": lambda sessions: make_staff(sessions, department="suido"),
}
ALLOWED = {"shared department", "owner"}


@pytest.fixture(scope="module")
def water_mains_count(demo_city: list[DemoLoad], sessions: sessionmaker[Session]) -> int:
    with session_scope(sessions) as session:
        staff = make_staff(sessions, department="suido")
        principal = authenticate_token(session, staff.token, ip=None)
        return get_layer(session, principal, "water_mains").feature_count


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("path", SURFACES)
def test_water_mains_appear_only_to_suido_and_doboku(
    caller: str,
    path: str,
    http: httpx.Client,
    sessions: sessionmaker[Session],
    water_mains_count: int,
) -> None:
    staff = CALLERS[caller](sessions)
    headers = {"Authorization": f"Bearer {staff.token}"} if staff else {}
    response = http.get(path, headers=headers, follow_redirects=True)
    assert response.status_code in (200, 503), (
        f"{path}: {response.status_code} {response.text[:200]}"
    )
    body = response.text
    leaked = any(marker in body for marker in SECRET_MARKERS) or f"{water_mains_count:,}" in body
    if caller in ALLOWED and path in ("/", "/?lang=en"):
        assert leaked, f"{caller} should see water_mains on {path}"
    elif caller not in ALLOWED:
        assert not leaked, f"water_mains leaked to {caller} through {path}"


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize(("path", "name"), HIDDEN)
def test_hidden_urls_answer_like_missing_ones(
    caller: str,
    path: str,
    name: str,
    http: httpx.Client,
    sessions: sessionmaker[Session],
    demo_city: list[DemoLoad],
) -> None:
    staff = CALLERS[caller](sessions)
    headers = {"Authorization": f"Bearer {staff.token}"} if staff else {}
    decoy = name.replace("water", "nosuch")
    hidden = http.get(path, headers=headers)
    missing = http.get(path.replace(name, decoy), headers=headers)
    # Staff pages send anonymous visitors to sign in; everything else says 404.
    expected = 303 if staff is None and path.startswith("/staff/") else 404
    assert missing.status_code == expected
    if caller in ALLOWED:
        assert hidden.status_code == 200, f"{caller} should reach {path}"
    else:
        assert hidden.status_code == expected
        assert hidden.text == missing.text.replace(decoy, name)
        location = missing.headers.get("location", "").replace(decoy, name)
        assert hidden.headers.get("location", "") == location


@pytest.mark.parametrize("caller", list(CALLERS))
def test_the_domain_read_functions_hide_water_mains(
    caller: str, sessions: sessionmaker[Session], demo_city: list[DemoLoad]
) -> None:
    staff = CALLERS[caller](sessions)
    with session_scope(sessions) as session:
        principal = authenticate_token(session, staff.token, ip=None) if staff else ANONYMOUS
        visible = {layer.id for layer in list_layers(session, principal)}
        assert ("water_mains" in visible) == (caller in ALLOWED)
        if caller not in ALLOWED:
            with pytest.raises(Exception, match="layer 'water_mains' not found"):
                get_layer(session, principal, "water_mains")


@pytest.mark.parametrize("caller", list(CALLERS))
def test_the_catalog_read_functions_hide_the_water_mains_dataset(
    caller: str, sessions: sessionmaker[Session], demo_city: list[DemoLoad]
) -> None:
    from portal.catalog.datasets import get_dataset, list_dataset_names
    from portal.catalog.search import FACET_FIELDS, DatasetQuery, search_datasets

    staff = CALLERS[caller](sessions)
    allowed = caller in ALLOWED
    with session_scope(sessions) as session:
        principal = authenticate_token(session, staff.token, ip=None) if staff else ANONYMOUS
        assert ("water-mains" in list_dataset_names(session, principal)) == allowed
        found = search_datasets(
            session, principal, DatasetQuery(q="上水道", facet_fields=FACET_FIELDS, rows=100)
        )
        assert ("water-mains" in {d.name for d in found.datasets}) == allowed
        tags = {item.name for item in found.facets["tags"]}
        assert ("上水道" in tags) == allowed
        if not allowed:
            assert found.count == 0
            with pytest.raises(Exception, match="dataset 'water-mains' not found"):
                get_dataset(session, principal, "water-mains")
