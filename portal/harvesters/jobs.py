"""Harvest jobs: the PostgreSQL queue, running one job, the reaper and the scheduler."""

import logging
import os
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.datasets import delete_dataset
from portal.catalog.models import Dataset, Department
from portal.core.database import session_scope
from portal.core.errors import NotFound, PortalError
from portal.core.principal import SYSTEM, Visibility
from portal.core.settings import Settings
from portal.core.storage import Storage
from portal.harvesters.base import (
    HarvestContext,
    Harvester,
    JobTimedOut,
    RemoteObject,
    SourceSpec,
)
from portal.harvesters.models import HarvestJob, HarvestObject, HarvestRecord, HarvestSource
from portal.harvesters.registry import harvester_for
from portal.harvesters.schedule import next_run

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 10
STALE_AFTER = timedelta(minutes=2)
Progress = Callable[[int, int, str], None]


def worker_name() -> str:
    """Name this worker process, for the job table."""
    return f"{socket.gethostname()}:{os.getpid()}"


def enqueue(session: Session, source_id: int, *, trigger: str = "manual") -> int:
    """Queue a job for a source, or return the job already queued or running."""
    session.execute(
        insert(HarvestJob)
        .values(source_id=source_id, trigger=trigger)
        .on_conflict_do_nothing(
            index_elements=["source_id"], index_where=text("status IN ('queued', 'running')")
        )
    )
    job_id = session.execute(
        select(HarvestJob.id).where(
            HarvestJob.source_id == source_id, HarvestJob.status.in_(("queued", "running"))
        )
    ).scalar_one()
    return int(job_id)


def claim_next(sessions: sessionmaker[Session], worker: str) -> int | None:
    """Take the oldest queued job; concurrent workers never take the same one."""
    with session_scope(sessions) as session:
        claimed = session.execute(
            text(
                "UPDATE portal.harvest_jobs SET status = 'running', started_at = now(), "
                "heartbeat_at = now(), worker = :worker, attempts = attempts + 1 "
                "WHERE id = (SELECT id FROM portal.harvest_jobs WHERE status = 'queued' "
                "ORDER BY created_at, id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id"
            ),
            {"worker": worker},
        ).scalar()
    return None if claimed is None else int(claimed)


def start_job(sessions: sessionmaker[Session], job_id: int, worker: str) -> None:
    """Mark a specific queued job as running here (for `portal harvest run`)."""
    with session_scope(sessions) as session:
        changed = _rowcount(
            session,
            update(HarvestJob)
            .where(HarvestJob.id == job_id, HarvestJob.status == "queued")
            .values(
                status="running",
                started_at=datetime.now(UTC),
                heartbeat_at=datetime.now(UTC),
                worker=worker,
                attempts=HarvestJob.attempts + 1,
            ),
        )
    if not changed:
        raise NotFound(f"job {job_id} is not waiting in the queue (another worker has it)")


def run_job(
    job_id: int,
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    storage: Storage,
    progress: Progress | None = None,
) -> str:
    """Run a claimed job to the end and return its final status."""
    with session_scope(sessions) as session:
        job = session.get(HarvestJob, job_id)
        assert job is not None
        spec = _spec(session, job.source_id)
        timeout = job.timeout_seconds
    harvester = harvester_for(spec.kind)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(sessions, job_id, stop), daemon=True)
    beat.start()
    try:
        with tempfile.TemporaryDirectory(prefix=f"portal-harvest-{job_id}-") as workdir:
            ctx = HarvestContext(
                source=spec,
                settings=settings,
                engine=sessions.kw["bind"],
                sessions=sessions,
                storage=storage,
                workdir=Path(workdir),
                job_id=job_id,
                deadline=time.monotonic() + timeout,
                cancelled=stop,
            )
            status, error, stats = _run_stages(ctx, harvester, sessions, job_id, progress)
    finally:
        stop.set()
        beat.join(timeout=5)
    with session_scope(sessions) as session:
        # A job cancelled by staff while it ran keeps its "cancelled" status.
        finished = _rowcount(
            session,
            update(HarvestJob)
            .where(HarvestJob.id == job_id, HarvestJob.status == "running")
            .values(status=status, error=error, stats=stats, finished_at=datetime.now(UTC)),
        )
        if not finished:
            session.execute(
                update(HarvestJob)
                .where(HarvestJob.id == job_id)
                .values(stats=stats, finished_at=datetime.now(UTC))
            )
            return str(session.get(HarvestJob, job_id).status)  # type: ignore[union-attr]
    return status


def _run_stages(
    ctx: HarvestContext,
    harvester: Harvester,
    sessions: sessionmaker[Session],
    job_id: int,
    progress: Progress | None,
) -> tuple[str, str | None, dict[str, int]]:
    counts: Counter[str] = Counter()
    try:
        _set_stage(sessions, job_id, "gather")
        harvester.validate_config(ctx.source.url, ctx.source.config)
        remotes = list(harvester.gather(ctx))
        _set_stage(sessions, job_id, "import")
        seen: set[str] = set()
        for index, remote in enumerate(remotes):
            ctx.check_time()
            seen.add(remote.remote_id)
            counts[_harvest_one(ctx, harvester, sessions, job_id, remote)] += 1
            if progress:
                progress(index + 1, len(remotes), remote.remote_id)
        if ctx.source.config.get("delete_missing", True):
            withdrawn = _withdraw_missing(ctx, sessions, job_id, seen)
            if withdrawn:
                counts["deleted"] += withdrawn
    except JobTimedOut as exc:
        return "timed_out", exc.message, dict(counts)
    except PortalError as exc:
        return "failed", exc.message, dict(counts)
    except Exception as exc:  # noqa: BLE001 - a job must always end with a recorded reason
        log.exception("harvest job %s failed", job_id)
        return "failed", f"unexpected error: {type(exc).__name__}: {exc}", dict(counts)
    if counts["failed"] and counts["failed"] == sum(counts.values()):
        return "failed", f"all {counts['failed']} objects failed; see the object list", dict(counts)
    return ("partial" if counts["failed"] else "succeeded"), None, dict(counts)


def _harvest_one(
    ctx: HarvestContext,
    harvester: Harvester,
    sessions: sessionmaker[Session],
    job_id: int,
    remote: RemoteObject,
) -> str:
    """Fetch and import one object, recording the outcome; failures stay with the object."""
    with session_scope(sessions) as session:
        record = session.get(HarvestRecord, (ctx.source.id, remote.remote_id))
        previous_modified = record.remote_modified if record else None
        previous_hash = record.content_hash if record else None
        dataset_alive = record is not None and _alive(session, record)
    stage, status, dataset_id, message, warnings = "fetch", "failed", None, None, []
    try:
        if dataset_alive and remote.modified and remote.modified == previous_modified:
            status = "unchanged"
        else:
            fetched = harvester.fetch(ctx, remote)
            if dataset_alive and fetched.content_hash == previous_hash:
                status = "unchanged"
                _remember_modified(sessions, ctx.source.id, remote)
            else:
                stage = "import"
                result = harvester.import_object(ctx, fetched)
                status, dataset_id, warnings = result.status, result.dataset_id, result.warnings
    except JobTimedOut:
        raise
    except PortalError as exc:
        message = exc.message
    except Exception as exc:  # noqa: BLE001 - one bad object must not stop the job
        log.exception("harvest object %s failed", remote.remote_id)
        message = f"unexpected error: {type(exc).__name__}: {exc}"
    if status == "unchanged" and record is not None:
        dataset_id = record.dataset_id
    with session_scope(sessions) as session:
        session.add(
            HarvestObject(
                job_id=job_id,
                remote_id=remote.remote_id,
                stage=stage,
                status=status,
                dataset_id=dataset_id,
                message=message,
                warnings=warnings,
            )
        )
    return status


def _remember_modified(
    sessions: sessionmaker[Session], source_id: int, remote: RemoteObject
) -> None:
    """Keep the new modification mark of unchanged content, so it is not re-read next time."""
    with session_scope(sessions) as session:
        record = session.get(HarvestRecord, (source_id, remote.remote_id))
        if record is not None:
            record.remote_modified = remote.modified


def _withdraw_missing(
    ctx: HarvestContext, sessions: sessionmaker[Session], job_id: int, seen: set[str]
) -> int:
    """Withdraw the datasets of objects the source no longer offers."""
    withdrawn = 0
    with session_scope(sessions) as session:
        records = session.execute(
            select(HarvestRecord).where(HarvestRecord.source_id == ctx.source.id)
        ).scalars()
        for record in list(records):
            if record.remote_id in seen or record.dataset_id is None or not _alive(session, record):
                continue
            dataset = session.get(Dataset, record.dataset_id)
            assert dataset is not None
            delete_dataset(session, SYSTEM, dataset.name)
            session.add(
                HarvestObject(
                    job_id=job_id,
                    remote_id=record.remote_id,
                    stage="import",
                    status="deleted",
                    dataset_id=record.dataset_id,
                    message="no longer offered by the source",
                )
            )
            withdrawn += 1
    return withdrawn


def reap_stale_jobs(
    sessions: sessionmaker[Session], *, stale_after: timedelta = STALE_AFTER
) -> int:
    """Fail running jobs whose worker stopped sending heartbeats; return how many."""
    cutoff = datetime.now(UTC) - stale_after
    with session_scope(sessions) as session:
        reaped = _rowcount(
            session,
            update(HarvestJob)
            .where(HarvestJob.status == "running", HarvestJob.heartbeat_at < cutoff)
            .values(
                status="failed",
                finished_at=datetime.now(UTC),
                error="the worker stopped answering (no heartbeat); the next run starts over",
            ),
        )
    return int(reaped)


def enqueue_due(sessions: sessionmaker[Session], now: datetime | None = None) -> list[int]:
    """Queue a job for every enabled source whose scheduled time has come."""
    now = now or datetime.now(UTC)
    queued = []
    with session_scope(sessions) as session:
        due = session.execute(
            select(HarvestSource)
            .where(HarvestSource.enabled, HarvestSource.next_run_at <= now)
            .with_for_update(skip_locked=True)
        ).scalars()
        for source in list(due):
            queued.append(enqueue(session, source.id, trigger="schedule"))
            source.next_run_at = next_run(source.schedule, now)
    return queued


def _heartbeat(sessions: sessionmaker[Session], job_id: int, stop: threading.Event) -> None:
    """Keep the job's heartbeat fresh; notice when staff cancel it."""
    while not stop.wait(HEARTBEAT_SECONDS):
        try:
            with session_scope(sessions) as session:
                status = session.execute(
                    update(HarvestJob)
                    .where(HarvestJob.id == job_id)
                    .values(heartbeat_at=datetime.now(UTC))
                    .returning(HarvestJob.status)
                ).scalar()
            if status == "cancelled":
                stop.set()
        except Exception:  # noqa: BLE001 - a missed beat is retried; the reaper decides
            log.warning("could not record the heartbeat of job %s", job_id)


def _set_stage(sessions: sessionmaker[Session], job_id: int, stage: str) -> None:
    with session_scope(sessions) as session:
        session.execute(update(HarvestJob).where(HarvestJob.id == job_id).values(stage=stage))


def _spec(session: Session, source_id: int) -> SourceSpec:
    source = session.get(HarvestSource, source_id)
    if source is None:
        raise NotFound(f"harvest source {source_id} not found")
    department = session.get(Department, source.department_id)
    assert department is not None
    return SourceSpec(
        id=source.id,
        name=source.name,
        title=source.title,
        kind=source.kind,
        url=source.url,
        department=department.slug,
        default_visibility=Visibility(source.default_visibility),
        config=source.config,
        allow_private_network=source.allow_private_network,
    )


def _rowcount(session: Session, statement: Any) -> int:
    result = session.execute(statement)
    return int(getattr(result, "rowcount", 0))


def _alive(session: Session, record: HarvestRecord) -> bool:
    dataset = session.get(Dataset, record.dataset_id) if record.dataset_id else None
    return dataset is not None and dataset.state == "active"
