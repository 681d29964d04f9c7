"""Kneecap summary: the published per-step ratios, running vs slow wording, steps and steps per km."""

import pytest

from plugin.analysis.knee import (
    PFJ_PER_STEP_CHANGE_RUNNING,
    PFJ_PER_STEP_CHANGE_SELF_SELECTED,
    summarize,
)
from plugin.domain import Effort


def effort(distance_m: float, duration_s: float, gait: str = "run", steps: int | None = None) -> Effort:
    return Effort(0.0, duration_s, distance_m, duration_s, steps, 0.9, "lap", gait)  # type: ignore[arg-type]


def test_same_speed_change_is_roos_2012_ratio():
    # Peak patellofemoral compression 3.4 vs 4.5 body weights at the same speed.
    assert PFJ_PER_STEP_CHANGE_RUNNING == round(3.4 / 4.5 - 1, 2) == -0.24


def test_self_selected_change_is_flynn_1995_ratio():
    # 3.0 vs 5.6 body weights at self-selected speeds: a larger drop, much of it the slower speed.
    assert PFJ_PER_STEP_CHANGE_SELF_SELECTED == round(3.0 / 5.6 - 1, 2) == -0.46


def test_none_for_no_efforts():
    assert summarize([]) is None


def test_running_at_3_m_s():
    s = summarize([effort(600, 200, steps=700), effort(300, 100, steps=350)])
    assert s is not None
    assert s.pfj_per_step_change == -0.24
    assert s.pfj_per_step_change_self_selected == -0.46
    assert s.per_distance == "about-same"
    assert s.steps == 1050
    assert s.steps_per_km == pytest.approx(1050 / 0.9)


def test_running_exactly_at_threshold_counts_as_running():
    s = summarize([effort(150, 100)])
    assert s is not None and s.pfj_per_step_change == -0.24 and s.steps is None and s.steps_per_km is None


def test_slow_running_is_alike_and_makes_no_self_selected_claim():
    s = summarize([effort(100, 100, steps=150)])  # 1.0 m/s: the ODU thesis speed
    assert s is not None
    assert (s.pfj_per_step_change, s.per_distance) == (0.0, "alike")
    assert s.pfj_per_step_change_self_selected is None
    assert s.steps_per_km == pytest.approx(1500)


def test_walking_is_alike_even_if_fast():
    s = summarize([effort(400, 200, gait="walk", steps=400)])
    assert s is not None and (s.pfj_per_step_change, s.steps, s.per_distance) == (0.0, 400, "alike")


def test_majority_of_time_decides():
    fast_run = effort(600, 200)
    long_walk = effort(300, 300, gait="walk")
    assert summarize([fast_run, long_walk]).per_distance == "alike"
    short_walk = effort(100, 100, gait="walk")
    assert summarize([fast_run, short_walk]).per_distance == "about-same"


def test_half_and_half_is_not_most():
    assert summarize([effort(300, 100), effort(50, 100, gait="walk")]).per_distance == "alike"


def test_steps_only_when_every_effort_has_a_count_but_steps_per_km_from_the_counted():
    s = summarize([effort(600, 200, steps=700), effort(300, 100)])
    assert s is not None
    assert s.steps is None  # a partial sum would understate the steps taken
    assert s.steps_per_km == pytest.approx(700 / 0.6)


def test_no_duration_makes_no_running_claim():
    s = summarize([effort(0, 0)])
    assert s is not None and (s.pfj_per_step_change, s.per_distance) == (0.0, "alike")
