"""Run harvests in tests through the same queue and runner the worker uses."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from portal.core.database import session_scope
from portal.core.principal import SYSTEM, Visibility
from portal.core.settings import Settings
from portal.core.storage import LocalStorage
from portal.harvesters.jobs import enqueue, run_job, start_job, worker_name
from portal.harvesters.models import HarvestJob, HarvestObject
from portal.harvesters.sources import SourceCreate, create_source, get_source


@dataclass
class HarvestOutcome:
    """A finished job and its per-object results."""

    job_id: int
    status: str
    error: str | None
    stats: dict[str, int]
    objects: list[HarvestObject]

    def by_status(self, status: str) -> list[HarvestObject]:
        """The objects with one outcome."""
        return [o for o in self.objects if o.status == status]


def add_source(
    sessions: sessionmaker[Session],
    *,
    name: str,
    kind: str,
    url: str,
    department: str = "doboku",
    visibility: Visibility = Visibility.public,
    config: dict[str, Any] | None = None,
    private_network: bool = True,
) -> int:
    """Register a source as a site admin (tests serve from 127.0.0.1, a private address)."""
    with session_scope(sessions) as session:
        return create_source(
            session,
            SYSTEM,
            SourceCreate(
                name=name,
                title=name,
                kind=kind,
                url=url,
                department=department,
                default_visibility=visibility,
                config=config or {},
                allow_private_network=private_network,
            ),
        ).id


def harvest(sessions: sessionmaker[Session], settings: Settings, name: str) -> HarvestOutcome:
    """Queue a job for a source, run it here, and return what happened."""
    with session_scope(sessions) as session:
        source_id = get_source(session, SYSTEM, name).id
        job_id = enqueue(session, source_id, trigger="manual")
    start_job(sessions, job_id, worker_name())
    run_job(job_id, settings=settings, sessions=sessions, storage=LocalStorage(settings.data_dir))
    with session_scope(sessions) as session:
        job = session.get(HarvestJob, job_id)
        assert job is not None
        objects = list(
            session.query(HarvestObject)
            .filter(HarvestObject.job_id == job_id)
            .order_by(HarvestObject.id)
        )
        session.expunge_all()
        return HarvestOutcome(job_id, job.status, job.error, job.stats, objects)
