"""GET /metrics: fleet-wide figures in Prometheus's text format, read from the shared database and queue."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from plugin.store import utcnow
from plugin.store.models import RateLimitState
from tests.conftest import ATHLETE_ID, event, run_queue

METRICS_TOKEN = "a-monitoring-token-for-tests"
AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@pytest.fixture
def backend() -> dict[str, str]:
    """The embedded defaults only: what /metrics reports is the web layer's concern; the monitoring token
    is set as an operator sets it."""
    return {"BACKSTRIDE_METRICS_TOKEN": METRICS_TOKEN}


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples[(f"backstride_{name}", tuple(sorted(labels.items())))]


def test_an_empty_installation(client):
    samples = scrape(client)
    assert value(samples, "inbox_events", status="pending") == 0
    assert value(samples, "athletes") == 0
    assert value(samples, "queue_tasks", state="ready") == 0


def test_events_host_calls_and_budget_after_some_work(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 801, name="#retro run", distance=1200.0, moving_time=500.0)
    strava.add_activity(ATHLETE_ID, 802, name="Ride", sport_type="Ride")
    for activity_id in (801, 802):
        client.post("/webhooks/strava", json=event(activity_id))
    client.post("/webhooks/strava", json=event(801))  # a duplicate: dropped, never stored
    samples = scrape(client)
    assert value(samples, "inbox_events", status="pending") == 2
    assert value(samples, "inbox_events_due") == 2

    run_queue(services)
    samples = scrape(client)
    assert value(samples, "inbox_events", status="done") == 1
    assert value(samples, "inbox_events", status="ignored") == 1
    assert value(samples, "inbox_events", status="pending") == 0
    # Every call to the host counted against the event that spent it: at most 3 for a note, 1 for a ride.
    calls_801 = [c for c in strava.calls if "/activities/801" in c[1]]
    assert value(samples, "host_calls", status="done") == len(calls_801) <= 3
    assert value(samples, "host_calls", status="ignored") == 1
    assert value(samples, "settled_events_counted", status="done") == 1
    assert value(samples, "athletes") == 1
    assert value(samples, "athletes_needing_reconnect") == 0
    for window in ("short", "daily"):
        limit = value(samples, "host_rate_limit", host="strava", window=window)
        usage = value(samples, "host_rate_usage", host="strava", window=window)
        assert usage >= len(strava.calls)
        assert value(samples, "host_budget_left", host="strava", window=window) == limit - usage
    assert value(samples, "host_blocked", host="strava") == 0


def test_the_budget_left_is_whole_again_once_the_window_has_passed(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 804, name="#retro run", distance=1200.0, moving_time=500.0)
    client.post("/webhooks/strava", json=event(804))
    run_queue(services)
    assert value(scrape(client), "host_budget_left", host="strava", window="short") < strava.rate_limit[0]
    with services.store.session() as session:  # the counts were taken yesterday
        session.execute(update(RateLimitState).values(observed_at=utcnow() - timedelta(days=1)))
    samples = scrape(client)
    for window, limit in (("short", strava.rate_limit[0]), ("daily", strava.rate_limit[1])):
        assert value(samples, "host_rate_usage", host="strava", window=window) == 0
        assert value(samples, "host_budget_left", host="strava", window=window) == limit


def test_metrics_name_no_athlete_or_activity(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 803, name="#retro run")
    client.post("/webhooks/strava", json=event(803))
    run_queue(services)
    text = client.get("/metrics", headers=AUTH).get_data(as_text=True)
    assert str(ATHLETE_ID) not in text and "803" not in text


def test_metrics_answer_only_the_monitoring_token(client, env, strava):
    """Issue 20: /metrics was public (athlete counts, budget left)."""
    from plugin.web import create_app

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers=AUTH).status_code == 200
    unset = {k: v for k, v in env.items() if k != "BACKSTRIDE_METRICS_TOKEN"}
    assert create_app(unset, TESTING=True).test_client().get("/metrics", headers=AUTH).status_code == 404
