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
from typing import Annotated

import typer
from rich.console import Console

from jobyard.cli.gc_tuning import settle_garbage_collector
from jobyard.errors import JobyardError
from jobyard.services import schema
from jobyard.services.runtime import open_runtime, wait_for_database
from jobyard.settings import load_settings
from jobyard.worker import confinement
from jobyard.worker.engine import Engine
from jobyard.worker.retention import Retainer
from jobyard.worker.scheduler import Scheduler
from jobyard.worker.webhooks import Dispatcher

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
    log_level: Annotated[str, typer.Option(help="Log level")] = "info",
) -> None:
    """Run jobs from the database until stopped (SIGTERM drains, a second one forces)."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = load_settings().with_overrides(
            workers=slots,
            database_url=database_url,
            data_dir=data_dir,
            drain_seconds=drain_seconds,
        )
        rt = open_runtime(settings)
        wait_for_database(rt)
        schema.upgrade(rt)
        confined = confinement.prepare(settings)
    except JobyardError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None
    rt.in_process_only = False  # other processes launch work: poll (SQLite) or LISTEN (PG)
    pool = Engine(rt, slots=settings.workers, confinement=confined)
    settle_garbage_collector()
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            logger.warning("second %s: handing running jobs back now", signal.Signals(signum).name)
            pool.hand_back_all()
        else:
            logger.info("%s: draining (a second signal forces)", signal.Signals(signum).name)
            stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    pool.start()
    scheduler, retainer, dispatcher = Scheduler(rt), Retainer(rt), Dispatcher(rt)
    if settings.scheduler:
        scheduler.start()
        retainer.start()
        dispatcher.start()
    console.print(f"worker {pool.identity.name} running {settings.workers} slots")
    while not stop.wait(1.0):
        pass
    dispatcher.stop()
    retainer.stop()
    scheduler.stop()
    pool.drain(settings.drain_seconds)
    pool.stop()
    rt.db.dispose()
    console.print("worker stopped")
