"""Retention as pure rules: how long finished jobs and their output are kept, per customer
with a package's own values over the customer's.

A finished job goes once it is older than `keep_days` (counted from its end) or is beyond
the `keep_last` newest finished jobs of its package, whichever comes first; its runs, output,
events and results go with it. `output_days` removes only the output (the job, its runs and
events stay), so output may be kept shorter than the job. None keeps for ever.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from jobyard.errors import ValidationFailed

MAX_DAYS = 100 * 366
MAX_KEEP_LAST = 10_000_000


@dataclass(frozen=True)
class Retention:
    keep_days: int | None = None
    keep_last: int | None = None
    output_days: int | None = None

    def over(self, default: Retention) -> Retention:
        """This policy, each value not set taken from `default` (a package over its customer)."""
        own = {f.name: getattr(self, f.name) for f in fields(self)}
        return Retention(
            **{
                name: getattr(default, name) if value is None else value
                for name, value in own.items()
            }
        )

    @property
    def keeps_everything(self) -> bool:
        return self == KEEP_ALL

    def check(self) -> None:
        """Refuse values out of range, naming the field."""
        for name, high in (("keep_days", MAX_DAYS), ("output_days", MAX_DAYS)):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= high:
                raise ValidationFailed(f"{name} must be from 1 to {high} (or null)", field=name)
        if self.keep_last is not None and not 0 <= self.keep_last <= MAX_KEEP_LAST:
            raise ValidationFailed(
                f"keep_last must be from 0 to {MAX_KEEP_LAST} (or null)", field="keep_last"
            )


KEEP_ALL = Retention()


@dataclass(frozen=True)
class Swept:
    """What one sweep deleted (or, for a dry run, would delete): finished jobs, runs whose
    output went, expired idempotency keys."""

    jobs: int = 0
    outputs: int = 0
    keys: int = 0

    def __add__(self, other: Swept) -> Swept:
        return Swept(self.jobs + other.jobs, self.outputs + other.outputs, self.keys + other.keys)

    @property
    def anything(self) -> bool:
        return bool(self.jobs or self.outputs or self.keys)
