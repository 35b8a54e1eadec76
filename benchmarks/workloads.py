"""The measurements themselves; each returns plain numbers for `measure.Report`."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks.comparison import percentile
from benchmarks.deploy import AUTH, Deployment


def spawn_limit(count: int, threads: int = 2, *, way: str = "posix_spawn") -> float:
    """How fast this machine starts, reaps and captures `true` from threads (as a worker
    does): the ceiling for end-to-end throughput. `posix_spawn` is the faster way from
    Python (less of it holds the GIL); `subprocess` is how most Python programs do it."""
    spawn_one = _spawn_with_posix_spawn if way == "posix_spawn" else _spawn_with_subprocess

    def spawn_many(n: int) -> None:
        for _ in range(n):
            spawn_one()

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(spawn_many, [count // threads] * threads))
    return count / (time.perf_counter() - started)


def _spawn_with_subprocess() -> None:
    subprocess.run(["true"], capture_output=True, check=True)


TRUE = shutil.which("true") or "/bin/true"


def _spawn_with_posix_spawn() -> None:
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    actions = [(os.POSIX_SPAWN_DUP2, out_write, 1), (os.POSIX_SPAWN_DUP2, err_write, 2)]
    pid = os.posix_spawn(TRUE, ["true"], os.environ, file_actions=actions)
    os.close(out_write)
    os.close(err_write)
    while os.read(out_read, 65536) or os.read(err_read, 65536):
        pass
    os.close(out_read)
    os.close(err_read)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("true failed")


def throughput(dep: Deployment, package_id: str, count: int, *, bulk: bool) -> float:
    """Jobs per second from the first launch to the last job's end (as the peers' harness
    times it: the client is ready before the clock starts; a new one costs about 23 ms)."""
    before = dep.count("completed")
    with dep.client() as api:
        began = datetime.now(UTC)
        if bulk:
            answer = api.post(
                "/jobs/?bulk=launch", json={"jobs": [{"package_id": package_id}] * count}
            )
            answer.raise_for_status()
        else:
            _launch_singly(dep, package_id, count)
    dep.wait_done(before + count)
    return count / (dep.last_finish() - began).total_seconds()


def _launch_singly(dep: Deployment, package_id: str, count: int, threads: int = 4) -> None:
    def launch_some(n: int) -> None:
        with dep.client() as api:
            for _ in range(n):
                api.post("/jobs/", json={"package_id": package_id}).raise_for_status()

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(launch_some, [count // threads] * threads))


# Between idle requests: about as long as an idle start's wait for its job's end.
IDLE_PAUSE_SECONDS = 0.02


def idle_ways_in(url: str, requests: int, pause: float = IDLE_PAUSE_SECONDS) -> list[float]:
    """Seconds from the client's clock before each request to the moment a bare handler
    runs (`bare_app`'s clock), one request at a time with `pause` between: the part of an
    idle launch→start that a request's way in takes on this machine, before any work."""
    ways_in = []
    body = {"package_id": "1"}  # as small as a launch's
    with httpx.Client(base_url=url) as client:
        client.post("/bare/clock/", json=body).raise_for_status()  # connected
        for _ in range(requests):
            time.sleep(pause)
            sent = time.time()
            answer = client.post("/bare/clock/", json=body)
            answer.raise_for_status()
            ways_in.append(float(answer.json()["data"]["at"]) - sent)
    return ways_in


def steady_latency(
    dep: Deployment, package_id: str, per_second: int, seconds: float
) -> dict[str, float]:
    """launch→claim, launch→spawn (its process exists) and launch→finished (ms) at a steady
    launch rate; the launch is the job's `created`, stamped by the server."""
    ids: list[str] = []
    interval = 1.0 / per_second
    with dep.client() as api:
        next_at = time.perf_counter()
        end = next_at + seconds
        while next_at < end:
            ids.append(api.post("/jobs/", json={"package_id": package_id}).json()["data"]["id"])
            next_at += interval
            pause = next_at - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        deadline = time.monotonic() + 60
        jobs = []
        for job_id in ids:
            while True:
                job = api.get(f"/jobs/{job_id}/").json()["data"]
                if job["status"] == "completed" or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            jobs.append(job)
        runs = {
            run["job_id"]: run
            for run in api.get("/runs/", params={"limit": "none"}).json()["data"]
            if run["spawned"]
        }
    stamps = {
        "claim": [(j["created"], j["started"]) for j in jobs if j["started"]],
        "spawn": [(j["created"], runs[j["id"]]["spawned"]) for j in jobs if j["id"] in runs],
        "finish": [(j["created"], j["finished"]) for j in jobs if j["finished"]],
    }
    figures = {}
    for key, pairs in stamps.items():
        delays = [_ms(launched, then) for launched, then in pairs]
        figures[f"{key}_p50"] = statistics.median(delays)
        figures[f"{key}_p99"] = percentile(delays, 0.99)
    return figures


def _ms(earlier: str, later: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds() * 1000


def requests_per_second(
    url: str, request: Callable[[httpx.Client], None], total: int, threads: int = 8
) -> float:
    """Keep-alive clients in threads hammering one endpoint."""

    def hammer(n: int) -> None:
        with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
            for _ in range(n):
                request(client)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(hammer, [total // threads] * threads))
    return total / (time.perf_counter() - started)


TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU time of a process itself, and of its children it has reaped."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0, 0.0
    own = int(fields[11]) + int(fields[12])
    reaped = int(fields[13]) + int(fields[14])
    return own / TICKS_PER_SECOND, reaped / TICKS_PER_SECOND


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def cpu_by_process(server: int) -> dict[str, float]:
    """CPU seconds so far of a server, of its spawner processes, and of the jobs those ran
    (a spawner reaps its jobs, so theirs is its children's time)."""
    spawners = [_cpu_seconds(pid) for pid in _children(server)]
    return {
        "server": _cpu_seconds(server)[0],
        "spawners": sum(own for own, _ in spawners),
        "jobs": sum(reaped for _, reaped in spawners),
    }


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def peak_rss_while(pid: int, done: Callable[[], bool], interval: float = 0.1) -> int:
    peak = 0
    while not done():
        peak = max(peak, rss_kib(pid))
        time.sleep(interval)
    return max(peak, rss_kib(pid))


class Background:
    """Runs a function in a thread; `.done` says whether it finished."""

    def __init__(self, target: Callable[[], object]) -> None:
        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def done(self) -> bool:
        return not self.thread.is_alive()
