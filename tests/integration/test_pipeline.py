"""From webhook to description: the worker's processing of each event, against the fake host."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from plugin.analysis.notes import NOTE_END, NOTE_START
from plugin.pipeline import MAX_ATTEMPTS
from plugin.sandbox.state import SEED_FILE
from plugin.store import utcnow
from plugin.store.models import Athlete, InboxEvent
from tests.conftest import ATHLETE_ID, event, run_queue


@pytest.fixture
def backend() -> dict[str, str]:
    """The embedded defaults only: the pipeline's decisions; the store, intake, queue and
    rate budget are tested on both backends elsewhere."""
    return {}


CADENCE_STREAMS = {
    "time": {
        "data": list(range(0, 600, 10)),
        "series_type": "time",
        "original_size": 60,
        "resolution": "high",
    },
    "distance": {
        "data": [i * 22.0 for i in range(60)],
        "series_type": "time",
        "original_size": 60,
        "resolution": "high",
    },
    "cadence": {"data": [80] * 60, "series_type": "time", "original_size": 60, "resolution": "high"},
}


def deliver(client, services, body) -> dict:
    response = client.post("/webhooks/strava", json=body)
    assert response.status_code == 200
    run_queue(services)
    return response.get_json()


def inbox_row(services, object_id: int) -> InboxEvent:
    with services.store.session() as session:
        return session.query(InboxEvent).filter_by(object_id=object_id).order_by(InboxEvent.id.desc()).first()


def count_notes(text: str) -> int:
    return text.count(NOTE_START)


# --- the happy path and the call budget ------------------------------------------------------------------


def test_tagged_run_gets_one_note_below_the_athletes_text_in_three_calls(client, services, strava, connected):
    strava.add_activity(
        ATHLETE_ID,
        501,
        name="Sunday #retro run",
        description="Legs felt heavy.\nGood day.",
        distance=1320.0,
        moving_time=590.0,
        streams=CADENCE_STREAMS,
    )
    deliver(client, services, event(501))

    description = strava.description(501)
    assert description.startswith("Legs felt heavy.\nGood day.\n\n")
    assert count_notes(description) == 1
    assert description.rstrip().endswith(f"{NOTE_END} https://backstride.test/science")
    assert "1.32 km" in description
    assert "kcal" in description
    assert [m for m, _ in strava.calls] == ["GET", "GET", "PUT"]
    assert inbox_row(services, 501).status == "done"
    record = services.store.activity_record(501)
    assert record.written and record.efforts == 1


def test_untagged_run_costs_one_call_and_writes_nothing(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 502, name="Easy run", description="Just a jog.")
    deliver(client, services, event(502))
    assert strava.description(502) == "Just a jog."
    assert len(strava.calls) == 1
    assert inbox_row(services, 502).status == "done"


def test_non_foot_sport_is_skipped_after_one_call(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 503, name="#retro ride", sport_type="Ride")
    deliver(client, services, event(503))
    assert strava.description(503) is None
    assert len(strava.calls) == 1
    row = inbox_row(services, 503)
    assert row.status == "ignored" and "Ride" in row.outcome


def test_duplicate_event_costs_no_call(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 504, name="#retro", streams=CADENCE_STREAMS)
    deliver(client, services, event(504))
    calls = len(strava.calls)
    deliver(client, services, event(504))
    assert len(strava.calls) == calls


def test_manual_tagged_session_fetches_no_streams(client, services, strava, connected):
    strava.add_activity(
        ATHLETE_ID,
        505,
        name="Deadmill session",
        manual=True,
        distance=0.0,
        moving_time=900.0,
        average_cadence=None,
    )
    deliver(client, services, event(505))
    assert strava.calls_to("GET", "/streams") == []
    assert count_notes(strava.description(505)) == 1
    assert "15:00" in strava.description(505)


def add_deadmill(strava, activity_id: int) -> None:
    strava.add_activity(
        ATHLETE_ID, activity_id, name="#deadmill", manual=True, distance=0.0, moving_time=900.0
    )


def test_careful_start_line_while_the_weekly_backward_volume_doubles(client, services, strava, connected):
    # 15 minutes backward each: the first is a first week, the second doubles it, the third does not.
    for activity_id in (531, 532, 533):
        add_deadmill(strava, activity_id)
        deliver(client, services, event(activity_id))
    assert "build up slowly" in strava.description(531)
    assert "build up slowly" in strava.description(532)
    assert "build up slowly" not in strava.description(533)
    assert count_notes(strava.description(533)) == 1


def test_reprocessing_does_not_count_the_activity_against_itself(client, services, strava, connected):
    add_deadmill(strava, 534)
    deliver(client, services, event(534))
    deliver(client, services, event(534, aspect_type="update", updates={"title": "#deadmill again"}))
    assert "build up slowly" in strava.description(534)


def test_compact_note_style_from_the_settings(client, services, strava, connected):
    with services.store.session() as session:
        session.execute(update(Athlete).values(settings={"note_style": "compact"}))
    strava.add_activity(ATHLETE_ID, 535, name="#retro run", streams=CADENCE_STREAMS)
    deliver(client, services, event(535))
    description = strava.description(535)
    # The first backward week: the careful-start tip takes the myth's place in four lines.
    assert description.split("\n")[1].startswith("Energy: about")
    assert "More backward than usual" in description and "Myth:" not in description
    assert "Kneecap" not in description and len(description.split("\n")) == 4


def add_seed_activity(strava, activity_id: int, key: str, **changes) -> None:
    """A sandbox seed activity (a real recording, maybe with spliced backward intervals), laps unnamed."""
    seed = next(a for a in json.loads(SEED_FILE.read_text())["activities"] if a["key"] == key)
    activity = {**seed["activity"], **changes, "id": activity_id, "athlete": {"id": ATHLETE_ID}}
    activity["laps"] = [{**lap, "name": f"Lap {lap['lap_index']}"} for lap in activity["laps"]]
    strava.activities[activity_id] = activity
    strava.streams[activity_id] = {name: {"data": data} for name, data in seed["streams"].items()}


def test_untagged_run_with_short_step_laps_is_found_from_its_streams(client, services, strava, connected):
    add_seed_activity(strava, 506, "retro-intervals", name="Tempo run", description="Felt strong.")
    deliver(client, services, event(506))
    description = strava.description(506)
    assert description.startswith("Felt strong.\n\n")
    assert "3 backward efforts" in description
    # The host's own forward-assuming figure, and what going backward added to it.
    assert (
        "The 365 kcal shown likely assume forward motion; with the backward parts counted, about"
        in description
    )
    assert [m for m, _ in strava.calls] == ["GET", "GET", "PUT"]


def test_tag_only_setting_leaves_an_untagged_run_alone_after_one_call(client, services, strava, connected):
    with services.store.session() as session:
        session.execute(update(Athlete).values(settings={"detection": "tagged"}))
    add_seed_activity(strava, 507, "retro-intervals", name="Tempo run", description="Felt strong.")
    deliver(client, services, event(507))
    assert strava.description(507) == "Felt strong."
    assert len(strava.calls) == 1


def test_a_forward_run_is_left_alone(client, services, strava, connected):
    add_seed_activity(strava, 508, "easy-run")
    deliver(client, services, event(508))
    assert not strava.description(508)
    assert strava.calls_to("PUT") == []


# --- re-processing: one note, replaced in place ----------------------------------------------------------


def test_title_update_replaces_the_note_in_place(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 510, name="#retro run", description="Mine.", streams=CADENCE_STREAMS)
    deliver(client, services, event(510))
    first = strava.description(510)
    # The athlete adds text below our note, then renames; the activity got longer meanwhile.
    strava.activities[510]["description"] = first + "\n\nAdded later."
    strava.activities[510]["distance"] = 2640.0
    strava.activities[510]["name"] = "#retro run, longer"
    deliver(
        client,
        services,
        event(510, "update", updates={"title": "#retro run, longer"}, event_time=1_700_000_100),
    )

    second = strava.description(510)
    assert count_notes(second) == 1
    assert second.startswith("Mine.\n\n")
    assert second.endswith("\n\nAdded later.")
    assert "2.64 km" in second


def test_reprocessing_an_unchanged_activity_writes_nothing(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 511, name="#retro", streams=CADENCE_STREAMS)
    deliver(client, services, event(511))
    puts = len(strava.calls_to("PUT"))
    deliver(client, services, event(511, "update", updates={"type": "Run"}, event_time=1_700_000_200))
    assert len(strava.calls_to("PUT")) == puts
    assert "up to date" in inbox_row(services, 511).outcome


def test_removing_the_tag_removes_the_note_and_restores_the_text(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 512, name="#retro", description="My words.", streams=CADENCE_STREAMS)
    deliver(client, services, event(512))
    strava.activities[512]["name"] = "Normal run"
    deliver(client, services, event(512, "update", updates={"title": "Normal run"}, event_time=1_700_000_300))
    assert strava.description(512) == "My words."


def test_our_own_note_is_not_read_as_a_tag(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 513, name="Backward run", streams=CADENCE_STREAMS)
    deliver(client, services, event(513))
    assert count_notes(strava.description(513)) == 1
    strava.activities[513]["name"] = "Run"
    deliver(client, services, event(513, "update", updates={"title": "Run"}, event_time=1_700_000_400))
    assert strava.description(513) in ("", None)


def test_a_note_the_athlete_edited_is_left_alone(client, services, strava, connected):
    strava.add_activity(
        ATHLETE_ID,
        514,
        name="#retro",
        description=f"Mine.\n\n{NOTE_START}: my own edit",
        streams=CADENCE_STREAMS,
    )
    deliver(client, services, event(514))
    assert strava.description(514) == f"Mine.\n\n{NOTE_START}: my own edit"
    assert strava.calls_to("PUT") == []
    assert "edited by the athlete" in inbox_row(services, 514).outcome


def test_retyped_to_a_ride_removes_the_note(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 515, name="#retro", description="Text.", streams=CADENCE_STREAMS)
    deliver(client, services, event(515))
    strava.activities[515]["sport_type"] = "Ride"
    deliver(client, services, event(515, "update", updates={"type": "Ride"}, event_time=1_700_000_500))
    assert strava.description(515) == "Text."


def test_privacy_only_update_costs_nothing(client, services, strava, connected):
    deliver(client, services, event(516, "update", updates={"private": "true"}))
    assert strava.calls == []
    assert inbox_row(services, 516).status == "ignored"


# --- deletes and deauthorization --------------------------------------------------------------------------


def test_activity_delete_removes_its_record_without_host_calls(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 520, name="#retro", streams=CADENCE_STREAMS)
    deliver(client, services, event(520))
    assert services.store.activity_record(520) is not None
    calls = len(strava.calls)
    deliver(client, services, event(520, "delete", event_time=1_700_000_600))
    assert services.store.activity_record(520) is None
    assert len(strava.calls) == calls


DEAUTHORIZED = {"object_type": "athlete", "updates": {"authorized": "false"}, "event_time": 1_700_000_700}


def test_a_confirmed_deauthorization_deletes_the_athlete_and_everything_theirs(
    client, services, strava, connected
):
    strava.add_activity(ATHLETE_ID, 521, name="#retro", streams=CADENCE_STREAMS)
    deliver(client, services, event(521))
    strava.revoke_access(ATHLETE_ID)  # the athlete revoked the app on the host
    deliver(client, services, event(ATHLETE_ID, "update", **DEAUTHORIZED))
    assert services.store.athlete(ATHLETE_ID) is None
    assert services.store.activity_record(521) is None
    with services.store.session() as session:
        assert session.query(InboxEvent).filter_by(owner_id=ATHLETE_ID).count() == 0
    # Later events of that athlete are not even stored.
    client.post("/webhooks/strava", json=event(522))
    assert inbox_row(services, 522) is None


def test_a_forged_deauthorization_deletes_nothing(client, services, strava, connected):
    """Webhooks are not signed: the host still accepts the athlete's token, so the grant is not gone."""
    strava.add_activity(ATHLETE_ID, 521, name="#retro", streams=CADENCE_STREAMS)
    deliver(client, services, event(521))
    calls = len(strava.calls)
    deliver(client, services, event(ATHLETE_ID, "update", **DEAUTHORIZED))
    assert strava.calls[calls:] == [("GET", "/api/v3/athlete")]  # the host's word, one call
    assert services.store.athlete(ATHLETE_ID) is not None
    assert services.store.activity_record(521) is not None
    assert "not confirmed" in inbox_row(services, ATHLETE_ID).outcome
    # The athlete's next upload still gets its note.
    strava.add_activity(ATHLETE_ID, 522, name="#retro", streams=CADENCE_STREAMS)
    deliver(client, services, event(522, event_time=1_700_000_800))
    assert count_notes(strava.description(522)) == 1


def test_a_deauthorization_whose_token_refresh_still_works_deletes_nothing(
    client, services, strava, connected
):
    """The access token alone refused (expired, say) is not the grant gone: the refresh decides."""
    strava.access.clear()
    deliver(client, services, event(ATHLETE_ID, "update", **DEAUTHORIZED))
    assert services.store.athlete(ATHLETE_ID) is not None
    assert [m for m, _ in strava.calls[-3:]] == ["GET", "POST", "GET"]


def test_a_token_no_configured_key_opens_means_reconnect(client, services, strava, connected):
    from cryptography.fernet import Fernet

    from plugin.store.crypto import TokenCipher

    services.store.cipher = TokenCipher(Fernet.generate_key().decode())  # the old key is gone
    strava.add_activity(ATHLETE_ID, 530, name="#retro", streams=CADENCE_STREAMS)
    deliver(client, services, event(530))
    row = inbox_row(services, 530)
    assert row.status == "failed" and "must reconnect" in row.outcome
    assert services.store.athlete(ATHLETE_ID).needs_reconnect
    assert strava.calls == []  # no host call with a token nobody can read


def test_disconnect_while_a_job_runs_wins(client, services, strava, connected, monkeypatch):
    """Issue 20: with a slow host the note was written after "Disconnected and deleted", and a record came
    back for the deleted athlete."""
    strava.add_activity(ATHLETE_ID, 531, name="#retro", streams=CADENCE_STREAMS)
    fetch = services.host.fetch_activity

    def fetch_then_disconnect(token, activity_id):
        activity = fetch(token, activity_id)
        services.store.delete_athlete(ATHLETE_ID)  # the athlete pressed Disconnect meanwhile
        return activity

    monkeypatch.setattr(services.host, "fetch_activity", fetch_then_disconnect)
    client.post("/webhooks/strava", json=event(531))
    run_queue(services)
    assert not strava.calls_to("PUT")
    assert count_notes(strava.description(531) or "") == 0
    assert services.store.activity_record(531) is None


def test_activity_deleted_meanwhile_is_settled(client, services, strava, connected):
    deliver(client, services, event(523))  # the host has no such activity: 404
    row = inbox_row(services, 523)
    assert row.status == "done" and "no longer exists" in row.outcome


def test_private_activity_without_permission_fails_with_a_reason(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 524, name="#retro", streams=CADENCE_STREAMS)
    strava.fail("PUT", "/activities/524", 403, body={"message": "Authorization Error"})
    deliver(client, services, event(524))
    row = inbox_row(services, 524)
    assert row.status == "failed" and "scopes" in row.outcome


# --- host faults -------------------------------------------------------------------------------------------


def test_a_brief_5xx_is_retried_by_the_client(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 530, name="#retro", streams=CADENCE_STREAMS)
    strava.fail("GET", "/activities/530$", 502)
    deliver(client, services, event(530))
    assert count_notes(strava.description(530)) == 1


def test_an_outage_defers_the_job_and_it_finishes_when_the_host_is_back(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 531, name="#retro", streams=CADENCE_STREAMS)
    strava.fail("GET", "/activities/531$", 503, times=3)
    deliver(client, services, event(531))
    row = inbox_row(services, 531)
    assert row.status == "pending" and row.not_before > utcnow()
    assert "will retry" in row.outcome
    assert services.queue.huey.scheduled_count() == 1

    make_due(services, 531)
    run_queue(services)
    assert inbox_row(services, 531).status == "done"
    assert count_notes(strava.description(531)) == 1


@pytest.fixture
def retry_base_2s(env):
    """BACKSTRIDE_RETRY_BASE_S=2 for the app built after it (list it before `client`)."""
    env["BACKSTRIDE_RETRY_BASE_S"] = "2"


def test_the_first_retry_waits_about_30_s(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 533, name="#retro", streams=CADENCE_STREAMS)
    strava.fail("GET", "/activities/533$", 503, times=3)
    before = utcnow()
    deliver(client, services, event(533))
    wait = inbox_row(services, 533).not_before - before
    assert timedelta(seconds=22.5) <= wait <= timedelta(seconds=38.5)  # 30 s, jittered by +/- 25%


def test_the_retry_base_setting_shortens_the_wait(retry_base_2s, client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 534, name="#retro", streams=CADENCE_STREAMS)
    strava.fail("GET", "/activities/534$", 503, times=3)
    before = utcnow()
    deliver(client, services, event(534))
    wait = inbox_row(services, 534).not_before - before
    assert timedelta(seconds=1.5) <= wait <= timedelta(seconds=3.5)


def test_an_endless_outage_ends_in_the_dead_letter_state_with_the_reason(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 532, name="#retro")
    strava.fail("GET", "/activities/532$", 500, times=1000)
    deliver(client, services, event(532))
    for _ in range(MAX_ATTEMPTS):
        make_due(services, 532)
        run_queue(services)
    row = inbox_row(services, 532)
    assert row.status == "dead"
    assert "answered 500" in row.outcome


@pytest.mark.usefixtures("one_rate_window")
def test_429_with_the_window_spent_defers_every_job_to_the_next_window(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 540, name="#retro", streams=CADENCE_STREAMS)
    strava.add_activity(ATHLETE_ID, 541, name="#retro", streams=CADENCE_STREAMS)
    strava.fail(
        "GET",
        "/activities/540$",
        429,
        headers={"X-ReadRateLimit-Limit": "100,1000", "X-ReadRateLimit-Usage": "100,400"},
    )
    deliver(client, services, event(540))
    row = inbox_row(services, 540)
    assert row.status == "pending"
    assert row.not_before.minute % 15 == 0 and row.not_before.second == 0
    assert row.attempts == 0  # waiting for the window is not a failed attempt

    calls = len(strava.calls)
    deliver(client, services, event(541))  # the fleet's other jobs wait too, without calling the host
    assert len(strava.calls) == calls
    assert inbox_row(services, 541).status == "pending"

    reopen_rate_window(services)
    for object_id in (540, 541):
        make_due(services, object_id)
    run_queue(services)
    assert count_notes(strava.description(540)) == 1
    assert count_notes(strava.description(541)) == 1


def test_429_with_headroom_is_retried_after_a_short_backoff(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 542, name="#retro", streams=CADENCE_STREAMS)
    strava.fail("GET", "/activities/542$", 429)
    deliver(client, services, event(542))
    row = inbox_row(services, 542)
    assert row.status == "pending"
    assert timedelta(seconds=10) < row.not_before - utcnow() < timedelta(seconds=60)
    assert services.store.rate_counts("strava").blocked_until is None


@pytest.mark.usefixtures("one_rate_window")
def test_usage_reaching_the_limit_blocks_before_any_429(client, services, strava, connected):
    strava.rate_usage = [96, 500]  # the next responses report 97 and 98 of 100: 98 keeps the margin
    strava.add_activity(ATHLETE_ID, 543, name="#retro", streams=CADENCE_STREAMS)
    deliver(client, services, event(543))
    assert len(strava.calls) == 2  # activity and streams; the PUT waits for the next window
    assert inbox_row(services, 543).status == "pending"
    assert services.store.rate_counts("strava").blocked_until is not None


# --- tokens -----------------------------------------------------------------------------------------------


def test_401_gets_one_refresh_then_succeeds(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 550, name="#retro", streams=CADENCE_STREAMS)
    old = services.store.tokens(ATHLETE_ID)
    strava.fail("GET", "/activities/550$", 401)
    deliver(client, services, event(550))
    assert count_notes(strava.description(550)) == 1
    assert len(strava.calls_to("POST", "/oauth/token")) == 1
    new = services.store.tokens(ATHLETE_ID)
    assert new.refresh_token != old.refresh_token


def test_persistent_401_marks_the_athlete_to_reconnect(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 551, name="#retro")
    strava.fail("GET", "/activities/551$", 401, times=5)
    deliver(client, services, event(551))
    assert services.store.athlete(ATHLETE_ID).needs_reconnect
    row = inbox_row(services, 551)
    assert row.status == "failed" and "reconnect" in row.outcome
    assert len(strava.calls_to("GET", "/activities/551$")) == 2


def test_refused_refresh_token_marks_the_athlete_to_reconnect(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 552, name="#retro")
    expire_soon(services)
    strava.refresh_tokens.clear()  # revoked at the host
    deliver(client, services, event(552))
    assert services.store.athlete(ATHLETE_ID).needs_reconnect
    assert inbox_row(services, 552).status == "failed"


def test_a_token_close_to_expiry_is_refreshed_before_the_call(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 553, name="#retro", streams=CADENCE_STREAMS)
    expire_soon(services)
    old = services.store.tokens(ATHLETE_ID)
    deliver(client, services, event(553))
    assert strava.calls[0] == ("POST", "/oauth/token")
    new = services.store.tokens(ATHLETE_ID)
    assert new.refresh_token != old.refresh_token and new.refresh_token in strava.refresh_tokens
    assert count_notes(strava.description(553)) == 1


def test_two_workers_refreshing_at_once_keep_the_rotated_token(services, strava, connected):
    expire_soon(services)
    barrier = threading.Barrier(4)
    results: list[str] = []

    def work():
        barrier.wait()
        results.append(services.pipeline.access_token(ATHLETE_ID))

    original_refresh = services.host.refresh

    def slow_refresh(token):
        time.sleep(0.3)  # the host takes a while: the other workers must wait, not refresh again
        return original_refresh(token)

    services.host.refresh = slow_refresh
    services.pipeline._sleep = time.sleep
    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(strava.calls_to("POST", "/oauth/token")) == 1
    assert len(set(results)) == 1
    stored = services.store.tokens(ATHLETE_ID)
    assert stored.access_token == results[0]
    assert stored.refresh_token in strava.refresh_tokens


def test_events_of_an_athlete_who_must_reconnect_cost_nothing(client, services, strava, connected):
    services.store.mark_needs_reconnect(ATHLETE_ID)
    deliver(client, services, event(554))
    assert strava.calls == []
    assert inbox_row(services, 554).status == "failed"


# --- durability --------------------------------------------------------------------------------------------


def test_an_event_lost_from_the_queue_is_resumed_from_the_inbox(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 560, name="#retro", streams=CADENCE_STREAMS)
    client.post("/webhooks/strava", json=event(560))
    services.queue.huey.flush()  # the queue lost its task (a crash, a flushed Redis)
    age_inbox(services, 560, seconds=120)
    assert services.queue.resume_events() == 1
    run_queue(services)
    assert count_notes(strava.description(560)) == 1


@pytest.mark.usefixtures("one_rate_window")
def test_a_deferred_event_is_resumed_only_once_it_is_overdue(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 564, name="#retro", streams=CADENCE_STREAMS)
    strava.fail(
        "GET",
        "/activities/564$",
        429,
        headers={"X-ReadRateLimit-Limit": "100,1000", "X-ReadRateLimit-Usage": "100,1000"},
    )
    deliver(client, services, event(564))  # the daily window is spent: deferred until midnight UTC
    age_inbox(services, 564, seconds=600)
    assert services.queue.resume_events() == 0  # its scheduled task is still ahead: nothing to add
    assert services.queue.huey.scheduled_count() == 1

    services.queue.huey.flush()  # the scheduled task was lost, and its time has passed
    reopen_rate_window(services)
    with services.store.session() as session:
        session.execute(
            update(InboxEvent)
            .where(InboxEvent.object_id == 564)
            .values(not_before=utcnow() - timedelta(minutes=5))
        )
    assert services.queue.resume_events() == 1
    run_queue(services)
    assert count_notes(strava.description(564)) == 1


def test_a_worker_that_died_mid_job_loses_its_lease_and_the_event_is_resumed(
    client, services, strava, connected
):
    strava.add_activity(ATHLETE_ID, 561, name="#retro", streams=CADENCE_STREAMS)
    client.post("/webhooks/strava", json=event(561))
    services.queue.huey.flush()
    row = inbox_row(services, 561)
    services.store.claim_event(row.id, timedelta(seconds=-1))  # claimed by a worker whose lease ran out
    assert services.queue.resume_events() == 1
    run_queue(services)
    assert inbox_row(services, 561).status == "done"
    assert count_notes(strava.description(561)) == 1


def test_events_of_one_activity_run_in_order(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 562, name="#retro", streams=CADENCE_STREAMS)
    client.post("/webhooks/strava", json=event(562))
    client.post("/webhooks/strava", json=event(562, "delete", event_time=1_700_000_900))
    first, second = sorted(r[0] for r in services.store.events_to_resume(timedelta(seconds=-10)))
    # The delete may not overtake the create while the create is open.
    assert services.pipeline.handle_event(second).outcome == "busy"
    run_queue(services)
    assert services.store.event(first).status == "done"
    assert services.store.event(second).status == "done"
    assert services.store.activity_record(562) is None


def test_expired_records_are_removed(client, services, strava, connected):
    strava.add_activity(ATHLETE_ID, 563, name="#retro", streams=CADENCE_STREAMS)
    deliver(client, services, event(563))
    with services.store.session() as session:
        session.execute(update(InboxEvent).values(received_at=utcnow() - timedelta(days=8)))
        from plugin.store.models import ActivityRecord

        session.execute(update(ActivityRecord).values(processed_at=utcnow() - timedelta(days=8)))
    assert services.queue.expire_data() == 2
    assert services.store.activity_record(563) is None


# --- helpers ------------------------------------------------------------------------------------------------


def make_due(services, object_id: int | None = None) -> None:
    """Let time pass for a deferred event (every waiting one when object_id is None): its not_before is
    past, and its scheduled task runs now (with the backlog's priority)."""
    waiting = update(InboxEvent).where(InboxEvent.status == "pending")
    if object_id is not None:
        waiting = waiting.where(InboxEvent.object_id == object_id)
    with services.store.session() as session:
        session.execute(waiting.values(not_before=utcnow() - timedelta(seconds=1)))
    huey = services.queue.huey
    for task in huey.read_schedule(utcnow() + timedelta(days=2)):
        task.eta = None
        huey.enqueue(task)


def reopen_rate_window(services) -> None:
    from plugin.store.models import RateLimitState

    # The windows the counts belong to have ended: the next quarter hour, or the next day, has begun.
    with services.store.session() as session:
        session.execute(
            update(RateLimitState).values(blocked_until=None, observed_at=utcnow() - timedelta(days=1))
        )


def expire_soon(services) -> None:
    with services.store.session() as session:
        session.execute(update(Athlete).values(expires_at=int(time.time()) + 60))


def age_inbox(services, object_id: int, seconds: int) -> None:
    with services.store.session() as session:
        session.execute(
            update(InboxEvent)
            .where(InboxEvent.object_id == object_id)
            .values(received_at=utcnow() - timedelta(seconds=seconds))
        )
