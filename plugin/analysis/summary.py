"""One activity in, everything Backstride says about it out: efforts, energy, knee and the note.

The webhook pipeline and `backstride analyze` both call `analyse`: a file and a webhook get the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from plugin.analysis import energy, knee
from plugin.analysis.detect import detect_efforts
from plugin.analysis.notes import build_note, strip_note
from plugin.domain import Activity, AthleteProfile, Effort, Note, Streams

DetectionMode = Literal["auto", "tagged"]


@dataclass(frozen=True)
class Analysis:
    efforts: tuple[Effort, ...]
    energy: energy.EnergyEstimate | None  # None when an effort cannot be priced (no distance)
    knee: knee.KneeSummary | None
    note: Note | None


def own_words(activity: Activity) -> Activity:
    """The activity as the athlete wrote it: our previous note never counts as a tag."""
    return replace(activity, description=strip_note(activity.description))


def analyse(
    activity: Activity, streams: Streams | None, profile: AthleteProfile, mode: DetectionMode = "auto"
) -> Analysis:
    efforts = detect_efforts(own_words(activity), streams, mode)
    estimates = [energy.estimate_effort(effort, profile.weight_kg) for effort in efforts]
    priced = [e for e in estimates if e is not None]
    total = energy.total(priced) if len(priced) == len(estimates) else None
    return Analysis(
        efforts=tuple(efforts),
        energy=total,
        knee=knee.summarize(efforts),
        note=build_note(efforts, profile) if efforts else None,
    )
