"""The SQLAlchemy engine, sessions and the declarative base for the `portal` schema."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, MetaData, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from portal.core.errors import DatabaseUnavailable
from portal.core.settings import Settings

PORTAL_SCHEMA = "portal"
LAYERS_SCHEMA = "layers"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table in the `portal` schema."""

    metadata = MetaData(schema=PORTAL_SCHEMA, naming_convention=NAMING_CONVENTION)


def create_db_engine(settings: Settings) -> Engine:
    """Create the process-wide engine with a connection pool."""
    return create_engine(
        settings.sqlalchemy_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
        connect_args={
            "connect_timeout": settings.db_connect_timeout,
            "application_name": "portal",
        },
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory bound to an engine."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session that commits on success and rolls back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def check_connection(engine: Engine, safe_url: str) -> str:
    """Connect once and return the PostGIS version, or raise `DatabaseUnavailable`."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            has_postgis = connection.execute(
                text("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'")
            ).scalar_one()
            if not has_postgis:
                return ""
            return str(connection.execute(text("SELECT postgis_lib_version()")).scalar_one())
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnavailable(
            f"Cannot connect to the database at {safe_url}: {reason}. "
            "Set DATABASE_URL to a reachable PostgreSQL with PostGIS, "
            "or run `portal db start` to use a local one."
        ) from exc
