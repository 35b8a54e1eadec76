"""`jobyard users`, `jobyard tokens` and `jobyard tenants`: account work straight on the
database, so an operator can recover without the API (a lost admin password, say)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from jobyard.cli.lazy import lazy_module
from jobyard.domain.listing import Listing
from jobyard.domain.paging import PageRequest
from jobyard.domain.permissions import SYSTEM_TENANT_ID, Principal
from jobyard.errors import JobyardError

if TYPE_CHECKING:
    from jobyard import settings
    from jobyard.services import accounts, authentication, runtime, schema
    from jobyard.services.runtime import Runtime
else:  # loaded when a command runs (see `cli.lazy`)
    settings = lazy_module("jobyard.settings")
    accounts = lazy_module("jobyard.services.accounts")
    authentication = lazy_module("jobyard.services.authentication")
    runtime = lazy_module("jobyard.services.runtime")
    schema = lazy_module("jobyard.services.schema")

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)
users_app = typer.Typer(help="Users: create, list, set passwords.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)
tenants_app = typer.Typer(help="Customers (tenants): create, list.", no_args_is_help=True)

DataDirOpt = Annotated[Path | None, typer.Option(help="Data directory (env JOBYARD_DATA_DIR)")]
DatabaseOpt = Annotated[str | None, typer.Option(help="Database URL (env JOBYARD_DATABASE_URL)")]
CustomerOpt = Annotated[int, typer.Option("--customer", help="Customer (tenant) id")]
ALL_ROWS = Listing(page=PageRequest(page=1, limit=None))
T = TypeVar("T")


def register(app: typer.Typer, panel: str) -> None:
    app.add_typer(users_app, name="users", rich_help_panel=panel)
    app.add_typer(tokens_app, name="tokens", rich_help_panel=panel)
    app.add_typer(tenants_app, name="tenants", rich_help_panel=panel)


@contextmanager
def _runtime(data_dir: Path | None, database_url: str | None) -> Iterator[Runtime]:
    """The database, migrated and bootstrapped, with errors shown as messages (exit 1)."""
    try:
        chosen = settings.load_settings().with_overrides(
            data_dir=data_dir, database_url=database_url
        )
        rt = runtime.open_runtime(chosen)
        schema.upgrade(rt)
        started = accounts.bootstrap_admin(rt)
        if started.new_token:
            console.print(f"admin API token (shown once, keep it): {started.new_token}")
        if started.new_password:
            console.print(f"admin password (shown once, keep it): {started.new_password}")
        yield rt
        rt.db.dispose()
    except JobyardError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None


def _as_admin(rt: Runtime, customer: int, action: Callable[[Principal], T]) -> T:
    return action(authentication.console_principal(rt, tenant_id=customer))


def _password(given: str | None) -> str:
    if given is not None:
        return given
    value: str = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return value


@users_app.command("create")
def create_user(
    login: str,
    role: Annotated[str, typer.Option(help="viewer, operator or admin")] = "viewer",
    password: Annotated[
        str | None, typer.Option(help="The password (asked for when left out)")
    ] = None,
    customer: CustomerOpt = SYSTEM_TENANT_ID,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Create a user."""
    secret = _password(password)
    with _runtime(data_dir, database_url) as rt:
        user = _as_admin(
            rt,
            customer,
            lambda who: accounts.create_user(
                rt, actor=who, login=login, role=role, password=secret
            ),
        )
        out.print(f"user {user.id} {user.login} ({user.role}) in customer {user.tenant_id}")


@users_app.command("list")
def list_users(
    customer: CustomerOpt = SYSTEM_TENANT_ID,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """List a customer's users."""
    with _runtime(data_dir, database_url) as rt:
        found, _ = _as_admin(
            rt, customer, lambda who: accounts.list_users(rt, actor=who, request=ALL_ROWS)
        )
        table = Table("id", "login", "role", "created")
        for user in found:
            table.add_row(str(user.id), user.login, user.role, f"{user.created:%Y-%m-%d %H:%M}")
        out.print(table)


@users_app.command("passwd")
def set_password(
    login: str,
    password: Annotated[
        str | None, typer.Option(help="The new password (asked for when left out)")
    ] = None,
    keep_tokens: Annotated[
        bool, typer.Option("--keep-tokens", help="Keep the user's API tokens (revoked otherwise)")
    ] = False,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Set a user's password (and lift a lockout); the user's API tokens are revoked."""
    secret = _password(password)
    with _runtime(data_dir, database_url) as rt:
        user = accounts.find_user(rt, login=login)
        _as_admin(
            rt,
            user.tenant_id,
            lambda who: accounts.edit_user(
                rt, actor=who, user_id=user.id, password=secret, keep_tokens=keep_tokens
            ),
        )
        tokens = "kept" if keep_tokens else "revoked"
        out.print(f"password of {login} changed; its API tokens {tokens}")


@tokens_app.command("create")
def create_token(
    login: str,
    name: Annotated[str, typer.Option(help="What the token is for")],
    scope: Annotated[
        list[str] | None, typer.Option(help="A scope; repeat for more (default: the role's)")
    ] = None,
    expires_in: Annotated[int | None, typer.Option(help="Lifetime in seconds")] = None,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Create an API token for a user; the secret is printed once."""
    with _runtime(data_dir, database_url) as rt:
        user = accounts.find_user(rt, login=login)
        scopes = scope or accounts.role_scope_names(user.role)
        expires = runtime.utcnow() + timedelta(seconds=expires_in) if expires_in else None
        issued = _as_admin(
            rt,
            user.tenant_id,
            lambda who: accounts.create_token(
                rt, actor=who, name=name, scopes=scopes, expires=expires, user_id=user.id
            ),
        )
        console.print(f"token {issued.record.id} for {login}, scopes {', '.join(scopes)}:")
        out.print(issued.secret)


@tokens_app.command("list")
def list_tokens(
    customer: CustomerOpt = SYSTEM_TENANT_ID,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """List a customer's live tokens (never their secrets)."""
    with _runtime(data_dir, database_url) as rt:
        found, _ = _as_admin(
            rt, customer, lambda who: accounts.list_tokens(rt, actor=who, request=ALL_ROWS)
        )
        table = Table("id", "user", "name", "scopes", "expires", "last used")
        for token in found:
            table.add_row(
                str(token.id),
                str(token.user_id),
                token.name,
                " ".join(token.scopes),
                f"{token.expires:%Y-%m-%d %H:%M}" if token.expires else "",
                f"{token.last_used:%Y-%m-%d %H:%M}" if token.last_used else "",
            )
        out.print(table)


@tokens_app.command("revoke")
def revoke_token(
    token_id: int,
    customer: CustomerOpt = SYSTEM_TENANT_ID,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Revoke a token: it is refused from its next request on."""
    with _runtime(data_dir, database_url) as rt:
        _as_admin(rt, customer, lambda who: accounts.revoke_token(rt, actor=who, token_id=token_id))
        out.print(f"token {token_id} revoked")


@tenants_app.command("create")
def create_tenant(name: str, data_dir: DataDirOpt = None, database_url: DatabaseOpt = None) -> None:
    """Create a customer."""
    with _runtime(data_dir, database_url) as rt:
        tenant_id = _as_admin(
            rt, SYSTEM_TENANT_ID, lambda who: accounts.create_tenant(rt, actor=who, name=name)
        )
        out.print(f"customer {tenant_id} {name}")


@tenants_app.command("list")
def list_tenants(data_dir: DataDirOpt = None, database_url: DatabaseOpt = None) -> None:
    """List customers."""
    with _runtime(data_dir, database_url) as rt:
        found = _as_admin(rt, SYSTEM_TENANT_ID, lambda who: accounts.list_tenants(rt, actor=who))
        table = Table("id", "name")
        for tenant_id, name in found:
            table.add_row(str(tenant_id), name)
        out.print(table)
