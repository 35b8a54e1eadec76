"""The user commands about jobs: launch (and follow), list, show, cancel, delete, relaunch,
bulk launch and delete, logs, runs, results and outcomes. They talk to the server through
`jobyard.client` only."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import Progress

from jobyard.cli import output
from jobyard.cli.catalog_commands import package_id
from jobyard.cli.connection import (
    CustomerOpt,
    Exit,
    ServerOpt,
    Target,
    TokenOpt,
    UrlOpt,
    call,
    connected,
    fail,
    target,
)
from jobyard.cli.files import read_document
from jobyard.cli.output import JsonOpt, OutputOpt, cell, status_text
from jobyard.client import Client, Data, list_params
from jobyard.client.models import Job

TERMINAL = {"completed", "completed_with_issues", "failed", "timed_out", "cancelled", "lost"}
JOB_COLUMNS = ("id", "status", "package", "device", "tags", "created", "exit")
POLL_SECONDS = 0.5
T = TypeVar("T")

jobs_app = typer.Typer(
    help="Jobs: list, show, cancel, delete, relaunch, in bulk.", no_args_is_help=True
)
runs_app = typer.Typer(help="Runs: each attempt at a job.", no_args_is_help=True)
results_app = typer.Typer(help="Results appended to a job.", no_args_is_help=True)
outcome_app = typer.Typer(help="A started job's outcome.", no_args_is_help=True)

JobId = Annotated[str, typer.Argument(help="The job's id", show_default=False)]
FilterOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--filter", "-f", help="The API's filter grammar, e.g. status=failed (repeatable)"
    ),
]
SortOpt = Annotated[str | None, typer.Option("--sort", help="e.g. -created or status,-id")]


def register(app: typer.Typer) -> None:
    panel = "Jobs"
    app.command("launch", rich_help_panel=panel)(launch)
    app.add_typer(jobs_app, name="jobs", rich_help_panel=panel)
    app.command("logs", rich_help_panel=panel)(logs)
    app.add_typer(runs_app, name="runs", rich_help_panel=panel)
    app.add_typer(results_app, name="results", rich_help_panel=panel)
    app.add_typer(outcome_app, name="outcome", rich_help_panel=panel)


def _testvar(text: str) -> Data:
    name, sep, value = text.partition("=")
    if not sep or not name:
        fail(f"--testvar {text!r}: write it as name=value", Exit.USAGE)
    return {"name": name, "value": value}


def launch(
    package: Annotated[str, typer.Argument(help="The package's name or id", show_default=False)],
    device: Annotated[str | None, typer.Option(help="Device id (the package's by default)")] = None,
    config: Annotated[str | None, typer.Option(help="Config id (the package's by default)")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable)")] = None,
    testvar: Annotated[
        list[str] | None, typer.Option("--testvar", help="name=value (repeatable)")
    ] = None,
    run_at: Annotated[str | None, typer.Option(help="When, RFC 3339 (now by default)")] = None,
    priority: Annotated[int | None, typer.Option(help="-1000..1000, higher first")] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the end, showing the status")
    ] = False,
    follow: Annotated[
        bool, typer.Option("--follow", "-F", help="Print the output live; exit with the job's code")
    ] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    server: ServerOpt = None,
    customer: CustomerOpt = None,
) -> None:
    """Launch a job from a package; with --follow print its output as it comes (through
    retries) and exit with its exit code.

    Example: jobyard launch hello --tag nightly --testvar who=you --follow
    """
    found = target(url, token, server, customer)
    with connected(found) as client:
        body: Data = {"package_id": package_id(client, package)}
        options: Data = {}
        if tag:
            options["tags"] = list(tag)
        if testvar:
            options["testvars"] = [_testvar(t) for t in testvar]
        if options:
            body["options"] = options
        body |= {
            k: v
            for k, v in {"device_id": device, "config_id": config, "run_at": run_at}.items()
            if v
        }
        if priority is not None:
            body["priority"] = priority
        job = client.launch(body)
        if follow:
            raise typer.Exit(_follow(client, job["id"]))
        if wait:
            raise typer.Exit(_wait(client, job))
        output.console().print(f"launched job {job['id']}", highlight=False)


def _follow(client: Client, job_id: str) -> int:
    """Print the output until the end; the job's exit code (1 if it ended without one)."""
    for event in client.follow(job_id):
        if event.kind == "output":
            stream = sys.stderr if event.data.get("stream") == "stderr" else sys.stdout
            stream.write(event.text)
            stream.flush()
        elif event.kind == "attempt" and str(event.data.get("attempt")) != "1":
            output.error_console().print(f"-- attempt {event.data['attempt']} --")
        elif event.kind == "end":
            status = str(event.data.get("status"))
            if status != "completed":
                output.error_console().print(f"job {job_id} {status_text(status)}")
            code = event.exit_code
            return code if code is not None else (0 if status == "completed" else 1)
        elif event.kind == "error":
            fail(f"following stopped: {event.data.get('error')}", Exit.SERVER_ERROR)
    return 1


def _wait(client: Client, job: Job) -> int:
    out = output.error_console()
    with out.status(f"job {job['id']}: {job['status']}") as spinner:
        while job["status"] not in TERMINAL:
            time.sleep(POLL_SECONDS)
            job = client.get_job(job["id"])
            spinner.update(f"job {job['id']}: {job['status']}")
    out.print(f"job {job['id']} {status_text(job['status'])}")
    code = job.get("exit_code")
    return int(code) if isinstance(code, int) else (0 if job["status"] == "completed" else 1)


def _job_row(job: Mapping[str, Any]) -> list[str]:
    exit_code = job.get("exit_code")
    return [
        cell(job["id"]),
        status_text(job["status"]),
        cell(job.get("package_name")),
        cell(job.get("device_name")),
        cell((job.get("options") or {}).get("tags") or job.get("tags") or []),
        cell(job.get("created", "")[:19].replace("T", " ")),
        "" if exit_code is None else cell(exit_code),
    ]


@jobs_app.command("ls")
def jobs_ls(
    filter_texts: FilterOpt = None,
    sort: SortOpt = None,
    limit: Annotated[int, typer.Option(help="How many (newest first unless --sort)")] = 25,
    every: Annotated[
        bool, typer.Option("--all", help="Every matching job, page after page")
    ] = False,
    out: OutputOpt = output.Format.TABLE,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    server: ServerOpt = None,
    customer: CustomerOpt = None,
) -> None:
    """List jobs.

    Example: jobyard jobs ls --filter status=failed --filter tags@>{nightly} --sort -created
    """
    found = target(url, token, server, customer)
    filters, order = filter_texts or [], sort or "-id"

    def fetch(client: Client) -> list[Data]:
        if every:
            return list(client.jobs(filters, order))
        return client.list_jobs(list_params(filters, order, limit=limit)).items

    jobs = call(found, fetch)
    if output.emit(jobs, output.chosen(out, as_json)):
        return
    output.table(JOB_COLUMNS, [_job_row(j) for j in jobs])


@jobs_app.command("show")
def jobs_show(
    job_id: JobId,
    out: OutputOpt = output.Format.TABLE,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    server: ServerOpt = None,
    customer: CustomerOpt = None,
) -> None:
    """Show one job.

    Example: jobyard jobs show 42 --json
    """
    job = call(target(url, token, server, customer), lambda c: c.get_job(job_id))
    if not output.emit(job, output.chosen(out, as_json)):
        output.details(job)


def _act(found: Target, act: Callable[[Client], T], said: Callable[[T], str]) -> None:
    """One action on one job, and what it says it did with the server's answer."""
    output.console().print(said(call(found, act)), highlight=False)


@jobs_app.command("cancel")
def jobs_cancel(
    job_id: JobId,
    url: UrlOpt = None,
    token: TokenOpt = None,
    server: ServerOpt = None,
    customer: CustomerOpt = None,
) -> None:
    """Cancel a job: a pending one ends now, a running one is asked to stop.

    Example: jobyard jobs cancel 42
    """
    found = target(url, token, server, customer)
    _act(found, lambda c: c.cancel_job(job_id), lambda _: f"job {job_id} cancel requested")


@jobs_app.command("delete")
def jobs_delete(
    job_id: JobId,
    url: UrlOpt = None,
    token: TokenOpt = None,
    server: ServerOpt = None,
    customer: CustomerOpt = None,
) -> None:
    """Delete a job that is not running.

    Example: jobyard jobs delete 42
    """
    found = target(url, token, server, customer)
    _act(found, lambda c: c.delete_job(job_id), lambda _: f"job {job_id} deleted")


@jobs_app.command("relaunch")
def jobs_relaunch(
    job_id: JobId,
    url: UrlOpt = None,
    token: TokenOpt = None,
    server: ServerOpt = None,
    customer: CustomerOpt = None,
) -> None:
    """Launch a job again with the same package, device, config and options.

    Example: jobyard jobs relaunch 42
    """
    found = target(url, token, server, customer)

    _act(
        found,
        lambda c: c.relaunch_job(job_id),
        lambda new: f"job {job_id} relaunched as job {new['id']}",
    )


BULK_CHUNK = 500  # jobs a bulk request carries, so that the progress bar moves


@jobs_app.command("bulk-launch")
def jobs_bulk_launch(
    file: Annotated[
        typer.FileText, typer.Argument(help="JSON or YAML: a list of launch bodies (- for stdin)")
    ],
    url: UrlOpt = None,
    token: TokenOpt = None,
    server: ServerOpt = None,
    customer: CustomerOpt = None,
) -> None:
    """Launch many jobs from a file of launch bodies, with a progress bar.

    Example: echo '[{"package_id": "3"}, {"package_id": "3", "priority": 5}]' \\
      | jobyard jobs bulk-launch -
    """
    items = read_document(file.read(), file.name)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        fail("expected a list of launch bodies (objects)", Exit.USAGE)
    launched: list[str] = []
    with connected(target(url, token, server, customer)) as client, _progress() as bar:
        task = bar.add_task("launching", total=len(items))
        for start in range(0, len(items), BULK_CHUNK):
            chunk = items[start : start + BULK_CHUNK]
            launched += [str(j["id"]) for j in client.bulk_launch(chunk)]
            bar.advance(task, len(chunk))
    output.console().print(f"launched {len(launched)} jobs: {_span(launched)}", highlight=False)


@jobs_app.command("bulk-delete")
def jobs_bulk_delete(
    job_ids: Annotated[list[str] | None, typer.Argument(help="Job ids", show_default=False)] = None,
    filter_texts: FilterOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    server: ServerOpt = None,
    customer: CustomerOpt = None,
) -> None:
    """Delete many jobs (not running ones), by id or by filter, with a progress bar.

    Example: jobyard jobs bulk-delete --filter status=failed --filter created<2026-01-01
    """
    if not job_ids and not filter_texts:
        fail("name job ids or give --filter", Exit.USAGE)
    with connected(target(url, token, server, customer)) as client, _progress() as bar:
        ids = list(job_ids or []) or [str(j["id"]) for j in client.jobs(filter_texts or [])]
        task = bar.add_task("deleting", total=len(ids))
        for start in range(0, len(ids), BULK_CHUNK):
            chunk = ids[start : start + BULK_CHUNK]
            client.bulk_delete(chunk)
            bar.advance(task, len(chunk))
    output.console().print(f"deleted {len(ids)} jobs (running ones stay)", highlight=False)


def _progress() -> Progress:
    return Progress(console=output.error_console(), transient=True)


def _span(ids: list[str]) -> str:
    return ids[0] if len(ids) == 1 else f"{ids[0]} to {ids[-1]}" if ids else "none"


def logs(
    job_id: JobId,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Follow live until the job ends")
    ] = False,
    attempt: Annotated[
        int | None, typer.Option(help="Which attempt (the latest by default)")
    ] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    server: ServerOpt = None,
    customer: CustomerOpt = None,
) -> None:
    """Print a job's output; -f follows it live through every attempt.

    Example: jobyard logs -f 42
    """
    with connected(target(url, token, server, customer)) as client:
        if follow:
            raise typer.Exit(_follow(client, job_id))
        offset = 0
        while True:
            piece = client.job_log(job_id, offset=offset, attempt=attempt)
            sys.stdout.write(piece.text)
            if piece.next_offset <= offset or piece.complete:
                return
            offset = piece.next_offset


@runs_app.command("ls")
def runs_ls(
    filter_texts: FilterOpt = None,
    job: Annotated[str | None, typer.Option("--job", help="The runs of this job")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first")] = 25,
    out: OutputOpt = output.Format.TABLE,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    server: ServerOpt = None,
    customer: CustomerOpt = None,
) -> None:
    """List runs (attempts).

    Example: jobyard runs ls --job 42
    """
    filters = [*(filter_texts or []), *([f"job_id={job}"] if job else [])]
    runs = call(
        target(url, token, server, customer),
        lambda c: c.list_runs(list_params(filters, "-id", limit=limit)).items,
    )
    if output.emit(runs, output.chosen(out, as_json)):
        return
    columns = ("id", "job", "attempt", "status", "worker", "started", "exit")
    rows = [
        [
            cell(r["id"]),
            cell(r["job_id"]),
            cell(r["attempt"]),
            status_text(r["status"]),
            cell(r.get("worker")),
            cell((r.get("started") or "")[:19].replace("T", " ")),
            cell(r.get("exit_code")),
        ]
        for r in runs
    ]
    output.table(columns, rows)


@results_app.command("add")
def results_add(
    job_id: JobId,
    pairs: Annotated[list[str], typer.Argument(help="KEY=VALUE (a JSON value, or text)")],
    url: UrlOpt = None,
    token: TokenOpt = None,
    server: ServerOpt = None,
    customer: CustomerOpt = None,
) -> None:
    """Append a result to a job.

    Example: jobyard results add 42 throughput=941.5 verdict=pass
    """
    result: Data = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"{pair!r}: write it as KEY=VALUE", Exit.USAGE)
        try:
            result[key] = json.loads(value)
        except ValueError:
            result[key] = value
    call(target(url, token, server, customer), lambda c: c.add_result(job_id, result))
    output.console().print(f"result added to job {job_id}", highlight=False)


OUTCOMES = {"ok": "completedOk", "issues": "completedWithIssues"}


@outcome_app.command("set")
def outcome_set(
    job_id: JobId,
    status: Annotated[str, typer.Argument(help="ok or issues")],
    result: Annotated[str, typer.Argument(help="A result the package allows")],
    url: UrlOpt = None,
    token: TokenOpt = None,
    server: ServerOpt = None,
    customer: CustomerOpt = None,
) -> None:
    """Set a started job's outcome: ok or issues, with a result its package allows.

    Example: jobyard outcome set 42 ok passed
    """
    if status not in OUTCOMES:
        fail(f"status {status!r}: expected ok or issues", Exit.USAGE)
    job = call(
        target(url, token, server, customer),
        lambda c: c.set_outcome(job_id, OUTCOMES[status], result),
    )
    output.console().print(f"job {job_id}: {status_text(job['status'])}", highlight=False)


__all__ = ["Target", "register"]
