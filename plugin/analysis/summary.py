"""One activity in, everything Backstride says about it out: efforts, energy, knee and the note.

The webhook pipeline and `backstride analyze` both call `analyse`: a file and a webhook get the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from plugin.analysis import energy, knee, steps
from plugin.analysis.detect import DetectionMode, detect
from plugin.analysis.notes import NoteFacts, build_note, strip_note
from plugin.domain import Activity, AthleteProfile, Effort, Note, Streams, main_gait


@dataclass(frozen=True)
class Analysis:
    efforts: tuple[Effort, ...]
    energy: energy.EnergyEstimate | None  # None when an effort cannot be priced (no duration)
    knee: knee.KneeSummary | None
    note: Note | None
    remark: str | None = None  # why there is no effort, when the athlete may wonder (detect.Detection)


# No note for an effort shorter than this, or (with a distance) shorter than this far: a button pressed twice,
# a GPS wobble. Too little to price or to answer a myth with.
MIN_NOTED_S = 20.0
MIN_NOTED_M = 25.0


def own_words(activity: Activity) -> Activity:
    """The activity as the athlete wrote it: our previous note never counts as a tag."""
    return replace(activity, description=strip_note(activity.description))


def noted(efforts: list[Effort] | tuple[Effort, ...]) -> list[Effort]:
    """The efforts long enough to write about (MIN_NOTED_S, MIN_NOTED_M)."""
    return [
        e
        for e in efforts
        if e.duration_s >= MIN_NOTED_S and (e.distance_m <= 0 or e.distance_m >= MIN_NOTED_M)
    ]


def assess(
    efforts: list[Effort],
    profile: AthleteProfile,
    sources_url: str,
    streams: Streams | None = None,
    host_calories: float | None = None,
    recent_backward_s: float | None = None,
) -> Analysis:
    """Price and describe efforts already found: energy over each effort's terrain, kneecap, and the note
    (whose last line links to sources_url)."""
    estimates = [
        energy.estimate_effort(effort, profile.weight_kg, energy.effort_terrain(effort, streams))
        for effort in efforts
    ]
    priced = [e for e in estimates if e is not None]
    # A figure for some efforts only would be presented as the whole: better say nothing.
    total = energy.total(priced) if len(priced) == len(estimates) else None
    forward_step = steps.forward_step_m(streams, efforts, main_gait(efforts) or "walk")
    facts = NoteFacts(
        efforts=tuple(efforts),
        energy=total,
        knee=knee.summarize(efforts, forward_step),
        host_calories=host_calories,
        recent_backward_s=recent_backward_s,
        forward_step_m=forward_step,
    )
    return Analysis(
        efforts=facts.efforts,
        energy=facts.energy,
        knee=facts.knee,
        note=build_note(facts, profile, sources_url),
    )


def analyse(
    activity: Activity,
    streams: Streams | None,
    profile: AthleteProfile,
    sources_url: str,
    mode: DetectionMode = "auto",
    recent_backward_s: float | None = None,
) -> Analysis:
    """recent_backward_s: the athlete's backward time in the week before (None: unknown, no tip)."""
    found = detect(own_words(activity), streams, mode)
    efforts = noted(found.efforts)
    result = assess(efforts, profile, sources_url, streams, activity.calories, recent_backward_s)
    return replace(result, remark=found.remark)


# A made-up session for the landing page: three backward running intervals in a tempo run, 70 kg.
_EXAMPLE_EFFORTS = (
    Effort(600.0, 690.0, 210.0, 90.0, 262, 0.95, "stream", "run"),
    Effort(1200.0, 1275.0, 180.0, 75.0, 221, 0.95, "stream", "run"),
    Effort(1800.0, 1890.0, 205.0, 90.0, 260, 0.95, "stream", "run"),
)


def example_note(sources_url: str) -> str:
    """The note Backstride would write for a made-up session, computed by the real model."""
    profile = AthleteProfile(70.0, "settings")
    result = assess(list(_EXAMPLE_EFFORTS), profile, sources_url, host_calories=412.0)
    return result.note.text if result.note else ""
