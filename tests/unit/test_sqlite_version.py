"""An SQLite library too old for the schema is refused with a message that names both
versions, before anything is migrated."""

from __future__ import annotations

import pytest

from jobyard.store import sqlite


def test_an_older_sqlite_is_refused_by_name() -> None:
    with pytest.raises(RuntimeError, match=r"SQLite 3\.38\.0 or later is needed; .* has 3\.37\.2"):
        sqlite.check_version((3, 37, 2))


@pytest.mark.parametrize("version", [(3, 38, 0), (3, 45, 1)])
def test_a_recent_sqlite_is_accepted(version: tuple[int, int, int]) -> None:
    sqlite.check_version(version)
