import secrets
from collections.abc import Iterator

import psycopg
import pytest

from portal.migrations import runner


@pytest.fixture
def empty_database(database_url: str) -> Iterator[str]:
    """A second, empty database on the same server."""
    name = f"portal_mig_{secrets.token_hex(4)}"
    base = database_url.rpartition("/")[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_upgrade_from_empty_to_head_creates_schemas_and_postgis(empty_database: str) -> None:
    assert runner.current_revision(empty_database) is None
    runner.upgrade(empty_database)
    assert runner.current_revision(empty_database) == runner.head_revision()
    with psycopg.connect(empty_database) as connection:
        schemas = {
            row[0]
            for row in connection.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname IN ('portal', 'layers')"
            )
        }
        postgis = connection.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'postgis'"
        ).fetchone()
        tables = {
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'portal'"
            )
        }
    assert schemas == {"portal", "layers"}
    assert postgis is not None and postgis[0].startswith("3.")
    assert {"departments", "layers", "layer_shares", "alembic_version"} <= tables


def test_models_match_the_migrations(database_url: str) -> None:
    runner.check(database_url)


def test_downgrade_to_base_and_upgrade_again(empty_database: str) -> None:
    runner.upgrade(empty_database)
    runner.downgrade(empty_database, "base")
    assert runner.current_revision(empty_database) is None
    runner.upgrade(empty_database)
    assert runner.current_revision(empty_database) == runner.head_revision()
