"""Energy cost of backward efforts: the ACSM forward equations times a measured backward factor.

Every constant below is listed in ../shared/SCIENCE.md with its source. The estimate is a population
figure (the ACSM equations are known to misestimate individuals), so it always carries a range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from plugin.domain import Effort, Gait

# 1 MET: resting oxygen uptake, the part of the cost that going backward does not change (ACSM Guidelines).
ML_O2_PER_KG_MIN_REST = 3.5
# Energy equivalent of oxygen, about 5 kcal per litre (ACSM Guidelines).
KCAL_PER_L_O2 = 5.0

# ACSM horizontal terms, ml O2 per kg per metre travelled: running 0.2 S, walking 0.1 S (ACSM Guidelines;
# grade terms 0.9 S G / 1.8 S G are left out in this version: grade 0).
ACSM_RUN_ML_PER_KG_M = 0.2
ACSM_WALK_ML_PER_KG_M = 0.1

# Backward running costs +35 +/- 6% over forward at the same speed (Wright & Weyand 2001, J Exp Biol
# 204:1805, measured at 3.0 m/s; Rasica, Porcelli, Minetti, Pavei 2020, Eur J Appl Physiol 120:2507: +35%).
BACKWARD_RUN_FACTOR = 1.35
BACKWARD_RUN_FACTOR_LOW = 1.29
BACKWARD_RUN_FACTOR_HIGH = 1.41

# Backward walking: clearly costlier than forward, but no clean published ratio; SCIENCE.md says use
# x1.2 to x1.4 and call it less certain (Flynn et al. 1994, Med Sci Sports Exerc 26:89; Hooper et al. 2004,
# JOSPT 34:65; Chaloupka et al. 1997, JOSPT 25:302).
BACKWARD_WALK_FACTOR = 1.3
BACKWARD_WALK_FACTOR_LOW = 1.2
BACKWARD_WALK_FACTOR_HIGH = 1.4

_NET_ML_PER_KG_M: dict[Gait, float] = {"run": ACSM_RUN_ML_PER_KG_M, "walk": ACSM_WALK_ML_PER_KG_M}
_FACTORS: dict[Gait, tuple[float, float, float]] = {
    "run": (BACKWARD_RUN_FACTOR_LOW, BACKWARD_RUN_FACTOR, BACKWARD_RUN_FACTOR_HIGH),
    "walk": (BACKWARD_WALK_FACTOR_LOW, BACKWARD_WALK_FACTOR, BACKWARD_WALK_FACTOR_HIGH),
}


@dataclass(frozen=True)
class EnergyEstimate:
    """Gross kcal of a backward effort, its plausible range, and the same distance and speed forward."""

    kcal: float
    kcal_low: float
    kcal_high: float
    kcal_if_forward: float


def _kcal(vo2_ml_per_kg_min: float, weight_kg: float, minutes: float) -> float:
    return vo2_ml_per_kg_min * weight_kg / 1000.0 * KCAL_PER_L_O2 * minutes


def estimate_effort(effort: Effort, weight_kg: float) -> EnergyEstimate | None:
    """Price one effort; None when it has no distance or no duration (nothing to base a speed on)."""
    if not (math.isfinite(weight_kg) and weight_kg > 0):
        raise ValueError(f"weight_kg must be a positive number, got {weight_kg!r}")
    distance, duration = effort.distance_m, effort.duration_s
    if not (math.isfinite(distance) and math.isfinite(duration)) or distance <= 0 or duration <= 0:
        return None
    minutes = duration / 60.0
    speed_m_per_min = distance / minutes
    # Only the net (above-rest) part is scaled: the backward studies compare locomotion cost, and the
    # resting 1 MET is spent whichever way one faces.
    net = _NET_ML_PER_KG_M[effort.gait] * speed_m_per_min
    low, mid, high = _FACTORS[effort.gait]

    def gross(factor: float) -> float:
        return _kcal(ML_O2_PER_KG_MIN_REST + factor * net, weight_kg, minutes)

    return EnergyEstimate(
        kcal=gross(mid), kcal_low=gross(low), kcal_high=gross(high), kcal_if_forward=gross(1.0)
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
    )
