"""Find the database to use: `DATABASE_URL`, else a local server, else a private cluster."""

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from portal.core.errors import DatabaseUnavailable
from portal.core.pgcluster import (
    ClusterStatus,
    cluster_dir,
    private_cluster_status,
    remove_private_cluster,
    start_private_cluster,
    stop_private_cluster,
)
from portal.core.settings import Settings, mask_password, to_libpq_url

__all__ = [
    "ClusterStatus",
    "DatabaseInfo",
    "Plan",
    "ensure_database",
    "inspect_database",
    "is_listening",
    "plan_database",
    "private_cluster_status",
    "remove_private_cluster",
    "resolve_database",
    "stop_private_cluster",
]

LOCAL_HOST = "127.0.0.1"
Source = Literal["DATABASE_URL", "local server", "private cluster"]


@dataclass(frozen=True)
class Plan:
    """The database the portal would use, and why."""

    url: str
    source: Source


@dataclass(frozen=True)
class DatabaseInfo:
    """What a connection to the database shows."""

    reachable: bool
    error: str | None = None
    server_version: str | None = None
    postgis_version: str | None = None
    postgis_available: str | None = None
    revision: str | None = None


def plan_database(settings: Settings) -> Plan:
    """Tell which URL would be used, without connecting or starting anything."""
    if "database_url" in settings.model_fields_set:
        return Plan(to_libpq_url(settings.database_url), "DATABASE_URL")
    parts = urlsplit(to_libpq_url(settings.database_url))
    user = quote(parts.username or "postgres")
    url = urlunsplit(("postgresql", f"{user}@{LOCAL_HOST}:{settings.pg_port}", parts.path, "", ""))
    source: Source = "private cluster"
    if is_listening(settings.pg_port):
        cluster = private_cluster_status(settings)
        if not (cluster.running and cluster.port == settings.pg_port):
            source = "local server"
    return Plan(url, source)


def resolve_database(
    settings: Settings,
    *,
    start: bool = True,
    on_status: Callable[[str], None] | None = None,
) -> str:
    """Return the URL of a reachable server whose target database exists."""
    say = on_status or (lambda _msg: None)
    plan = plan_database(settings)
    timeout = settings.db_connect_timeout
    where = f"{LOCAL_HOST}:{settings.pg_port}"
    if plan.source == "DATABASE_URL":
        hint = (
            "DATABASE_URL is set, so only that server is tried: check that it runs and that the "
            f"URL is right, or unset DATABASE_URL to use the server at {where} or a private "
            "cluster."
        )
    elif plan.source == "local server":
        hint = (
            f"A server listens on {where} but refused this connection. Set DATABASE_URL to a URL "
            "that works for it (postgresql://USER:PASSWORD@127.0.0.1:5432/portal), or set "
            "PORTAL_PG_PORT to a free port to start a private cluster instead."
        )
    else:
        cluster = private_cluster_status(settings)
        if cluster.running and cluster.port != settings.pg_port:
            raise DatabaseUnavailable(
                f"The private cluster under {cluster.data_dir} runs on port {cluster.port}, not "
                f"on PORTAL_PG_PORT={settings.pg_port}. Set PORTAL_PG_PORT={cluster.port}, or "
                "stop it with `portal db stop` first."
            )
        if not cluster.running:
            if not start:
                raise DatabaseUnavailable(
                    f"No database server at {where} ({mask_password(plan.url)}) and DATABASE_URL "
                    "is not set. Run `portal db start` to start the private cluster under "
                    f"{cluster_dir(settings)}, or set DATABASE_URL."
                )
            start_private_cluster(settings, say)
        hint = f"The private cluster under {cluster_dir(settings)} runs but refused it."
    if ensure_database(plan.url, timeout=timeout, hint=hint):
        say(f"created database {conninfo_to_dict(plan.url).get('dbname')}")
    say(f"using {mask_password(plan.url)} ({plan.source})")
    return plan.url


def ensure_database(url: str, *, timeout: int = 5, hint: str = "") -> bool:
    """Create the URL's database if the server lacks it; return True if it was created."""
    try:
        with psycopg.connect(url, connect_timeout=timeout):
            return False
    except psycopg.Error as exc:
        first_error = exc
    dbname = str(conninfo_to_dict(url).get("dbname") or "")
    with _maintenance_connection(url, timeout) as admin:
        if admin is None or not dbname:
            raise _unavailable(url, first_error, hint) from first_error
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
        if exists:
            raise _unavailable(url, first_error, hint) from first_error
        try:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        except psycopg.errors.DuplicateDatabase:
            return False
        except psycopg.Error as exc:
            raise DatabaseUnavailable(
                f"Database {dbname!r} does not exist on {mask_password(url)} and could not be "
                f"created: {_reason(exc, url)}. Create it as a superuser (createdb {dbname}) "
                "or point DATABASE_URL at one that exists."
            ) from exc
    return True


def inspect_database(url: str, *, timeout: int = 5) -> DatabaseInfo:
    """Connect without changing anything and report versions and the migration revision."""
    try:
        with psycopg.connect(url, connect_timeout=timeout, autocommit=True) as conn:
            server = conn.execute("SHOW server_version").fetchone()
            postgis = conn.execute(
                "SELECT installed_version, default_version FROM pg_available_extensions "
                "WHERE name = 'postgis'"
            ).fetchone()
            schemas = conn.execute(
                "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relname = 'alembic_version' AND c.relkind = 'r' ORDER BY 1"
            ).fetchall()
            revisions: list[str] = []
            for (schema,) in schemas:
                query = sql.SQL("SELECT version_num FROM {}.alembic_version ORDER BY 1")
                rows = conn.execute(query.format(sql.Identifier(schema))).fetchall()
                revisions.extend(str(row[0]) for row in rows)
    except psycopg.Error as exc:
        return DatabaseInfo(reachable=False, error=_reason(exc, url))
    return DatabaseInfo(
        reachable=True,
        server_version=str(server[0]) if server else None,
        postgis_version=postgis[0] if postgis else None,
        postgis_available=postgis[1] if postgis else None,
        revision=", ".join(revisions) or None,
    )


def is_listening(port: int, host: str = LOCAL_HOST, timeout: float = 1.0) -> bool:
    """Tell whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def _maintenance_connection(
    url: str, timeout: int
) -> Iterator[psycopg.Connection[tuple[object, ...]] | None]:
    """Yield an autocommit connection to the server's `postgres` or `template1` database."""
    conn = None
    for dbname in ("postgres", "template1"):
        try:
            conn = psycopg.connect(url, dbname=dbname, connect_timeout=timeout, autocommit=True)
            break
        except psycopg.Error:
            continue
    try:
        yield conn
    finally:
        if conn is not None:
            conn.close()


def _reason(exc: BaseException, url: str) -> str:
    text = " ".join(str(exc).split())
    text = text.removeprefix("connection failed: ").rstrip(".")
    password = conninfo_to_dict(url).get("password")
    if password:
        text = text.replace(str(password), "***")
    return text or type(exc).__name__


def _unavailable(url: str, exc: BaseException, hint: str) -> DatabaseUnavailable:
    return DatabaseUnavailable(
        f"Cannot connect to the database at {mask_password(url)}: {_reason(exc, url)} -- {hint}"
    )
