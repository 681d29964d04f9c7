"""Energy cost of backward efforts: the ACSM forward equations times a measured backward factor.

Every constant below is listed in ../shared/SCIENCE.md or cited in docs/science.md. The estimate is a
population figure (the ACSM equations are known to misestimate individuals), so it always carries a range.

Two ways to price an effort:
- by distance (the usual case): the forward cost at the effort's speed and uphill grade from the ACSM running
  or walking equation, its net (above-rest) part scaled by the backward factor of that gait;
- by time, when the effort has no distance (a deadmill, a treadmill with the belt off, a manual entry with a
  time only): the Compendium of Physical Activities' backward-walking MET values.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Literal

from plugin.domain import Effort, Gait, Streams

# 1 MET: resting oxygen uptake, the part of the cost that going backward does not change (ACSM Guidelines).
ML_O2_PER_KG_MIN_REST = 3.5
# Energy equivalent of oxygen, about 5 kcal per litre (ACSM Guidelines).
KCAL_PER_L_O2 = 5.0

# ACSM equations, VO2 in ml O2/kg/min with S in m/min and G the fractional grade (ACSM Guidelines):
#   running 3.5 + 0.2 S + 0.9 S G, walking 3.5 + 0.1 S + 1.8 S G.
ACSM_RUN_ML_PER_KG_M = 0.2
ACSM_RUN_GRADE_ML_PER_KG_M = 0.9
ACSM_WALK_ML_PER_KG_M = 0.1
ACSM_WALK_GRADE_ML_PER_KG_M = 1.8
# The equations are for level and uphill locomotion; the treadmill study behind the backward factor went
# up to +25% (Rasica et al. 2020). Downhill is priced as level (the conservative side), steeper as 25%.
MAX_UPHILL_GRADE = 0.25

# ACSM's running term is 4.2 J/kg/m net; direct measurement puts forward running at 3.8-4.0 J/kg/m
# (di Prampero et al. 2005, J Exp Biol 208:2809). The ACSM figure is kept for both directions, so the
# backward-minus-forward difference rests on one baseline; docs/science.md says the absolute figures may
# lean 5-10% high, as any forward-assuming ACSM-based count would.

# Backward running costs +35 +/- 6% over forward at the same speed (Wright & Weyand 2001, J Exp Biol
# 204:1805, measured at 3.0 m/s; Rasica, Porcelli, Minetti, Pavei 2020, Eur J Appl Physiol 120:2507: +35% on
# the flat and up to +25% grade, the extra rising linearly with grade, which a constant factor on the ACSM
# net cost, itself linear in grade, reproduces).
BACKWARD_RUN_FACTOR = 1.35
BACKWARD_RUN_FACTOR_LOW = 1.29
BACKWARD_RUN_FACTOR_HIGH = 1.41

# Backward walking: clearly costlier than forward, but no clean published ratio; SCIENCE.md says use
# x1.2 to x1.4 and call it less certain (Flynn et al. 1994, Med Sci Sports Exerc 26:89; Hooper et al. 2004,
# JOSPT 34:65; Chaloupka et al. 1997, JOSPT 25:302).
BACKWARD_WALK_FACTOR = 1.3
BACKWARD_WALK_FACTOR_LOW = 1.2
BACKWARD_WALK_FACTOR_HIGH = 1.4

# Time-based pricing, METs from the 2011 Compendium of Physical Activities (Ainsworth et al. 2011, Med Sci
# Sports Exerc 43:1575): walking backwards at 3.5 mph on the level 6.0 (code 17320) and uphill at 5% grade
# 8.0 (17325, the upper end: pushing a switched-off belt is at least as hard); walking forward at 3.5 mph on
# the level, brisk, 4.3 (17200).
BACKWARD_WALK_MET = 6.0
BACKWARD_WALK_MET_HIGH = 8.0
FORWARD_WALK_MET = 4.3

# Shorter than a second is no effort to price (and a speed from it means nothing).
MIN_DURATION_S = 1.0

Basis = Literal["distance", "time"]

_NET_ML_PER_KG_M: dict[Gait, tuple[float, float]] = {
    "run": (ACSM_RUN_ML_PER_KG_M, ACSM_RUN_GRADE_ML_PER_KG_M),
    "walk": (ACSM_WALK_ML_PER_KG_M, ACSM_WALK_GRADE_ML_PER_KG_M),
}
_FACTORS: dict[Gait, tuple[float, float, float]] = {
    "run": (BACKWARD_RUN_FACTOR_LOW, BACKWARD_RUN_FACTOR, BACKWARD_RUN_FACTOR_HIGH),
    "walk": (BACKWARD_WALK_FACTOR_LOW, BACKWARD_WALK_FACTOR, BACKWARD_WALK_FACTOR_HIGH),
}


def backward_factor_range(gait: Gait) -> tuple[float, float]:
    """How many times the forward net cost going backward costs, low and high, for this gait."""
    low, _, high = _FACTORS[gait]
    return low, high


@dataclass(frozen=True)
class EnergyEstimate:
    """Gross kcal of backward efforts, their plausible range, and the same distance and speed forward.

    basis: "time" when any part was priced by time (no distance). less_certain: backward walking or a
    time-based figure is in it, whose range is wider and rests on fewer measurements.
    """

    kcal: float
    kcal_low: float
    kcal_high: float
    kcal_if_forward: float
    basis: Basis = "distance"
    less_certain: bool = False

    @property
    def extra_kcal(self) -> float:
        """What going backward added over the same effort forward."""
        return self.kcal - self.kcal_if_forward


def _kcal(vo2_ml_per_kg_min: float, weight_kg: float, minutes: float) -> float:
    return vo2_ml_per_kg_min * weight_kg / 1000.0 * KCAL_PER_L_O2 * minutes


def forward_vo2(speed_m_per_min: float, grade: float, gait: Gait) -> float:
    """ACSM gross VO2 (ml O2/kg/min) going forward at this speed and fractional grade."""
    horizontal, vertical = _NET_ML_PER_KG_M[gait]
    uphill = min(max(grade, 0.0), MAX_UPHILL_GRADE)
    return ML_O2_PER_KG_MIN_REST + horizontal * speed_m_per_min + vertical * speed_m_per_min * uphill


def _check_weight(weight_kg: float) -> None:
    if not (math.isfinite(weight_kg) and weight_kg > 0):
        raise ValueError(f"weight_kg must be a positive number, got {weight_kg!r}")


def estimate_effort(effort: Effort, weight_kg: float, grade: float = 0.0) -> EnergyEstimate | None:
    """Price one effort at its mean fractional grade; None when it has no usable duration (under 1 s)."""
    _check_weight(weight_kg)
    distance, duration = effort.distance_m, effort.duration_s
    if not math.isfinite(duration) or duration < MIN_DURATION_S:
        return None
    minutes = duration / 60.0
    if not math.isfinite(distance) or distance <= 0:
        return _by_time(weight_kg, minutes)
    speed_m_per_min = distance / minutes
    # Only the net (above-rest) part is scaled: the backward studies compare locomotion cost, and the
    # resting 1 MET is spent whichever way one faces.
    net = forward_vo2(speed_m_per_min, grade if math.isfinite(grade) else 0.0, effort.gait)
    net -= ML_O2_PER_KG_MIN_REST
    low, mid, high = _FACTORS[effort.gait]

    def gross(factor: float) -> float:
        return _kcal(ML_O2_PER_KG_MIN_REST + factor * net, weight_kg, minutes)

    return EnergyEstimate(
        kcal=gross(mid),
        kcal_low=gross(low),
        kcal_high=gross(high),
        kcal_if_forward=gross(1.0),
        basis="distance",
        less_certain=effort.gait == "walk",
    )


def _by_time(weight_kg: float, minutes: float) -> EnergyEstimate:
    def gross(met: float) -> float:
        return _kcal(met * ML_O2_PER_KG_MIN_REST, weight_kg, minutes)

    return EnergyEstimate(
        kcal=gross(BACKWARD_WALK_MET),
        kcal_low=gross(BACKWARD_WALK_MET),
        kcal_high=gross(BACKWARD_WALK_MET_HIGH),
        kcal_if_forward=gross(FORWARD_WALK_MET),
        basis="time",
        less_certain=True,
    )


def total(estimates: list[EnergyEstimate]) -> EnergyEstimate | None:
    """Sum several estimates field by field; None for an empty list."""
    if not estimates:
        return None
    return EnergyEstimate(
        kcal=sum(e.kcal for e in estimates),
        kcal_low=sum(e.kcal_low for e in estimates),
        kcal_high=sum(e.kcal_high for e in estimates),
        kcal_if_forward=sum(e.kcal_if_forward for e in estimates),
        basis="time" if any(e.basis == "time" for e in estimates) else "distance",
        less_certain=any(e.less_certain for e in estimates),
    )


def effort_grade(effort: Effort, streams: Streams | None) -> float:
    """The effort's mean fractional grade from the streams (grade_smooth, else altitude over distance); 0.0
    when the streams cannot tell (no streams, a whole-activity effort without elevation data)."""
    if streams is None or streams.is_empty:
        return 0.0
    time = streams.time
    first = bisect_left(time, effort.start_s)
    last = bisect_right(time, effort.end_s) - 1
    if last <= first:
        return 0.0
    grade = streams.grade_smooth
    if grade is not None and len(grade) == len(time):
        window = [g for g in grade[first : last + 1] if g is not None and math.isfinite(g)]
        if window:
            return sum(window) / len(window) / 100.0  # Strava's grade_smooth is in percent
    altitude, distance = streams.altitude, streams.distance
    if altitude is not None and distance is not None and len(altitude) == len(distance) == len(time):
        climb, run = altitude[last] - altitude[first], distance[last] - distance[first]
        if run > 0 and math.isfinite(climb):
            return climb / run
    return 0.0
