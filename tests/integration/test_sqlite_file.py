"""The SQLite file is made private without ever being opened by jobyard itself while its
connections are open: closing any descriptor of a file drops every POSIX lock the process
holds on it, SQLite's shared lock included, and another process's last connection then
checkpoints and removes the WAL under the server's (a bench run saw SQLITE_IOERR_SHORT_READ
on new connections, and a file can be corrupted that way)."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from jobyard.store import migrate
from jobyard.store.db import Database

# Another process opens the database, reads, and closes: the way `jobyard users ...`, a
# second worker or a backup script does.
ANOTHER_PROCESS = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("SELECT count(*) FROM jobs").fetchall()
conn.close()
"""


def test_a_second_database_object_keeps_the_servers_locks(tmp_path: Path) -> None:
    path = tmp_path / "jobyard.db"
    url = f"sqlite:///{path}"
    server = Database(url)
    migrate.upgrade(server)
    with server.read() as conn:  # a pooled connection stays open, holding its shared lock
        conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar_one()
    wal = Path(f"{path}-wal")
    assert wal.exists()

    heartbeat = server.dedicated()  # as the lease heartbeat's own connection is made
    subprocess.run([sys.executable, "-c", ANOTHER_PROCESS, str(path)], check=True)

    assert wal.exists(), "another process's last close removed the WAL of a live server"
    with server.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar_one() == 0
    heartbeat.dispose()
    server.dispose()


def test_a_new_database_file_is_private_and_a_loose_one_is_tightened(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.db"
    Database(f"sqlite:///{fresh}").dispose()
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600

    loose = tmp_path / "loose.db"
    sqlite3.connect(loose).close()
    loose.chmod(0o644)
    Database(f"sqlite:///{loose}").dispose()
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600
