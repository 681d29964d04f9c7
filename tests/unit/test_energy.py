"""Energy model: the published anchors, the ACSM textbook values, the myth arithmetic, and its properties."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugin.analysis.energy import (
    BACKWARD_RUN_FACTOR,
    ML_O2_PER_KG_MIN_REST,
    EnergyEstimate,
    effort_grade,
    estimate_effort,
    forward_vo2,
    total,
)
from plugin.domain import Effort, Streams


def effort(
    distance_m: float, duration_s: float, gait: str = "run", steps: int | None = None, start_s: float = 0.0
) -> Effort:
    return Effort(
        start_s,
        start_s + duration_s,
        distance_m,
        duration_s,
        steps,
        0.9,
        "lap",
        gait,  # type: ignore[arg-type]
    )


def rest_kcal(weight_kg: float, minutes: float) -> float:
    return ML_O2_PER_KG_MIN_REST * weight_kg / 1000 * 5 * minutes


# --- the published anchors -----------------------------------------------------------------------------


def test_backward_running_costs_35_percent_more_at_3_m_s():
    # Wright & Weyand 2001: +35 +/- 6% net metabolic cost backward at 3.0 m/s.
    est = estimate_effort(effort(1000, 1000 / 3.0), 70)
    assert est is not None
    minutes = 1000 / 180
    net_forward = est.kcal_if_forward - rest_kcal(70, minutes)
    net_backward = est.kcal - rest_kcal(70, minutes)
    assert net_backward / net_forward == pytest.approx(1.35)
    # VO2 = 3.5 + 1.35 * 36 = 52.1 ml/kg/min -> about 101.3 kcal.
    assert est.kcal == pytest.approx(52.1 * 70 / 1000 * 5 * minutes)
    assert est.kcal == pytest.approx(101.3, abs=0.05)
    assert BACKWARD_RUN_FACTOR == 1.35


def test_running_range_is_the_measured_spread():
    est = estimate_effort(effort(1000, 1000 / 3.0), 70)
    assert est is not None
    minutes = 1000 / 180
    net_forward = est.kcal_if_forward - rest_kcal(70, minutes)
    # 35 +/- 6% (Wright & Weyand 2001).
    assert (est.kcal_high - rest_kcal(70, minutes)) / net_forward == pytest.approx(1.41)
    assert (est.kcal_low - rest_kcal(70, minutes)) / net_forward == pytest.approx(1.29)
    # Net cost per kg per km backward: SCIENCE.md derives about 1.2-1.3 kcal/kg/km.
    net_per_kg_km = (est.kcal - rest_kcal(70, minutes)) / 70
    assert 1.2 <= net_per_kg_km <= 1.4


@pytest.mark.parametrize(
    "speed_m_min,grade,gait,vo2",
    [
        # ACSM Guidelines' worked examples.
        (161.0, 0.0, "run", 35.7),  # 6 mph level: 3.5 + 0.2 x 161
        (134.0, 0.05, "run", 36.33),  # 5 mph at 5%: 3.5 + 26.8 + 0.9 x 134 x 0.05
        (80.4, 0.0, "walk", 11.54),  # 3 mph level: 3.5 + 8.04
        (80.4, 0.05, "walk", 18.776),  # 3 mph at 5%: 3.5 + 8.04 + 1.8 x 80.4 x 0.05
    ],
)
def test_acsm_textbook_values(speed_m_min, grade, gait, vo2):
    assert forward_vo2(speed_m_min, grade, gait) == pytest.approx(vo2, abs=0.01)


def test_forward_running_is_about_one_kcal_per_kg_per_km_net():
    # Margaria 1963 / di Prampero 2005: about 1 kcal/kg/km net, nearly independent of speed.
    for speed in (2.5, 3.0, 4.0):
        est = estimate_effort(effort(1000, 1000 / speed), 1.0)
        assert est is not None
        minutes = 1000 / speed / 60
        assert est.kcal_if_forward - rest_kcal(1.0, minutes) == pytest.approx(1.0)


def test_one_lap_backward_is_about_one_point_three_laps_not_six():
    # SCIENCE.md: a 70 kg runner spends about 28 kcal net on a 400 m lap forward, 36-38 backward.
    est = estimate_effort(effort(400, 400 / 3.0), 70)
    assert est is not None
    minutes = 400 / 180
    net_forward = est.kcal_if_forward - rest_kcal(70, minutes)
    net_backward = est.kcal - rest_kcal(70, minutes)
    assert net_forward == pytest.approx(28.0)
    assert 36 <= net_backward <= 38
    assert 1.29 <= net_backward / net_forward <= 1.41  # 1.3-1.4 laps, not 6


def test_walking_acsm_by_hand_and_wider_range():
    # 70 kg, 600 m in 10 min: S = 60 m/min, forward VO2 = 3.5 + 6 = 9.5; backward 3.5 + 1.3 x 6 = 11.3.
    est = estimate_effort(effort(600, 600, gait="walk"), 70)
    assert est is not None
    assert est.kcal_if_forward == pytest.approx(9.5 * 70 / 1000 * 5 * 10)  # 33.25
    assert est.kcal == pytest.approx(11.3 * 70 / 1000 * 5 * 10)  # 39.55
    assert est.kcal_low == pytest.approx((3.5 + 1.2 * 6) * 70 / 1000 * 5 * 10)
    assert est.kcal_high == pytest.approx((3.5 + 1.4 * 6) * 70 / 1000 * 5 * 10)
    assert est.less_certain and est.basis == "distance"
    run = estimate_effort(effort(1000, 1000 / 3.0), 70)
    assert run is not None and not run.less_certain


def test_uphill_backward_running_costs_more_and_the_extra_rises_linearly():
    # Rasica et al. 2020: +35% on grades 0 to +25%, the extra cost rising linearly with grade.
    extras = []
    for grade in (0.0, 0.05, 0.10, 0.15):
        est = estimate_effort(effort(600, 300), 70, grade)
        assert est is not None
        extras.append(est.extra_kcal)
    steps = [b - a for a, b in zip(extras, extras[1:], strict=False)]
    assert all(s > 0 for s in steps)
    assert steps == pytest.approx([steps[0]] * 3)


def test_downhill_is_priced_as_level_and_steep_as_25_percent():
    level = estimate_effort(effort(600, 300), 70, 0.0)
    assert estimate_effort(effort(600, 300), 70, -0.08) == level
    assert estimate_effort(effort(600, 300), 70, 0.40) == estimate_effort(effort(600, 300), 70, 0.25)


def test_time_based_estimate_from_the_compendium():
    # A 10-minute deadmill (no distance), 70 kg: 6.0 METs backward walking (Compendium 17320), 8.0 uphill
    # (17325), forward walking 4.3 (17200); 1 MET = 3.5 ml/kg/min = 70 x 3.5 / 1000 x 5 kcal/min.
    est = estimate_effort(effort(0, 600, gait="walk"), 70)
    assert est is not None
    per_met = 3.5 * 70 / 1000 * 5 * 10
    assert est.kcal == pytest.approx(6.0 * per_met)  # 73.5
    assert est.kcal_high == pytest.approx(8.0 * per_met)
    assert est.kcal_if_forward == pytest.approx(4.3 * per_met)
    assert est.basis == "time" and est.less_certain


@pytest.mark.parametrize("distance,duration", [(100, 0), (100, -1), (0, 0), (100, float("nan"))])
def test_none_without_duration(distance, duration):
    assert estimate_effort(effort(distance, duration), 70) is None


@pytest.mark.parametrize("weight", [0, -70, float("nan")])
def test_bad_weight_is_an_error(weight):
    with pytest.raises(ValueError):
        estimate_effort(effort(1000, 400), weight)


def test_total_sums_fields_and_carries_the_caveats():
    a = EnergyEstimate(10, 9, 11, 8)
    b = EnergyEstimate(20.5, 18, 23, 15, basis="time", less_certain=True)
    assert total([a, b]) == EnergyEstimate(30.5, 27, 34, 23, basis="time", less_certain=True)
    assert total([a]) == a
    assert total([]) is None


# --- grade from the streams -----------------------------------------------------------------------------


def test_effort_grade_from_grade_smooth_in_the_effort_window():
    streams = Streams(time=(0.0, 10.0, 20.0, 30.0, 40.0), grade_smooth=(0.0, 4.0, 6.0, 8.0, 0.0))
    assert effort_grade(effort(30, 20, start_s=10), streams) == pytest.approx(0.06)


def test_effort_grade_from_altitude_when_no_grade_stream():
    streams = Streams(time=(0.0, 10.0, 20.0), distance=(0.0, 30.0, 60.0), altitude=(100.0, 101.5, 103.0))
    assert effort_grade(effort(60, 20), streams) == pytest.approx(0.05)


def test_effort_grade_is_level_without_streams():
    assert effort_grade(effort(60, 20), None) == 0.0
    assert effort_grade(effort(60, 20), Streams()) == 0.0


# --- properties ------------------------------------------------------------------------------------------

gaits = st.sampled_from(["run", "walk"])
distances = st.floats(min_value=0.0, max_value=50_000)
durations = st.floats(min_value=1.0, max_value=36_000)
weights = st.floats(min_value=30.0, max_value=200.0)
grades = st.floats(min_value=-0.3, max_value=0.4)


@given(gaits, distances, durations, weights, grades)
def test_range_contains_the_estimate_and_backward_costs_more(gait, distance, duration, weight, grade):
    est = estimate_effort(effort(distance, duration, gait=gait), weight, grade)
    assert est is not None
    assert all(math.isfinite(x) for x in (est.kcal, est.kcal_low, est.kcal_high, est.kcal_if_forward))
    assert est.kcal_low <= est.kcal <= est.kcal_high
    assert est.kcal_if_forward <= est.kcal_low


@given(gaits, distances, durations, weights, st.floats(min_value=1.01, max_value=2.0))
def test_calories_grow_with_mass(gait, distance, duration, weight, factor):
    light = estimate_effort(effort(distance, duration, gait=gait), weight)
    heavy = estimate_effort(effort(distance, duration, gait=gait), weight * factor)
    assert light is not None and heavy is not None
    assert heavy.kcal > light.kcal
    assert heavy.kcal == pytest.approx(light.kcal * factor)


@given(gaits, st.floats(min_value=1.0, max_value=20_000), durations, weights, st.floats(1.01, 3.0))
def test_calories_grow_with_distance(gait, distance, duration, weight, factor):
    short = estimate_effort(effort(distance, duration, gait=gait), weight)
    far = estimate_effort(effort(distance * factor, duration, gait=gait), weight)
    assert short is not None and far is not None
    assert far.kcal > short.kcal
    assert far.kcal_if_forward > short.kcal_if_forward


@given(gaits, st.floats(min_value=1.0, max_value=20_000), durations, weights, grades, grades)
def test_calories_never_fall_with_grade(gait, distance, duration, weight, g1, g2):
    low_grade, high_grade = sorted((g1, g2))
    flatter = estimate_effort(effort(distance, duration, gait=gait), weight, low_grade)
    steeper = estimate_effort(effort(distance, duration, gait=gait), weight, high_grade)
    assert flatter is not None and steeper is not None
    assert steeper.kcal >= flatter.kcal
    if 0.0 < high_grade <= 0.25 and high_grade - max(low_grade, 0.0) > 1e-3:
        assert steeper.kcal > flatter.kcal
