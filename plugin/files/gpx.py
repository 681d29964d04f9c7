"""GPX 1.0 and 1.1 tracks, with Garmin's TrackPointExtension (gpxtpx:hr, gpxtpx:cad) and the plainer
<extensions><heartrate>/<cadence> other vendors write. Cadence of a run is per leg, as Garmin and Strava
write it. GPX has no laps and no distance of its own: distance comes from the positions."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405 - only for the Element type; parsing is in _xml

from plugin.domain import Activity, Streams
from plugin.files._core import Sample, UnreadableFile, build, parse_time, text_number
from plugin.files._xml import XmlDocument

# <type> as Garmin Connect, Strava (numbers in its exports: 1 ride, 4 hike, 9 run, 10 walk) and others write.
_SPORTS = {
    "run": ("Run", False),
    "running": ("Run", False),
    "9": ("Run", False),
    "streetrunning": ("Run", False),
    "trackrunning": ("Run", False),
    "trailrun": ("TrailRun", False),
    "trailrunning": ("TrailRun", False),
    "treadmillrunning": ("Run", True),
    "indoorrunning": ("Run", True),
    "virtualrun": ("VirtualRun", False),
    "walk": ("Walk", False),
    "walking": ("Walk", False),
    "10": ("Walk", False),
    "casualwalking": ("Walk", False),
    "speedwalking": ("Walk", False),
    "hike": ("Hike", False),
    "hiking": ("Hike", False),
    "4": ("Hike", False),
    "snowshoe": ("Snowshoe", False),
    "snowshoeing": ("Snowshoe", False),
    "ride": ("Ride", False),
    "1": ("Ride", False),
    "cycling": ("Ride", False),
    "biking": ("Ride", False),
    "bike": ("Ride", False),
    "roadbiking": ("Ride", False),
    "roadcycling": ("Ride", False),
    "mountainbiking": ("MountainBikeRide", False),
    "gravelcycling": ("GravelRide", False),
    "swim": ("Swim", False),
    "swimming": ("Swim", False),
}

_HEART_RATE = {"hr", "heartrate", "heart_rate", "heartratebpm"}
_CADENCE = {"cad", "cadence", "runcadence"}


def sport_of(text: str | None) -> tuple[str, bool]:
    if not text or not text.strip():
        return "Run", False  # no <type>: a file given to `analyze` is most likely a run
    key = "".join(ch for ch in text.lower() if ch.isalnum())
    return _SPORTS.get(key, ("Workout", False))


def _extension_values(point: ET.Element) -> dict[str, float]:
    values: dict[str, float] = {}
    extensions = point.find("extensions")
    if extensions is None:
        return values
    for element in extensions.iter():
        name = element.tag.lower() if isinstance(element.tag, str) else ""
        key = "hr" if name in _HEART_RATE else "cad" if name in _CADENCE else name
        if key in ("hr", "cad", "speed", "distance") and key not in values:
            value = text_number(element.text)
            if value is not None:
                values[key] = value
    return values


def read(document: XmlDocument, stem: str) -> tuple[Activity, Streams]:
    root = document.root
    tracks = root.findall("trk")
    points = [
        point
        for track in tracks
        for segment in track.findall("trkseg")
        for point in segment.findall("trkpt")
        if id(point) not in document.incomplete
    ]
    if not points:
        raise UnreadableFile("GPX file holds no track points")
    samples: list[Sample] = []
    for point in points:
        t = parse_time(point.findtext("time"))
        if t is None:
            continue
        extra = _extension_values(point)
        speed = text_number(point.findtext("speed"))  # GPX 1.0 has <speed> in the point itself
        samples.append(
            Sample(
                t=t,
                lat=text_number(point.get("lat")),
                lon=text_number(point.get("lon")),
                altitude=text_number(point.findtext("ele")),
                heartrate=extra.get("hr"),
                cadence=extra.get("cad"),
                speed=speed if speed is not None else extra.get("speed"),
                distance=extra.get("distance"),
            )
        )
    if not samples:
        raise UnreadableFile("no timestamps: the GPX track points have no <time> (a route, not a recording?)")
    names = [t.findtext("name") for t in tracks] + [root.findtext("metadata/name")]
    name = next((n.strip() for n in names if n and n.strip()), stem)
    sport_type, trainer = sport_of(next((t.findtext("type") for t in tracks if t.findtext("type")), None))
    return build(samples, activity_id=0, name=name, sport_type=sport_type, trainer=trainer)
