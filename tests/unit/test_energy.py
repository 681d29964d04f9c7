"""Energy model: hand-checked ACSM figures and the backward factors from SCIENCE.md."""

import pytest

from plugin.analysis.energy import (
    BACKWARD_RUN_FACTOR,
    ML_O2_PER_KG_MIN_REST,
    EnergyEstimate,
    estimate_effort,
    total,
)
from plugin.domain import Effort


def effort(distance_m: float, duration_s: float, gait: str = "run", steps: int | None = None) -> Effort:
    return Effort(0.0, duration_s, distance_m, duration_s, steps, 0.9, "lap", gait)  # type: ignore[arg-type]


def test_forward_running_acsm_by_hand():
    # 70 kg, 1000 m at 3.0 m/s: S = 180 m/min, VO2 = 3.5 + 0.2 * 180 = 39.5 ml/kg/min for 5.556 min.
    est = estimate_effort(effort(1000, 1000 / 3.0), 70)
    assert est is not None
    assert est.kcal_if_forward == pytest.approx(39.5 * 70 / 1000 * 5 * (1000 / 180), rel=1e-9)
    assert est.kcal_if_forward == pytest.approx(76.8, abs=0.05)


def test_backward_running_is_plus_35_percent_on_net_part_only():
    est = estimate_effort(effort(1000, 1000 / 3.0), 70)
    assert est is not None
    minutes = 1000 / 180
    rest_kcal = ML_O2_PER_KG_MIN_REST * 70 / 1000 * 5 * minutes
    net_forward = est.kcal_if_forward - rest_kcal
    net_backward = est.kcal - rest_kcal
    assert net_backward / net_forward == pytest.approx(1.35)
    # VO2 = 3.5 + 1.35 * 36 = 52.1 ml/kg/min -> about 101.3 kcal.
    assert est.kcal == pytest.approx(52.1 * 70 / 1000 * 5 * minutes)
    assert est.kcal == pytest.approx(101.3, abs=0.05)
    # Range from 35 +/- 6 % (Wright & Weyand 2001).
    assert (est.kcal_low - rest_kcal) / net_forward == pytest.approx(1.29)
    assert (est.kcal_high - rest_kcal) / net_forward == pytest.approx(1.41)


def test_walking_acsm_by_hand_and_factor():
    # 70 kg, 600 m in 10 min: S = 60 m/min, forward VO2 = 3.5 + 6 = 9.5; backward 3.5 + 1.3 * 6 = 11.3.
    est = estimate_effort(effort(600, 600, gait="walk"), 70)
    assert est is not None
    assert est.kcal_if_forward == pytest.approx(9.5 * 70 / 1000 * 5 * 10)  # 33.25
    assert est.kcal == pytest.approx(11.3 * 70 / 1000 * 5 * 10)  # 39.55
    assert est.kcal_low == pytest.approx((3.5 + 1.2 * 6) * 70 / 1000 * 5 * 10)
    assert est.kcal_high == pytest.approx((3.5 + 1.4 * 6) * 70 / 1000 * 5 * 10)


@pytest.mark.parametrize("gait", ["run", "walk"])
@pytest.mark.parametrize("distance,duration", [(50, 30), (400, 150), (1000, 333), (5000, 1500)])
def test_range_ordering_and_more_than_forward(gait, distance, duration):
    est = estimate_effort(effort(distance, duration, gait=gait), 65)
    assert est is not None
    assert est.kcal_if_forward < est.kcal_low <= est.kcal <= est.kcal_high


def test_walking_range_wider_in_relative_terms_than_running():
    run = estimate_effort(effort(1000, 1000 / 3.0), 70)
    walk = estimate_effort(effort(1000, 1000 / 1.2, gait="walk"), 70)
    assert run is not None and walk is not None
    assert (walk.kcal_high - walk.kcal_low) / walk.kcal > (run.kcal_high - run.kcal_low) / run.kcal


def test_scales_with_weight():
    light = estimate_effort(effort(1000, 400), 50)
    heavy = estimate_effort(effort(1000, 400), 100)
    assert light is not None and heavy is not None
    assert heavy.kcal == pytest.approx(2 * light.kcal)


def test_backward_run_factor_is_the_published_35_percent():
    assert BACKWARD_RUN_FACTOR == 1.35


@pytest.mark.parametrize("distance,duration", [(0, 100), (-5, 100), (100, 0), (100, -1), (float("nan"), 10)])
def test_none_without_distance_or_duration(distance, duration):
    assert estimate_effort(effort(distance, duration), 70) is None


@pytest.mark.parametrize("weight", [0, -70, float("nan")])
def test_bad_weight_is_an_error(weight):
    with pytest.raises(ValueError):
        estimate_effort(effort(1000, 400), weight)


def test_total_sums_fields_and_none_for_empty():
    a = EnergyEstimate(10, 9, 11, 8)
    b = EnergyEstimate(20.5, 18, 23, 15)
    assert total([a, b]) == EnergyEstimate(30.5, 27, 34, 23)
    assert total([a]) == a
    assert total([]) is None
