"""`portal demo`: generate the sample city, harvest it, and serve it."""

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
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
from portal.core.errors import PortalError
from portal.core.principal import Visibility
from portal.core.settings import Settings
from portal.core.storage import LocalStorage
from portal.demo.accounts import ensure_demo_accounts
from portal.demo.city import demo_files
from portal.demo.generator import generate_demo_city
from portal.demo.harvest import DemoHarvest, harvest_demo_city

demo_app = typer.Typer(
    help="Generate the sample city (サンプル市), harvest it, then serve it. / デモ",
    invoke_without_command=True,
)

ScaleOption = Annotated[
    int, typer.Option("--scale", min=1, max=1000, help="Multiply feature counts (50 → 100k roads).")
]


@demo_app.callback()
def demo(
    ctx: typer.Context,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Generate and harvest only.")
    ] = False,
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
    """Generate the sample city's files, harvest each department's folder, and serve."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings()
    root = out or settings.data_dir / "demo"
    _generate(root, scale, settings, sidecars=True)
    _harvest(root, settings, force)
    _accounts(settings)
    if not no_serve:
        serve_app(settings, host=host, port=port)


@demo_app.command("generate")
def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the file drop into.")],
    scale: ScaleOption = 1,
    sidecars: Annotated[
        bool,
        typer.Option(
            "--sidecars/--bare",
            help="Write each file's .meta.yaml for the directory harvester, or files only.",
        ),
    ] = True,
) -> None:
    """Write the sample city's department file drop (Shapefile, GeoPackage, CSV, XLSX…)."""
    settings = load_settings()
    _generate(out, scale, settings, sidecars=sidecars)


def _generate(root: Path, scale: int, settings: Settings, *, sidecars: bool) -> None:
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err
    ) as progress:
        total = len(demo_files(settings.municipality_code))
        task = progress.add_task("サンプル市を生成 / generating", total=total)
        try:
            generate_demo_city(
                root,
                scale=scale,
                municipality_code=settings.municipality_code,
                municipality_name=settings.municipality_name,
                sidecars=sidecars,
                progress=lambda name: progress.advance(task),
            )
        except (OSError, ValueError) as exc:
            fail(f"cannot write the demo files to {root}: {exc}")
    err.print(f"[green]✓[/green] wrote the demo file drop to {root.resolve()}")


def _harvest(root: Path, settings: Settings, force: bool) -> None:
    engine = create_db_engine(settings)
    check_connection(engine, settings.safe_database_url)
    try:
        with Progress(
            SpinnerColumn(finished_text="✓"),
            TextColumn("{task.description:<40}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
        ) as progress:
            tasks: dict[str, TaskID] = {}

            def report(department: str, done: int, total: int, path: str) -> None:
                if department not in tasks:
                    tasks[department] = progress.add_task(f"harvest {department}", total=total)
                progress.update(
                    tasks[department],
                    completed=done,
                    total=total,
                    description=f"harvest {department}/{path}".rstrip("/"),
                )

            harvests = harvest_demo_city(
                settings,
                make_session_factory(engine),
                root,
                storage=LocalStorage(settings.data_dir),
                force=force,
                progress=report,
            )
    except PortalError as exc:
        fail(f"cannot harvest the demo drop in {root}: {exc.message}")
    finally:
        engine.dispose()
    err.print(_results_table(harvests))
    failed = [h for h in harvests if not h.succeeded]
    for harvest in failed:
        reason = harvest.error or harvest.status
        err.print(f"[red]✗[/red] {harvest.source} (job {harvest.job_id}): {reason}")
    if failed:
        fail("the demo drop did not harvest cleanly; see `portal harvest jobs`", code=1)


def _results_table(harvests: list[DemoHarvest]) -> Table:
    table = Table(
        "file", "result", "layer", "features", "CRS", "visibility", "note",
        title="ハーベスト結果 / harvested",
    )  # fmt: skip
    for harvest in harvests:
        for found in harvest.objects:
            visibility = found.visibility.value if found.visibility else ""
            if found.visibility is Visibility.department:
                visibility += f" ({', '.join((harvest.department, *found.shared_with))})"
            table.add_row(
                found.path,
                found.status,
                found.layer_id or "—",
                "—" if found.feature_count is None else f"{found.feature_count:,}",
                found.source_crs or "",
                visibility,
                "unchanged, skipped" if found.skipped else found.message,
            )
    return table


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
