"""Staff accounts: creation, password sign-in with lockout, and the `Principal` of a user."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from portal.core import audit
from portal.core.errors import Conflict, Forbidden, InvalidInput, Unauthorized
from portal.core.models import Membership, User
from portal.core.principal import Principal, Role

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 12
WRONG_CREDENTIALS = "wrong email or password / メールアドレスまたはパスワードが違います"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not-a-real-password-used-for-timing")


@dataclass(frozen=True)
class UserPublic:
    """A user as listed to admins."""

    id: int
    email: str
    display_name: str
    is_site_admin: bool
    memberships: dict[str, Role]


def hash_password(password: str) -> str:
    """Hash a password with argon2id."""
    return _hasher.hash(password)


def create_user(
    session: Session,
    *,
    email: str,
    display_name: str,
    password: str,
    memberships: dict[int, Role],
    is_site_admin: bool = False,
) -> int:
    """Create a staff account; refuse weak passwords and duplicate emails."""
    email = normalize_email(email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if session.execute(select(User.id).where(User.email == email)).first():
        raise Conflict(f"a user with email {email} already exists")
    user = User(
        email=email,
        display_name=display_name.strip() or email,
        password_hash=hash_password(password),
        is_site_admin=is_site_admin,
    )
    session.add(user)
    session.flush()
    for department_id, role in memberships.items():
        set_membership(session, user_id=user.id, department_id=department_id, role=role)
    return user.id


def set_membership(session: Session, *, user_id: int, department_id: int, role: Role) -> None:
    """Give a user a role in a department (replacing any earlier role)."""
    statement = insert(Membership).values(
        user_id=user_id, department_id=department_id, role=role.value
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["user_id", "department_id"], set_={"role": role.value}
        )
    )


def normalize_email(email: str) -> str:
    """Lower-case and trim an email address, refusing one that cannot be real."""
    cleaned = email.strip().lower()
    if not EMAIL.match(cleaned):
        raise InvalidInput(f"{email!r} is not an email address")
    return cleaned


def authenticate(session: Session, *, email: str, password: str, ip: str | None) -> Principal:
    """Check a password; lock the account after repeated failures. Commits the outcome."""
    user = session.execute(
        select(User).where(User.email == email.strip().lower()).with_for_update()
    ).scalar()
    now = datetime.now(UTC)
    if user is None or not user.is_active:
        _verify(_DUMMY_HASH, password)
        audit.record(session, action="login.failed", actor_label=email[:320], ip=ip)
        session.commit()
        raise Unauthorized(WRONG_CREDENTIALS)
    if user.locked_until and user.locked_until > now:
        _verify(_DUMMY_HASH, password)
        audit.record(session, action="login.refused_locked", actor_label=user.email, ip=ip)
        session.commit()
        raise Unauthorized(WRONG_CREDENTIALS)
    if not _verify(user.password_hash, password):
        user.failed_logins += 1
        action = "login.failed"
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
            action = "login.locked"
        audit.record(
            session, action=action, actor_label=user.email, target=f"user:{user.id}", ip=ip
        )
        session.commit()
        raise Unauthorized(WRONG_CREDENTIALS)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    principal = principal_for_user(session, user.id, kind="session")
    audit.record(
        session, action="login.succeeded", actor=principal, target=f"user:{user.id}", ip=ip
    )
    session.commit()
    return principal


def principal_for_user(session: Session, user_id: int, *, kind: str) -> Principal:
    """Build the `Principal` of an active user, with their memberships."""
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise Unauthorized("this account no longer exists or is disabled")
    rows = session.execute(
        select(Membership.department_id, Membership.role).where(Membership.user_id == user_id)
    )
    return Principal(
        kind=kind,  # type: ignore[arg-type]
        user_id=user.id,
        display_name=user.display_name,
        memberships={department: Role(role) for department, role in rows},
        is_site_admin=user.is_site_admin,
    )


def user_id_by_email(session: Session, email: str) -> int:
    """Return a user's id by email, or raise `InvalidInput` naming it."""
    found = session.execute(select(User.id).where(User.email == email.strip().lower())).scalar()
    if found is None:
        raise InvalidInput(f"no user with email {email}")
    return int(found)


def count_users(session: Session) -> int:
    """Return how many accounts exist."""
    return int(session.execute(select(func.count()).select_from(User)).scalar_one())


def unlock(session: Session, user_id: int) -> None:
    """Lift a lockout."""
    session.execute(
        update(User).where(User.id == user_id).values(locked_until=None, failed_logins=0)
    )


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def list_users(session: Session, department_slugs: dict[int, str]) -> list[UserPublic]:
    """Return every account with its memberships (for the CLI and site admins)."""
    memberships: dict[int, dict[str, Role]] = {}
    for user_id, department_id, role in session.execute(
        select(Membership.user_id, Membership.department_id, Membership.role)
    ):
        slug = department_slugs.get(department_id, str(department_id))
        memberships.setdefault(user_id, {})[slug] = Role(role)
    return [
        UserPublic(u.id, u.email, u.display_name, u.is_site_admin, memberships.get(u.id, {}))
        for u in session.execute(select(User).order_by(User.id)).scalars()
    ]


def list_members(
    session: Session, principal: Principal, department_id: int
) -> list[tuple[int, str, str, Role]]:
    """Return (user id, email, name, role) of a department's members; admins only."""
    require_role(principal, department_id, Role.admin, "seeing the members of a department")
    rows = session.execute(
        select(User.id, User.email, User.display_name, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.department_id == department_id)
        .order_by(User.email)
    )
    return [(uid, email, name, Role(role)) for uid, email, name, role in rows]


def change_membership(
    session: Session,
    principal: Principal,
    *,
    department_id: int,
    email: str,
    role: Role | None,
    ip: str | None,
) -> None:
    """Give a user a role in a department, or remove them (`role=None`); admins only."""
    require_role(principal, department_id, Role.admin, "changing the members of a department")
    user_id = user_id_by_email(session, email)
    if role is None:
        session.execute(
            delete(Membership).where(
                Membership.user_id == user_id, Membership.department_id == department_id
            )
        )
    else:
        set_membership(session, user_id=user_id, department_id=department_id, role=role)
    audit.record(
        session,
        action="membership.changed",
        actor=principal,
        target=f"user:{user_id}",
        detail={"department_id": department_id, "role": role.value if role else None},
        ip=ip,
    )


def require_role(principal: Principal, department_id: int, role: Role, doing: str) -> None:
    """Raise `Forbidden` naming the missing role unless `principal` holds it."""
    if not principal.has_role(department_id, role):
        raise Forbidden(f"{doing} needs the {role.value} role in that department")
