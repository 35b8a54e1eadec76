"""The same job workload on Celery, RQ, Dramatiq and Procrastinate, through the harness in
`../shared/peers/` (run from there, in its own virtualenv; nothing of it is copied here)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks.measure import Figure, Report, ratio

HARNESS = Path(__file__).resolve().parents[2] / "shared" / "peers"
VENV = Path(os.environ.get("JOBYARD_PEERS_VENV", "/tmp/jobyard-peers-venv"))
PACKAGES = [
    "celery[redis]",
    "redis",
    "rq",
    "dramatiq[redis]",
    "procrastinate",
    "psycopg[binary]",
    "psycopg-pool",
]
LINE = re.compile(r"^(\S+)\s+([\d.]+) jobs/s")


def run(report: Report, jobyard: Callable[[], Figure]) -> None:
    """Run the harness, with jobyard's own throughput measured again just before and just
    after it: the machine drifts (the same commit moved by a tenth within the hour), and
    the bench's first figure is minutes older than the peers'. The lower of the two is
    the one compared."""
    if not HARNESS.exists():
        report.note("peers", f"harness not found at {HARNESS}")
        return
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PACKAGES], check=True)
    env = os.environ | {
        "BENCH_REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"),
        "BENCH_PG_DSN": os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"),
    }
    before = jobyard()
    out = subprocess.run(
        [
            str(python),
            "run_peers.py",
            "--jobs",
            "2000",
            "--runs",
            "3",
            "--serial",
            "100",
            "--workdir",
            str(VENV / "work"),
        ],
        cwd=HARNESS,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    after = jobyard()
    best = 0.0
    for line in out.stdout.splitlines():
        match = LINE.match(line.strip())
        if match:
            rate = float(match.group(2))
            best = max(best, rate) if not match.group(1).startswith("baseline") else best
            report.note(f"peer {match.group(1)}", f"{rate:,.0f} jobs/s")
    for when, figure in (("before", before), ("after", after)):
        report.add(f"SQLite embedded as above, just {when} the peers", figure, "jobs/s")
    if best:
        lower = min(before.median, after.median)
        report.note("jobyard SQLite vs best peer", ratio(lower, best), "≥ 2x")
    else:
        report.note("peers", "the harness printed no figures: " + out.stderr[-300:])
