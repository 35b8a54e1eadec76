"""The garbage collector of a long-running server process.

Once the app is built, the process holds a few hundred thousand objects that live as long
as it does (modules, routes, models, SQLAlchemy's metadata), and CPython's default
thresholds have its full collections walk them all again and again while a request
allocates: a bulk launch of 10,000 jobs spent about a third of its time in collections
(0.64 s, 0.41 s with this). Measured alone, freezing them and collecting the older
generations less often each bought most of it.
"""

from __future__ import annotations

import gc

YOUNG_OBJECTS = 700  # CPython's own default: young garbage is still collected promptly
MIDDLE_COLLECTIONS = 50  # young collections between middle ones (default 10)
OLD_COLLECTIONS = 100  # middle collections between full ones (default 10)


def settle_garbage_collector() -> None:
    """Call once the process's long-lived objects exist, before it starts serving."""
    gc.collect()
    gc.freeze()  # what exists now is never collected; full collections skip it
    gc.set_threshold(YOUNG_OBJECTS, MIDDLE_COLLECTIONS, OLD_COLLECTIONS)
