"""Harvest sources: create, change and list them, with their recent jobs."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.catalog.departments import department_id_by_slug
from portal.catalog.models import Department
from portal.core import audit
from portal.core.accounts import require_role
from portal.core.errors import Conflict, Forbidden, NotFound
from portal.core.principal import Principal, Role, Visibility
from portal.harvesters.models import HarvestJob, HarvestObject, HarvestSource
from portal.harvesters.registry import harvester_for
from portal.harvesters.schedule import check_schedule, next_run

NAME = re.compile(r"^[a-z0-9_-]{2,100}$")


class SourceCreate(BaseModel):
    """A new harvest source."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str
    title: str = Field(min_length=1, max_length=500)
    kind: str
    url: str = Field(min_length=1, max_length=2000)
    department: str
    default_visibility: Visibility = Visibility.public
    schedule: str = "manual"
    config: dict[str, Any] = Field(default_factory=dict)
    allow_private_network: bool = False

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(f"name {value!r} must be 2-100 characters of a-z, 0-9, - and _")
        return value


@dataclass(frozen=True)
class SourceSummary:
    """A source as listed to staff."""

    id: int
    name: str
    title: str
    kind: str
    url: str
    department: str
    default_visibility: Visibility
    schedule: str
    enabled: bool
    next_run_at: datetime | None
    config: dict[str, Any]
    allow_private_network: bool


def create_source(
    session: Session, principal: Principal, data: SourceCreate, *, ip: str | None = None
) -> SourceSummary:
    """Register a source for a department (its admins); private networks need a site admin."""
    department_id = department_id_by_slug(session, data.department)
    require_role(principal, department_id, Role.admin, "adding a harvest source")
    if data.allow_private_network and not principal.is_site_admin:
        raise Forbidden("allowing a source on a private network needs the site admin role")
    if data.kind == "directory" and not principal.is_site_admin:
        # A folder source reads whatever the worker can read on the server.
        raise Forbidden("adding a folder (directory) source needs the site admin role")
    config = harvester_for(data.kind).validate_config(data.url, data.config)
    schedule = check_schedule(data.schedule)
    if session.execute(select(HarvestSource.id).where(HarvestSource.name == data.name)).first():
        raise Conflict(f"a harvest source named {data.name!r} already exists")
    source = HarvestSource(
        name=data.name,
        title=data.title,
        kind=data.kind,
        url=data.url,
        department_id=department_id,
        default_visibility=data.default_visibility.value,
        schedule=schedule,
        config=config,
        allow_private_network=data.allow_private_network,
        next_run_at=next_run(schedule, datetime.now(UTC)),
    )
    session.add(source)
    session.flush()
    audit.record(
        session,
        action="harvest_source.created",
        actor=principal,
        target=f"harvest_source:{source.id}",
        detail={"kind": data.kind, "url": data.url, "private": data.allow_private_network},
        ip=ip,
    )
    return _summary(source, data.department)


def list_sources(session: Session, principal: Principal) -> list[SourceSummary]:
    """Sources of the caller's departments (every source for site admins)."""
    statement = select(HarvestSource, Department.slug).join(
        Department, Department.id == HarvestSource.department_id
    )
    if not principal.is_site_admin:
        statement = statement.where(HarvestSource.department_id.in_(principal.department_ids))
    rows = session.execute(statement.order_by(HarvestSource.name)).all()
    return [_summary(source, slug) for source, slug in rows]


def get_source(session: Session, principal: Principal, name: str) -> SourceSummary:
    """One source the caller may see, by name."""
    for source in list_sources(session, principal):
        if source.name == name:
            return source
    raise NotFound(f"harvest source {name!r} not found")


def require_source_role(
    session: Session, principal: Principal, name: str, role: Role, doing: str
) -> SourceSummary:
    """Return a source, checking the caller's role in its department."""
    source = get_source(session, principal, name)
    require_role(principal, department_id_by_slug(session, source.department), role, doing)
    return source


def list_jobs(
    session: Session, principal: Principal, *, source: str | None = None, limit: int = 50
) -> list[tuple[HarvestJob, str]]:
    """Recent jobs of the caller's sources, newest first, with their source names."""
    visible = {s.id: s.name for s in list_sources(session, principal)}
    if source is not None:
        visible = {i: n for i, n in visible.items() if n == source}
        if not visible:
            raise NotFound(f"harvest source {source!r} not found")
    rows = session.execute(
        select(HarvestJob)
        .where(HarvestJob.source_id.in_(visible))
        .order_by(HarvestJob.id.desc())
        .limit(limit)
    ).scalars()
    return [(job, visible[job.source_id]) for job in rows]


def job_objects(
    session: Session, principal: Principal, job_id: int, *, only_failed: bool = False
) -> list[HarvestObject]:
    """The per-object results of a job of one of the caller's sources."""
    job = session.get(HarvestJob, job_id)
    visible = {s.id for s in list_sources(session, principal)}
    if job is None or job.source_id not in visible:
        raise NotFound(f"harvest job {job_id} not found")
    statement = select(HarvestObject).where(HarvestObject.job_id == job_id)
    if only_failed:
        statement = statement.where(HarvestObject.status == "failed")
    return list(session.execute(statement.order_by(HarvestObject.id)).scalars())


def _summary(source: HarvestSource, department: str) -> SourceSummary:
    return SourceSummary(
        id=source.id,
        name=source.name,
        title=source.title,
        kind=source.kind,
        url=source.url,
        department=department,
        default_visibility=Visibility(source.default_visibility),
        schedule=source.schedule,
        enabled=source.enabled,
        next_run_at=source.next_run_at,
        config=source.config,
        allow_private_network=source.allow_private_network,
    )
