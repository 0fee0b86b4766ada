"""`portal db start|stop|status|upgrade`: find, start, inspect and migrate the database."""

from typing import Annotated, NoReturn

import psycopg
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from portal.core.errors import PortalError
from portal.core.localdb import (
    inspect_database,
    plan_database,
    private_cluster_status,
    remove_private_cluster,
    resolve_database,
    stop_private_cluster,
)
from portal.core.settings import Settings, mask_password

db_app = typer.Typer(
    help="Find, start, stop, inspect and migrate the database. / データベースの起動・停止・移行",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

err = Console(stderr=True, soft_wrap=True, highlight=False)
out = Console(soft_wrap=True, highlight=False)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error to stderr and exit with `code`."""
    err.print(Text.assemble(("error: ", "bold red"), " ".join(message.split())))
    raise typer.Exit(code)


def load_settings() -> Settings:
    """Read the settings, turning a bad environment into a one-line error."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first.get("msg", exc)).removeprefix("Value error, ")
        field = str(first["loc"][0]) if first.get("loc") else ""
        if field and field.upper() not in message:
            name = "DATABASE_URL" if field == "database_url" else f"PORTAL_{field.upper()}"
            message = f"{name}: {message}"
        fail(message)


def _note(message: str) -> None:
    err.print(Text(message, style="dim"))


@db_app.command("start")
def start(
    print_url: Annotated[
        bool, typer.Option("--print-url", help="Print only the database URL on stdout.")
    ] = False,
) -> None:
    """Find a database (DATABASE_URL, 127.0.0.1, or a private cluster) and make it ready."""
    settings = load_settings()
    try:
        url = resolve_database(settings, start=True, on_status=_note)
    except PortalError as exc:
        fail(exc.message)
    err.print(Text.assemble(("database ready: ", "bold green"), mask_password(url)))
    if print_url:
        typer.echo(url)


@db_app.command("stop")
def stop(
    purge: Annotated[
        bool, typer.Option("--purge", help="Also delete the private cluster's data.")
    ] = False,
) -> None:
    """Stop the private cluster under PORTAL_PG_CLUSTER_DIR, if it runs."""
    settings = load_settings()
    try:
        status = private_cluster_status(settings)
        if purge:
            removed = remove_private_cluster(settings)
            err.print(f"private cluster {status.data_dir}: {'deleted' if removed else 'none'}")
        elif stop_private_cluster(settings):
            err.print(f"private cluster {status.data_dir}: stopped (pid {status.pid})")
        else:
            err.print(f"private cluster {status.data_dir}: not running, nothing to stop")
    except PortalError as exc:
        fail(exc.message)


@db_app.command("status")
def status() -> None:
    """Show the database in use, PostGIS, the migration revision and the private cluster."""
    settings = load_settings()
    plan = plan_database(settings)
    cluster = private_cluster_status(settings)
    info = inspect_database(plan.url, timeout=settings.db_connect_timeout)
    rows = [("database", f"{mask_password(plan.url)} ({plan.source})")]
    if info.reachable:
        rows.append(("reachable", f"yes, PostgreSQL {info.server_version}"))
        if info.postgis_version:
            postgis = info.postgis_version
        elif info.postgis_available:
            postgis = f"not installed ({info.postgis_available} available: run `portal db upgrade`)"
        else:
            postgis = "not available on this server (install postgresql-15-postgis-3)"
        rows.append(("PostGIS", postgis))
        rows.append(("migration", info.revision or "none (run `portal db upgrade`)"))
    else:
        hint = "run `portal db start`" if plan.source != "DATABASE_URL" else "check DATABASE_URL"
        rows.append(("reachable", f"no: {info.error or 'nothing listens'} ({hint})"))
    if cluster.running:
        state = f"running (pid {cluster.pid}, 127.0.0.1:{cluster.port})"
    else:
        state = "stopped" if cluster.initialized else "not created"
    where = str(cluster.data_dir)
    if cluster.real_dir != cluster.data_dir:
        where += f" -> {cluster.real_dir}"
    rows.append(("private cluster", f"{where}: {state}"))
    width = max(len(label) for label, _ in rows) + 2
    for label, value in rows:
        out.print(Text.assemble((label.ljust(width), "bold"), value))
    raise typer.Exit(0 if info.reachable else 1)


@db_app.command("upgrade")
def upgrade(
    revision: Annotated[str, typer.Option(help="Alembic revision to migrate to.")] = "head",
) -> None:
    """Apply the migrations up to a revision (default: head)."""
    from portal.migrations import runner

    settings = load_settings()
    try:
        url = resolve_database(settings, start=False, on_status=_note)
        before = inspect_database(url, timeout=settings.db_connect_timeout).revision
        runner.upgrade(url, revision)
        after = inspect_database(url, timeout=settings.db_connect_timeout).revision
    except PortalError as exc:
        fail(exc.message)
    except (SQLAlchemyError, psycopg.Error) as exc:
        fail(f"Migration to {revision} failed: {str(exc).strip().splitlines()[0]}")
    err.print(
        Text.assemble(("migrated: ", "bold green"), f"{before or 'empty'} -> {after or 'empty'}")
    )
