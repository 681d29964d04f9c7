"""Backstride (`backstride serve`, a real process) against the sandbox host over loopback HTTP. No mocks: each
test drives the plugin only through DESIGN.md's interfaces and asserts what the host finally holds."""

from __future__ import annotations

import time

import pytest
import requests

from plugin.analysis.notes import NOTE_START
from plugin.sandbox.stack import Stack
from plugin.sandbox.state import SandboxConfig
from tests.conftest import EMBEDDED_ONLY

ATHLETE = 4040  # made up
# What does not depend on the database or the queue runs on the embedded defaults only (EMBEDDED_ONLY); the
# inbox, the retry and deferral machinery, the shared rate budget and crash recovery run on both.
RUN = {
    "sport_type": "Run",
    "distance": 1200.0,
    "moving_time": 540,
    "elapsed_time": 560,
    "average_cadence": 88.0,
}


@pytest.fixture
def stack(backend):
    # backend: the embedded defaults, or PostgreSQL and Redis (tests/conftest.py).
    config = SandboxConfig(seed=False, delivery_retry_s=0.2)
    # Failed jobs and 429s with headroom are retried after 1 s instead of 30 s: the same path, sooner.
    with Stack(config, extra_env={**backend, "BACKSTRIDE_RETRY_BASE_S": "1"}) as running:
        running.control("POST", "/athletes", json={"id": ATHLETE, "firstname": "Eve", "weight": 64.0})
        running.subscribe()
        yield running


@pytest.fixture
def connected(stack):
    response = stack.connect(athlete_id=ATHLETE)
    assert response.status_code == 200
    assert "connected" in response.text
    return stack


def host_calls(stack, method: str | None = None) -> list[dict]:
    calls = stack.control("GET", "/calls").json()
    return [c for c in calls if c["path"].startswith("/api/") and (method is None or c["method"] == method)]


def notes_in(stack, activity_id: int) -> int:
    return (stack.activity(activity_id).get("description") or "").count(NOTE_START)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


# --- connecting ---------------------------------------------------------------------------------------------


@EMBEDDED_ONLY
def test_connect_through_the_consent_page_then_activities_get_notes(connected):
    activity = connected.upload(athlete_id=ATHLETE, name="Track #retro", description="Felt good.", **RUN)
    connected.wait_settled()
    description = connected.activity(activity["id"])["description"]
    assert description.startswith("Felt good.\n\n")
    assert description.count(NOTE_START) == 1
    assert "1.20 km" in description
    # One call for the activity, one (404) for the streams of a streamless upload, one PUT.
    assert [c["method"] for c in host_calls(connected) if "/activities/" in c["path"]] == [
        "GET",
        "GET",
        "PUT",
    ]


@EMBEDDED_ONLY
def test_cancel_on_the_consent_page_connects_nobody(stack):
    response = stack.connect(athlete_id=ATHLETE, cancel=True)
    assert response.status_code == 403
    activity = stack.upload(athlete_id=ATHLETE, name="#retro", **RUN)
    stack.control("POST", "/idle")
    time.sleep(0.5)
    assert notes_in(stack, activity["id"]) == 0
    assert host_calls(stack) == [c for c in host_calls(stack) if "push_subscriptions" in c["path"]]


@EMBEDDED_ONLY
def test_unticking_write_access_is_explained_and_nothing_is_written(stack):
    response = stack.connect(athlete_id=ATHLETE, untick=("activity:write",))
    assert response.status_code == 403
    assert "activity:write" in response.text
    activity = stack.upload(athlete_id=ATHLETE, name="#retro", **RUN)
    stack.control("POST", "/idle")
    assert notes_in(stack, activity["id"]) == 0


@EMBEDDED_ONLY
def test_reconnecting_keeps_one_athlete_and_working_tokens(connected):
    again = connected.connect(athlete_id=ATHLETE)  # the host skips consent: already authorized
    assert again.status_code == 200
    activity = connected.upload(athlete_id=ATHLETE, name="#retro", **RUN)
    connected.wait_settled()
    assert notes_in(connected, activity["id"]) == 1


# --- events -------------------------------------------------------------------------------------------------


@EMBEDDED_ONLY
def test_create_update_and_delete(connected):
    tagged = connected.upload(athlete_id=ATHLETE, name="Morning run", description="Mine.", **RUN)
    connected.wait_settled()
    assert connected.activity(tagged["id"])["description"] == "Mine."

    connected.control("PATCH", f"/activities/{tagged['id']}", json={"name": "Morning run, #retro intervals"})
    connected.wait_settled()
    assert notes_in(connected, tagged["id"]) == 1

    calls_before = len(host_calls(connected))
    connected.control("PATCH", f"/activities/{tagged['id']}", json={"name": "Morning run, backward walk"})
    connected.wait_settled()
    description = connected.activity(tagged["id"])["description"]
    assert len(host_calls(connected)) > calls_before  # the update was looked at again
    assert description.count(NOTE_START) == 1
    # At a running pace and cadence it is running, whatever the new title says.
    assert "1 backward effort" in description and "backward walk" not in description

    connected.control("PATCH", f"/activities/{tagged['id']}", json={"sport_type": "Ride"})
    connected.wait_settled()
    assert connected.activity(tagged["id"])["description"] == "Mine."

    calls_before = len(host_calls(connected))
    connected.control("DELETE", f"/activities/{tagged['id']}")
    connected.wait_settled()
    assert len(host_calls(connected)) == calls_before  # a delete costs no host call


@EMBEDDED_ONLY
def test_untagged_run_and_ride_cost_one_call_each_and_get_no_note(connected):
    run = connected.upload(athlete_id=ATHLETE, name="Easy run", **RUN)
    ride = connected.upload(
        athlete_id=ATHLETE, name="#retro ride", sport_type="Ride", distance=20000.0, moving_time=3600
    )
    connected.wait_settled()
    assert notes_in(connected, run["id"]) == 0 and notes_in(connected, ride["id"]) == 0
    activity_calls = [c for c in host_calls(connected) if "/activities/" in c["path"]]
    assert len(activity_calls) == 2


def test_duplicated_delivery_writes_once(connected):
    connected.control("POST", "/faults", json={"kind": "duplicate_event", "count": 1})
    activity = connected.upload(athlete_id=ATHLETE, name="#retro", **RUN)
    connected.wait_settled()
    deliveries = connected.control("GET", "/deliveries").json()
    assert sum(d["event"]["object_id"] == activity["id"] for d in deliveries) == 2
    assert notes_in(connected, activity["id"]) == 1
    assert len(host_calls(connected, "PUT")) == 1


@EMBEDDED_ONLY
def test_revoked_athlete_is_forgotten_and_not_annotated(connected):
    connected.control("POST", f"/athletes/{ATHLETE}/revoke")
    connected.wait_settled()
    calls_before = len(host_calls(connected))
    activity = connected.upload(athlete_id=ATHLETE, name="#retro", **RUN)
    connected.wait_settled()
    assert notes_in(connected, activity["id"]) == 0
    assert len(host_calls(connected)) == calls_before  # the plugin no longer knows this athlete


@EMBEDDED_ONLY
def test_a_dropped_event_is_lost_at_the_host_not_at_the_plugin(connected):
    """A dropped delivery never reaches us (as with Strava); the next event for the activity repairs it."""
    connected.control("POST", "/faults", json={"kind": "drop_event", "count": 1})
    activity = connected.upload(athlete_id=ATHLETE, name="#retro", **RUN)
    connected.wait_settled()
    assert notes_in(connected, activity["id"]) == 0
    connected.control("PATCH", f"/activities/{activity['id']}", json={"name": "#retro again"})
    connected.wait_settled()
    assert notes_in(connected, activity["id"]) == 1


# --- host trouble -------------------------------------------------------------------------------------------


@EMBEDDED_ONLY
def test_webhook_answers_fast_while_the_host_is_slow(connected):
    connected.control(
        "POST",
        "/faults",
        json={"kind": "http", "path": "/api/v3/activities/", "latency_ms": 1500, "count": 1},
    )
    activity = connected.upload(athlete_id=ATHLETE, name="#retro", **RUN)
    connected.control("POST", "/idle")
    deliveries = connected.control("GET", "/deliveries").json()
    assert deliveries[-1]["status"] == "delivered" and deliveries[-1]["attempts"] == 1
    connected.wait_settled()
    assert notes_in(connected, activity["id"]) == 1


def test_429_storm_is_waited_out_without_hammering_the_host(connected):
    # The host answers 429 (with headroom left in its headers) to the first call of each of three jobs.
    connected.control(
        "POST", "/faults", json={"kind": "http", "path": "/api/v3/activities/", "status": 429, "count": 3}
    )
    ids = [connected.upload(athlete_id=ATHLETE, name=f"#retro {n}", **RUN)["id"] for n in range(3)]
    wait_for(lambda: all(notes_in(connected, i) == 1 for i in ids), 90, "notes after the 429 storm")
    refused = [c for c in host_calls(connected) if c["status"] == 429]
    assert len(refused) == 3
    assert len(host_calls(connected, "PUT")) == 3


def test_a_spent_window_defers_every_job_without_further_calls(connected):
    used = len(host_calls(connected))
    connected.control("PUT", "/limits", json={"read": [used + 2, 1000], "reset_usage": False})
    ids = [connected.upload(athlete_id=ATHLETE, name=f"#retro {n}", **RUN)["id"] for n in range(3)]
    connected.control("POST", "/idle")
    time.sleep(3)
    calls = host_calls(connected)
    assert [c for c in calls if c["status"] == 429] == []  # the plugin stopped before the host had to refuse
    assert sum(notes_in(connected, i) for i in ids) == 0
    time.sleep(2)
    assert len(host_calls(connected)) == len(calls)  # and it stays quiet until the next window


def test_a_burst_three_times_the_budget_gets_no_429(connected):
    # A fresh 15-minute window of 15 calls; 15 tagged activities need 45 (activity, streams, update).
    connected.control("PUT", "/limits", json={"read": [15, 1000]})
    window = int(time.time() // 900)
    earlier = len(host_calls(connected))  # connecting fetched the athlete's profile
    ids = [connected.upload(athlete_id=ATHLETE, name=f"#retro {n}", **RUN)["id"] for n in range(15)]
    connected.control("POST", "/idle")  # every event delivered and acknowledged

    def quiet() -> bool:  # the plugin has stopped calling: what it could do in this window is done
        before = len(host_calls(connected))
        time.sleep(2)
        return len(host_calls(connected)) == before

    wait_for(quiet, 60, "the plugin to stop calling the host")
    calls = host_calls(connected)[earlier:]
    assert [c for c in calls if c["status"] == 429] == []
    if int(time.time() // 900) == window:  # (a test that straddles a quarter hour sees two windows)
        assert len(calls) <= 15
        annotated = sum(notes_in(connected, i) for i in ids)
        assert 1 <= annotated <= 5  # the rest wait for the next window, not counted as failures


def test_a_host_outage_that_ends(connected):
    # Three 503s exhaust the client's immediate retries; the job is retried later and then succeeds.
    connected.control(
        "POST", "/faults", json={"kind": "http", "path": "/api/v3/activities/", "status": 503, "count": 3}
    )
    activity = connected.upload(athlete_id=ATHLETE, name="#retro", description="Outage day.", **RUN)
    wait_for(lambda: notes_in(connected, activity["id"]) == 1, 90, "the note after the outage")
    assert connected.activity(activity["id"])["description"].startswith("Outage day.\n\n")


def test_a_killed_worker_loses_no_acknowledged_event(connected):
    connected.stop_plugin(sig=9)  # SIGKILL the whole plugin: web, worker, supervisor
    activity = connected.upload(athlete_id=ATHLETE, name="#retro", **RUN)
    connected.control("POST", "/idle")  # the host's deliveries fail while the plugin is down
    connected.start_plugin()
    connected.control("PATCH", f"/activities/{activity['id']}", json={"name": "#retro, after the crash"})
    connected.wait_settled()
    assert notes_in(connected, activity["id"]) == 1


@EMBEDDED_ONLY
def test_healthz_is_served(connected):
    assert requests.get(f"{connected.plugin_url}/healthz", timeout=5).json()["status"] == "ok"
