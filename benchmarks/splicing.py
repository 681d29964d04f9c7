"""Splice synthetic backward efforts into real forward recordings, route-true (for benchmarks and tests).

    route = prepare(streams)                       # None: no distance, speed or cadence to splice with
    specs = plan(route, duration_s=240, count=3, rnd=random.Random(1))
    spliced, truths = splice(route, specs, random.Random(1))   # a Streams (or a Route) goes in

An effort starts at a forward sample and runs along the recorded route at a fraction of the athlete's
forward speed of the minute before, with the forward samples' own speed and cadence variation carried over
(their ratio to a one-minute running median) and the route's own speed trend (hills) by route distance.
Altitude and grade follow the recorded route at the effort's route distance. The recording resumes at the
first forward sample past the route point where the effort ended (the forward samples over that stretch of
route are dropped), so distance stays the recorded route distance and only later times shift. Heart rate
follows the metabolic-rate model of SCIENCE.md: rate ratio r = cost factor x speed factor, target
HR_rest + (HR_forward - HR_rest) x r, reached with a first-order response, then blended back into the
recorded heart rate over a minute. Effort samples keep the base's own sampling interval.

Assumptions: the runner keeps travelling the recorded route in the recorded direction, facing the other way,
so the altitude profile and the sign of the grade apply as recorded; the effort's distance is its speed
integrated (speed and distance agree, with no GPS error beyond what the forward samples carry); cadence is
per leg as in Strava's streams; the athlete's forward level is the median of the minute before the effort.
Pure functions: numpy in, numpy out; all randomness comes from the random.Random passed in.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from plugin.domain import Activity, Streams

# Ranges drawn per effort (SCIENCE.md, "Speeds and stride" and the heart-rate paragraph).
SPEED_FACTOR = (0.5, 0.8)  # backward speed / forward speed of the minute before
CADENCE_FACTOR = (0.95, 1.12)  # backward cadence / forward cadence
COST_FACTOR = (1.2, 1.5)  # backward / forward metabolic cost per metre, between runners
HR_TAU_S = (30.0, 60.0)  # first-order heart-rate response time constant
HR_REST = 60.0
HR_BLEND_S = 60.0  # the recorded heart rate takes over again over this long after an effort
HR_NOISE_BPM = 1.0  # standard deviation of the (correlated) noise added to the modelled heart rate

# "Running" for choosing splice points: a one-minute median cadence that says running at any speed (70 per
# leg = 140 steps/min, SCIENCE.md) at a one-minute median speed that is a jog, not a stop or a shuffle (a slow
# runner's uphill can dip below the 1.6 m/s walk-to-run transition and still be running).
RUN_SPEED_M_S = 1.3
RUN_CADENCE = 70.0
LEVEL_WINDOW_S = 60.0  # running medians that define the "level" a sample varies around
REF_WINDOW_S = 60.0  # the forward reference: the minute before the effort
MARGIN_S = 120.0  # forward running before, after and between efforts
GAP_S = 10.0  # a longer hole in the recording (or 3 sampling intervals, if more) ends a running stretch
# The per-sample variation carried over is the forward sample's ratio to its level, clipped to these bounds
# so that a GPS spike or a stop does not become part of a backward effort.
SPEED_NOISE_CLIP = (0.75, 1.25)
CADENCE_NOISE_CLIP = (0.85, 1.15)
SPEED_TREND_CLIP = (0.7, 1.3)
CADENCE_TREND_CLIP = (0.9, 1.1)
SMART_GAPS_S = (1, 7)  # "smart recording": a sample every 1-7 s, irregular


@dataclass(frozen=True)
class EffortSpec:
    """One backward effort to splice in: start_s is the base's own stream time of the sample it starts at."""

    start_s: float
    duration_s: float
    speed_factor: float
    cadence_factor: float
    cost_factor: float = 1.35
    hr_tau_s: float = 45.0


@dataclass(frozen=True)
class Truth:
    """Where an effort ended up in the spliced streams (seconds from the first sample) and how far it went."""

    start_s: float
    end_s: float
    distance_m: float
    nominal_s: float  # the duration asked for (the spliced one is a whole number of sampling intervals)
    spec: EffortSpec


@dataclass(frozen=True)
class Route:
    """A forward recording prepared for splicing (numpy series, levels and running stretches)."""

    streams: Streams  # every numeric series np.float64, moving a bool array
    dt_s: float  # median sampling interval
    speed_level: np.ndarray
    cadence_level: np.ndarray
    sample_ok: np.ndarray  # a sample that can serve as forward reference or variation (moving, cadence > 0)
    stretch: np.ndarray  # id of the steady running stretch a sample is in, -1 outside
    stretch_first: np.ndarray  # per stretch id: first and last sample index
    stretch_last: np.ndarray
    along: np.ndarray  # sample indices with strictly increasing distance: the route as a function of distance

    @property
    def running_s(self) -> float:
        t = self.streams.time
        return float(sum(t[b] - t[a] for a, b in zip(self.stretch_first, self.stretch_last, strict=True)))

    @property
    def longest_stretch_s(self) -> float:
        t = self.streams.time
        spans = [t[b] - t[a] for a, b in zip(self.stretch_first, self.stretch_last, strict=True)]
        return float(max(spans, default=0.0))


@dataclass(frozen=True)
class _Extent:
    i0: int  # the forward sample the effort starts at
    i1: int  # the first forward sample after it (the recording resumes here)
    t_pass: float  # base time at which the forward runner passed the effort's end point on the route
    dt: float
    distance: np.ndarray  # route distance at each effort sample (the first one after i0 onwards)
    speed: np.ndarray
    cadence: np.ndarray
    hr_forward: float | None  # mean heart rate of the minute before


def _rolling_median(x: np.ndarray, window: int) -> np.ndarray:
    half = window // 2
    padded = np.pad(x, half, mode="edge")
    return np.median(sliding_window_view(padded, 2 * half + 1), axis=1)


def prepare(streams: Streams | None) -> Route | None:
    """The recording ready for splicing, or None when it lacks time, distance, speed or cadence."""
    if streams is None or len(streams.time) < 10:
        return None
    if streams.distance is None or streams.velocity_smooth is None or streams.cadence is None:
        return None
    s = streams  # Streams holds numpy arrays (plugin.domain)
    t, v, c = s.time, s.velocity_smooth, s.cadence
    assert v is not None and c is not None and s.distance is not None
    # A GPS distance that steps back a little is kept as the route's furthest point so far.
    s = replace(s, distance=np.maximum.accumulate(s.distance))
    dt = float(np.median(np.diff(t)))
    window = max(3, round(LEVEL_WINDOW_S / max(dt, 1.0)))
    speed_level = _rolling_median(v, window)
    cadence_level = _rolling_median(c, window)
    moving = s.moving if s.moving is not None else v >= 0.3
    sample_ok = moving & (v > 0.3) & (c > 0)
    steady = (
        (speed_level >= RUN_SPEED_M_S)
        & (cadence_level >= RUN_CADENCE)
        & _rolling_median(moving.astype(np.float64), window).astype(bool)
    )
    gap_limit = max(GAP_S, 3 * dt)
    breaks = np.concatenate(([True], np.diff(t) > gap_limit)) | np.concatenate(([True], ~steady[:-1]))
    starts = np.flatnonzero(steady & breaks)
    stretch = np.full(len(t), -1, dtype=np.int64)
    firsts, lasts = [], []
    for k, a in enumerate(starts):
        b = a
        while b + 1 < len(t) and steady[b + 1] and t[b + 1] - t[b] <= gap_limit:
            b += 1
        stretch[a : b + 1] = k
        firsts.append(a)
        lasts.append(b)
    d = s.distance
    along = np.flatnonzero(np.concatenate(([True], np.diff(d) > 0)))
    return Route(
        streams=s,
        dt_s=dt,
        speed_level=speed_level,
        cadence_level=cadence_level,
        sample_ok=sample_ok,
        stretch=stretch,
        stretch_first=np.asarray(firsts, dtype=np.int64),
        stretch_last=np.asarray(lasts, dtype=np.int64),
        along=along,
    )


def _at(route: Route, values: np.ndarray, x: np.ndarray | float) -> np.ndarray:
    """A series as a function of route distance, linearly interpolated."""
    assert route.streams.distance is not None
    idx = route.along
    return np.interp(x, route.streams.distance[idx], values[idx])


def _extent(route: Route, spec: EffortSpec) -> _Extent:
    """Where an effort goes, its speed, cadence and distance: everything but the heart-rate noise."""
    s = route.streams
    t, d, v, c = s.time, s.distance, s.velocity_smooth, s.cadence
    assert d is not None and v is not None and c is not None
    n_base = len(t)
    i0 = int(np.searchsorted(t, spec.start_s))
    if i0 >= n_base - 1:
        raise ValueError(f"effort at {spec.start_s} s: past the end of the recording")
    t0 = t[i0]
    lo = int(np.searchsorted(t, t0 - REF_WINDOW_S))
    ref = np.flatnonzero(route.sample_ok[lo : i0 + 1]) + lo
    if len(ref) < 3:
        raise ValueError(f"effort at {t0} s: no forward running in the minute before")
    v_ref = float(np.median(v[ref]))
    c_ref = float(np.median(c[ref]))
    local = np.diff(t[lo : min(n_base, i0 + 60)])
    dt = max(1.0, float(np.round(np.median(local)))) if len(local) else max(1.0, round(route.dt_s))
    n = max(1, round(spec.duration_s / dt))
    # Variation: the forward samples from the minute before onwards, in their own order, cycled.
    hi = int(np.searchsorted(t, t0 + n * dt, side="right"))
    src = np.flatnonzero(route.sample_ok[lo:hi]) + lo
    first = int(np.searchsorted(src, i0))
    order = src[(first + np.arange(n)) % len(src)]
    speed_noise = np.clip(v[order] / route.speed_level[order], *SPEED_NOISE_CLIP)
    cadence_noise = np.clip(c[order] / np.maximum(route.cadence_level[order], 1.0), *CADENCE_NOISE_CLIP)
    base_speed = spec.speed_factor * v_ref * speed_noise
    # The route's own trend (slower uphill...) by route distance; two passes settle where each sample is.
    speed = base_speed
    for _ in range(2):
        x_start = d[i0] + np.concatenate(([0.0], np.cumsum(speed * dt)[:-1]))
        trend = np.clip(_at(route, route.speed_level, x_start) / v_ref, *SPEED_TREND_CLIP)
        speed = base_speed * trend
    x_start = d[i0] + np.concatenate(([0.0], np.cumsum(speed * dt)[:-1]))
    cadence_trend = np.clip(_at(route, route.cadence_level, x_start) / c_ref, *CADENCE_TREND_CLIP)
    cadence = spec.cadence_factor * c_ref * cadence_noise * cadence_trend
    distance = d[i0] + np.cumsum(speed * dt)
    end = float(distance[-1])
    i1 = int(np.searchsorted(d, end, side="right"))
    if i1 >= n_base:
        raise ValueError(f"effort at {t0} s: the route ends before the effort does")
    t_pass = float(_at(route, t, end))
    hr_forward = None
    if s.heartrate is not None:
        hr_forward = float(np.mean(s.heartrate[lo : i0 + 1]))
    return _Extent(i0, i1, t_pass, dt, distance, speed, cadence, hr_forward)


def _heart_rate(ext: _Extent, hr: np.ndarray, spec: EffortSpec, rnd: random.Random) -> np.ndarray:
    """A first-order approach to HR_rest + (HR_forward - HR_rest) x cost factor x speed factor, plus AR(1)
    noise."""
    assert ext.hr_forward is not None
    ratio = spec.cost_factor * spec.speed_factor
    target = HR_REST + (ext.hr_forward - HR_REST) * ratio
    start = float(hr[ext.i0])
    k = np.arange(1, len(ext.speed) + 1)
    model = target + (start - target) * np.exp(-k * ext.dt / spec.hr_tau_s)
    noise = np.empty(len(k))
    e = 0.0
    keep = 0.8  # sample-to-sample correlation of the noise
    for j in range(len(k)):
        e = keep * e + rnd.gauss(0.0, HR_NOISE_BPM * math.sqrt(1 - keep * keep))
        noise[j] = e
    return np.round(model + noise)


def splice(
    streams: Streams | Route, specs: Sequence[EffortSpec], rnd: random.Random
) -> tuple[Streams, list[Truth]]:
    """The recording with the efforts spliced in, and where each effort is. Raises ValueError when an effort
    does not fit (the route ends, no running before it, or two efforts overlap)."""
    route = streams if isinstance(streams, Route) else prepare(streams)
    if route is None:
        raise ValueError("the recording has no distance, speed or cadence to splice with")
    s = route.streams
    names = ("distance", "velocity_smooth", "cadence", "heartrate", "grade_smooth", "altitude")
    base = {name: getattr(s, name) for name in names}
    moving = s.moving if s.moving is not None else np.ones(len(s.time), dtype=bool)
    extents = [(spec, _extent(route, spec)) for spec in sorted(specs, key=lambda x: x.start_s)]
    for (_, a), (_, b) in zip(extents, extents[1:], strict=False):
        if b.i0 < a.i1:
            raise ValueError("efforts overlap on the route")
    pieces: dict[str, list[np.ndarray]] = {name: [] for name in (*names, "time", "moving")}
    truths: list[Truth] = []
    shift = 0.0
    next_first = 0  # first base sample of the forward piece being copied
    blend_end = -math.inf  # heart-rate offset to fade out after the previous effort
    blend_offset = 0.0
    for spec, ext in extents:
        _copy_forward(pieces, s, base, moving, next_first, ext.i0 + 1, shift, blend_end, blend_offset)
        n = len(ext.speed)
        t_start = float(s.time[ext.i0]) + shift
        times = t_start + ext.dt * np.arange(1, n + 1)
        pieces["time"].append(times)
        pieces["distance"].append(ext.distance)
        pieces["velocity_smooth"].append(ext.speed)
        pieces["cadence"].append(ext.cadence)
        pieces["moving"].append(np.ones(n, dtype=bool))
        if base["altitude"] is not None:
            pieces["altitude"].append(_at(route, base["altitude"], ext.distance))
        if base["grade_smooth"] is not None:
            pieces["grade_smooth"].append(_at(route, base["grade_smooth"], ext.distance))
        if base["heartrate"] is not None:
            hr = _heart_rate(ext, base["heartrate"], spec, rnd)
            pieces["heartrate"].append(hr)
            blend_offset = float(hr[-1] - base["heartrate"][ext.i1])
        t_end = float(times[-1])
        truths.append(
            Truth(
                start_s=t_start - float(s.time[0]),
                end_s=t_end - float(s.time[0]),
                distance_m=float(ext.distance[-1] - s.distance[ext.i0]),
                nominal_s=spec.duration_s,
                spec=spec,
            )
        )
        # The forward runner passed the end point at t_pass and reached sample i1 later; keep that interval
        # (at least half a sampling interval, so no speed spike appears between the two samples).
        gap = max(float(s.time[ext.i1]) - ext.t_pass, 0.5 * ext.dt)
        shift = t_end + gap - float(s.time[ext.i1])
        blend_end = t_end
        next_first = ext.i1
    _copy_forward(pieces, s, base, moving, next_first, len(s.time), shift, blend_end, blend_offset)
    out = {name: np.concatenate(parts) if parts else None for name, parts in pieces.items()}
    rounding = {"distance": 2, "velocity_smooth": 3, "cadence": 1, "grade_smooth": 1, "altitude": 2}
    for name, digits in rounding.items():
        if out[name] is not None:
            out[name] = np.round(out[name], digits)
    spliced = Streams(
        time=np.round(out["time"], 3),
        distance=out["distance"],
        velocity_smooth=out["velocity_smooth"],
        cadence=out["cadence"],
        heartrate=out["heartrate"] if base["heartrate"] is not None else None,
        grade_smooth=out["grade_smooth"] if base["grade_smooth"] is not None else None,
        altitude=out["altitude"] if base["altitude"] is not None else None,
        moving=out["moving"],
    )
    return spliced, truths


def _copy_forward(
    pieces: dict[str, list[np.ndarray]],
    s: Streams,
    base: dict[str, np.ndarray | None],
    moving: np.ndarray,
    first: int,
    stop: int,
    shift: float,
    blend_end: float,
    blend_offset: float,
) -> None:
    times = s.time[first:stop] + shift
    pieces["time"].append(times)
    pieces["moving"].append(moving[first:stop])
    for name, values in base.items():
        if values is None:
            continue
        part = values[first:stop]
        if name == "heartrate":
            fade = np.clip(1.0 - (times - blend_end) / HR_BLEND_S, 0.0, 1.0)
            part = np.round(part + blend_offset * fade)
        pieces[name].append(part)


def draw_spec(rnd: random.Random, start_s: float, duration_s: float) -> EffortSpec:
    """An effort at start_s with factors drawn from the ranges above (one rnd call per factor, in order)."""
    return EffortSpec(
        start_s=start_s,
        duration_s=duration_s,
        speed_factor=round(rnd.uniform(*SPEED_FACTOR), 3),
        cadence_factor=round(rnd.uniform(*CADENCE_FACTOR), 3),
        cost_factor=round(rnd.uniform(*COST_FACTOR), 3),
        hr_tau_s=round(rnd.uniform(*HR_TAU_S), 1),
    )


def plan(
    route: Route, duration_s: float, count: int, rnd: random.Random, attempts: int = 60
) -> list[EffortSpec]:
    """Up to `count` efforts of this duration inside the recording's steady running, each with MARGIN_S of
    forward running before and after it on the same running stretch and none closer than that to another.
    Returns fewer (maybe none) when the recording cannot hold them."""
    t = route.streams.time
    if len(route.stretch_first) == 0:
        return []
    inside = route.stretch >= 0
    stretch_start_t = np.where(inside, t[route.stretch_first[np.maximum(route.stretch, 0)]], np.inf)
    candidates = np.flatnonzero(inside & (t - stretch_start_t >= MARGIN_S) & route.sample_ok)
    placed: list[tuple[EffortSpec, float, float]] = []  # spec, base start, base time the end was passed
    for _ in range(count):
        spec = None
        for _ in range(attempts):
            if len(candidates) == 0:
                break
            i = int(candidates[rnd.randrange(len(candidates))])
            trial = draw_spec(rnd, float(t[i]), duration_s)
            last = t[route.stretch_last[route.stretch[i]]]
            # The place must hold the effort at the fastest speed factor too, so that where an effort goes
            # does not depend on the factor drawn (long efforts would otherwise be only the slow ones).
            fastest = replace(trial, speed_factor=SPEED_FACTOR[1])
            try:
                ext = _extent(route, trial)
                if _extent(route, fastest).t_pass + MARGIN_S > last:
                    continue
            except ValueError:
                continue
            if ext.t_pass + MARGIN_S > last:
                continue
            if any(
                trial.start_s - MARGIN_S < b_end and a_start < ext.t_pass + MARGIN_S
                for _, a_start, b_end in placed
            ):
                continue
            spec = trial
            placed.append((trial, trial.start_s, ext.t_pass))
            break
        if spec is None:
            break
    return sorted((p[0] for p in placed), key=lambda x: x.start_s)


def smart_recording(streams: Streams, rnd: random.Random, gaps_s: tuple[int, int] = SMART_GAPS_S) -> Streams:
    """The streams as a "smart recording" device would keep them: a sample every 1-7 s (irregular)."""
    s = streams  # Streams holds numpy arrays (plugin.domain)
    t = s.time
    keep = [0]
    while True:
        j = int(np.searchsorted(t, t[keep[-1]] + rnd.randint(*gaps_s)))
        if j >= len(t):
            break
        keep.append(j)
    if keep[-1] != len(t) - 1:
        keep.append(len(t) - 1)
    idx = np.asarray(keep)

    return Streams(
        **{
            item.name: None if getattr(s, item.name) is None else getattr(s, item.name)[idx]
            for item in fields(Streams)
        }
    )


def retitled(activity: Activity, streams: Streams, name: str) -> Activity:
    """The activity as the host would show it for these streams, with this name, no description and no laps
    (the recorded laps no longer line up with a spliced recording)."""
    t = np.asarray(streams.time, dtype=np.float64)
    dts = np.minimum(np.diff(t), 10.0)
    moving = (
        np.asarray(streams.moving, dtype=bool)[1:] if streams.moving is not None else np.ones(len(dts), bool)
    )
    moving_time = float(np.sum(dts[moving]))
    distance = float(streams.distance[-1]) if streams.distance is not None else activity.distance_m

    def mean(values: Sequence[float] | None) -> float | None:
        return None if values is None else round(float(np.mean(np.asarray(values)[1:][moving])), 1)

    return replace(
        activity,
        name=name,
        description="",
        laps=(),
        distance_m=round(distance, 1),
        moving_time_s=round(moving_time),
        elapsed_time_s=round(float(t[-1] - t[0])),
        average_speed=round(distance / moving_time, 3) if moving_time > 0 else None,
        average_cadence=mean(streams.cadence),
        average_heartrate=mean(streams.heartrate),
        trainer=False,
        manual=False,
    )
