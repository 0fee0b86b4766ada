"""Departments (課/局), the owners of datasets and layers."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from portal.catalog.models import Department
from portal.core.errors import NotFound


@dataclass(frozen=True)
class DepartmentPublic:
    """A department as shown to anyone."""

    id: int
    slug: str
    name: str
    name_en: str | None


def ensure_department(session: Session, *, slug: str, name: str, name_en: str | None) -> int:
    """Create the department or update its names; return its id."""
    statement = (
        insert(Department)
        .values(slug=slug, name=name, name_en=name_en)
        .on_conflict_do_update(index_elements=["slug"], set_={"name": name, "name_en": name_en})
        .returning(Department.id)
    )
    return int(session.execute(statement).scalar_one())


def list_departments(session: Session) -> list[DepartmentPublic]:
    """Return every department, in creation order."""
    rows = session.execute(select(Department).order_by(Department.id)).scalars()
    return [DepartmentPublic(d.id, d.slug, d.name, d.name_en) for d in rows]


def department_id_by_slug(session: Session, slug: str) -> int:
    """Return a department's id, or raise `NotFound` naming the slug."""
    found = session.execute(select(Department.id).where(Department.slug == slug)).scalar()
    if found is None:
        raise NotFound(f"unknown department {slug!r}")
    return int(found)
