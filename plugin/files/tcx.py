"""Garmin Training Center XML (TCX): Activities/Activity/Lap/Track/Trackpoint.

Running cadence is per leg: in the ActivityExtension (<TPX><RunCadence>) for Garmin, in the trackpoint's own
<Cadence> for Polar and others. Speed comes from <TPX><Speed> when present.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405 - only for the Element type; parsing is in _xml

from plugin.domain import Activity, Streams
from plugin.files import _legs
from plugin.files._core import (
    LapSpan,
    Sample,
    Summary,
    UnreadableFile,
    build,
    parse_time,
    stable_id,
    text_number,
)
from plugin.files._xml import XmlDocument

# TCX knows Running, Biking and Other; a few exporters write other words.
_SPORTS = {
    "running": ("Run", False),
    "run": ("Run", False),
    "trailrunning": ("TrailRun", False),
    "treadmillrunning": ("Run", True),
    "walking": ("Walk", False),
    "walk": ("Walk", False),
    "hiking": ("Hike", False),
    "biking": ("Ride", False),
    "cycling": ("Ride", False),
    "other": ("Workout", False),
}


def sport_of(attribute: str | None) -> tuple[str, bool]:
    if not attribute or not attribute.strip():
        return "Run", False  # no word at all: a file given to `analyze` is most likely a run
    key = "".join(ch for ch in attribute.lower() if ch.isalnum())
    return _SPORTS.get(key, ("Workout", False))


def _text(element: ET.Element, path: str) -> str | None:
    found = element.find(path)
    return found.text if found is not None else None


def _first_number(element: ET.Element, *names: str) -> float | None:
    """The first descendant with one of these local names (any depth, e.g. inside Extensions)."""
    for child in element.iter():
        if child.tag in names:
            value = text_number(child.text)
            if value is not None:
                return value
    return None


def _trackpoint(point: ET.Element, running: bool) -> Sample | None:
    t = parse_time(_text(point, "Time"))
    if t is None:
        return None
    extensions = point.find("Extensions")
    run_cadence = speed = None
    if extensions is not None:
        run_cadence = _first_number(extensions, "RunCadence")
        speed = _first_number(extensions, "Speed")
    cadence = text_number(_text(point, "Cadence"))
    return Sample(
        t=t,
        distance=text_number(_text(point, "DistanceMeters")),
        speed=speed,
        cadence=run_cadence if running and run_cadence is not None else cadence,
        heartrate=text_number(_text(point, "HeartRateBpm/Value")),
        altitude=text_number(_text(point, "AltitudeMeters")),
        lat=text_number(_text(point, "Position/LatitudeDegrees")),
        lon=text_number(_text(point, "Position/LongitudeDegrees")),
    )


def _leg(activity: ET.Element, incomplete: frozenset[int]) -> _legs.Leg:
    sport_type, trainer = sport_of(activity.get("Sport"))
    running = sport_type not in ("Ride", "Workout")
    leg = _legs.Leg(sport_type=sport_type, trainer=trainer)
    calories: list[float] = []
    timer = 0.0
    for lap in activity.iter("Lap"):
        for point in lap.iter("Trackpoint"):
            if id(point) in incomplete:
                continue  # the file broke off inside this trackpoint
            sample = _trackpoint(point, running)
            if sample is not None:
                leg.samples.append(sample)
        start = parse_time(lap.get("StartTime"))
        extension = lap.find("Extensions")
        lap_cadence = _first_number(extension, "AvgRunCadence") if extension is not None else None
        if lap_cadence is None:
            lap_cadence = text_number(_text(lap, "Cadence"))
        if start is not None:
            leg.laps.append(
                LapSpan(
                    start_t=start,
                    distance_m=text_number(_text(lap, "DistanceMeters")),
                    average_cadence=lap_cadence if lap_cadence else None,
                )
            )
        timer += text_number(_text(lap, "TotalTimeSeconds")) or 0.0
        lap_calories = text_number(_text(lap, "Calories"))
        if lap_calories is not None:
            calories.append(lap_calories)
    leg.calories = sum(calories) if calories else None
    leg.timer_time_s = timer or None
    return leg


def read(document: XmlDocument, stem: str) -> tuple[Activity, Streams]:
    root = document.root
    activities = list(root.iter("Activity"))
    if not activities:
        raise UnreadableFile("TCX file holds no activity (a course or workout file?)")
    legs = [_leg(activity, document.incomplete) for activity in activities]
    choice = _legs.choose(legs)
    if choice is None:
        raise UnreadableFile("no trackpoints with a timestamp")
    first = activities[legs.index(choice.legs[0])]
    # TCX has no activity name; a few exporters add <Name> to the Activity. (Polar's Training/Plan/Name is
    # the sport profile, "Running" in the athlete's language, so the file's own name says more.)
    name = (_text(first, "Name") or "").strip() or stem
    identifier = (_text(first, "Id") or "").strip()
    return build(
        _legs.merged_samples(choice.legs),
        activity_id=stable_id("tcx", identifier) if identifier else 0,
        name=name,
        sport_type=choice.sport_type,
        trainer=choice.trainer,
        laps=[lap for leg in choice.legs for lap in leg.laps],
        summary=Summary(calories=_legs.total([leg.calories for leg in choice.legs])),
        timer_time_s=_legs.total([leg.timer_time_s for leg in choice.legs]),
    )
