"""Personal API tokens: shown once, stored as SHA-256, with expiry and revocation."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.core import audit
from portal.core.accounts import principal_for_user
from portal.core.errors import NotFound, Unauthorized
from portal.core.models import ApiToken
from portal.core.principal import Principal

TOKEN_PREFIX = "ptk_"
INVALID_TOKEN = "the API token is invalid, expired or revoked / APIトークンが無効です"


@dataclass(frozen=True)
class TokenPublic:
    """A token as listed to its owner (never the secret)."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def is_active(self) -> bool:
        """Tell whether the token can still be used."""
        now = datetime.now(UTC)
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


def token_hash(raw: str) -> str:
    """Return the stored form of a token."""
    return hashlib.sha256(raw.encode()).hexdigest()


def create_token(
    session: Session,
    *,
    user_id: int,
    name: str,
    expires_in: timedelta | None,
    actor: Principal | None = None,
    ip: str | None = None,
) -> str:
    """Create a token and return its secret, which is not stored and is shown only once."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user_id,
        name=name.strip() or "token",
        token_hash=token_hash(raw),
        prefix=raw[:12],
        expires_at=datetime.now(UTC) + expires_in if expires_in else None,
    )
    session.add(token)
    session.flush()
    audit.record(
        session,
        action="token.created",
        actor=actor,
        actor_label=None if actor else "cli",
        target=f"token:{token.id}",
        detail={"user_id": user_id, "name": token.name, "expires_at": str(token.expires_at)},
        ip=ip,
    )
    return raw


def authenticate_token(session: Session, raw: str, *, ip: str | None) -> Principal:
    """Return the `Principal` of a valid token and log its use; refuse anything else."""
    token = session.execute(
        select(ApiToken).where(ApiToken.token_hash == token_hash(raw.strip()))
    ).scalar()
    now = datetime.now(UTC)
    if (
        token is None
        or token.revoked_at is not None
        or (token.expires_at is not None and token.expires_at <= now)
    ):
        raise Unauthorized(INVALID_TOKEN)
    principal = principal_for_user(session, token.user_id, kind="token")
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
        # Log token use at most every few minutes so that a busy script does not flood the log.
        token.last_used_at = now
        audit.record(
            session, action="token.used", actor=principal, target=f"token:{token.id}", ip=ip
        )
        session.commit()
    return principal


def list_tokens(session: Session, principal: Principal) -> list[TokenPublic]:
    """Return the caller's own tokens, newest first."""
    rows = session.execute(
        select(ApiToken).where(ApiToken.user_id == principal.user_id).order_by(ApiToken.id.desc())
    ).scalars()
    return [
        TokenPublic(
            t.id, t.name, t.prefix, t.created_at, t.expires_at, t.last_used_at, t.revoked_at
        )
        for t in rows
    ]


def revoke_token(session: Session, principal: Principal, token_id: int, *, ip: str | None) -> None:
    """Revoke one of the caller's tokens."""
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != principal.user_id:
        raise NotFound(f"token {token_id} not found")
    if token.revoked_at is None:
        token.revoked_at = datetime.now(UTC)
        audit.record(
            session, action="token.revoked", actor=principal, target=f"token:{token_id}", ip=ip
        )
