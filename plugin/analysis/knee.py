"""Kneecap (patellofemoral joint) load of backward running: per step, and per km from the athlete's own steps.

Numbers from ../shared/SCIENCE.md. What is measured: about 24% lower peak compression per step than forward
at the same speed, on average over 20 runners, not in every runner; at slow running speed the directions
are alike. Per km, the load is the load per step times the steps per km: claimed only from the athlete's own
steps each way. Walking: nothing measured, nothing claimed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from plugin.domain import Effort, main_gait

# Peak patellofemoral compression 3.4 vs 4.5 BW backward vs forward at the same speed, 20 runners: about
# 24% less per step, on average (Roos, Barton, van Deursen 2012, J Biomech 45:1656). Not in every runner.
PFJ_FORWARD_BW, PFJ_BACKWARD_BW = 4.5, 3.4
PFJ_PER_STEP_CHANGE_RUNNING = PFJ_BACKWARD_BW / PFJ_FORWARD_BW - 1.0
# At 1.0 m/s the directions were alike: forward 3.41 vs backward 3.51 BW (Old Dominion University physical
# therapy thesis, 1998): slow speed, not direction, spares the joint.
PFJ_PER_STEP_CHANGE_SLOW = 0.0
# Below this speed the running figure is not applied: the Roos study ran at running pace, the thesis found
# no difference at 1.0 m/s, and backward gait turns into running at 1.63 +/- 0.11 m/s (Hreljac et al. 2005,
# J Sports Sci Med 4:446); 1.5 m/s sits at the low end of that transition.
RUNNING_MIN_SPEED_M_S = 1.5

PerStep = Literal["less", "alike"]


@dataclass(frozen=True)
class KneeSummary:
    """Backward running's kneecap load against forward.

    per_step: "less" (running pace: pfj_per_step_change lower per step at the same speed, on average) or
    "alike" (slow running). per_km_change: relative change per km, from the athlete's own backward and
    forward steps per km; None when either was not measured (then nothing is claimed per km).
    """

    per_step: PerStep
    pfj_per_step_change: float
    steps: int | None
    steps_per_km: float | None
    forward_steps_per_km: float | None
    per_km_change: float | None


def summarize(efforts: list[Effort], forward_step_m: float | None = None) -> KneeSummary | None:
    """The kneecap summary of backward running; None without efforts or when most of the backward time was
    walking (nothing measured backs a claim there)."""
    if main_gait(efforts) != "run":
        return None
    running = [e for e in efforts if e.gait == "run"]
    running_time = sum(max(e.duration_s, 0.0) for e in running)
    metres = sum(max(e.distance_m, 0.0) for e in running)
    at_pace = running_time > 0 and metres / running_time >= RUNNING_MIN_SPEED_M_S
    counted = [e for e in efforts if e.steps]
    steps = sum(e.steps or 0 for e in counted) if len(counted) == len(efforts) else None
    measured = [e for e in running if e.steps and e.distance_m > 0]
    measured_m = sum(e.distance_m for e in measured)
    steps_per_km = sum(e.steps or 0 for e in measured) / measured_m * 1000.0 if measured_m > 0 else None
    forward_per_km = 1000.0 / forward_step_m if forward_step_m else None
    change = PFJ_PER_STEP_CHANGE_RUNNING if at_pace else PFJ_PER_STEP_CHANGE_SLOW
    per_km = None
    if steps_per_km is not None and forward_per_km is not None:
        per_km = (1.0 + change) * steps_per_km / forward_per_km - 1.0
    return KneeSummary(
        per_step="less" if at_pace else "alike",
        pfj_per_step_change=change,
        steps=steps,
        steps_per_km=steps_per_km,
        forward_steps_per_km=forward_per_km,
        per_km_change=per_km,
    )
