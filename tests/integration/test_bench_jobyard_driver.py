"""jobyard's driver of the matrix against a real `jobyard serve`: every mode's burst is
checked job by job, and idle latency is read from the runs' `spawned` stamps."""

from __future__ import annotations

import time

import pytest
from benchmarks import bare_app, workloads
from benchmarks.systems import jobyard_system


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "sqlite-worker"])
def test_the_driver_measures_each_mode_from_the_servers_own_records(kind: str) -> None:
    with jobyard_system.session(2, kind) as running:
        before = time.time()
        for mode in ("single", jobyard_system.CONCURRENT_SINGLE, "bulk"):
            burst = running.burst(mode, 6)
            assert len(burst.ends) == 6
            assert before < burst.began < min(burst.ends)
            assert burst.jobs_per_second > 0
        starts = running.idle_starts(2)
    assert len(starts) == 2
    assert all(0 < start < 60 for start in starts)


@pytest.mark.slow
def test_an_idle_requests_way_in_is_read_from_a_bare_handlers_clock() -> None:
    with bare_app.served() as url:
        before = time.time()
        ways_in = workloads.idle_ways_in(url, 3, pause=0.01)
    assert len(ways_in) == 3
    assert all(0 < way_in < time.time() - before for way_in in ways_in)
