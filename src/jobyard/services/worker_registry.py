"""A worker's place in the fleet: it registers (a row naming its host, pid and slots), beats
(renewing its runs' leases, and learning which runs it lost) and stops."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from jobyard.services.runtime import Runtime, utcnow
from jobyard.store import fleet


def worker_name() -> str:
    """How runs name the process that ran them (the pid also lets a restart on this host
    recognise runs its dead predecessor left)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class WorkerIdentity:
    """A registered worker: its row, and the name its runs carry."""

    id: int | None
    name: str


def register_worker(rt: Runtime, *, slots: int) -> WorkerIdentity:
    now = utcnow()
    name = worker_name()
    with rt.db.transaction() as conn:
        worker_id = fleet.insert_worker(
            conn,
            name=f"{name}:{now.timestamp():.6f}",
            host=socket.gethostname(),
            pid=os.getpid(),
            slots=slots,
            at=now,
        )
    return WorkerIdentity(id=worker_id, name=name)


def heartbeat(
    rt: Runtime, *, worker: WorkerIdentity, run_ids: Sequence[int], draining: bool
) -> set[int]:
    """Say this worker is alive and renew its runs' leases; return the runs it lost (the
    reaper ended them): their processes must be stopped, their results will be refused."""
    now = utcnow()
    until = now + timedelta(seconds=rt.settings.lease_seconds)
    with rt.db.transaction() as conn:
        if worker.id is not None:
            fleet.beat(conn, worker.id, at=now, draining=draining)
        if worker.id is None:
            return set()
        return fleet.renew_leases(conn, worker_id=worker.id, run_ids=run_ids, until=until)


def stop_worker(rt: Runtime, *, worker: WorkerIdentity) -> None:
    if worker.id is not None:
        with rt.db.transaction() as conn:
            fleet.mark_stopped(conn, worker.id, utcnow())
