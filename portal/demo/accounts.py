"""Demo staff accounts: one admin per department and a site admin."""

import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.catalog.departments import department_id_by_slug
from portal.core.accounts import create_user
from portal.core.models import User
from portal.core.principal import Role
from portal.demo.city import DEPARTMENTS

DEMO_DOMAIN = "demo.example"


@dataclass(frozen=True)
class DemoAccount:
    """A demo sign-in."""

    email: str
    password: str
    department: str | None
    role: Role | None


def demo_password(secret_key: str, email: str) -> str:
    """Derive a demo password from the secret key: stable in dev, unguessable elsewhere."""
    digest = hmac.new(secret_key.encode(), f"demo:{email}".encode(), hashlib.sha256).hexdigest()
    return f"demo-{digest[:16]}"


def ensure_demo_accounts(session: Session, secret_key: str) -> list[DemoAccount]:
    """Create the demo accounts that do not exist yet; return them all."""
    accounts = [
        DemoAccount(f"{d.slug}@{DEMO_DOMAIN}", "", d.slug, Role.admin) for d in DEPARTMENTS
    ] + [DemoAccount(f"admin@{DEMO_DOMAIN}", "", None, None)]
    existing = set(session.execute(select(User.email)).scalars())
    result = []
    for account in accounts:
        password = demo_password(secret_key, account.email)
        if account.email not in existing:
            memberships = (
                {department_id_by_slug(session, account.department): account.role}
                if account.department and account.role
                else {}
            )
            create_user(
                session,
                email=account.email,
                display_name=f"サンプル職員（{account.department or 'admin'}）",
                password=password,
                memberships=memberships,
                is_site_admin=account.department is None,
            )
        result.append(DemoAccount(account.email, password, account.department, account.role))
    return result
