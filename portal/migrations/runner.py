"""Apply and inspect migrations from code (the CLI and the tests use this)."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool
from sqlalchemy.exc import OperationalError

from portal.core.database import PORTAL_SCHEMA
from portal.core.errors import DatabaseUnavailable
from portal.core.settings import mask_password, to_sqlalchemy_url

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    """Return an Alembic config pointing at our migrations and the given database."""
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database up to `revision`."""
    _run(command.upgrade, database_url, revision)


def downgrade(database_url: str, revision: str) -> None:
    """Migrate the database down to `revision`."""
    _run(command.downgrade, database_url, revision)


def check(database_url: str) -> None:
    """Raise if the models and the migrated schema differ (`alembic check`)."""
    command.check(alembic_config(database_url))


def head_revision() -> str:
    """Return the newest revision in the migrations folder."""
    head = ScriptDirectory.from_config(alembic_config("postgresql://")).get_current_head()
    assert head is not None
    return head


def current_revision(database_url: str) -> str | None:
    """Return the revision the database is at, or None before the first migration."""
    engine = create_engine(to_sqlalchemy_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"version_table_schema": PORTAL_SCHEMA}
            )
            return context.get_current_revision()
    except OperationalError as exc:
        raise DatabaseUnavailable(
            f"Cannot connect to the database at {mask_password(database_url)}: "
            f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}"
        ) from exc
    finally:
        engine.dispose()


def _run(action: object, database_url: str, revision: str) -> None:
    try:
        action(alembic_config(database_url), revision)  # type: ignore[operator]
    except OperationalError as exc:
        raise DatabaseUnavailable(
            f"Cannot connect to the database at {mask_password(database_url)}: "
            f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}. "
            "Set DATABASE_URL, or run `portal db start`."
        ) from exc
