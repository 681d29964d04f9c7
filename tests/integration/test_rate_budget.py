"""One rate-limit budget for the whole fleet: every host call is counted in the shared database before it
goes out, the backlog leaves a share of each window to fresh activities, and fresh events jump the queue."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
import sqlalchemy
from sqlalchemy import update

from plugin.hosts.strava.ratelimit import BACKLOG_SHARE, allowed_calls, day_start, quarter_hour_start
from plugin.jobs import Queue, make_huey
from plugin.pipeline import Deferred, Pipeline
from plugin.store import Store, utcnow
from plugin.store.models import InboxEvent
from tests.conftest import ATHLETE_ID, event, run_queue
from tests.integration.test_pipeline import (
    CADENCE_STREAMS,
    count_notes,
    deliver,
    inbox_row,
    make_due,
    reopen_rate_window,
)

# The tests here count what one rate window allows (the queue order test waits with them, rarely).
pytestmark = pytest.mark.usefixtures("one_rate_window")


def report_headers(store: Store, short: tuple[int, int], daily: tuple[int, int] = (1000, 0)) -> None:
    """What the client does with a response's rate-limit headers."""
    now = utcnow()
    store.record_rate_limit("strava", short, daily, None, (quarter_hour_start(now), day_start(now)))


def api_calls(strava) -> int:
    return sum(1 for _method, path in strava.calls if path.startswith("/api/"))


def test_eight_processes_at_once_never_count_more_calls_than_the_window_allows(services):
    report_headers(services.store, short=(100, 0))
    granted: list[int] = []
    start = threading.Barrier(8)

    def worker() -> None:
        # Its own engine and pipeline, as another process of the fleet would have.
        store = Store(services.settings.database_url, services.settings.token_key)
        pipeline = Pipeline(store, services.host, sources_url=services.settings.sources_url)
        start.wait()
        count = 0
        while True:
            try:
                pipeline.reserve_call()
            except Deferred as exc:
                if exc.retry_at == quarter_hour_start(utcnow()) + timedelta(minutes=15):
                    break  # the window's allowance is used
                continue  # the counts were busy: try again
            count += 1
        granted.append(count)
        store.engine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sum(granted) == allowed_calls(100) == 98
    counts = services.store.rate_counts("strava")
    assert counts.short == (100, 98)
    assert counts.daily == (1000, 98)


def test_headers_never_lower_the_fleets_own_count_within_the_window(services):
    report_headers(services.store, short=(100, 10))
    pipeline = services.pipeline
    for _ in range(5):
        pipeline.reserve_call()
    # An answer to an earlier call arrives late: its usage (11) does not yet include the 4 calls after it.
    report_headers(services.store, short=(100, 11))
    assert services.store.rate_counts("strava").short == (100, 15)
    # A higher usage from the host (calls the fleet did not count) is taken in.
    report_headers(services.store, short=(100, 40))
    assert services.store.rate_counts("strava").short == (100, 40)
    # A new window: the host's count is the truth again.
    reopen_rate_window(services)
    report_headers(services.store, short=(100, 1))
    assert services.store.rate_counts("strava").short == (100, 1)


def test_an_answer_the_counts_already_hold_is_read_not_written(services):
    # Every call is counted before it goes out, so most answers report no more than the fleet counted: those
    # cost a read of the counts, not a write (which, on SQLite, the web's inbox writes would wait for).
    writes: list[str] = []

    def count_writes(_conn, _cursor, statement, *_args) -> None:
        if statement.startswith(("UPDATE rate_limit_state", "INSERT INTO rate_limit_state")):
            writes.append(statement)

    sqlalchemy.event.listen(services.store.engine, "before_cursor_execute", count_writes)
    report_headers(services.store, short=(100, 10))
    for _ in range(3):
        services.pipeline.reserve_call()
    assert len(writes) == 2 + 3  # the first answer (an UPDATE finding no row, the INSERT), three calls
    report_headers(services.store, short=(100, 12))  # an answer to one of those calls
    report_headers(services.store, short=(100, 13))
    assert len(writes) == 5
    assert services.store.rate_counts("strava").short == (100, 13)
    # Anything the counts do not hold is written: more usage, another limit, a block, a new window.
    report_headers(services.store, short=(100, 20))
    assert (len(writes), services.store.rate_counts("strava").short) == (6, (100, 20))
    report_headers(services.store, short=(200, 20))
    assert (len(writes), services.store.rate_counts("strava").short) == (7, (200, 20))
    now = utcnow()
    blocked_until = quarter_hour_start(now) + timedelta(minutes=15)
    windows = (quarter_hour_start(now), day_start(now))
    services.store.record_rate_limit("strava", (200, 20), (1000, 20), blocked_until, windows)
    assert (len(writes), services.store.rate_counts("strava").blocked_until) == (8, blocked_until)
    services.store.record_rate_limit("strava", (200, 20), (1000, 20), blocked_until, windows)
    assert len(writes) == 8
    reopen_rate_window(services)  # (an UPDATE itself)
    report_headers(services.store, short=(200, 1))
    assert (len(writes), services.store.rate_counts("strava").short) == (8 + 1 + 1, (200, 1))


def test_a_burst_three_times_the_budget_spends_the_window_and_defers_the_rest(
    client, services, strava, connected
):
    strava.rate_limit = (30, 1000)  # 28 calls may go out, and the burst needs 90 (3 per activity)
    ids = list(range(700, 730))
    for activity_id in ids:
        strava.add_activity(ATHLETE_ID, activity_id, name="#retro", streams=CADENCE_STREAMS)
    for activity_id in ids:
        deliver(client, services, event(activity_id))

    assert api_calls(strava) <= allowed_calls(30)
    annotated = [i for i in ids if count_notes(strava.description(i) or "") == 1]
    assert len(annotated) == allowed_calls(30) // 3
    next_window = quarter_hour_start(utcnow()) + timedelta(minutes=15)
    for activity_id in set(ids) - set(annotated):
        row = inbox_row(services, activity_id)
        assert row.status == "pending", row.outcome
        assert row.attempts == 0  # waiting for the window is not a failed attempt
        assert row.not_before in (next_window, next_window + timedelta(minutes=15))


def test_fresh_activities_get_the_budget_before_the_backlog(client, services, strava, connected):
    strava.rate_limit = (30, 1000)
    backlog = list(range(740, 770))
    for activity_id in backlog:
        strava.add_activity(ATHLETE_ID, activity_id, name="#retro", streams=CADENCE_STREAMS)
        deliver(client, services, event(activity_id))
    put_off = [i for i in backlog if inbox_row(services, i).status == "pending"]
    assert len(put_off) >= 20

    # The next window opens with the backlog due (what was settled, was settled in the last one); then two
    # runners upload.
    reopen_rate_window(services)
    with services.store.session() as session:
        session.execute(update(InboxEvent).values(finished_at=utcnow() - timedelta(minutes=15)))
    strava.rate_usage = [0, strava.rate_usage[1]]
    make_due(services)
    fresh = [790, 791]
    for activity_id in fresh:
        strava.add_activity(ATHLETE_ID, activity_id, name="#retro", streams=CADENCE_STREAMS)
    calls_before = api_calls(strava)
    for activity_id in fresh:
        client.post("/webhooks/strava", json=event(activity_id))
    run_queue(services)

    assert all(count_notes(strava.description(i) or "") == 1 for i in fresh)
    backlog_done = [i for i in put_off if count_notes(strava.description(i) or "") == 1]
    # The backlog took at most its share of the window; the fresh activities' six calls came on top.
    assert 3 * len(backlog_done) <= allowed_calls(30, BACKLOG_SHARE)
    assert api_calls(strava) - calls_before <= allowed_calls(30)
    still_waiting = [i for i in put_off if inbox_row(services, i).status == "pending"]
    assert len(still_waiting) == len(put_off) - len(backlog_done) > 0


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
def test_a_fresh_event_is_taken_before_events_already_waiting(kind, services, tmp_path, request):
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'queue.db'}"
    elif kind == "redis":
        url = request.getfixturevalue("redis_server").new_url()
    else:
        url = "memory://"
    huey = make_huey(url)
    queue = Queue(huey, services.store, services.pipeline)
    for event_id in (1, 2, 3):
        queue.enqueue_event(event_id)  # resumed or retried work: the backlog
    queue.enqueue_fresh([4])
    order = [huey.dequeue().args[0] for _ in range(4)]
    assert order == [4, 1, 2, 3]


def test_a_deferral_by_the_host_blocks_every_process_until_it_ends(services):
    report_headers(services.store, short=(100, 0))
    blocked_until = quarter_hour_start(utcnow()) + timedelta(minutes=15)
    now = utcnow()
    services.store.record_rate_limit(
        "strava", (100, 100), (1000, 100), blocked_until, (quarter_hour_start(now), day_start(now))
    )
    other = Pipeline(
        Store(services.settings.database_url, services.settings.token_key),
        services.host,
        sources_url=services.settings.sources_url,
    )
    with pytest.raises(Deferred) as deferred:
        other.reserve_call()
    assert deferred.value.retry_at == blocked_until
    assert isinstance(deferred.value.retry_at, datetime)
    other.store.engine.dispose()


def test_one_athletes_flood_leaves_room_for_another_athletes_upload(client, services, strava, connected):
    """Issue 20: 110 forged creates for one athlete used the whole 15-minute window; a real upload by another
    athlete then waited for the next one. Forged events name activities the host does not have (one call
    each, a 404)."""
    from plugin.store import TokenSet

    strava.rate_limit = (100, 1000)
    other = 31337  # made up
    strava.add_athlete(other)
    grant = strava.grant(other)
    services.store.save_athlete(
        other,
        TokenSet(grant["access_token"], grant["refresh_token"], grant["expires_at"]),
        frozenset(),
        60.0,
        None,
    )
    for activity_id in range(10_000, 10_110):
        client.post("/webhooks/strava", json=event(activity_id))
    run_queue(services, limit=1000)
    flood_calls = api_calls(strava)
    assert flood_calls <= 30  # the flooding athlete's share of the window
    deferred = [i for i in range(10_000, 10_110) if inbox_row(services, i).status == "pending"]
    assert len(deferred) >= 110 - 30
    assert "share of the host's 15-minute budget" in inbox_row(services, deferred[0]).outcome

    strava.add_activity(other, 555, name="#retro", streams=CADENCE_STREAMS)
    deliver(client, services, event(555, owner_id=other))
    assert count_notes(strava.description(555) or "") == 1
