"""Taking SQLite's write lock in short steps (plugin/store/sqlite.py), in the store and the queue."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from plugin.jobs import make_huey
from plugin.store.sqlite import begin_write, configure_connection


def connect(path, busy_timeout_ms: int = 10_000) -> sqlite3.Connection:
    connection = sqlite3.connect(path, check_same_thread=False)
    configure_connection(connection)
    connection.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    return connection


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "locks.db"
    with connect(path) as setup:
        setup.execute("CREATE TABLE rows (n INTEGER)")
    return path


def busy_timeout(connection: sqlite3.Connection) -> int:
    return connection.execute("PRAGMA busy_timeout").fetchone()[0]


def test_a_writer_waits_for_another_writer_and_gets_the_lock_once_it_commits(database):
    holder, waiter = connect(database), connect(database)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO rows VALUES (1)")
    started = threading.Event()

    def write() -> None:
        started.set()
        begin_write(waiter)
        waiter.execute("INSERT INTO rows VALUES (2)")
        waiter.commit()

    writer = threading.Thread(target=write)
    writer.start()
    started.wait()
    time.sleep(0.05)  # the waiter is now trying
    assert writer.is_alive()
    holder.commit()
    writer.join(timeout=5)
    assert not writer.is_alive()
    assert sorted(n for (n,) in holder.execute("SELECT n FROM rows")) == [1, 2]
    assert busy_timeout(waiter) == 10_000  # SQLite's own wait is back for every other statement


def test_a_writer_gives_up_after_its_busy_timeout_and_keeps_that_timeout(database):
    holder, waiter = connect(database), connect(database, busy_timeout_ms=150)
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        begin_write(waiter)
    assert not waiter.in_transaction
    assert busy_timeout(waiter) == 150
    holder.rollback()
    begin_write(waiter)  # free again: taken at once
    assert waiter.in_transaction
    waiter.rollback()


def test_an_error_other_than_a_busy_lock_is_raised_at_once(database):
    connection = connect(database)
    connection.execute("BEGIN")
    with pytest.raises(sqlite3.OperationalError, match="within a transaction"):
        begin_write(connection)
    connection.rollback()
    assert busy_timeout(connection) == 10_000


def test_an_enqueue_waits_while_another_process_holds_the_queues_lock(tmp_path):
    path = tmp_path / "queue.db"
    huey = make_huey(f"sqlite:///{path}")
    task = huey.task(name="process_event")(lambda event_id: None)
    worker_side = connect(path)
    worker_side.execute("BEGIN IMMEDIATE")  # as a worker's dequeue holds it
    enqueuer = threading.Thread(target=task, args=(7,))
    enqueuer.start()
    time.sleep(0.05)
    assert enqueuer.is_alive()
    worker_side.rollback()
    enqueuer.join(timeout=5)
    assert not enqueuer.is_alive()
    assert huey.dequeue().args == (7,)
