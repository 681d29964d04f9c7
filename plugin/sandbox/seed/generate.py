"""Build the sandbox's seed data (seed.json) from real, MIT-licensed forward recordings.

    python -m plugin.sandbox.seed.generate [--realruns DIR] [--output FILE]

The recordings live in ../shared/realruns (see its README.md and MANIFEST.tsv); every file used is listed with
its attribution in seed.json. None of them contains backward locomotion, so the backward parts below are
synthetic, derived from the athlete's own forward samples with the rules of SCIENCE.md ("Speeds and stride").
The output is deterministic: no randomness, no clock, fixed rounding, fixed key order.

Units follow Strava: distance m, speed m/s, time s, altitude m, grade percent, cadence per leg per minute
(steps per minute = 2 x cadence), heart rate bpm.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import fitdecode

DEFAULT_REALRUNS = Path(__file__).resolve().parents[3].parent / "shared" / "realruns"
DEFAULT_OUTPUT = Path(__file__).resolve().with_name("seed.json")
GENERATED_BY = "python -m plugin.sandbox.seed.generate"

ATHLETE_WEIGHT_KG = 61.0
ATHLETE = {
    "id": 1001,
    "username": "demo_runner",
    "firstname": "Demo",
    "lastname": "Runner",
    "sex": "F",
    "city": "Sandbox",
    "country": "Nowhere",
    "weight": ATHLETE_WEIGHT_KG,
    "measurement_preference": "meters",
    "premium": False,
    "created_at": "2024-01-01T08:00:00Z",
    "updated_at": "2026-11-01T08:00:00Z",
}

# Activities start on consecutive days at 07:30 UTC, whatever the recording's own date was.
FIRST_START = dt.datetime(2026, 11, 10, 7, 30, tzinfo=dt.UTC)
TIMEZONE = "(GMT+00:00) Europe/London"  # GMT in November, so local time = UTC

# Calories are what a host would show assuming forward locomotion (not what the backward parts cost):
# running about 1 kcal per kg per km (gross), so 61 kg x km; walking about 0.8 kcal/kg/km (ACSM walking
# equation, gross, at 1-1.5 m/s); cycling by time, 8 MET (Compendium of Physical Activities) x kg x hours.
KCAL_PER_KG_KM_RUN = 1.0
KCAL_PER_KG_KM_WALK = 0.8
RIDE_MET = 8.0

MOVING_SPEED_M_S = 0.3  # below this a sample counts as stopped ("moving" stream false)
PAUSE_GAP_S = 10  # a recording gap longer than this is a pause, not moving time
ELEVATION_THRESHOLD_M = 1.0  # climbs smaller than this are altitude noise, not elevation gain
GRADE_HALF_WINDOW = 5  # samples either side for grade_smooth
GRADE_MIN_RUN_M = 10.0  # grade needs at least this much horizontal distance in the window

# --- retro intervals (SCIENCE.md, "Speeds and stride") ------------------------------------------------------
# Self-chosen backward speed is well below forward: 70% (Sterzing 2016 protocol) to about 60% (KU-HAR);
# use 65% of the athlete's forward speed over the minute before each interval.
RETRO_SPEED_RATIO = 0.65
# Backward running has a higher step frequency than forward: cadence = forward cadence x 1.08.
RETRO_CADENCE_RATIO = 1.08
# Step length = speed / step frequency, so the backward step is 0.65 / 1.08 = 0.60 of the forward step taken
# at the FORWARD speed. SCIENCE.md's working assumption (60-80%) is at MATCHED speed, and that ratio is higher
# here: this athlete's forward cadence falls only a little with speed (least squares over the recording: about
# 80-81 per leg at the 2.2-2.5 m/s of the intervals, against 83-84 at 3.4-3.9 m/s), so a forward step at the
# backward speed would be about 0.67 of the fast one, and the matched-speed backward/forward step ratio is
# about 80.5 / (1.08 x 83.5) = 0.89 (the generator prints the value it measures for each interval). That is
# above the 60-80% assumption: these intervals stand out by a speed drop with a step length that falls more
# than speed (0.60 against 0.65), by heart rate that does not fall, and by their lap names; they do not
# exercise a matched-speed stride model.
RETRO_INTERVAL_M = 200.0
RETRO_STARTS_S = (480, 840, 1200)  # about 8, 14 and 20 minutes into the recording
RETRO_REF_WINDOW_S = 60  # "forward speed just before" = mean over this window
RETRO_HR_RISE_BPM_S = 0.05  # heart rate does not fall with speed: pre-interval level plus a slow rise
HR_FADE_S = 60.0  # after an interval, its extra heart rate fades out over this time

# --- retro walk (Laufer 2005: backward walking lowers speed and stride at about unchanged cadence) ----------
# Self-chosen backward speed ~60% of forward: time x 1/0.6, distance and cadence unchanged.
RETRO_WALK_SPEED_RATIO = 0.6


@dataclass(frozen=True)
class Sample:
    t: float  # seconds from the start
    d: float | None  # metres from the start
    v: float | None
    cad: float | None
    hr: float | None
    alt: float | None


@dataclass(frozen=True)
class Recording:
    samples: list[Sample]
    laps: list[dict[str, Any]]  # lap messages (start_time, total_elapsed_time, ...) as plain dicts
    sessions: list[dict[str, Any]]
    start: dt.datetime | None


# --- reading ------------------------------------------------------------------------------------------------


def _first(msg: fitdecode.FitDataMessage, *names: str) -> Any:
    for name in names:
        value = msg.get_value(name, fallback=None)
        if value is not None:
            return value
    return None


def read_fit(path: Path) -> Recording:
    """Record, lap and session messages of a FIT file (timestamps made relative later)."""
    raw: list[tuple[dt.datetime, Sample]] = []
    laps: list[dict[str, Any]] = []
    sessions: list[dict[str, Any]] = []
    with fitdecode.FitReader(str(path)) as reader:
        for frame in reader:
            if not isinstance(frame, fitdecode.FitDataMessage):
                continue
            if frame.name == "record":
                ts = frame.get_value("timestamp", fallback=None)
                if ts is None:
                    continue
                raw.append(
                    (
                        ts,
                        Sample(
                            t=0.0,
                            d=_first(frame, "distance"),
                            v=_first(frame, "enhanced_speed", "speed"),
                            cad=_first(frame, "cadence"),
                            hr=_first(frame, "heart_rate"),
                            alt=_first(frame, "enhanced_altitude", "altitude"),
                        ),
                    )
                )
            elif frame.name in ("lap", "session"):
                fields = {f.name: f.value for f in frame.fields if f.value is not None}
                (laps if frame.name == "lap" else sessions).append(fields)
    start = raw[0][0] if raw else None
    samples = [replace(s, t=(ts - start).total_seconds()) for ts, s in raw] if start else []
    return Recording(samples=samples, laps=laps, sessions=sessions, start=start)


def window(rec: Recording, start: dt.datetime, end: dt.datetime) -> list[Sample]:
    """Samples recorded between two absolute times (inclusive)."""
    assert rec.start is not None
    lo, hi = (start - rec.start).total_seconds(), (end - rec.start).total_seconds()
    return [s for s in rec.samples if lo <= s.t <= hi]


def rebase(samples: Sequence[Sample], skip: int = 0, max_s: float | None = None) -> list[Sample]:
    """Drop `skip` leading samples, restart time and distance at zero, keep the first `max_s` seconds."""
    kept = list(samples[skip:])
    t0 = kept[0].t
    d0 = next((s.d for s in kept if s.d is not None), 0.0)
    out = []
    for s in kept:
        if max_s is not None and s.t - t0 > max_s:
            break
        out.append(replace(s, t=s.t - t0, d=None if s.d is None else max(s.d - d0, 0.0)))
    return out


def thin(samples: Sequence[Sample], every_s: float) -> list[Sample]:
    """One sample per `every_s` seconds at most (the first, then each one at least `every_s` after the last
    kept); the last sample is always kept so totals do not change."""
    out = [samples[0]]
    for s in samples[1:-1]:
        if s.t - out[-1].t >= every_s:
            out.append(s)
    if len(samples) > 1:
        out.append(samples[-1])
    return out


# --- streams and totals -------------------------------------------------------------------------------------


def _filled(values: Sequence[float | None], lead: float | None = None) -> list[float] | None:
    """A stream with gaps filled by the previous value, leading gaps by `lead` (default: the first recorded
    value); None when the device never recorded it."""
    if all(v is None for v in values):
        return None
    out: list[float] = []
    last = lead if lead is not None else next(v for v in values if v is not None)
    for v in values:
        last = v if v is not None else last
        out.append(last)
    return out


def grade_smooth(distance: Sequence[float], altitude: Sequence[float]) -> list[float]:
    """Percent grade over a window of samples either side; 0 where the window covers too little ground."""
    n = len(distance)
    out = []
    for i in range(n):
        lo, hi = max(0, i - GRADE_HALF_WINDOW), min(n - 1, i + GRADE_HALF_WINDOW)
        run = distance[hi] - distance[lo]
        grade = 100.0 * (altitude[hi] - altitude[lo]) / run if run >= GRADE_MIN_RUN_M else 0.0
        out.append(round(max(-45.0, min(45.0, grade)), 1))
    return out


def elevation_gain(altitude: Sequence[float]) -> float:
    """Sum of climbs, ignoring wiggles below ELEVATION_THRESHOLD_M (barometric/GPS noise)."""
    gain = 0.0
    ref = altitude[0] if altitude else 0.0
    for a in altitude[1:]:
        if a - ref >= ELEVATION_THRESHOLD_M:
            gain += a - ref
            ref = a
        elif a < ref:
            ref = a
    return gain


def make_streams(samples: Sequence[Sample]) -> dict[str, list]:
    time = [round(s.t) for s in samples]
    distance = _filled([s.d for s in samples], lead=0.0)
    assert distance is not None, "a recording without distance cannot be seeded"
    velocity = _filled([s.v for s in samples], lead=0.0)
    if velocity is None:  # derive from distance
        velocity = [0.0] + [
            (distance[i] - distance[i - 1]) / max(time[i] - time[i - 1], 1) for i in range(1, len(samples))
        ]
    cadence = _filled([s.cad for s in samples], lead=0.0)
    heartrate = _filled([s.hr for s in samples])
    altitude = _filled([s.alt for s in samples])
    streams: dict[str, list] = {"time": time, "distance": [round(d, 1) for d in distance]}
    streams["velocity_smooth"] = [round(v, 2) for v in velocity]
    if cadence is not None:
        streams["cadence"] = [round(c) for c in cadence]
    if heartrate is not None:
        streams["heartrate"] = [round(h) for h in heartrate]
    if altitude is not None:
        streams["altitude"] = [round(a, 1) for a in altitude]
        streams["grade_smooth"] = grade_smooth(streams["distance"], streams["altitude"])
    streams["moving"] = [v >= MOVING_SPEED_M_S for v in streams["velocity_smooth"]]
    return streams


def _moving_dt(streams: dict[str, list], i: int) -> float:
    """Moving seconds of the interval that ends at sample i (samples cover the interval before them). A long
    recording gap counts as moving only if the distance covered across it says so (smart recording)."""
    dt_s = streams["time"][i] - streams["time"][i - 1]
    if not streams["moving"][i]:
        return 0.0
    if dt_s > PAUSE_GAP_S and streams["distance"][i] - streams["distance"][i - 1] < MOVING_SPEED_M_S * dt_s:
        return 0.0
    return dt_s


def summarize(streams: dict[str, list], first: int, last: int) -> dict[str, Any]:
    """Totals and averages of samples first..last, Strava-style: average_speed = distance / moving_time;
    cadence and heart rate averaged over moving time (cadence zeros excluded)."""
    time, distance = streams["time"], streams["distance"]
    idx = range(first + 1, last + 1)
    moving_time = sum(_moving_dt(streams, i) for i in idx)
    dist = distance[last] - distance[first]
    out: dict[str, Any] = {
        "distance": round(dist, 1),
        "moving_time": int(moving_time),
        "elapsed_time": int(time[last] - time[first]),
        "average_speed": round(dist / moving_time, 3) if moving_time else 0.0,
        "max_speed": max(streams["velocity_smooth"][first : last + 1]),
    }

    def weighted(key: str) -> float | None:
        if key not in streams:
            return None
        pairs = [(streams[key][i], _moving_dt(streams, i)) for i in idx if streams[key][i] > 0]
        weight = sum(w for _, w in pairs)
        return round(sum(v * w for v, w in pairs) / weight, 1) if weight else None

    cadence, heartrate = weighted("cadence"), weighted("heartrate")
    if cadence is not None:
        out["average_cadence"] = cadence
    if heartrate is not None:
        out["average_heartrate"] = heartrate
        out["max_heartrate"] = float(max(streams["heartrate"][first : last + 1]))
    gain = elevation_gain(streams["altitude"][first : last + 1]) if "altitude" in streams else 0.0
    out["total_elevation_gain"] = round(gain, 1)
    return out


def _iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_laps(streams: dict[str, list], bounds: Sequence[tuple[str, int, int]], start: dt.datetime) -> list:
    """Laps from (name, start_index, end_index); a lap's end_index is the next one's start_index."""
    laps = []
    for n, (name, first, last) in enumerate(bounds, start=1):
        s = summarize(streams, first, last)
        lap: dict[str, Any] = {
            "lap_index": n,
            "name": name,
            "elapsed_time": s["elapsed_time"],
            "moving_time": s["moving_time"],
            "distance": s["distance"],
            "start_index": first,
            "end_index": last,
            "average_speed": s["average_speed"],
            "max_speed": s["max_speed"],
        }
        if "average_cadence" in s:
            lap["average_cadence"] = s["average_cadence"]
        if "average_heartrate" in s:
            lap["average_heartrate"] = s["average_heartrate"]
        lap_start = start + dt.timedelta(seconds=streams["time"][first])
        lap.update(
            {
                "total_elevation_gain": s["total_elevation_gain"],
                "split": n,
                "start_date": _iso(lap_start),
                "start_date_local": _iso(lap_start),
                "pace_zone": None,
                "resource_state": 2,
            }
        )
        laps.append(lap)
    return laps


def calories(sport: str, distance_m: float, moving_time_s: float) -> float:
    if sport == "Ride":
        return round(RIDE_MET * ATHLETE_WEIGHT_KG * moving_time_s / 3600.0, 1)
    per_kg_km = KCAL_PER_KG_KM_WALK if sport == "Walk" else KCAL_PER_KG_KM_RUN
    return round(per_kg_km * ATHLETE_WEIGHT_KG * distance_m / 1000.0, 1)


def make_activity(
    *,
    name: str,
    description: str | None,
    sport: str,
    start: dt.datetime,
    device_name: str | None,
    streams: dict[str, list] | None,
    lap_bounds: Sequence[tuple[str, int, int]] = (),
    totals: dict[str, Any] | None = None,
    manual: bool = False,
    trainer: bool = False,
) -> dict[str, Any]:
    """A DetailedActivity without id and athlete (the sandbox assigns those); totals from the streams."""
    if streams is not None:
        totals = summarize(streams, 0, len(streams["time"]) - 1)
    assert totals is not None
    activity: dict[str, Any] = {
        "name": name,
        "description": description,
        "sport_type": sport,
        "type": sport,
        "distance": totals["distance"],
        "moving_time": totals["moving_time"],
        "elapsed_time": totals["elapsed_time"],
        "total_elevation_gain": totals["total_elevation_gain"],
        "average_speed": totals["average_speed"],
        "max_speed": totals["max_speed"],
    }
    for key in ("average_cadence", "average_heartrate", "max_heartrate"):
        if key in totals:
            activity[key] = totals[key]
    activity.update(
        {
            "has_heartrate": "average_heartrate" in totals,
            "start_date": _iso(start),
            "start_date_local": _iso(start),
            "timezone": TIMEZONE,
            "trainer": trainer,
            "manual": manual,
            "private": False,
            "commute": False,
        }
    )
    if device_name is not None:
        activity["device_name"] = device_name
    activity.update(
        {
            "calories": calories(sport, totals["distance"], totals["moving_time"]),
            "workout_type": None,
            "laps": make_laps(streams, lap_bounds, start) if streams is not None else [],
            "splits_metric": [],
        }
    )
    return activity


# --- the activities -----------------------------------------------------------------------------------------


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def splice_retro_intervals(base: Sequence[Sample]) -> tuple[list[Sample], list[tuple[int, int]], list[str]]:
    """Insert backward intervals into a forward recording.

    At each splice sample the recording pauses; the interval follows at 1 s samples and the recording then
    resumes, shifted by the interval's time and distance. Returns the samples, each interval's (first, last)
    index (first = the last forward sample before it, so a lap over it holds only backward samples after its
    first), and diagnostics.
    """
    splice_at = [next(i for i, s in enumerate(base) if s.t >= start) for start in RETRO_STARTS_S]
    out: list[Sample] = []
    intervals: list[tuple[int, int]] = []
    notes: list[str] = []
    # This athlete's forward cadence against speed (least squares over the forward samples at 2-6 m/s), to
    # report the matched-speed step ratio honestly.
    fwd = [(b.v, b.cad) for b in base if b.v and b.cad and 2.0 <= b.v <= 6.0]
    mv, mc = _mean([v for v, _ in fwd]), _mean([c for _, c in fwd])
    slope = sum((v - mv) * (c - mc) for v, c in fwd) / sum((v - mv) ** 2 for v, _ in fwd)

    def forward_cadence_at(speed: float) -> float:
        return mc + slope * (speed - mv)

    shift_t = shift_d = 0.0
    # Heart rate does not drop the moment the forward run resumes: the difference between the interval's last
    # value and the recording's fades out over HR_FADE_S.
    hr_carry = (0.0, 0.0)  # (offset in bpm, time it starts fading)
    for i, s in enumerate(base):
        assert s.d is not None
        hr = s.hr
        since = s.t + shift_t - hr_carry[1]
        if hr is not None and hr_carry[0] and since < HR_FADE_S:
            hr += hr_carry[0] * (1.0 - since / HR_FADE_S)
        out.append(replace(s, t=s.t + shift_t, d=s.d + shift_d, hr=hr))
        if i not in splice_at:
            continue
        ref = [b for b in base[: i + 1] if s.t - RETRO_REF_WINDOW_S < b.t <= s.t and b.v and b.cad]
        v_ref, cad_ref = _mean([b.v for b in ref]), _mean([b.cad for b in ref])  # type: ignore[misc]
        v_back = RETRO_SPEED_RATIO * v_ref
        n = math.ceil(RETRO_INTERVAL_M / v_back)
        # Keep the natural sample-to-sample variation of the minute before (scaled to mean 1 over the
        # interval), so the interval is not a flat line; its mean speed is exactly RETRO_SPEED_RATIO x v_ref.
        pattern = [ref[k % len(ref)] for k in range(n)]
        scale = _mean([p.v for p in pattern])  # type: ignore[misc]
        hr0 = out[-1].hr
        first = len(out) - 1
        t, d = s.t + shift_t, s.d + shift_d
        for k, p in enumerate(pattern, start=1):
            t += 1.0
            v = v_back * p.v / scale  # type: ignore[operator]
            d += v
            out.append(
                Sample(
                    t=t,
                    d=d,
                    v=v,
                    cad=RETRO_CADENCE_RATIO * p.cad,  # type: ignore[operator]
                    hr=None if hr0 is None else hr0 + RETRO_HR_RISE_BPM_S * k,
                    alt=s.alt,  # the inserted stretch is taken as flat
                )
            )
        intervals.append((first, len(out) - 1))
        interval_m = d - (s.d + shift_d)
        shift_t += n
        shift_d += interval_m
        hr_carry = (out[-1].hr - s.hr, t) if s.hr is not None and out[-1].hr is not None else (0.0, t)
        # Matched speed: step length ratio = forward cadence at the backward speed / backward cadence.
        cad_back = RETRO_CADENCE_RATIO * cad_ref
        cad_fwd = forward_cadence_at(v_back)
        notes.append(
            f"interval at {s.t:.0f} s: forward {v_ref:.2f} m/s, cadence {cad_ref:.1f}; backward "
            f"{v_back:.2f} m/s, cadence {cad_back:.1f}, {n} s, {interval_m:.0f} m; backward/forward step "
            f"{RETRO_SPEED_RATIO / RETRO_CADENCE_RATIO:.2f} against the forward step at the forward speed, "
            f"{cad_fwd / cad_back:.2f} at matched speed (forward cadence at {v_back:.2f} m/s ~ {cad_fwd:.1f})"
        )
    return out, intervals, notes


def fit_lap_bounds(rec: Recording, t0: float, samples: Sequence[Sample]) -> list[tuple[str, int, int]]:
    """The recording's own laps (lap messages' start times) over samples rebased at t0 (recording seconds);
    laps that start before the kept samples merge into the first one, later ones are dropped."""
    assert rec.start is not None
    last = len(samples) - 1
    firsts = {0}
    for lap in rec.laps:
        if "start_time" not in lap:
            continue
        start = (lap["start_time"] - rec.start).total_seconds() - t0
        first = next((i for i, s in enumerate(samples) if s.t >= start), last)
        if first < last:
            firsts.add(first)
    ordered = sorted(firsts)
    ends = [*ordered[1:], last]
    return [(f"Lap {n}", a, b) for n, (a, b) in enumerate(zip(ordered, ends, strict=True), start=1)]


def retro_interval_laps(n_samples: int, intervals: Sequence[tuple[int, int]]) -> list[tuple[str, int, int]]:
    bounds: list[tuple[str, int, int]] = []
    cursor = 0
    for k, (first, last) in enumerate(intervals, start=1):
        bounds.append(("Warm-up" if k == 1 else f"Lap {k}", cursor, first))
        bounds.append((f"Retro {k}", first, last))
        cursor = last
    bounds.append((f"Lap {len(intervals) + 1}", cursor, n_samples - 1))
    return bounds


def backward_walk(samples: Sequence[Sample]) -> list[Sample]:
    """The same walk backward: time stretched by 1/0.6, distance and cadence unchanged, speed x 0.6."""
    return [
        replace(
            s,
            t=round(s.t / RETRO_WALK_SPEED_RATIO),
            v=None if s.v is None else s.v * RETRO_WALK_SPEED_RATIO,
        )
        for s in samples
    ]


def _manifest(realruns: Path) -> dict[str, dict[str, str]]:
    with (realruns / "MANIFEST.tsv").open(newline="", encoding="utf-8") as fh:
        return {row["file"]: row for row in csv.DictReader(fh, delimiter="\t")}


def build_seed(realruns: Path, log: Any = None) -> dict[str, Any]:
    def say(text: str) -> None:
        if log is not None:
            print(text, file=log)

    manifest = _manifest(realruns)
    used: list[str] = []

    def load(name: str) -> Recording:
        used.append(name)
        return read_fit(realruns / name)

    days = [FIRST_START + dt.timedelta(days=k) for k in range(5)]
    activities: list[dict[str, Any]] = []

    # a. Tempo run with three backward intervals. The first 4 records are dropped: speed frozen at 5.89 m/s
    # and an 87 m altitude spike while the fenix 2's GPS and barometer settle.
    name = "fitparse_activity-small-fenix2-run.fit"
    base = rebase(load(name).samples, skip=4, max_s=25 * 60)
    samples, intervals, notes = splice_retro_intervals(base)
    for note in notes:
        say(note)
    streams = make_streams(samples)
    activity = make_activity(
        name="Tempo with #retro intervals",
        description="Felt strong today.",
        sport="Run",
        start=days[0],
        device_name="Garmin fenix 2",
        streams=streams,
        lap_bounds=retro_interval_laps(len(samples), intervals),
    )
    activities.append({"key": "retro-intervals", "source": name, "activity": activity, "streams": streams})

    # b. Easy forward run, untouched: the first 20 minutes.
    name = "fitparse_developer-types-sample.fit"
    rec = load(name)
    samples = rebase(rec.samples, max_s=20 * 60)
    streams = make_streams(samples)
    activity = make_activity(
        name="Easy recovery run",
        description=None,
        sport="Run",
        start=days[1],
        device_name="Stryd",
        streams=streams,
        lap_bounds=fit_lap_bounds(rec, rec.samples[0].t, samples),
    )
    activities.append({"key": "easy-run", "source": name, "activity": activity, "streams": streams})

    # c. The short forward walk, walked backward (Laufer 2005).
    name = "fitparse_garmin-fenix-5-walk.fit"
    rec = load(name)
    samples = rebase(rec.samples)
    walk_laps = fit_lap_bounds(rec, rec.samples[0].t, samples)  # indices survive the time stretch
    samples = backward_walk(samples)
    streams = make_streams(samples)
    activity = make_activity(
        name="Retro walk in the park",
        description=None,
        sport="Walk",
        start=days[2],
        device_name="Garmin fenix 5",
        streams=streams,
        lap_bounds=walk_laps,
    )
    activities.append({"key": "retro-walk", "source": name, "activity": activity, "streams": streams})

    # d. The bike leg of a multisport file (its 'cycling' session), first 15 minutes, one sample per 5 s.
    name = "fitparse_activity-large-fenxi2-multisport.fit"
    rec = load(name)
    ride = next((s for s in rec.sessions if s.get("sport") == "cycling"), None)
    if ride is not None and "start_time" in ride and "timestamp" in ride:
        leg = window(rec, ride["start_time"], ride["timestamp"])
        samples = thin(rebase(leg, max_s=15 * 60), 5.0)
        streams = make_streams(samples)
        activity = make_activity(
            name="Lunch ride",
            description=None,
            sport="Ride",
            start=days[3],
            device_name="Garmin fenix 2",
            streams=streams,
            lap_bounds=fit_lap_bounds(rec, leg[0].t, samples),
        )
        activities.append({"key": "lunch-ride", "source": name, "activity": activity, "streams": streams})
    else:  # no bike leg found: a synthetic ride without streams
        used.remove(name)
        totals = {
            "distance": 7200.0,
            "moving_time": 900,
            "elapsed_time": 900,
            "total_elevation_gain": 0.0,
            "average_speed": 8.0,
            "max_speed": 8.0,
        }
        activity = make_activity(
            name="Lunch ride",
            description=None,
            sport="Ride",
            start=days[3],
            device_name=None,
            streams=None,
            totals=totals,
        )
        activities.append({"key": "lunch-ride", "source": None, "activity": activity, "streams": None})

    # e. A manual treadmill session: no streams, no distance, no laps.
    totals = {
        "distance": 0.0,
        "moving_time": 900,
        "elapsed_time": 900,
        "total_elevation_gain": 0.0,
        "average_speed": 0.0,
        "max_speed": 0.0,
    }
    activity = make_activity(
        name="Deadmill session, backward",
        description="Pushed the belt backward, motor off.",
        sport="Run",
        start=days[4],
        device_name=None,
        streams=None,
        totals=totals,
        manual=True,
        trainer=True,
    )
    activities.append({"key": "deadmill", "source": None, "activity": activity, "streams": None})

    attribution = [
        {
            "file": file,
            "source_repo": manifest[file]["source_repo"],
            "source_path": manifest[file]["source_path"],
            "commit": manifest[file]["commit"],
            "licence": manifest[file]["licence"],
        }
        for file in used
    ]
    return {
        "generated_by": GENERATED_BY,
        "attribution": attribution,
        "athlete": ATHLETE,
        "activities": activities,
    }


# --- output -------------------------------------------------------------------------------------------------


def render(value: Any, indent: int = 0) -> str:
    """JSON with objects indented and lists of plain values on one line (streams stay compact)."""
    pad, inner = "  " * indent, "  " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{json.dumps(k)}: {render(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        if all(not isinstance(v, dict | list) for v in value):
            return json.dumps(value, separators=(",", ":"))
        return "[\n" + ",\n".join(inner + render(v, indent + 1) for v in value) + "\n" + pad + "]"
    return json.dumps(value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realruns", type=Path, default=DEFAULT_REALRUNS, help="the realruns directory")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write seed.json")
    parser.add_argument("--quiet", action="store_true", help="do not print the summary")
    args = parser.parse_args(argv)
    if not (args.realruns / "MANIFEST.tsv").is_file():
        parser.error(f"no MANIFEST.tsv in {args.realruns}")
    log = None if args.quiet else sys.stdout
    seed = build_seed(args.realruns, log=log)
    text = render(seed) + "\n"
    args.output.write_text(text, encoding="utf-8")
    if log is not None:
        for entry in seed["activities"]:
            a = entry["activity"]
            laps = ", ".join(
                f"{lap['name']} {lap['distance']:.0f} m/{lap['elapsed_time']} s" for lap in a["laps"]
            )
            print(
                f"{entry['key']}: {a['distance']:.0f} m, {a['elapsed_time']} s elapsed, "
                f"{a['moving_time']} s moving; laps: {laps or '-'}",
                file=log,
            )
        print(f"wrote {args.output} ({len(text.encode('utf-8'))} bytes)", file=log)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
