"""The command line as a user runs it: `jobyard` as a subprocess against a live server,
piped and on a terminal, and the errors a person can act on."""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path

import yaml

from tests.cli.conftest import Cli
from tests.conftest import ADMIN_TOKEN

ESCAPE = "\x1b["


def test_login_create_from_yaml_launch_and_follow(cli: Cli, tmp_path: Path) -> None:
    logged = cli.run("login", "--url", cli.url, "--token", ADMIN_TOKEN)
    assert logged.code == 0, logged.err
    assert "logged in to" in logged.out
    config = cli.home / ".config" / "jobyard" / "config.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    package = tmp_path / "hello.yaml"
    package.write_text("name: hello\ncommand: [echo, hello world]\n")
    created = cli.run("packages", "create", str(package))
    assert created.code == 0, created.err
    followed = cli.run("launch", "hello", "--follow")
    assert (followed.code, followed.out) == (0, "hello world\n"), followed.err
    failing = '{"name": "exits-3", "command": ["sh", "-c", "echo oops >&2; exit 3"]}'
    assert cli.run("packages", "create", "-", stdin=failing).code == 0
    failed = cli.run("launch", "exits-3", "--follow")
    assert failed.code == 3
    assert "oops" in failed.err
    assert "failed" in failed.err
    listed = cli.run("jobs", "ls", "--filter", "status=completed", "--json")
    jobs = json.loads(listed.out)
    assert [j["package_name"] for j in jobs] == ["hello"]
    assert ESCAPE not in listed.out + listed.err


def test_piped_output_is_plain_text_with_clean_exit_codes(cli: Cli) -> None:
    cli.as_user("packages", "create", "-", stdin='{"name": "plain", "command": ["true"]}')
    waited = cli.as_user("launch", "plain", "--wait")
    assert waited.code == 0, waited.err
    for args in (
        ("jobs", "ls"),
        ("packages", "ls"),
        ("runs", "ls"),
        ("workers", "ls"),
        ("--help",),
    ):
        ran = cli.as_user(*args)
        assert ran.code == 0, (args, ran.err)
        assert ESCAPE not in ran.out + ran.err, args
    header, *rows = cli.as_user("jobs", "ls").out.splitlines()
    assert header.split("\t") == ["id", "status", "package", "device", "tags", "created", "exit"]
    assert any(row.split("\t")[2] == "plain" for row in rows)
    shown = yaml.safe_load(cli.as_user("packages", "show", "plain", "--output", "yaml").out)
    assert shown["command"] == ["true"]


def test_a_terminal_gets_colour_and_a_table(cli: Cli) -> None:
    cli.as_user("packages", "create", "-", stdin='{"name": "coloured", "command": ["true"]}')
    assert cli.as_user("launch", "coloured", "--wait").code == 0
    shown = cli.on_terminal("jobs", "ls", "--filter", "package_name=coloured")
    assert shown.code == 0, shown.out
    assert ESCAPE in shown.out  # the status is coloured
    assert "┃" in shown.out or "│" in shown.out  # a table, not tab-separated lines
    assert "coloured" in shown.out


def test_errors_are_one_line_with_their_own_exit_code(cli: Cli) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        down_url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    cases = {
        "bad token": (cli.run("jobs", "ls", JOBYARD_URL=cli.url, JOBYARD_TOKEN="wrong"), 4),
        "server down": (cli.run("jobs", "ls", JOBYARD_URL=down_url, JOBYARD_TOKEN="x"), 3),
        "unknown package": (cli.as_user("launch", "no-such-package"), 5),
        "unknown job": (cli.as_user("jobs", "show", "999999"), 5),
        "refused input": (cli.as_user("jobs", "ls", "--filter", "nonsense"), 6),
        "no server": (cli.run("jobs", "ls", HOME=str(cli.home / "nobody")), 8),
    }
    for name, (ran, code) in cases.items():
        assert ran.code == code, (name, ran)
        lines = ran.err.strip().splitlines()
        assert len(lines) == 1, (name, ran.err)
        assert lines[0].startswith("error: "), (name, ran.err)
        assert "Traceback" not in ran.err


def test_logs_runs_results_outcome_and_bulk(cli: Cli) -> None:
    body = {"name": "counts", "command": ["sh", "-c", "echo one; echo two"]}
    cli.as_user("packages", "create", "-", stdin=json.dumps(body))
    launched = cli.as_user("launch", "counts", "--wait")
    assert launched.code == 0, launched.err
    job = json.loads(cli.as_user("jobs", "ls", "--filter", "package_name=counts", "--json").out)[0]
    assert cli.as_user("logs", job["id"]).out == "one\ntwo\n"
    assert cli.as_user("logs", "-f", job["id"]).out == "one\ntwo\n"
    runs = json.loads(cli.as_user("runs", "ls", "--job", job["id"], "--json").out)
    assert [r["status"] for r in runs] == ["completed"]
    added = cli.as_user("results", "add", job["id"], "speed=941.5", "verdict=pass")
    assert added.code == 0, added.err
    external = {"name": "manual", "kind": "external", "positive_results": ["passed"]}
    cli.as_user("packages", "create", "-", stdin=json.dumps(external))
    assert cli.as_user("launch", "manual").code == 0
    manual = json.loads(cli.as_user("jobs", "ls", "--filter", "package_name=manual", "--json").out)
    from jobyard.client import Client

    with Client(cli.url, ADMIN_TOKEN) as client:
        client.start_job(manual[0]["id"])
        assert client.job_results(job["id"])[0]["payload"] == {"speed": 941.5, "verdict": "pass"}
    outcome = cli.as_user("outcome", "set", manual[0]["id"], "ok", "passed")
    assert outcome.code == 0, outcome.err
    assert "completed" in outcome.out
    items = json.dumps([{"package_id": job["package_id"]}] * 3)
    bulk = cli.as_user("jobs", "bulk-launch", "-", stdin=items)
    assert bulk.code == 0, bulk.err
    assert "launched 3 jobs" in bulk.out
    deleted = cli.as_user("jobs", "bulk-delete", "--filter", "package_name=manual")
    assert deleted.code == 0, deleted.err
    assert (
        cli.as_user("jobs", "ls", "--filter", "package_name=manual", "--json").out.strip() == "[]"
    )
