"""`jobyard worker`: the worker engine alone, claiming jobs from a shared database.

The first SIGTERM or SIGINT drains: nothing new is claimed, running jobs may finish until the
drain deadline, then what still runs is handed back (its job returns to pending for another
worker). A second signal hands everything back at once.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from jobyard.cli.gc_tuning import settle_garbage_collector
from jobyard.cli.lazy import lazy_module
from jobyard.errors import JobyardError

if TYPE_CHECKING:
    from jobyard import logs
    from jobyard import settings as configuration
    from jobyard.services import metrics, runtime, schema
    from jobyard.worker import confinement, engine, retention, scheduler, webhooks
else:  # loaded when the worker starts (see `cli.lazy`)
    configuration = lazy_module("jobyard.settings")
    logs = lazy_module("jobyard.logs")
    metrics = lazy_module("jobyard.services.metrics")
    runtime = lazy_module("jobyard.services.runtime")
    schema = lazy_module("jobyard.services.schema")
    confinement = lazy_module("jobyard.worker.confinement")
    engine = lazy_module("jobyard.worker.engine")
    retention = lazy_module("jobyard.worker.retention")
    scheduler = lazy_module("jobyard.worker.scheduler")
    webhooks = lazy_module("jobyard.worker.webhooks")

console = Console(stderr=True, soft_wrap=True)
logger = logging.getLogger(__name__)


def run_worker(
    slots: Annotated[
        int | None, typer.Option(help="Jobs run at once (env JOBYARD_WORKERS, 2)")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="Database URL (env JOBYARD_DATABASE_URL)")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Data directory (env JOBYARD_DATA_DIR)")
    ] = None,
    drain_seconds: Annotated[
        float | None,
        typer.Option(help="How long running jobs may finish after a stop signal (30)"),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="debug, info, warning or error (env JOBYARD_LOG_LEVEL)")
    ] = None,
    log_format: Annotated[
        str | None, typer.Option(help="text or json (env JOBYARD_LOG_FORMAT, text)")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve this worker's own /metrics on this port (env JOBYARD_METRICS_PORT)"
        ),
    ] = None,
) -> None:
    """Run jobs from the database until stopped (SIGTERM drains, a second one forces)."""
    # Stopping is heard from the first moment: a stop while the worker waits for its database
    # or migrates ends it cleanly once that is done, before it claims anything.
    stop = threading.Event()
    started: list[engine.Engine] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set() and started:
            logger.warning("second %s: handing running jobs back now", signal.Signals(signum).name)
            started[0].hand_back_all()
        else:
            logger.info("%s: draining (a second signal forces)", signal.Signals(signum).name)
            stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        settings = configuration.load_settings().with_overrides(
            workers=slots,
            database_url=database_url,
            data_dir=data_dir,
            drain_seconds=drain_seconds,
            log_level=log_level,
            log_format=log_format,
            metrics_port=metrics_port,
        )
        logs.configure(settings.log_format, settings.log_level)
        rt = runtime.open_runtime(settings)
        runtime.wait_for_database(rt)
        schema.upgrade(rt)
        confined = confinement.prepare(settings)
    except JobyardError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None
    if stop.is_set():
        rt.db.dispose()
        console.print("worker stopped before it started")
        return
    rt.in_process_only = False  # other processes launch work: the doorbell (SQLite) or LISTEN
    pool = engine.Engine(rt, slots=settings.workers, confinement=confined)
    settle_garbage_collector()
    started.append(pool)
    pool.start()
    if settings.metrics_port is not None:
        metrics.serve_process_metrics(settings.host, settings.metrics_port)
    firing, retainer = scheduler.Scheduler(rt), retention.Retainer(rt)
    dispatcher = webhooks.Dispatcher(rt)
    if settings.scheduler:
        firing.start()
        retainer.start()
        dispatcher.start()
    console.print(f"worker {pool.identity.name} running {settings.workers} slots")
    while not stop.wait(1.0):
        pass
    dispatcher.stop()
    retainer.stop()
    firing.stop()
    pool.drain(settings.drain_seconds)
    pool.stop()
    rt.db.dispose()
    console.print("worker stopped")
