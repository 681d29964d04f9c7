"""Kneecap summary: running vs slow wording and step totals."""

from plugin.analysis.knee import PFJ_PER_STEP_CHANGE_RUNNING, KneeSummary, summarize
from plugin.domain import Effort


def effort(distance_m: float, duration_s: float, gait: str = "run", steps: int | None = None) -> Effort:
    return Effort(0.0, duration_s, distance_m, duration_s, steps, 0.9, "lap", gait)  # type: ignore[arg-type]


def test_constant_is_roos_2012_ratio():
    # 3.4 vs 4.5 BW at the same speed.
    assert PFJ_PER_STEP_CHANGE_RUNNING == -0.24
    assert round(3.4 / 4.5 - 1, 2) == -0.24


def test_none_for_no_efforts():
    assert summarize([]) is None


def test_running_at_3_m_s():
    s = summarize([effort(600, 200, steps=700), effort(300, 100, steps=350)])
    assert s == KneeSummary(-0.24, 1050, "about-same")


def test_running_exactly_at_threshold_counts_as_running():
    assert summarize([effort(150, 100)]) == KneeSummary(-0.24, None, "about-same")


def test_slow_running_is_alike():
    s = summarize([effort(100, 100)])  # 1.0 m/s: the ODU thesis speed
    assert s == KneeSummary(0.0, None, "alike")


def test_walking_is_alike_even_if_fast():
    s = summarize([effort(400, 200, gait="walk", steps=400)])
    assert s == KneeSummary(0.0, 400, "alike")


def test_majority_of_time_decides():
    fast_run = effort(600, 200)
    long_walk = effort(300, 300, gait="walk")
    assert summarize([fast_run, long_walk]).per_distance == "alike"
    short_walk = effort(100, 100, gait="walk")
    assert summarize([fast_run, short_walk]).per_distance == "about-same"


def test_half_and_half_is_not_most():
    assert summarize([effort(300, 100), effort(50, 100, gait="walk")]).per_distance == "alike"


def test_steps_sum_of_known_only():
    s = summarize([effort(600, 200, steps=700), effort(300, 100)])
    assert s is not None and s.steps == 700


def test_no_duration_makes_no_running_claim():
    s = summarize([effort(0, 0)])
    assert s == KneeSummary(0.0, None, "alike")
