"""Which part of a multisport recording Backstride looks at: the foot legs, else the main other leg."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from plugin.domain import FOOT_SPORTS
from plugin.files._core import LapSpan, Sample


@dataclass
class Leg:
    sport_type: str  # Strava's name; "" for a transition, which is never kept
    trainer: bool
    samples: list[Sample] = field(default_factory=list)
    laps: list[LapSpan] = field(default_factory=list)
    duration_s: float | None = None  # the file's own figure, else the samples' span
    distance_m: float | None = None
    elevation_gain_m: float | None = None
    calories: float | None = None
    timer_time_s: float | None = None

    @property
    def span_s(self) -> float:
        if self.duration_s is not None:
            return self.duration_s
        return self.samples[-1].t - self.samples[0].t if self.samples else 0.0


@dataclass(frozen=True)
class Choice:
    legs: tuple[Leg, ...]
    sport_type: str
    trainer: bool


def choose(legs: Sequence[Leg]) -> Choice | None:
    """Keep every foot leg (the sport is the longest one's); with none, the longest other leg alone."""
    candidates = [leg for leg in legs if leg.sport_type and leg.samples]
    if not candidates:
        return None
    foot = [leg for leg in candidates if leg.sport_type in FOOT_SPORTS]
    kept = foot or [max(candidates, key=lambda leg: leg.span_s)]
    main = max(kept, key=lambda leg: leg.span_s)
    return Choice(legs=tuple(kept), sport_type=main.sport_type, trainer=main.trainer)


def merged_samples(legs: Sequence[Leg]) -> list[Sample]:
    """The legs' samples in time order, each leg its own distance segment."""
    out: list[Sample] = []
    for number, leg in enumerate(sorted(legs, key=lambda leg: leg.samples[0].t if leg.samples else 0.0)):
        for sample in leg.samples:
            sample.segment = number
            out.append(sample)
    return out


def total(values: Sequence[float | None]) -> float | None:
    """The sum, or None when any leg lacks the figure (then it is derived from the samples instead)."""
    if not values or any(v is None for v in values):
        return None
    return float(sum(v for v in values if v is not None))


def merge_adjacent(legs: Sequence[Leg]) -> list[Leg]:
    """Legs in time order, neighbours of the same sport joined (a session and the records after it that
    only a sport message accounts for; laps standing in for sessions)."""
    ordered = sorted((leg for leg in legs if leg.samples), key=lambda leg: leg.samples[0].t)
    merged: list[Leg] = []
    for leg in ordered:
        last = merged[-1] if merged else None
        if last is None or (last.sport_type, last.trainer) != (leg.sport_type, leg.trainer):
            merged.append(leg)
            continue
        last.samples.extend(leg.samples)
        last.laps.extend(leg.laps)
        last.duration_s = total([last.duration_s, leg.duration_s])
        last.distance_m = total([last.distance_m, leg.distance_m])
        last.elevation_gain_m = total([last.elevation_gain_m, leg.elevation_gain_m])
        last.calories = total([last.calories, leg.calories])
        last.timer_time_s = total([last.timer_time_s, leg.timer_time_s])
    return merged
