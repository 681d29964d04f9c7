"""`backstride analyze FILE`: what a runner sees for their own files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from plugin.analysis.notes import NOTE_START
from plugin.cli import main
from plugin.sandbox.state import SEED_FILE

DATA = Path(__file__).resolve().parents[1] / "data"
FORWARD_RUN = DATA / "realruns" / "fitparse_activity-small-fenix2-run.fit"
EFFORT_KEYS = {"start_s", "end_s", "distance_m", "duration_s", "steps", "confidence", "source"}


def seed_as_streams_json(key: str, tmp_path: Path, **activity_changes) -> Path:
    """A seed activity as `{"activity": DetailedActivity, "streams": key_by_type}`, as DESIGN.md allows."""
    seed = next(a for a in json.loads(SEED_FILE.read_text())["activities"] if a["key"] == key)
    activity = {"id": 123, **seed["activity"], **activity_changes}
    streams = {
        name: {"data": values, "series_type": "time", "resolution": "high", "original_size": len(values)}
        for name, values in (seed["streams"] or {}).items()
    }
    path = tmp_path / f"{key}.json"
    path.write_text(json.dumps({"activity": activity, "streams": streams}))
    return path


def analyze(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["analyze", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_forward_run_has_no_backward_effort(capsys):
    code, out, _ = analyze(capsys, str(FORWARD_RUN))
    assert code == 0
    assert "No backward effort found." in out
    assert NOTE_START not in out


def test_forward_run_json(capsys):
    code, out, _ = analyze(capsys, str(FORWARD_RUN), "--json")
    assert code == 0
    result = json.loads(out)
    assert set(result) == {"activity", "efforts", "energy", "knee", "note"}
    assert result["efforts"] == []
    assert result["energy"] == {
        "kcal": 0.0,
        "kcal_low": 0.0,
        "kcal_high": 0.0,
        "kcal_if_forward": 0.0,
        "basis": None,
        "less_certain": None,
        "extra_low": 0.0,
        "extra_high": 0.0,
        "host_calories": 516.0,  # the file's own (forward-assuming) figure, passed through
    }
    assert result["note"] == ""
    assert result["activity"]["sport_type"] == "Run"
    assert result["activity"]["distance_m"] > 8000


def test_retro_intervals_give_three_efforts_with_the_note_and_table(capsys, tmp_path):
    path = seed_as_streams_json("retro-intervals", tmp_path)
    code, out, _ = analyze(capsys, str(path))
    assert code == 0
    assert out.count(NOTE_START) == 1
    assert "3 backward efforts" in out
    table = [line for line in out.splitlines() if line.strip()[:2].strip().isdigit()]
    assert len(table) == 3


def test_retro_intervals_json_matches_the_design(capsys, tmp_path):
    path = seed_as_streams_json("retro-intervals", tmp_path)
    code, out, _ = analyze(capsys, str(path), "--json", "--weight", "61")
    result = json.loads(out)
    assert code == 0
    assert len(result["efforts"]) == 3
    for effort in result["efforts"]:
        assert set(effort) == EFFORT_KEYS
        assert 150 <= effort["distance_m"] <= 250
        assert 0 < effort["confidence"] <= 1
    energy = result["energy"]
    assert energy["kcal_low"] <= energy["kcal"] <= energy["kcal_high"]
    assert energy["kcal"] > energy["kcal_if_forward"] > 0
    assert result["knee"]["pfj_per_step_change"] < 0
    assert result["knee"]["steps"] > 0
    assert "assumed" not in result["note"]  # the weight was given


def test_known_backward_block_lands_in_the_published_ranges(capsys, tmp_path):
    # The seed's tempo run holds three spliced backward running intervals (docs/sandbox.md).
    path = seed_as_streams_json("retro-intervals", tmp_path)
    _, out, _ = analyze(capsys, str(path), "--json", "--weight", "70")
    result = json.loads(out)
    energy, knee, efforts = result["energy"], result["knee"], result["efforts"]
    minutes = sum(e["duration_s"] for e in efforts) / 60
    km = sum(e["distance_m"] for e in efforts) / 1000
    rest = 3.5 * 70 / 1000 * 5 * minutes  # 1 MET for the backward time
    net_ratio = (energy["kcal"] - rest) / (energy["kcal_if_forward"] - rest)
    # Backward running: +35 +/- 6% net over forward at the same speed (Wright & Weyand 2001; Rasica 2020).
    assert 1.29 <= net_ratio <= 1.41
    # About 1.2-1.3 kcal/kg/km net backward (SCIENCE.md, derived), a little more on the run's gentle climbs.
    assert 1.2 <= (energy["kcal"] - rest) / 70 / km <= 1.45
    assert energy["basis"] == "distance" and energy["less_certain"] is False
    assert energy["host_calories"] == 365.2
    # Kneecap: Roos 2012's 3.4 vs 4.5 BW per step at running pace; per km from the run's own steps: its
    # forward running has the recording's own step (about 2 x 84.3 steps/min at 3.419 m/s).
    assert knee["per_step"] == "less"
    assert knee["pfj_per_step_change"] == pytest.approx(3.4 / 4.5 - 1)
    forward_steps_per_km = 2 * 84.3 / 60 / 3.419 * 1000
    assert knee["forward_steps_per_km"] == pytest.approx(forward_steps_per_km, rel=0.1)
    assert knee["steps_per_km"] > 1.2 * forward_steps_per_km
    want = (3.4 / 4.5) * knee["steps_per_km"] / knee["forward_steps_per_km"] - 1
    assert knee["per_km_change"] == pytest.approx(want, abs=0.001)
    assert f"about {round(want * 100)}% more per km" in result["note"]
    # The host's 365 kcal and what going backward added, in the note.
    assert "The 365 kcal shown likely assume forward motion" in result["note"]


def test_deadmill_without_distance_is_priced_by_time(capsys, tmp_path):
    path = seed_as_streams_json("deadmill", tmp_path)
    _, out, _ = analyze(capsys, str(path), "--json", "--weight", "70")
    result = json.loads(out)
    # 15 minutes as a backward walk at 3.5 mph (93.9 m/min): ACSM walking net 0.1 x 93.9 ml/kg/min, x1.52
    # backward (Compendium: 6.0 vs 4.3 MET), plus 3.5 at rest; 5 kcal per litre.
    vo2 = 3.5 + 1.52 * 0.1 * (3.5 * 1609.344 / 60)
    assert result["energy"]["kcal"] == pytest.approx(vo2 * 70 / 1000 * 5 * 15, rel=0.01)
    compendium = 6.0 * 3.5 * 70 / 1000 * 5 * 15  # 110 kcal: inside the range
    assert result["energy"]["kcal_low"] < compendium < result["energy"]["kcal_high"]
    assert result["energy"]["basis"] == "time"
    assert "from time alone" in result["note"]


def test_weight_and_units_change_the_note(capsys, tmp_path):
    path = seed_as_streams_json("retro-intervals", tmp_path)
    _, light, _ = analyze(capsys, str(path), "--json", "--weight", "50")
    _, heavy, _ = analyze(capsys, str(path), "--json", "--weight", "90")
    assert json.loads(heavy)["energy"]["kcal"] > json.loads(light)["energy"]["kcal"]
    _, default, _ = analyze(capsys, str(path))
    assert "70 kg assumed" in default
    _, imperial, _ = analyze(capsys, str(path), "--units", "imperial")
    assert " mi " in imperial and "per mile" in imperial


def test_our_own_note_in_a_file_is_not_a_tag(capsys, tmp_path):
    path = seed_as_streams_json("easy-run", tmp_path, description=f"{NOTE_START}: backward run\n— Backstride")
    code, out, _ = analyze(capsys, str(path), "--json")
    assert code == 0
    assert json.loads(out)["efforts"] == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty"), (b"\x00\x01garbage" * 10, ""), (b"<gpx><trk></trk></gpx>", "")],
)
def test_unreadable_file_is_one_line_naming_it_exit_2(capsys, tmp_path, content, reason):
    path = tmp_path / "broken-upload.gpx"
    path.write_bytes(content)
    code, out, err = analyze(capsys, str(path))
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "broken-upload.gpx" in lines[0]
    assert reason in lines[0].lower()


def test_missing_file(capsys, tmp_path):
    code, _, err = analyze(capsys, str(tmp_path / "nope.fit"))
    assert code == 2
    assert "nope.fit" in err


def test_bad_weight_is_refused(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["analyze", str(FORWARD_RUN), "--weight", "heavy"])
    assert stopped.value.code == 2
    assert "kilograms" in capsys.readouterr().err


def test_no_traceback_from_the_installed_command(tmp_path):
    path = tmp_path / "cut.fit"
    path.write_bytes(FORWARD_RUN.read_bytes()[:10])
    result = subprocess.run(
        [sys.executable, "-m", "plugin.cli", "analyze", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "cut.fit" in result.stderr
