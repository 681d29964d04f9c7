"""The note text, checked against figures computed here from ../shared/SCIENCE.md, and merging it into an
athlete's description."""

import math
import re
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugin.analysis.notes import (
    LEGACY_NOTE_END,
    NOTE_END,
    NOTE_MAX_CHARS,
    NOTE_MAX_LINES,
    NOTE_START,
    STRINGS,
    NoteFacts,
    build_note,
    has_note,
    merge_note,
    strip_note,
    volume_jumped,
)
from plugin.analysis.summary import analyse, assess
from plugin.domain import Activity, AthleteProfile, Effort, Lap, Streams
from tests.support.efforts import effort

SOURCES = "https://backstride.test/science"
METRIC_DEFAULT = AthleteProfile(weight_kg=70.0, weight_source="default")
METRIC_SET = AthleteProfile(weight_kg=70.0, weight_source="settings")
IMPERIAL = AthleteProfile(weight_kg=70.0, weight_source="settings", units="imperial")
COMPACT = AthleteProfile(weight_kg=70.0, weight_source="settings", note_style="compact")
COMPACT_DEFAULT = AthleteProfile(weight_kg=70.0, weight_source="default", note_style="compact")

# SCIENCE.md by hand: ACSM running net 0.2 ml/kg/m, 5 kcal per litre, backward running x1.35 (x1.2-1.5),
# backward step 60-80% of a forward one when not measured.
RUN_LOW, RUN_HIGH = 1.2, 1.5
STEP_LOW, STEP_HIGH = 0.6, 0.8


TWO_RUNS = [effort(480, 160, steps=620), effort(320, 152, steps=420, start_s=600)]


def note_text(efforts, profile=METRIC_SET, streams=None, **context) -> str:
    note = assess(efforts, profile, SOURCES, streams, **context).note
    assert note is not None
    return note.text


def note_lines(efforts, profile=METRIC_SET, streams=None, **context) -> list[str]:
    return note_text(efforts, profile, streams, **context).split("\n")


def line_starting(lines: list[str], prefix: str) -> str:
    found = [line for line in lines if line.startswith(prefix)]
    assert len(found) == 1, (prefix, lines)
    return found[0]


def forward_run(seconds: int, speed: float, cadence: float, efforts: list[Effort]) -> Streams:
    """1 Hz streams of forward running at one speed and cadence, the efforts' own samples at their speed
    and step frequency."""
    t = np.arange(seconds + 1, dtype=np.float64)
    v = np.full_like(t, speed)
    c = np.full_like(t, cadence)
    for e in efforts:
        inside = (t > e.start_s) & (t <= e.end_s)
        v[inside] = e.distance_m / e.duration_s
        c[inside] = (e.steps or 0) / 2 / (e.duration_s / 60)
    return Streams(time=t, distance=np.concatenate(([0.0], np.cumsum(v[1:]))), cadence=c)


# --- the whole note -------------------------------------------------------------------------------------


def test_none_for_no_efforts():
    assert build_note(NoteFacts((), None, None), METRIC_SET, SOURCES) is None


def test_detailed_note_with_measured_steps_full_text():
    """5 minutes backward at 2.0 m/s on 0.79 m steps, forward running at 3.3 m/s on 1.29 m steps, 70 kg."""
    steps = round(600 / 0.79)
    efforts = [effort(600, 300, steps=steps, start_s=600)]
    streams = forward_run(1800, 3.3, 3.3 / 1.29 * 30, efforts)
    # SCIENCE.md by hand: rest 3.5 ml/kg/min, ACSM running 0.2 ml/kg/m net, x1.35 (x1.2-1.5 between runners)
    # and the forward cost +/-20% between people, combined; 5 kcal per litre of oxygen.
    kcal = 70 * 0.005
    rest, net_forward = 3.5 * 5, 600 * 0.2
    spread = math.hypot(0.15 / 1.35, 0.20)
    backward = (rest + 1.35 * net_forward) * kcal
    forward = (rest + net_forward) * kcal
    low, high = (
        (rest + 1.35 * net_forward * (1 - spread)) * kcal,
        (rest + 1.35 * net_forward * (1 + spread)) * kcal,
    )
    extra_low, extra_high = net_forward * 0.2 * 0.8 * kcal, net_forward * 0.5 * 1.2 * kcal
    ratio = (600 / steps) / 1.29
    per_km = (3.4 / 4.5) * (steps / 0.6) / (1000 / 1.29) - 1  # Roos 2012 per step x steps per km
    lines = note_lines(efforts, METRIC_SET, streams, host_calories=400.0)
    assert lines == [
        f"{NOTE_START}: 1 backward effort, 0.60 km in 5:00, {steps} steps.",
        f"Energy: about {round(backward)} kcal ({round(low)}–{round(high)}), "
        f"{round(backward - forward)} more than forward.",
        f"Myth: 100 backward steps ≠ 1,000 forward. Your {steps} equal about "
        f"{round(steps * 1.2 * ratio)}–{round(steps * 1.5 * ratio)} forward steps of energy.",
        "The 400 kcal shown likely assume forward motion; with the backward parts counted, about "
        f"{round(400 + backward - forward)} ({round(400 + extra_low)}–{round(400 + extra_high)}).",
        "Kneecap: about 24% less peak compression per step than forward at the same speed (20-runner "
        f"average, not every runner); with your steps, about {round(per_km * 100)}% more per km.",
        f"{NOTE_END} {SOURCES}",
    ]
    assert [round(backward), round(low), round(high)] == [63, 50, 76]  # the figures a reader sees


def test_the_myth_uses_the_athletes_measured_step_lengths():
    """Issue: 758 steps were "worth about 758-985 forward steps": steps x 1.0-1.3, whatever the steps."""
    backward_step, forward_step = 0.79, 1.29
    steps = 758
    efforts = [effort(steps * backward_step, 250, steps=steps, start_s=600)]
    streams = forward_run(1800, 3.2, 3.2 / forward_step * 30, efforts)
    myth = line_starting(note_lines(efforts, streams=streams), "Myth:")
    ratio = backward_step / forward_step
    low, high = round(steps * RUN_LOW * ratio), round(steps * RUN_HIGH * ratio)
    assert f"Your 758 equal about {low}–{high} forward steps" in myth
    assert low >= 540 and high <= 720  # the "about 600-660" with the wider between-runner range


def test_without_a_forward_step_the_myth_uses_the_60_to_80_percent_assumption():
    steps = 758
    myth = line_starting(note_lines([effort(600, 250, steps=steps)]), "Myth:")
    assert f"about {round(steps * RUN_LOW * STEP_LOW)}–{round(steps * RUN_HIGH * STEP_HIGH)} forward" in myth


def test_efforts_on_a_track_answer_the_lap_claim():
    efforts = [effort(400, 130), effort(800, 270, start_s=600)]
    myth = line_starting(note_lines(efforts), "Myth:")
    assert myth == f"Myth: one lap backward ≠ six forward; it costs about {RUN_LOW}–{RUN_HIGH} forward laps."


def test_without_steps_the_calorie_claim_is_answered_with_the_athletes_own_percentage():
    lines = note_lines([effort(900, 300)])
    est = assess([effort(900, 300)], METRIC_SET, SOURCES).energy
    assert est is not None
    pct = round((est.kcal / est.kcal_if_forward - 1) * 100)
    assert line_starting(lines, "Myth:") == f"Myth: “50% more calories”? Here about {pct}% more than forward."
    walk = note_lines([effort(1000, 800, gait="walk")])
    assert line_starting(walk, "Myth:").startswith("Myth: “20% more calories”?")


def test_a_fast_backward_walk_lap_is_running():
    """Issue: a lap named "Backward walk" at 2.5 m/s and 90 per leg was priced and headlined as a walk."""
    from plugin.analysis.detect import gait_by_pace

    assert gait_by_pace(750, 300, None, 90.0, "walk") == "run"
    assert gait_by_pace(750, 300, None, None, "walk") == "run"  # 2.5 m/s
    assert gait_by_pace(300, 300, None, 80.0, "walk") == "run"  # 140+ steps a minute
    assert gait_by_pace(300, 300, None, 50.0, "walk") == "walk"
    assert gait_by_pace(300, 300, None, 50.0, "run") == "run"  # slow running, as the athlete says


def test_time_only_effort_in_a_run_is_not_headlined_as_a_walk():
    """Issue: a recorded Run with a time-only effort was headlined as a walk."""
    lines = note_lines([effort(0, 600, gait="walk", source="whole")])
    assert lines[0] == f"{NOTE_START}: 1 backward effort, 10:00."
    assert "from time alone" in lines[1]


def test_a_standstill_lap_gets_no_energy_line():
    lines = note_lines([effort(0, 600, source="lap")])
    assert not any(line.startswith("Energy:") for line in lines)


def test_the_default_weight_is_said_without_advice_to_the_athlete():
    """Issue: "set your weight for a better figure" spoke to the athlete in a public description."""
    energy = line_starting(note_lines(TWO_RUNS, METRIC_DEFAULT), "Energy:")
    assert energy.endswith("more than forward (70 kg assumed).")
    assert "set your weight" not in note_text(TWO_RUNS, METRIC_DEFAULT)
    imperial = replace(IMPERIAL, weight_source="default")
    assert line_starting(note_lines(TWO_RUNS, imperial), "Energy:").endswith("(154 lb assumed).")
    assert "assumed" not in note_text(TWO_RUNS, METRIC_SET)


def test_walk_notes_do_not_say_walk_before_you_run_it():
    """Issue: "walk before you run it" appeared on walk notes."""
    walk = note_text([effort(1000, 800, gait="walk")], recent_backward_s=0.0)
    run = note_text([effort(1000, 330)], recent_backward_s=0.0)
    assert "More backward than usual" in walk and "run it" not in walk
    assert "walk it before you run it" in run


def test_careful_start_tip_takes_the_myths_place_in_a_compact_note():
    lines = note_lines([effort(1000, 330, steps=1000)], COMPACT, recent_backward_s=0.0)
    assert len(lines) == 4
    assert lines[2].startswith("More backward than usual")
    detailed = note_lines([effort(1000, 330, steps=1000)], METRIC_SET, recent_backward_s=0.0)
    assert any(line.startswith("Myth:") for line in detailed)


@pytest.mark.parametrize(
    "backward_s,recent_s,tip",
    [(300, 0, True), (300, 300, True), (300, 301, False), (299, 0, False), (600, None, False)],
)
def test_careful_start_tip_when_backward_volume_jumps(backward_s, recent_s, tip):
    assert volume_jumped(backward_s, recent_s) is tip


@pytest.mark.parametrize(
    "elapsed_s,distance_m,noted",
    [(0.4, 2.0, False), (3.0, 6.0, False), (19.0, 60.0, False), (40.0, 20.0, False), (25.0, 30.0, True)],
)
def test_no_note_for_a_blink_of_a_lap_or_a_few_metres(elapsed_s, distance_m, noted):
    """Issue: a 0.4-second lap and a 3-second, 6-metre effort each got a full note."""
    laps = (
        Lap(index=0, name="Warm-up", elapsed_time_s=600.0, moving_time_s=600.0, distance_m=1800.0),
        Lap(index=1, name="Retro", elapsed_time_s=elapsed_s, moving_time_s=elapsed_s, distance_m=distance_m),
    )
    run = Activity(
        id=1, athlete_id=7, name="Morning Run", description="", sport_type="Run",
        distance_m=1800.0 + distance_m, moving_time_s=600.0 + elapsed_s, elapsed_time_s=600.0 + elapsed_s,
        laps=laps,
    )  # fmt: skip
    result = analyse(run, None, METRIC_SET, SOURCES)
    assert (result.note is not None) is noted
    assert len(result.efforts) == int(noted)


# --- energy and the host's figure ---------------------------------------------------------------------------


def test_energy_line_figures_are_the_estimates_rounded():
    est = assess(TWO_RUNS, METRIC_SET, SOURCES).energy
    assert est is not None
    energy = line_starting(note_lines(TWO_RUNS), "Energy:")
    assert energy == (
        f"Energy: about {round(est.kcal)} kcal ({round(est.kcal_low)}–{round(est.kcal_high)}), "
        f"{round(est.kcal - est.kcal_if_forward)} more than forward."
    )


def test_host_calories_and_our_energy_line_agree():
    """Issue: "Energy: about 308 kcal" then "The 250 kcal shown ... going backward added about 73" (323)."""
    whole = [effort(3000, 1200, source="whole")]
    host = line_starting(note_lines(whole, host_calories=250.0), "The 250 kcal")
    assert host == "The 250 kcal shown likely assume forward motion; the figure above counts going backward."
    est = assess(TWO_RUNS, METRIC_SET, SOURCES).energy
    assert est is not None
    part = line_starting(note_lines(TWO_RUNS, host_calories=400.0), "The 400 kcal")
    assert f"about {round(400 + est.kcal - est.kcal_if_forward)} (" in part
    assert "likely assume forward motion" in part


def test_host_calories_line_only_with_a_figure_above_our_forward_part():
    assert "kcal shown" not in note_text(TWO_RUNS, host_calories=None)
    assert "kcal shown" not in note_text(TWO_RUNS, host_calories=0.0)
    assert "kcal shown" not in note_text(TWO_RUNS, host_calories=20.0)
    assert "The 90 kcal shown" in note_text(TWO_RUNS, host_calories=90.0)


def test_kneecap_line_only_for_running_and_per_km_only_when_measured():
    """Issue: every note said "per km about the same (more, shorter steps)"."""
    run = line_starting(note_lines([effort(900, 300, steps=900)]), "Kneecap:")
    assert run == (
        "Kneecap: about 24% less peak compression per step than forward at the same speed "
        "(20-runner average, not every runner)."
    )
    assert not any(line.startswith("Kneecap") for line in note_lines([effort(1000, 800, gait="walk")]))
    efforts = [effort(900, 300, steps=round(900 / 1.1), start_s=600)]  # 1.1 m backward steps
    streams = forward_run(1800, 3.3, 3.3 / 1.1 * 30, efforts)  # 1.1 m forward steps
    measured = line_starting(note_lines(efforts, streams=streams), "Kneecap:")
    assert measured.endswith("; with your steps, about 24% less per km.")


def test_a_detailed_note_never_repeats_a_figure():
    efforts = [effort(900, 300, steps=900, start_s=600)]
    streams = forward_run(1800, 3.0, 80.0, efforts)
    text = note_text(efforts, streams=streams, host_calories=500.0, recent_backward_s=0.0)
    figures = re.findall(r"\d[\d,.]*", text.split("\n", 1)[1].rsplit("\n", 1)[0])
    assert len(figures) == len(set(figures)), text


# --- shape and limits ------------------------------------------------------------------------------------


CASES = [
    TWO_RUNS,
    [effort(400, 150)],
    [effort(0, 120, gait="walk", source="whole")],
    [effort(500, 600, gait="walk", steps=700), effort(800, 250, steps=900, start_s=900)],
    [effort(42195, 14400, steps=50000)],
    [effort(1000, 800, gait="walk", steps=1300)],
]


def assert_note_shape(text: str, compact: bool) -> None:
    lines = text.split("\n")
    assert lines[0].startswith(NOTE_START)
    assert lines[-1] == f"{NOTE_END} {SOURCES}"
    if compact:
        assert 2 <= len(lines) <= NOTE_MAX_LINES
        assert len(text) <= NOTE_MAX_CHARS
    else:
        assert len(lines) <= NOTE_MAX_LINES + 3
    assert sum(line.startswith(NOTE_START) for line in lines) == 1
    assert all(line and line == line.strip() for line in lines)
    assert not re.search(r"[*#`]|(^|\W)_|_(\W|$)|\[.*\]\(", text.replace(SOURCES, ""))
    # The note merges cleanly (it is one valid block).
    assert merge_note("", text) == text


@pytest.mark.parametrize("efforts", CASES)
@pytest.mark.parametrize("profile", [METRIC_DEFAULT, METRIC_SET, IMPERIAL, COMPACT, COMPACT_DEFAULT])
def test_shape_markers_line_count_no_markdown(efforts, profile):
    text = note_text(efforts, profile, host_calories=1234.0, recent_backward_s=0.0)
    assert_note_shape(text, profile.note_style == "compact")


def test_compact_notes_are_four_lines_and_320_characters_at_most():
    """Issue: compact notes were 5-7 lines and up to 770 characters."""
    for efforts in CASES:
        for recent in (None, 0.0):
            text = note_text(efforts, COMPACT_DEFAULT, host_calories=1234.0, recent_backward_s=recent)
            assert len(text.split("\n")) <= 4 and len(text) <= 320, text


efforts_st = st.builds(
    effort,
    st.floats(min_value=0, max_value=200_000),
    st.floats(min_value=20, max_value=100_000),
    st.sampled_from(["run", "walk"]),
    st.one_of(st.none(), st.integers(min_value=0, max_value=500_000)),
    st.sampled_from(["stream", "lap", "whole", "tag"]),
)


@given(
    st.lists(efforts_st, min_size=1, max_size=20),
    st.sampled_from([METRIC_DEFAULT, METRIC_SET, IMPERIAL, COMPACT, COMPACT_DEFAULT]),
    st.one_of(st.none(), st.floats(min_value=0, max_value=100_000)),
    st.one_of(st.none(), st.floats(min_value=0, max_value=200_000)),
    st.floats(min_value=30, max_value=200),
)
def test_notes_never_exceed_their_limits(efforts, profile, host_calories, recent_s, weight):
    profile = replace(profile, weight_kg=weight)
    text = note_text(efforts, profile, host_calories=host_calories, recent_backward_s=recent_s)
    assert_note_shape(text, profile.note_style == "compact")


def test_every_string_key_exists_in_english_and_unknown_lang_falls_back():
    facts = NoteFacts(tuple(TWO_RUNS), None, None)
    assert (
        build_note(facts, METRIC_SET, SOURCES, lang="xx").text == build_note(facts, METRIC_SET, SOURCES).text
    )
    assert set(STRINGS) == {"en"}


def test_a_note_with_the_older_end_line_is_found_and_replaced():
    old = f"{NOTE_START}: 1 backward effort.\nEnergy: about 10 kcal.\n{LEGACY_NOTE_END}"
    new = note_text(TWO_RUNS)
    assert merge_note("My run\n\n" + old, new) == "My run\n\n" + new
    assert strip_note("My run\n\n" + old) == "My run"


# --- merge_note / strip_note / has_note ---------------------------------------------------------------

N1 = f"{NOTE_START}: 1 backward effort.\nEnergy: about 10 kcal.\n{NOTE_END}"
N2 = f"{NOTE_START}: 2 backward efforts.\nKneecap: alike.\nMyth: no.\n{NOTE_END}"


def test_append_to_empty_and_none():
    assert merge_note("", N1) == N1
    assert merge_note(None, N1) == N1


def test_append_after_blank_line_keeping_text_exactly():
    assert merge_note("Morning run  \n", N1) == "Morning run  \n\n\n" + N1


def test_replace_in_place_keeps_text_before_and_after():
    d = "Before\n\n" + N1 + "\nPS: athlete wrote this after\n"
    assert merge_note(d, N2) == "Before\n\n" + N2 + "\nPS: athlete wrote this after\n"


def test_same_note_is_unchanged():
    d = merge_note("Hello", N1)
    assert merge_note(d, N1) == d


def test_remove_note_restores_description():
    assert merge_note(merge_note("Hello", N1), None) == "Hello"
    assert merge_note(N1, None) == ""
    assert merge_note("Hello", None) == "Hello"
    assert merge_note(None, None) == ""


def test_remove_note_from_the_middle_keeps_one_blank_line():
    d = "A\n\n" + N1 + "\n\nB"
    assert merge_note(d, None) == "A\n\nB"
    assert strip_note(d) == "A\n\nB"


def test_crlf_description_block_is_found_and_endings_kept():
    old = N1.replace("\n", "\r\n")
    d = "Hi\r\n\r\n" + old + "\r\nPS\r\n"
    assert has_note(d)
    assert merge_note(d, N2) == "Hi\r\n\r\n" + N2 + "\r\nPS\r\n"
    assert strip_note("Hi\r\n\r\n" + old) == "Hi"
    assert merge_note("Hi\r\n\r\n" + old, None) == "Hi"


def test_marker_inside_a_sentence_is_the_athletes_text():
    d = f"I tried {NOTE_START} today. {NOTE_END}"
    assert not has_note(d)
    assert merge_note(d, N1) == d + "\n\n" + N1
    assert strip_note(d) == d


def test_extra_complete_blocks_are_removed():
    d = "A\n\n" + N1 + "\n\nB\n\n" + N1
    assert merge_note(d, N2) == "A\n\n" + N2 + "\n\nB"


@pytest.mark.parametrize(
    "damaged",
    [
        "Run\n\n" + f"{NOTE_START}: 1 backward effort.\nEnergy: about 10 kcal.",  # end line deleted
        "Run\n\n" + f"Energy: about 10 kcal.\n{NOTE_END}",  # start line deleted
        f"{NOTE_START}: a\n{NOTE_START}: b\n{NOTE_END}",  # two starts, one end
        N1 + "\n" + NOTE_END,  # a second end
    ],
)
def test_damaged_block_refused(damaged):
    assert has_note(damaged)
    assert merge_note(damaged, N2) is None
    assert merge_note(damaged, None) is None


def test_strip_damaged_block_removes_our_paragraph_only():
    d = "My words\n\n" + f"{NOTE_START}: 1 backward effort.\nEnergy: edited by me" + "\n\nAfter"
    assert strip_note(d) == "My words\n\nAfter"
    d = "My words\n\nEnergy: about 10 kcal.\n" + NOTE_END
    assert strip_note(d) == "My words"


@pytest.mark.parametrize(
    "bad", ["no markers", N1 + "\n", "x\n" + N1, f"{NOTE_START}\n{NOTE_END}\n{NOTE_END}"]
)
def test_invalid_note_text_is_an_error(bad):
    with pytest.raises(ValueError):
        merge_note("d", bad)


def test_has_note():
    assert not has_note(None)
    assert not has_note("")
    assert has_note(merge_note("x", N1))


# --- properties ---------------------------------------------------------------------------------------

_FRAGMENTS = st.sampled_from(
    [
        "a",
        "Z",
        " ",
        "\t",
        "\n",
        "\r\n",
        "\r",
        "\n\n",
        "é",
        "⟲",
        "Backstride",
        "—",
        "·",
        "x " + NOTE_START,
        " " + NOTE_START,
        "x" + NOTE_END,
        "x" + LEGACY_NOTE_END,
        "\u2028" + NOTE_START,
    ]
)


def _no_marker_lines(text: str) -> bool:
    return not any(
        line.rstrip("\r").startswith((NOTE_START, NOTE_END)) or line.rstrip("\r").rstrip() == LEGACY_NOTE_END
        for line in text.split("\n")
    )


descriptions = st.one_of(st.text(), st.lists(_FRAGMENTS | st.text(max_size=5)).map("".join)).filter(
    _no_marker_lines
)
_body_line = st.text(st.characters(blacklist_characters="\r\n"), min_size=1, max_size=30).filter(
    lambda s: _no_marker_lines(s) and s.strip() == s and s != ""
)
notes = st.builds(
    lambda head, body: "\n".join([f"{NOTE_START}: {head}", *body, NOTE_END]),
    st.text(st.characters(blacklist_characters="\r\n"), max_size=20),
    st.lists(_body_line, min_size=0, max_size=4),
)


def _marker_lines(text: str) -> tuple[int, int]:
    lines = [line.rstrip("\r") for line in text.split("\n")]
    starts = sum(line.startswith(NOTE_START) for line in lines)
    return starts, sum(line.startswith(NOTE_END) for line in lines)


@given(descriptions, notes)
def test_merge_keeps_description_as_prefix_and_strips_back(d, n):
    merged = merge_note(d, n)
    assert merged is not None
    assert merged.startswith(d)
    assert merged.endswith(n)
    assert strip_note(merged) == d
    assert merge_note(merged, None) == d
    assert _marker_lines(merged) == (1, 1)
    assert has_note(merged)


@given(descriptions, notes, notes)
def test_merge_is_idempotent_and_replaces(d, n1, n2):
    once = merge_note(d, n1)
    assert once is not None
    assert merge_note(once, n2) == merge_note(d, n2)
    assert merge_note(merge_note(d, n2), n2) == merge_note(d, n2)


@given(descriptions)
def test_no_note_means_no_change(d):
    assert merge_note(d, None) == d
    assert strip_note(d) == d
    assert not has_note(d)


@given(descriptions, notes, descriptions)
def test_block_in_the_middle_is_replaced_in_place(before, n, after):
    prefix = before + ("\n" if before and not before.endswith("\n") else "")
    suffix = "\n" + after
    d = prefix + n + suffix
    assert merge_note(d, N2) == prefix + N2 + suffix


@given(descriptions, notes, st.sampled_from(["start", "end"]))
def test_damaged_block_gives_none(d, n, cut):
    lines = n.split("\n")
    damaged_note = "\n".join(lines[:-1] if cut == "end" else lines[1:])
    damaged = merge_note(d, n)[: -len(n)] + damaged_note
    assert merge_note(damaged, N2) is None
    assert merge_note(damaged, None) is None
