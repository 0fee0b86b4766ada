"""The `portal` command line."""

import sys

import psycopg
import typer
from sqlalchemy.exc import OperationalError

from portal.api.cli_db import db_app, fail
from portal.api.cli_demo import demo_app
from portal.api.cli_harvest import harvest_app, worker
from portal.api.cli_serve import serve
from portal.api.cli_users import token_app, user_app
from portal.core.errors import PortalError

app = typer.Typer(
    name="portal",
    help="Open data catalog and integrated GIS portal. / オープンデータ・統合型GISポータル",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(harvest_app, name="harvest")
app.command("worker")(worker)


def main() -> None:
    """Run the CLI, turning domain and connection errors into one clear line."""
    try:
        app()
    except PortalError as exc:
        _exit(exc.message)
    except (OperationalError, psycopg.OperationalError) as exc:
        _exit(f"the database stopped answering: {str(exc).splitlines()[0]}")


def _exit(message: str) -> None:
    try:
        fail(message)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)


if __name__ == "__main__":
    main()
