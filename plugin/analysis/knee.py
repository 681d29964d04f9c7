"""Kneecap (patellofemoral joint) load of backward efforts, per step, relative to forward.

Numbers from ../shared/SCIENCE.md. The honest claim is per step at the same speed; per distance the
backward load is probably close to forward (more, shorter steps), and at slow speed the two are alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from plugin.domain import Effort

# Peak patellofemoral compression 3.4 vs 4.5 BW backward vs forward at the same speed, 20 runners: about
# 24% less per step (Roos, Barton, van Deursen 2012, J Biomech 45:1656). Not lower in every runner.
PFJ_PER_STEP_CHANGE_RUNNING = -0.24
# At self-selected speeds (backward slower than forward) the drop per step was larger: 3.0 vs 5.6 BW peak
# compression in 5 joggers, about 46% less (Flynn & Soutas-Little 1995, JOSPT 21:277). Much of it is the
# slower speed, not the direction; small sample.
PFJ_PER_STEP_CHANGE_SELF_SELECTED = -0.46
# At 1.0 m/s the directions were alike, 3.41 vs 3.51 BW (Old Dominion University MS thesis 1998): slow
# speed, not direction, spares the joint, so slow and walking efforts get no per-step change.
PFJ_PER_STEP_CHANGE_SLOW = 0.0
# Below this speed we do not apply the running figure: the Roos study was running pace, the thesis found
# no difference at 1.0 m/s, and backward gait turns into running at 1.63 +/- 0.11 m/s (Hreljac et al. 2005,
# J Sports Sci Med 4:446); 1.5 m/s sits at the low end of that transition.
RUNNING_MIN_SPEED_M_S = 1.5

PerDistance = Literal["about-same", "alike"]


@dataclass(frozen=True)
class KneeSummary:
    """pfj_per_step_change: relative change in peak kneecap compression per step against forward at the same
    speed; pfj_per_step_change_self_selected: the same against one's usual, faster forward running (running
    pace only, else None).

    steps: backward steps, when every effort has a count; steps_per_km: measured backward steps per km over
    the efforts with both a count and a distance (more, shorter steps than forward: the per-km picture).
    per_distance: "about-same" (running: less per step but more steps per km, derived in SCIENCE.md) or
    "alike" (slow or walking: the two directions load the kneecap alike).
    """

    pfj_per_step_change: float | None
    steps: int | None
    per_distance: PerDistance
    pfj_per_step_change_self_selected: float | None = None
    steps_per_km: float | None = None


def _is_running_pace(effort: Effort) -> bool:
    if effort.gait != "run" or effort.duration_s <= 0 or effort.distance_m <= 0:
        return False
    return effort.distance_m / effort.duration_s >= RUNNING_MIN_SPEED_M_S


def summarize(efforts: list[Effort]) -> KneeSummary | None:
    """Summarize the kneecap load of a set of efforts; None for no efforts.

    Running wording applies when most of the backward time was running at >= 1.5 m/s; with no usable
    time at all we make the smaller claim ("alike").
    """
    if not efforts:
        return None
    total_time = sum(max(e.duration_s, 0.0) for e in efforts)
    running_time = sum(e.duration_s for e in efforts if _is_running_pace(e))
    running = total_time > 0 and running_time > total_time / 2
    counted = [e for e in efforts if e.steps is not None and e.steps > 0]
    # A partial sum would understate the steps taken: only a count for every effort is a count.
    steps = sum(e.steps or 0 for e in counted) if len(counted) == len(efforts) else None
    measured = [e for e in counted if e.distance_m > 0]
    metres = sum(e.distance_m for e in measured)
    steps_per_km = sum(e.steps or 0 for e in measured) / metres * 1000.0 if metres > 0 else None
    if running:
        return KneeSummary(
            PFJ_PER_STEP_CHANGE_RUNNING, steps, "about-same", PFJ_PER_STEP_CHANGE_SELF_SELECTED, steps_per_km
        )
    return KneeSummary(PFJ_PER_STEP_CHANGE_SLOW, steps, "alike", None, steps_per_km)
