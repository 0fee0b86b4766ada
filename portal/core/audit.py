"""The audit log: who did what, when, and from where."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.core.errors import Forbidden
from portal.core.models import AuditEntry
from portal.core.principal import Principal


@dataclass(frozen=True)
class AuditRecord:
    """One audit entry as shown to site admins."""

    at: datetime
    actor: str
    action: str
    target: str | None
    detail: dict[str, Any]
    ip: str | None


def record(
    session: Session,
    *,
    action: str,
    actor: Principal | None = None,
    actor_label: str | None = None,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
) -> None:
    """Append an entry to the audit log (committed with the caller's transaction)."""
    session.add(
        AuditEntry(
            actor_user_id=actor.user_id if actor else None,
            actor=actor_label or (actor.label if actor else "anonymous"),
            action=action,
            target=target,
            detail=detail or {},
            ip=ip,
        )
    )


def list_entries(
    session: Session,
    principal: Principal,
    *,
    action: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditRecord]:
    """Return audit entries, newest first; only site admins may read them."""
    if not principal.is_site_admin:
        raise Forbidden("reading the audit log needs the site admin role")
    statement = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
    if action:
        statement = statement.where(AuditEntry.action == action)
    return [
        AuditRecord(e.at, e.actor, e.action, e.target, e.detail, e.ip)
        for e in session.execute(statement).scalars()
    ]
