"""The web dashboard: server-rendered pages (Jinja2) made live with htmx, served by
`jobyard serve` at `/` with their assets from this package (docs/dashboard.md).

Pages are another presentation of the same services as the API: they parse a form, call a
service as the signed-in person, and render; no rule of jobyard lives here.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from jobyard.api.web import account_pages, catalog_pages, job_pages, launch_page

STATIC = Path(__file__).parent / "static"


def routes() -> list[BaseRoute]:
    return [
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Route("/", job_pages.overview_page),
        Route("/login", account_pages.login_page, methods=["GET"]),
        Route("/login", account_pages.login, methods=["POST"]),
        Route("/logout", account_pages.logout, methods=["POST"]),
        Route("/customer", account_pages.switch_customer, methods=["POST"]),
        Route("/jobs", job_pages.jobs_page),
        Route("/jobs/rows", job_pages.job_rows),
        Route("/jobs/bulk", job_pages.bulk_action, methods=["POST"]),
        Route("/jobs/{job_id}", job_pages.job_page),
        Route("/jobs/{job_id}/summary", job_pages.job_summary),
        Route("/jobs/{job_id}/log", job_pages.log_slice),
        Route("/jobs/{job_id}/log/follow", job_pages.log_follow),
        Route("/jobs/{job_id}/log/download", job_pages.log_download),
        *(
            Route(f"/jobs/{{job_id}}/{action}", job_pages.job_action, methods=["POST"])
            for action in job_pages.JOB_ACTIONS
        ),
        Route("/launch", launch_page.launch_page, methods=["GET"]),
        Route("/launch", launch_page.launch, methods=["POST"]),
        Route("/workers", catalog_pages.workers_page),
        *(route for kind in catalog_pages.BY_NAME for route in _catalog(kind)),
    ]


def _catalog(kind: str) -> list[BaseRoute]:
    """The pages of packages, devices or configs (`kind`): only these names, so that any
    other path stays the API's 404."""
    item = f"/{kind}/{{object_id}}"
    return [
        Route(f"/{kind}", catalog_pages.list_page),
        Route(f"/{kind}/new", catalog_pages.editor_page, methods=["GET"]),
        Route(f"/{kind}/new", catalog_pages.save, methods=["POST"]),
        Route(item, catalog_pages.item_page),
        Route(f"{item}/edit", catalog_pages.editor_page, methods=["GET"]),
        Route(f"{item}/edit", catalog_pages.save, methods=["POST"]),
        Route(f"{item}/delete", catalog_pages.delete, methods=["POST"]),
    ]


def install(app: Starlette) -> None:
    """After every other route: a page never shadows the API or a dialect."""
    app.router.routes.extend(routes())
