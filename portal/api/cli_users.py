"""`portal user create|list` and `portal token create`."""

import re
import sys
from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from portal.api.cli_db import err, fail, load_settings
from portal.catalog.departments import department_id_by_slug, list_departments
from portal.core.accounts import create_user, list_users, user_id_by_email
from portal.core.database import create_db_engine, make_session_factory, session_scope
from portal.core.principal import Role
from portal.core.tokens import create_token

user_app = typer.Typer(help="Manage staff accounts. / 職員アカウント", no_args_is_help=True)
token_app = typer.Typer(help="Manage API tokens. / APIトークン", no_args_is_help=True)
DURATION = re.compile(r"^(\d+)([dhw])$")


@user_app.command("create")
def create(
    email: Annotated[str, typer.Option("--email", help="Sign-in email address.")],
    department: Annotated[
        list[str] | None, typer.Option("--department", help="Department slug (repeatable).")
    ] = None,
    role: Annotated[Role, typer.Option("--role", help="Role in those departments.")] = Role.viewer,
    admin: Annotated[bool, typer.Option("--admin", help="Make a site admin.")] = False,
    name: Annotated[str, typer.Option("--name", help="Display name [the email].")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Create a staff account; the password is prompted for, or read from stdin."""
    settings = load_settings()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password / パスワード", hide_input=True, confirmation_prompt=True)
    engine = create_db_engine(settings)
    try:
        with session_scope(make_session_factory(engine)) as session:
            memberships = {department_id_by_slug(session, slug): role for slug in department or []}
            user_id = create_user(
                session,
                email=email,
                display_name=name,
                password=password,
                memberships=memberships,
                is_site_admin=admin,
            )
    finally:
        engine.dispose()
    err.print(f"[green]✓[/green] created user {user_id}: {email.strip().lower()}")


@user_app.command("list")
def list_() -> None:
    """List staff accounts and their departments."""
    settings = load_settings()
    engine = create_db_engine(settings)
    try:
        with session_scope(make_session_factory(engine)) as session:
            slugs = {d.id: d.slug for d in list_departments(session)}
            users = list_users(session, slugs)
    finally:
        engine.dispose()
    table = Table("id", "email", "name", "site admin", "departments")
    for user in users:
        table.add_row(
            str(user.id),
            user.email,
            user.display_name,
            "yes" if user.is_site_admin else "",
            ", ".join(f"{slug}:{role.value}" for slug, role in user.memberships.items()),
        )
    err.print(table)


@token_app.command("create")
def create_api_token(
    user: Annotated[str, typer.Option("--user", help="Email of the token's owner.")],
    expires: Annotated[
        str, typer.Option("--expires", help="Lifetime such as 30d, 12h or 8w; 'never' for none.")
    ] = "30d",
    name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "cli",
) -> None:
    """Create an API token and print it once on stdout."""
    lifetime = parse_lifetime(expires)
    settings = load_settings()
    engine = create_db_engine(settings)
    try:
        with session_scope(make_session_factory(engine)) as session:
            raw = create_token(
                session,
                user_id=user_id_by_email(session, user),
                name=name,
                expires_in=lifetime,
            )
    finally:
        engine.dispose()
    err.print("[yellow]この値は二度と表示されません / this token is shown only once[/yellow]")
    print(raw)  # noqa: T201 - the token is the command's output


def parse_lifetime(text: str) -> timedelta | None:
    """Parse `30d`, `12h`, `8w` or `never`."""
    if text == "never":
        return None
    match = DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        fail(f"--expires must look like 30d, 12h or 8w (or 'never'), got {text!r}")
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(**{{"d": "days", "h": "hours", "w": "weeks"}[unit]: amount})
