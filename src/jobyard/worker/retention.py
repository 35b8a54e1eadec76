"""The retention thread: every `JOBYARD_RETENTION_INTERVAL_SECONDS` it runs the sweep
(`services.retention.sweep`), which deletes in small batches with pauses between them and
stops between two batches when the process stops. Any number of processes may run it:
two sweeps that meet delete each row once (a row already gone counts for neither)."""

from __future__ import annotations

import logging
import threading

from jobyard.services import retention
from jobyard.services.runtime import Runtime

logger = logging.getLogger(__name__)


class Retainer:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="jobyard-retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self) -> None:
        while not self._stopped.wait(self.rt.settings.retention_interval_seconds):
            try:
                swept = retention.sweep(self.rt, stop=self._stopped.is_set)
            except Exception:
                logger.exception("retention's sweep failed; trying again at the next interval")
                continue
            if swept.anything:
                logger.info(
                    "retention deleted %d jobs, %d output chunks, %d idempotency keys",
                    swept.jobs,
                    swept.outputs,
                    swept.keys,
                )
