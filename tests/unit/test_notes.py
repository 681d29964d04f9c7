"""The note text and merging it into an athlete's description."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugin.analysis.notes import (
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
from plugin.analysis.summary import assess
from plugin.domain import AthleteProfile, Effort

METRIC_DEFAULT = AthleteProfile(weight_kg=70.0, weight_source="default")
METRIC_SET = AthleteProfile(weight_kg=70.0, weight_source="settings")
IMPERIAL = AthleteProfile(weight_kg=70.0, weight_source="settings", units="imperial")
COMPACT = AthleteProfile(weight_kg=70.0, weight_source="settings", note_style="compact")


def effort(distance_m: float, duration_s: float, gait: str = "run", steps: int | None = None) -> Effort:
    return Effort(0.0, duration_s, distance_m, duration_s, steps, 0.9, "lap", gait)  # type: ignore[arg-type]


TWO_RUNS = [effort(480, 160, steps=620), effort(320, 152, steps=420)]


def note_text(efforts, profile=METRIC_SET, **context) -> str:
    note = assess(efforts, profile, **context).note
    assert note is not None
    return note.text


def note_lines(efforts, profile=METRIC_SET, **context) -> list[str]:
    return note_text(efforts, profile, **context).split("\n")


# --- build_note ---------------------------------------------------------------------------------------


def test_none_for_no_efforts():
    assert build_note(NoteFacts((), None, None), METRIC_SET) is None
    assert assess([], METRIC_SET).note is None


def test_metric_two_running_efforts_full_text():
    # 800 m in 312 s; 70 kg -> about 82 kcal gross backward (ACSM x1.35 on the net part), 62 forward.
    assert note_lines(TWO_RUNS) == [
        "⟲ Backstride: 2 backward efforts, 0.80 km in 5:12, about 1,040 steps.",
        "Energy: about 82 kcal (79–85), 20 kcal more than the same distance forward.",
        "Kneecap: about 24% less compression per step than running forward at the same speed; "
        "per km about the same (more, shorter steps).",
        "Myth: 100 backward steps ≠ 1,000 forward steps. Your 1,040 backward steps were worth about "
        "1,040–1,350 forward steps of energy, not 10,400.",
        NOTE_END,
    ]


def test_detailed_with_host_calories_and_a_first_backward_week():
    lines = note_lines(TWO_RUNS, host_calories=612.4, recent_backward_s=0.0)
    assert lines[2] == (
        "The 612 kcal shown for this activity assume forward motion; going backward added about 20 (16–23)."
    )
    assert lines[-2].startswith("More backward than usual: build up gradually, walk before you run it")
    assert "Ask a clinician first." in lines[-2]
    assert len(lines) == NOTE_MAX_LINES


def test_compact_leaves_out_host_calories_and_kneecap():
    lines = note_lines(TWO_RUNS, COMPACT, host_calories=612.4)
    assert [line.split(" ")[0] for line in lines[:-1]] == ["⟲", "Energy:", "Myth:"]


def test_note_keeps_its_efforts():
    note = assess(TWO_RUNS, METRIC_SET).note
    assert note is not None and note.efforts == tuple(TWO_RUNS)


def test_imperial_distance_in_miles_and_knee_per_mile():
    lines = note_lines([effort(1609.344, 400, steps=1200)], IMPERIAL)
    assert lines[0] == "⟲ Backstride: 1 backward effort, 1.00 mi in 6:40, about 1,200 steps."
    assert "per mile about the same" in lines[2]
    assert " km" not in "\n".join(lines)


def test_singular_and_plural():
    assert note_lines([effort(400, 150)])[0].startswith(f"{NOTE_START}: 1 backward effort, 0.40 km")
    assert ": 3 backward efforts," in note_lines([effort(400, 150)] * 3)[0]


def test_walk_wording_when_all_walks():
    assert ": 1 backward walk, 0.50 km in 10:00." in note_lines([effort(500, 600, gait="walk")])[0]
    assert ": 2 backward walks," in note_lines([effort(500, 600, gait="walk")] * 2)[0]
    mixed = [effort(500, 600, gait="walk"), effort(400, 150)]
    assert ": 2 backward efforts," in note_lines(mixed)[0]


def test_hours_duration_and_thousands_in_distance():
    lines = note_lines([effort(1_234_560, 3723)])
    assert lines[0] == "⟲ Backstride: 1 backward effort, 1,234.56 km in 1:02:03."


def test_default_weight_sentence_uses_profile_weight():
    line = note_lines(TWO_RUNS, METRIC_DEFAULT)[1]
    assert line.endswith("forward (assuming 70 kg; set your weight for a better figure).")
    other = AthleteProfile(weight_kg=62.5, weight_source="default")
    assert "(assuming 62.5 kg;" in note_lines(TWO_RUNS, other)[1]
    imperial_default = AthleteProfile(weight_kg=70.0, weight_source="default", units="imperial")
    assert "(assuming 154 lb;" in note_lines(TWO_RUNS, imperial_default)[1]


def test_no_weight_sentence_when_weight_is_known():
    assert "assuming" not in note_text(TWO_RUNS, METRIC_SET)
    assert "assuming" not in note_text(TWO_RUNS, AthleteProfile(80.0, "host"))


def test_energy_numbers_match_hand_calculation():
    # 70 kg, 1000 m at 3.0 m/s (S = 180 m/min, 5.556 min): forward VO2 3.5 + 36 = 39.5 -> 76.8 kcal;
    # backward 3.5 + 1.35 * 36 = 52.1 -> 101.3 kcal, range x1.29..x1.41 -> 97.1..105.5.
    line = note_lines([effort(1000, 1000 / 3.0)])[1]
    assert line.startswith("Energy: about 101 kcal (97–106), ")
    # 101.3 - 76.8 = 24.5 (24.4999.. in floating point): shown as 24, as 101 - 77 on the page.
    assert line.endswith(" 24 kcal more than the same distance forward.")


def test_walking_energy_is_marked_less_certain_with_a_wider_myth_range():
    lines = note_lines([effort(500, 500, gait="walk", steps=800)])
    assert lines[1] == (
        "Energy: about 33 kcal (31–35; walking backward: less certain), 5 kcal more than the same distance "
        "forward."
    )
    assert lines[2] == "Kneecap: at this pace backward and forward load the kneecap about alike."
    expected = "Your 800 backward steps were worth about 800–1,120 forward steps of energy, not 8,000."
    assert expected in lines[3]


def test_a_range_that_rounds_to_one_number_is_not_shown():
    energy_line = note_lines([effort(40, 40, gait="walk", steps=70)], AthleteProfile(50.0, "settings"))[1]
    assert energy_line == (
        "Energy: about 2 kcal (walking backward: less certain), under 1 kcal more than the same distance "
        "forward."
    )


def test_uphill_effort_costs_more_in_the_note():
    from plugin.domain import Streams

    uphill = Streams(time=tuple(float(t) for t in range(0, 400)), grade_smooth=(6.0,) * 400)
    flat_line = note_lines([effort(1000, 1000 / 3.0)])[1]
    uphill_line = note_lines([effort(1000, 1000 / 3.0)], streams=uphill)[1]
    assert flat_line.startswith("Energy: about 101 kcal")
    # 6% uphill: forward 3.5 + 36 + 0.9 x 180 x 0.06 = 49.22 ml/kg/min -> backward 3.5 + 1.35 x 45.72
    # = 65.22 -> 126.8 kcal.
    assert uphill_line.startswith("Energy: about 127 kcal")


def test_slow_running_knee_is_alike():
    assert note_lines([effort(300, 300)])[2].startswith("Kneecap: at this pace")


def test_steps_unknown_gives_lap_myth():
    lines = note_lines([effort(400, 150)])
    assert "steps" not in lines[0]
    assert lines[-2] == (
        "Myth: one lap backward ≠ six laps forward; a backward lap costs about 1.3–1.4 forward laps."
    )


def test_steps_partly_unknown_are_not_shown():
    lines = note_lines([effort(400, 150, steps=500), effort(400, 150)])
    assert "steps" not in lines[0]
    assert "lap" in lines[-2]


def test_steps_rounding_below_1000_exact_and_to_ten_above():
    assert (
        "Your 537 backward steps were worth about 537–698 forward steps"
        in note_lines([effort(400, 150, steps=537)])[-2]
    )
    lines = note_lines([effort(2000, 700, steps=2345)])
    assert lines[0].endswith("about 2,350 steps.")
    assert (
        "Your 2,350 backward steps were worth about 2,350–3,050 forward steps of energy, not 23,500."
        in (lines[-2])
    )


def test_no_distance_is_priced_by_time_and_says_so():
    # A 10-minute deadmill, 70 kg: 6.0 METs (73.5 kcal), 8.0 METs uphill (98), forward walking 4.3 (52.7).
    lines = note_lines([effort(0, 600, gait="walk")], host_calories=300)
    assert lines[0] == "⟲ Backstride: 1 backward walk, 10:00."
    assert lines[1] == (
        "Energy: about 74 kcal (74–98; from time alone, no distance), 21 kcal more than walking forward "
        "as long."
    )
    assert lines[-2] == (
        "Myth: 100 backward steps ≠ 1,000 forward steps; "
        "they are worth about 100–140 forward steps of energy."
    )


def test_energy_line_absent_when_an_effort_cannot_be_priced():
    lines = note_lines([effort(400, 150), effort(0, 0)])
    assert not any(line.startswith("Energy") for line in lines)


@pytest.mark.parametrize(
    "backward_s,recent_s,tip",
    [
        (600, 0.0, True),  # a first backward week
        (600, 600, True),  # the week's volume doubles
        (600, 601, False),
        (299, 0.0, False),  # a few minutes are no jump
        (600, None, False),  # history unknown (a file on the command line)
    ],
)
def test_careful_start_tip_when_backward_volume_jumps(backward_s, recent_s, tip):
    assert volume_jumped(backward_s, recent_s) is tip
    text = note_text([effort(backward_s * 2.5, backward_s)], recent_backward_s=recent_s)
    assert ("build up gradually" in text) is tip


def test_host_calories_line_only_with_a_figure():
    assert "shown for this activity" not in note_text(TWO_RUNS, host_calories=None)
    assert "shown for this activity" not in note_text(TWO_RUNS, host_calories=0.0)
    # Below our own forward figure for the backward part alone (62 kcal): counted another way, not shown.
    assert "shown for this activity" not in note_text(TWO_RUNS, host_calories=50.0)
    assert "The 70 kcal shown for this activity" in note_text(TWO_RUNS, host_calories=70.0)


CASES = [
    TWO_RUNS,
    [effort(400, 150)],
    [effort(0, 120, gait="walk")],
    [effort(0, 0)],
    [effort(500, 600, gait="walk", steps=700), effort(800, 250, steps=900)],
    [effort(42195, 14400, steps=50000)],
]


def assert_note_shape(text: str) -> None:
    lines = text.split("\n")
    assert lines[0].startswith(NOTE_START)
    assert lines[-1] == NOTE_END
    assert 3 <= len(lines) <= NOTE_MAX_LINES
    assert len(text) <= NOTE_MAX_CHARS
    assert sum(line.startswith(NOTE_START) for line in lines) == 1
    assert all(line and line == line.strip() for line in lines)
    assert not re.search(r"[*#`]|(^|\W)_|_(\W|$)|\[.*\]\(", text)
    # The note merges cleanly (it is one valid block).
    assert merge_note("", text) == text


@pytest.mark.parametrize("efforts", CASES)
@pytest.mark.parametrize("profile", [METRIC_DEFAULT, METRIC_SET, IMPERIAL, COMPACT])
def test_shape_markers_line_count_no_markdown(efforts, profile):
    assert_note_shape(note_text(efforts, profile, host_calories=1234.0, recent_backward_s=0.0))


efforts_st = st.builds(
    effort,
    st.floats(min_value=0, max_value=200_000),
    st.floats(min_value=0, max_value=100_000),
    st.sampled_from(["run", "walk"]),
    st.one_of(st.none(), st.integers(min_value=0, max_value=500_000)),
)


@given(
    st.lists(efforts_st, min_size=1, max_size=20),
    st.sampled_from([METRIC_DEFAULT, METRIC_SET, IMPERIAL, COMPACT]),
    st.one_of(st.none(), st.floats(min_value=0, max_value=100_000)),
    st.one_of(st.none(), st.floats(min_value=0, max_value=200_000)),
    st.floats(min_value=30, max_value=200),
)
def test_notes_never_exceed_their_limits(efforts, profile, host_calories, recent_s, weight):
    from dataclasses import replace

    profile = replace(profile, weight_kg=weight)
    assert_note_shape(note_text(efforts, profile, host_calories=host_calories, recent_backward_s=recent_s))


def test_every_string_key_exists_in_english_and_unknown_lang_falls_back():
    facts = NoteFacts(tuple(TWO_RUNS), None, None)
    assert build_note(facts, METRIC_SET, lang="xx").text == build_note(facts, METRIC_SET).text
    assert set(STRINGS) == {"en"}


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
        NOTE_END + " more",
        "x" + NOTE_END,
        "\u2028" + NOTE_START,
    ]
)


def _no_marker_lines(text: str) -> bool:
    return not any(
        line.rstrip("\r").startswith(NOTE_START) or line.rstrip("\r").rstrip() == NOTE_END
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
    return starts, sum(line.rstrip() == NOTE_END for line in lines)


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
