"""A chaos run against a PostgreSQL fleet: one API server and a few `jobyard worker`s, all real
processes connected through a proxy that can break the database for them, while a client
launches jobs one by one and in bulk and faults are injected on a seeded schedule. At the end
it checks, from the database, the API and the jobs' own evidence, what the fleet promises:

- every acknowledged launch exists, and none is stuck (every job ends);
- no job ran twice at once: each job holds a lock of its own while it runs, and a second
  copy that finds it taken leaves a mark (copies the database cannot see count too);
- no job is lost, no completed run lacks its output, no run is lost on a worker that no
  fault touched;
- no job process is left behind, no dead worker is listed as live, no launch answered 500
  (503 with Retry-After is what an outage answers, and the client tries again).

`python -m tests.chaos` (`make chaos`) is the long run; `test_chaos_short.py` a short one.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa

from jobyard.store import tables
from jobyard.store.db import Database, normalise_url
from tests.chaos.proxy import Proxy

TOKEN = "chaos-admin-token-0123456789"
SECRET = "chaos-fleet-shared-secret-key"
TERMINAL = {"completed", "completed_with_issues", "failed", "timed_out", "cancelled", "lost"}
FAULTS = (
    "kill_worker",
    "kill_worker_and_spawners",
    "kill_spawner",
    "freeze_worker",
    "freeze_worker_long",
    "terminate_connections",
    "cut_connections",
    "database_outage",
    "restart_api",
)
OUTPUT_LINE = b"chaos-ok"
PAUSE_SECONDS = 0.6  # on average, before each fault
FAULT_SECONDS = 2.6  # a pause and a fault, on average


@dataclass(frozen=True)
class ChaosConfig:
    jobs: int = 5000
    workers: int = 4
    slots: int = 4
    lease: float = 3.0
    faults: int = 200
    seed: int = 1
    bulk: int = 20  # launches per bulk request; every other request launches one job
    outage: float = 4.0

    @property
    def launch_seconds(self) -> float:
        """How long the client launches for: about as long as the faults take (a pause of
        0.6 s on average before each, and 2 s or so that the average fault lasts), so that
        every fault meets running jobs."""
        return max(20.0, self.faults * FAULT_SECONDS)


@dataclass
class Report:
    config: ChaosConfig
    faults: Counter[str] = field(default_factory=Counter)
    violations: dict[str, list[str]] = field(default_factory=dict)
    jobs: int = 0
    runs: int = 0
    seconds: float = 0.0
    answers: Counter[int] = field(default_factory=Counter)

    def violate(self, invariant: str, details: list[str]) -> None:
        self.violations[invariant] = details

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())

    def summary(self) -> str:
        c = self.config
        lines = [
            f"chaos: {self.jobs} jobs, {self.runs} runs, {c.workers} workers x {c.slots} slots, "
            f"{c.lease:g} s lease, seed {c.seed}, {self.seconds:.0f} s",
            "faults: " + ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())),
            "launch answers: " + ", ".join(f"{k} {v}" for k, v in sorted(self.answers.items())),
        ]
        for invariant, details in self.violations.items():
            shown = "; ".join(details[:5]) + (" ..." if len(details) > 5 else "")
            lines.append(f"{invariant}: {len(details)}" + (f" ({shown})" if details else ""))
        return "\n".join(lines)


def job_script(marks: Path) -> list[str]:
    """Each job: note its pid, then hold its job's lock while it prints and sleeps a little
    (0.1-0.9 s); a copy that finds the lock taken marks the job doubled. umask 0: every
    attempt may run as another uid and writes to the same files."""
    m = str(marks)
    return [
        "sh",
        "-c",
        "umask 0; j=$JOBYARD_JOB_ID; "
        f'echo "$$" >> "{m}/$j.pids"; '
        f'flock -n "{m}/$j.lock" sh -c "echo {OUTPUT_LINE.decode()}; sleep 0.$((j % 9 + 1))" '
        f'|| touch "{m}/$j.doubled"',
    ]


class Fleet:
    """The processes of a chaos run, their database (created here, dropped at the end) and
    the proxy between them."""

    def __init__(self, config: ChaosConfig, postgres_url: str, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.marks = workdir / "marks"
        self.marks.mkdir()
        self.marks.chmod(0o1777)
        admin = sa.create_engine(normalise_url(postgres_url), isolation_level="AUTOCOMMIT")
        self._admin = admin
        self.database = f"jobyard_chaos_{secrets.token_hex(6)}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.database}"'))
        url = sa.engine.make_url(normalise_url(postgres_url)).set(database=self.database)
        self.direct_url = url.render_as_string(hide_password=False)
        self.proxy = Proxy.for_url(self.direct_url)
        self.fleet_url = self.proxy.url(self.direct_url)
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.api: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.disturbed: set[int] = set()  # pids of workers a fault touched
        self.started = 0

    # Processes --------------------------------------------------------------------------

    def env(self, name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
        return env | {
            "JOBYARD_DATABASE_URL": self.fleet_url,
            "JOBYARD_DATA_DIR": str(self.workdir / name),
            "JOBYARD_RUNS_DIR": str(self.workdir / "runs"),
            "JOBYARD_ADMIN_TOKEN": TOKEN,
            "JOBYARD_SECRET_KEY": SECRET,
            "JOBYARD_LEASE_SECONDS": str(self.config.lease),
            "JOBYARD_CANCEL_GRACE_SECONDS": "1",
            "JOBYARD_RUN_AS": "server",
            "JOBYARD_DB_WAIT_SECONDS": "120",
        }

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "jobyard", *args],
            env=self.env(name),
            stdout=log,
            stderr=log,
            start_new_session=True,
        )

    def migrate(self) -> None:
        env = self.env("migrate") | {"JOBYARD_DATABASE_URL": self.direct_url}
        subprocess.run(
            [sys.executable, "-m", "jobyard", "db", "upgrade"],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start_api(self) -> None:
        self.api = self._spawn(
            ["serve", "--workers", "0", "--port", str(self.port), "--log-level", "warning"],
            "api",
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError("the chaos API server did not start")

    def start_worker(self, index: int) -> None:
        args = ["worker", "--slots", str(self.config.slots), "--log-level", "warning"]
        proc = self._spawn(args, f"worker{index}")
        if index < len(self.workers):
            self.workers[index] = proc
        else:
            self.workers.append(proc)
        self.started += 1

    def spawners(self, index: int) -> list[int]:
        return _children(self.workers[index].pid)

    def stop(self) -> None:
        for proc in [*self.workers, self.api]:
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGCONT)
                proc.terminate()
        for proc in [*self.workers, self.api]:
            if proc is not None:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)

    def close(self) -> None:
        self.stop()
        for pid in _job_processes(self.marks):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self.proxy.close()
        with self._admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
        self._admin.dispose()

    def terminate_backends(self) -> None:
        with self._admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": self.database},
            )


class Launcher(threading.Thread):
    """Launches `total` jobs over `seconds`, alternating single and bulk launches, and keeps
    the ids of every launch the API acknowledged; refused or unanswered ones are tried
    again (an unanswered launch may have been accepted: such a job is simply not counted)."""

    def __init__(self, fleet: Fleet, package_id: str, total: int, seconds: float) -> None:
        super().__init__(name="chaos-launcher", daemon=True)
        self.fleet, self.package_id = fleet, package_id
        self.total, self.seconds = total, seconds
        self.acknowledged: list[str] = []
        self.answers: Counter[int] = Counter()
        self.server_errors: list[str] = []

    def run(self) -> None:
        start = time.monotonic()
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=self.fleet.base, headers=headers, timeout=15) as client:
            single = True
            while len(self.acknowledged) < self.total:
                count = (
                    1
                    if single
                    else min(self.fleet.config.bulk, self.total - len(self.acknowledged))
                )
                self._launch(client, count)
                single = not single
                due = start + self.seconds * len(self.acknowledged) / self.total
                time.sleep(max(0.0, due - time.monotonic()))

    def _launch(self, client: httpx.Client, count: int) -> None:
        body: dict[str, object]
        if count == 1:
            path, body = "/api/v1/jobs/", {"package_id": self.package_id}
        else:
            path = "/api/v1/jobs/?bulk=launch"
            body = {"jobs": [{"package_id": self.package_id}] * count}
        while True:
            try:
                answer = client.post(path, json=body)
            except httpx.HTTPError:
                self.answers[0] += 1
                time.sleep(0.2)
                continue
            self.answers[answer.status_code] += 1
            if answer.status_code == 200:
                data = answer.json()["data"]
                self.acknowledged += [j["id"] for j in data] if count > 1 else [data["id"]]
                return
            if answer.status_code >= 500 and answer.status_code != 503:
                self.server_errors.append(f"{answer.status_code}: {answer.text[:120]}")
            time.sleep(float(answer.headers.get("retry-after", "0.2")) / 10)


class Chaos:
    """Injects the faults, on a schedule drawn from the seed."""

    def __init__(self, fleet: Fleet, report: Report) -> None:
        self.fleet, self.report = fleet, report
        self.random = random.Random(fleet.config.seed)

    def run(self) -> None:
        config = self.fleet.config
        kinds = list(FAULTS)
        self.random.shuffle(kinds)
        schedule = kinds + [self.random.choice(FAULTS) for _ in range(config.faults - len(kinds))]
        for kind in schedule[: config.faults]:
            time.sleep(self.random.uniform(0.3, 1.7) * PAUSE_SECONDS)
            self.inject(kind)

    def inject(self, kind: str) -> None:
        fleet, lease = self.fleet, self.fleet.config.lease
        index = self.random.randrange(len(fleet.workers))
        worker = fleet.workers[index]
        self.report.faults[kind] += 1
        if kind in {"kill_worker", "kill_worker_and_spawners"}:
            victims = [worker.pid] + (fleet.spawners(index) if kind != "kill_worker" else [])
            for pid in victims:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            worker.wait(10)
            fleet.disturbed.add(worker.pid)
            time.sleep(self.random.uniform(0.0, 1.0))
            fleet.start_worker(index)
        elif kind == "kill_spawner":
            spawners = fleet.spawners(index)
            if spawners:
                os.kill(self.random.choice(spawners), signal.SIGKILL)
                fleet.disturbed.add(worker.pid)
        elif kind in {"freeze_worker", "freeze_worker_long"}:
            fleet.disturbed.add(worker.pid)
            os.kill(worker.pid, signal.SIGSTOP)
            # long: past PostgreSQL's limit on a session idle in a transaction (10 s)
            time.sleep(lease * 1.5 if kind == "freeze_worker" else 11.0)
            os.kill(worker.pid, signal.SIGCONT)
        elif kind == "terminate_connections":
            fleet.terminate_backends()
        elif kind == "cut_connections":
            fleet.proxy.cut()
        elif kind == "database_outage":
            fleet.proxy.outage(fleet.config.outage)
            time.sleep(fleet.config.outage)
        elif kind == "restart_api":
            assert fleet.api is not None
            fleet.api.kill()
            fleet.api.wait(10)
            fleet.start_api()


def run_chaos(config: ChaosConfig, postgres_url: str, log: Callable[[str], None] = print) -> Report:
    """One whole chaos run; its report says what held and what did not."""
    report = Report(config)
    began = time.monotonic()
    with _workdir() as workdir:
        fleet = Fleet(config, postgres_url, workdir)
        try:
            fleet.migrate()
            fleet.start_api()
            for index in range(config.workers):
                fleet.start_worker(index)
            package_id = _create_package(fleet)
            launcher = Launcher(fleet, package_id, config.jobs, config.launch_seconds)
            launcher.start()
            log(f"chaos: launching {config.jobs} jobs; {config.faults} faults (seed {config.seed})")
            Chaos(fleet, report).run()
            launcher.join(config.launch_seconds + 300)
            _settle(fleet, launcher.acknowledged, deadline=120 + config.jobs / 10)
            _check(fleet, launcher, report)
        finally:
            report.seconds = time.monotonic() - began
            fleet.close()
    return report


def _create_package(fleet: Fleet) -> str:
    body = {"name": "chaos", "command": job_script(fleet.marks), "max_attempts": 10}
    answer = httpx.post(
        f"{fleet.base}/api/v1/packages/",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    answer.raise_for_status()
    package_id: str = answer.json()["data"]["id"]
    return package_id


def _settle(fleet: Fleet, acknowledged: list[str], deadline: float) -> None:
    """Wait until every acknowledged job has ended (or the deadline passes)."""
    until = time.monotonic() + deadline
    wanted = {int(i) for i in acknowledged}
    db = Database(fleet.direct_url)
    try:
        while time.monotonic() < until:
            with db.read() as conn:
                open_ = conn.execute(
                    sa.select(sa.func.count()).where(
                        tables.jobs.c.status.not_in(sorted(TERMINAL)),
                        tables.jobs.c.id.in_(wanted),
                    )
                ).scalar_one()
            if not open_:
                return
            time.sleep(1.0)
    finally:
        db.dispose()


def _check(fleet: Fleet, launcher: Launcher, report: Report) -> None:
    time.sleep(fleet.config.lease * 2)  # for the workers list to settle after the last fault
    db = Database(fleet.direct_url)
    try:
        with db.read() as conn:
            jobs = {row.id: row.status for row in conn.execute(sa.select(tables.jobs))}
            runs = list(conn.execute(sa.select(tables.runs)))
            outputs = _outputs(conn)
    finally:
        db.dispose()
    report.jobs, report.runs, report.answers = len(jobs), len(runs), launcher.answers
    acknowledged = [int(i) for i in launcher.acknowledged]
    report.violate("launches_lost", [str(i) for i in acknowledged if i not in jobs])
    report.violate("stuck", [f"{i} {s}" for i, s in jobs.items() if s not in TERMINAL])
    report.violate("lost_jobs", [str(i) for i, s in jobs.items() if s == "lost"])
    report.violate("ran_twice_at_once", sorted(p.stem for p in fleet.marks.glob("*.doubled")))
    report.violate("doubled_in_database", _doubled_runs(runs))
    report.violate("completed_without_output", _without_output(jobs, runs, outputs))
    report.violate("lost_on_undisturbed_workers", _lost_undisturbed(runs, fleet.disturbed))
    report.violate("processes_left", [str(p) for p in _job_processes(fleet.marks)])
    report.violate("dead_workers_listed_live", _dead_listed(fleet))
    report.violate("launches_answered_500", launcher.server_errors)


def _outputs(conn: sa.Connection) -> dict[int, bytes]:
    out = tables.run_output
    found: dict[int, bytes] = {}
    for row in conn.execute(sa.select(out.c.run_id, out.c.data).order_by(out.c.id)):
        found[row.run_id] = found.get(row.run_id, b"") + bytes(row.data)
    return found


def _doubled_runs(runs: list[sa.Row[object]]) -> list[str]:
    """Jobs with two runs of the same attempt, or two runs running at once."""
    attempts = Counter((r.job_id, r.attempt) for r in runs)
    running = Counter(r.job_id for r in runs if r.status == "running")
    return [f"{j} attempt {a}" for (j, a), n in attempts.items() if n > 1] + [
        f"{j} running twice" for j, n in running.items() if n > 1
    ]


def _without_output(
    jobs: dict[int, str], runs: list[sa.Row[object]], outputs: dict[int, bytes]
) -> list[str]:
    completed_runs = [
        r for r in runs if r.status == "completed" and jobs.get(r.job_id) == "completed"
    ]
    return [
        f"job {r.job_id} run {r.id}"
        for r in completed_runs
        if OUTPUT_LINE not in outputs.get(r.id, b"")
    ]


def _lost_undisturbed(runs: list[sa.Row[object]], disturbed: set[int]) -> list[str]:
    lost = []
    for run in runs:
        pid = run.worker.rsplit(":", 1)[-1]
        if run.status == "lost" and pid.isdigit() and int(pid) not in disturbed:
            lost.append(f"run {run.id} of job {run.job_id} on {run.worker}")
    return lost


def _dead_listed(fleet: Fleet) -> list[str]:
    answer = httpx.get(
        f"{fleet.base}/api/v1/workers/",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    answer.raise_for_status()
    listed = answer.json()["data"]
    return [f"{w['name']} (pid {w['pid']})" for w in listed if not _alive(int(w["pid"]))]


def _job_processes(marks: Path) -> list[int]:
    """Processes still running a chaos job (their command line names the marks directory)."""
    found = []
    needle = str(marks).encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if needle in (entry / "cmdline").read_bytes() and _alive(int(entry.name)):
                    found.append(int(entry.name))
    return found


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid and fields[0] != "Z":
                    found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="jobyard-chaos-"))
    path.chmod(0o755)  # jobs of other uids reach the marks directory inside
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
