import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import free_port
from tests.demo.databases import own_database

PORTAL = [sys.executable, "-m", "portal.api.cli"]


def run_portal(
    *args: str, database_url: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "PORTAL_ENV": "test", "COLUMNS": "200"}
    return subprocess.run(
        [*PORTAL, *args], capture_output=True, text=True, env=env, timeout=300, cwd=cwd
    )


def test_help_lists_only_the_commands_that_exist(database_url: str) -> None:
    result = run_portal("--help", database_url=database_url)
    assert result.returncode == 0
    for command in ("serve", "db", "demo", "user", "token", "harvest", "worker"):
        assert f" {command} " in result.stdout


@pytest.mark.parametrize("command", [["demo", "--no-serve"], ["serve", "--port", "1"]])
def test_an_unreachable_database_is_named_without_a_traceback(
    command: list[str], tmp_path: Path
) -> None:
    url = f"postgresql://portal:hunter2@127.0.0.1:{free_port()}/portal"
    result = run_portal(*command, database_url=url, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2
    assert "Traceback" not in output
    assert "postgresql://portal:***@127.0.0.1" in output
    assert "hunter2" not in output
    assert "DATABASE_URL" in output


def test_demo_loads_the_city_and_a_second_run_duplicates_nothing(
    database_url: str, tmp_path: Path
) -> None:
    # Its own database: re-harvesting the session's demo would change what other tests read.
    with own_database(database_url, tmp_path / "files") as (settings, _):
        _demo_twice(settings.database_url, tmp_path / "drop")


def _demo_twice(database_url: str, out: Path) -> None:
    first = run_portal("demo", "--no-serve", "--out", str(out), database_url=database_url)
    assert first.returncode == 0, first.stderr
    assert (out / "doboku" / "road_ledger.shp").is_file()
    counts_sql = "SELECT id, feature_count, version FROM portal.layers ORDER BY id"
    with psycopg.connect(database_url) as connection:
        before = connection.execute(counts_sql).fetchall()
        departments = connection.execute("SELECT count(*) FROM portal.departments").fetchone()
    second = run_portal("demo", "--no-serve", "--out", str(out), database_url=database_url)
    assert second.returncode == 0, second.stderr
    assert "unchanged, skipped" in second.stderr
    with psycopg.connect(database_url) as connection:
        after = connection.execute(counts_sql).fetchall()
        departments_after = connection.execute("SELECT count(*) FROM portal.departments").fetchone()
        roads = connection.execute("SELECT count(*) FROM layers.roads").fetchone()
    assert after == before
    assert departments == departments_after
    assert roads is not None and {r[0]: r[1] for r in after}["roads"] == roads[0]


def test_demo_generate_writes_the_file_drop(tmp_path: Path, database_url: str) -> None:
    result = run_portal(
        "demo", "generate", "--out", str(tmp_path), "--scale", "1", database_url=database_url
    )
    assert result.returncode == 0, result.stderr
    names = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.*"))
    assert "bosai/442020_evacuation_space.csv" in names
    assert "shimin/population_by_chocho_age.xlsx" in names


def test_demo_generate_refuses_scale_zero(tmp_path: Path, database_url: str) -> None:
    result = run_portal(
        "demo", "generate", "--out", str(tmp_path), "--scale", "0", database_url=database_url
    )
    assert result.returncode == 2
    assert "--scale" in result.stderr
    assert "Traceback" not in result.stderr


def test_user_create_reads_the_password_from_stdin_and_token_create_prints_once(
    database_url: str, demo_city: object
) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "PORTAL_ENV": "test"}
    email = f"cli-{os.getpid()}@test.example"
    created = subprocess.run(
        [
            *PORTAL,
            "user",
            "create",
            "--email",
            email,
            "--department",
            "doboku",
            "--role",
            "editor",
            "--password-stdin",
        ],
        input="a long enough password\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    listed = run_portal("user", "list", database_url=database_url)
    assert email in listed.stderr and "doboku:editor" in listed.stderr
    token = run_portal(
        "token", "create", "--user", email, "--expires", "2d", database_url=database_url
    )
    assert token.returncode == 0, token.stderr
    assert token.stdout.strip().startswith("ptk_")
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT t.expires_at - t.created_at FROM portal.api_tokens t JOIN portal.users u "
            "ON u.id = t.user_id WHERE u.email = %s",
            (email,),
        ).fetchone()
    assert row is not None and round(row[0].total_seconds() / 86400) == 2


def test_user_create_names_an_unknown_department(database_url: str, demo_city: object) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "PORTAL_ENV": "test"}
    result = subprocess.run(
        [
            *PORTAL,
            "user",
            "create",
            "--email",
            "x@test.example",
            "--department",
            "nosuch",
            "--password-stdin",
        ],
        input="a long enough password\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert "unknown department 'nosuch'" in result.stderr
    assert "Traceback" not in result.stderr


def test_token_create_refuses_a_bad_lifetime(database_url: str) -> None:
    result = run_portal(
        "token",
        "create",
        "--user",
        "x@test.example",
        "--expires",
        "soon",
        database_url=database_url,
    )
    assert result.returncode == 2
    assert "--expires must look like 30d" in result.stderr
