"""When schedules fire: cron in a named time zone, fixed intervals, and what a scheduler does
with fire times it finds past (the misfire policy)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobyard.domain.schedules import Misfire, Timing, plan
from jobyard.errors import ValidationFailed

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def cron(expression: str, zone: str = "UTC") -> Timing:
    return Timing(cron=expression, interval_seconds=None, timezone=zone, anchor=T0)


def every(seconds: int) -> Timing:
    return Timing(cron=None, interval_seconds=seconds, timezone="UTC", anchor=T0)


def test_a_cron_fires_in_its_time_zone_across_a_clock_change() -> None:
    nine_in_paris = cron("0 9 * * *", "Europe/Paris")
    before_change = nine_in_paris.after(datetime(2026, 3, 28, 12, tzinfo=UTC))
    after_change = nine_in_paris.after(before_change)
    assert before_change == datetime(2026, 3, 29, 7, tzinfo=UTC)  # CEST: UTC+2
    assert after_change == datetime(2026, 3, 30, 7, tzinfo=UTC)
    assert nine_in_paris.after(datetime(2026, 3, 1, tzinfo=UTC)) == datetime(
        2026, 3, 1, 8, tzinfo=UTC
    )  # CET: UTC+1


def test_six_fields_count_seconds_and_fire_strictly_after() -> None:
    each_second = cron("* * * * * *")
    assert each_second.after(T0) == T0 + timedelta(seconds=1)
    assert each_second.latest_until(T0 + timedelta(seconds=5, milliseconds=300)) == T0 + timedelta(
        seconds=5
    )
    assert cron("*/5 * * * *").latest_until(T0 + timedelta(minutes=7)) == T0 + timedelta(minutes=5)


def test_an_interval_counts_from_its_anchor() -> None:
    assert every(60).after(T0) == T0 + timedelta(seconds=60)
    assert every(60).after(T0 + timedelta(seconds=61)) == T0 + timedelta(seconds=120)
    assert every(60).latest_until(T0 + timedelta(seconds=179)) == T0 + timedelta(seconds=120)


def test_a_fire_time_on_time_fires_whatever_the_policy() -> None:
    for misfire in Misfire:
        due = plan(every(10), next_run=T0, now=T0 + timedelta(seconds=2), misfire=misfire, grace=5)
        assert due.fire_time == T0
        assert due.next_run == T0 + timedelta(seconds=10)


def test_after_downtime_skip_launches_nothing_and_run_once_launches_one() -> None:
    timing = cron("*/5 * * * *")
    now = T0 + timedelta(minutes=12)  # missed 12:00, 12:05 and 12:10 (two minutes late)
    skipped = plan(timing, next_run=T0, now=now, misfire=Misfire.SKIP, grace=60)
    caught_up = plan(timing, next_run=T0, now=now, misfire=Misfire.RUN_ONCE, grace=60)
    assert skipped.fire_time is None
    assert caught_up.fire_time == T0 + timedelta(minutes=10)  # one job, for the latest
    assert skipped.next_run == caught_up.next_run == T0 + timedelta(minutes=15)


@pytest.mark.parametrize(
    ("timing", "field"),
    [
        (cron("61 * * * *"), "cron"),
        (cron("* * *"), "cron"),
        (cron("0 0 31 2 *"), "cron"),
        (cron("0 9 * * *", "Mars/Olympus"), "timezone"),
        (cron("0 9 * * *", "../../etc/passwd"), "timezone"),
        (every(0), "interval"),
    ],
)
def test_a_timing_that_cannot_fire_is_refused_naming_its_field(timing: Timing, field: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        timing.check()
    assert refused.value.field == field


def test_cron_and_interval_together_or_neither_are_refused() -> None:
    for timing in (
        Timing(cron="* * * * *", interval_seconds=5, timezone="UTC", anchor=T0),
        Timing(cron=None, interval_seconds=None, timezone="UTC", anchor=T0),
    ):
        with pytest.raises(ValidationFailed, match="either cron or interval"):
            timing.check()
