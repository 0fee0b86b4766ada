"""Alembic environment: migrates only the `portal` schema."""

from typing import Any

from alembic import context
from sqlalchemy import create_engine, pool, text

from portal.core.database import PORTAL_SCHEMA
from portal.core.settings import Settings, to_sqlalchemy_url
from portal.migrations.metadata import target_metadata

config = context.config


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Compare only the `portal` schema; PostGIS and layer tables are not ours to diff."""
    if type_ == "schema":
        return name == PORTAL_SCHEMA
    return True


def database_url() -> str:
    """Return the URL given by the runner, or the one from settings."""
    url = config.get_main_option("sqlalchemy.url")
    return to_sqlalchemy_url(url) if url else Settings().sqlalchemy_url


def run_migrations_online() -> None:
    """Run migrations on a live connection."""
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {PORTAL_SCHEMA}"))
        connection.commit()
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_schemas=True,
            include_name=include_name,
            version_table_schema=PORTAL_SCHEMA,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
