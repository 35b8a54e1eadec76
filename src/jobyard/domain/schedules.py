"""Schedules as pure rules: when a schedule fires (a cron expression in a named time zone, or
a fixed interval), and what a scheduler does with fire times it finds already past.

Cron expressions are `cronsim`'s: five fields (minute to day of week), or six with seconds
first (`*/10 * * * * *`); in a time zone with daylight saving time a five-field expression
fires as Debian's cron does (a time skipped by the clock change fires once, just after it).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from jobyard.domain.models import JobOptions
from jobyard.errors import ValidationFailed

MAX_CRON_LENGTH = 200
MIN_INTERVAL_SECONDS = 1
MAX_INTERVAL_SECONDS = 366 * 24 * 3600
MAX_ZONE_LENGTH = 64


class Misfire(enum.StrEnum):
    """What a scheduler does with a fire time it finds past its grace (after downtime)."""

    SKIP = "skip"  # missed fire times launch nothing; the schedule waits for its next one
    RUN_ONCE = "run_once"  # one job for all of them (at the latest), then on as usual


class FireOutcome(enum.StrEnum):
    """What became of one fire time."""

    LAUNCHED = "launched"
    SKIPPED_RUNNING = "skipped_running"  # the previous job had not ended
    REFUSED = "refused"  # the launch was refused (its message is kept)


def zone(name: str) -> ZoneInfo:
    """A named (IANA) time zone; anything else is a 400 naming it."""
    if not name or len(name) > MAX_ZONE_LENGTH or name.startswith(("/", ".")) or ".." in name:
        raise ValidationFailed(f"unknown time zone {name!r}", field="timezone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationFailed(
            f"unknown time zone {name!r}: expected an IANA name such as Europe/Paris or UTC",
            field="timezone",
        ) from None


@dataclass(frozen=True)
class Timing:
    """When a schedule fires: `cron` in `timezone`, or every `interval_seconds` counted from
    `anchor` (exactly one of the two)."""

    cron: str | None
    interval_seconds: int | None
    timezone: str
    anchor: datetime

    def check(self) -> None:
        """Refuse a timing that cannot fire, naming the field at fault."""
        if (self.cron is None) == (self.interval_seconds is None):
            raise ValidationFailed("give either cron or interval (seconds), not both or neither")
        zone(self.timezone)
        if self.cron is not None:
            _cron(self.cron, self.anchor)
        elif not MIN_INTERVAL_SECONDS <= (self.interval_seconds or 0) <= MAX_INTERVAL_SECONDS:
            raise ValidationFailed(
                f"interval must be {MIN_INTERVAL_SECONDS} to {MAX_INTERVAL_SECONDS} seconds",
                field="interval",
            )

    def after(self, moment: datetime) -> datetime:
        """The first fire time strictly after `moment` (UTC)."""
        if self.interval_seconds is not None:
            step = self.interval_seconds
            passed = (moment - self.anchor).total_seconds()
            count = max(0, math.floor(passed / step) + 1)
            return self.anchor + timedelta(seconds=count * step)
        local = moment.astimezone(zone(self.timezone))
        return _first(CronSim(self.cron or "", local))

    def latest_until(self, moment: datetime) -> datetime:
        """The last fire time at or before `moment` (UTC); before the first, the anchor."""
        if self.interval_seconds is not None:
            passed = (moment - self.anchor).total_seconds()
            count = max(0, math.floor(passed / self.interval_seconds))
            return self.anchor + timedelta(seconds=count * self.interval_seconds)
        local = (moment + timedelta(microseconds=1)).astimezone(zone(self.timezone))
        return _first(CronSim(self.cron or "", local, reverse=True))


def _cron(expression: str, moment: datetime) -> CronSim:
    if len(expression) > MAX_CRON_LENGTH:
        raise ValidationFailed(f"cron is longer than {MAX_CRON_LENGTH} characters", field="cron")
    try:
        found = CronSim(expression, moment)
        next(found)
    except (CronSimError, StopIteration, ValueError, OverflowError) as error:
        raise ValidationFailed(
            f"invalid cron {expression!r}: {error or 'it never fires'} (five fields, minute to "
            "day of week, or six with seconds first)",
            field="cron",
        ) from None
    return found


def _first(times: CronSim) -> datetime:
    return next(times).astimezone(UTC)


@dataclass(frozen=True)
class Schedule:
    """A package launched on a timing, with the launch's device, config, options (tags
    among them), context and priority."""

    id: int
    tenant_id: int
    name: str
    package_id: int
    device_id: int | None
    config_id: int | None
    options: JobOptions
    context: Mapping[str, Any]
    priority: int
    timing: Timing
    misfire: Misfire
    skip_if_running: bool
    paused: bool
    next_run: datetime | None  # None while paused
    user_id: int
    created: datetime
    updated: datetime
    last_fire_time: datetime | None = None
    last_job_id: int | None = None
    description: str = ""


@dataclass(frozen=True)
class Fire:
    """One fire time and what became of it."""

    schedule_id: int
    fire_time: datetime
    outcome: FireOutcome
    job_id: int | None
    at: datetime
    note: str = ""
    job_status: str | None = field(default=None)  # the job's status now, when read with it


@dataclass(frozen=True)
class Plan:
    """What a due schedule does now: launch for `fire_time` (None: nothing), then wait for
    `next_run`."""

    fire_time: datetime | None
    next_run: datetime


def plan(
    timing: Timing, *, next_run: datetime, now: datetime, misfire: Misfire, grace: float
) -> Plan:
    """A due schedule (`next_run` ≤ `now`): its latest fire time until now fires when it is at
    most `grace` seconds late; later than that it was missed (downtime), and fires only under
    `run_once`. Earlier missed fire times never fire: one job stands for them all."""
    latest = max(next_run, timing.latest_until(now))
    late = (now - latest).total_seconds()
    fires = late <= grace or misfire is Misfire.RUN_ONCE
    return Plan(latest if fires else None, timing.after(latest))
