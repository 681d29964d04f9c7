"""The sandbox's seed data (plugin/sandbox/seed/seed.json): what a user of the demo would check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEED_FILE = ROOT / "plugin" / "sandbox" / "seed" / "seed.json"
REALRUNS = ROOT.parent / "shared" / "realruns"
KEYS = ["retro-intervals", "easy-run", "retro-walk", "lunch-ride", "deadmill"]
TAG_WORDS = ("retro", "backward", "#")


@pytest.fixture(scope="module")
def seed() -> dict:
    return json.loads(SEED_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def by_key(seed) -> dict[str, dict]:
    return {item["key"]: item for item in seed["activities"]}


def step_length(speed: float, cadence_per_leg: float) -> float:
    """Metres per step: steps per minute = 2 x Strava's per-leg cadence."""
    return speed / (2.0 * cadence_per_leg / 60.0)


def test_activities_in_order(seed):
    assert [item["key"] for item in seed["activities"]] == KEYS


def test_activities_carry_no_id_or_athlete(seed):
    for item in seed["activities"]:
        assert "id" not in item["activity"] and "athlete" not in item["activity"], item["key"]
        assert item["activity"]["type"] == item["activity"]["sport_type"]


def test_streams_are_aligned_and_time_increases(seed):
    for item in seed["activities"]:
        streams = item["streams"]
        if streams is None:
            continue
        lengths = {key: len(values) for key, values in streams.items()}
        assert len(set(lengths.values())) == 1, (item["key"], lengths)
        time = streams["time"]
        assert time[0] == 0
        assert all(isinstance(t, int) for t in time)
        assert all(b > a for a, b in zip(time, time[1:], strict=False)), item["key"]
        assert all(isinstance(m, bool) for m in streams.get("moving", []))


def test_totals_match_the_streams(seed):
    for item in seed["activities"]:
        activity, streams = item["activity"], item["streams"]
        if streams is None:
            continue
        assert activity["distance"] == pytest.approx(streams["distance"][-1], abs=1.0), item["key"]
        assert activity["elapsed_time"] == pytest.approx(streams["time"][-1], abs=2), item["key"]
        assert activity["moving_time"] <= activity["elapsed_time"]
        laps = activity["laps"]
        assert [lap["lap_index"] for lap in laps] == list(range(1, len(laps) + 1))
        assert sum(lap["elapsed_time"] for lap in laps) == activity["elapsed_time"], item["key"]
        assert sum(lap["distance"] for lap in laps) == pytest.approx(activity["distance"], abs=1.0)
        for lap in laps:
            first, last = lap["start_index"], lap["end_index"]
            assert 0 <= first < last < len(streams["time"])
            assert lap["elapsed_time"] == streams["time"][last] - streams["time"][first]
            assert lap["distance"] == pytest.approx(
                streams["distance"][last] - streams["distance"][first], abs=0.2
            )


def test_retro_intervals_are_three_slower_shorter_stepped_laps(by_key):
    activity = by_key["retro-intervals"]["activity"]
    streams = by_key["retro-intervals"]["streams"]
    laps = activity["laps"]
    retro = [(k, lap) for k, lap in enumerate(laps) if "retro" in lap["name"].lower()]
    assert [lap["name"] for _, lap in retro] == ["Retro 1", "Retro 2", "Retro 3"]
    for k, lap in retro:
        before = laps[k - 1]
        assert "retro" not in before["name"].lower()
        ratio = lap["average_speed"] / before["average_speed"]
        assert 0.55 <= ratio <= 0.75, (lap["name"], ratio)
        back_step = step_length(lap["average_speed"], lap["average_cadence"])
        forward_step = step_length(before["average_speed"], before["average_cadence"])
        assert back_step < 0.8 * forward_step, (lap["name"], back_step, forward_step)
        assert lap["average_cadence"] > before["average_cadence"]  # higher step frequency backward
        # Heart rate does not fall with speed.
        assert lap["average_heartrate"] >= before["average_heartrate"] - 5, lap["name"]
        hr_inside = streams["heartrate"][lap["start_index"] + 1 : lap["end_index"] + 1]
        assert min(hr_inside) >= streams["heartrate"][lap["start_index"]] - 5, lap["name"]
        assert 150 <= lap["distance"] <= 250
    assert activity["laps"][-1]["end_index"] == len(streams["time"]) - 1


def test_attribution_lists_every_source_with_mit(seed):
    files = {entry["file"] for entry in seed["attribution"]}
    sources = {item["source"] for item in seed["activities"] if item["source"] is not None}
    assert sources <= files
    for entry in seed["attribution"]:
        assert entry["licence"] == "MIT"
        assert entry["source_repo"] and entry["source_path"] and len(entry["commit"]) == 40


def test_easy_run_is_not_tagged(by_key):
    activity = by_key["easy-run"]["activity"]
    text = f"{activity['name']}\n{activity['description'] or ''}".lower()
    assert not any(word in text for word in TAG_WORDS)
    assert not any(word in lap["name"].lower() for lap in activity["laps"] for word in TAG_WORDS)


def test_other_activities(by_key):
    walk = by_key["retro-walk"]["activity"]
    assert walk["sport_type"] == "Walk" and walk["average_speed"] < 1.2
    assert by_key["lunch-ride"]["activity"]["sport_type"] == "Ride"
    deadmill = by_key["deadmill"]
    assert deadmill["streams"] is None
    activity = deadmill["activity"]
    assert activity["manual"] is True and activity["trainer"] is True
    assert activity["distance"] == 0.0 and activity["laps"] == []
    assert "average_cadence" not in activity


def test_file_is_small():
    assert SEED_FILE.stat().st_size < 400 * 1024


def test_generator_is_deterministic(tmp_path):
    if not (REALRUNS / "MANIFEST.tsv").is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"the real recordings are missing: {REALRUNS}")
        pytest.skip(f"the real recordings are not here: {REALRUNS}")
    output = tmp_path / "seed.json"
    subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [
            sys.executable,
            "-m",
            "plugin.sandbox.seed.generate",
            "--realruns",
            str(REALRUNS),
            "--output",
            str(output),
            "--quiet",
        ],
        cwd=ROOT,
        check=True,
        timeout=300,
    )
    assert output.read_bytes() == SEED_FILE.read_bytes()
