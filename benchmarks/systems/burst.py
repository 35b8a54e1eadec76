"""What one burst gives, for every system alike: the client's clock before its first enqueue
and what the system recorded of each job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class BurstFailed(Exception):
    """A job is missing, or ended other than with exit code 0: the burst measured nothing."""


@dataclass(frozen=True)
class Burst:
    began: float  # the client's clock (epoch seconds) just before the first enqueue
    ends: tuple[float, ...]  # each job's end, from the system's own records

    @classmethod
    def checked(cls, began: float, jobs: int, results: Sequence[Mapping[str, Any] | None]) -> Burst:
        """A burst from what `jobs` jobs recorded (`end`, `exit_code`), once all are there
        and all exited 0."""
        ended = [r for r in results if r is not None and r.get("exit_code") == 0]
        if len(results) != jobs or len(ended) != jobs:
            raise BurstFailed(f"{len(ended)} of {jobs} jobs present with exit code 0")
        return cls(began, tuple(float(r["end"]) for r in ended))

    @property
    def jobs_per_second(self) -> float:
        return len(self.ends) / (max(self.ends) - self.began)
