"""Strava's JSON loaded with marshmallow (plugin/hosts/strava/schemas.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from marshmallow import ValidationError

from plugin.domain import Activity, Streams
from plugin.hosts.strava.schemas import ActivitySchema, AthleteSchema, WebhookEventSchema, load_streams

REFERENCE_DIR = Path(__file__).resolve().parents[3] / "shared" / "strava"


def reference(name: str) -> dict[str, Any]:
    """A response Strava really sent (copied from stravalib's test resources, see the README there)."""
    if not REFERENCE_DIR.is_dir():
        message = f"Strava reference responses not found in {REFERENCE_DIR}"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (they must be present in CI)")
        pytest.skip(message)
    return json.loads((REFERENCE_DIR / name).read_text())


# --- activities ---


def test_recorded_run_from_strava_loads_into_an_activity():
    activity = ActivitySchema().load(reference("activity.3.json"))

    assert isinstance(activity, Activity)
    assert activity.id == 99895560
    assert activity.athlete_id == 1513
    assert activity.name == "Lunch Rover Shuffle-Walk-Yog with Todd"
    assert activity.sport_type == "Run"  # no sport_type in this response: the deprecated type counts
    assert activity.is_foot_sport
    assert activity.distance_m == pytest.approx(5781.1)
    assert activity.moving_time_s == 2892
    assert activity.elapsed_time_s == 3140
    assert activity.manual is False
    assert activity.description == ""  # Strava sends null


def test_manual_hike_from_strava_loads_into_an_activity():
    activity = ActivitySchema().load(reference("activity-manual.3.json"))

    assert activity.id == 96089609
    assert activity.sport_type == "Hike"
    assert activity.is_foot_sport
    assert activity.distance_m == pytest.approx(22530.8)
    assert activity.moving_time_s == 38700
    assert activity.manual is True
    assert activity.description == ""  # absent altogether
    assert activity.laps == ()


def minimal_activity(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"id": 12345, "name": "Morning Run", "sport_type": "Run", "type": "Run"}
    data.update(overrides)
    return data


def test_sport_type_is_preferred_over_the_deprecated_type():
    activity = ActivitySchema().load(minimal_activity(sport_type="TrailRun", type="Run"))

    assert activity.sport_type == "TrailRun"


def test_description_is_kept():
    activity = ActivitySchema().load(minimal_activity(description="Felt good #retro"))

    assert activity.description == "Felt good #retro"


def test_unknown_activity_fields_are_ignored():
    activity = ActivitySchema().load(
        minimal_activity(brand_new_field={"nested": [1, 2]}, kudos_count=3, map={"summary_polyline": "abc"})
    )

    assert activity.id == 12345
    assert not hasattr(activity, "brand_new_field")


def test_activity_without_id_is_a_validation_error():
    data = minimal_activity()
    del data["id"]

    with pytest.raises(ValidationError) as info:
        ActivitySchema().load(data)

    assert "id" in info.value.messages


def test_laps_become_domain_laps():
    activity = ActivitySchema().load(
        minimal_activity(
            laps=[
                {"lap_index": 1, "name": "Lap 1", "elapsed_time": 300, "moving_time": 290, "distance": 1e3},
                {"name": "backward", "elapsed_time": 120, "distance": 200.0, "average_cadence": 80.0},
            ]
        )
    )

    assert [lap.index for lap in activity.laps] == [1, 2]
    assert activity.laps[1].name == "backward"
    assert activity.laps[1].distance_m == 200.0
    assert activity.laps[1].average_cadence == 80.0


# --- streams ---

TIME = [0, 1, 2, 3]
DISTANCE = [0.0, 1.1, 2.0, 3.2]
CADENCE = [80, 81, 82, 79]
SERIES = {"series_type": "distance", "original_size": 4, "resolution": "high"}


def test_streams_keyed_by_type():
    streams = load_streams(
        {
            "time": {"data": TIME, **SERIES},
            "distance": {"data": DISTANCE, **SERIES},
            "cadence": {"data": CADENCE, **SERIES},
            "moving": {"data": [False, True, True, True], **SERIES},
        }
    )

    assert isinstance(streams, Streams)
    assert streams.time.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert streams.distance.tolist() == list(DISTANCE)
    assert streams.cadence.tolist() == [80.0, 81.0, 82.0, 79.0]
    assert streams.moving.tolist() == [False, True, True, True]


def test_streams_as_a_list():
    streams = load_streams(
        [
            {"type": "time", "data": TIME, "series_type": "distance"},
            {"type": "distance", "data": DISTANCE, "series_type": "distance"},
        ]
    )

    assert streams is not None
    assert streams.time.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert streams.distance.tolist() == list(DISTANCE)


def test_stream_the_device_did_not_record_is_none():
    streams = load_streams({"time": {"data": TIME}, "distance": {"data": DISTANCE}})

    assert streams is not None
    assert streams.cadence is None
    assert streams.heartrate is None
    assert streams.moving is None


@pytest.mark.parametrize("payload", [{"distance": {"data": DISTANCE}}, {}, [], {"time": {"data": []}}])
def test_streams_without_time_give_none(payload):
    assert load_streams(payload) is None


def test_streams_of_unequal_length_are_a_validation_error():
    with pytest.raises(ValidationError):
        load_streams({"time": {"data": TIME}, "distance": {"data": DISTANCE[:3]}})


@pytest.mark.parametrize("payload", ["streams", 42, None])
def test_streams_of_another_shape_are_a_validation_error(payload):
    with pytest.raises(ValidationError):
        load_streams(payload)


def test_stream_with_text_values_is_a_validation_error():
    with pytest.raises(ValidationError):
        load_streams({"time": {"data": TIME}, "heartrate": {"data": [120, "fast", 130, 131]}})


# --- webhook events ---


def strava_event(**overrides: Any) -> dict[str, Any]:
    # The example event of Strava's webhook documentation.
    data: dict[str, Any] = {
        "aspect_type": "update",
        "event_time": 1516126040,
        "object_id": 1360128428,
        "object_type": "activity",
        "owner_id": 134815,
        "subscription_id": 120475,
        "updates": {"title": "Messy"},
    }
    data.update(overrides)
    return data


def test_strava_event_loads():
    event = WebhookEventSchema().load(strava_event())

    assert event == {
        "aspect_type": "update",
        "event_time": 1516126040,
        "object_id": 1360128428,
        "object_type": "activity",
        "owner_id": 134815,
        "subscription_id": 120475,
        "updates": {"title": "Messy"},
    }


def test_create_event_without_updates_gets_empty_updates():
    data = strava_event(aspect_type="create")
    del data["updates"]

    assert WebhookEventSchema().load(data)["updates"] == {}


def test_deauthorization_event_loads():
    event = WebhookEventSchema().load(
        strava_event(object_type="athlete", object_id=134815, updates={"authorized": "false"})
    )

    assert event["object_type"] == "athlete"
    assert event["updates"] == {"authorized": "false"}


def test_update_values_are_normalised_to_strings():
    event = WebhookEventSchema().load(
        strava_event(updates={"title": "Messy", "type": "Walk", "private": "true"})
    )

    assert event["updates"] == {"title": "Messy", "type": "Walk", "private": "true"}


@pytest.mark.parametrize(("value", "expected"), [(True, "true"), (False, "false")])
def test_boolean_update_values_become_true_false_strings(value, expected):
    event = WebhookEventSchema().load(
        strava_event(object_type="athlete", object_id=134815, updates={"authorized": value})
    )

    assert event["updates"] == {"authorized": expected}


def test_update_value_that_is_an_object_is_rejected():
    with pytest.raises(ValidationError):
        WebhookEventSchema().load(strava_event(updates={"title": {"text": "Messy"}}))


@pytest.mark.parametrize("field", ["object_id", "owner_id", "subscription_id", "event_time"])
def test_numbers_sent_as_strings_are_rejected(field):
    data = strava_event()
    data[field] = str(data[field])

    with pytest.raises(ValidationError) as info:
        WebhookEventSchema().load(data)

    assert field in info.value.messages


@pytest.mark.parametrize("field", ["object_id", "owner_id", "subscription_id", "event_time"])
def test_numbers_beyond_64_bits_are_rejected(field):
    with pytest.raises(ValidationError) as info:
        WebhookEventSchema().load(strava_event(**{field: 2**63}))

    assert field in info.value.messages


@pytest.mark.parametrize(("field", "value"), [("aspect_type", "rename"), ("object_type", "segment")])
def test_unknown_kinds_are_rejected(field, value):
    with pytest.raises(ValidationError) as info:
        WebhookEventSchema().load(strava_event(**{field: value}))

    assert field in info.value.messages


@pytest.mark.parametrize("field", ["object_type", "object_id", "aspect_type", "owner_id", "subscription_id"])
def test_missing_required_field_is_rejected(field):
    data = strava_event()
    del data[field]

    with pytest.raises(ValidationError) as info:
        WebhookEventSchema().load(data)

    assert field in info.value.messages


def test_athlete_event_about_another_athlete_is_rejected():
    with pytest.raises(ValidationError) as info:
        WebhookEventSchema().load(
            strava_event(object_type="athlete", object_id=999, updates={"authorized": "false"})
        )

    assert "object_id" in info.value.messages


def test_unknown_top_level_fields_are_ignored():
    event = WebhookEventSchema().load(strava_event(future_field="x", resource_state=2))

    assert "future_field" not in event
    assert "resource_state" not in event
    assert event["object_id"] == 1360128428


# --- athlete ---


def test_athlete_from_strava_loads():
    athlete = AthleteSchema().load(reference("athlete.3.json"))

    assert athlete == {"id": 1513, "weight": pytest.approx(75.2963), "measurement_preference": "feet"}


def test_athlete_without_weight_or_units_loads_with_none():
    athlete = AthleteSchema().load({"id": 1513, "firstname": "Jeff"})

    assert athlete == {"id": 1513, "weight": None, "measurement_preference": None}


def test_list_form_with_a_non_string_type_is_not_a_crash():
    streams = load_streams([{"type": ["time"], "data": [0, 1]}, {"type": "time", "data": [0, 1, 2]}])
    assert streams is not None
    assert streams.time.tolist() == [0.0, 1.0, 2.0]


def test_update_values_are_bounded():
    """Issue 20: `updates` values had no length limit, and each stored event is a row for 7 days."""
    title = "x" * 1000
    assert WebhookEventSchema().load(strava_event(updates={"title": title}))["updates"] == {"title": title}
    with pytest.raises(ValidationError):
        WebhookEventSchema().load(strava_event(updates={"title": title + "x"}))
