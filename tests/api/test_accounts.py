from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from portal.core.accounts import MAX_FAILED_LOGINS, authenticate, create_user
from portal.core.database import session_scope
from portal.core.errors import InvalidInput, Unauthorized
from portal.core.models import ApiToken, User
from portal.core.principal import Role
from portal.demo.load import DemoLoad
from tests.conftest import LiveServer
from tests.staff import PASSWORD, csrf_from, make_staff, sign_in


@pytest.fixture(autouse=True)
def loaded(demo_city: list[DemoLoad]) -> list[DemoLoad]:
    return demo_city


@pytest.fixture
def browser(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=live_server.url, timeout=30, headers={"accept": "text/html"}
    ) as client:
        yield client


def audit_actions(database_url: str, target_like: str = "%") -> list[str]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT action FROM portal.audit_log WHERE coalesce(target, actor) LIKE %s ORDER BY id",
            (target_like,),
        ).fetchall()
    return [row[0] for row in rows]


def test_passwords_are_stored_as_argon2_hashes(
    sessions: sessionmaker[Session], database_url: str
) -> None:
    staff = make_staff(sessions, department="doboku")
    with psycopg.connect(database_url) as connection:
        stored = connection.execute(
            "SELECT password_hash FROM portal.users WHERE id = %s", (staff.user_id,)
        ).fetchone()
    assert stored is not None and stored[0].startswith("$argon2id$")
    assert PASSWORD not in stored[0]


def test_short_passwords_and_bad_emails_are_refused(sessions: sessionmaker[Session]) -> None:
    with (
        session_scope(sessions) as session,
        pytest.raises(InvalidInput, match="at least 12 characters"),
    ):
        create_user(session, email="a@b.example", display_name="", password="short", memberships={})
    with (
        session_scope(sessions) as session,
        pytest.raises(InvalidInput, match="is not an email address"),
    ):
        create_user(session, email="nobody", display_name="", password=PASSWORD, memberships={})


def test_sign_in_sets_a_safe_session_cookie_and_is_audited(
    browser: httpx.Client, sessions: sessionmaker[Session], database_url: str
) -> None:
    staff = make_staff(sessions, department="doboku")
    response = sign_in(browser, staff.email)
    assert response.status_code == 303
    assert response.headers["location"] == "/staff"
    cookie = response.headers["set-cookie"].lower()
    assert "portal_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    page = browser.get("/staff")
    assert page.status_code == 200
    assert "試験 doboku" in page.text
    assert "login.succeeded" in audit_actions(database_url, f"user:{staff.user_id}")


def test_wrong_password_and_unknown_email_get_the_same_401(
    browser: httpx.Client, sessions: sessionmaker[Session]
) -> None:
    staff = make_staff(sessions, department="doboku")
    wrong = sign_in(browser, staff.email, "not the password at all")
    unknown = sign_in(browser, "nobody@test.example", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert "wrong email or password" in wrong.text
    assert "wrong email or password" in unknown.text
    assert "portal_session" not in wrong.headers.get("set-cookie", "")


def test_a_missing_or_forged_csrf_token_is_refused(
    browser: httpx.Client, sessions: sessionmaker[Session]
) -> None:
    staff = make_staff(sessions, department="doboku")
    browser.get("/staff/login")
    missing = browser.post("/staff/login", data={"email": staff.email, "password": PASSWORD})
    assert missing.status_code == 403
    assert "CSRF" in missing.text
    forged = browser.post(
        "/staff/login", data={"email": staff.email, "password": PASSWORD, "csrf_token": "f" * 64}
    )
    assert forged.status_code == 403
    assert "CSRF token is missing or invalid" in forged.text
    sign_in(browser, staff.email)
    revoke = browser.post("/staff/tokens", data={"name": "x", "csrf_token": "forged"})
    assert revoke.status_code == 403


def test_repeated_failures_lock_the_account_and_are_logged(
    sessions: sessionmaker[Session], database_url: str
) -> None:
    staff = make_staff(sessions, department="doboku")
    for _ in range(MAX_FAILED_LOGINS):
        with sessions() as session, pytest.raises(Unauthorized):
            authenticate(session, email=staff.email, password="wrong password!!", ip="192.0.2.1")
    with sessions() as session, pytest.raises(Unauthorized, match="wrong email or password"):
        authenticate(session, email=staff.email, password=PASSWORD, ip="192.0.2.1")
    actions = audit_actions(database_url, f"%{staff.email}%") + audit_actions(
        database_url, f"user:{staff.user_id}"
    )
    assert "login.locked" in actions
    assert "login.refused_locked" in actions
    with session_scope(sessions) as session:
        session.execute(
            update(User)
            .where(User.id == staff.user_id)
            .values(locked_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    with sessions() as session:
        assert (
            authenticate(session, email=staff.email, password=PASSWORD, ip=None).user_id
            == staff.user_id
        )


@pytest.mark.parametrize(
    "header",
    [
        lambda token: {"Authorization": f"Bearer {token}"},
        lambda token: {"Authorization": token},
        lambda token: {"X-CKAN-API-Key": token},
    ],
    ids=["bearer", "plain-authorization", "x-ckan-api-key"],
)
def test_tokens_are_accepted_in_every_header_clients_use(
    http: httpx.Client, sessions: sessionmaker[Session], header
) -> None:
    staff = make_staff(sessions, department="suido")
    response = http.get("/", headers=header(staff.token))
    assert response.status_code == 200
    assert 'data-layer="water_mains"' in response.text


def test_tokens_are_stored_hashed(sessions: sessionmaker[Session], database_url: str) -> None:
    staff = make_staff(sessions, department="suido")
    with psycopg.connect(database_url) as connection:
        dump = connection.execute("SELECT token_hash, prefix FROM portal.api_tokens").fetchall()
    assert all(staff.token not in (h, p) for h, p in dump)


def test_expired_and_revoked_tokens_get_a_401(
    http: httpx.Client, sessions: sessionmaker[Session]
) -> None:
    expired = make_staff(sessions, department="suido")
    revoked = make_staff(sessions, department="suido")
    with session_scope(sessions) as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == expired.user_id)
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
        session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == revoked.user_id)
            .values(revoked_at=datetime.now(UTC))
        )
    for staff in (expired, revoked):
        response = http.get(
            "/", headers={"Authorization": f"Bearer {staff.token}", "accept": "application/json"}
        )
        assert response.status_code == 401
        assert "invalid, expired or revoked" in response.json()["detail"]
    bogus = http.get(
        "/", headers={"Authorization": "Bearer ptk_nope", "accept": "application/json"}
    )
    assert bogus.status_code == 401


def test_tokens_are_created_once_and_revoked_from_the_staff_page(
    browser: httpx.Client, sessions: sessionmaker[Session], database_url: str
) -> None:
    staff = make_staff(sessions, department="suido")
    sign_in(browser, staff.email)
    page = browser.get("/staff/tokens")
    created = browser.post(
        "/staff/tokens",
        data={"name": "QGIS", "expires_days": "7", "csrf_token": csrf_from(page.text)},
    )
    assert created.status_code == 200
    secret = created.text.split("data-token>")[1].split("<")[0]
    assert secret.startswith("ptk_")
    assert browser.get("/staff/tokens").text.count(secret) == 0
    assert httpx.get(f"{browser.base_url}/", headers={"Authorization": secret}).status_code == 200
    with psycopg.connect(database_url) as connection:
        token_id = connection.execute(
            "SELECT id FROM portal.api_tokens WHERE user_id = %s AND name = 'QGIS'",
            (staff.user_id,),
        ).fetchone()
    assert token_id is not None
    listing = browser.get("/staff/tokens")
    browser.post(
        f"/staff/tokens/{token_id[0]}/revoke", data={"csrf_token": csrf_from(listing.text)}
    )
    assert httpx.get(f"{browser.base_url}/", headers={"Authorization": secret}).status_code == 401
    actions = audit_actions(database_url, f"token:{token_id[0]}")
    assert actions[:1] == ["token.created"] and "token.revoked" in actions


def test_a_viewer_changing_visibility_gets_a_403_naming_the_role(
    browser: httpx.Client, sessions: sessionmaker[Session]
) -> None:
    viewer = make_staff(sessions, department="suido", role=Role.viewer)
    sign_in(browser, viewer.email)
    page = browser.get("/staff/layers")
    response = browser.post(
        "/staff/layers/water_mains",
        data={"visibility": "public", "csrf_token": csrf_from(page.text)},
    )
    assert response.status_code == 403
    assert "needs the admin role" in response.text


def test_a_department_admin_changes_sharing_and_it_is_audited(
    browser: httpx.Client, sessions: sessionmaker[Session], database_url: str, http: httpx.Client
) -> None:
    admin = make_staff(sessions, department="suido", role=Role.admin)
    fukushi = make_staff(sessions, department="fukushi")
    sign_in(browser, admin.email)
    page = browser.get("/staff/layers")
    assert 'data-layer="water_mains"' in page.text
    with psycopg.connect(database_url) as connection:
        ids = dict(connection.execute("SELECT slug, id FROM portal.departments").fetchall())
    form = {"visibility": "department", "csrf_token": csrf_from(page.text)}
    shared = browser.post(
        "/staff/layers/water_mains",
        data={**form, "shared_with": [str(ids["doboku"]), str(ids["fukushi"])]},
    )
    assert shared.status_code == 303
    seen = http.get("/", headers={"Authorization": fukushi.token}).text
    assert 'data-layer="water_mains"' in seen
    browser.post("/staff/layers/water_mains", data={**form, "shared_with": [str(ids["doboku"])]})
    assert (
        'data-layer="water_mains"'
        not in http.get("/", headers={"Authorization": fukushi.token}).text
    )
    assert audit_actions(database_url, "layer:water_mains").count("layer.shares_changed") >= 2


def test_only_site_admins_read_the_audit_log(
    browser: httpx.Client, sessions: sessionmaker[Session]
) -> None:
    staff = make_staff(sessions, department="doboku", role=Role.admin)
    sign_in(browser, staff.email)
    assert browser.get("/staff/audit").status_code == 403
    browser.cookies.clear()
    admin = make_staff(sessions, department=None, site_admin=True)
    sign_in(browser, admin.email)
    page = browser.get("/staff/audit?action=login.succeeded")
    assert page.status_code == 200
    assert 'data-action="login.succeeded"' in page.text
    assert 'data-action="token.created"' not in page.text


def test_sign_out_ends_the_session(browser: httpx.Client, sessions: sessionmaker[Session]) -> None:
    staff = make_staff(sessions, department="doboku")
    sign_in(browser, staff.email)
    home = browser.get("/")
    out = browser.post("/staff/logout", data={"csrf_token": csrf_from(home.text)})
    assert out.status_code == 303
    assert browser.get("/staff").headers.get("location", "").startswith("/staff/login")


def test_staff_pages_send_anonymous_visitors_to_sign_in(browser: httpx.Client) -> None:
    response = browser.get("/staff/tokens")
    assert response.status_code == 303
    assert response.headers["location"] == "/staff/login?next=/staff/tokens"
