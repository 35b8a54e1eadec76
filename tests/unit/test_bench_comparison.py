"""The matrix's shared pieces: the steal meter, the rotation of systems, the ratios taken
round by round, each system's best cell, and the check that every job is there; and how a
figure reads in the bench's table."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from benchmarks import matrix
from benchmarks.comparison import Ratios, best_cell, median, rotated
from benchmarks.measure import Figure
from benchmarks.steal import StealMeter, cpu_times
from benchmarks.systems.burst import Burst, BurstFailed

NAN = math.nan


def test_the_steal_is_read_from_the_cpu_line_of_proc_stat() -> None:
    line = "cpu  100 5 50 800 10 1 2 32 7 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"
    assert cpu_times(line) == (1000, 32)  # guest time (7) is in user already
    assert cpu_times("cpu  100 5 50 845\n") == (1000, 0)  # a kernel without the field


def test_the_steal_meter_reads_this_machine() -> None:
    assert 0.0 <= StealMeter().stop() <= 100.0


def test_each_round_starts_one_system_later() -> None:
    systems = ["jobyard", "celery", "rq"]
    assert [rotated(systems, r)[0] for r in range(4)] == ["jobyard", "celery", "rq", "jobyard"]
    assert sorted(rotated(systems, 2)) == sorted(systems)


def test_ratios_are_taken_round_by_round_against_that_rounds_best_peer() -> None:
    ours = [300.0, 200.0, 330.0]
    theirs = [[100.0, 200.0, 110.0], [150.0, 100.0, NAN]]
    ratios = Ratios.by_round(ours, theirs)
    assert ratios.values == (2.0, 1.0, 3.0)
    assert ratios.text() == "2.00x (1.00..3.00)"


def test_a_round_without_a_figure_of_ours_or_any_peer_is_left_out() -> None:
    assert Ratios.by_round([NAN, 100.0], [[50.0, NAN]]).values == ()
    assert Ratios.by_round([NAN], [[50.0]]).text() == "n/a"


def test_a_system_at_its_best_is_its_cell_of_highest_median_in_that_mode() -> None:
    samples = {
        ("celery prefork", 2, "bulk"): [100.0, 120.0, 110.0],
        ("celery threads", 16, "bulk"): [200.0, NAN, 180.0],
        ("celery threads", 64, "single"): [900.0, 900.0, 900.0],
        ("rq fork", 64, "bulk"): [500.0, 500.0, 500.0],
    }
    best = best_cell(samples, ["celery prefork", "celery threads"], "bulk")
    assert best == ("celery threads", 16, "bulk")
    assert median(samples[best]) == 190.0


def test_a_burst_counts_from_the_clients_clock_to_the_last_end() -> None:
    results = [{"end": 10.5, "exit_code": 0}, {"end": 12.0, "exit_code": 0}]
    assert Burst.checked(10.0, 2, results).jobs_per_second == 1.0


@pytest.mark.parametrize(
    "results",
    [
        [{"end": 11.0, "exit_code": 0}],
        [{"end": 11.0, "exit_code": 0}, {"end": 11.0, "exit_code": 1}],
        [{"end": 11.0, "exit_code": 0}, None],
    ],
    ids=["missing", "failed", "no-result"],
)
def test_a_burst_with_a_job_missing_or_failed_measured_nothing(results: list) -> None:
    with pytest.raises(BurstFailed):
        Burst.checked(10.0, 2, results)


def test_the_matrix_sets_jobyards_own_configuration_against_each_rounds_best_peer() -> None:
    every = matrix.configurations(Path("python"), {})
    assert every[0].name == "jobyard SQLite embedded"
    assert {c.spawns_with for c in every if c.system != "jobyard"} == {"subprocess"}
    measured = matrix.Measured(rounds=2)
    for configuration in every:
        for round_index, rate in enumerate((100.0, 200.0)):
            measured.record((configuration.name, 16, "bulk"), round_index, rate)
    measured.record(("Dramatiq processes", 16, "bulk"), 1, 400.0)
    measured.record(("jobyard PostgreSQL workers", 16, "bulk"), 1, 4000.0)  # not the default
    assert measured.against_best_peer(every, 16, "bulk").values == (1.0, 0.5)


def test_a_figure_near_its_goal_reads_closely_enough_to_judge() -> None:
    assert Figure((0.54, 0.56, 0.58)).text("s") == "0.56 s (0.54..0.58)"  # goal 0.5 s: missed
    assert Figure((1_388.94,)).text("jobs/s") == "1,388.9 jobs/s"
