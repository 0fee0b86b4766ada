"""A migrated database of a test module's own, for catalogs the session's tests must not share."""

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.orm import Session, sessionmaker

from portal.core.database import create_db_engine, make_session_factory
from portal.core.settings import Settings
from portal.migrations import runner


@contextmanager
def own_database(
    database_url: str, data_dir: Path
) -> Iterator[tuple[Settings, sessionmaker[Session]]]:
    """Create a database beside the session's, migrate it, and drop it afterwards."""
    base = database_url.rpartition("/")[0]
    name = f"portal_test_{secrets.token_hex(4)}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    engine = None
    try:
        runner.upgrade(f"{base}/{name}")
        settings = Settings(env="test", database_url=f"{base}/{name}", data_dir=data_dir)
        engine = create_db_engine(settings)
        yield settings, make_session_factory(engine)
    finally:
        if engine is not None:
            engine.dispose()
        with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
