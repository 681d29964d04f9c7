"""A database briefly locked or unavailable: nothing acknowledged is lost, and every answer is a clear one.

The faults are real ones where the engine allows: another connection holding the write lock (SQLite's
BEGIN EXCLUSIVE, PostgreSQL's ACCESS EXCLUSIVE table lock), the PostgreSQL database refusing connections,
the SQLite file's directory gone. A patched store method stands in only where a real fault cannot be timed:
a database that fails and recovers between two statements of one job, and a value the database refuses.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, OperationalError

from plugin.pipeline import MAX_ATTEMPTS
from plugin.store import liveness, utcnow
from plugin.store.models import InboxEvent
from tests.conftest import ATHLETE_ID, event, run_queue
from tests.integration.test_pipeline import CADENCE_STREAMS, age_inbox, count_notes, make_due
from tests.integration.test_webhook import inbox_size

# Long enough that a request or job that did not wait for the lock could not have finished after it.
BRIEF_LOCK_S = 1.0


@pytest.fixture
def env(env, tmp_path):
    """The embedded database in a directory of its own, which an outage can take away."""
    if "BACKSTRIDE_DATABASE_URL" in env:
        return env
    (tmp_path / "data").mkdir()
    return {**env, "BACKSTRIDE_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'backstride.db'}"}


class DatabaseLock:
    """Another connection holding the write lock: BEGIN EXCLUSIVE on SQLite, an ACCESS EXCLUSIVE lock on the
    inbox and the athletes on PostgreSQL (which blocks reads too)."""

    def __init__(self, services) -> None:
        self.engine = services.store.engine
        self.url = services.settings.database_url
        self.connection = None
        self._timer: threading.Timer | None = None

    @property
    def sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def acquire(self) -> None:
        if self.sqlite:
            self.connection = sqlite3.connect(
                self.engine.url.database, isolation_level=None, check_same_thread=False
            )
            self.connection.execute("BEGIN EXCLUSIVE")
        else:
            self.connection = psycopg.connect(self.url)
            self.connection.execute("LOCK TABLE inbox_events, athletes IN ACCESS EXCLUSIVE MODE")

    def release_after(self, seconds: float) -> None:
        self._timer = threading.Timer(seconds, self.release)
        self._timer.start()

    def release(self) -> None:
        if self.connection is not None:
            self.connection.rollback()
            self.connection.close()
            self.connection = None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer.join()
        self.release()


class DatabaseOutage:
    """The app's own database made unavailable, then given back: PostgreSQL refuses connections to it and
    ends the open ones; the SQLite file's directory disappears and the pooled connections are closed."""

    def __init__(self, services) -> None:
        self.engine = services.store.engine
        self.url = services.settings.database_url
        self.down = False

    def start(self) -> None:
        if self.engine.dialect.name == "sqlite":
            self.engine.dispose()
            directory = Path(self.engine.url.database).parent
            directory.rename(directory.with_name(directory.name + "-away"))
        else:
            self._admin(f'ALTER DATABASE "{make_url(self.url).database}" ALLOW_CONNECTIONS false')
            self.end_every_connection()
        self.down = True

    def end_every_connection(self) -> None:
        """What a PostgreSQL restart does to the pool: every open connection ended, new ones welcome."""
        self._admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            make_url(self.url).database,
        )

    def end(self) -> None:
        if not self.down:
            return
        if self.engine.dialect.name == "sqlite":
            directory = Path(self.engine.url.database).parent
            directory.with_name(directory.name + "-away").rename(directory)
        else:
            self._admin(f'ALTER DATABASE "{make_url(self.url).database}" ALLOW_CONNECTIONS true')
        self.down = False

    def _admin(self, statement: str, *params: str) -> None:
        admin = make_url(self.url).set(database="postgres").render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(statement, params or None)


@pytest.fixture
def lock(services):
    held = DatabaseLock(services)
    yield held
    held.close()


@pytest.fixture
def outage(services):
    fault = DatabaseOutage(services)
    yield fault
    fault.end()


def wait_for_locks_briefly(services, ms: int = 200) -> None:
    """Wait at most `ms` for a lock (SQLite's busy timeout, PostgreSQL's lock_timeout), on new connections."""
    engine = services.store.engine

    def shorten(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute(f"PRAGMA busy_timeout={ms}")
        else:
            cursor.execute(f"SET lock_timeout = {ms}")
            dbapi_connection.commit()
        cursor.close()

    sa_event.listen(engine, "connect", shorten)
    engine.dispose()


def inbox(services) -> list[InboxEvent]:
    with services.store.session() as session:
        return list(session.scalars(select(InboxEvent).order_by(InboxEvent.id)))


def expire_leases(services) -> None:
    """Let the five minutes of a worker's lease pass."""
    with services.store.session() as session:
        session.execute(update(InboxEvent).values(lease_until=utcnow() - timedelta(seconds=1)))


def retro_run(strava, activity_id: int) -> None:
    strava.add_activity(ATHLETE_ID, activity_id, name="#retro run", streams=CADENCE_STREAMS)


def assert_one_note_and_done(services, strava, activity_id: int) -> None:
    assert count_notes(strava.description(activity_id)) == 1
    assert len(strava.calls_to("PUT", f"/activities/{activity_id}$")) == 1
    (row,) = [r for r in inbox(services) if r.object_id == activity_id]
    assert row.status == "done", row.outcome


def assert_unclaimed_then_resumed_once(services, strava, activity_id: int) -> None:
    """The event waited, pending with no attempt counted and no host call made; once its task was lost long
    enough ago, the resume task enqueues it and one attempt writes the note."""
    (row,) = inbox(services)
    assert (row.status, row.attempts) == ("pending", 0)
    assert strava.calls == []
    age_inbox(services, activity_id, seconds=120)
    assert services.queue.resume_events() == 1
    run_queue(services)
    assert_one_note_and_done(services, strava, activity_id)
    assert inbox(services)[0].attempts == 1


def assert_one_warning_line(caplog, words: str) -> None:
    """What the operator reads: warnings naming the cause, no error and no traceback."""
    assert [r for r in caplog.records if r.levelno >= logging.WARNING and words in r.getMessage()]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


# --- briefly locked: waited out -----------------------------------------------------------------------------


def test_a_webhook_waits_out_a_brief_lock_and_is_accepted(client, services, strava, connected, lock):
    retro_run(strava, 701)
    lock.acquire()
    lock.release_after(BRIEF_LOCK_S)
    started = time.monotonic()
    response = client.post("/webhooks/strava", json=event(701))
    waited = time.monotonic() - started

    assert response.status_code == 200
    assert response.get_json() == {"status": "received"}
    assert waited >= BRIEF_LOCK_S * 0.8  # it really met the lock, and waited instead of failing
    run_queue(services)
    assert_one_note_and_done(services, strava, 701)


def test_a_job_waits_out_a_brief_lock_and_writes_one_note(client, services, strava, connected, lock):
    retro_run(strava, 702)
    assert client.post("/webhooks/strava", json=event(702)).status_code == 200
    lock.acquire()
    lock.release_after(BRIEF_LOCK_S)
    started = time.monotonic()
    run_queue(services)

    assert time.monotonic() - started >= BRIEF_LOCK_S * 0.8
    assert_one_note_and_done(services, strava, 702)
    assert inbox(services)[0].attempts == 1


# --- locked for longer than the wait: a clear answer, nothing lost ----------------------------------------


def test_a_lock_held_past_the_wait_gets_503_and_the_redelivery_is_accepted(
    client, services, strava, connected, lock
):
    retro_run(strava, 703)
    wait_for_locks_briefly(services)
    lock.acquire()
    response = client.post("/webhooks/strava", json=event(703))
    lock.release()

    assert response.status_code == 503
    assert "database" in response.get_json()["error"]
    assert int(response.headers["Retry-After"]) > 0
    assert inbox_size(services) == 0  # nothing half-stored: the redelivery is not taken for a duplicate
    again = client.post("/webhooks/strava", json=event(703))
    assert again.get_json() == {"status": "received"}
    run_queue(services)
    assert_one_note_and_done(services, strava, 703)


def test_a_job_locked_out_of_its_claim_is_resumed_without_a_counted_attempt(
    client, services, strava, connected, lock, caplog
):
    retro_run(strava, 704)
    assert client.post("/webhooks/strava", json=event(704)).status_code == 200
    wait_for_locks_briefly(services)
    lock.acquire()
    with caplog.at_level(logging.INFO):
        run_queue(services)  # the job cannot claim the event
    lock.release()
    assert_one_warning_line(caplog, "database unavailable")

    assert_unclaimed_then_resumed_once(services, strava, 704)


# --- unavailable: the web answers 503 with a reason ---------------------------------------------------------


def test_a_webhook_during_an_outage_gets_503_and_nothing_is_half_stored(
    client, services, strava, connected, outage, caplog
):
    retro_run(strava, 705)
    body = event(705, "update", updates={"title": "Secret title of a private run"})
    outage.start()
    with caplog.at_level(logging.INFO):
        response = client.post("/webhooks/strava", json=body)

    assert response.status_code == 503
    assert response.is_json
    assert "database" in response.get_json()["error"]
    assert int(response.headers["Retry-After"]) > 0
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "INSERT" not in text and "SELECT" not in text
    lines = [r for r in caplog.records if r.name == "plugin.web.errors"]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert "POST /webhooks/strava" in lines[0].getMessage()
    assert "Secret title" not in caplog.text  # the request body is never logged, nor the statement's values

    outage.end()
    assert inbox_size(services) == 0
    again = client.post("/webhooks/strava", json=body)
    assert again.get_json() == {"status": "received"}  # the host's redelivery, not a duplicate
    run_queue(services)
    assert_one_note_and_done(services, strava, 705)


def test_health_check_answers_503_during_an_outage_and_200_after(client, services, outage):
    outage.start()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"
    assert response.get_json()["queue"] == "ok"
    assert int(response.headers["Retry-After"]) > 0
    outage.end()
    assert client.get("/healthz").status_code == 200


def test_a_page_during_an_outage_is_a_readable_503(client, services, connected, outage):
    with client.session_transaction() as session:
        session["athlete_id"] = connected
        session["session_version"] = 0  # as the OAuth callback signs in a new athlete
    outage.start()
    response = client.get("/settings")
    assert response.status_code == 503
    assert response.mimetype == "text/html"
    assert "try again shortly" in response.get_data(as_text=True)
    assert "Retry-After" in response.headers
    outage.end()
    assert client.get("/settings").status_code == 200


def test_another_database_error_is_a_plain_500_without_a_traceback(client, services, connected, monkeypatch):
    def refuse(_deliveries):
        raise DataError("INSERT INTO inbox_events ...", {"updates": "x"}, Exception("value out of range"))

    monkeypatch.setattr(services.store, "receive_events", refuse)
    response = client.post("/webhooks/strava", json=event(706))
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal error"}
    assert "Retry-After" not in response.headers  # a bug is not waited out by redelivering


# --- restarted: connections the server ended are replaced, not reported ----------------------------------


# Only a database server restarts (the embedded one is a file).
on_a_server = pytest.mark.parametrize("backend", ["postgres-redis"], indirect=True)


@pytest.fixture
def restart(outage):
    return outage.end_every_connection


@on_a_server
def test_a_webhook_right_after_a_server_restart_is_accepted(client, services, strava, connected, restart):
    # A connection used a moment before is not checked before use (liveness.py): the write finds it
    # broken, and tries once more on a new one rather than answering 503.
    retro_run(strava, 711)
    retro_run(strava, 712)
    assert client.post("/webhooks/strava", json=event(711)).get_json() == {"status": "received"}
    with services.store.engine.connect() as one, services.store.engine.connect() as two:
        one.execute(select(1)), two.execute(select(1))  # two pooled connections used a moment before
    restart()  # the second try must not take the other broken one
    assert client.post("/webhooks/strava", json=event(712)).get_json() == {"status": "received"}
    run_queue(services)
    assert_one_note_and_done(services, strava, 711)
    assert_one_note_and_done(services, strava, 712)


@on_a_server
def test_the_health_check_right_after_a_server_restart_is_ok(client, services, restart):
    assert client.get("/healthz").status_code == 200
    restart()
    response = client.get("/healthz")
    assert response.status_code == 200, response.get_json()


@on_a_server
def test_a_connection_idle_when_the_server_restarted_is_replaced_before_use(
    client, services, connected, restart, monkeypatch
):
    with client.session_transaction() as session:
        session["athlete_id"] = connected
        session["session_version"] = 0  # as the OAuth callback signs in a new athlete
    assert client.get("/settings").status_code == 200
    restart()
    monkeypatch.setattr(liveness, "IDLE_BEFORE_PING_S", 0.05)
    time.sleep(0.1)  # the pool's connections are now idle long enough to be checked before use
    assert client.get("/settings").status_code == 200


@on_a_server
def test_only_a_connection_idle_for_a_while_is_pinged_before_use(client, services, connected, monkeypatch):
    # A ping is one more round trip; a connection used a moment before is trusted (liveness.py).
    pings = []
    do_ping = services.store.engine.dialect.do_ping
    monkeypatch.setattr(services.store.engine.dialect, "do_ping", lambda c: pings.append(c) or do_ping(c))
    for activity_id in (721, 722, 723):
        assert client.post("/webhooks/strava", json=event(activity_id)).status_code == 200
    assert client.get("/healthz").status_code == 200
    assert pings == []
    monkeypatch.setattr(liveness, "IDLE_BEFORE_PING_S", 0.05)
    time.sleep(0.1)
    assert client.post("/webhooks/strava", json=event(724)).status_code == 200
    assert len(pings) == 1


# --- unavailable: the worker keeps the event and finishes it once the database is back -------------------


def test_an_outage_before_the_claim_keeps_the_event_pending_until_the_database_is_back(
    client, services, strava, connected, outage, caplog
):
    retro_run(strava, 707)
    assert client.post("/webhooks/strava", json=event(707)).status_code == 200
    outage.start()
    with caplog.at_level(logging.INFO):
        run_queue(services)  # the job finds no database: nothing is claimed, nothing counted
        for _ in range(3):
            assert services.queue.resume_events() == 0  # the minute's resume task, during the outage
    outage.end()
    assert_one_warning_line(caplog, "database unavailable")

    assert_unclaimed_then_resumed_once(services, strava, 707)


def test_an_outage_right_after_the_note_is_written_does_not_write_it_twice(
    client, services, strava, connected, outage, monkeypatch, caplog
):
    retro_run(strava, 708)
    write = services.host.update_description

    def write_then_lose_the_database(*args, **kwargs):
        written = write(*args, **kwargs)
        outage.start()
        return written

    monkeypatch.setattr(services.host, "update_description", write_then_lose_the_database)
    assert client.post("/webhooks/strava", json=event(708)).status_code == 200
    with caplog.at_level(logging.INFO):
        run_queue(services)  # the note is written, then neither its record nor the settlement can be stored
    monkeypatch.undo()
    outage.end()
    assert_one_warning_line(caplog, "database unavailable")

    (row,) = inbox(services)
    assert row.status == "working"  # still the job's, not lost, not failed
    assert services.queue.resume_events() == 0  # the lease still runs
    expire_leases(services)
    assert services.queue.resume_events() == 1
    run_queue(services)
    assert_one_note_and_done(services, strava, 708)  # found in place: one PUT in all
    assert services.store.activity_record(708).efforts == 1


def test_a_flapping_database_never_dead_letters_an_event(client, services, strava, connected, monkeypatch):
    retro_run(strava, 709)
    read_athlete = services.store.athlete
    failures = MAX_ATTEMPTS + 2

    def athlete_while_flapping(athlete_id):
        nonlocal failures
        if failures:
            failures -= 1
            raise OperationalError("SELECT athletes ...", {}, Exception("server closed the connection"))
        return read_athlete(athlete_id)

    monkeypatch.setattr(services.store, "athlete", athlete_while_flapping)
    assert client.post("/webhooks/strava", json=event(709)).status_code == 200
    for _ in range(MAX_ATTEMPTS + 1):
        run_queue(services)
        (row,) = inbox(services)
        assert row.status == "pending", row.outcome
        assert row.attempts == 0
        assert "database unavailable" in row.outcome
        make_due(services, 709)

    run_queue(services)  # the last failure, then the database holds
    make_due(services, 709)
    run_queue(services)
    assert_one_note_and_done(services, strava, 709)
