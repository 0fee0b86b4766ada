"""Staff actions on harvest sources and jobs: run now, cancel, pause, and job details."""

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session

from portal.catalog.departments import department_id_by_slug
from portal.core import audit
from portal.core.accounts import require_role
from portal.core.errors import Conflict, InvalidInput, NotFound, PortalError
from portal.core.principal import Principal, Role
from portal.harvesters.jobs import enqueue
from portal.harvesters.models import HarvestJob, HarvestObject, HarvestSource
from portal.harvesters.registry import harvester_for
from portal.harvesters.schedule import check_schedule, next_run
from portal.harvesters.sources import (
    SourceSummary,
    list_sources,
    require_source_role,
)

ACTIVE_STATES = ("queued", "running")


@dataclass(frozen=True)
class JobView:
    """One job of a source the caller may see, with live per-status object counts."""

    id: int
    source: SourceSummary
    status: str
    stage: str | None
    trigger: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    worker: str | None
    attempts: int
    timeout_seconds: int
    error: str | None
    stats: dict[str, Any]
    counts: dict[str, int]

    @property
    def active(self) -> bool:
        """Tell whether the job is still waiting or running."""
        return self.status in ACTIVE_STATES

    @property
    def seconds(self) -> float | None:
        """How long the job ran (so far, while it runs)."""
        if self.started_at is None:
            return None
        end = self.finished_at or datetime.now(UTC)
        return max((end - self.started_at).total_seconds(), 0.0)


def run_now(session: Session, principal: Principal, name: str, *, ip: str | None = None) -> int:
    """Queue a job for a source (editors of its department); a worker runs it."""
    source = require_source_role(session, principal, name, Role.editor, "running a harvest source")
    job_id = enqueue(session, source.id, trigger="manual")
    audit.record(
        session,
        action="harvest_job.queued",
        actor=principal,
        target=f"harvest_job:{job_id}",
        detail={"source": source.name},
        ip=ip,
    )
    return job_id


def set_source_enabled(
    session: Session, principal: Principal, name: str, enabled: bool, *, ip: str | None = None
) -> SourceSummary:
    """Pause or resume a source's schedule (admins of its department)."""
    doing = "resuming a harvest source" if enabled else "pausing a harvest source"
    summary = require_source_role(session, principal, name, Role.admin, doing)
    source = session.get(HarvestSource, summary.id)
    assert source is not None
    source.enabled = enabled
    source.next_run_at = next_run(source.schedule, datetime.now(UTC)) if enabled else None
    source.updated_at = datetime.now(UTC)
    session.flush()
    audit.record(
        session,
        action="harvest_source.resumed" if enabled else "harvest_source.paused",
        actor=principal,
        target=f"harvest_source:{source.id}",
        detail={"source": source.name},
        ip=ip,
    )
    return replace(summary, enabled=enabled, next_run_at=source.next_run_at)


def source_problems(
    *, kind: str, url: str, schedule: str, config: dict[str, Any] | None
) -> dict[str, str]:
    """Check a source's schedule, kind and (unless None) kind settings; return problems by field."""
    problems: dict[str, str] = {}
    try:
        check_schedule(schedule)
    except InvalidInput as exc:
        problems["schedule"] = exc.message
    try:
        harvester = harvester_for(kind)
    except InvalidInput as exc:
        problems["kind"] = exc.message
        return problems
    if config is not None:
        try:
            harvester.validate_config(url, config)
        except PortalError as exc:  # a message quoting the URL is about the URL
            problems["url" if url and url in exc.message else "config"] = exc.message
    return problems


def get_job(session: Session, principal: Principal, job_id: int) -> JobView:
    """One job of one of the caller's sources."""
    job = session.get(HarvestJob, job_id)
    visible = {s.id: s for s in list_sources(session, principal)}
    if job is None or job.source_id not in visible:
        raise NotFound(f"harvest job {job_id} not found")
    counts = session.execute(
        select(HarvestObject.status, func.count())
        .where(HarvestObject.job_id == job_id)
        .group_by(HarvestObject.status)
    ).all()
    return JobView(
        id=job.id,
        source=visible[job.source_id],
        status=job.status,
        stage=job.stage,
        trigger=job.trigger,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        heartbeat_at=job.heartbeat_at,
        worker=job.worker,
        attempts=job.attempts,
        timeout_seconds=job.timeout_seconds,
        error=job.error,
        stats=dict(job.stats or {}),
        counts={status: int(count) for status, count in counts},
    )


def job_object_page(
    session: Session,
    principal: Principal,
    job_id: int,
    *,
    only_failed: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[HarvestObject], int]:
    """A page of a job's per-object results, and how many there are in all."""
    get_job(session, principal, job_id)
    condition = [HarvestObject.job_id == job_id]
    if only_failed:
        condition.append(HarvestObject.status == "failed")
    total = session.execute(select(func.count()).select_from(HarvestObject).where(*condition))
    rows = session.execute(
        select(HarvestObject)
        .where(*condition)
        .order_by(HarvestObject.id)
        .limit(limit)
        .offset(offset)
    ).scalars()
    return list(rows), int(total.scalar_one())


def latest_jobs(session: Session, principal: Principal) -> dict[str, HarvestJob]:
    """The newest job of each of the caller's sources, by source name."""
    names = {s.id: s.name for s in list_sources(session, principal)}
    rows = session.execute(
        select(HarvestJob)
        .where(HarvestJob.source_id.in_(names))
        .ext(distinct_on(HarvestJob.source_id))
        .order_by(HarvestJob.source_id, HarvestJob.id.desc())
    ).scalars()
    return {names[job.source_id]: job for job in rows}


def cancel_job(
    session: Session, principal: Principal, job_id: int, *, ip: str | None = None
) -> None:
    """Cancel a queued or running job (editors); a running job stops at its next heartbeat."""
    view = get_job(session, principal, job_id)
    department_id = department_id_by_slug(session, view.source.department)
    require_role(principal, department_id, Role.editor, "cancelling a harvest job")
    changed = session.execute(
        update(HarvestJob)
        .where(HarvestJob.id == job_id, HarvestJob.status.in_(ACTIVE_STATES))
        .values(
            status="cancelled",
            finished_at=datetime.now(UTC),
            error=f"cancelled by {principal.label}",
        )
    )
    if not getattr(changed, "rowcount", 0):
        raise Conflict(f"harvest job {job_id} has already finished ({view.status})")
    audit.record(
        session,
        action="harvest_job.cancelled",
        actor=principal,
        target=f"harvest_job:{job_id}",
        detail={"source": view.source.name, "was": view.status},
        ip=ip,
    )
