"""The ASGI application: routes, error answers, and the embedded worker pool's lifetime."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from jobyard import __version__, logs
from jobyard.api import dialects as dialect_package
from jobyard.api import docs_pages, errors, metrics, openapi, web
from jobyard.api.group_commit import LaunchQueue
from jobyard.api.native import accounts as account_routes
from jobyard.api.native import (
    catalog,
    jobs,
    retention,
    runs,
    schedules,
    system,
    webhooks,
    workers,
)
from jobyard.api.negotiation import XmlNegotiation
from jobyard.api.observing import ObserveRequests
from jobyard.services import accounts, schema
from jobyard.services.runtime import Runtime, open_runtime, wait_for_database
from jobyard.settings import Settings
from jobyard.worker.confinement import Confinement
from jobyard.worker.engine import Engine
from jobyard.worker.retention import Retainer
from jobyard.worker.scheduler import Scheduler
from jobyard.worker.webhooks import Dispatcher

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1/"


class TrailingSlash:
    """Serve `/api/v1/jobs` as `/api/v1/jobs/` without a redirect (a redirect turns the
    CDRouter client's POST into a GET)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(API_PREFIX) and not path.endswith("/"):
            scope = dict(scope, path=path + "/")
        await self.app(scope, receive, send)


def dialects() -> list[ModuleType]:
    """Every module in `api/dialects/`: each serves one vendor's API (see its __init__)."""
    found = []
    for info in pkgutil.iter_modules(dialect_package.__path__):
        module = importlib.import_module(f"{dialect_package.__name__}.{info.name}")
        if all(hasattr(module, name) for name in ("router", "PREFIX", "render_error")):
            found.append(module)
    return found


def prepare(settings: Settings) -> tuple[Runtime, accounts.Bootstrap]:
    """Connect (waiting for the database, see `wait_for_database`), migrate and make sure the
    admin exists: what every start-up does first."""
    rt = open_runtime(settings)
    wait_for_database(rt)
    schema.upgrade(rt)
    return rt, accounts.bootstrap_admin(rt)


def create_app(
    settings: Settings, *, run_workers: bool = True, confinement: Confinement | None = None
) -> FastAPI:
    """The jobyard server; with `run_workers` its embedded pool runs jobs too (confined as
    `confinement` says, or as the pool decides from the settings)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt, bootstrap = prepare(settings)
        if bootstrap.new_token:
            logger.warning("admin API token (shown once): %s", bootstrap.new_token)
        app.state.rt = rt
        app.state.bootstrap = bootstrap
        app.state.launches = LaunchQueue(rt)
        pool = Engine(rt, slots=settings.workers, confinement=confinement)
        if run_workers and settings.workers:
            pool.start()
        app.state.pool = pool
        scheduler, retainer, dispatcher = Scheduler(rt), Retainer(rt), Dispatcher(rt)
        if settings.scheduler:
            scheduler.start()
            retainer.start()
            dispatcher.start()
        try:
            yield
        finally:
            dispatcher.stop()
            retainer.stop()
            scheduler.stop()
            pool.stop()
            rt.db.dispose()

    app = FastAPI(
        title="jobyard",
        version=__version__,
        lifespan=lifespan,
        redirect_slashes=False,
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=openapi.operation_id,
        # jobyard reports through its own metrics and logs; FastAPI's OpenTelemetry hooks
        # would otherwise ask the OpenTelemetry API for its providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    openapi.install(app)
    docs_pages.install(app)
    logs.install_redaction()
    errors.install(app)
    resources = (
        jobs,
        catalog,
        runs,
        schedules,
        retention,
        webhooks,
        system,
        account_routes,
        workers,
    )
    routers = [m.router for m in resources]
    routers.append(metrics.router)
    routers.append(account_routes.login_router)
    for dialect in dialects():
        routers.append(dialect.router)
        errors.register_dialect(dialect.PREFIX, dialect.render_error)
    for router in routers:
        # The routes themselves, not the router: FastAPI matches an included router's
        # routes twice per request (to pick the router, then within it), a tenth of a
        # request's own cost; each route already holds its router's prefix and defaults.
        for route in router.routes:
            if isinstance(route, APIRoute) and route.operation_id is None:
                route.operation_id = openapi.operation_id(route)
            app.router.routes.append(route)
    web.install(app)
    # Innermost, so that it sees the route the router matched (the others copy the scope).
    app.add_middleware(ObserveRequests)
    app.add_middleware(XmlNegotiation)
    app.add_middleware(TrailingSlash)
    return app
