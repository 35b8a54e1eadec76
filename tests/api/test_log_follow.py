"""Following a job's log live over server-sent events, against a real server with real
workers and child processes, on both databases: every attempt until the job's final status,
UTF-8 split across writes, exact resumes per stream, one watcher whoever follows, and each
stream's own offsets."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from jobyard import jsontext
from jobyard.services.runtime import Runtime
from jobyard.settings import Settings
from tests.conftest import AUTH, LiveServer

SSE = {"Accept": "text/event-stream"}

# The first attempt fails after a line; the second writes a line, waits past the first
# attempt's end (a follower that stops at a run's end misses the rest), and succeeds.
RETRIED = (
    "import os, sys, time\n"
    "attempt = int(os.environ['JOBYARD_ATTEMPT'])\n"
    "print('try', attempt, flush=True)\n"
    "if attempt == 1:\n"
    "    sys.exit(3)\n"
    "time.sleep(1.0)\n"
    "print('done', flush=True)\n"
)
# `café` with its é split across two writes, stored apart (the worker stores within 0.25 s).
SPLIT = (
    "import sys, time\n"
    "out = sys.stdout.buffer\n"
    "out.write(b'caf\\xc3'); out.flush(); time.sleep(0.8)\n"
    "out.write(b'\\xa9\\n'); out.flush()\n"
)
# Both streams, interleaved, over a few of the worker's writes (no braces: argv elements
# are templates).
BOTH = (
    "import sys, time\n"
    "for i in range(4):\n"
    "    print('out%d é' % i, flush=True)\n"
    "    print('err%d' % i, file=sys.stderr, flush=True)\n"
    "    time.sleep(0.3)\n"
)


@pytest.fixture
def api(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{live_server.url}/api/v1", headers=AUTH, timeout=60) as client:
        yield client


def _job(api: httpx.Client, name: str, code: str, **fields: Any) -> str:
    body = {"name": name, "command": [sys.executable, "-c", code]} | fields
    pkg = api.post("/packages/", json=body).json()["data"]
    job_id: str = api.post("/jobs/", json={"package_id": pkg["id"]}).json()["data"]["id"]
    return job_id


def _follow(
    api: httpx.Client, job_id: str, *, query: str = "", last_event_id: str | None = None
) -> list[dict[str, Any]]:
    """Every event of one follow, as {"event", "id", "data"}, until the server ends it."""
    headers = SSE | ({"Last-Event-ID": last_event_id} if last_event_id else {})
    events: list[dict[str, Any]] = []
    with api.stream("GET", f"/jobs/{job_id}/log/{query}", headers=headers) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        current: dict[str, Any] = {}
        for line in response.iter_lines():
            if line.startswith("event: "):
                current = {"event": line[7:]}
            elif line.startswith("id: "):
                current["id"] = line[4:]
            elif line.startswith("data: "):
                current["data"] = jsontext.loads(line[6:])
            elif line == "" and current:
                events.append(current)
                current = {}
    return events


def _text(events: list[dict[str, Any]], stream: str | None = None) -> str:
    return "".join(
        e["data"]["content"]
        for e in events
        if e["event"] == "output" and stream in (None, e["data"]["stream"])
    )


def test_a_retried_job_is_followed_through_every_attempt_to_its_final_status(
    api: httpx.Client,
) -> None:
    job_id = _job(api, "retried", RETRIED, max_attempts=2, retry_delay=0)

    events = _follow(api, job_id)

    names = [e["event"] for e in events]
    assert names.count("end") == 1
    assert names[-1] == "end"
    attempts = [e for e in events if e["event"] == "attempt"]
    assert [a["data"]["attempt"] for a in attempts] == [1, 2]
    assert all(a["data"]["run_id"].isdigit() for a in attempts)
    assert attempts[0]["data"]["run_id"] != attempts[1]["data"]["run_id"]
    first, second = (names.index("attempt"), len(names) - 1 - names[::-1].index("attempt"))
    assert _text(events[first:second]) == "try 1\n"
    assert _text(events[second:]) == "try 2\ndone\n"
    assert {e["data"]["attempt"] for e in events[second:] if e["event"] == "output"} == {2}
    assert events[-1]["data"] == {"status": "completed", "exit_code": 0, "attempt": 2}
    job = api.get(f"/jobs/{job_id}/").json()["data"]
    assert (job["status"], job["exit_code"]) == ("completed", 0)


def test_a_job_that_fails_every_attempt_ends_with_its_last_exit_code(api: httpx.Client) -> None:
    job_id = _job(api, "failing", "import sys; print('x'); sys.exit(5)", max_attempts=2)

    events = _follow(api, job_id)

    assert [e["event"] for e in events].count("attempt") == 2
    assert events[-1]["data"] == {"status": "failed", "exit_code": 5, "attempt": 2}


def test_a_character_split_across_two_writes_arrives_whole(api: httpx.Client) -> None:
    job_id = _job(api, "split", SPLIT)

    events = _follow(api, job_id)

    assert _text(events) == "café\n"
    outputs = [e for e in events if e["event"] == "output"]
    assert all("\ufffd" not in e["data"]["content"] for e in outputs)
    # The held-back byte is not counted as given: a resume at the first event re-reads it.
    assert outputs[0]["id"] in ("1:3:0", "1:6:0")
    assert _text(_follow(api, job_id, last_event_id="1:3:0")) == "é\n"
    plain = api.get(f"/jobs/{job_id}/log/").json()["data"]
    assert plain["content"] == "café\n"


@pytest.mark.parametrize("query", ["", "?stream=stdout", "?stream=stderr"])
def test_a_resume_from_any_event_sends_exactly_the_rest(api: httpx.Client, query: str) -> None:
    job_id = _job(api, "both", BOTH)
    events = _follow(api, job_id, query=query)
    streams = [query.removeprefix("?stream=")] if query else ["stdout", "stderr"]
    expected = {
        "stdout": "".join(f"out{i} é\n" for i in range(4)),
        "stderr": "".join(f"err{i}\n" for i in range(4)),
    }
    for stream in streams:
        assert _text(events, stream) == expected[stream]
    assert events[-1]["data"] == {"status": "completed", "exit_code": 0, "attempt": 1}

    for at, given in enumerate(events[:-1]):
        resumed = _follow(api, job_id, query=query, last_event_id=given["id"])
        assert [e["event"] for e in resumed].count("attempt") == 0  # announced before
        assert resumed[-1]["event"] == "end"
        for stream in streams:
            before = _text(events[: at + 1], stream)
            assert before + _text(resumed, stream) == expected[stream], (given, stream)
    # After the end, a resume with its id gets the end again and nothing else.
    again = _follow(api, job_id, query=query, last_event_id=events[-1]["id"])
    assert [e["event"] for e in again] == ["end"]


def test_one_stream_alone_counts_its_own_offsets(api: httpx.Client) -> None:
    code = (
        "import sys, time\n"
        "print('out', flush=True); time.sleep(0.5)\n"
        "print('oops', file=sys.stderr, flush=True); time.sleep(0.5)\n"
        "print('more', flush=True)\n"
    )
    job_id = _job(api, "streams", code)
    _follow(api, job_id)

    def read(query: str) -> dict[str, Any]:
        found: dict[str, Any] = api.get(f"/jobs/{job_id}/log/{query}").json()["data"]
        return found

    merged = read("")
    assert (merged["content"], merged["next_offset"]) == ("out\noops\nmore\n", 14)
    stderr = read("?stream=stderr")
    assert (stderr["content"], stderr["offset"], stderr["next_offset"]) == ("oops\n", 0, 5)
    assert stderr["complete"] is True
    assert (
        read("?stream=stderr&offset=2")["content"],
        read("?stream=stderr&offset=2")["next_offset"],
    ) == ("ps\n", 5)
    assert (
        read("?stream=stderr&offset=9")["content"],
        read("?stream=stderr&offset=9")["next_offset"],
    ) == ("", 9)
    stdout = read("?stream=stdout&offset=4")
    assert (stdout["content"], stdout["next_offset"]) == ("more\n", 9)
    raw = api.get(f"/jobs/{job_id}/log/?stream=stderr", headers={"Accept": "text/plain"})
    assert (raw.text, raw.headers["X-Next-Offset"]) == ("oops\n", "5")
    # Following one stream from an offset starts at that stream's own byte.
    assert _text(_follow(api, job_id, query="?stream=stdout&offset=4")) == "more\n"
    assert _text(_follow(api, job_id, query="?stream=stderr&offset=1")) == "ops\n"


def test_a_malformed_last_event_id_is_refused(api: httpx.Client) -> None:
    job_id = _job(api, "quick", "print('hi')")
    for bad in ("1:2", "a:0:0", "1:-1:0", "1:0:99999999999999999999"):
        answer = api.get(f"/jobs/{job_id}/log/", headers=SSE | {"Last-Event-ID": bad})
        assert answer.status_code == 400, bad
        assert "Last-Event-ID" in answer.json()["error"]


def test_a_follow_that_cannot_start_is_an_error_answer_not_an_event(api: httpx.Client) -> None:
    job_id = _job(api, "quick", "print('hi')")
    bad_stream = api.get(f"/jobs/{job_id}/log/?stream=both", headers=SSE)
    assert (bad_stream.status_code, bad_stream.headers["content-type"]) == (
        400,
        "application/problem+json",
    )
    missing = api.get("/jobs/999999/log/", headers=SSE)
    assert missing.status_code == 404, missing.text


FOLLOWERS = 20


def test_many_followers_share_one_watcher_that_reads_once_per_tick(settings: Settings) -> None:
    """Twenty followers of twenty pending jobs (no worker runs them): the process's one
    watcher reads all of them in one statement per tick, and nothing else reads (no
    scheduler either: its threads, the webhook dispatcher's among them, poll the database)."""
    idle = settings.with_overrides(workers=0, scheduler=False)
    with LiveServer(idle) as server:
        rt: Runtime = server.server.config.app.state.rt
        watch = rt.log_watch
        client = httpx.Client(base_url=f"{server.url}/api/v1", headers=AUTH, timeout=60)
        pkg = client.post("/packages/", json={"name": "idle", "command": ["true"]}).json()
        jobs = [
            client.post("/jobs/", json={"package_id": pkg["data"]["id"]}).json()["data"]["id"]
            for _ in range(FOLLOWERS)
        ]
        with ThreadPoolExecutor(FOLLOWERS) as pool:
            followed = [pool.submit(_follow, client, job_id) for job_id in jobs]
            deadline = time.monotonic() + 20
            while watch.followed < FOLLOWERS:
                assert time.monotonic() < deadline, "the followers did not all start"
                time.sleep(0.05)

            statements = _Counter()
            event.listen(rt.db.engine, "before_cursor_execute", statements)
            polls, ticks = watch.polls, watch.ticks
            time.sleep(2.0)
            polls, ticks = watch.polls - polls, watch.ticks - ticks
            seen = statements.count
            event.remove(rt.db.engine, "before_cursor_execute", statements)

            assert watch.loops_started == 1
            assert ticks >= 4  # 0.25 s apart
            assert polls == ticks
            # One statement (and, on SQLite, its transaction's BEGIN) per tick, where a
            # poll per follower would be twenty.
            assert seen <= 2 * ticks + 2, (seen, ticks)

            for job_id in jobs:
                assert client.post(f"/jobs/{job_id}/cancel/").status_code == 200
            for future in followed:
                ended = future.result(timeout=30)
                assert [e["event"] for e in ended] == ["end"]
                assert ended[0]["data"] == {"status": "cancelled", "exit_code": None, "attempt": 0}
        deadline = time.monotonic() + 5
        while watch.running:
            assert time.monotonic() < deadline, "the watcher runs on with nobody following"
            time.sleep(0.05)
        assert watch.followed == 0
        client.close()


class _Counter:
    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> None:
        with self._lock:
            self.count += 1


def test_a_follower_that_leaves_is_let_go_and_the_watcher_stops(live_server: LiveServer) -> None:
    rt: Runtime = live_server.server.config.app.state.rt
    watch = rt.log_watch
    with httpx.Client(base_url=f"{live_server.url}/api/v1", headers=AUTH, timeout=60) as api:
        job_id = _job(api, "slow", "import time; print('up', flush=True); time.sleep(30)")
        with api.stream("GET", f"/jobs/{job_id}/log/", headers=SSE) as response:
            lines = response.iter_lines()
            while "up" not in next(lines):
                pass
            assert watch.followed == 1
        deadline = time.monotonic() + 10
        while watch.running or watch.followed:
            assert time.monotonic() < deadline, "the follower that left is still followed"
            time.sleep(0.05)
        assert api.post(f"/jobs/{job_id}/cancel/").status_code == 200
