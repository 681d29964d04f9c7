"""The store under concurrent processes, as a fleet starting together meets it, and its migrations."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from cryptography.fernet import Fernet
from sqlalchemy import event, inspect, select, text
from sqlalchemy.exc import IntegrityError

from plugin.store import (
    ClaimedEvent,
    ForgottenActivity,
    NewEvent,
    ProcessedActivity,
    Store,
    TokenSet,
    utcnow,
)
from plugin.store.migrate import BASELINE, alembic_config, current_revision
from plugin.store.models import Base, InboxEvent


@pytest.fixture
def database_url(backend, tmp_path) -> str:
    """An empty database: a fresh SQLite file, or an emptied PostgreSQL schema."""
    return backend.get("BACKSTRIDE_DATABASE_URL") or f"sqlite:///{tmp_path}/store.db"


def store(url: str) -> Store:
    return Store(url, Fernet.generate_key().decode())


def head_revision() -> str:
    with store("sqlite://").engine.connect() as connection:
        return ScriptDirectory.from_config(alembic_config(connection)).get_current_head()


def test_processes_creating_the_schema_together_all_succeed(database_url):
    key = Fernet.generate_key().decode()
    code = f"from plugin.store import Store; Store({database_url!r}, {key!r}).create_schema()"
    processes = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(8)
    ]
    failures = [p.stderr.read() for p in processes if p.wait() != 0]
    assert failures == []
    with store(database_url).engine.connect() as connection:
        assert current_revision(connection) == head_revision()


def test_the_migrations_build_exactly_the_models(database_url):
    migrated = store(database_url)
    migrated.create_schema()
    with migrated.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_a_database_from_before_migrations_is_adopted_and_keeps_its_rows(database_url):
    old = store(database_url)
    # A database from before migrations: the baseline schema, made without Alembic's version table.
    with old.engine.connect() as connection:
        command.upgrade(alembic_config(connection), BASELINE)
        connection.execute(text("DROP TABLE alembic_version"))
        connection.commit()
    # An athlete of that time, written as that schema has it (the models describe the newest one).
    with old.engine.connect() as connection:
        connection.execute(
            text(
                "INSERT INTO athletes (id, access_token_enc, refresh_token_enc, expires_at, scopes, "
                "needs_reconnect, settings, connected_at, updated_at) "
                "VALUES (7, :a, :r, 0, 'activity:write', :no, '{}', :now, :now)"
            ),
            {"a": old.cipher.encrypt("a"), "r": old.cipher.encrypt("r"), "no": False, "now": utcnow()},
        )
        connection.commit()
        assert current_revision(connection) is None
    old.create_schema()
    with old.engine.connect() as connection:
        assert current_revision(connection) == head_revision()
    assert old.is_connected(7)


def test_upgrading_an_up_to_date_database_changes_nothing(database_url):
    migrated = store(database_url)
    migrated.create_schema()
    migrated.save_athlete(8, TokenSet("a", "r", 0), frozenset(), None, None)
    migrated.create_schema()
    assert migrated.is_connected(8)
    with migrated.engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    assert {"athletes", "inbox_events", "activity_records", "app_state", "rate_limit_state"} <= tables


def connected_store(url: str) -> Store:
    connected = store(url)
    connected.create_schema()
    connected.set_subscription_id(SUBSCRIPTION_ID)
    scopes = frozenset({"read", "activity:read_all", "activity:write"})
    connected.save_athlete(OWNER_ID, TokenSet("access", "refresh", 2_000_000_000), scopes, None, None)
    return connected


SUBSCRIPTION_ID, OWNER_ID = 5150, 4242  # made up


def new_event(activity_id: int, **changes) -> NewEvent:
    fields = {
        "subscription_id": SUBSCRIPTION_ID,
        "owner_id": OWNER_ID,
        "object_type": "activity",
        "object_id": activity_id,
        "aspect_type": "update",
        "updates": {"title": "Backward 5k"},
        "event_time": 1_790_000_000,
    }
    return NewEvent(**{**fields, **changes})


def test_a_received_event_reads_back_as_it_was_received(database_url):
    # receive_events writes through the driver; everything else reads through SQLAlchemy's types.
    connected = connected_store(database_url)
    before = utcnow()
    (event_id,) = connected.receive_events([new_event(77)])
    with connected.session() as session:
        row = session.get(InboxEvent, event_id)
        assert (row.owner_id, row.object_id, row.aspect_type) == (OWNER_ID, 77, "update")
        assert row.updates == {"title": "Backward 5k"}
        assert row.event_time == 1_790_000_000
        assert (row.status, row.attempts, row.object_key) == ("pending", 0, "activity:77")
        assert before <= row.received_at <= utcnow()
        assert row.dedupe_key == new_event(77).dedupe_key
    # The resume query compares received_at in SQL: the stored form must order like the ORM's own.
    assert connected.events_to_resume(timedelta(seconds=60)) == []
    assert connected.events_to_resume(timedelta(0)) == [(event_id, None)]


def test_receiving_checks_the_subscription_and_owner_and_drops_duplicates(database_url):
    connected = connected_store(database_url)
    (first,) = connected.receive_events([new_event(78)])
    assert connected.receive_events([new_event(78)]) == ["duplicate"]
    assert connected.receive_events([new_event(79, subscription_id=1)]) == ["foreign subscription"]
    assert connected.receive_events([new_event(79, owner_id=1)]) == ["unknown owner"]
    # The refused duplicate left no transaction open on a pooled connection: the next event is stored.
    (second,) = connected.receive_events([new_event(79)])
    assert isinstance(first, int) and isinstance(second, int) and second != first
    with connected.session() as session:
        assert sorted(session.scalars(select(InboxEvent.object_id))) == [78, 79]


def processed(activity_id: int, efforts: int, athlete_id: int | None = OWNER_ID) -> ProcessedActivity:
    return ProcessedActivity(activity_id, athlete_id, efforts, 100.0 * efforts, 60.0 * efforts, "note", True)


def status_of(store_: Store, event_id: int) -> str:
    with store_.session() as session:
        return session.get(InboxEvent, event_id).status


def test_settling_an_event_saves_or_forgets_its_activitys_record_with_it(database_url):
    connected = connected_store(database_url)
    first, second, third = connected.receive_events(
        [new_event(80, event_time=1_790_000_000 + n) for n in range(3)]
    )
    assert isinstance(connected.claim_event(first, timedelta(minutes=5)), ClaimedEvent)
    connected.finish_event(first, "done", "note written", 3, processed(80, efforts=1))
    assert status_of(connected, first) == "done"
    assert connected.activity_record(80).efforts == 1
    # The activity again (a later update): its record is replaced, not doubled.
    assert isinstance(connected.claim_event(second, timedelta(minutes=5)), ClaimedEvent)
    connected.finish_event(second, "done", "note written", 3, processed(80, efforts=2))
    assert (connected.activity_record(80).efforts, connected.activity_record(80).backward_m) == (2, 200.0)
    assert isinstance(connected.claim_event(third, timedelta(minutes=5)), ClaimedEvent)
    # Another athlete's delete of the same id leaves this record alone; the owner's removes it.
    connected.finish_event(third, "done", "activity deleted", 0, ForgottenActivity(80, OWNER_ID + 1))
    assert connected.activity_record(80) is not None
    connected.finish_event(third, "done", "activity no longer exists", 1, ForgottenActivity(80, OWNER_ID))
    assert status_of(connected, third) == "done"
    assert connected.activity_record(80) is None


def test_an_event_whose_record_cannot_be_saved_is_not_settled(database_url):
    connected = connected_store(database_url)
    (event_id,) = connected.receive_events([new_event(81)])
    assert isinstance(connected.claim_event(event_id, timedelta(minutes=5)), ClaimedEvent)
    broken = ProcessedActivity(81, OWNER_ID, None, 0.0, 0.0, "note", True)  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):  # a record without its effort count breaks a NOT NULL constraint
        connected.finish_event(event_id, "done", "note written", 3, broken)
    # One transaction: the event stays leased (the resume task takes it up again), no record half-written.
    assert status_of(connected, event_id) == "working"
    assert connected.activity_record(81) is None


def test_no_record_is_saved_for_an_athlete_who_disconnected_meanwhile(database_url):
    """Issue 20: a job that finished after Disconnect created an activity record for the deleted athlete."""
    connected = connected_store(database_url)
    (event_id,) = connected.receive_events([new_event(82)])
    assert isinstance(connected.claim_event(event_id, timedelta(minutes=5)), ClaimedEvent)
    connected.delete_athlete(OWNER_ID)
    connected.finish_event(event_id, "done", "note written", 3, processed(82, efforts=1))
    assert connected.activity_record(82) is None


def test_a_claim_takes_only_an_event_that_is_due_and_free_and_says_why_not(database_url):
    connected = connected_store(database_url)
    first, second, other_activity = connected.receive_events(
        [new_event(83, event_time=1_790_000_000), new_event(83, event_time=1_790_000_001), new_event(84)]
    )
    claimed = connected.claim_event(first, timedelta(minutes=5))
    assert isinstance(claimed, ClaimedEvent)
    assert (claimed.id, claimed.object_id, claimed.attempts, claimed.put_off) == (first, 83, 1, False)
    assert claimed.updates == {"title": "Backward 5k"}
    assert connected.claim_event(first, timedelta(minutes=5)) == "busy"  # leased
    assert connected.claim_event(second, timedelta(minutes=5)) == "busy"  # its activity's first is open
    # A lease that has run out (a worker died) is taken over, and counts as another attempt.
    assert connected.claim_event(other_activity, timedelta(seconds=-1)).attempts == 1
    assert connected.claim_event(other_activity, timedelta(minutes=5)).attempts == 2
    # Put off: not before its time; then claimed, marked as put off.
    connected.defer_event(first, utcnow() + timedelta(minutes=10), "deferred", refund_attempt=True)
    assert connected.claim_event(first, timedelta(minutes=5)) == "later"
    connected.defer_event(first, utcnow() - timedelta(seconds=1), "deferred", refund_attempt=False)
    assert connected.claim_event(first, timedelta(minutes=5)).put_off
    connected.finish_event(first, "done", "note written", 3)
    assert connected.claim_event(first, timedelta(minutes=5)) == "gone"
    assert connected.claim_event(10_000_000, timedelta(minutes=5)) == "gone"
    assert isinstance(connected.claim_event(second, timedelta(minutes=5)), ClaimedEvent)


def test_a_claim_gives_way_when_another_worker_took_and_put_off_the_event_just_before(database_url):
    connected = connected_store(database_url)
    (event_id,) = connected.receive_events([new_event(82)])
    other = store(database_url)  # another worker process, on its own connections
    later = utcnow() + timedelta(minutes=10)

    def other_worker_first(_conn, _cursor, statement, *_args) -> None:
        if statement.startswith("UPDATE inbox_events") and not raced:
            raced.append(True)
            assert isinstance(other.claim_event(event_id, timedelta(minutes=5)), ClaimedEvent)
            other.defer_event(event_id, later, "will retry: host unavailable", refund_attempt=True)

    raced: list[bool] = []
    event.listen(connected.engine, "before_cursor_execute", other_worker_first)
    # By the time its claim ran, the event was claimed and put off until later: the claim takes nothing.
    assert connected.claim_event(event_id, timedelta(minutes=5)) == "later"
    assert raced == [True]
    with connected.session() as session:
        row = session.get(InboxEvent, event_id)
        assert (row.status, row.attempts, row.not_before) == ("pending", 0, later)
    other.engine.dispose()
