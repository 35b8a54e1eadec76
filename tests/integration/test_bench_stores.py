"""The peers' bench flushes Redis and drops PostgreSQL's `public` schema: it gets a Redis
server and a database of its own, and both are gone afterwards."""

from __future__ import annotations

import shutil
import socket

import psycopg
import pytest
from benchmarks import deploy, peers


def _listening(url: str) -> bool:
    host, port = url.removeprefix("redis://").split("/")[0].split(":")
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) == 0


# The other test workers create and drop databases of their own meanwhile (a session's, a
# chaos fleet's): only the rest must be as they were.
TESTS_OWN = ("jobyard_test_", "jobyard_chaos_")


def _databases() -> set[str]:
    with psycopg.connect(deploy.POSTGRES_URL) as conn:
        names = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
    return {name for name in names if not name.startswith(TESTS_OWN)}


@pytest.mark.postgres
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server")
def test_the_peers_get_stores_of_their_own_and_leave_nothing(postgres_database: str) -> None:
    before = _databases()
    with peers.disposable_stores() as stores:
        redis_url, postgres_url = stores["BENCH_REDIS_URL"], stores["BENCH_PG_DSN"]
        assert not redis_url.startswith("redis://127.0.0.1:6379")
        assert _listening(redis_url)
        name = postgres_url.rsplit("/", 1)[1]
        assert name.startswith("jobyard_bench_")
        assert name not in before
        with psycopg.connect(postgres_url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (name,)
    assert not _listening(redis_url)
    assert _databases() == before
