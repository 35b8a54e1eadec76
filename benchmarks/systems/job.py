"""The peers' job: `true` as a child process through `subprocess.run` (as most Python
programs start one), with the wall-clock stamps the bench reads back from the peer's own
result store. Standard library only: every peer's worker imports it."""

from __future__ import annotations

import subprocess
import time


def run_true() -> dict[str, float]:
    """Runs `true`; `start` is taken when the job body begins, before the spawn."""
    start = time.time()
    done = subprocess.run(["true"], capture_output=True, check=False)
    return {"start": start, "end": time.time(), "exit_code": done.returncode}
