"""Where the backward blocks are: each sample's evidence (stride.py) summed along the activity by a two-state
hidden Markov model (forward, backward), decoded with Viterbi, then each block measured.

The model has no preferred block length: a block is kept when its evidence pays for the two changes of state
that bound it (SWITCH_NATS), which a clear 20-s stride does and a 30-minute block does many times over, and
its evidence is measured against the athlete's whole-activity forward stride, which a long block cannot drag
towards itself. Runs of samples whose evidence has one sign are decoded as one (no switch inside such a run
can pay off), so the Python loop visits runs, not samples.

Each block's edges then move to the sharpest change of speed nearby, and the block is measured: its evidence,
the forward running around it, and how abrupt its edges are (turning round to go backward is abrupt, easing
into a slower jog is not). A long block without abrupt edges is cut where its speed does change abruptly, and
the pieces are measured too: a warm-up or a cool-down that runs into a backward block merges with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from plugin.analysis.detect import thresholds as th
from plugin.analysis.detect.series import Series
from plugin.analysis.detect.stride import StrideModel, fit_stride

# One sample's evidence is capped: a single odd sample (a GPS jump) cannot outweigh its neighbours.
MAX_SAMPLE_NATS = 6.0
# An edge moves to the sharpest change of speed within this many seconds of where the decoding put it.
EDGE_SEARCH_S = 20.0
# Sharpness compares the speed change across EDGE_NEAR_S next to an edge with the change across EDGE_WIDE_S.
EDGE_NEAR_S = 8.0
EDGE_WIDE_S = 40.0
# A piece of a long block, cut at an abrupt change of speed, must last this long to be measured.
MIN_PIECE_S = 15.0
# A block at least this long whose edges are less sharp than this is cut at its abrupt changes (decode).
CUT_MIN_S = 150.0
CUT_BELOW_SHARPNESS = 0.7
# An edge with less change of speed than this around it (log: about 12%) is no edge: it has no sharpness.
MIN_EDGE_CHANGE = 0.12
# Samples that cannot be backward (the ends of the recording) count against it this much each.
EDGE_NATS = -3.0
# Samples of a gait with no forward model (a short walk break in a run) count this much against backward:
# without forward walking to compare with, a walk says nothing but is far more often forward.
UNMODELLED_NATS = -0.5


@dataclass(frozen=True)
class Block:
    """A backward block: samples first+1 .. last (the interval after `first` is the first backward one)."""

    first: int
    last: int
    evidence: float  # mean log-likelihood ratio per EVIDENCE_S
    duration_s: float  # moving time
    distance_m: float
    speed_ratio: float  # against the forward running around it (1.0 when there is none)
    cadence_ratio: float
    grade: float  # mean grade, percent
    sides: int  # 0-2: forward running found before and after
    cadence: float  # median cadence per leg
    # How abrupt its start and end are (1 = the whole change of speed within EDGE_NEAR_S, 0 = none of it;
    # None: no forward running next to it, or no change of speed there to judge).
    start_sharpness: float | None
    end_sharpness: float | None
    ramp: float  # speed change from its first to its last third, relative (a restart's speed lagging)
    after_stop: bool  # a stop, a walk or a recording gap just before it
    piece: bool  # cut from a longer block without sharp edges (decode)

    @property
    def sharpness(self) -> float:
        """Turning round to go backward is abrupt: the start must show it; the end too, unless there is
        nothing to judge there (the running after it is as slow, on a climb say). 0 when the start says
        nothing."""
        if self.start_sharpness is None:
            return 0.0
        if self.end_sharpness is None:
            return self.start_sharpness
        return min(self.start_sharpness, self.end_sharpness)


def _gaits(series: Series) -> tuple[np.ndarray, np.ndarray]:
    running = series.usable & (series.cs >= th.GAIT_SPLIT_CADENCE)
    walking = series.usable & ~running
    return running, walking


def _edges(series: Series) -> np.ndarray:
    return (series.t < th.EDGE_S) | (series.t > series.t[-1] - th.EDGE_S)


def _scores(series: Series, models: list[tuple[np.ndarray, StrideModel | None]]) -> np.ndarray:
    """Each sample's evidence for backward, in nats, weighted by the time it stands for."""
    llr = np.zeros(series.n)
    for members, model in models:
        idx = np.flatnonzero(members)
        if model is None:
            llr[idx] = UNMODELLED_NATS
        elif len(idx):
            llr[idx] = np.clip(model.evidence(series, idx), -MAX_SAMPLE_NATS, MAX_SAMPLE_NATS)
    weight = np.minimum(series.dt, th.EVIDENCE_S) / th.EVIDENCE_S
    scores = llr * weight
    scores[_edges(series)] = EDGE_NATS
    return scores


def viterbi(scores: np.ndarray, switch: float = th.SWITCH_NATS) -> list[tuple[int, int]]:
    """The backward runs of the best forward/backward labelling: the one that maximises the summed scores
    of its backward samples less `switch` for every change of state. Returns (first, last) sample indices,
    inclusive. The labelling starts and ends forward."""
    n = len(scores)
    if n == 0:
        return []
    sign = np.sign(scores)
    # A sample with no evidence (0) goes with the run before it.
    nonzero = np.flatnonzero(sign)
    if len(nonzero) == 0:
        return []
    filled = sign[np.maximum.accumulate(np.where(sign != 0, np.arange(n), 0))]
    filled[: nonzero[0]] = sign[nonzero[0]]
    starts = np.flatnonzero(np.concatenate(([True], filled[1:] != filled[:-1])))
    sums = np.add.reduceat(scores, starts)
    # Forward-backward DP over runs: forward's score is 0, backward's the run's sum.
    best_f, best_b = 0.0, -np.inf
    from_b_to_f: list[bool] = []  # for each run: did the best forward path come from backward?
    from_f_to_b: list[bool] = []
    for total in sums.tolist():
        stay_b, enter_b = best_b, best_f - switch
        stay_f, leave_b = best_f, best_b - switch
        from_f_to_b.append(enter_b > stay_b)
        from_b_to_f.append(leave_b > stay_f)
        best_b = max(stay_b, enter_b) + total
        best_f = max(stay_f, leave_b)
    # Trace back from forward at the end.
    state_b = False
    labels = np.zeros(len(sums), dtype=bool)
    for k in range(len(sums) - 1, -1, -1):
        labels[k] = state_b
        state_b = (not from_f_to_b[k]) if state_b else from_b_to_f[k]
    ends = np.concatenate((starts[1:], [n])) - 1
    runs: list[tuple[int, int]] = []
    for k in np.flatnonzero(labels).tolist():
        first, last = int(starts[k]), int(ends[k])
        if runs and runs[-1][1] == first - 1:
            runs[-1] = (runs[-1][0], last)
        else:
            runs.append((first, last))
    return runs


def _side_medians(
    series: Series, forward: np.ndarray, lo_t: float, hi_t: float
) -> tuple[float, float, float] | None:
    """Median flat-ish speed, cadence and grade of the forward samples between two times."""
    lo, hi = np.searchsorted(series.t, lo_t), np.searchsorted(series.t, hi_t, side="right")
    part = np.flatnonzero(forward[lo:hi]) + lo
    if len(part) == 0 or float(np.sum(series.dt[part])) < th.MIN_SIDE_S:
        return None
    return (
        float(np.median(series.vs[part])),
        float(np.median(series.cs[part])),
        float(np.median(series.g[part])),
    )


def _measure(
    series: Series,
    scores: np.ndarray,
    first_b: int,
    last_b: int,
    forward: np.ndarray,
    model: StrideModel | None,
    piece: bool,
) -> Block:
    first = max(first_b - 1, 0)
    inside = slice(first_b, last_b + 1)
    weight = np.minimum(series.dt[inside], th.EVIDENCE_S) / th.EVIDENCE_S
    evidence = float(np.sum(scores[inside]) / max(float(np.sum(weight)), 1e-9))
    usable = series.usable[inside]
    vs, cs, g = series.vs[inside][usable], series.cs[inside][usable], series.g[inside][usable]
    speed = float(np.mean(vs)) if len(vs) else 0.0
    cadence = float(np.median(cs)) if len(cs) else 0.0
    grade = float(np.mean(g)) if len(g) else 0.0
    t0, t1 = series.t[first], series.t[last_b]
    sides = [
        _side_medians(series, forward, t0 - th.SIDE_S, t0 - 1.0),
        _side_medians(series, forward, t1 + 1.0, t1 + th.SIDE_S),
    ]
    found = [s for s in sides if s is not None]
    third = max(1, len(vs) // 3)
    ramp = float((np.mean(vs[-third:]) - np.mean(vs[:third])) / speed) if speed > 0 else 0.0
    start_sharpness = _sharpness(series, t0, t1, leaving=False) if sides[0] is not None else None
    end_sharpness = _sharpness(series, t0, t1, leaving=True) if sides[1] is not None else None
    speed_ratio = cadence_ratio = 1.0
    if found and speed > 0:
        up = model.grade_up if model else 0.0
        down = model.grade_down if model else 0.0

        def effect(grade_pct: float) -> float:
            return float(np.exp(up * max(grade_pct, 0.0) + down * min(grade_pct, 0.0)))

        median_speed = float(np.median(vs))
        # Conservative: the block must stand out against each side.
        speed_ratio = max(median_speed / effect(grade) / (s[0] / effect(s[2])) for s in found)
        cadence_ratio = min(cadence / s[1] for s in found)
    return Block(
        first=first,
        last=last_b,
        evidence=evidence,
        duration_s=series.moving_time(first, last_b),
        distance_m=max(0.0, float(series.distance[last_b] - series.distance[first])),
        speed_ratio=speed_ratio,
        cadence_ratio=cadence_ratio,
        grade=grade,
        sides=len(found),
        cadence=cadence,
        start_sharpness=start_sharpness,
        end_sharpness=end_sharpness,
        ramp=ramp,
        after_stop=_after_stop(series, first),
        piece=piece,
    )


def _moving_speed_between(series: Series, lo_t: float, hi_t: float) -> float | None:
    """Mean recorded speed of the samples in motion between two times (on any grade); None without any.
    (Speeds are clipped at SPEED_SPIKE_FACTOR of the median, so a GPS spike moves a mean little.)"""
    lo, hi = np.searchsorted(series.t, lo_t), np.searchsorted(series.t, hi_t, side="right")
    count = series.moving_count[hi] - series.moving_count[lo]
    return float((series.moving_speed_sum[hi] - series.moving_speed_sum[lo]) / count) if count > 0 else None


def _sharpness(series: Series, t0: float, t1: float, leaving: bool) -> float | None:
    """How abrupt the change of speed is at one edge of the block from t0 to t1 (its end when `leaving`):
    the change between the EDGE_NEAR_S next to the edge on each side, as a share of the change between
    the longer stretches on each side (the block's own side ends with the block). 0: none of it, 1: all.
    None when the speed hardly changes there at all (the forward running next to it is as slow, on a
    climb say): that edge tells nothing either way."""
    near, wide = series.span(EDGE_NEAR_S, 2.5), series.span(EDGE_WIDE_S, 8)
    if leaving:  # inside is before the edge, outside after it
        at = t1
        inside_near = _moving_speed_between(series, max(at - near, t0), at - 1.0)
        inside_wide = _moving_speed_between(series, max(at - wide, t0), at - 1.0)
        outside_near = _moving_speed_between(series, at + 1.0, at + near)
        outside_wide = _moving_speed_between(series, at + 1.0, at + wide)
    else:
        at = t0
        outside_near = _moving_speed_between(series, at - near, at - 1.0)
        outside_wide = _moving_speed_between(series, at - wide, at - 1.0)
        inside_near = _moving_speed_between(series, at + 1.0, min(at + near, t1))
        inside_wide = _moving_speed_between(series, at + 1.0, min(at + wide, t1))
    speeds = (inside_near, inside_wide, outside_near, outside_wide)
    if any(x is None or x <= 0 for x in speeds):
        return 0.0
    full = float(np.log(outside_wide / inside_wide))  # type: ignore[operator]
    if full < MIN_EDGE_CHANGE:
        return None
    return float(np.clip(np.log(outside_near / inside_near) / full, 0.0, 1.0))  # type: ignore[operator]


def _after_stop(series: Series, first: int) -> bool:
    """A stop, a walk or a recording gap within STOP_BEFORE_S before the block: time not at running."""
    t0 = series.t[first]
    lo = np.searchsorted(series.t, t0 - th.STOP_BEFORE_S)
    part = slice(max(lo, 1), first + 2)
    stopped = ~series.moving[part] | (series.v[part] < th.STOP_SPEED_M_S) | (series.dt[part] > th.MERGE_GAP_S)
    walking = series.c[part] < th.GAIT_SPLIT_CADENCE
    return float(np.sum(series.dt[part][stopped | walking])) >= th.STOP_MIN_S


def _merge_close(runs: list[tuple[int, int]], t: np.ndarray) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for first, last in runs:
        if merged and t[first] - t[merged[-1][1]] <= th.MERGE_GAP_S:
            merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


class _EdgeFinder:
    """Moves a block's edges to the sharpest change of recorded speed within EDGE_SEARCH_S of where the
    decoding put them: the decoding works on smoothed speed and cadence, which blurs an edge by a few
    seconds, and the distance reported is measured between the edges."""

    def __init__(self, series: Series, lo_limit: int, hi_limit: int) -> None:
        self.t = series.t
        self.limits = (max(lo_limit, 1), hi_limit)
        self.window = series.span(EDGE_SEARCH_S, 4)
        self.mass = series.moving_count
        self.total = series.moving_speed_sum

    def _mean(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        count = self.mass[hi] - self.mass[lo]
        return np.divide(
            self.total[hi] - self.total[lo], count, out=np.full(len(lo), np.nan), where=count > 0
        )

    def refine(self, first_b: int, last_b: int) -> tuple[int, int]:
        """(first backward sample, last backward sample), each moved to the sharpest change nearby."""
        t, w, half = self.t, self.window, self.window / 2.0

        def best(edge: int, lo_limit: int, hi_limit: int, entering: bool) -> int:
            lo = max(int(np.searchsorted(t, t[edge] - w)), lo_limit)
            hi = min(int(np.searchsorted(t, t[edge] + w, side="right")), hi_limit + 1)
            if hi <= lo:
                return edge
            at = np.arange(lo, hi)
            if entering:  # backward from sample `at` on: faster before it, slower from it
                outside = self._mean(np.searchsorted(t, t[at] - half), at)
                inside = self._mean(at, np.searchsorted(t, t[at] + half, side="right"))
            else:  # backward up to sample `at`: slower up to it, faster after it
                inside = self._mean(np.searchsorted(t, t[at] - half, side="right"), at + 1)
                outside = self._mean(at + 1, np.searchsorted(t, t[at] + half, side="right"))
            change = np.log(np.maximum(outside, 1e-3)) - np.log(np.maximum(inside, 1e-3))
            if np.all(np.isnan(change)):
                return edge
            return int(at[np.nanargmax(change)])

        lo_limit, hi_limit = self.limits
        new_first = best(first_b, lo_limit, last_b, entering=True)
        new_last = best(last_b, new_first, hi_limit, entering=False)
        return new_first, max(new_last, new_first)


@dataclass
class _Context:
    """One decoding's evidence and models, to measure blocks against."""

    scores: np.ndarray
    running: np.ndarray
    walking: np.ndarray
    run_model: StrideModel | None
    walk_model: StrideModel | None

    def measure(self, series: Series, first: int, last: int, others: np.ndarray, piece: bool) -> Block:
        walking_block = float(np.median(series.cs[first : last + 1])) < th.GAIT_SPLIT_CADENCE
        # The running around a block is its gait's samples outside every other block.
        forward = (self.walking if walking_block else self.running) & ~others
        model = self.walk_model if walking_block else self.run_model
        return _measure(series, self.scores, first, last, forward, model, piece)


def _decode_runs(series: Series) -> tuple[list[tuple[int, int]], _Context]:
    """The backward runs of the activity (first and last backward sample), against its forward stride."""
    running, walking = _gaits(series)
    keep = ~_edges(series)
    run_model = fit_stride(series, running & keep)
    walk_model = fit_stride(series, walking & keep)
    scores = _scores(series, [(running, run_model), (walking, walk_model)])
    inside = np.flatnonzero(keep)
    edges = _EdgeFinder(series, int(inside[0]), int(inside[-1]))
    runs = [edges.refine(first, last) for first, last in _merge_close(viterbi(scores), series.t)]
    return runs, _Context(scores, running, walking, run_model, walk_model)


def _split_at_edges(series: Series, first: int, last: int) -> list[tuple[int, int]]:
    """The block cut where its speed changes abruptly (by MIN_EDGE_CHANGE or more between the half windows
    on each side of a sample), the largest changes first, no two cuts within a window of each other; pieces
    shorter than MIN_PIECE_S are left out."""
    t = series.t
    half = series.span(th.EDGE_WINDOW_S / 2.0, 2)
    at = np.arange(first + 1, last)
    if len(at) == 0:
        return []
    mass, total = series.moving_count, series.moving_speed_sum

    def mean(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        count = mass[hi] - mass[lo]
        return np.divide(total[hi] - total[lo], count, out=np.full(len(lo), np.nan), where=count > 0)

    before = mean(np.searchsorted(t, t[at] - half), at)
    after = mean(at, np.searchsorted(t, t[at] + half, side="right"))
    change = np.abs(np.log(np.maximum(before, 1e-3)) - np.log(np.maximum(after, 1e-3)))
    change[np.isnan(change)] = 0.0
    cuts: list[int] = []
    for k in np.argsort(-change):
        if change[k] < MIN_EDGE_CHANGE:
            break
        p = int(at[k])
        if all(abs(t[p] - t[c]) > 2 * half for c in cuts):
            cuts.append(p)
    bounds = [first, *sorted(cuts), last + 1]
    pieces = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        if b - 1 > a and t[b - 1] - t[a] >= MIN_PIECE_S:
            pieces.append((a, b - 1))
    return pieces if len(pieces) > 1 else []


def decode(series: Series) -> list[Block]:
    """The backward blocks of the activity, each measured (not yet judged: see thresholds.Profile).

    A long block without sharp edges is looked at again, cut where its speed changes abruptly: a slow stretch
    of forward running (a warm-up, a cool-down jog) that runs into a backward block merges with it against
    the whole activity's running, but its own edge into the backward block is as abrupt as any."""
    runs, context = _decode_runs(series)
    in_block = np.zeros(series.n, dtype=bool)
    for first, last in runs:
        in_block[first : last + 1] = True
    found = []
    for first, last in runs:
        others = in_block.copy()
        others[first : last + 1] = False
        block = context.measure(series, first, last, others, piece=False)
        found.append(block)
        if block.duration_s >= CUT_MIN_S and block.sharpness < CUT_BELOW_SHARPNESS:
            for a, b in _split_at_edges(series, first, last):
                rest = in_block.copy()
                rest[first : last + 1] = False  # the rest of the long block is running around the piece
                found.append(context.measure(series, a, b, rest, piece=True))
    return found


def short_steps(series: Series) -> bool:
    """Whether the steps are short for their speed all along: the median step at most SHORT_STEP_SHARE of a
    typical forward step at the median speed (running or walking, by cadence)."""
    moving = series.usable
    if not moving.any():
        return False
    speed = float(np.median(series.vs[moving]))
    cadence = float(np.median(series.cs[moving]))
    step = speed * 30.0 / cadence
    a, b = th.FORWARD_RUN_STEP if cadence >= th.GAIT_SPLIT_CADENCE else th.FORWARD_WALK_STEP
    return step <= th.SHORT_STEP_SHARE * (a + b * speed)


def uniform(series: Series) -> bool:
    """One kind of locomotion from start to finish: minute-by-minute speeds and cadences within
    UNIFORM_SPEED_SPREAD and UNIFORM_CADENCE_SPREAD (90th over 10th percentile)."""
    usable = series.usable
    if not usable.any():
        return True
    minute = (series.t // th.UNIFORM_BLOCK_S).astype(np.int64)[usable]
    weights = series.dt[usable] + 1e-9
    count = np.bincount(minute, weights=weights)
    filled = count > 0.5 * th.UNIFORM_BLOCK_S
    if np.count_nonzero(filled) < 3:
        return True
    speed = np.bincount(minute, weights=series.vs[usable] * weights)[filled] / count[filled]
    cadence = np.bincount(minute, weights=series.cs[usable] * weights)[filled] / count[filled]
    p10_v, p90_v = np.percentile(speed, [10, 90])
    p10_c, p90_c = np.percentile(cadence, [10, 90])
    return bool(p90_v <= th.UNIFORM_SPEED_SPREAD * p10_v and p90_c <= th.UNIFORM_CADENCE_SPREAD * p10_c)
