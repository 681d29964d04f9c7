"""SQLite's connection settings, and taking its write lock without SQLite's coarse waits.

Used by the store's database and by the embedded queue (plugin/jobs.py), the two SQLite files a webhook
writes to."""

from __future__ import annotations

import sqlite3
import time

# How long a writer waits for another's lock before the database counts as unavailable.
BUSY_TIMEOUT_MS = 10_000
# The first pause between two tries for the write lock, doubled after each try up to the longest.
FIRST_PAUSE_S = 0.0001
LONGEST_PAUSE_S = 0.002


def configure_connection(dbapi_connection: sqlite3.Connection, _record: object = None) -> None:
    """WAL lets the web process and the worker read while the other writes; the busy timeout makes a writer
    wait for the lock instead of failing at once; synchronous=NORMAL skips the fsync of each commit, which
    in WAL mode keeps the file intact through a crash (a power cut may lose the last commits)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def begin_write(dbapi_connection: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> None:
    """Begin a transaction that holds the write lock, waiting for another writer as long as the
    connection's busy timeout allows; raises sqlite3.OperationalError ("database is locked") after that.

    Why not leave the wait to SQLite: its busy handler sleeps 1, 2, 5, 10, 15, 20, 25... ms between tries and
    does not notice the lock being freed while it sleeps. Writes here take a fraction of a millisecond, so
    under a burst of webhook deliveries (the web process and the worker's threads all writing) those sleeps,
    not the work, made the slowest answers. Here SQLite's handler is off while we try, and the
    pause between tries starts at 0.1 ms."""
    (timeout_ms,) = dbapi_connection.execute("PRAGMA busy_timeout").fetchone()
    dbapi_connection.execute("PRAGMA busy_timeout=0")
    try:
        deadline = time.monotonic() + timeout_ms / 1000
        pause = FIRST_PAUSE_S
        while True:
            try:
                dbapi_connection.execute(begin)
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE_S)
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout={int(timeout_ms)}")


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # raised by the module itself rather than by SQLite
        return "locked" in str(exc)
    return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
