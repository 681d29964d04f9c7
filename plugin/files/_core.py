"""What every reader shares: samples in, domain.Activity + domain.Streams out.

A reader turns its format into a list of Sample (absolute times in seconds) plus optional LapSpan and
Summary (the device's own totals); build() derives the Strava-like series and totals from them, so the four
formats agree on units and conventions. No I/O here.
"""

from __future__ import annotations

import hashlib
import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from plugin.domain import Activity, Lap, Streams

# A sample counts as moving at or above this speed (m/s); slow backward walking is still well above it.
MOVING_SPEED_M_S = 0.3
# grade_smooth spans at least this much distance on each side of a sample (so >= 20 m in all).
GRADE_HALF_WINDOW_M = 10.0
GRADE_LIMIT_PCT = 100.0
# Altitude changes smaller than this are noise when summing the elevation gain.
ELEVATION_HYSTERESIS_M = 2.0
# A drop of the device's cumulative distance larger than this is a reset (e.g. chained files), not noise.
DISTANCE_RESET_M = 50.0
# Speeds above this (m/s) are not a person on foot or a bike; treated as missing.
MAX_SPEED_M_S = 100.0
# Time weights of averages are capped so a sample after a long pause does not dominate.
MAX_WEIGHT_S = 10.0


class UnreadableFile(Exception):
    """Raised by the readers with a one-line reason; the package adds the file name."""


@dataclass
class Sample:
    t: float  # absolute, seconds (any epoch; only differences matter)
    distance: float | None = None  # the device's cumulative distance, m
    speed: float | None = None  # m/s
    cadence: float | None = None  # per leg
    heartrate: float | None = None
    altitude: float | None = None
    lat: float | None = None
    lon: float | None = None
    grade: float | None = None  # percent, when the device recorded one
    segment: int = 0  # distance does not carry from one segment to the next (legs of a multisport file)


@dataclass(frozen=True)
class LapSpan:
    start_t: float  # absolute, same clock as Sample.t
    end_t: float | None = None  # None: until the next lap starts, or the last sample
    elapsed_time_s: float | None = None  # the device's own figures, when the file has them
    distance_m: float | None = None
    average_cadence: float | None = None  # per leg


@dataclass(frozen=True)
class Summary:
    """Totals the file states itself; they win over the ones derived from the samples."""

    distance_m: float | None = None
    total_elevation_gain: float | None = None
    calories: float | None = None


def number(value: object) -> float | None:
    """A finite float, or None for anything else (None, text, NaN, tuples from damaged FIT fields)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def text_number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return number(float(text.strip()))
    except ValueError:
        return None


def parse_time(text: str | None) -> float | None:
    """ISO 8601 as written by TCX and GPX files, in seconds since the Unix epoch; naive times are UTC."""
    if not text:
        return None
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return when.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def stable_id(*parts: object) -> int:
    """A positive int derived from what identifies the recording inside the file (same file, same id)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:6], "big") or 1


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6_371_008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(min(1.0, math.sqrt(a)))


def valid_position(lat: float | None, lon: float | None) -> bool:
    return lat is not None and lon is not None and -90 <= lat <= 90 and -180 <= lon <= 180


# ---------------------------------------------------------------------------------------------------------
# samples -> series


def _monotonic(samples: Sequence[Sample]) -> list[Sample]:
    """Samples in recording order with strictly increasing time. Two samples in the same second (FIT time
    has whole seconds) become one with the later values; samples from a clock jumping back are dropped."""
    kept: list[Sample] = []
    for s in samples:
        if not math.isfinite(s.t):
            continue
        if kept and s.t == kept[-1].t:
            earlier = kept[-1]
            kept[-1] = Sample(
                **{
                    name: value if value is not None else getattr(earlier, name)
                    for name, value in vars(s).items()
                }
            )
            continue
        if kept and s.t < kept[-1].t:
            continue
        kept.append(s)
    return kept


def _fill(values: Sequence[float | None]) -> list[float] | None:
    """Forward-fill gaps (leading gaps take the first value); None when the file has no value at all."""
    first = next((v for v in values if v is not None), None)
    if first is None:
        return None
    out: list[float] = []
    last = first
    for v in values:
        if v is not None:
            last = v
        out.append(last)
    return out


def _device_distance(samples: Sequence[Sample]) -> list[float] | None:
    """Cumulative distance from 0, from the device's own distance field; legs and resets are stitched."""
    if not any(s.distance is not None and s.distance >= 0 for s in samples):
        return None
    out: list[float] = []
    total = 0.0  # distance carried over from finished segments
    seg_start: float | None = None  # device distance where the current segment starts
    seg_max = 0.0
    segment = None
    for s in samples:
        d = s.distance if s.distance is not None and s.distance >= 0 else None
        if s.segment != segment:
            if seg_start is not None:
                total += seg_max - seg_start
            segment, seg_start = s.segment, d
            seg_max = d if d is not None else 0.0
        if d is not None:
            if seg_start is None:
                seg_start, seg_max = d, d
            elif d < seg_max - DISTANCE_RESET_M:  # the device started counting again
                total += seg_max - seg_start
                seg_start, seg_max = d, d
            else:
                seg_max = max(seg_max, d)
        out.append(total + (seg_max - seg_start if seg_start is not None else 0.0))
    return out


def _position_distance(samples: Sequence[Sample]) -> list[float] | None:
    if sum(1 for s in samples if valid_position(s.lat, s.lon)) < 2:
        return None
    out: list[float] = []
    total = 0.0
    last: tuple[float, float] | None = None
    for s in samples:
        if valid_position(s.lat, s.lon):
            here = (s.lat, s.lon)
            if last is not None:
                total += haversine_m(last[0], last[1], here[0], here[1])
            last = here
        out.append(total)
    return out


def _speed_distance(samples: Sequence[Sample]) -> list[float] | None:
    speeds = _fill([s.speed for s in samples])
    if speeds is None:
        return None
    out = [0.0]
    for i in range(1, len(samples)):
        dt = min(samples[i].t - samples[i - 1].t, MAX_WEIGHT_S)
        out.append(out[-1] + 0.5 * (speeds[i] + speeds[i - 1]) * dt)
    return out


def derived_velocity(time: Sequence[float], distance: Sequence[float]) -> list[float]:
    """Speed from distance over a few samples around each one (a centred difference), m/s."""
    n = len(time)
    out: list[float] = []
    for i in range(n):
        lo, hi = max(0, i - 2), min(n - 1, i + 2)
        dt = time[hi] - time[lo]
        out.append(max(0.0, (distance[hi] - distance[lo]) / dt) if dt > 0 else 0.0)
    return out


def derived_grade(distance: Sequence[float], altitude: Sequence[float]) -> list[float]:
    """Percent grade over at least GRADE_HALF_WINDOW_M of distance on each side of every sample."""
    n = len(distance)
    out: list[float] = []
    lo = hi = 0
    for i in range(n):
        while lo + 1 <= i and distance[lo + 1] <= distance[i] - GRADE_HALF_WINDOW_M:
            lo += 1
        hi = max(hi, i)
        while hi < n - 1 and distance[hi] < distance[i] + GRADE_HALF_WINDOW_M:
            hi += 1
        run = distance[hi] - distance[lo]
        if run < 1.0:
            out.append(out[-1] if out else 0.0)
            continue
        grade = 100.0 * (altitude[hi] - altitude[lo]) / run
        out.append(round(max(-GRADE_LIMIT_PCT, min(GRADE_LIMIT_PCT, grade)), 1))
    return out


def derived_moving(velocity: Sequence[float] | None, cadence: Sequence[float] | None) -> list[bool] | None:
    if velocity is not None:
        return [v >= MOVING_SPEED_M_S for v in velocity]
    if cadence is not None:
        return [c > 0 for c in cadence]
    return None


def complete_streams(streams: Streams) -> Streams:
    """Fill the series Strava derives (velocity_smooth, grade_smooth, moving) when a file lacks them."""
    velocity, grade, moving = streams.velocity_smooth, streams.grade_smooth, streams.moving
    if velocity is None and streams.distance is not None:
        velocity = tuple(derived_velocity(streams.time, streams.distance))
    if grade is None and streams.distance is not None and streams.altitude is not None:
        grade = tuple(derived_grade(_nondecreasing(streams.distance), streams.altitude))
    if moving is None:
        found = derived_moving(velocity, streams.cadence)
        moving = tuple(found) if found is not None else None
    return replace(streams, velocity_smooth=velocity, grade_smooth=grade, moving=moving)


def _nondecreasing(values: Sequence[float]) -> list[float]:
    out: list[float] = []
    top = -math.inf
    for v in values:
        top = max(top, v)
        out.append(top)
    return out


def streams_from_samples(samples: Sequence[Sample]) -> Streams:
    t0 = samples[0].t
    time = tuple(round(s.t - t0, 3) for s in samples)
    distance = _device_distance(samples) or _position_distance(samples) or _speed_distance(samples)
    speeds = [s.speed if s.speed is not None and 0 <= s.speed <= MAX_SPEED_M_S else None for s in samples]
    velocity: list[float] | None = None
    if any(v is not None for v in speeds):
        fallback = derived_velocity(time, distance) if distance is not None else None
        velocity = [
            v if v is not None else (fallback[i] if fallback is not None else 0.0)
            for i, v in enumerate(speeds)
        ]
    elif distance is not None:
        velocity = derived_velocity(time, distance)
    cadence = None
    if any(s.cadence is not None for s in samples):
        cadence = [s.cadence if s.cadence is not None and s.cadence > 0 else 0.0 for s in samples]
    heartrate = _fill([s.heartrate if s.heartrate is not None and s.heartrate > 0 else None for s in samples])
    altitude = _fill([s.altitude for s in samples])
    grades = [s.grade for s in samples]
    grade: list[float] | None
    if sum(g is not None for g in grades) >= 0.9 * len(samples):
        grade = _fill(grades)
    elif altitude is not None and distance is not None:
        grade = derived_grade(distance, altitude)
    else:
        grade = None
    moving = derived_moving(velocity, cadence)

    def freeze(values: Sequence[float] | None, digits: int) -> tuple[float, ...] | None:
        return None if values is None else tuple(round(v, digits) for v in values)

    return Streams(
        time=time,
        distance=freeze(distance, 2),
        velocity_smooth=freeze(velocity, 3),
        cadence=freeze(cadence, 2),
        heartrate=freeze(heartrate, 1),
        grade_smooth=freeze(grade, 1),
        altitude=freeze(altitude, 2),
        moving=tuple(moving) if moving is not None else None,
    )


# ---------------------------------------------------------------------------------------------------------
# series -> totals


def moving_time(streams: Streams, first: int = 0, last: int | None = None) -> float | None:
    """Seconds of the intervals (first, last] that end on a moving sample at a moving average speed."""
    if streams.moving is None:
        return None
    time, moving, distance = streams.time, streams.moving, streams.distance
    last = len(time) - 1 if last is None else last
    total = 0.0
    for i in range(max(first, 0) + 1, last + 1):
        dt = time[i] - time[i - 1]
        if dt <= 0 or not moving[i]:
            continue
        if distance is not None and (distance[i] - distance[i - 1]) / dt < MOVING_SPEED_M_S:
            continue  # a pause the device did not record through (auto-pause, a leg's transition)
        total += dt
    return total


def weighted_mean(
    time: Sequence[float], values: Sequence[float] | None, first: int = 0, last: int | None = None
) -> float | None:
    """Time-weighted mean of the positive values in [first, last], each sample weighing the interval that
    ends at it; zeros are 'not recorded'."""
    if values is None:
        return None
    last = len(time) - 1 if last is None else last
    total = weight = 0.0
    count = 0
    plain = 0.0
    for i in range(max(first, 0), last + 1):
        v = values[i]
        if v is None or not v > 0:  # also NaN, a value a stream did not have
            continue
        w = min(time[i] - time[i - 1], MAX_WEIGHT_S) if i > 0 else 0.0
        total += v * w
        weight += w
        plain += v
        count += 1
    if count == 0:
        return None
    return round(total / weight if weight > 0 else plain / count, 2)


def elevation_gain(altitude: Sequence[float] | None) -> float | None:
    if altitude is None or len(altitude) == 0:
        return None
    gain = 0.0
    ref = altitude[0]
    for a in altitude[1:]:
        if a < ref:
            ref = a
        elif a > ref + ELEVATION_HYSTERESIS_M:
            gain += a - ref
            ref = a
    return round(gain, 1)


def index_at(time: Sequence[float], t: float) -> int:
    """The last sample at or before t (0 when t is before the first)."""
    return max(0, bisect_right(time, t) - 1)


def build_laps(streams: Streams, spans: Sequence[LapSpan], t0: float) -> tuple[Lap, ...]:
    time = streams.time
    if len(time) == 0:
        return ()
    spans = sorted((s for s in spans if s.start_t - t0 <= time[-1]), key=lambda s: s.start_t)
    laps: list[Lap] = []
    previous_end: tuple[int, float] | None = None
    for position, span in enumerate(spans):
        start = span.start_t - t0
        if span.end_t is not None:
            end = span.end_t - t0
        elif position + 1 < len(spans):
            end = spans[position + 1].start_t - t0
        else:
            end = time[-1]
        first, last = index_at(time, start), index_at(time, end)
        # Laps that follow each other share their boundary sample (Strava's convention).
        if previous_end is not None and abs(start - previous_end[1]) <= 2.0:
            first = previous_end[0]
        last = max(first, last)
        previous_end = (last, end)
        elapsed = span.elapsed_time_s if span.elapsed_time_s is not None else time[last] - time[first]
        distance = span.distance_m
        if distance is None:
            distance = (
                streams.distance[last] - streams.distance[first] if streams.distance is not None else 0.0
            )
        moving = moving_time(streams, first, last)
        if moving is None:
            moving = elapsed
        # From the samples, as for the activity; the file's own lap figure only when it has no cadence series.
        cadence = weighted_mean(time, streams.cadence, first + 1 if last > first else first, last)
        if cadence is None and streams.cadence is None and span.average_cadence:
            cadence = span.average_cadence
        laps.append(
            Lap(
                index=len(laps) + 1,
                name=f"Lap {len(laps) + 1}",
                elapsed_time_s=round(elapsed, 3),
                moving_time_s=round(moving, 3),
                distance_m=round(distance, 2),
                start_index=first,
                end_index=last,
                average_speed=round(distance / moving, 3) if moving > 0 else None,
                average_cadence=round(cadence, 2) if cadence is not None else None,
            )
        )
    return tuple(laps)


def activity_from_streams(
    streams: Streams,
    *,
    activity_id: int,
    name: str,
    sport_type: str,
    trainer: bool = False,
    summary: Summary | None = None,
    laps: tuple[Lap, ...] = (),
    timer_time_s: float | None = None,
) -> Activity:
    summary = summary or Summary()
    time = streams.time
    elapsed = time[-1] - time[0] if len(time) else 0.0
    moving = moving_time(streams)
    if moving is None:
        moving = timer_time_s if timer_time_s is not None else elapsed
    distance = summary.distance_m
    if distance is None:
        distance = streams.distance[-1] - streams.distance[0] if streams.distance is not None else 0.0
    gain = summary.total_elevation_gain
    if gain is None:
        gain = elevation_gain(streams.altitude)
    return Activity(
        id=activity_id,
        athlete_id=None,
        name=name,
        description="",
        sport_type=sport_type,
        distance_m=round(distance, 2),
        moving_time_s=round(moving, 3),
        elapsed_time_s=round(elapsed, 3),
        average_speed=round(distance / moving, 3) if moving > 0 else None,
        average_cadence=weighted_mean(time, streams.cadence),
        average_heartrate=weighted_mean(time, streams.heartrate),
        calories=summary.calories,
        total_elevation_gain=gain,
        trainer=trainer,
        manual=False,
        laps=laps,
    )


def build(
    samples: Sequence[Sample],
    *,
    activity_id: int,
    name: str,
    sport_type: str,
    trainer: bool = False,
    laps: Sequence[LapSpan] = (),
    summary: Summary | None = None,
    timer_time_s: float | None = None,
) -> tuple[Activity, Streams]:
    kept = _monotonic(samples)
    if not kept:
        raise UnreadableFile("no samples with a timestamp")
    streams = streams_from_samples(kept)
    activity = activity_from_streams(
        streams,
        activity_id=activity_id,
        name=name,
        sport_type=sport_type,
        trainer=trainer,
        summary=summary,
        laps=build_laps(streams, laps, kept[0].t),
        timer_time_s=timer_time_s,
    )
    return activity, streams
