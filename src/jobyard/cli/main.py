"""The `jobyard` command: the user commands that talk to a server (launch, jobs, logs,
packages…, through `jobyard.client`), and the server's own (serve, worker, db, accounts),
grouped apart in `--help`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from jobyard import __version__
from jobyard.cli import accounts as account_commands
from jobyard.cli import catalog_commands, job_commands
from jobyard.cli import login as login_commands
from jobyard.cli.gc_tuning import settle_garbage_collector
from jobyard.cli.gil_tuning import share_the_gil_often
from jobyard.cli.lazy import lazy_module
from jobyard.cli.worker import run_worker
from jobyard.errors import JobyardError
from jobyard.worker import hardening

if TYPE_CHECKING:
    from jobyard import logs
    from jobyard import settings as configuration
    from jobyard.services import retention, runtime, schema
    from jobyard.settings import Settings
    from jobyard.worker import confinement
else:  # loaded when a server command runs (see `cli.lazy`)
    logs = lazy_module("jobyard.logs")
    configuration = lazy_module("jobyard.settings")
    retention = lazy_module("jobyard.services.retention")
    runtime = lazy_module("jobyard.services.runtime")
    schema = lazy_module("jobyard.services.schema")
    confinement = lazy_module("jobyard.worker.confinement")

app = typer.Typer(
    help="jobyard: a self-hosted job server. Start with `jobyard login`, then `jobyard launch`.",
    no_args_is_help=True,
)
SERVER_PANEL = "Server (on the server's machine, straight on its database)"
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
login_commands.register(app)
job_commands.register(app)
catalog_commands.register(app)
app.add_typer(db_app, name="db", rich_help_panel=SERVER_PANEL)
account_commands.register(app, SERVER_PANEL)
app.command("worker", rich_help_panel=SERVER_PANEL)(run_worker)
console = Console(stderr=True, soft_wrap=True)  # never split a token across lines


@app.callback()
def _every_command() -> None:
    """Before any command: nothing of this process is a job's to read (see `hardening`)."""
    hardening.harden_process()


HostOpt = Annotated[str | None, typer.Option(help="Listen address (env JOBYARD_HOST, 127.0.0.1)")]
PortOpt = Annotated[int | None, typer.Option(help="Listen port (env JOBYARD_PORT, 8080)")]
DataDirOpt = Annotated[
    Path | None, typer.Option(help="Data directory (env JOBYARD_DATA_DIR, ./var)")
]
DatabaseOpt = Annotated[
    str | None,
    typer.Option(help="Database URL (env JOBYARD_DATABASE_URL, SQLite in the data directory)"),
]
LogLevelOpt = Annotated[
    str | None, typer.Option(help="debug, info, warning or error (env JOBYARD_LOG_LEVEL, info)")
]
LogFormatOpt = Annotated[
    str | None, typer.Option(help="text or json: one line per event (env JOBYARD_LOG_FORMAT)")
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(help="Embedded worker slots (env JOBYARD_WORKERS, 2); 0: API only, runs no jobs"),
]


def _settings(**overrides: Any) -> Settings:
    try:
        return configuration.load_settings().with_overrides(**overrides)
    except JobyardError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None


@app.command(rich_help_panel=SERVER_PANEL)
def serve(
    host: HostOpt = None,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
    workers: WorkersOpt = None,
    log_level: LogLevelOpt = None,
    log_format: LogFormatOpt = None,
) -> None:
    """Run the API server, with an embedded worker pool unless --workers 0 (API only)."""
    # Here, not at the top: the user commands (`jobyard jobs ls`) start without the server.
    import uvicorn  # noqa: PLC0415

    from jobyard.api.app import create_app, prepare  # noqa: PLC0415

    settings = _settings(
        host=host,
        port=port,
        data_dir=data_dir,
        database_url=database_url,
        workers=workers,
        log_level=log_level,
        log_format=log_format,
    )
    logs.configure(settings.log_format, settings.log_level)
    try:
        rt, bootstrap = prepare(settings)
        rt.db.dispose()
        confined = confinement.prepare(settings) if settings.workers else None
    except JobyardError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None
    console.print(f"jobyard {__version__} listening on [bold]{settings.base_url}[/bold]")
    console.print(f"database: {configuration.redact_url(settings.effective_database_url)}")
    console.print(_runs_jobs(settings.workers))
    if bootstrap.new_token:
        console.print(f"admin API token (shown once, keep it): [bold]{bootstrap.new_token}[/bold]")
    elif settings.admin_token:
        console.print("admin API token: the value of JOBYARD_ADMIN_TOKEN")
    console.print(f"dashboard: [bold]{settings.base_url}/[/bold], login [bold]admin[/bold]")
    if bootstrap.new_password:
        console.print(
            f"admin password (shown once, keep it): [bold]{bootstrap.new_password}[/bold] "
            "(`jobyard users passwd admin` changes it)"
        )
    console.print(
        f'log in with:  curl -H "Authorization: Bearer <token>" {settings.base_url}/api/v1/jobs/'
    )
    application = create_app(settings, confinement=confined)
    settle_garbage_collector()
    share_the_gil_often()
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # jobyard's handler writes uvicorn's lines too (see `logs`)
        access_log=False,  # each request has its own line from `api.observing`
        loop="asyncio",  # uvloop spawns child processes several times slower
        http="httptools",
    )


def _runs_jobs(slots: int) -> str:
    """Whether this server runs jobs, for the banner."""
    if slots:
        return f"runs jobs: yes, {slots} worker slots"
    return (
        "runs jobs: [bold]no[/bold] (API only): `jobyard worker` processes on the same "
        "database run them"
    )


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Apply migrations up to REVISION (the newest by default)."""
    rt = runtime.open_runtime(_settings(data_dir=data_dir, database_url=database_url))
    schema.upgrade(rt, revision)
    console.print(f"database at revision {schema.current_revision(rt)}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. base")],
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Undo migrations down to REVISION."""
    rt = runtime.open_runtime(_settings(data_dir=data_dir, database_url=database_url))
    schema.downgrade(rt, revision)
    console.print(f"database at revision {schema.current_revision(rt)}")


@db_app.command("current")
def db_current(data_dir: DataDirOpt = None, database_url: DatabaseOpt = None) -> None:
    """Show the database's revision and the newest one."""
    rt = runtime.open_runtime(_settings(data_dir=data_dir, database_url=database_url))
    console.print(f"current: {schema.current_revision(rt)}; head: {schema.head_revision()}")


@db_app.command("vacuum")
def db_vacuum(data_dir: DataDirOpt = None, database_url: DatabaseOpt = None) -> None:
    """SQLite: rewrite the file so that retention's deletions give space back to the file
    system (once, for a database made before 0.2; stop the server first)."""
    rt = runtime.open_runtime(_settings(data_dir=data_dir, database_url=database_url))
    if retention.compact_sqlite(rt):
        console.print(
            "the SQLite file now gives deleted rows' space back (auto_vacuum incremental)"
        )
    else:
        console.print("PostgreSQL: nothing to do (autovacuum makes deleted rows' space reusable)")
    rt.db.dispose()


@app.command(rich_help_panel=SERVER_PANEL)
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


config_app = typer.Typer(help="The settings this server would run with.", no_args_is_help=True)
app.add_typer(config_app, name="config", rich_help_panel=SERVER_PANEL)


@config_app.command("show")
def config_show(
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON rather than TOML-like lines")
    ] = False,
) -> None:
    """Print the effective settings: defaults, then jobyard.toml (or the file JOBYARD_CONFIG
    names), then JOBYARD_* variables; secrets masked.

    Example: JOBYARD_PORT=9000 jobyard config show
    """
    settings = _settings()
    values = settings.shown()
    source = configuration.config_file(os.environ)
    if as_json:
        typer.echo(json.dumps(values, indent=2))
        return
    console.print(f"# config file: {source or 'none'}; JOBYARD_* variables override it")
    for name, value in values.items():
        typer.echo(f"{name} = {json.dumps(value)}")
