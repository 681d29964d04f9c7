"""The streams as clean per-sample arrays: which samples can say anything, and their smoothed speed and
cadence. Every operation is a numpy one over the whole recording (no loop per sample), so the cost is
linear in samples (sorting aside)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from plugin.analysis.detect import thresholds as th
from plugin.domain import Streams


@dataclass(frozen=True)
class Series:
    t: np.ndarray  # seconds since the first sample
    dt: np.ndarray  # the interval each sample closes (0 for the first), the weight of its evidence
    v: np.ndarray  # speed, m/s, spikes clipped
    c: np.ndarray  # cadence per leg, spikes clipped, 0 = none
    g: np.ndarray  # grade, percent (0 without a grade stream)
    has_grade: bool
    distance: np.ndarray  # metres from the start: the distance stream, or the speed integrated
    moving: np.ndarray
    usable: np.ndarray  # moving, with speed and cadence, not too steep
    vs: np.ndarray  # smoothed speed (over usable samples)
    cs: np.ndarray  # smoothed cadence
    cadence_recorded: np.ndarray  # a cadence value was recorded (steps can be counted)
    # Running sums over the samples in motion (moving, at STOP_SPEED_M_S or faster; any grade), with a 0
    # first: count and speed between samples a and b are moving_count[b] - moving_count[a], and so on.
    moving_count: np.ndarray
    moving_speed_sum: np.ndarray

    sampling_s: float  # the median interval between samples (1 s for most devices, more for "smart" ones)

    @property
    def n(self) -> int:
        return len(self.t)

    def span(self, seconds: float, samples: float) -> float:
        """A window of `seconds`, widened to hold about `samples` samples on a sparse recording."""
        return max(seconds, samples * self.sampling_s)

    def steps(self, first: int, last: int) -> int | None:
        return count_steps(self.t, self.c, first, last)

    def moving_time(self, first: int, last: int) -> float:
        part = slice(first + 1, last + 1)
        return float(np.sum(self.dt[part] * self.moving[part]))


TYPICAL_SAMPLES = 4000


def count_steps(time: np.ndarray, cadence: np.ndarray | None, first: int, last: int) -> int | None:
    """Steps over the intervals (first, last]: the integral of 2 x cadence (per leg, per minute) over time.
    Each sample's cadence covers the interval that ends at it, so spans that share a boundary sample do not
    count that interval twice. None when no cadence was recorded there (unknown, not zero)."""
    if cadence is None:
        return None
    last = min(last, len(time) - 1, len(cadence) - 1)
    part = slice(max(first, 0) + 1, last + 1)
    c = np.nan_to_num(np.asarray(cadence[part], dtype=np.float64))
    dt = np.diff(np.asarray(time[max(first, 0) : last + 1], dtype=np.float64))
    counted = (c > 0) & (dt > 0)
    if not counted.any():
        return None
    return round(float(np.sum(2.0 * c[counted] / 60.0 * dt[counted])))


def _finite(values: np.ndarray | None, n: int) -> np.ndarray | None:
    if values is None or len(values) < n:
        return None
    out = np.asarray(values[:n], dtype=np.float64)
    return np.where(np.isfinite(out), out, 0.0)


def window_bounds(t: np.ndarray, half_s: float) -> tuple[np.ndarray, np.ndarray]:
    """For each sample, the index range [lo, hi) of the samples within +/- half_s seconds of it."""
    n = len(t)
    if n > 1 and t[-1] - t[0] == (n - 1) * (t[1] - t[0]) and np.all(np.diff(t) == t[1] - t[0]):
        # Evenly sampled (most devices, at 1 s): the window is a fixed number of samples each side.
        reach = int(half_s // (t[1] - t[0]))
        index = np.arange(n)
        return np.maximum(index - reach, 0), np.minimum(index + reach + 1, n)
    return np.searchsorted(t, t - half_s, side="left"), np.searchsorted(t, t + half_s, side="right")


def windowed_mean(values: np.ndarray, weights: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The weighted mean of values over each window [lo, hi); 0 where the window has no weight."""
    total = np.concatenate(([0.0], np.cumsum(values * weights)))
    mass = np.concatenate(([0.0], np.cumsum(weights)))
    weight = mass[hi] - mass[lo]
    return np.divide(total[hi] - total[lo], weight, out=np.zeros(len(lo)), where=weight > 0)


def prepare(streams: Streams | None) -> Series | None:
    """The streams as Series, or None when they cannot locate an effort: too short, no cadence, no speed or
    distance, or time running backward (a damaged recording)."""
    if streams is None or streams.is_empty:
        return None
    t = np.asarray(streams.time, dtype=np.float64)
    n = len(t)
    if n < th.MIN_USABLE_SAMPLES or not np.all(np.isfinite(t)):
        return None
    steps = np.diff(t)
    if np.any(steps < 0) or t[-1] - t[0] < th.MIN_SPAN_S:
        return None
    t = t - t[0]
    cadence = _finite(streams.cadence, n)
    velocity = _finite(streams.velocity_smooth, n)
    distance = _finite(streams.distance, n)
    if cadence is None or (velocity is None and distance is None):
        return None
    dt = np.concatenate(([0.0], steps))
    if velocity is None:
        assert distance is not None
        velocity = np.divide(np.diff(distance, prepend=distance[0]), dt, out=np.zeros(n), where=dt > 0)
    v_raw = np.maximum(velocity, 0.0)
    c_raw = np.maximum(cadence, 0.0)
    if distance is None:
        distance = np.cumsum(v_raw * dt)
    moving_stream = streams.moving
    moving = (
        np.asarray(moving_stream[:n], dtype=bool)
        if moving_stream is not None and len(moving_stream) >= n
        else v_raw >= th.STOP_SPEED_M_S
    )
    grade = _finite(streams.grade_smooth, n)
    g = grade if grade is not None else np.zeros(n)
    usable = (
        moving
        & (v_raw >= th.STOP_SPEED_M_S)
        & (c_raw >= th.MIN_CADENCE_PER_LEG)
        & (np.abs(g) <= th.MAX_GRADE_PCT)
    )
    if np.count_nonzero(usable) < th.MIN_USABLE_SAMPLES:
        return None
    # The typical level needs no more than a few thousand samples (an even stride through them).
    typical = np.flatnonzero(usable)[:: max(1, n // TYPICAL_SAMPLES)]
    v = np.minimum(v_raw, th.SPEED_SPIKE_FACTOR * np.median(v_raw[typical]))
    c = np.minimum(c_raw, th.CADENCE_SPIKE_FACTOR * np.median(c_raw[typical]))
    sampling_s = float(np.median(steps[steps > 0])) if np.any(steps > 0) else 1.0
    lo, hi = window_bounds(t, max(th.SMOOTH_HALF_S, 0.75 * sampling_s))
    weight = usable.astype(np.float64)
    in_motion = moving & (v_raw >= th.STOP_SPEED_M_S)
    return Series(
        t=t,
        dt=dt,
        v=v,
        c=c,
        g=g,
        has_grade=grade is not None,
        distance=distance,
        moving=moving,
        usable=usable,
        vs=windowed_mean(v, weight, lo, hi),
        cs=windowed_mean(c, weight, lo, hi),
        cadence_recorded=c_raw > 0,
        sampling_s=sampling_s,
        moving_count=np.concatenate(([0.0], np.cumsum(in_motion))),
        moving_speed_sum=np.concatenate(([0.0], np.cumsum(v * in_motion))),
    )
