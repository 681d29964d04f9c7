"""Find backward ("retro") efforts in an activity: from the athlete's words, lap names, and the streams.

Evidence, strongest first:

- a lap the athlete named backward ("Retro 2", "BWD") is an effort of exactly that lap;
- a tag in the title or description ("#retro", "4x200m backwards") says there is backward locomotion: the
  streams say where, and the words' count, distance or duration bound what is taken. The whole activity is
  one effort only when there are no usable streams, or they are uniform with steps short for their speed
  (a backward session from start to finish); streams that show forward running and no backward block give
  no effort (and say why). Without streams, a stated distance or duration is the effort ("4x200m" is 800 m,
  not the whole run);
- with no words at all (mode "auto"), the streams alone, and only a block that is clearly backward.

The stream method (stride.py, segment.py) and its blind spots are in docs/detection.md. Pure code: numpy, no
I/O; a 6-hour 1 Hz recording takes under 20 ms (benchmarks/detection_speed.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from plugin.analysis.detect import thresholds as th
from plugin.analysis.detect.segment import Block, decode, short_steps, uniform
from plugin.analysis.detect.series import Series, count_steps, prepare
from plugin.analysis.detect.words import (
    Amount,
    TagMatch,
    activity_tag,
    expected_efforts,
    find_tag,
    has_backward_lap,
    lap_is_backward,
    stated_amount,
)
from plugin.domain import Activity, Effort, Gait, Lap, Streams

__all__ = [
    "IMPLAUSIBLE",
    "NO_BLOCK_FOUND",
    "Detection",
    "DetectionMode",
    "TagMatch",
    "detect",
    "detect_efforts",
    "expected_efforts",
    "find_tag",
    "lap_is_backward",
    "wants_streams",
]

DetectionMode = Literal["auto", "tagged"]

# What the settings page's recent list says when a tagged activity gets no note.
NO_BLOCK_FOUND = "tagged, but no backward block found: name a lap Retro to mark it"
IMPLAUSIBLE = "not published: faster or longer than backward running plausibly is"

# A virtual run's speed comes from a footpod that turns cadence into speed, and a treadmill ("trainer") has no
# GPS speed: neither can show a backward block, so only the athlete's words count there.
_NO_STREAM_SPORTS = frozenset({"VirtualRun"})


@dataclass(frozen=True)
class Detection:
    efforts: tuple[Effort, ...]
    remark: str | None = None  # why there is no effort, when the athlete may wonder (a tag, no note)


# --- laps and the stream budget -----------------------------------------------------------------------------

# A lap "shows the pattern" when it is clearly slower than the athlete's other laps at a step frequency that
# did not fall: its step (speed / cadence) is more than 20% shorter (SCIENCE.md: backward steps are shorter at
# a higher step frequency).
LAP_SPEED_RATIO = 0.8
LAP_CADENCE_RATIO = 0.95
LAP_STEP_RATIO = 0.8
LAP_MIN_S = 30.0  # shorter laps (a button pressed at a crossing) say nothing


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


def _pattern_laps(averages: list[tuple[float, float] | None]) -> list[bool]:
    """For each lap's (average speed, average cadence), whether it shows the backward pattern against the
    median of the other laps."""
    out = []
    for k, mine in enumerate(averages):
        others = [a for j, a in enumerate(averages) if j != k and a is not None]
        if mine is None or not others:
            out.append(False)
            continue
        v_ratio = mine[0] / _median([a[0] for a in others])
        c_ratio = mine[1] / _median([a[1] for a in others])
        out.append(
            v_ratio < LAP_SPEED_RATIO and c_ratio >= LAP_CADENCE_RATIO and v_ratio / c_ratio < LAP_STEP_RATIO
        )
    return out


def _lap_averages(activity: Activity) -> list[tuple[float, float] | None]:
    out: list[tuple[float, float] | None] = []
    for lap in sorted(activity.laps, key=lambda lap: lap.index):
        duration = lap.moving_time_s or lap.elapsed_time_s
        speed = lap.average_speed
        if speed is None and duration > 0 and lap.distance_m > 0:
            speed = lap.distance_m / duration
        ok = duration >= LAP_MIN_S and speed and speed > 0 and lap.average_cadence and lap.average_cadence > 0
        out.append((float(speed), float(lap.average_cadence)) if ok else None)  # type: ignore[arg-type]
    return out


def _streams_allowed(activity: Activity) -> bool:
    return not activity.trainer and not activity.manual and activity.sport_type not in _NO_STREAM_SPORTS


def wants_streams(activity: Activity, mode: DetectionMode = "auto") -> bool:
    """Whether fetching streams is worth a host call (Strava's default budget is 100 calls per 15 minutes for
    the whole app, so an untagged activity must earn it).

    Yes for a recorded (not manual, not trainer) foot activity that is tagged (title, description or a lap
    name), or, in mode "auto", whose laps show a candidate: a lap clearly slower than the others at a cadence
    that did not fall. An untagged activity with one lap or no lap data costs no call: a short effort inside
    1-km auto-laps is averaged away, so it is found only when tagged or lap-marked (docs/detection.md).
    """
    if not activity.is_foot_sport or not _streams_allowed(activity):
        return False
    if activity_tag(activity) is not None or has_backward_lap(activity):
        return True
    return mode == "auto" and any(_pattern_laps(_lap_averages(activity)))


# Words that speak of this share of the activity or more speak of all of it.
WHOLE_SHARE = 0.9


# --- gait and steps -----------------------------------------------------------------------------------------


def gait_by_pace(
    distance_m: float, duration_s: float, steps: int | None, cadence: float | None, words: Gait | None = None
) -> Gait:
    """Backward locomotion above ~1.6 m/s, or above 70 per leg per minute, is running (SCIENCE.md), whatever
    the words say; below both, the athlete's words ("walk", "run") decide, and walking without them."""
    speed = distance_m / duration_s if duration_s > 0 else 0.0
    if cadence is None and steps is not None and duration_s > 0:
        cadence = steps / 2.0 / (duration_s / 60.0)
    if speed >= th.RUN_SPEED_M_S or (cadence is not None and cadence >= th.RUN_CADENCE_PER_LEG):
        return "run"
    return words or "walk"


def _steps_from_average(average_cadence: float | None, duration_s: float) -> int | None:
    if average_cadence is None or average_cadence <= 0:
        return None
    return round(2.0 * average_cadence * duration_s / 60.0)


def _lap_effort(
    lap: Lap, start_s: float, streams: Streams | None, lap_tag: TagMatch, tag: TagMatch | None
) -> Effort:
    duration = lap.moving_time_s or lap.elapsed_time_s
    steps = None
    if streams is not None and lap.start_index is not None and lap.end_index is not None:
        steps = count_steps(streams.time, streams.cadence, lap.start_index, lap.end_index)
    if steps is None:
        steps = _steps_from_average(lap.average_cadence, duration)
    gait = lap_tag.gait or (tag.gait if tag else None)
    return Effort(
        start_s=start_s,
        end_s=start_s + lap.elapsed_time_s,
        distance_m=lap.distance_m,
        duration_s=duration,
        steps=steps,
        confidence=th.LAP_CONFIDENCE_TAGGED if tag else th.LAP_CONFIDENCE,
        source="lap",
        gait=gait_by_pace(lap.distance_m, duration, steps, lap.average_cadence, gait),
    )


def _whole_effort(activity: Activity, streams: Streams | None, tag: TagMatch) -> Effort:
    duration = activity.moving_time_s or activity.elapsed_time_s
    steps = None
    if streams is not None and not streams.is_empty:
        steps = count_steps(streams.time, streams.cadence, 0, len(streams.time) - 1)
    if steps is None:
        steps = _steps_from_average(activity.average_cadence, duration)
    manual = activity.manual or activity.trainer
    return Effort(
        start_s=0.0,
        end_s=activity.elapsed_time_s or activity.moving_time_s,
        distance_m=activity.distance_m,
        duration_s=duration,
        steps=steps,
        confidence=th.WHOLE_CONFIDENCE_MANUAL if manual else th.WHOLE_CONFIDENCE_MEASURED,
        source="whole",
        gait=gait_by_pace(activity.distance_m, duration, steps, activity.average_cadence, tag.gait),
    )


def _words_effort(activity: Activity, amount: Amount, tag: TagMatch) -> Effort | None:
    """The effort the athlete's words describe, with no streams to place it: the stated distance or
    duration, the other from the activity's own pace. None when the words speak of (nearly) the whole
    activity, or of a distance an activity without one cannot place: then the whole activity is the
    effort."""
    duration = activity.moving_time_s or activity.elapsed_time_s
    if duration <= 0:
        return None
    speed = activity.distance_m / duration if activity.distance_m > 0 else None
    if amount.total_s is not None:
        seconds = min(amount.total_s, duration)
        distance = seconds * speed if speed is not None else 0.0
    elif speed is not None:
        assert amount.total_m is not None
        distance = min(amount.total_m, activity.distance_m)
        seconds = distance / speed
    else:
        return None
    if seconds >= WHOLE_SHARE * duration:
        return None
    steps = _steps_from_average(activity.average_cadence, seconds)
    return Effort(
        start_s=0.0,
        end_s=seconds,
        distance_m=round(distance, 1),
        duration_s=seconds,
        steps=steps,
        confidence=th.WORDS_CONFIDENCE,
        source="tag",
        gait=gait_by_pace(distance, seconds, steps, activity.average_cadence, tag.gait),
    )


# --- stream efforts -----------------------------------------------------------------------------------------


def _passes(block: Block, profile: th.Profile, series: Series) -> bool:
    if block.duration_s < profile.min_duration_s or block.distance_m < profile.min_distance_m:
        return False
    if block.evidence < profile.min_evidence or abs(block.grade) > profile.max_abs_grade:
        return False
    if block.speed_ratio > profile.max_speed_ratio or block.cadence_ratio < profile.min_cadence_ratio:
        return False
    if profile.both_sides and block.sides < 2:
        return False
    if block.sharpness < profile.min_sharpness:
        return False
    if block.after_stop and block.ramp > th.MAX_RESTART_RAMP:
        return False
    return not (profile.needs_grade and not series.has_grade)


def _confidence(block: Block, tagged: bool) -> float:
    """Hand-set weights (no labelled backward recordings exist to fit them): how strong the evidence is, how
    long the block lasts, and whether forward running frames it."""
    strength = min(max(block.evidence, 0.0), 4.0) / 4.0
    length = min(max(block.duration_s - 15.0, 0.0) / 75.0, 1.0)
    conf = 0.45 + 0.3 * strength + 0.1 * length + 0.05 * block.sides + (0.1 if tagged else 0.0)
    return round(min(max(conf, 0.05), th.STREAM_CONFIDENCE_MAX), 2)


def _stream_effort(series: Series, block: Block, source: str, gait: Gait | None, tagged: bool) -> Effort:
    steps = series.steps(block.first, block.last)
    return Effort(
        start_s=float(series.t[block.first]),
        end_s=float(series.t[block.last]),
        distance_m=round(block.distance_m, 1),
        duration_s=block.duration_s,
        steps=steps,
        confidence=_confidence(block, tagged),
        source=source,  # type: ignore[arg-type]
        gait=gait_by_pace(block.distance_m, block.duration_s, steps, block.cadence, gait),
    )


def _published_blocks(series: Series, profile: th.Profile) -> list[Block]:
    """The decoded blocks that pass the profile; a piece cut from a longer block that passes too is left to
    it."""
    passing = [b for b in decode(series) if _passes(b, profile, series)]
    outer = [b for b in passing if not b.piece]
    inner = [
        b for b in passing if b.piece and not any(o.first <= b.last and b.first <= o.last for o in outer)
    ]
    return sorted(outer + inner, key=lambda b: b.first)


def _bounded_by_words(blocks: list[Block], count: int | None, amount: Amount | None) -> list[Block]:
    """The blocks the words speak of: the strongest `count` of them; and, when the words give a distance or
    duration, no more blocks than it takes to cover it (a quarter over, for the edges)."""
    ranked = sorted(blocks, key=lambda b: -b.evidence)
    if count is not None:
        ranked = ranked[:count]
    if amount is not None and count is None:
        total = amount.total_m if amount.total_m is not None else amount.total_s
        measure = (lambda b: b.distance_m) if amount.total_m is not None else (lambda b: b.duration_s)
        assert total is not None
        kept: list[Block] = []
        covered = 0.0
        for block in ranked:
            if kept and covered + measure(block) > 1.25 * total:
                continue
            kept.append(block)
            covered += measure(block)
        ranked = kept
    return sorted(ranked, key=lambda b: b.first)


def _plausible(effort: Effort) -> bool:
    speed = effort.distance_m / effort.duration_s if effort.duration_s > 0 else 0.0
    if speed > th.MAX_BACKWARD_SPEED_M_S:
        return False
    return not (effort.duration_s > th.LONG_FAST_S and speed > th.LONG_FAST_SPEED_M_S)


# --- the entry ----------------------------------------------------------------------------------------------


def _lap_efforts(activity: Activity, streams: Streams | None, tag: TagMatch | None) -> list[Effort]:
    efforts = []
    start_s = 0.0
    for lap in sorted(activity.laps, key=lambda lap: lap.index):
        lap_tag = lap_is_backward(lap.name)
        if lap_tag is not None:
            efforts.append(_lap_effort(lap, start_s, streams, lap_tag, tag))
        start_s += lap.elapsed_time_s
    return efforts


def _tagged_efforts(activity: Activity, streams: Streams | None, tag: TagMatch) -> Detection:
    """The blocks the tag speaks of, bounded by the words; the words alone without usable streams; the whole
    activity only without usable streams or with uniform ones of short steps."""
    amount = stated_amount(activity)
    series = prepare(streams) if _streams_allowed(activity) else None
    if series is None:
        words = _words_effort(activity, amount, tag) if amount is not None else None
        return Detection((words if words is not None else _whole_effort(activity, streams, tag),))
    blocks = _published_blocks(series, th.TAGGED)
    blocks = _bounded_by_words(blocks, expected_efforts(activity), amount)
    if blocks:
        return Detection(tuple(_stream_effort(series, b, "tag", tag.gait, tagged=True) for b in blocks))
    if uniform(series) and short_steps(series):
        return Detection((_whole_effort(activity, streams, tag),))
    return Detection((), NO_BLOCK_FOUND)


def _untagged_efforts(activity: Activity, streams: Streams | None) -> Detection:
    series = prepare(streams) if _streams_allowed(activity) else None
    if series is None:
        return Detection(())
    blocks = _published_blocks(series, th.AUTO)
    return Detection(tuple(_stream_effort(series, b, "stream", None, tagged=False) for b in blocks))


def detect(activity: Activity, streams: Streams | None, mode: DetectionMode = "auto") -> Detection:
    """Backward efforts, from the strongest evidence available, and a remark when a tag found nothing.

    The caller strips any Backstride note from the description first, so our own words never count."""
    if not activity.is_foot_sport:
        return Detection(())
    tag = activity_tag(activity)
    laps = _lap_efforts(activity, streams, tag)
    if laps:
        found = Detection(tuple(laps))
    elif tag is not None:
        found = _tagged_efforts(activity, streams, tag)
    elif mode == "auto":
        found = _untagged_efforts(activity, streams)
    else:
        found = Detection(())
    measured = [e for e in found.efforts if e.duration_s > 0]  # without time it cannot be priced or counted
    published = [e for e in measured if _plausible(e)]
    if measured and not published:
        return Detection((), IMPLAUSIBLE)
    return Detection(tuple(published), found.remark)


def detect_efforts(activity: Activity, streams: Streams | None, mode: DetectionMode = "auto") -> list[Effort]:
    """The efforts of detect(), as a list."""
    return list(detect(activity, streams, mode).efforts)
