"""One activity in, everything Backstride says about it out: efforts, energy, knee and the note.

The webhook pipeline and `backstride analyze` both call `analyse`: a file and a webhook get the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from plugin.analysis import energy, knee
from plugin.analysis.detect import DetectionMode, detect
from plugin.analysis.notes import NoteFacts, build_note, strip_note
from plugin.domain import Activity, AthleteProfile, Effort, Note, Streams


@dataclass(frozen=True)
class Analysis:
    efforts: tuple[Effort, ...]
    energy: energy.EnergyEstimate | None  # None when an effort cannot be priced (no duration)
    knee: knee.KneeSummary | None
    note: Note | None
    remark: str | None = None  # why there is no effort, when the athlete may wonder (detect.Detection)


def own_words(activity: Activity) -> Activity:
    """The activity as the athlete wrote it: our previous note never counts as a tag."""
    return replace(activity, description=strip_note(activity.description))


def assess(
    efforts: list[Effort],
    profile: AthleteProfile,
    streams: Streams | None = None,
    host_calories: float | None = None,
    recent_backward_s: float | None = None,
) -> Analysis:
    """Price and describe efforts already found: energy at each effort's grade, kneecap, and the note."""
    estimates = [
        energy.estimate_effort(effort, profile.weight_kg, energy.effort_grade(effort, streams))
        for effort in efforts
    ]
    priced = [e for e in estimates if e is not None]
    # A figure for some efforts only would be presented as the whole: better say nothing.
    total = energy.total(priced) if len(priced) == len(estimates) else None
    facts = NoteFacts(
        efforts=tuple(efforts),
        energy=total,
        knee=knee.summarize(efforts),
        host_calories=host_calories,
        recent_backward_s=recent_backward_s,
    )
    return Analysis(
        efforts=facts.efforts, energy=facts.energy, knee=facts.knee, note=build_note(facts, profile)
    )


def analyse(
    activity: Activity,
    streams: Streams | None,
    profile: AthleteProfile,
    mode: DetectionMode = "auto",
    recent_backward_s: float | None = None,
) -> Analysis:
    """recent_backward_s: the athlete's backward time in the week before (None: unknown, no tip)."""
    found = detect(own_words(activity), streams, mode)
    result = assess(list(found.efforts), profile, streams, activity.calories, recent_backward_s)
    return replace(result, remark=found.remark)


# A made-up session for the landing page: three backward running intervals in a tempo run, 70 kg.
_EXAMPLE_EFFORTS = (
    Effort(600.0, 690.0, 210.0, 90.0, 262, 0.95, "stream", "run"),
    Effort(1200.0, 1275.0, 180.0, 75.0, 221, 0.95, "stream", "run"),
    Effort(1800.0, 1890.0, 205.0, 90.0, 260, 0.95, "stream", "run"),
)


def example_note() -> str:
    """The note Backstride would write for a made-up session, computed by the real model."""
    result = assess(list(_EXAMPLE_EFFORTS), AthleteProfile(70.0, "settings"), host_calories=412.0)
    return result.note.text if result.note else ""
