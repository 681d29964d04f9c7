"""The athlete's own step lengths: backward in the efforts, forward in the rest of the same activity.

The myth answer (energy per step = cost per metre x step length) and the kneecap's load per km (load per
step x steps per km) both rest on how long the athlete's steps were each way. SCIENCE.md's working
assumption, a backward step 60-80% as long as a forward one, stands in when there is nothing to measure.
"""

from __future__ import annotations

import numpy as np

from plugin.analysis.detect.thresholds import MIN_CADENCE_PER_LEG, RUN_CADENCE_PER_LEG, STOP_SPEED_M_S
from plugin.domain import Effort, Gait, Streams

# SCIENCE.md: "step length about 60-80% of the athlete's own forward step at the same speed" (assumption).
ASSUMED_STEP_RATIO = (0.6, 0.8)
# Forward running (or walking) of this long at least, outside every effort, makes a forward step length.
MIN_FORWARD_S = 120.0


def backward_step_m(efforts: tuple[Effort, ...] | list[Effort]) -> float | None:
    """Metres per backward step over the efforts with both a distance and a step count."""
    counted = [e for e in efforts if e.steps and e.distance_m > 0]
    steps = sum(e.steps or 0 for e in counted)
    return sum(e.distance_m for e in counted) / steps if steps > 0 else None


def forward_step_m(
    streams: Streams | None, efforts: tuple[Effort, ...] | list[Effort], gait: Gait
) -> float | None:
    """Metres per forward step in the same activity: distance over steps of the samples outside every effort
    at the efforts' gait (running cadences for running, walking ones for walking); None with less than
    MIN_FORWARD_S of them, or without distance and cadence."""
    if streams is None or streams.is_empty or streams.distance is None or streams.cadence is None:
        return None
    t = streams.time
    if len(t) < 2:
        return None
    dt, dd = np.diff(t), np.diff(streams.distance)
    cadence = streams.cadence[1:]  # each sample's cadence covers the interval ending at it
    outside = np.ones(len(dt), dtype=bool)
    for e in efforts:
        outside &= ~((t[1:] > e.start_s) & (t[:-1] < e.end_s))
    running = cadence >= RUN_CADENCE_PER_LEG
    same_gait = running if gait == "run" else (cadence >= MIN_CADENCE_PER_LEG) & ~running
    moving = np.isfinite(dd) & (dt > 0) & (dd > STOP_SPEED_M_S * dt)
    use = outside & same_gait & moving
    if float(np.sum(dt[use])) < MIN_FORWARD_S:
        return None
    steps = float(np.sum(2.0 * cadence[use] / 60.0 * dt[use]))
    return float(np.sum(dd[use])) / steps if steps > 0 else None


def step_ratio(backward_m: float | None, forward_m: float | None) -> float | None:
    """Backward step over forward step, when both were measured."""
    if backward_m is None or forward_m is None or forward_m <= 0:
        return None
    return backward_m / forward_m
