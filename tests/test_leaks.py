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
    "/openapi.json",
    "/healthz",
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
    assert response.status_code in (200, 503), response.text[:200]
    body = response.text
    leaked = any(marker in body for marker in SECRET_MARKERS) or f"{water_mains_count:,}" in body
    if caller in ALLOWED and path in ("/", "/?lang=en"):
        assert leaked, f"{caller} should see water_mains on {path}"
    elif caller not in ALLOWED:
        assert not leaked, f"water_mains leaked to {caller} through {path}"


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
