"""Helpers that create staff and sign them in through the same paths users take."""

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.departments import department_id_by_slug
from portal.core.accounts import create_user
from portal.core.database import session_scope
from portal.core.principal import Role
from portal.core.tokens import create_token

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Staff:
    """A test staff member and a token of theirs."""

    email: str
    user_id: int
    token: str


def make_staff(
    sessions: sessionmaker[Session],
    *,
    department: str | None,
    role: Role = Role.viewer,
    site_admin: bool = False,
    token_lifetime: timedelta | None = timedelta(days=1),
) -> Staff:
    """Create a staff member in a department (or none) with a token."""
    email = f"{department or 'admin'}-{role.value}-{secrets.token_hex(3)}@test.example"
    with session_scope(sessions) as session:
        memberships = {department_id_by_slug(session, department): role} if department else {}
        user_id = create_user(
            session,
            email=email,
            display_name=f"試験 {department}",
            password=PASSWORD,
            memberships=memberships,
            is_site_admin=site_admin,
        )
        token = create_token(session, user_id=user_id, name="test", expires_in=token_lifetime)
    return Staff(email, user_id, token)


def csrf_from(html: str) -> str:
    """Return the first CSRF token in a page."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def sign_in(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    """Sign in through the form, as a browser does."""
    form = client.get("/staff/login")
    return client.post(
        "/staff/login",
        data={"email": email, "password": password, "csrf_token": csrf_from(form.text)},
    )
