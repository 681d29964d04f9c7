"""Plain data shared by every layer. No behaviour that needs I/O lives here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Literal

import numpy as np

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


def _series(values: Sequence[float | None] | np.ndarray, dtype: type) -> np.ndarray:
    """A read-only 1-d array of the values; a missing value (None) is NaN (False for a flag)."""
    array = np.asarray(values)
    if array.dtype == object:  # None somewhere
        missing = 0.0 if dtype is bool else np.nan
        array = np.asarray([missing if x is None else x for x in values], dtype=np.float64)
    array = np.array(array, dtype=dtype, ndmin=1).reshape(-1)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Streams:
    """Per-sample series as numpy arrays (float64; moving is bool), whatever sequence they were built from; a
    series the device did not record is None. The arrays are read-only: a Streams is a value."""

    time: np.ndarray = field(default_factory=lambda: np.zeros(0))
    distance: np.ndarray | None = None
    velocity_smooth: np.ndarray | None = None
    cadence: np.ndarray | None = None  # per leg
    heartrate: np.ndarray | None = None
    grade_smooth: np.ndarray | None = None
    altitude: np.ndarray | None = None
    moving: np.ndarray | None = None

    def __post_init__(self) -> None:
        for item in fields(self):
            values = getattr(self, item.name)
            if values is not None:
                kind = bool if item.name == "moving" else np.float64
                object.__setattr__(self, item.name, _series(values, kind))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Streams):
            return NotImplemented
        for item in fields(self):
            mine, theirs = getattr(self, item.name), getattr(other, item.name)
            if (mine is None) != (theirs is None):
                return False
            if mine is not None and not np.array_equal(mine, theirs, equal_nan=mine.dtype != bool):
                return False
        return True

    __hash__ = None  # type: ignore[assignment] - arrays are not hashable, and neither is a Streams

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


def main_gait(efforts: Sequence[Effort]) -> Gait | None:
    """The gait of more than half the backward time: "run", "walk", or None (no time, or half and half:
    neither is most)."""
    total = sum(max(e.duration_s, 0.0) for e in efforts)
    running = sum(max(e.duration_s, 0.0) for e in efforts if e.gait == "run")
    if total <= 0 or running == total / 2:
        return None
    return "run" if running > total / 2 else "walk"


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
