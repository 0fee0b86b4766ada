"""Harvesting a local CKAN-compatible portal: the first run, a no-change re-run, the HTTP floor.

Portal A (its own throwaway database, N datasets each with a small CSV in its storage) is
served by uvicorn in a thread. Portal B harvests it with the `ckan` kind through the job
runner, on a fresh copy of a migrated template database for every first run.
"""

import io
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvicorn
from psycopg import sql
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from bench.db import DATABASE_PREFIX, bench_database, server_url, with_database
from bench.harness import BenchmarkResult, Contender, Options, Role, expect, run_benchmark
from portal.api.app import create_app
from portal.catalog.datasets import create_dataset
from portal.catalog.departments import ensure_department
from portal.catalog.models import Dataset, Resource
from portal.catalog.resources import add_resource
from portal.catalog.schemas import DatasetCreate, ResourceCreate
from portal.core.database import create_db_engine, make_session_factory, session_scope
from portal.core.principal import SYSTEM
from portal.core.settings import Settings
from portal.core.storage import LocalStorage
from portal.harvesters.jobs import enqueue, run_job, start_job, worker_name
from portal.harvesters.models import HarvestJob, HarvestObject, HarvestSource
from portal.harvesters.sources import SourceCreate, create_source

NAME = "harvest"
DESCRIPTION = "ckan kind: portal B harvests N datasets (with CSV files) from portal A over HTTP"
DATASETS_PER_SCALE = 20  # --scale 50 → 1,000 datasets
SOURCE = "bench-portal-a"
DEPARTMENT = "doboku"
CKAN_PER_SECOND = 1.0  # what CKAN's own harvester manages, for the note
TITLES = ("指定避難所一覧", "AED設置箇所一覧", "公衆トイレ一覧", "子育て施設一覧", "文化財一覧")
AREAS = ("北浜", "南町", "鉄輪", "亀川", "浜脇", "石垣", "朝見", "青山", "光町", "境川")


@dataclass(frozen=True)
class Outcome:
    """A finished harvest job: status, per-object counts, and where its time went."""

    status: str
    error: str | None
    stats: dict[str, Any]
    split: str


def run(options: Options, log: Callable[[str], None]) -> BenchmarkResult:
    """Publish N datasets in portal A, serve it, and time portal B's harvests of it."""
    count = DATASETS_PER_SCALE * options.scale
    scratch = Path(tempfile.mkdtemp(prefix="portal-bench-harvest-"))
    try:
        with bench_database() as a_url, bench_database() as template_url:
            a_settings = Settings(env="test", database_url=a_url, data_dir=scratch / "a")
            names = publish_portal_a(a_settings, count, log)
            prepare_template(template_url)
            with ServedPortal(a_settings) as portal_a:
                target = PortalB(template_url, scratch / "b", portal_a.url)
                try:
                    result = _compare(target, portal_a.url, names, options, log)
                finally:
                    target.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return result


def _compare(
    target: "PortalB",
    site: str,
    names: list[str],
    options: Options,
    log: Callable[[str], None],
) -> BenchmarkResult:
    count = len(names)
    splits: dict[str, str] = {}

    def first() -> Outcome:
        outcome = target.harvest()
        splits["first harvest"] = outcome.split
        return outcome

    def check_first(outcome: Outcome) -> None:
        expect(outcome.status == "succeeded", f"job {outcome.status}: {outcome.error}")
        expect(outcome.stats == {"created": count}, f"stats {outcome.stats}")
        have = target.dataset_names()
        expect(have == set(names), f"{len(have)} datasets in B, {len(have ^ set(names))} differ")
        files = target.file_resources()
        expect(files == count, f"{files} file resources in B, expected {count}")

    def again() -> Outcome:
        outcome = target.harvest()
        splits["re-harvest"] = outcome.split
        return outcome

    def check_again(outcome: Outcome) -> None:
        expect(outcome.status == "succeeded", f"job {outcome.status}: {outcome.error}")
        expect(outcome.stats == {"unchanged": count}, f"stats {outcome.stats}, not all unchanged")
        expect(target.dataset_names() == set(names), "B's datasets changed on a re-harvest")

    client = httpx.Client(base_url=site, timeout=30)

    def floor() -> list[str]:
        shown = []
        for name in names:
            answer = client.get("/api/3/action/package_show", params={"id": name})
            answer.raise_for_status()
            shown.append(answer.json()["result"])
        return [package["name"] for package in shown if len(package["resources"]) == 1]

    def check_floor(shown: list[str]) -> None:
        expect(shown == names, f"{len(shown)} of {count} package_show answers were right")

    contenders = [
        Contender(
            "ours",
            Role.ours,
            run=first,
            check=check_first,
            setup=target.fresh,
            description="first harvest: ckan kind via the job runner, into an empty portal",
        ),
        Contender(
            "re-harvest",
            Role.peer,
            run=again,
            check=check_again,
            description="the same source again with nothing changed (runs after `ours`)",
        ),
        Contender(
            "package_show floor",
            Role.baseline,
            run=floor,
            check=check_floor,
            description="httpx loop over the N package_show answers, no DB writes",
        ),
    ]
    try:
        result = run_benchmark(
            NAME,
            f"harvest {count:,} datasets from a local CKAN-compatible portal",
            contenders,
            work=count,
            unit="datasets",
            repeat=options.repeat,
            warmup=options.warmup,
            log=log,
        )
    finally:
        client.close()
    result.notes += _notes(result, splits)
    return result


def _notes(result: BenchmarkResult, splits: dict[str, str]) -> list[str]:
    notes = []
    first, again = result.ours, result.get("re-harvest")
    rate = result.throughput(first)
    if rate is not None:
        notes.append(
            f"first harvest: {rate:.1f} datasets/s, {rate / CKAN_PER_SECOND:.0f}× the "
            f"~{CKAN_PER_SECOND:.0f} dataset/s of CKAN's own harvester"
        )
    if first.median and again.median:
        share = again.median / first.median
        verdict = "within" if share < 0.05 else "OVER"
        notes.append(
            f"re-harvest without change: {share:.1%} of the first run ({verdict} the 5 % aim)"
        )
    notes += [f"{name}, last run: {split}" for name, split in splits.items()]
    return notes


def publish_portal_a(settings: Settings, count: int, log: Callable[[str], None]) -> list[str]:
    """Create N public datasets in portal A, each with one small CSV in its storage."""
    log(f"{NAME}: publishing {count:,} datasets with CSV files in portal A")
    engine = create_db_engine(settings)
    storage = LocalStorage(settings.data_dir)
    names = []
    try:
        sessions = make_session_factory(engine)
        with session_scope(sessions) as session:
            ensure_department(session, slug=DEPARTMENT, name="土木課", name_en=None)
        for number in range(count):
            name = f"bench-{number:05d}"
            title, area = TITLES[number % len(TITLES)], AREAS[number // len(TITLES) % len(AREAS)]
            with session_scope(sessions) as session:
                create_dataset(
                    session,
                    SYSTEM,
                    DatasetCreate(
                        name=name,
                        title=f"{title}（{area}地区・{number}）",
                        notes=f"{area}地区の{title}。ベンチマーク用に生成したデータです。",
                        department=DEPARTMENT,
                        tags=[title.removesuffix("一覧"), f"{area}地区"],
                    ),
                )
                add_resource(
                    session,
                    SYSTEM,
                    name,
                    ResourceCreate(name=f"{title}（CSV）", format="CSV"),
                    upload=io.BytesIO(_csv(number, title, area)),
                    file_name=f"{name}.csv",
                    storage=storage,
                    max_bytes=settings.max_upload_bytes,
                    municipality_code=settings.municipality_code,
                )
            names.append(name)
    finally:
        engine.dispose()
    return names


def _csv(number: int, title: str, area: str) -> bytes:
    rows = ["番号,名称,所在地,数量,備考"]
    for row in range(1, 6):
        rows.append(
            f"{row},{title.removesuffix('一覧')}{number}-{row},別府市{area}{row}丁目,{row * 7},"
        )
    return ("\r\n".join(rows) + "\r\n").encode("utf-8")


def prepare_template(url: str) -> None:
    """Give the template database portal B's department (the template must then be idle)."""
    engine = create_db_engine(Settings(database_url=url))
    try:
        with session_scope(make_session_factory(engine)) as session:
            ensure_department(session, slug=DEPARTMENT, name="土木課", name_en=None)
    finally:
        engine.dispose()


class PortalB:
    """The harvesting portal: a fresh clone of the template database for every first run."""

    def __init__(self, template_url: str, data_dir: Path, site: str) -> None:
        self.template = template_url.rsplit("/", 1)[1]
        self.data_dir = data_dir
        self.site = site
        self.database: str | None = None
        self.engine: Engine | None = None
        self.sessions: sessionmaker[Session] | None = None
        self.settings: Settings | None = None

    def fresh(self) -> None:
        """Start over on an empty portal B with the source registered (untimed)."""
        self.close()
        self.database = f"{DATABASE_PREFIX}b_{time.monotonic_ns() % 10**9}"
        _admin(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(self.database), sql.Identifier(self.template)
            )
        )
        url = with_database(server_url(), self.database)
        self.settings = Settings(env="test", database_url=url, data_dir=self.data_dir)
        self.engine = create_db_engine(self.settings)
        self.sessions = make_session_factory(self.engine)
        with session_scope(self.sessions) as session:
            create_source(
                session,
                SYSTEM,
                SourceCreate(
                    name=SOURCE,
                    title="ベンチマーク用 portal A",
                    kind="ckan",
                    url=self.site,
                    department=DEPARTMENT,
                    allow_private_network=True,  # portal A is on 127.0.0.1
                ),
            )

    def harvest(self) -> Outcome:
        """Queue a job for the source, run it here, and return its outcome."""
        assert self.sessions is not None and self.settings is not None
        with session_scope(self.sessions) as session:
            source_id = session.execute(
                select(HarvestSource.id).where(HarvestSource.name == SOURCE)
            ).scalar_one()
            job_id = enqueue(session, int(source_id))
        start_job(self.sessions, job_id, worker_name())
        run_job(
            job_id,
            settings=self.settings,
            sessions=self.sessions,
            storage=LocalStorage(self.data_dir),
        )
        with session_scope(self.sessions) as session:
            job = session.get(HarvestJob, job_id)
            assert job is not None
            first, last = session.execute(
                select(
                    func.min(HarvestObject.created_at), func.max(HarvestObject.created_at)
                ).where(HarvestObject.job_id == job_id)
            ).one()
            split = _split(job.started_at, first, last, job.finished_at, dict(job.stats))
            return Outcome(job.status, job.error, dict(job.stats), split)

    def dataset_names(self) -> set[str]:
        """The names of B's active datasets."""
        assert self.sessions is not None
        with session_scope(self.sessions) as session:
            rows = session.execute(select(Dataset.name).where(Dataset.state == "active"))
            return set(rows.scalars())

    def file_resources(self) -> int:
        """How many stored files B's datasets have."""
        assert self.sessions is not None
        with session_scope(self.sessions) as session:
            return int(
                session.execute(
                    select(func.count()).select_from(Resource).where(Resource.kind == "file")
                ).scalar_one()
            )

    def close(self) -> None:
        """Drop the current clone and its files."""
        if self.engine is not None:
            self.engine.dispose()
            self.engine = self.sessions = self.settings = None
        if self.database is not None:
            _admin(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(self.database)
                )
            )
            self.database = None
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _split(
    started: datetime | None,
    first: datetime | None,
    last: datetime | None,
    finished: datetime | None,
    stats: dict[str, Any],
) -> str:
    """Gather time (start → first object), per-object time, and the tail, from the job rows."""
    if not (started and first and last and finished):
        return "no timing recorded"
    objects = max(1, sum(int(v) for v in stats.values()))
    per_object = (last - first).total_seconds() / max(1, objects - 1)
    return (
        f"gather {(first - started).total_seconds():.2f} s, then "
        f"{per_object * 1000:.1f} ms per dataset, finish {(finished - last).total_seconds():.2f} s"
    )


def _admin(statement: sql.Composed) -> None:
    with psycopg.connect(with_database(server_url(), "postgres"), autocommit=True) as connection:
        connection.execute(statement)


class ServedPortal:
    """A portal served by uvicorn in a thread on a free port of 127.0.0.1."""

    def __init__(self, settings: Settings) -> None:
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            ws="none",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = ""

    def __enter__(self) -> "ServedPortal":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("portal A did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
