"""Finding or starting a database: DATABASE_URL, the local server, a private cluster."""

import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from portal.api.cli_db import db_app
from portal.core import localdb, pgcluster
from portal.core.errors import DatabaseUnavailable
from portal.core.settings import Settings

LOCAL_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
ENV_VARS = ("DATABASE_URL", "PORTAL_DATABASE_URL", "PORTAL_PG_PORT", "PORTAL_PG_CLUSTER_DIR")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def local_server_accepts() -> bool:
    try:
        with psycopg.connect(LOCAL_ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


needs_local_server = pytest.mark.skipif(
    not local_server_accepts(),
    reason="no PostgreSQL at 127.0.0.1:5432 accepting user postgres without a password",
)
needs_initdb = pytest.mark.skipif(
    pgcluster.find_pg_bin("initdb") is None or pgcluster.find_pg_bin("pg_ctl") is None,
    reason="PostgreSQL server programs (initdb, pg_ctl) are not installed",
)


def test_unreachable_database_url_names_the_url_and_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"postgresql://portal@127.0.0.1:{free_port()}/portal"
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(DatabaseUnavailable) as caught:
        localdb.resolve_database(Settings())
    assert url in caught.value.message
    assert "DATABASE_URL" in caught.value.message


def test_password_is_masked_in_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://bob:s3cr3t-pw@127.0.0.1:{free_port()}/x")
    with pytest.raises(DatabaseUnavailable) as caught:
        localdb.resolve_database(Settings())
    assert "s3cr3t-pw" not in caught.value.message
    assert "bob:***@127.0.0.1" in caught.value.message


def test_without_a_server_and_without_start_it_says_how_to_start_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PORTAL_PG_PORT", str(free_port()))
    monkeypatch.setenv("PORTAL_PG_CLUSTER_DIR", str(tmp_path / "pg"))
    settings = Settings()
    assert localdb.plan_database(settings).source == "private cluster"
    with pytest.raises(DatabaseUnavailable, match="portal db start"):
        localdb.resolve_database(settings, start=False)
    assert not (tmp_path / "pg").exists()


def test_plan_uses_the_local_port_when_database_url_is_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    monkeypatch.setenv("PORTAL_PG_PORT", str(port))
    plan = localdb.plan_database(Settings())
    assert plan.url == f"postgresql://postgres@127.0.0.1:{port}/portal"


@needs_local_server
def test_missing_database_is_created_on_a_reachable_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"portal_localdb_{uuid.uuid4().hex[:10]}"
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    monkeypatch.setenv("DATABASE_URL", url)
    messages: list[str] = []
    try:
        assert localdb.resolve_database(Settings(), on_status=messages.append) == url
        assert any("created database" in m for m in messages)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (name,)
        assert localdb.resolve_database(Settings()) == url
        info = localdb.inspect_database(url)
        assert info.reachable and info.revision is None
    finally:
        with psycopg.connect(LOCAL_ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def cluster_settings(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Settings]:
    """Settings for a private cluster on a free port; the cluster is removed afterwards."""
    if request.param == "reachable-dir":
        base = Path(tempfile.mkdtemp(prefix="portal-pg-", dir="/var/tmp"))
        base.chmod(0o755)
    else:
        base = Path(tempfile.mkdtemp(prefix="portal-pg-"))
        base.chmod(0o700)
    monkeypatch.setenv("PORTAL_PG_PORT", str(free_port()))
    monkeypatch.setenv("PORTAL_PG_CLUSTER_DIR", str(base / ".data" / "pg"))
    settings = Settings()
    try:
        yield settings
    finally:
        pgcluster.remove_private_cluster(settings)
        shutil.rmtree(base)


@needs_initdb
@pytest.mark.parametrize("cluster_settings", ["reachable-dir", "private-dir"], indirect=True)
def test_private_cluster_lifecycle(cluster_settings: Settings) -> None:
    settings = cluster_settings
    messages: list[str] = []
    url = localdb.resolve_database(settings, on_status=messages.append)
    assert url == f"postgresql://postgres@127.0.0.1:{settings.pg_port}/portal"
    status = localdb.private_cluster_status(settings)
    assert status.running and status.initialized and status.port == settings.pg_port
    assert status.pid is not None
    base = settings.pg_cluster_dir.parent.parent
    if os.geteuid() == 0 and base.stat().st_mode & 0o777 == 0o700:
        # The postgres user cannot enter the directory: the data lives in its home, linked.
        assert status.data_dir.is_symlink() and status.real_dir != status.data_dir
        assert any("cannot enter" in m for m in messages)
    else:
        assert status.real_dir == status.data_dir
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == (
            "postgres",
            "portal",
        )
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
    assert localdb.resolve_database(settings) == url
    other_port = settings.model_copy(update={"pg_port": free_port()})
    with pytest.raises(DatabaseUnavailable, match=f"runs on port {settings.pg_port}"):
        localdb.resolve_database(other_port)
    assert localdb.stop_private_cluster(settings) is True
    assert not localdb.private_cluster_status(settings).running
    assert localdb.stop_private_cluster(settings) is False
    assert localdb.resolve_database(settings) == url
    assert localdb.private_cluster_status(settings).running


def test_a_stale_postmaster_pid_is_not_a_running_cluster(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = tmp_path / "pg"
    data.mkdir()
    (data / "PG_VERSION").write_text("15\n")
    (data / "postmaster.pid").write_text(f"{os.getpid()}\n{data}\n0\n5999\n")
    monkeypatch.setenv("PORTAL_PG_CLUSTER_DIR", str(data))
    status = localdb.private_cluster_status(Settings())
    assert status.initialized and not status.running and status.pid is None


def test_cli_status_with_unreachable_url_is_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://bob:pw123@127.0.0.1:{free_port()}/portal")
    result = CliRunner().invoke(db_app, ["status"])
    assert result.exit_code == 1
    assert "bob:***@127.0.0.1" in result.output
    assert "pw123" not in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_start_failure_is_one_line_with_exit_code_2(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"postgresql://portal@127.0.0.1:{free_port()}/portal"
    monkeypatch.setenv("DATABASE_URL", url)
    result = CliRunner().invoke(db_app, ["start", "--print-url"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert url in result.stderr and "DATABASE_URL" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_cli_bad_database_url_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://root@localhost/portal")
    result = CliRunner().invoke(db_app, ["status"])
    assert result.exit_code == 2
    assert "PostgreSQL URL" in result.stderr
    assert "Traceback" not in result.output


@needs_local_server
def test_cli_start_prints_only_the_url_on_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"portal_cli_{uuid.uuid4().hex[:10]}"
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    monkeypatch.setenv("DATABASE_URL", url)
    try:
        result = CliRunner().invoke(db_app, ["start", "--print-url"])
        assert result.exit_code == 0, result.output
        assert result.stdout == url + "\n"
        status = CliRunner().invoke(db_app, ["status"])
        assert status.exit_code == 0, status.output
        assert "reachable" in status.stdout and "yes" in status.stdout
    finally:
        with psycopg.connect(LOCAL_ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
