"""Energy cost of backward efforts: the ACSM forward equations times a measured backward factor.

Every constant below is listed in ../shared/SCIENCE.md or cited in docs/science.md. The estimate is a
population figure, so it always carries a range, and the range says what it is: the spread between runners
of the backward factor together with the forward equation's own error between individuals, not the
standard error of a mean.

Two ways to price an effort, which agree for the same walk:
- by distance (the usual case): the forward net cost of each stretch at its own grade (uphill from the ACSM
  equation, downhill cheaper per metre), scaled by the backward factor of the gait;
- by time, when the effort has no distance (a deadmill, a manual entry with a time only): the same pricing
  for a backward walk at the Compendium's backward-walking pace (3.5 mph), whose range holds the
  Compendium's own 6.0 MET. A lap with neither distance nor steps is a standstill and is not priced.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from plugin.domain import Effort, Gait, Streams

# 1 MET: resting oxygen uptake, the part of the cost that going backward does not change (ACSM Guidelines).
ML_O2_PER_KG_MIN_REST = 3.5
# Energy equivalent of oxygen, about 5 kcal per litre (ACSM Guidelines).
KCAL_PER_L_O2 = 5.0

# ACSM equations, VO2 in ml O2/kg/min with S in m/min and G the fractional grade (ACSM's Guidelines for
# Exercise Testing and Prescription, 11th edition, 2021): running 3.5 + 0.2 S + 0.9 S G, walking
# 3.5 + 0.1 S + 1.8 S G. Net of rest, the cost is per metre: 0.2 + 0.9 G (running), 0.1 + 1.8 G (walking).
ACSM_RUN_ML_PER_KG_M = 0.2
ACSM_RUN_GRADE_ML_PER_KG_M = 0.9
ACSM_WALK_ML_PER_KG_M = 0.1
ACSM_WALK_GRADE_ML_PER_KG_M = 1.8
# The backward factor was measured up to +25% grade (Rasica et al. 2020): steeper is priced as 25%.
MAX_UPHILL_GRADE = 0.25
# Downhill the cost per metre falls, to about 20% below level on moderate descents (Margaria et al. 1963;
# Lacour & Bourdin 2015): 2% less per percent of descent, and no further saving claimed beyond -10%.
DOWNHILL_SAVING_PER_GRADE = 2.0
DOWNHILL_FLOOR = 0.8

# The forward equation misestimates individuals: between runners the cost per metre varies by about +/-20%
# (Lacour & Bourdin 2015, Eur J Appl Physiol 115:651). A proportional error of the forward figure scales the
# backward figure and the difference alike.
FORWARD_COST_SPREAD = 0.20

# Backward running costs about 35% more per metre than forward (Wright & Weyand 2001, J Exp Biol 204:1805:
# +35 +/- 6% at 3.0 m/s, the +/- 6 a standard error of N = 4; Rasica, Porcelli, Minetti, Pavei 2020, Eur J
# Appl Physiol 120:2507: +35% on the flat and uphill). Between runners about x1.2 to x1.5.
BACKWARD_RUN_FACTOR = 1.35
BACKWARD_RUN_FACTOR_RANGE = (1.2, 1.5)

# Backward walking: about x1.2 at slow walking to x1.9 at fast walking against forward walking at the same
# speed (SCIENCE.md: less certain). Anchored at the Compendium of Physical Activities' 3.5 mph (6.0 MET
# backward, code 17320, against 4.3 MET forward, 17200: net x1.52; Ainsworth et al. 2011, Med Sci Sports
# Exerc 43:1575) and at Flynn et al. 1994's fast backward walk (107 m/min), interpolated between, held
# outside. (speed m/s, factor):
MPH_3_5_M_S = 3.5 * 1609.344 / 3600
COMPENDIUM_BACKWARD_WALK_MET, COMPENDIUM_FORWARD_WALK_MET = 6.0, 4.3  # at 3.5 mph
FLYNN_FAST_WALK_M_S = 107 / 60
BACKWARD_WALK_FACTOR_POINTS = (
    (0.8, 1.2),
    (MPH_3_5_M_S, (COMPENDIUM_BACKWARD_WALK_MET - 1) / (COMPENDIUM_FORWARD_WALK_MET - 1)),
    (FLYNN_FAST_WALK_M_S, 1.9),
)
# How far an individual's walking factor may lie from the curve (a working assumption: the curve rests on
# few measurements).
BACKWARD_WALK_FACTOR_SPREAD = 0.20

# A time-only effort is priced as a backward walk at the Compendium's backward-walking pace, 3.5 mph.
TIME_ONLY_SPEED_M_S = MPH_3_5_M_S

# Shorter than a second is no effort to price (and a speed from it means nothing).
MIN_DURATION_S = 1.0

Basis = Literal["distance", "time"]
# Stretches of an effort: (metres, fractional grade).
Terrain = Sequence[tuple[float, float]]

_NET_ML_PER_KG_M: dict[Gait, tuple[float, float]] = {
    "run": (ACSM_RUN_ML_PER_KG_M, ACSM_RUN_GRADE_ML_PER_KG_M),
    "walk": (ACSM_WALK_ML_PER_KG_M, ACSM_WALK_GRADE_ML_PER_KG_M),
}


def backward_walk_factor(speed_m_s: float) -> float:
    """Backward over forward walking cost per metre at this speed (BACKWARD_WALK_FACTOR_POINTS)."""
    points = BACKWARD_WALK_FACTOR_POINTS
    if speed_m_s <= points[0][0]:
        return points[0][1]
    for (v0, f0), (v1, f1) in zip(points, points[1:], strict=False):
        if speed_m_s <= v1:
            return f0 + (f1 - f0) * (speed_m_s - v0) / (v1 - v0)
    return points[-1][1]


def backward_factor(gait: Gait, speed_m_s: float) -> tuple[float, float, float]:
    """Backward over forward net cost per metre: (low, central, high) between individuals."""
    if gait == "run":
        low, high = BACKWARD_RUN_FACTOR_RANGE
        return low, BACKWARD_RUN_FACTOR, high
    central = backward_walk_factor(speed_m_s)
    return central * (1 - BACKWARD_WALK_FACTOR_SPREAD), central, central * (1 + BACKWARD_WALK_FACTOR_SPREAD)


def relative_uncertainty(gait: Gait, speed_m_s: float) -> float:
    """The backward net cost's relative uncertainty for one person: the backward factor's spread between
    individuals and the forward equation's own, combined in quadrature."""
    low, central, high = backward_factor(gait, speed_m_s)
    factor_spread = (high - low) / 2 / central
    return math.hypot(factor_spread, FORWARD_COST_SPREAD)


@dataclass(frozen=True)
class EnergyEstimate:
    """Gross kcal of backward efforts, their plausible range, and the same distance and speed forward.

    extra_low and extra_high: the range of what going backward added (the factor's spread and the forward
    equation's error both scale it). basis: "time" when any part was priced by time (no distance).
    less_certain: backward walking or a time-based figure is in it, resting on fewer measurements.
    """

    kcal: float
    kcal_low: float
    kcal_high: float
    kcal_if_forward: float
    extra_low: float
    extra_high: float
    basis: Basis = "distance"
    less_certain: bool = False

    @property
    def extra_kcal(self) -> float:
        """What going backward added over the same effort forward."""
        return self.kcal - self.kcal_if_forward

    @property
    def extra_share(self) -> float:
        """Going backward's extra as a share of the same effort forward (0.3: 30% more)."""
        return self.extra_kcal / self.kcal_if_forward if self.kcal_if_forward > 0 else 0.0


def _kcal(vo2_ml_per_kg: float, weight_kg: float) -> float:
    """kcal for an oxygen uptake in ml per kg (already summed over the minutes)."""
    return vo2_ml_per_kg * weight_kg / 1000.0 * KCAL_PER_L_O2


def net_per_metre(grade: float, gait: Gait) -> float:
    """Forward net oxygen cost, ml O2 per kg per metre, at a fractional grade: ACSM uphill, cheaper
    downhill."""
    horizontal, vertical = _NET_ML_PER_KG_M[gait]
    if grade >= 0:
        return horizontal + vertical * min(grade, MAX_UPHILL_GRADE)
    return horizontal * max(1.0 + DOWNHILL_SAVING_PER_GRADE * grade, DOWNHILL_FLOOR)


def forward_vo2(speed_m_per_min: float, grade: float, gait: Gait) -> float:
    """Forward gross VO2 (ml O2/kg/min) at this speed and fractional grade."""
    return ML_O2_PER_KG_MIN_REST + speed_m_per_min * net_per_metre(grade, gait)


def _check_weight(weight_kg: float) -> None:
    if not (math.isfinite(weight_kg) and weight_kg > 0):
        raise ValueError(f"weight_kg must be a positive number, got {weight_kg!r}")


def _is_standstill(effort: Effort) -> bool:
    """A lap with no distance and no steps: nothing says anybody moved."""
    return effort.source == "lap" and not effort.steps


def estimate_effort(
    effort: Effort, weight_kg: float, terrain: Terrain | None = None
) -> EnergyEstimate | None:
    """Price one effort over its terrain (stretches of (metres, fractional grade); level when None). None
    when it has no usable duration (under 1 s) or is a standstill lap."""
    _check_weight(weight_kg)
    distance, duration = effort.distance_m, effort.duration_s
    if not math.isfinite(duration) or duration < MIN_DURATION_S:
        return None
    minutes = duration / 60.0
    by_time = not math.isfinite(distance) or distance <= 0
    if by_time and _is_standstill(effort):
        return None
    gait: Gait = "walk" if by_time else effort.gait
    speed = TIME_ONLY_SPEED_M_S if by_time else distance / duration
    metres = speed * duration
    stretches = [(d, g) for d, g in (terrain or ()) if d > 0 and math.isfinite(d) and math.isfinite(g)]
    if by_time or not stretches:
        stretches = [(1.0, 0.0)]
    # The stretches give the shares of each grade; the effort's own distance gives the metres.
    measured = sum(d for d, _ in stretches)
    net_forward = sum(metres * d / measured * net_per_metre(g, gait) for d, g in stretches)
    rest = ML_O2_PER_KG_MIN_REST * minutes
    low, central, high = backward_factor(gait, speed)
    spread = relative_uncertainty(gait, speed)
    net_backward = central * net_forward

    def kcal(vo2: float) -> float:
        return _kcal(vo2, weight_kg)

    return EnergyEstimate(
        kcal=kcal(rest + net_backward),
        kcal_low=kcal(rest + net_backward * (1 - spread)),
        kcal_high=kcal(rest + net_backward * (1 + spread)),
        kcal_if_forward=kcal(rest + net_forward),
        extra_low=kcal(net_forward * (low - 1) * (1 - FORWARD_COST_SPREAD)),
        extra_high=kcal(net_forward * (high - 1) * (1 + FORWARD_COST_SPREAD)),
        basis="time" if by_time else "distance",
        less_certain=gait == "walk",
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
        extra_low=sum(e.extra_low for e in estimates),
        extra_high=sum(e.extra_high for e in estimates),
        basis="time" if any(e.basis == "time" for e in estimates) else "distance",
        less_certain=any(e.less_certain for e in estimates),
    )


# Without a grade stream, the grade is the altitude's change over stretches of about this many metres (a
# per-sample altitude difference is mostly noise).
ALTITUDE_STRETCH_M = 50.0


def effort_terrain(effort: Effort, streams: Streams | None) -> list[tuple[float, float]] | None:
    """The effort's stretches as (metres, fractional grade), from grade_smooth or else from altitude over
    distance; None when the streams cannot tell (no streams, no distance or no elevation data). A climb and
    a descent stay apart, so each is priced at its own grade."""
    if streams is None or streams.is_empty or streams.distance is None:
        return None
    time = streams.time
    first = int(np.searchsorted(time, effort.start_s, side="left"))
    last = int(np.searchsorted(time, effort.end_s, side="right")) - 1
    if last <= first:
        return None
    distance = np.asarray(streams.distance[first : last + 1], dtype=np.float64)
    grade = streams.grade_smooth
    if grade is not None and len(grade) == len(time):
        steps = np.diff(distance)
        percent = np.asarray(grade[first + 1 : last + 1], dtype=np.float64)
        ok = np.isfinite(steps) & np.isfinite(percent) & (steps > 0)
        if ok.any():
            return list(zip(steps[ok].tolist(), (percent[ok] / 100.0).tolist(), strict=True))
    altitude = streams.altitude
    if altitude is None or len(altitude) != len(time):
        return None
    height = np.asarray(altitude[first : last + 1], dtype=np.float64)
    ok = np.isfinite(distance) & np.isfinite(height)
    distance, height = distance[ok], height[ok]
    if len(distance) < 2 or distance[-1] <= distance[0]:
        return None
    marks = np.arange(distance[0], distance[-1], ALTITUDE_STRETCH_M)
    marks = np.append(marks, distance[-1]) if marks[-1] < distance[-1] else marks
    levels = np.interp(marks, distance, height)
    runs, climbs = np.diff(marks), np.diff(levels)
    keep = runs > 0
    return list(zip(runs[keep].tolist(), (climbs[keep] / runs[keep]).tolist(), strict=True))
