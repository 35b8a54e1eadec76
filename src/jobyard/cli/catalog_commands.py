"""The user commands about packages and workers, through `jobyard.client`."""

from __future__ import annotations

from typing import Annotated

import typer

from jobyard.cli import output
from jobyard.cli.connection import (
    CustomerOpt,
    Exit,
    ServerOpt,
    TokenOpt,
    UrlOpt,
    call,
    fail,
    target,
)
from jobyard.cli.files import read_document
from jobyard.cli.output import JsonOpt, OutputOpt, cell
from jobyard.client import Client, Data, list_params

packages_app = typer.Typer(help="Packages: what jobs run.", no_args_is_help=True)
workers_app = typer.Typer(help="Workers: who runs jobs.", no_args_is_help=True)

PackageRef = Annotated[str, typer.Argument(help="The package's name or id", show_default=False)]
PackageFile = Annotated[
    typer.FileText, typer.Argument(help="YAML or JSON: the package's fields (- for stdin)")
]


def register(app: typer.Typer) -> None:
    app.add_typer(packages_app, name="packages", rich_help_panel="Packages and workers")
    app.add_typer(workers_app, name="workers", rich_help_panel="Packages and workers")


def package_id(client: Client, package: str) -> str:
    """A package named by id or by name."""
    if package.isdigit():
        return package
    found = client.list_packages(list_params([f"name={package}"], limit=2)).items
    if not found:
        fail(f"no package named {package!r}", Exit.NOT_FOUND)
    return str(found[0]["id"])


def _fields(file: typer.FileText) -> Data:
    found = read_document(file.read(), file.name)
    if not isinstance(found, dict):
        fail(f"{file.name}: expected the package's fields as a mapping", Exit.USAGE)
    return found


@packages_app.command("ls")
def packages_ls(
    filter_texts: Annotated[
        list[str] | None, typer.Option("--filter", "-f", help="e.g. name~^nightly (repeatable)")
    ] = None,
    out: OutputOpt = output.Format.TABLE,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    server: ServerOpt = None,
    customer: CustomerOpt = None,
) -> None:
    """List packages.

    Example: jobyard packages ls --filter name~smoke
    """
    found = call(
        target(url, token, server, customer),
        lambda c: list(c.pages(c.calls.list_packages, list_params(filter_texts or [], "name"))),
    )
    if output.emit(found, output.chosen(out, as_json)):
        return
    rows = [
        [cell(p["id"]), cell(p["name"]), cell(p.get("kind")), cell(p.get("command"))] for p in found
    ]
    output.table(("id", "name", "kind", "command"), rows)


@packages_app.command("show")
def packages_show(
    package: PackageRef,
    out: OutputOpt = output.Format.TABLE,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    server: ServerOpt = None,
    customer: CustomerOpt = None,
) -> None:
    """Show a package.

    Example: jobyard packages show hello --output yaml
    """
    found = call(
        target(url, token, server, customer), lambda c: c.get_package(package_id(c, package))
    )
    if not output.emit(found, output.chosen(out, as_json)):
        output.details(found)


@packages_app.command("create")
def packages_create(
    file: PackageFile,
    url: UrlOpt = None,
    token: TokenOpt = None,
    server: ServerOpt = None,
    customer: CustomerOpt = None,
) -> None:
    """Create a package from a YAML or JSON file of its fields.

    Example: printf 'name: hello\\ncommand: [echo, hello world]\\n' | jobyard packages create -
    """
    values = _fields(file)
    made = call(target(url, token, server, customer), lambda c: c.create_package(values))
    output.console().print(f"package {made['id']} ({made['name']}) created", highlight=False)


@packages_app.command("edit")
def packages_edit(
    package: PackageRef,
    file: PackageFile,
    url: UrlOpt = None,
    token: TokenOpt = None,
    server: ServerOpt = None,
    customer: CustomerOpt = None,
) -> None:
    """Change a package's fields (those the file gives).

    Example: echo 'timeout: 600' | jobyard packages edit hello -
    """
    values = _fields(file)
    edited = call(
        target(url, token, server, customer),
        lambda c: c.edit_package(package_id(c, package), values),
    )
    output.console().print(f"package {edited['id']} ({edited['name']}) saved", highlight=False)


@packages_app.command("delete")
def packages_delete(
    package: PackageRef,
    url: UrlOpt = None,
    token: TokenOpt = None,
    server: ServerOpt = None,
    customer: CustomerOpt = None,
) -> None:
    """Delete a package.

    Example: jobyard packages delete hello
    """
    call(target(url, token, server, customer), lambda c: c.delete_package(package_id(c, package)))
    output.console().print(f"package {package} deleted", highlight=False)


@workers_app.command("ls")
def workers_ls(
    every: Annotated[bool, typer.Option("--all", help="Stopped workers too")] = False,
    out: OutputOpt = output.Format.TABLE,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    server: ServerOpt = None,
    customer: CustomerOpt = None,
) -> None:
    """List the workers: slots, heartbeat, running jobs (admins).

    Example: jobyard workers ls
    """
    found = call(
        target(url, token, server, customer), lambda c: c.list_workers(include_stopped=every)
    )
    if output.emit(found, output.chosen(out, as_json)):
        return
    rows = [
        [
            cell(w.get("name")),
            cell(w.get("host")),
            cell(w.get("slots")),
            cell(w.get("running_job_ids") or []),
            cell(w.get("heartbeat")),
        ]
        for w in found
    ]
    output.table(("name", "host", "slots", "running jobs", "heartbeat"), rows)
