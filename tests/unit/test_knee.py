"""Kneecap summary against SCIENCE.md's numbers: per step at the same speed (Roos 2012), alike at slow speed
(the 1998 thesis), per km only from the athlete's own steps, nothing on walks."""

import pytest

from plugin.analysis.knee import summarize
from plugin.domain import Effort

# SCIENCE.md: peak patellofemoral compression 3.4 BW backward vs 4.5 BW forward at the same speed.
ROOS_PER_STEP = 3.4 / 4.5 - 1  # about -24%


def run(distance_m: float, duration_s: float, steps: int | None = None, gait: str = "run") -> Effort:
    return Effort(0.0, duration_s, distance_m, duration_s, steps, 0.9, "stream", gait)  # type: ignore[arg-type]


def test_running_pace_is_about_24_percent_less_per_step():
    summary = summarize([run(900, 300)])
    assert summary is not None
    assert summary.per_step == "less"
    assert summary.pfj_per_step_change == pytest.approx(ROOS_PER_STEP, abs=0.005)


def test_nothing_per_km_without_the_athletes_own_steps_each_way():
    """Issue: every note said "per km about the same (more, shorter steps)"."""
    assert summarize([run(900, 300, steps=900)]).per_km_change is None  # type: ignore[union-attr]
    assert summarize([run(900, 300)], forward_step_m=1.2).per_km_change is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "backward_step,forward_step",
    [(0.79, 1.29), (1.0, 1.2), (1.1, 1.1), (0.6, 1.3)],
)
def test_per_km_from_the_athletes_own_steps(backward_step, forward_step):
    metres = 900.0
    steps = round(metres / backward_step)
    summary = summarize([run(metres, 300, steps=steps)], forward_step_m=forward_step)
    assert summary is not None
    backward_per_km = steps / metres * 1000
    forward_per_km = 1000 / forward_step
    want = (1 + ROOS_PER_STEP) * backward_per_km / forward_per_km - 1
    assert summary.per_km_change == pytest.approx(want, abs=0.005)
    assert summary.steps_per_km == pytest.approx(backward_per_km)
    assert summary.forward_steps_per_km == pytest.approx(forward_per_km)


def test_longer_backward_steps_mean_less_per_km_not_the_same():
    summary = summarize([run(900, 300, steps=round(900 / 1.1))], forward_step_m=1.1)
    assert summary is not None and summary.per_km_change is not None
    assert summary.per_km_change < -0.2


def test_slow_running_is_alike_per_step():
    summary = summarize([run(300, 300)])  # 1.0 m/s
    assert summary is not None
    assert summary.per_step == "alike"
    assert summary.pfj_per_step_change == 0.0


def test_walks_get_no_kneecap_claim():
    """Issue: no running-derived kneecap claim on walks."""
    assert summarize([run(400, 400, gait="walk")]) is None
    assert summarize([run(900, 300, gait="walk")]) is None


def test_most_of_the_time_decides_and_half_is_not_most():
    assert summarize([run(900, 300), run(200, 200, gait="walk")]) is not None
    assert summarize([run(600, 200), run(200, 200, gait="walk")]) is None


def test_none_for_no_efforts_or_no_time():
    assert summarize([]) is None
    assert summarize([run(100, 0)]) is None


def test_steps_only_when_every_effort_has_a_count():
    assert summarize([run(900, 300, steps=800), run(900, 300)]).steps is None  # type: ignore[union-attr]
    assert summarize([run(900, 300, steps=800), run(900, 300, steps=700)]).steps == 1500  # type: ignore[union-attr]
