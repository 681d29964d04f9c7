"""Deliveries that arrive together are written together (plugin/intake.py), and each still gets its own
answer: accepted, duplicate, ignored, or the database's error."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from plugin.store.models import InboxEvent
from tests.conftest import event
from tests.e2e.test_flow import wait_for


class HeldFirstWrite:
    """Wraps Store.receive_events: the first write waits until released, so that the deliveries posted
    meanwhile pile up behind it; records the size of every write."""

    def __init__(self, original: Callable, later: Callable | None = None) -> None:
        self.original = original
        self.later = later or original
        self.release = threading.Event()
        self.sizes: list[int] = []

    def __call__(self, deliveries):
        self.sizes.append(len(deliveries))
        if len(self.sizes) == 1:
            assert self.release.wait(10)
            return self.original(deliveries)
        return self.later(deliveries)


def post_all(app, bodies: list[dict], held: HeldFirstWrite, intake) -> list:
    """Posts the first body, then the others while its write is held; returns the responses in order."""
    responses: list = [None] * len(bodies)

    def post(index: int) -> None:
        responses[index] = app.test_client().post("/webhooks/strava", json=bodies[index])

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    threads[0].start()
    wait_for(lambda: held.sizes == [1], 10, "the first delivery's write")
    for thread in threads[1:]:
        thread.start()
    # All queued behind the held write:
    wait_for(lambda: len(intake._waiting) == len(bodies) - 1, 10, "the other deliveries to wait")
    held.release.set()
    for thread in threads:
        thread.join(timeout=20)
    return responses


def stored_objects(services) -> list[int]:
    with services.store.session() as session:
        return sorted(session.scalars(select(InboxEvent.object_id)))


def test_deliveries_that_wait_together_are_written_together_and_answered_one_by_one(
    app, services, connected, monkeypatch
):
    held = HeldFirstWrite(services.store.receive_events)
    monkeypatch.setattr(services.store, "receive_events", held)
    bodies = [event(1), event(2), event(3), event(2), event(4, owner_id=999), event(5)]
    responses = post_all(app, bodies, held, services.intake)

    assert held.sizes == [1, 5]  # the five that waited: one transaction
    # One answer for every delivery; the inbox says what was taken (the same delivery twice: once).
    assert {r.get_data() for r in responses} == {responses[0].get_data()}
    assert all(r.status_code == 200 for r in responses)
    assert stored_objects(services) == [1, 2, 3, 5]
    with services.store.session() as session:
        stored_ids = set(session.scalars(select(InboxEvent.id)))
    # Every stored event is enqueued (the duplicate's event perhaps twice: a redelivery of an event still
    # waiting is enqueued again, and its second task finds it done).
    assert {task.args[0] for task in services.queue.huey.pending()} == stored_ids


def test_a_database_error_answers_every_delivery_of_the_write_and_the_next_ones_go_through(
    app, services, connected, monkeypatch
):
    def unavailable(_deliveries):
        raise OperationalError("BEGIN IMMEDIATE", None, Exception("database is locked"))

    held = HeldFirstWrite(services.store.receive_events, later=unavailable)
    monkeypatch.setattr(services.store, "receive_events", held)
    responses = post_all(app, [event(1), event(2), event(3), event(4)], held, services.intake)

    assert held.sizes == [1, 3]
    assert responses[0].get_json()["status"] == "received"
    for refused in responses[1:]:
        assert refused.status_code == 503
        assert "Retry-After" in refused.headers
    monkeypatch.undo()
    assert app.test_client().post("/webhooks/strava", json=event(2)).get_json()["status"] == "received"
    assert stored_objects(services) == [1, 2]


def test_a_slow_enqueue_holds_up_neither_the_next_deliveries_nor_their_answers(
    app, services, connected, monkeypatch
):
    # A delivery is accepted once stored; its thread then enqueues it, while the next ones are written.
    enqueue = services.queue.enqueue_fresh
    release = threading.Event()
    enqueued: list[list[int]] = []

    def first_enqueue_held(event_ids):
        enqueued.append(list(event_ids))
        if len(enqueued) == 1:
            assert release.wait(10)
        enqueue(event_ids)

    monkeypatch.setattr(services.queue, "enqueue_fresh", first_enqueue_held)
    first: list = []
    thread = threading.Thread(
        target=lambda: first.append(app.test_client().post("/webhooks/strava", json=event(1)))
    )
    thread.start()
    wait_for(lambda: len(enqueued) == 1, 10, "the first delivery's enqueue")

    second = app.test_client().post("/webhooks/strava", json=event(2))
    assert second.get_json()["status"] == "received"
    assert stored_objects(services) == [1, 2]
    assert first == []  # its thread is still enqueueing
    release.set()
    thread.join(timeout=20)
    assert first[0].get_json()["status"] == "received"
    with services.store.session() as session:
        stored_ids = set(session.scalars(select(InboxEvent.id)))
    assert {task.args[0] for task in services.queue.huey.pending()} == stored_ids


@pytest.fixture(params=["embedded", "redis"])
def queue_url(request, tmp_path) -> str:
    if request.param == "embedded":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    return request.getfixturevalue("redis_server").new_url()


@pytest.mark.parametrize("count", [1, 3])
def test_fresh_events_go_into_the_queue_in_one_write(services, queue_url, count):
    # One transaction on the embedded queue, one round trip (a pipeline) to Redis: nothing of it is seen
    # from outside before its end.
    from plugin.jobs import Queue, make_huey

    queue = Queue(make_huey(queue_url), services.store, services.pipeline)
    outside = make_huey(queue_url).storage
    queue.enqueue_event(100)  # backlog
    with queue.huey.storage.together():
        for event_id in range(1, count + 1):
            queue._process(event_id)
        assert outside.queue_size() == 1
    assert outside.queue_size() == count + 1
    queue.enqueue_fresh([7, 8])
    assert [queue.huey.dequeue().args[0] for _ in range(2)] == [7, 8]  # ahead of the backlog


def test_running_a_task_costs_the_redis_queue_one_command(services, redis_server):
    # Taking the task is all: no look-up of revocation flags before it runs, no deletion after.
    import redis

    from plugin.jobs import Queue, make_huey

    url = redis_server.new_url()
    queue = Queue(make_huey(url), services.store, services.pipeline)
    queue.enqueue_fresh([12345])  # no such event: its task finds it gone
    client = redis.Redis.from_url(url)

    def commands() -> dict[str, int]:
        stats = client.info("commandstats")
        return {name: stats[name]["calls"] for name in stats if name != "cmdstat_info"}

    before = commands()
    task = queue.huey.dequeue()
    queue.huey.execute(task)
    after = commands()
    assert task.args == (12345,)
    used = {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}
    assert used == {"cmdstat_bzpopmin": 1}  # a worker's blocking pop
