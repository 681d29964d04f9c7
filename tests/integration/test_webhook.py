"""The webhook endpoint: validation GET, and POSTs that are checked, stored, enqueued and acknowledged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import func, select, update

from plugin.store import utcnow
from plugin.store.models import InboxEvent
from tests.conftest import SUBSCRIPTION_ID, VERIFY_TOKEN, connect_athlete, event, run_queue


def inbox_size(services) -> int:
    with services.store.session() as session:
        return session.scalar(select(func.count()).select_from(InboxEvent))


def test_validation_answers_the_challenge(client):
    response = client.get(
        f"/webhooks/strava?hub.mode=subscribe&hub.challenge=15f7d1a91c1f40f8a748fd134752feb3"
        f"&hub.verify_token={VERIFY_TOKEN}"
    )
    assert response.status_code == 200
    assert response.get_json() == {"hub.challenge": "15f7d1a91c1f40f8a748fd134752feb3"}


def test_validation_with_a_wrong_token_is_forbidden(client):
    response = client.get("/webhooks/strava?hub.mode=subscribe&hub.challenge=x&hub.verify_token=guess")
    assert response.status_code == 403
    assert "hub.challenge" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "query", ["", "hub.mode=subscribe", "hub.mode=unsubscribe&hub.challenge=x&hub.verify_token=v"]
)
def test_validation_with_missing_parts_is_a_bad_request(client, query):
    assert client.get(f"/webhooks/strava?{query}").status_code == 400


def test_event_is_stored_enqueued_and_acknowledged_without_a_host_call(client, services, strava, connected):
    response = client.post("/webhooks/strava", json=event(111))
    assert response.status_code == 200
    assert response.get_json() == {"status": "received"}
    assert strava.calls == []
    assert inbox_size(services) == 1
    assert services.queue.huey.pending_count() == 1


def test_a_delivery_never_opens_a_browser_session(client, services, connected, monkeypatch):
    # The host's posts carry no cookie; opening a session (deriving its signing key) would cost every
    # delivery about as much as reading the event.
    def refuse(*_args):
        raise AssertionError("the webhook opened a session")

    monkeypatch.setattr(SecureCookieSessionInterface, "get_signing_serializer", refuse)
    response = client.post("/webhooks/strava", json=event(111))
    assert response.get_json() == {"status": "received"}
    assert "Set-Cookie" not in response.headers
    assert inbox_size(services) == 1


def test_duplicate_delivery_is_acknowledged_and_dropped(client, services, connected):
    first = client.post("/webhooks/strava", json=event(111))
    run_queue(services)  # the first delivery's event is settled (the activity is gone at the host)
    again = client.post("/webhooks/strava", json=event(111))
    assert first.get_json()["status"] == "received"
    assert again.status_code == 200
    assert again.get_data() == first.get_data()  # the same answer: nothing to learn from it
    assert inbox_size(services) == 1
    assert services.queue.huey.pending_count() == 0  # nothing more to do


def test_a_redelivery_enqueues_an_event_whose_first_delivery_was_never_enqueued(
    client, services, connected, monkeypatch
):
    # As when the web process dies between storing the event and enqueueing it: the host got no answer.
    def lost(*args, **kwargs):
        raise OSError("the process died")

    with monkeypatch.context() as patched:
        patched.setattr(services.queue.huey.storage, "enqueue", lost)
        client.post("/webhooks/strava", json=event(111))
    assert services.queue.huey.pending_count() == 0
    again = client.post("/webhooks/strava", json=event(111))
    assert again.get_json()["status"] == "received"
    assert inbox_size(services) == 1
    assert services.queue.huey.pending_count() == 1


def test_a_redelivery_leaves_an_event_deferred_to_later_alone(client, services, connected):
    client.post("/webhooks/strava", json=event(111))
    with services.store.session() as session:  # waiting for the next rate-limit window
        session.execute(update(InboxEvent).values(not_before=utcnow() + timedelta(minutes=10)))
    pending = services.queue.huey.pending_count()
    assert client.post("/webhooks/strava", json=event(111)).get_json()["status"] == "received"
    assert services.queue.huey.pending_count() == pending
    assert inbox_size(services) == 1


def test_two_different_events_for_one_activity_are_both_kept(client, services, connected):
    client.post("/webhooks/strava", json=event(111))
    client.post(
        "/webhooks/strava",
        json=event(111, "update", updates={"title": "Retro run"}, event_time=1_700_000_060),
    )
    assert inbox_size(services) == 2


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "JSON object"),
        (b"[1, 2]", "JSON object"),
        (b'"text"', "JSON object"),
        (b"{}", "invalid event"),
    ],
)
def test_malformed_bodies_get_400_with_a_reason(client, services, connected, body, reason):
    response = client.post("/webhooks/strava", data=body, content_type="application/json")
    assert response.status_code == 400
    assert reason in response.get_json()["error"]
    assert inbox_size(services) == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"object_type": "route"}, "object_type"),
        ({"aspect_type": "rename"}, "aspect_type"),
        ({"object_id": "111"}, "object_id"),
        ({"object_id": -5}, "object_id"),
        ({"owner_id": None}, "owner_id"),
        ({"event_time": 1.5}, "event_time"),
        ({"subscription_id": True}, "subscription_id"),
        ({"updates": ["title"]}, "updates"),
        ({"updates": {"title": {"nested": 1}}}, "updates"),
        # Beyond a signed 64-bit integer: once a 500 (the database could not bind the number).
        ({"object_id": 2**63}, "object_id"),
        ({"owner_id": 2**63}, "owner_id"),
        ({"subscription_id": 2**70}, "subscription_id"),
        ({"event_time": 2**64}, "event_time"),
    ],
)
def test_invalid_fields_are_named_in_the_error(client, services, connected, change, field):
    response = client.post("/webhooks/strava", json={**event(111), **change})
    assert response.status_code == 400
    assert field in response.get_json()["fields"]
    assert inbox_size(services) == 0


def test_missing_field_is_named(client, services, connected):
    body = event(111)
    del body["owner_id"]
    response = client.post("/webhooks/strava", json=body)
    assert response.status_code == 400
    assert "owner_id" in response.get_json()["fields"]


def test_the_largest_64_bit_ids_are_accepted(client, services, connected):
    response = client.post("/webhooks/strava", json=event(2**63 - 1, event_time=2**63 - 1))
    assert response.get_json() == {"status": "received"}
    assert inbox_size(services) == 1


def test_unknown_extra_fields_from_the_host_are_ignored(client, connected):
    response = client.post("/webhooks/strava", json={**event(111), "new_field_from_host": 1})
    assert response.get_json()["status"] == "received"


def test_event_for_an_unknown_athlete_is_acknowledged_but_not_stored(client, services):
    response = client.post("/webhooks/strava", json=event(111, owner_id=123456))
    assert response.status_code == 200
    assert response.get_json()["status"] == "received"
    assert inbox_size(services) == 0


def test_event_for_another_subscription_is_acknowledged_but_not_stored(client, services, connected):
    assert client.post("/webhooks/strava", json=event(111)).get_json()["status"] == "received"
    other = client.post("/webhooks/strava", json=event(112, subscription_id=999))
    assert other.get_json()["status"] == "received"
    assert inbox_size(services) == 1


def test_every_well_formed_delivery_gets_the_same_answer_whatever_became_of_it(client, services, connected):
    """Issue 20: the answers were an oracle for real subscription and athlete ids."""
    answers = {
        "accepted": client.post("/webhooks/strava", json=event(111)),
        "duplicate": client.post("/webhooks/strava", json=event(111)),
        "foreign subscription": client.post("/webhooks/strava", json=event(112, subscription_id=999)),
        "unknown owner": client.post("/webhooks/strava", json=event(113, owner_id=123456)),
    }
    bodies = {
        what: (r.status_code, r.get_data(), r.headers.get("Content-Type")) for what, r in answers.items()
    }
    assert len(set(bodies.values())) == 1, bodies
    assert inbox_size(services) == 1


def test_nothing_is_taken_before_a_subscription_is_stored(client, services, connected):
    services.store.set_subscription_id(None)
    assert client.post("/webhooks/strava", json=event(111)).get_json()["status"] == "received"
    assert inbox_size(services) == 0


def test_oversized_body_is_refused_with_json(client, services, connected):
    response = client.post(
        "/webhooks/strava", data=b"{" + b" " * 100_000 + b"}", content_type="application/json"
    )
    assert response.status_code == 413
    assert "error" in response.get_json()
    assert inbox_size(services) == 0


def test_a_queue_failure_still_keeps_the_event(client, services, connected, monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("queue down")

    monkeypatch.setattr(services.queue.huey.storage, "enqueue", broken)
    response = client.post("/webhooks/strava", json=event(111))
    assert response.status_code == 200
    assert inbox_size(services) == 1


def test_every_response_carries_security_headers(client):
    response = client.get("/")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_healthz_reports_database_and_queue(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "queue": "ok"}


SECRET = "a-random-path-segment"


@pytest.fixture
def secret_app(env, strava):
    from plugin.web import create_app

    app = create_app({**env, "STRAVA_WEBHOOK_SECRET": SECRET}, TESTING=True)
    services = app.extensions["backstride"]
    services.store.create_schema()
    services.store.set_subscription_id(SUBSCRIPTION_ID)
    return app


def test_with_a_webhook_secret_events_are_taken_at_the_secret_path_only(secret_app, strava):
    services = secret_app.extensions["backstride"]
    connect_athlete(services.store, strava)
    client = secret_app.test_client()
    assert client.post("/webhooks/strava", json=event(111)).status_code == 404
    assert client.post("/webhooks/strava/wrong-segment", json=event(112)).status_code == 404
    assert client.post(f"/webhooks/strava/{SECRET}", json=event(113)).get_json() == {"status": "received"}
    assert inbox_size(services) == 1
    query = {"hub.mode": "subscribe", "hub.challenge": "c", "hub.verify_token": VERIFY_TOKEN}
    assert client.get("/webhooks/strava", query_string=query).status_code == 404
    assert client.get(f"/webhooks/strava/{SECRET}", query_string=query).get_json() == {"hub.challenge": "c"}


def test_without_a_webhook_secret_no_secret_path_exists(client, services, connected):
    assert client.post("/webhooks/strava/anything", json=event(111)).status_code == 404
    assert inbox_size(services) == 0
