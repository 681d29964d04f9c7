"""The sandbox host must not drift from Strava: its GET /activities/{id} and GET /athlete responses are
checked against real responses (stravalib's DetailedActivity and DetailedAthlete examples, /shared/strava).

(a) every field the sandbox returns that the example also has is of the same JSON type (int and float are one
    "number"; null on either side fits anything), recursively through nested objects and lists of objects;
(b) every field the sandbox returns that the examples lack (top level and nested objects) is in a short,
    commented allow-list of fields Strava documents but the 2013 examples predate;
(c) the fields Backstride reads are present.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from plugin.sandbox import SandboxConfig, create_sandbox
from plugin.sandbox.state import SEED_FILE
from tests.integration.test_sandbox_host import Host

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "strava"
ATHLETE = 5151  # made up
SCOPES = "activity:read_all,profile:read_all"

# Top-level DetailedActivity fields the sandbox may return although the 2013 examples lack them.
ACTIVITY_ALLOWED_EXTRA = {
    "sport_type",  # replaced the deprecated `type` in 2022; STRAVA.md: prefer it
    "laps",  # DetailedActivity.laps (STRAVA.md lists its fields); the examples simply carry none
    "average_cadence",  # in real responses though undocumented (STRAVA.md); the example has no cadence
    "average_heartrate",  # STRAVA.md lists it; present when a heart-rate monitor was worn
    "max_heartrate",  # comes with average_heartrate in DetailedActivity
    "has_heartrate",  # DetailedActivity flag that says whether the two above are present
    "device_name",  # STRAVA.md lists it; added to DetailedActivity after 2013
    "hide_from_home",  # an UpdatableActivity field (STRAVA.md, PUT); echoed back once set
}
# Nested fields, by dotted path, absent from the examples' nested objects. Empty: nothing to excuse so far.
NESTED_ALLOWED_EXTRA: set[str] = set()
# Top-level DetailedAthlete fields the sandbox may return although athlete.3.json lacks them.
ATHLETE_ALLOWED_EXTRA = {
    "country",  # SummaryAthlete has city, state and country; the example athlete just has no country set
}

BACKSTRIDE_READS = (
    "id",
    "name",
    "description",
    "distance",
    "moving_time",
    "elapsed_time",
    "average_speed",
    "trainer",
    "manual",
    "private",
    "calories",
    "total_elevation_gain",
    "start_date",
    "start_date_local",
    "timezone",
)
BACKSTRIDE_READS_FROM_ATHLETE = ("id", "firstname", "lastname", "weight", "measurement_preference")

# An activity as the seed builds them: a treadmill-free outdoor run with one lap.
REALISTIC_ACTIVITY = {
    "name": "Tempo with #retro intervals",
    "description": "Felt strong today.",
    "sport_type": "Run",
    "type": "Run",
    "distance": 5986.6,
    "moving_time": 1751,
    "elapsed_time": 1800,
    "total_elevation_gain": 25.0,
    "average_speed": 3.419,
    "max_speed": 5.96,
    "average_cadence": 84.3,
    "average_heartrate": 158.5,
    "start_date": "2026-11-10T07:30:00Z",
    "start_date_local": "2026-11-10T08:30:00Z",
    "timezone": "(GMT+01:00) Europe/Paris",
    "trainer": False,
    "manual": False,
    "private": False,
    "commute": False,
    "calories": 365.2,
    "laps": [
        {
            "lap_index": 1,
            "name": "Lap 1",
            "elapsed_time": 1800,
            "moving_time": 1751,
            "distance": 5986.6,
            "start_index": 0,
            "end_index": 1750,
            "average_speed": 3.419,
            "average_cadence": 84.3,
        }
    ],
}
REALISTIC_ATHLETE = {
    "id": ATHLETE,
    "username": "contract_runner",
    "firstname": "Con",
    "lastname": "Tract",
    "sex": "F",
    "city": "Lyon",
    "country": "France",
    "weight": 58.5,
    "measurement_preference": "meters",
    "premium": False,
    "created_at": "2024-01-01T08:00:00Z",
    "updated_at": "2026-11-01T08:00:00Z",
}


# --- the checks ---------------------------------------------------------------------------------------------


def load_example(name: str) -> dict[str, Any]:
    path = EXAMPLES / name
    if not path.exists():
        message = f"Strava example {path} is missing (copy it from stravalib, see shared/strava/README.md)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return json.loads(path.read_text())


def json_type(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {value!r}")


def merged_items(values: list[Any]) -> dict[str, Any]:
    """The objects of a list merged into one: each key with its first non-null value."""
    merged: dict[str, Any] = {}
    for item in values:
        if isinstance(item, dict):
            for key, value in item.items():
                if merged.get(key) is None:
                    merged[key] = value
    return merged


def type_mismatches(ours: Any, theirs: Any, path: str = "") -> list[str]:
    """(a): fields both sides have, whose JSON types differ."""
    ours_type, theirs_type = json_type(ours), json_type(theirs)
    if ours_type is None or theirs_type is None:
        return []
    if ours_type != theirs_type:
        return [f"{path or '<root>'}: sandbox {ours_type} ({ours!r}), Strava {theirs_type} ({theirs!r})"]
    problems: list[str] = []
    if ours_type == "object":
        for key in ours.keys() & theirs.keys():
            problems += type_mismatches(ours[key], theirs[key], f"{path}.{key}" if path else key)
    elif ours_type == "array" and theirs:
        example = merged_items(theirs) if any(isinstance(t, dict) for t in theirs) else theirs[0]
        for index, item in enumerate(ours):
            problems += type_mismatches(item, example, f"{path}[{index}]")
    return problems


def unknown_fields(ours: dict[str, Any], examples: list[dict[str, Any]], path: str = "") -> set[str]:
    """(b): sandbox fields no example has, by dotted path, through nested objects both sides have."""
    unknown: set[str] = set()
    known = set().union(*(e.keys() for e in examples))
    for key, value in ours.items():
        dotted = f"{path}.{key}" if path else key
        if key not in known:
            unknown.add(dotted)
        elif isinstance(value, dict):
            nested = [e[key] for e in examples if isinstance(e.get(key), dict)]
            if nested:
                unknown |= unknown_fields(value, nested, dotted)
    return unknown


def check_activity(activity: dict[str, Any]) -> None:
    examples = [load_example("activity.3.json"), load_example("activity-manual.3.json")]
    problems = [p for example in examples for p in type_mismatches(activity, example)]
    assert not problems, "the sandbox's activity drifted from Strava's types:\n" + "\n".join(problems)
    unknown = unknown_fields(activity, examples) - ACTIVITY_ALLOWED_EXTRA - NESTED_ALLOWED_EXTRA
    assert not unknown, (
        f"fields Strava's examples do not have (allow-list them only if documented): {unknown}"
    )
    missing = [k for k in BACKSTRIDE_READS if k not in activity]
    if "sport_type" not in activity and "type" not in activity:
        missing.append("sport_type/type")
    assert not missing, f"fields Backstride reads are missing: {missing}"


def check_athlete(athlete: dict[str, Any], required: tuple[str, ...] = BACKSTRIDE_READS_FROM_ATHLETE) -> None:
    example = load_example("athlete.3.json")
    problems = type_mismatches(athlete, example)
    assert not problems, "the sandbox's athlete drifted from Strava's types:\n" + "\n".join(problems)
    unknown = unknown_fields(athlete, [example]) - ATHLETE_ALLOWED_EXTRA - NESTED_ALLOWED_EXTRA
    assert not unknown, (
        f"fields Strava's example does not have (allow-list them only if documented): {unknown}"
    )
    missing = [k for k in required if k not in athlete]
    assert not missing, f"athlete fields Backstride reads are missing: {missing}"


# --- the checks bite ----------------------------------------------------------------------------------------


def test_type_check_treats_int_and_float_as_one_number_and_null_as_anything():
    assert type_mismatches({"distance": 5, "gear_id": None}, {"distance": 5.5, "gear_id": "g1"}) == []
    assert type_mismatches({"workout_type": 3}, {"workout_type": None}) == []


def test_type_check_catches_drift_at_any_depth():
    example = {"distance": 1.0, "athlete": {"id": 1}, "splits_metric": [{"split": 1}, {"split": 2}]}
    drifted = {"distance": "5 km", "athlete": {"id": "1"}, "splits_metric": [{"split": 1}, {"split": True}]}
    assert sorted(type_mismatches(drifted, example)) == [
        "athlete.id: sandbox string ('1'), Strava number (1)",
        "distance: sandbox string ('5 km'), Strava number (1.0)",
        "splits_metric[1].split: sandbox boolean (True), Strava number (1)",
    ]


def test_unknown_fields_are_found_at_top_level_and_in_nested_objects():
    examples = [{"id": 1, "athlete": {"id": 1}}, {"id": 2, "map": {"id": "m"}}]
    ours = {"id": 1, "athlete": {"id": 1, "secret": 2}, "sport_type": "Run", "map": {"id": "m"}}
    assert unknown_fields(ours, examples) == {"athlete.secret", "sport_type"}


# --- the sandbox against Strava -----------------------------------------------------------------------------


def _host(seed: bool) -> Host:
    return Host(create_sandbox(SandboxConfig(seed=seed)))


@pytest.fixture
def host():
    host = _host(seed=False)
    host.add_athlete(ATHLETE, **{k: v for k, v in REALISTIC_ATHLETE.items() if k != "id"})
    yield host
    host.app.extensions["sandbox_deliverer"].stop()


def test_realistic_activity_matches_strava(host):
    created = host.add_activity(ATHLETE, **REALISTIC_ACTIVITY)
    token = host.connect(ATHLETE, SCOPES)["access_token"]
    response = host.api("GET", f"/activities/{created['id']}", token)
    assert response.status_code == 200
    check_activity(response.get_json())


def test_activity_after_an_update_matches_strava(host):
    created = host.add_activity(ATHLETE, **REALISTIC_ACTIVITY)
    token = host.connect(ATHLETE, f"{SCOPES},activity:write")["access_token"]
    changes = {"description": "Felt strong today.\n\nBackwards: 1.2 km", "hide_from_home": True}
    response = host.api("PUT", f"/activities/{created['id']}", token, json=changes)
    assert response.status_code == 200
    check_activity(response.get_json())
    check_activity(host.api("GET", f"/activities/{created['id']}", token).get_json())


def test_minimal_activity_matches_strava(host):
    """What the sandbox fills in by itself, for an upload that names almost nothing."""
    created = host.add_activity(ATHLETE, name="Morning Run")
    token = host.connect(ATHLETE, SCOPES)["access_token"]
    check_activity(host.api("GET", f"/activities/{created['id']}", token).get_json())


def test_athlete_matches_strava(host):
    token = host.connect(ATHLETE, SCOPES)["access_token"]
    response = host.api("GET", "/athlete", token)
    assert response.status_code == 200
    athlete = response.get_json()
    check_athlete(athlete)
    assert athlete["weight"] == 58.5


def test_token_response_athlete_matches_strava(host):
    summary = host.connect(ATHLETE, SCOPES)["athlete"]
    check_athlete(summary, required=("id", "firstname", "lastname"))


# --- the seed (when plugin/sandbox/seed/seed.json exists) ---------------------------------------------------


def _seed_keys() -> list[str]:
    if not SEED_FILE.exists():
        return []
    return [item["key"] for item in json.loads(SEED_FILE.read_text())["activities"]]


@pytest.fixture
def seeded():
    if not SEED_FILE.exists():
        pytest.skip(f"no seed file yet at {SEED_FILE}")
    host = _host(seed=True)
    athlete_id = host.client.get("/_sandbox/state").get_json()["demo_athlete_id"]
    token = host.connect(athlete_id, SCOPES)["access_token"]
    yield host, athlete_id, token
    host.app.extensions["sandbox_deliverer"].stop()


@pytest.mark.parametrize("key", _seed_keys() or [pytest.param(None, marks=pytest.mark.skip("no seed file"))])
def test_seed_activity_matches_strava(seeded, key):
    host, athlete_id, token = seeded
    response = host.client.post("/_sandbox/activities", json={"seed": key, "athlete_id": athlete_id})
    assert response.status_code == 201, response.get_data(as_text=True)
    fetched = host.api("GET", f"/activities/{response.get_json()['id']}", token)
    assert fetched.status_code == 200
    check_activity(fetched.get_json())


def test_seed_athlete_matches_strava(seeded):
    host, _, token = seeded
    check_athlete(host.api("GET", "/athlete", token).get_json())
