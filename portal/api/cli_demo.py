"""`portal demo`: generate the sample city, load it, and serve it."""

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from portal.api.cli_db import err, fail, load_settings
from portal.api.cli_serve import serve_app
from portal.core.database import (
    check_connection,
    create_db_engine,
    make_session_factory,
    session_scope,
)
from portal.core.principal import Visibility
from portal.core.settings import Settings
from portal.core.storage import LocalStorage
from portal.demo.accounts import ensure_demo_accounts
from portal.demo.catalog import publish_demo_catalog
from portal.demo.city import demo_files
from portal.demo.generator import generate_demo_city
from portal.demo.load import load_demo_city

demo_app = typer.Typer(
    help="Generate and load the sample city (サンプル市), then serve it. / デモ",
    invoke_without_command=True,
)

ScaleOption = Annotated[
    int, typer.Option("--scale", min=1, max=1000, help="Multiply feature counts (50 → 100k roads).")
]


@demo_app.callback()
def demo(
    ctx: typer.Context,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Generate and load only.")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for the file drop [PORTAL_DATA_DIR/demo].")
    ] = None,
    scale: ScaleOption = 1,
    force: Annotated[
        bool, typer.Option("--force", help="Reload files that did not change.")
    ] = False,
    host: Annotated[str, typer.Option(help="Address to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
) -> None:
    """Generate the sample city's files, load them into PostGIS, and serve the portal."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings()
    root = out or settings.data_dir / "demo"
    _generate(root, scale, settings)
    _load(root, settings, force)
    _publish(root, settings)
    _accounts(settings)
    if not no_serve:
        serve_app(settings, host=host, port=port)


@demo_app.command("generate")
def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the file drop into.")],
    scale: ScaleOption = 1,
) -> None:
    """Write the sample city's department file drop (Shapefile, GeoPackage, CSV, XLSX…)."""
    settings = load_settings()
    _generate(out, scale, settings)


def _generate(root: Path, scale: int, settings: Settings) -> None:
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err
    ) as progress:
        task = progress.add_task("サンプル市を生成 / generating", total=6)
        try:
            generate_demo_city(
                root,
                scale=scale,
                municipality_code=settings.municipality_code,
                municipality_name=settings.municipality_name,
                progress=lambda name: progress.advance(task),
            )
        except (OSError, ValueError) as exc:
            fail(f"cannot write the demo files to {root}: {exc}")
    err.print(f"[green]✓[/green] wrote the demo file drop to {root.resolve()}")


def _publish(root: Path, settings: Settings) -> None:
    engine = create_db_engine(settings)
    try:
        with session_scope(make_session_factory(engine)) as session:
            created = publish_demo_catalog(
                session,
                LocalStorage(settings.data_dir),
                root,
                municipality_code=settings.municipality_code,
                max_bytes=settings.max_upload_bytes,
            )
    finally:
        engine.dispose()
    if created:
        err.print(f"[green]✓[/green] published {len(created)} datasets: {', '.join(created)}")


def _accounts(settings: Settings) -> None:
    engine = create_db_engine(settings)
    try:
        with session_scope(make_session_factory(engine)) as session:
            accounts = ensure_demo_accounts(session, settings.secret_key.get_secret_value())
    finally:
        engine.dispose()
    if not settings.is_dev:
        err.print("demo staff accounts exist; their passwords are shown only when PORTAL_ENV=dev")
        return
    table = Table(
        "email", "password", "department", "role", title="デモ職員 / demo staff (dev only)"
    )
    for account in accounts:
        role = account.role.value if account.role else "site admin"
        table.add_row(account.email, account.password, account.department or "—", role)
    err.print(table)


def _load(root: Path, settings: Settings, force: bool) -> None:
    engine = create_db_engine(settings)
    check_connection(engine, settings.safe_database_url)
    with Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def report(layer_id: str, done: int, total: int) -> None:
            if layer_id not in tasks:
                tasks[layer_id] = progress.add_task(layer_id, total=total)
            progress.update(tasks[layer_id], completed=done, total=total)

        loads = load_demo_city(
            engine,
            make_session_factory(engine),
            root,
            municipality_code=settings.municipality_code,
            force=force,
            progress=report,
        )
    engine.dispose()
    visibility = {f.layer_id: f.visibility for f in demo_files(settings.municipality_code)}
    table = Table("layer", "features", "CRS", "visibility", "note", title="読み込み結果 / loaded")
    for load in loads:
        result = load.result
        table.add_row(
            load.layer_id,
            "—" if result is None else f"{result.feature_count:,}",
            "" if result is None else (result.source_crs or ""),
            visibility[load.layer_id].value
            + (" (suido, doboku)" if visibility[load.layer_id] is Visibility.department else ""),
            "unchanged, skipped" if result is None else "; ".join(result.warnings),
        )
    err.print(table)
