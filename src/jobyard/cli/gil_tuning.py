"""How often the threads of `jobyard serve` hand the GIL to each other.

The server runs request handlers and its embedded workers' engine in one process. A turn of
the engine gives the GIL up at each database call and must then win it back; a handler
busy in Python (answering a bulk launch of 5,000 jobs takes about 40 ms) keeps it for
CPython's default 5 ms each time. Right after a bulk launch the engine's first turns then
come 50 ms apart while its spawners had nothing to run. At 1 ms they come 8 to 15 ms apart;
a switch costs a few microseconds, and only while threads contend.
"""

from __future__ import annotations

import sys

SWITCH_INTERVAL_SECONDS = 0.001


def share_the_gil_often() -> None:
    """Call once, before the server starts its threads."""
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
