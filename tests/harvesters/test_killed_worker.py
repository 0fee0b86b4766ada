"""A worker killed mid-job leaves the previous layer in place, and the next run recovers."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import psycopg
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.departments import ensure_department
from portal.core.database import session_scope
from portal.core.principal import SYSTEM
from portal.core.settings import Settings
from portal.harvesters.jobs import enqueue, reap_stale_jobs
from portal.harvesters.models import HarvestJob
from portal.harvesters.sources import get_source
from tests.demo.databases import own_database
from tests.harvest_support import harvest
from tests.harvesters.directory_support import source

LAYER = "killed_points"
SMALL, BIG = 100, 800_000


def _write_points(folder: Path, rows: int) -> None:
    lines = ["名称,緯度,経度"]
    lines += [
        f"地点{i},{33.2 + (i % 1000) / 10_000:.6f},{131.4 + (i // 1000) / 10_000:.6f}"
        for i in range(rows)
    ]
    (folder / "points.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _count(database_url: str) -> tuple[int, int]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(f"SELECT count(*) FROM layers.{LAYER}").fetchone()
        version = connection.execute(
            "SELECT version FROM portal.layers WHERE id = %s", (LAYER,)
        ).fetchone()
    assert rows is not None and version is not None
    return int(rows[0]), int(version[0])


def test_a_worker_killed_mid_load_keeps_the_old_layer_and_the_next_run_recovers(
    database_url: str, tmp_path: Path
) -> None:
    # Its own database: the worker takes whatever job is queued first, and other test modules
    # leave jobs of kinds that only exist inside the test process.
    with own_database(database_url, tmp_path / "files") as (settings, sessions):
        with session_scope(sessions) as session:
            ensure_department(session, slug="doboku", name="土木課", name_en=None)
        _kill_and_recover(settings, sessions, tmp_path)


def _kill_and_recover(settings: Settings, sessions: sessionmaker[Session], tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "points.meta.yaml").write_text(f"layer_id: {LAYER}\ntitle: 停止試験の地点\n", "utf-8")
    _write_points(folder, SMALL)
    name = source(sessions, folder)
    assert harvest(sessions, settings, name).status == "succeeded"
    assert _count(settings.database_url) == (SMALL, 1)

    _write_points(folder, BIG)
    with session_scope(sessions) as session:
        job_id = enqueue(session, get_source(session, SYSTEM, name).id, trigger="manual")
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "PORTAL_DATA_DIR": str(settings.data_dir),
        "PORTAL_ENV": "test",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as stderr:
        worker = subprocess.Popen(
            [sys.executable, "-m", "portal.api.cli", "worker", "--once", "--poll", "0.5"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while _stage(sessions, job_id) != ("running", "import"):
            assert worker.poll() is None, log.read_text("utf-8", errors="replace")
            assert time.monotonic() < deadline, "the worker never started importing"
            time.sleep(0.1)
        time.sleep(1.0)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    assert worker.returncode == -signal.SIGKILL, "the worker finished before it could be killed"

    # Readers still see the complete previous version.
    assert _count(settings.database_url) == (SMALL, 1)
    assert _stage(sessions, job_id) == ("running", "import")
    assert reap_stale_jobs(sessions, stale_after=timedelta(0)) >= 1
    with session_scope(sessions) as session:
        job = session.get(HarvestJob, job_id)
        assert job is not None and job.status == "failed"
        assert "no heartbeat" in (job.error or "")

    again = harvest(sessions, settings, name)
    assert again.status == "succeeded", again.error
    assert _count(settings.database_url) == (BIG, 2)


def _stage(sessions: sessionmaker[Session], job_id: int) -> tuple[str, str | None]:
    with session_scope(sessions) as session:
        job = session.get(HarvestJob, job_id)
        assert job is not None
        return job.status, job.stage
