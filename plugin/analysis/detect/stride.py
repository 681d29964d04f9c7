"""The athlete's forward stride in this activity, and how likely each sample is to be backward against it.

For one gait (running or walking cadences), each sample is a point (x, y) = (log speed at the flat, log
cadence). The athlete's forward running is a cloud of such points: a density on a grid, estimated from the
samples (a smoothed histogram), so it is whatever shape the athlete's running has (a steady pace, intervals,
a progression) and is not pulled by where in the activity a sample lies. A backward sample is a forward one
moved: its speed x0.45-0.85 and its cadence x0.93-1.14 (thresholds.py), so the backward density is the
forward one smeared over that box. A forward slowdown the recording does not show keeps to the athlete's own
stride (cadence against speed, the elasticity fitted here), and gets a small share of the forward density.

The ratio of the two densities at a sample is its evidence; segment.py adds it up along the activity.
Backward samples (up to about 40% of the samples) would pull the forward density towards them, so the clear
backward candidates are left out of it first (forward_samples).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from plugin.analysis.detect import thresholds as th
from plugin.analysis.detect.series import Series, window_bounds, windowed_mean

# The grid: 0.02 in log (2%) per cell.
CELL = 0.02
X_RANGE = (np.log(0.3), np.log(8.0))  # speed, m/s
Y_RANGE = (np.log(20.0), np.log(140.0))  # cadence per leg
NX = int(np.ceil((X_RANGE[1] - X_RANGE[0]) / CELL))
NY = int(np.ceil((Y_RANGE[1] - Y_RANGE[0]) / CELL))
# Smoothing of the histogram, in log units: a runner's pace wanders a few percent, cadence less.
BANDWIDTH_X = 0.04
BANDWIDTH_Y = 0.02
FLOOR = 1e-7  # per cell, so that no log is taken of zero
# Grade slopes are fitted on 1% bins of grade holding at least this many forward samples.
GRADE_BIN_SAMPLES = 20
GRADE_SAMPLES = 4000
LEVEL_HALF_S = 300.0  # the local forward level a grade effect is measured against
# The forward level (forward_samples): a high quantile of 30-s block medians within +/- 10 minutes, and
# never below the activity's own.
REFERENCE_BLOCK_S = 30.0
REFERENCE_HALF_S = 600.0
REFERENCE_QUANTILE = 0.7
CANDIDATE_HALF_S = 15.0
KEY_SPAN = 100.0


def _smoothing_matrix(size: int, bandwidth: float) -> np.ndarray:
    offsets = np.arange(size)[:, None] - np.arange(size)[None, :]
    kernel = np.exp(-0.5 * (offsets * CELL / bandwidth) ** 2)
    return kernel / kernel.sum(axis=0, keepdims=True)


_SMOOTH_X = _smoothing_matrix(NX, BANDWIDTH_X)
_SMOOTH_Y = _smoothing_matrix(NY, BANDWIDTH_Y)


def _box_shifts(ratio: tuple[float, float]) -> tuple[int, int]:
    return int(round(np.log(ratio[0]) / CELL)), int(round(np.log(ratio[1]) / CELL))


_SHIFT_X = _box_shifts(th.BACKWARD_SPEED_RATIO)
_SHIFT_Y = _box_shifts(th.BACKWARD_CADENCE_RATIO)


@dataclass(frozen=True)
class StrideModel:
    """One gait's forward stride in one activity: densities of forward and backward samples on the grid."""

    log_forward: np.ndarray  # (NX, NY)
    log_backward: np.ndarray
    grade_up: float  # d log speed / d grade percent, uphill
    grade_down: float  # likewise, downhill (grade < 0)
    elasticity: float  # d log cadence / d log speed of the forward running
    speed: float  # the forward running's median speed (flat) and cadence
    cadence: float

    def flat_log_speed(self, series: Series) -> np.ndarray:
        """log speed with the grade's effect on forward speed removed."""
        g = series.g
        effect = self.grade_up * np.maximum(g, 0.0) + self.grade_down * np.minimum(g, 0.0)
        return np.log(np.maximum(series.vs, 1e-3)) - effect

    def evidence(self, series: Series, which: np.ndarray) -> np.ndarray:
        """log p(backward) - log p(forward) of the samples `which` (indices)."""
        x = self.flat_log_speed(series)[which]
        y = np.log(np.maximum(series.cs[which], 1e-3))
        ix = np.clip(((x - X_RANGE[0]) / CELL).astype(np.int64), 0, NX - 1)
        iy = np.clip(((y - Y_RANGE[0]) / CELL).astype(np.int64), 0, NY - 1)
        return self.log_backward[ix, iy] - self.log_forward[ix, iy]


def _grade_slopes(series: Series, forward: np.ndarray) -> tuple[float, float]:
    """How forward speed changes with grade: median speed against the local level, by 1% grade bin, a
    least-squares line through zero on each side."""
    if not series.has_grade:
        return 0.0, 0.0
    idx = np.flatnonzero(forward)
    # A slope needs no more than a few thousand samples: an even stride through them.
    idx = idx[:: max(1, len(idx) // GRADE_SAMPLES)]
    t, x, g = series.t[idx], np.log(np.maximum(series.vs[idx], 1e-3)), series.g[idx]
    lo = np.searchsorted(t, t - LEVEL_HALF_S)
    hi = np.searchsorted(t, t + LEVEL_HALF_S, side="right")
    csum = np.concatenate(([0.0], np.cumsum(x)))
    level = (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1)
    deviation = x - level
    # Grade bins from -MAX_GRADE_PCT to +MAX_GRADE_PCT, shifted to start at 0 for group_medians.
    offset = int(th.MAX_GRADE_PCT) + 1
    bins = np.clip(np.round(g).astype(np.int64) + offset, 0, 2 * offset)
    medians, sizes = group_medians(bins, deviation, 2 * offset + 1)
    grade = np.arange(2 * offset + 1, dtype=np.float64) - offset
    enough = sizes >= GRADE_BIN_SAMPLES
    out = []
    for side, limits in ((grade > 0, th.GRADE_SPEED_SLOPE_UP), (grade < 0, th.GRADE_SPEED_SLOPE_DOWN)):
        use = side & enough
        if np.count_nonzero(use) < 2:
            out.append(0.0)
            continue
        gx, py = grade[use], medians[use]
        out.append(float(np.clip(np.dot(gx, py) / np.dot(gx, gx), *limits)))
    return out[0], out[1]


def _elasticity(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> float:
    """d log cadence / d log speed over the forward samples near their typical speed (a weighted
    least-squares slope), within CADENCE_ELASTICITY; DEFAULT_CADENCE_ELASTICITY when speed barely varies."""
    centre = np.median(x)
    near = np.abs(x - centre) < 0.3
    if np.count_nonzero(near) < th.MIN_MODEL_SAMPLES:
        return th.DEFAULT_CADENCE_ELASTICITY
    xs, ys, ws = x[near], y[near], weights[near]
    mx, my = np.average(xs, weights=ws), np.average(ys, weights=ws)
    spread = np.average((xs - mx) ** 2, weights=ws)
    if spread < 0.03**2:
        return th.DEFAULT_CADENCE_ELASTICITY
    slope = np.average((xs - mx) * (ys - my), weights=ws) / spread
    return float(np.clip(slope, *th.CADENCE_ELASTICITY))


def group_medians(groups: np.ndarray, values: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The median of the values in each group 0 .. count-1 (NaN for an empty one), and each group's size.
    One sort of a combined key (group, then value: the values are logs, well inside +/- KEY_SPAN / 4)
    costs less than a sort per group or a lexsort."""
    order = np.argsort(groups * KEY_SPAN + np.clip(values, -KEY_SPAN / 4, KEY_SPAN / 4))
    ordered = values[order]
    sizes = np.bincount(groups, minlength=count)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    medians = np.full(count, np.nan)
    filled = sizes > 0
    lo = (starts + (sizes - 1) // 2)[filled]
    hi = (starts + sizes // 2)[filled]
    medians[filled] = 0.5 * (ordered[lo] + ordered[hi])
    return medians, sizes


def _block_reference(
    t: np.ndarray, values: np.ndarray, members: np.ndarray, quantile: float, half_blocks: int
) -> np.ndarray:
    """Per sample: the `quantile` of the block medians (REFERENCE_BLOCK_S blocks of the member samples)
    within +/- half_blocks blocks of its own; NaN where no block there has members."""
    block = (t // REFERENCE_BLOCK_S).astype(np.int64)
    count = int(block[-1]) + 1
    idx = np.flatnonzero(members)
    medians, sizes = group_medians(block[idx], values[idx], count)
    medians[sizes < 3] = np.nan
    padded = np.concatenate((np.full(half_blocks, np.nan), medians, np.full(half_blocks, np.nan)))
    # Each window sorted (NaN goes last), and the quantile interpolated among its values.
    windows = np.sort(np.lib.stride_tricks.sliding_window_view(padded, 2 * half_blocks + 1), axis=1)
    valid = np.count_nonzero(~np.isnan(windows), axis=1)
    position = quantile * np.maximum(valid - 1, 0)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, np.maximum(valid - 1, 0))
    rows = np.arange(count)
    low, high = windows[rows, below], windows[rows, above]
    reference = low + (high - low) * (position - below)
    reference[valid == 0] = np.nan
    return reference[block]


def forward_samples(series: Series, members: np.ndarray, grade: tuple[float, float]) -> np.ndarray:
    """The members that can stand for forward running: not a clear backward candidate (slower than the
    forward level around them by BACKWARD_SPEED_RATIO's upper bound, at a cadence held within the box).

    The forward level is high in the speeds (backward samples are the slow ones): the REFERENCE_QUANTILE of
    the block medians within +/- REFERENCE_HALF_S, and never below the whole activity's own
    REFERENCE_QUANTILE, which a block longer than that window cannot drag down as long as it is under about
    40% of the activity."""
    up, down = grade
    x = (
        np.log(np.maximum(series.vs, 1e-3))
        - up * np.maximum(series.g, 0.0)
        - down * np.minimum(series.g, 0.0)
    )
    y = np.log(np.maximum(series.cs, 1e-3))
    half = int(REFERENCE_HALF_S // REFERENCE_BLOCK_S)
    whole = float(np.quantile(x[members], REFERENCE_QUANTILE))
    # fmax: NaN (no block with members around) gives the whole activity's level.
    level = np.fmax(_block_reference(series.t, x, members, REFERENCE_QUANTILE, half), whole)
    fast = members & (x > level + np.log(th.BACKWARD_SPEED_RATIO[1]))
    cadence = _block_reference(series.t, y, fast, 0.5, half)
    cadence = np.where(np.isnan(cadence), float(np.median(y[fast])) if fast.any() else np.inf, cadence)
    # Judged on half-minute averages, and widened by as much: the sample noise inside a backward block
    # would otherwise let a share of its samples pass for forward and draw the forward density to them.
    lo, hi = window_bounds(series.t, series.span(CANDIDATE_HALF_S, 2))
    weight = members.astype(np.float64)
    slow = windowed_mean(x, weight, lo, hi) < level + np.log(th.BACKWARD_SPEED_RATIO[1])
    held = windowed_mean(y, weight, lo, hi) > cadence + np.log(th.BACKWARD_CADENCE_RATIO[0])
    candidate = (slow & held).astype(np.float64)
    near_candidate = windowed_mean(candidate, np.ones(series.n), lo, hi) > 0
    return members & ~near_candidate


def fit_stride(series: Series, members: np.ndarray) -> StrideModel | None:
    """The forward stride of one gait's samples (`members`, a mask), or None when there are too few of them
    to say what forward is."""
    if np.count_nonzero(members) < th.MIN_MODEL_SAMPLES:
        return None
    grade_up, grade_down = _grade_slopes(series, members)
    forward = forward_samples(series, members, (grade_up, grade_down))
    if np.count_nonzero(forward) < th.MIN_MODEL_SAMPLES:
        return None
    provisional = StrideModel(
        np.zeros((1, 1)), np.zeros((1, 1)), grade_up, grade_down, 0.0, 0.0, 0.0
    )  # for flat_log_speed only
    idx = np.flatnonzero(forward)
    x = provisional.flat_log_speed(series)[idx]
    y = np.log(np.maximum(series.cs[idx], 1e-3))
    weights = np.minimum(series.dt[idx], th.EVIDENCE_S) + 1e-9
    ix = np.clip(((x - X_RANGE[0]) / CELL).astype(np.int64), 0, NX - 1)
    iy = np.clip(((y - Y_RANGE[0]) / CELL).astype(np.int64), 0, NY - 1)
    counts = np.bincount(ix * NY + iy, weights=weights, minlength=NX * NY).reshape(NX, NY)
    forward_density = _SMOOTH_X @ counts @ _SMOOTH_Y.T
    forward_density /= forward_density.sum()

    # Backward: the forward density moved by every (speed, cadence) ratio in the box, averaged (a box filter
    # from a summed-area table).
    (sx0, sx1), (sy0, sy1) = _SHIFT_X, _SHIFT_Y
    pad_x, pad_y = -sx0 + 1, max(sy1, 0) + 1
    padded = np.zeros((NX + 2 * pad_x, NY + 2 * pad_y))
    padded[pad_x : pad_x + NX, pad_y : pad_y + NY] = forward_density
    area = np.zeros((padded.shape[0] + 1, padded.shape[1] + 1))
    area[1:, 1:] = padded.cumsum(axis=0).cumsum(axis=1)
    # backward(i, j) = mean of forward(i - a, j - b) for a in [sx0, sx1], b in [sy0, sy1]
    i = np.arange(NX)[:, None] + pad_x
    j = np.arange(NY)[None, :] + pad_y
    i_lo, i_hi = i - sx1, i - sx0 + 1
    j_lo, j_hi = j - sy1, j - sy0 + 1
    box = area[i_hi, j_hi] - area[i_lo, j_hi] - area[i_hi, j_lo] + area[i_lo, j_lo]
    backward_density = box / ((sx1 - sx0 + 1) * (sy1 - sy0 + 1))

    # A forward slowdown: slower than the typical forward speed by up to SLOWDOWN_SPAN, cadence on the
    # athlete's own line through the typical point.
    elasticity = _elasticity(x, y, weights)
    speed, cadence = float(np.median(x)), float(np.median(y))
    spread_y = max(float(np.median(np.abs(y - cadence - elasticity * (x - speed)))) * 1.5, 0.025)
    gx = X_RANGE[0] + (np.arange(NX) + 0.5) * CELL
    gy = Y_RANGE[0] + (np.arange(NY) + 0.5) * CELL
    in_span = (gx > speed - th.SLOWDOWN_SPAN) & (gx < speed)
    line = cadence + elasticity * (gx - speed)
    slowdown = in_span[:, None] * np.exp(-0.5 * ((gy[None, :] - line[:, None]) / spread_y) ** 2)
    slowdown /= max(slowdown.sum(), 1e-12)
    forward_total = (1.0 - th.SLOWDOWN_SHARE) * forward_density + th.SLOWDOWN_SHARE * slowdown
    return StrideModel(
        log_forward=np.log(forward_total + FLOOR),
        log_backward=np.log(backward_density + FLOOR),
        grade_up=grade_up,
        grade_down=grade_down,
        elasticity=elasticity,
        speed=float(np.exp(speed)),
        cadence=float(np.exp(cadence)),
    )
