"""A live jobyard for the command line's tests, and a way to run `jobyard` as a user would:
a subprocess, piped or on a terminal, with a home of its own for the config file."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobyard.settings import Settings
from tests.conftest import ADMIN_TOKEN, LiveServer

COMMAND_SECONDS = 60


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


@dataclass(frozen=True)
class Cli:
    url: str
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("JOBYARD_", "XDG_"))}
        return base | {"HOME": str(self.home), "COLUMNS": "120"} | extra

    def run(self, *args: str, stdin: str = "", **env: str) -> Ran:
        """`jobyard ARGS` with its output piped."""
        done = subprocess.run(
            [sys.executable, "-m", "jobyard", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env(**env),
            timeout=COMMAND_SECONDS,
            check=False,
        )
        return Ran(done.returncode, done.stdout, done.stderr)

    def as_user(self, *args: str, stdin: str = "", **env: str) -> Ran:
        """With the server and token in the environment, as a script would have them."""
        return self.run(*args, stdin=stdin, JOBYARD_URL=self.url, JOBYARD_TOKEN=ADMIN_TOKEN, **env)

    def on_terminal(self, *args: str) -> Ran:
        """`jobyard ARGS` on a pseudo-terminal, as a person at one sees it."""
        leader, follower = pty.openpty()
        env = self.env(JOBYARD_URL=self.url, JOBYARD_TOKEN=ADMIN_TOKEN, TERM="xterm-256color")
        process = subprocess.Popen(
            [sys.executable, "-m", "jobyard", *args],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            env=env,
        )
        os.close(follower)
        chunks = []
        while True:
            ready, _, _ = select.select([leader], [], [], COMMAND_SECONDS)
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(leader)
        return Ran(process.wait(COMMAND_SECONDS), b"".join(chunks).decode(errors="replace"), "")


@pytest.fixture(scope="module")
def cli(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    folder = tmp_path_factory.mktemp("cli")
    database = folder / "jobyard.db"
    shutil.copy(sqlite_template, database)
    settings = Settings(
        data_dir=folder / "data",
        database_url=f"sqlite:///{database}",
        workers=2,
        admin_token=ADMIN_TOKEN,
        cancel_grace_seconds=1.0,
        drain_seconds=1.0,
        run_as="server",
        runs_dir=folder / "runs",
    )
    home = folder / "home"
    home.mkdir()
    with LiveServer(settings) as server:
        yield Cli(server.url, home)
