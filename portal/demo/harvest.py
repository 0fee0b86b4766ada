"""Harvest the demo city's file drop through the directory harvester, one source per department.

`portal demo` and the test fixtures go through the same sources, queue and job runner as a
city's real folder drops; only the sidecars beside the files (see `sidecars`) say what
each file becomes. Re-running is incremental: unchanged files are not read again.
"""

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.datasets import refresh_search_document
from portal.catalog.departments import department_id_by_slug, ensure_department
from portal.catalog.models import Dataset, Department, Resource
from portal.core import audit
from portal.core.database import session_scope
from portal.core.errors import Conflict, HarvestFailed, InvalidInput, NotFound
from portal.core.principal import SYSTEM, Visibility
from portal.core.settings import Settings
from portal.core.storage import LocalStorage, Storage
from portal.demo.city import DEPARTMENTS, SAMPLE_LABEL, DemoDepartment, DemoFile, demo_files
from portal.demo.sidecars import sidecar_path
from portal.geo.models import Layer, layer_shares
from portal.harvesters.jobs import enqueue, reap_stale_jobs, run_job, start_job, worker_name
from portal.harvesters.models import HarvestJob, HarvestObject, HarvestRecord, HarvestSource
from portal.harvesters.registry import harvester_for
from portal.harvesters.sources import SourceCreate, create_source

SOURCE_PREFIX = "demo-"
JobProgress = Callable[[str, int, int, str], None]
"""Called with the department slug, files done, files in all, and the file just done
(first with 0 done and no file, as the department's job starts)."""


@dataclass(frozen=True)
class DemoObject:
    """What the harvest did with one demo file, and the layer it became."""

    path: str
    status: str
    dataset_name: str | None = None
    layer_id: str | None = None
    feature_count: int | None = None
    source_crs: str | None = None
    visibility: Visibility | None = None
    message: str = ""
    shared_with: tuple[str, ...] = ()

    @property
    def skipped(self) -> bool:
        """Tell whether the file was unchanged since the last harvest and not read again."""
        return self.status == "unchanged"


@dataclass(frozen=True)
class DemoHarvest:
    """One department's harvest job and its files."""

    department: str
    source: str
    job_id: int
    status: str
    error: str | None
    objects: list[DemoObject]

    @property
    def succeeded(self) -> bool:
        """Tell whether every file of the department was harvested."""
        return self.status == "succeeded"


def source_name(department: str) -> str:
    """Return the name of a department's demo harvest source."""
    return f"{SOURCE_PREFIX}{department}"


def harvest_demo_city(
    settings: Settings,
    sessions: sessionmaker[Session],
    root: Path,
    *,
    storage: Storage | None = None,
    force: bool = False,
    progress: JobProgress | None = None,
) -> list[DemoHarvest]:
    """Register each department's folder as a directory source and harvest it here."""
    root = root.resolve()
    files = demo_files(settings.municipality_code)
    _check_drop(root, files)
    departments = [d for d in DEPARTMENTS if any(f.department == d.slug for f in files)]
    with session_scope(sessions) as session:
        for department in DEPARTMENTS:
            ensure_department(
                session, slug=department.slug, name=department.name, name_en=department.name_en
            )
        sources = {d.slug: _ensure_source(session, d, root / d.slug) for d in departments}
        _adopt_direct_loads(session, sources, files)
        if force:
            session.execute(
                update(HarvestRecord)
                .where(HarvestRecord.source_id.in_(sources.values()))
                .values(content_hash=None, remote_modified=None)
            )
    reap_stale_jobs(sessions)
    storage = storage or LocalStorage(settings.data_dir)
    harvests = []
    for department in departments:
        slug = department.slug

        def report(done: int, total: int, remote_id: str, slug: str = slug) -> None:
            if progress is not None:
                progress(slug, done, total, remote_id)

        report(0, sum(f.department == slug for f in files), "")
        job_id = _run_here(settings, sessions, storage, sources[slug], report)
        harvests.append(_outcome(sessions, department.slug, job_id, files))
    return harvests


def _check_drop(root: Path, files: tuple[DemoFile, ...]) -> None:
    """Refuse a drop without its files or sidecars before any source is registered."""
    for demo_file in files:
        if not (root / demo_file.path).is_file():
            raise InvalidInput(
                f"{root / demo_file.path} is missing; generate the drop first "
                "(portal demo generate --out …)"
            )
        if not sidecar_path(root, demo_file).is_file():
            raise InvalidInput(
                f"{sidecar_path(root, demo_file)} is missing: without its sidecar the file "
                "would be published under a name made from the file name; generate the drop "
                "with its sidecars (portal demo generate --sidecars)"
            )


def _ensure_source(session: Session, department: DemoDepartment, folder: Path) -> int:
    """Create the department's demo source, or point the existing one at `folder`."""
    name = source_name(department.slug)
    existing = session.execute(
        select(HarvestSource).where(HarvestSource.name == name)
    ).scalar_one_or_none()
    if existing is None:
        created = create_source(
            session,
            SYSTEM,
            SourceCreate(
                name=name,
                title=f"{department.name}の共有フォルダ（{SAMPLE_LABEL}）",
                kind="directory",
                url=str(folder),
                department=department.slug,
            ),
        )
        return created.id
    department_id = department_id_by_slug(session, department.slug)
    if existing.kind != "directory" or existing.department_id != department_id:
        raise Conflict(
            f"the harvest source {name!r} exists but is not the {department.slug} folder of the "
            "demo; rename or remove it, then run the demo again"
        )
    if existing.url != str(folder):
        existing.config = harvester_for("directory").validate_config(str(folder), existing.config)
        existing.url = str(folder)
        audit.record(
            session,
            action="harvest_source.updated",
            actor=SYSTEM,
            target=f"harvest_source:{existing.id}",
            detail={"url": str(folder)},
        )
    return existing.id


def _adopt_direct_loads(
    session: Session, sources: dict[str, int], files: tuple[DemoFile, ...]
) -> None:
    """Hand datasets that an older demo published without the harvester to its sources.

    Without this, the first harvest would publish them again under names ending in -2.
    """
    for demo_file in files:
        source_id = sources[demo_file.department]
        remote_id = _remote_id(demo_file)
        if session.get(HarvestRecord, (source_id, remote_id)) is not None:
            continue
        dataset = session.execute(
            select(Dataset).where(Dataset.name == demo_file.dataset.name, Dataset.state == "active")
        ).scalar_one_or_none()
        if dataset is None or dataset.department_id != department_id_by_slug(
            session, demo_file.department
        ):
            continue
        claimed = session.execute(
            select(HarvestRecord.source_id).where(HarvestRecord.dataset_id == dataset.id)
        ).first()
        if claimed is None:
            session.add(
                HarvestRecord(source_id=source_id, remote_id=remote_id, dataset_id=dataset.id)
            )


def _run_here(
    settings: Settings,
    sessions: sessionmaker[Session],
    storage: Storage,
    source_id: int,
    report: Callable[[int, int, str], None],
) -> int:
    """Queue a job and run it in this process; wait instead if a worker took it first."""
    with session_scope(sessions) as session:
        job_id = enqueue(session, source_id, trigger="cli")
    try:
        start_job(sessions, job_id, worker_name())
    except NotFound:
        _wait_for(sessions, job_id)
        return job_id
    run_job(job_id, settings=settings, sessions=sessions, storage=storage, progress=report)
    return job_id


def _wait_for(sessions: sessionmaker[Session], job_id: int) -> None:
    """Wait for a job that a `portal worker` is running to finish."""
    deadline: float | None = None
    while True:
        with session_scope(sessions) as session:
            job = session.get(HarvestJob, job_id)
            assert job is not None
            if job.status not in ("queued", "running"):
                return
            deadline = deadline or time.monotonic() + job.timeout_seconds + 60
        if time.monotonic() > deadline:
            raise HarvestFailed(
                f"harvest job {job_id} is still running in a worker; see `portal harvest jobs`"
            )
        time.sleep(0.5)


def _outcome(
    sessions: sessionmaker[Session], department: str, job_id: int, files: tuple[DemoFile, ...]
) -> DemoHarvest:
    """Read back a finished job: each file's outcome and layer; label the originals."""
    by_path = {f.path: f for f in files}
    with session_scope(sessions) as session:
        job = session.get(HarvestJob, job_id)
        assert job is not None
        rows = session.execute(
            select(HarvestObject).where(HarvestObject.job_id == job_id).order_by(HarvestObject.id)
        ).scalars()
        objects = []
        for row in rows:
            path = f"{department}/{row.remote_id}"
            if row.dataset_id is not None and path in by_path and row.status != "deleted":
                _label_original(session, row.dataset_id, by_path[path])
            objects.append(_object(session, path, row))
        return DemoHarvest(
            department, source_name(department), job_id, job.status, job.error, objects
        )


def _object(session: Session, path: str, row: HarvestObject) -> DemoObject:
    """One file's outcome, with the layer behind its dataset."""
    message = row.message or "; ".join(row.warnings)
    dataset = session.get(Dataset, row.dataset_id) if row.dataset_id else None
    if dataset is None:
        return DemoObject(path, row.status, message=message)
    layer = (
        session.execute(
            select(Layer)
            .join(Resource, Resource.layer_id == Layer.id)
            .where(Resource.dataset_id == dataset.id)
            .order_by(Resource.position)
        )
        .scalars()
        .first()
    )
    if layer is None:
        return DemoObject(path, row.status, dataset.name, message=message)
    shares = session.execute(
        select(Department.slug)
        .join(layer_shares, layer_shares.c.department_id == Department.id)
        .where(layer_shares.c.layer_id == layer.id)
        .order_by(Department.slug)
    ).scalars()
    return DemoObject(
        path,
        row.status,
        dataset.name,
        layer.id,
        layer.feature_count,
        layer.source_crs,
        Visibility(layer.visibility),
        message,
        tuple(shares),
    )


def _label_original(session: Session, dataset_id: uuid.UUID, demo_file: DemoFile) -> None:
    """Name the stored original as the demo always has: `<title>（元ファイル）`."""
    originals = session.execute(
        select(Resource).where(Resource.dataset_id == dataset_id, Resource.kind == "file")
    ).scalars()
    renamed = False
    for resource in originals:
        if resource.name != demo_file.original_name:
            resource.name, renamed = demo_file.original_name, True
    if renamed:
        session.flush()
        refresh_search_document(session, dataset_id)


def _remote_id(demo_file: DemoFile) -> str:
    """A demo file's path inside its department's folder (the harvester's remote id)."""
    return demo_file.path.split("/", 1)[1]
