"""`portal harvest add|list|run|jobs` and `portal worker`."""

import json
import time
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from portal.api.cli_db import err, fail, load_settings
from portal.core.database import create_db_engine, make_session_factory, session_scope
from portal.core.principal import SYSTEM, Visibility
from portal.core.settings import Settings
from portal.core.storage import LocalStorage
from portal.harvesters.jobs import (
    claim_next,
    enqueue,
    enqueue_due,
    reap_stale_jobs,
    run_job,
    start_job,
    worker_name,
)
from portal.harvesters.registry import KINDS
from portal.harvesters.sources import (
    SourceCreate,
    create_source,
    get_source,
    job_objects,
    list_jobs,
)
from portal.harvesters.sources import list_sources as list_harvest_sources

harvest_app = typer.Typer(
    help="Harvest department data into the catalog. / ハーベスト", no_args_is_help=True
)


def _sessions(settings: Settings):  # type: ignore[no-untyped-def]
    return make_session_factory(create_db_engine(settings))


@harvest_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Source name (a-z, 0-9, - and _).")],
    kind: Annotated[str, typer.Option("--kind", help=f"One of: {', '.join(KINDS)}.")],
    url: Annotated[str, typer.Option("--url", help="Source URL, or folder path for directory.")],
    department: Annotated[str, typer.Option("--department", help="Owning department slug.")],
    title: Annotated[str, typer.Option("--title", help="Display title [the name].")] = "",
    visibility: Annotated[
        Visibility, typer.Option("--visibility", help="Visibility of harvested datasets.")
    ] = Visibility.public,
    schedule: Annotated[
        str, typer.Option("--schedule", help="manual, hourly, daily, weekly or a cron expression.")
    ] = "manual",
    config: Annotated[str, typer.Option("--config", help="Kind settings as JSON.")] = "{}",
    allow_private_network: Annotated[
        bool, typer.Option("--allow-private-network", help="Allow 10.x/192.168.x/127.x hosts.")
    ] = False,
) -> None:
    """Register a harvest source."""
    try:
        parsed = json.loads(config)
    except json.JSONDecodeError as exc:
        fail(f"--config is not valid JSON: {exc.msg} at column {exc.colno}")
    try:
        data = SourceCreate(
            name=name,
            title=title or name,
            kind=kind,
            url=url,
            department=department,
            default_visibility=visibility,
            schedule=schedule,
            config=parsed,
            allow_private_network=allow_private_network,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
    with session_scope(_sessions(load_settings())) as session:
        source = create_source(session, SYSTEM, data)
    err.print(
        f"[green]✓[/green] added harvest source {source.name} ({source.kind}, {source.schedule})"
    )


@harvest_app.command("list")
def list_() -> None:
    """List harvest sources."""
    with session_scope(_sessions(load_settings())) as session:
        sources = list_harvest_sources(session, SYSTEM)
    table = Table("name", "kind", "department", "schedule", "next run", "url")
    for source in sources:
        next_run = source.next_run_at.strftime("%Y-%m-%d %H:%M") if source.next_run_at else "—"
        table.add_row(
            source.name, source.kind, source.department, source.schedule, next_run, source.url
        )
    err.print(table)


@harvest_app.command("run")
def run(name: Annotated[str, typer.Argument(help="Source name.")]) -> None:
    """Run one harvest now, in the foreground, with a progress bar."""
    settings = load_settings()
    sessions = _sessions(settings)
    with session_scope(sessions) as session:
        job_id = enqueue(session, get_source(session, SYSTEM, name).id, trigger="cli")
    start_job(sessions, job_id, worker_name())
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err,
    ) as progress:  # fmt: skip
        task = progress.add_task(f"harvest {name}", total=None)

        def report(done: int, total: int, remote_id: str) -> None:
            progress.update(task, completed=done, total=total, description=remote_id[:40])

        status = run_job(
            job_id,
            settings=settings,
            sessions=sessions,
            storage=LocalStorage(settings.data_dir),
            progress=report,
        )
    _show_job(sessions, job_id)
    if status not in ("succeeded", "partial"):
        raise typer.Exit(1)


@harvest_app.command("jobs")
def jobs(
    source: Annotated[str | None, typer.Option("--source", help="Only this source.")] = None,
    job: Annotated[int | None, typer.Option("--job", help="Show one job's objects.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 20,
) -> None:
    """List recent jobs, or one job's per-object results."""
    sessions = _sessions(load_settings())
    if job is not None:
        _show_job(sessions, job)
        return
    with session_scope(sessions) as session:
        rows = list_jobs(session, SYSTEM, source=source, limit=limit)
    table = Table("job", "source", "status", "trigger", "started", "took", "results", "error")
    for found, source_name in rows:
        took = (
            f"{(found.finished_at - found.started_at).total_seconds():.1f}s"
            if found.finished_at and found.started_at
            else ""
        )
        started = found.started_at.strftime("%Y-%m-%d %H:%M") if found.started_at else ""
        results = ", ".join(f"{k} {v}" for k, v in sorted(found.stats.items()))
        table.add_row(str(found.id), source_name, found.status, found.trigger, started, took,
                      results, found.error or "")  # fmt: skip
    err.print(table)


def _show_job(sessions, job_id: int) -> None:  # type: ignore[no-untyped-def]
    with session_scope(sessions) as session:
        objects = job_objects(session, SYSTEM, job_id)
        rows = [(o.remote_id, o.stage, o.status, o.message or "", len(o.warnings)) for o in objects]
    counts: dict[str, int] = {}
    for _, _, status, _, _ in rows:
        counts[status] = counts.get(status, 0) + 1
    err.print(f"job {job_id}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    failed = [row for row in rows if row[2] == "failed"]
    if failed:
        table = Table("object", "stage", "message", title="失敗した対象 / failed objects")
        for remote_id, stage, _, message, _ in failed:
            table.add_row(remote_id, stage, message)
        err.print(table)


def worker(
    once: Annotated[bool, typer.Option("--once", help="Run queued jobs, then stop.")] = False,
    poll: Annotated[float, typer.Option("--poll", min=0.5, help="Seconds between polls.")] = 5.0,
) -> None:
    """Run queued and scheduled harvest jobs; several workers may run on different machines."""
    settings = load_settings()
    sessions = _sessions(settings)
    storage = LocalStorage(settings.data_dir)
    me = worker_name()
    err.print(f"worker {me} started / ワーカー起動")
    while True:
        reaped = reap_stale_jobs(sessions)
        if reaped:
            err.print(f"marked {reaped} stalled job(s) as failed")
        enqueue_due(sessions)
        job_id = claim_next(sessions, me)
        if job_id is None:
            if once:
                return
            time.sleep(poll)
            continue
        err.print(f"running job {job_id}")
        status = run_job(job_id, settings=settings, sessions=sessions, storage=storage)
        err.print(f"job {job_id}: {status}")
