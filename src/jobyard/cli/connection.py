"""Which server the user commands talk to, as whom: flags, then the environment
(`JOBYARD_URL`, `JOBYARD_TOKEN`, `JOBYARD_SERVER`), then the config file `jobyard login`
writes; and every failure of a call as one line and its own exit code (docs/cli.md)."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer

from jobyard.cli.output import error_console
from jobyard.client import (
    AuthenticationFailed,
    Client,
    JobyardClientError,
    NotFound,
    Refused,
    ServerFailed,
    ServerUnreachable,
)

T = TypeVar("T")
DEFAULT_SERVER = "default"


class Exit(IntEnum):
    """The exit codes of the user commands (a job's own code when following it)."""

    USAGE = 2
    UNREACHABLE = 3
    NOT_AUTHENTICATED = 4
    NOT_FOUND = 5
    REFUSED = 6
    SERVER_ERROR = 7
    NOT_CONFIGURED = 8


EXIT_FOR: list[tuple[type[JobyardClientError], Exit]] = [
    (ServerUnreachable, Exit.UNREACHABLE),
    (AuthenticationFailed, Exit.NOT_AUTHENTICATED),
    (NotFound, Exit.NOT_FOUND),
    (Refused, Exit.REFUSED),
    (ServerFailed, Exit.SERVER_ERROR),
]

UrlOpt = Annotated[str | None, typer.Option("--url", help="Server address (env JOBYARD_URL)")]
TokenOpt = Annotated[
    str | None, typer.Option("--token", help="API token (env JOBYARD_TOKEN)", show_default=False)
]
ServerOpt = Annotated[
    str | None,
    typer.Option("--server", "-s", help="A server `jobyard login` saved (env JOBYARD_SERVER)"),
]
CustomerOpt = Annotated[
    int | None, typer.Option("--customer", help="Act for this customer (system admins)")
]


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "jobyard" / "config.toml"


def read_config() -> dict[str, dict[str, str]]:
    path = config_path()
    if not path.exists():
        return {}
    try:
        servers = tomllib.loads(path.read_text()).get("servers", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        fail(f"cannot read {path}: {exc}", Exit.NOT_CONFIGURED)
    return {name: dict(values) for name, values in servers.items() if isinstance(values, dict)}


def write_config(servers: dict[str, dict[str, str]]) -> Path:
    """The servers as TOML, readable by the user alone (it holds tokens)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, values in sorted(servers.items()):
        lines.append(f"[servers.{json.dumps(name)}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in sorted(values.items())]
        lines.append("")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # also when the file was there with a wider mode
    with os.fdopen(descriptor, "w") as file:
        file.write("\n".join(lines))
    return path


@dataclass(frozen=True)
class Target:
    url: str
    token: str
    customer: int | None = None


def target(
    url: str | None, token: str | None, server: str | None, customer: int | None = None
) -> Target:
    saved = read_config()
    name = server or os.environ.get("JOBYARD_SERVER") or DEFAULT_SERVER
    if (server or os.environ.get("JOBYARD_SERVER")) and name not in saved:
        fail(
            f"no server {name!r} in {config_path()}: `jobyard login --server {name}`",
            Exit.NOT_CONFIGURED,
        )
    entry = saved.get(name, {})
    found_url = url or os.environ.get("JOBYARD_URL") or entry.get("url")
    found_token = token or os.environ.get("JOBYARD_TOKEN") or entry.get("token")
    if not found_url or not found_token:
        fail(
            "no server to talk to: run `jobyard login`, or set JOBYARD_URL and JOBYARD_TOKEN",
            Exit.NOT_CONFIGURED,
        )
    return Target(found_url, found_token, customer)


def fail(message: str, code: int) -> NoReturn:
    """One line on stderr, no traceback, and the exit code that says what went wrong."""
    error_console().print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


@contextmanager
def connected(found: Target) -> Iterator[Client]:
    """A client for the target; a failed call ends the command with its exit code."""
    try:
        with Client(found.url, found.token, customer=found.customer) as client:
            yield client
    except JobyardClientError as exc:
        fail(_described(exc, found), _exit_for(exc))


def _exit_for(exc: JobyardClientError) -> int:
    return next((code for kind, code in EXIT_FOR if isinstance(exc, kind)), Exit.SERVER_ERROR)


def _described(exc: JobyardClientError, found: Target) -> str:
    if isinstance(exc, AuthenticationFailed) and exc.status == 401:  # noqa: PLR2004
        return f"{exc.message} (the token was refused by {found.url}: `jobyard login` again)"
    return exc.message


def call(found: Target, work: Callable[[Client], T]) -> T:
    with connected(found) as client:
        return work(client)
