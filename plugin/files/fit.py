"""FIT activity files, decoded with fitdecode.

Damage real files carry, and what is done about it:
- a truncated or corrupted tail: CRCs are not checked and decoding stops at the first error, keeping every
  record read before it (a file whose header says "0 bytes of data", as a watch that crashed leaves it, is
  read to its end);
- chained files (several FIT files back to back, as Garmin writes triathlons): fitdecode reads them all;
- multisport: sessions (or, when the file ends before its sessions, sport messages) split the records into
  legs; the foot legs are kept (see _legs.choose);
- developer fields named like standard ones ("Cadence", "Distance") are ignored.
Running cadence in a FIT record is per leg (strides per minute), with an optional fractional part.
"""

from __future__ import annotations

import io
import struct
import warnings
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import fitdecode
from fitdecode.types import DevField

from plugin.domain import Activity, Streams
from plugin.files import _legs
from plugin.files._core import (
    LapSpan,
    Sample,
    Summary,
    UnreadableFile,
    build,
    number,
    stable_id,
)

_SEMICIRCLE_DEG = 180.0 / 2**31
_UNKNOWN_SPORT = ("Run", False)  # a file that never says: most likely a run, given to `analyze`

_RECORD_FIELDS = frozenset(
    {
        "timestamp",
        "distance",
        "speed",
        "enhanced_speed",
        "cadence",
        "fractional_cadence",
        "heart_rate",
        "altitude",
        "enhanced_altitude",
        "position_lat",
        "position_long",
        "grade",
    }
)
_SUMMARY_FIELDS = frozenset(
    {
        "timestamp",
        "start_time",
        "sport",
        "sub_sport",
        "total_elapsed_time",
        "total_timer_time",
        "total_distance",
        "total_ascent",
        "total_calories",
        "avg_cadence",
        "avg_running_cadence",
        "avg_fractional_cadence",
    }
)
_OTHER_FIELDS = frozenset({"sport", "sub_sport", "serial_number", "time_created", "type"})

# FIT sport -> Strava sport_type; sub_sport refinements below.
_SPORTS = {
    "running": "Run",
    "walking": "Walk",
    "hiking": "Hike",
    "mountaineering": "Hike",
    "snowshoeing": "Snowshoe",
    "cycling": "Ride",
    "e_biking": "EBikeRide",
    "swimming": "Swim",
    "cross_country_skiing": "NordicSki",
    "alpine_skiing": "AlpineSki",
    "snowboarding": "Snowboard",
    "rowing": "Rowing",
    "paddling": "StandUpPaddling",
    "stand_up_paddleboarding": "StandUpPaddling",
    "kayaking": "Kayaking",
    "inline_skating": "InlineSkate",
    "ice_skating": "IceSkate",
    "rock_climbing": "RockClimbing",
    "golf": "Golf",
    "surfing": "Surfing",
    "windsurfing": "Windsurf",
    "kitesurfing": "Kitesurf",
    "sailing": "Sail",
    "wheelchair_push_walk": "Wheelchair",
    "wheelchair_push_run": "Wheelchair",
    "hiit": "HighIntensityIntervalTraining",
}
_INDOOR = frozenset({"treadmill", "indoor_running", "indoor_walking", "indoor_cycling", "spin"})
_SUB_SPORTS = {
    ("running", "trail"): "TrailRun",
    ("running", "virtual_activity"): "VirtualRun",
    ("cycling", "virtual_activity"): "VirtualRide",
    ("cycling", "mountain"): "MountainBikeRide",
    ("cycling", "gravel_cycling"): "GravelRide",
    ("e_biking", "e_bike_mountain"): "EMountainBikeRide",
    ("fitness_equipment", "elliptical"): "Elliptical",
    ("fitness_equipment", "stair_climbing"): "StairStepper",
    ("fitness_equipment", "indoor_rowing"): "Rowing",
    ("training", "strength_training"): "WeightTraining",
    ("training", "yoga"): "Yoga",
}


def strava_sport(sport: object, sub_sport: object) -> tuple[str, bool] | None:
    """(sport_type, trainer) of a FIT sport; ("", False) for a transition; None when the file says nothing."""
    if sport is None:
        return None
    if sport == "transition":
        return "", False
    if not isinstance(sport, str):
        return "Workout", False  # a sport number newer than fitdecode's profile
    sub = sub_sport if isinstance(sub_sport, str) else None
    name = _SUB_SPORTS.get((sport, sub or "")) or _SPORTS.get(sport, "Workout")
    trainer = sub in _INDOOR or name in ("VirtualRun", "VirtualRide")
    return name, trainer


@dataclass
class _Summary:
    """A session or lap message."""

    start: float | None
    end: float | None
    sport: object
    sub_sport: object
    elapsed: float | None
    timer: float | None
    distance: float | None
    ascent: float | None
    calories: float | None
    cadence: float | None
    position: int = 0  # where the message sits among the file's messages

    @property
    def kind(self) -> tuple[str, bool] | None:
        return strava_sport(self.sport, self.sub_sport)


@dataclass
class _Decoded:
    records: list[tuple[int, Sample]] = field(default_factory=list)  # (message position, sample)
    sessions: list[_Summary] = field(default_factory=list)
    laps: list[_Summary] = field(default_factory=list)
    marks: list[tuple[int, object, object]] = field(
        default_factory=list
    )  # sport messages: position, sport, sub
    file_id: tuple[Any, Any] | None = None
    file_type: object = None
    headers: int = 0
    error: str | None = None


def _seconds(value: object) -> float | None:
    if isinstance(value, datetime):
        try:
            return value.timestamp()
        except (OverflowError, OSError, ValueError):
            return None
    return number(value)


def _values(frame: fitdecode.FitDataMessage, wanted: frozenset[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for data in frame.fields:
        if isinstance(data.field, DevField):
            continue
        name = data.name
        if name in wanted and values.get(name) is None:
            values[name] = data.value
    return values


def _sample(values: dict[str, Any]) -> Sample | None:
    t = _seconds(values.get("timestamp"))
    if t is None:
        return None
    cadence = number(values.get("cadence"))
    if cadence is not None:
        cadence += number(values.get("fractional_cadence")) or 0.0
    lat, lon = number(values.get("position_lat")), number(values.get("position_long"))
    speed = number(values.get("enhanced_speed"))
    altitude = number(values.get("enhanced_altitude"))
    return Sample(
        t=t,
        distance=number(values.get("distance")),
        speed=speed if speed is not None else number(values.get("speed")),
        cadence=cadence,
        heartrate=number(values.get("heart_rate")),
        altitude=altitude if altitude is not None else number(values.get("altitude")),
        lat=lat * _SEMICIRCLE_DEG if lat is not None else None,
        lon=lon * _SEMICIRCLE_DEG if lon is not None else None,
        grade=number(values.get("grade")),
    )


def _summary(values: dict[str, Any]) -> _Summary:
    start = _seconds(values.get("start_time"))
    stamp = _seconds(values.get("timestamp"))
    elapsed = number(values.get("total_elapsed_time"))
    # The message's timestamp is when the session or lap ended. A start_time that does not fit it (seen in
    # real multisport files) would make sessions overlap: then the start is the end minus the elapsed time.
    if stamp is not None and elapsed is not None and (start is None or start + elapsed > stamp + 2.0):
        start = stamp - elapsed
    end = (
        stamp
        if stamp is not None
        else (start + elapsed if start is not None and elapsed is not None else None)
    )
    cadence = number(values.get("avg_running_cadence"))
    if cadence is None:
        cadence = number(values.get("avg_cadence"))
    if cadence is not None:
        cadence += number(values.get("avg_fractional_cadence")) or 0.0
    return _Summary(
        start=start,
        end=end,
        sport=values.get("sport"),
        sub_sport=values.get("sub_sport"),
        elapsed=elapsed,
        timer=number(values.get("total_timer_time")),
        distance=number(values.get("total_distance")),
        ascent=number(values.get("total_ascent")),
        calories=number(values.get("total_calories")),
        cadence=cadence if cadence else None,
    )


def _repair_header(data: bytes) -> bytes:
    """A watch that crashed leaves "0 bytes of data" in the header: read the whole file instead."""
    if len(data) < 12 or data[8:12] != b".FIT":
        return data
    header_size = data[0]
    (size,) = struct.unpack_from("<I", data, 4)
    if size == 0 and len(data) > header_size:
        return data[:4] + struct.pack("<I", len(data) - header_size) + data[8:]
    return data


def _decode(data: bytes) -> _Decoded:
    decoded = _Decoded()
    position = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            reader = fitdecode.FitReader(
                io.BytesIO(data),
                check_crc=fitdecode.CrcCheck.DISABLED,
                error_handling=fitdecode.ErrorHandling.IGNORE,
            )
            for frame in reader:
                if isinstance(frame, fitdecode.FitHeader):
                    decoded.headers += 1
                    continue
                if not isinstance(frame, fitdecode.FitDataMessage):
                    continue
                position += 1
                name = frame.name
                if name == "record":
                    sample = _sample(_values(frame, _RECORD_FIELDS))
                    if sample is not None:
                        decoded.records.append((position, sample))
                elif name in ("session", "lap"):
                    summary = _summary(_values(frame, _SUMMARY_FIELDS))
                    summary.position = position
                    (decoded.sessions if name == "session" else decoded.laps).append(summary)
                elif name == "sport":
                    values = _values(frame, _OTHER_FIELDS)
                    decoded.marks.append((position, values.get("sport"), values.get("sub_sport")))
                elif name == "file_id" and decoded.file_id is None:
                    values = _values(frame, _OTHER_FIELDS)
                    decoded.file_id = (values.get("serial_number"), values.get("time_created"))
                    decoded.file_type = values.get("type")
        # fitdecode raises its own errors at a truncated or corrupted tail, and plain ValueError, KeyError,
        # struct.error... on garbage; whatever it is, the records before it are kept.
        except Exception as exc:  # noqa: BLE001
            decoded.error = str(exc) or type(exc).__name__
    return decoded


def _span_of(spans: list[_Summary], t: float, position: int) -> int | None:
    """Index of the span (sorted by start) that holds t. A record on the boundary of two goes to the span
    summarised next after it in the file (a leg's session follows its records), else to the one that began
    last. A second of slack after a span's end is allowed only when that span is summarised after the record.
    """
    holding = [i for i, s in enumerate(spans) if s.start is not None and s.start <= t <= (s.end or t)]
    if not holding:
        holding = [
            i
            for i, s in enumerate(spans)
            if s.start is not None and s.start <= t <= (s.end or t) + 1.0 and s.position > position
        ]
    if len(holding) <= 1:
        return holding[0] if holding else None
    later = [i for i in holding if spans[i].position > position]
    return min(later, key=lambda i: spans[i].position) if later else holding[-1]


def _split(decoded: _Decoded) -> list[_legs.Leg]:
    """The records as legs of one sport each."""
    sessions = decoded.sessions
    # (sport, sub_sport) as the file states them, sessions first (the most considered), then sport messages
    stated = [(s.sport, s.sub_sport) for s in sessions]
    stated += [(sport, sub) for _, sport, sub in decoded.marks]
    stated += [(lap.sport, lap.sub_sport) for lap in decoded.laps]
    stated = [pair for pair in stated if pair[0] is not None]
    samples = [sample for _, sample in decoded.records]
    if len({sport for sport, _ in stated}) <= 1 and "transition" not in {sport for sport, _ in stated}:
        # One sport (laps often omit the sub-sport a session states): every record, one leg.
        refined = [pair for pair in stated if isinstance(pair[1], str) and pair[1] != "generic"]
        kind = strava_sport(*(refined or stated)[0]) if stated else _UNKNOWN_SPORT
        kind = kind or _UNKNOWN_SPORT
        leg = _legs.Leg(sport_type=kind[0], trainer=kind[1], samples=samples)
        if sessions:
            leg.duration_s = _legs.total([s.elapsed for s in sessions])
            leg.distance_m = _legs.total([s.distance for s in sessions])
            leg.elevation_gain_m = _legs.total([s.ascent for s in sessions])
            leg.calories = _legs.total([s.calories for s in sessions])
            leg.timer_time_s = _legs.total([s.timer for s in sessions])
        leg.laps = [_lap_span(lap) for lap in decoded.laps if lap.start is not None]
        return [leg]

    # Sessions say which leg a record belongs to (laps, when the file ended before any session).
    with_sessions = bool(sessions)
    spans = sorted(
        (s for s in (sessions or decoded.laps) if s.start is not None and s.kind is not None),
        key=lambda s: s.start or 0.0,
    )
    by_span: dict[int, _legs.Leg] = {}
    by_mark: dict[int, _legs.Leg] = {}
    mark_positions = [p for p, _, _ in decoded.marks]
    for position, sample in decoded.records:
        index = _span_of(spans, sample.t, position)
        m = bisect_right(mark_positions, position) - 1  # the sport message that came last before the record
        # A sport message written after a span's summary starts the next leg: its records are not that span's.
        if index is not None and not (m >= 0 and spans[index].position < mark_positions[m]):
            if index not in by_span:
                span = spans[index]
                kind = span.kind or _UNKNOWN_SPORT
                by_span[index] = leg = _legs.Leg(sport_type=kind[0], trainer=kind[1])
                if with_sessions:
                    leg.duration_s, leg.distance_m, leg.timer_time_s = span.elapsed, span.distance, span.timer
                    leg.elevation_gain_m, leg.calories = span.ascent, span.calories
            by_span[index].samples.append(sample)
            continue
        # Outside every session (the file ended before this leg's session was written): the last sport
        # message says which leg the record belongs to.
        mark_kind = strava_sport(decoded.marks[m][1], decoded.marks[m][2]) if m >= 0 else None
        if mark_kind is not None:
            if m not in by_mark:
                by_mark[m] = _legs.Leg(sport_type=mark_kind[0], trainer=mark_kind[1])
            by_mark[m].samples.append(sample)
    legs = _legs.merge_adjacent(list(by_span.values()) + list(by_mark.values()))
    if not any(leg.sport_type for leg in legs):
        # The sessions' times do not match the records': one leg, of the longest session's sport.
        sports = [s for s in sessions if s.kind and s.kind[0]]
        longest = max(sports, key=lambda s: s.elapsed or 0.0, default=None)
        kind = longest.kind if longest is not None and longest.kind else _UNKNOWN_SPORT
        legs = [_legs.Leg(sport_type=kind[0], trainer=kind[1], samples=samples)]
    for lap in decoded.laps:
        start = lap.start
        if start is None:
            continue
        holding = [
            leg for leg in legs if leg.samples and leg.samples[0].t - 1.0 <= start <= leg.samples[-1].t
        ]
        if holding:  # on a boundary, the leg that begins there
            max(holding, key=lambda leg: leg.samples[0].t).laps.append(_lap_span(lap))
    return legs


def _lap_span(lap: _Summary) -> LapSpan:
    assert lap.start is not None  # noqa: S101 - callers filter
    return LapSpan(
        start_t=lap.start,
        end_t=lap.end,
        elapsed_time_s=lap.elapsed,
        distance_m=lap.distance,
        average_cadence=lap.cadence,
    )


def read(data: bytes, stem: str) -> tuple[Activity, Streams]:
    decoded = _decode(_repair_header(data))
    kind_of_file = decoded.file_type
    if isinstance(kind_of_file, str) and kind_of_file != "activity" and not decoded.sessions:
        raise UnreadableFile(f"FIT file is a {kind_of_file.replace('_', ' ')} file, not a recorded activity")
    if not decoded.records:
        if decoded.headers == 0 or decoded.error:
            raise UnreadableFile(f"not a readable FIT file ({decoded.error or 'no FIT header'})")
        raise UnreadableFile("FIT file holds no records with a timestamp (not an activity file?)")
    choice = _legs.choose(_split(decoded))
    if choice is None:
        raise UnreadableFile("FIT file holds only transitions, no sport")
    legs = choice.legs
    identity = decoded.file_id
    activity_id = stable_id("fit", *identity) if identity and any(v is not None for v in identity) else 0
    return build(
        _legs.merged_samples(legs),
        activity_id=activity_id,
        name=stem,
        sport_type=choice.sport_type,
        trainer=choice.trainer,
        laps=[lap for leg in legs for lap in leg.laps],
        summary=Summary(
            distance_m=_legs.total([leg.distance_m for leg in legs]),
            total_elevation_gain=_legs.total([leg.elevation_gain_m for leg in legs]),
            calories=_legs.total([leg.calories for leg in legs]),
        ),
        timer_time_s=_legs.total([leg.timer_time_s for leg in legs]),
    )
