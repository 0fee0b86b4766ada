"""Browser sign-in sessions: the cookie carries a secret; the database keeps its hash."""

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portal.core.accounts import principal_for_user
from portal.core.errors import Unauthorized
from portal.core.models import WebSession
from portal.core.principal import Principal

SESSION_LIFETIME = timedelta(hours=12)


def start_session(session: Session, *, user_id: int, ip: str | None) -> str:
    """Open a session and return the cookie value."""
    raw = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            id=_hash(raw),
            user_id=user_id,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=datetime.now(UTC) + SESSION_LIFETIME,
            ip=ip,
        )
    )
    return raw


def resolve_session(session: Session, raw: str) -> tuple[Principal, str] | None:
    """Return the principal and CSRF token of a live session, or None."""
    row = session.execute(
        select(WebSession).where(
            WebSession.id == _hash(raw), WebSession.expires_at > datetime.now(UTC)
        )
    ).scalar()
    if row is None:
        return None
    try:
        return principal_for_user(session, row.user_id, kind="session"), row.csrf_token
    except Unauthorized:
        return None


def end_session(session: Session, raw: str) -> None:
    """Sign out: delete the session."""
    session.execute(delete(WebSession).where(WebSession.id == _hash(raw)))


def anonymous_csrf_token(secret_key: str, nonce: str) -> str:
    """Return the CSRF token bound to an anonymous visitor's nonce cookie."""
    return hmac.new(secret_key.encode(), f"csrf:{nonce}".encode(), hashlib.sha256).hexdigest()


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()
