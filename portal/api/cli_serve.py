"""`portal serve`: run the web application."""

from typing import Annotated

import typer
import uvicorn

from portal.api.cli_db import err, load_settings
from portal.core.database import check_connection, create_db_engine
from portal.core.settings import Settings


def serve_app(settings: Settings, *, host: str, port: int) -> None:
    """Check the database, print the URL, and serve until interrupted."""
    from portal.api.app import create_app

    engine = create_db_engine(settings)
    try:
        check_connection(engine, settings.safe_database_url)
    finally:
        engine.dispose()
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    err.print(
        f"[bold green]ポータルを公開しました / Serving the portal at http://{shown}:{port}[/]"
    )
    print(f"http://{shown}:{port}", flush=True)  # noqa: T201 - the URL is the command's output
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", proxy_headers=True)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
) -> None:
    """Serve the portal (web pages and APIs)."""
    serve_app(load_settings(), host=host, port=port)
