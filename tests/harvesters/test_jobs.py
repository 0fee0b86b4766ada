from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.datasets import get_dataset
from portal.core.database import session_scope
from portal.core.errors import InvalidInput, NotFound
from portal.core.principal import SYSTEM
from portal.core.settings import Settings
from portal.demo.load import DemoLoad
from portal.harvesters import registry
from portal.harvesters.jobs import claim_next, enqueue, enqueue_due, reap_stale_jobs, start_job
from portal.harvesters.models import HarvestJob, HarvestSource
from portal.harvesters.schedule import check_schedule, next_run
from portal.harvesters.sources import get_source
from tests.harvest_support import add_source, harvest


@pytest.fixture(autouse=True)
def fake_kind(demo_city: list[DemoLoad]) -> Iterator[None]:
    registry.KINDS["fake"] = "tests.harvesters.fake_kind:FakeHarvester"
    registry.harvester_for.cache_clear()
    yield
    registry.KINDS.pop("fake")
    registry.harvester_for.cache_clear()


def set_config(sessions: sessionmaker[Session], name: str, config: dict[str, Any]) -> None:
    with session_scope(sessions) as session:
        session.execute(
            update(HarvestSource).where(HarvestSource.name == name).values(config=config)
        )


def objects(**specs: dict[str, Any]) -> dict[str, Any]:
    return {"objects": specs}


def test_a_harvest_creates_then_skips_unchanged_objects(
    sessions: sessionmaker[Session], settings: Settings, database_url: str
) -> None:
    add_source(sessions, name="fake-basic", kind="fake", url="fake://", config=objects(
        a={"title": "地点A一覧", "rows": 3}, b={"title": "地点B一覧", "rows": 5}))  # fmt: skip
    first = harvest(sessions, settings, "fake-basic")
    assert (first.status, first.stats) == ("succeeded", {"created": 2})
    with session_scope(sessions) as session:
        dataset = get_dataset(session, SYSTEM, "fake-a")
    assert dataset.title == "地点A一覧"
    assert {r.kind for r in dataset.resources} == {"file", "layer"}
    layer_id = next(r.layer_id for r in dataset.resources if r.layer_id)
    with psycopg.connect(database_url) as connection:
        row = connection.execute(f"SELECT count(*) FROM layers.{layer_id}").fetchone()
    assert row == (3,)
    second = harvest(sessions, settings, "fake-basic")
    assert (second.status, second.stats) == ("succeeded", {"unchanged": 2})


def test_a_changed_object_is_updated_and_a_missing_one_withdrawn(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    add_source(sessions, name="fake-change", kind="fake", url="fake://", config=objects(
        c={"title": "変更前", "rows": 2}, d={"title": "消える", "rows": 2}))  # fmt: skip
    harvest(sessions, settings, "fake-change")
    set_config(sessions, "fake-change", objects(c={"title": "変更後", "rows": 4}))
    outcome = harvest(sessions, settings, "fake-change")
    assert outcome.stats == {"updated": 1, "deleted": 1}
    with session_scope(sessions) as session:
        assert get_dataset(session, SYSTEM, "fake-c").title == "変更後"
        with pytest.raises(NotFound):
            get_dataset(session, SYSTEM, "fake-d")


def test_one_failing_object_makes_the_job_partial_with_its_message(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    add_source(sessions, name="fake-partial", kind="fake", url="fake://", config=objects(
        e={"title": "良い", "rows": 1}, f={"title": "悪い", "rows": 1, "fail": "サーバーが応答しません"}))  # fmt: skip
    outcome = harvest(sessions, settings, "fake-partial")
    assert outcome.status == "partial"
    [failed] = outcome.by_status("failed")
    assert (failed.remote_id, failed.message) == ("f", "サーバーが応答しません")


def test_a_job_that_runs_too_long_times_out_and_keeps_the_previous_data(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    add_source(sessions, name="fake-slow", kind="fake", url="fake://",
               config=objects(g={"title": "前回", "rows": 2}))  # fmt: skip
    harvest(sessions, settings, "fake-slow")
    set_config(sessions, "fake-slow", objects(g={"title": "今回", "rows": 9, "sleep": 1.5}))
    with session_scope(sessions) as session:
        source_id = get_source(session, SYSTEM, "fake-slow").id
        job_id = enqueue(session, source_id)
        session.execute(update(HarvestJob).where(HarvestJob.id == job_id).values(timeout_seconds=1))
    from portal.core.storage import LocalStorage
    from portal.harvesters.jobs import run_job

    start_job(sessions, job_id, "test")
    status = run_job(
        job_id, settings=settings, sessions=sessions, storage=LocalStorage(settings.data_dir)
    )
    assert status == "timed_out"
    with session_scope(sessions) as session:
        job = session.get(HarvestJob, job_id)
        assert job is not None and "time limit" in (job.error or "")
        assert get_dataset(session, SYSTEM, "fake-g").title == "前回"


def test_a_source_has_at_most_one_queued_job_and_workers_never_share_one(
    sessions: sessionmaker[Session],
) -> None:
    for name in ("fake-q1", "fake-q2"):
        add_source(sessions, name=name, kind="fake", url="fake://", config=objects())
    with session_scope(sessions) as session:
        ids = [get_source(session, SYSTEM, n).id for n in ("fake-q1", "fake-q2")]
        first = enqueue(session, ids[0])
        assert enqueue(session, ids[0]) == first
        second = enqueue(session, ids[1])
    claimed = [claim_next(sessions, "worker-a"), claim_next(sessions, "worker-b")]
    assert sorted(c for c in claimed if c is not None) == sorted({first, second})
    with session_scope(sessions) as session:
        session.execute(
            update(HarvestJob).where(HarvestJob.id.in_(claimed)).values(status="cancelled")
        )


def test_the_reaper_fails_jobs_whose_worker_went_silent(sessions: sessionmaker[Session]) -> None:
    add_source(sessions, name="fake-stale", kind="fake", url="fake://", config=objects())
    with session_scope(sessions) as session:
        job_id = enqueue(session, get_source(session, SYSTEM, "fake-stale").id)
    start_job(sessions, job_id, "crashed-worker")
    with session_scope(sessions) as session:
        old = datetime.now(UTC) - timedelta(minutes=10)
        session.execute(update(HarvestJob).where(HarvestJob.id == job_id).values(heartbeat_at=old))
    assert reap_stale_jobs(sessions) >= 1
    with session_scope(sessions) as session:
        job = session.get(HarvestJob, job_id)
        assert job is not None and job.status == "failed"
        assert "stopped answering" in (job.error or "")
        assert enqueue(session, job.source_id) != job_id


def test_schedules_are_validated_and_due_sources_are_queued(
    sessions: sessionmaker[Session],
) -> None:
    with pytest.raises(InvalidInput, match="must be manual, hourly, daily, weekly, or a cron"):
        check_schedule("every tuesday")
    start = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    assert next_run("daily", start) == start + timedelta(days=1)
    assert next_run("30 2 * * *", start) == datetime(2026, 11, 23, 17, 30, tzinfo=UTC)
    assert next_run("manual", start) is None
    add_source(sessions, name="fake-due", kind="fake", url="fake://", config=objects())
    with session_scope(sessions) as session:
        session.execute(
            update(HarvestSource)
            .where(HarvestSource.name == "fake-due")
            .values(schedule="hourly", next_run_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    queued = enqueue_due(sessions)
    assert len(queued) == 1
    with session_scope(sessions) as session:
        source = get_source(session, SYSTEM, "fake-due")
        assert source.next_run_at is not None and source.next_run_at > datetime.now(UTC)
        session.execute(
            update(HarvestJob).where(HarvestJob.id.in_(queued)).values(status="cancelled")
        )


def test_unknown_kinds_are_refused_with_the_choices(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(
        InvalidInput, match="unknown harvest source kind 'ftp'; use one of directory"
    ):
        add_source(sessions, name="bad-kind", kind="ftp", url="ftp://x")


def test_directory_sources_need_a_site_admin(sessions: sessionmaker[Session], tmp_path) -> None:  # type: ignore[no-untyped-def]
    from portal.core.errors import Forbidden
    from portal.core.principal import Role
    from portal.core.tokens import authenticate_token
    from portal.harvesters.sources import SourceCreate, create_source
    from tests.staff import make_staff

    admin = make_staff(sessions, department="doboku", role=Role.admin)
    with session_scope(sessions) as session:
        principal = authenticate_token(session, admin.token, ip=None)
    with pytest.raises(Forbidden, match="folder \\(directory\\) source needs the site admin role"):
        with session_scope(sessions) as session:
            create_source(session, principal, SourceCreate(
                name="folder-by-dept", title="x", kind="directory", url=str(tmp_path), department="doboku"))  # fmt: skip
