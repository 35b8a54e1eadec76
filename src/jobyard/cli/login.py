"""`jobyard login`: check a server and token, and keep them in the config file (0600) under
a name, for the user commands."""

from __future__ import annotations

from typing import Annotated

import typer

from jobyard.cli import output
from jobyard.cli.connection import DEFAULT_SERVER, Target, call, read_config, write_config

DEFAULT_URL = "http://127.0.0.1:8080"


def login(
    url: Annotated[
        str, typer.Option("--url", help="The server's address", prompt=True)
    ] = DEFAULT_URL,
    token: Annotated[
        str, typer.Option("--token", help="An API token", prompt=True, hide_input=True)
    ] = "",
    server: Annotated[
        str, typer.Option("--server", "-s", help="The name to keep it under")
    ] = DEFAULT_SERVER,
) -> None:
    """Log in to a server: the token is checked, then saved (several servers by name).

    Example: jobyard login --url http://127.0.0.1:8080 --server lab
    """
    me = call(Target(url, token), lambda c: c.current_user())
    servers = read_config()
    servers[server] = {"url": url, "token": token}
    path = write_config(servers)
    shown = "" if server == DEFAULT_SERVER else f" as server {server!r}"
    output.console().print(
        f"logged in to {url} as {me['login']} ({me['role']}){shown}; saved in {path}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("login", rich_help_panel="Connection")(login)
