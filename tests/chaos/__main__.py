"""`make chaos`: the long chaos run (tests/chaos/fleet.py) against the PostgreSQL named by
JOBYARD_TEST_POSTGRES_URL (without it, the tests' default server). CHAOS_JOBS, CHAOS_WORKERS,
CHAOS_SLOTS, CHAOS_LEASE, CHAOS_FAULTS and CHAOS_SEED change its size; it prints what held and
exits 1 on any violation."""

from __future__ import annotations

import os
import sys

from tests.chaos.fleet import ChaosConfig, run_chaos
from tests.conftest import DEFAULT_POSTGRES_URL


def main() -> int:
    defaults = ChaosConfig()
    config = ChaosConfig(
        jobs=int(os.environ.get("CHAOS_JOBS", defaults.jobs)),
        workers=int(os.environ.get("CHAOS_WORKERS", defaults.workers)),
        slots=int(os.environ.get("CHAOS_SLOTS", defaults.slots)),
        lease=float(os.environ.get("CHAOS_LEASE", defaults.lease)),
        faults=int(os.environ.get("CHAOS_FAULTS", defaults.faults)),
        seed=int(os.environ.get("CHAOS_SEED", defaults.seed)),
    )
    url = os.environ.get("JOBYARD_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    report = run_chaos(config, url)
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
