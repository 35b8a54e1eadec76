"""The short chaos run of `make test`: a few hundred jobs on a PostgreSQL fleet of three
workers while every kind of fault strikes at least once (`make chaos` is the long run)."""

from __future__ import annotations

import pytest

from tests.chaos.fleet import FAULTS, ChaosConfig, run_chaos
from tests.conftest import POSTGRES_URL, _postgres_reason

# Kills jobyard processes, whose next start stops what their runs left on this host: alone.
pytestmark = pytest.mark.alone

SHORT = ChaosConfig(jobs=300, workers=3, slots=3, lease=5.0, faults=len(FAULTS) + 4, seed=17)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_short_chaos_run_keeps_every_promise() -> None:
    reason = _postgres_reason()
    if reason:
        pytest.skip(reason)
    report = run_chaos(SHORT, POSTGRES_URL, log=lambda _: None)
    print(report.summary())
    assert set(report.faults) == set(FAULTS)  # every kind struck
    assert report.jobs >= SHORT.jobs
    assert report.ok, report.summary()
