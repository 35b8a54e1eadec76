"""Giving an SQLite file's free pages back to the file system after deletions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine

INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL


def give_back(conn: Connection, pages: int) -> None:
    """Up to `pages` free pages of the file go back (a no-op unless the file was made with
    `auto_vacuum=INCREMENTAL`, see `sqlite.set_pragmas`)."""
    # Each step of the statement frees one page, and Python's sqlite3 steps a statement
    # that has no result columns once, whatever N says: one page per statement, then.
    driver: Any = conn.connection.driver_connection
    free = int(driver.execute("PRAGMA freelist_count").fetchone()[0])
    for _ in range(min(free, pages)):
        driver.execute("PRAGMA incremental_vacuum(1)").close()


def auto_vacuum_mode(conn: Connection) -> int:
    """0 none, 1 full, 2 incremental."""
    return int(conn.exec_driver_sql("PRAGMA auto_vacuum").scalar_one())


def free_pages(conn: Connection) -> int:
    return int(conn.exec_driver_sql("PRAGMA freelist_count").scalar_one())


def make_incremental(engine: Engine) -> int:
    """Turn an existing SQLite file to `auto_vacuum=INCREMENTAL` with a VACUUM (which
    rewrites the whole file: run it with the server stopped); return the mode now."""
    raw = engine.raw_connection()
    try:
        driver: Any = raw.driver_connection  # autocommit: VACUUM runs outside a transaction
        cursor = driver.cursor()
        cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
        cursor.execute("VACUUM")
        mode = int(cursor.execute("PRAGMA auto_vacuum").fetchone()[0])
        cursor.close()
    finally:
        raw.close()
    return mode
