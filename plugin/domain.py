"""Plain data shared by every layer. No behaviour that needs I/O lives here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# Sports in which a person moves on foot; anything else is out of scope.
FOOT_SPORTS = frozenset({"Run", "TrailRun", "VirtualRun", "Walk", "Hike", "Snowshoe"})

# Body mass used when neither the athlete's settings nor the host profile give one; the note says so.
DEFAULT_WEIGHT_KG = 70.0

Gait = Literal["run", "walk"]
EffortSource = Literal["tag", "lap", "stream", "whole"]
Units = Literal["metric", "imperial"]
# compact: what was backward, energy and the myth; detailed adds the host's calories and the kneecap.
NoteStyle = Literal["compact", "detailed"]
NOTE_STYLES: tuple[NoteStyle, ...] = ("compact", "detailed")


@dataclass(frozen=True)
class Lap:
    index: int
    name: str
    elapsed_time_s: float
    moving_time_s: float
    distance_m: float
    start_index: int | None = None
    end_index: int | None = None
    average_speed: float | None = None
    average_cadence: float | None = None  # per leg (Strava's unit): steps/min = 2 x cadence


@dataclass(frozen=True)
class Activity:
    id: int
    athlete_id: int | None
    name: str
    description: str
    sport_type: str
    distance_m: float = 0.0
    moving_time_s: float = 0.0
    elapsed_time_s: float = 0.0
    average_speed: float | None = None
    average_cadence: float | None = None  # per leg
    average_heartrate: float | None = None
    calories: float | None = None
    total_elevation_gain: float | None = None
    trainer: bool = False
    manual: bool = False
    private: bool = False
    laps: tuple[Lap, ...] = ()

    @property
    def is_foot_sport(self) -> bool:
        return self.sport_type in FOOT_SPORTS


@dataclass(frozen=True)
class Streams:
    """Per-sample series; a series the device did not record is None."""

    time: tuple[float, ...] = ()
    distance: tuple[float, ...] | None = None
    velocity_smooth: tuple[float, ...] | None = None
    cadence: tuple[float, ...] | None = None  # per leg
    heartrate: tuple[float, ...] | None = None
    grade_smooth: tuple[float, ...] | None = None
    altitude: tuple[float, ...] | None = None
    moving: tuple[bool, ...] | None = None

    @property
    def is_empty(self) -> bool:
        return len(self.time) == 0


@dataclass(frozen=True)
class Effort:
    """One stretch of backward locomotion inside an activity."""

    start_s: float
    end_s: float
    distance_m: float
    duration_s: float
    steps: int | None
    confidence: float
    source: EffortSource
    gait: Gait


@dataclass(frozen=True)
class AthleteProfile:
    weight_kg: float
    weight_source: Literal["settings", "host", "default"]
    units: Units = "metric"
    note_style: NoteStyle = "detailed"


@dataclass(frozen=True)
class Note:
    """The text Backstride writes, and the efforts it speaks of."""

    text: str
    efforts: tuple[Effort, ...] = field(default_factory=tuple)
