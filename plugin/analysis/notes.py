"""The note Backstride writes into an activity's description, and how it is merged into the athlete's text.

A note is a block of plain-text lines: the first starts with NOTE_START, the last starts with NOTE_END and
links to the installation's public page of sources. Merging is idempotent and never touches the athlete's
own text; a block the athlete edited (a marker without its partner) makes merge_note refuse, so we never
overwrite their words or leave a second note.

Every number in a note comes from ../shared/SCIENCE.md (see energy.py, knee.py and steps.py for the
sources). A compact note is at most NOTE_MAX_LINES lines and NOTE_MAX_CHARS characters: headline, energy,
one myth answered (or the careful-start tip), and the sources line. A detailed note adds lines with new
figures only: the host's own calories against ours, the kneecap, and the myth when the tip took its place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from plugin.analysis import energy, knee, steps
from plugin.domain import AthleteProfile, Effort, Gait, Note, main_gait

# Markers are the same in every language: they are how we find our own block again.
NOTE_START = "⟲ Backstride"
NOTE_END = "— Backstride · sources:"
# The end line of notes written before the sources page existed: still ours, found and replaced.
LEGACY_NOTE_END = "— Backstride · backward-running notes with sources"

# Unit conversions (international yard and pound, 1959).
M_PER_MILE = 1609.344
KG_PER_LB = 0.45359237

# "100 backward steps = 1,000 forward steps": the viral claim's ratio.
MYTH_STEPS_CLAIM_RATIO = 10
# Below this many steps a personal "your N steps" answer says nothing; use the general one.
MYTH_MIN_STEPS = 10
# "Up to 50% more calories" (running) and "20% more calories" (walking): the claims the energy answers.
MYTH_CALORIE_CLAIM_RUN = 50
MYTH_CALORIE_CLAIM_WALK = 20
# "One lap backward = six laps forward": answered for efforts on a track, which we take to be efforts that
# are each within TRACK_TOLERANCE of a whole number of 400-m laps (one to four).
TRACK_LAP_M = 400.0
TRACK_TOLERANCE = 0.05
TRACK_MAX_LAPS = 4

# The careful-start tip: shown when this activity's backward time is at least this long and at least as much
# as the athlete's whole backward time over the previous 7 days (their weekly backward volume doubles or
# more). A product rule, not a study result: SCIENCE.md's guidance is to build up gradually, walking
# backward before running it, and to see a clinician first with balance or vestibular problems.
CAREFUL_START_MIN_S = 300.0
RECENT_DAYS = 7

# A compact note, the sources line included: read in five seconds on a phone.
NOTE_MAX_LINES = 4
NOTE_MAX_CHARS = 320
# Per km "about the same" within this share.
SAME_SHARE = 0.05

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "effort_one": "1 backward effort",
        "effort_many": "{n} backward efforts",
        "walk_one": "1 backward walk",
        "walk_many": "{n} backward walks",
        "distance_km": "{value} km",
        "distance_mi": "{value} mi",
        "in_duration": " in {duration}",
        "and_duration": ", {duration}",
        "steps_one": ", {n} step",
        "steps_many": ", {n} steps",
        "headline": "{start}: {what}{distance}{duration}{steps}.",
        "energy": "Energy: about {kcal} kcal ({low}–{high}), {more} more than forward{note}.",
        "energy_point": "Energy: about {kcal} kcal, {more} more than forward{note}.",
        "under_one": "under 1",
        "note_walk": "; walking: less sure",
        "note_time": "; from time alone",
        "note_weight": "; {weight} assumed",
        "weight_kg": "{value} kg",
        "weight_lb": "{value} lb",
        "unit_km": "km",
        "unit_mi": "mile",
        "host_part": "The {calories} kcal shown likely assume forward motion; with the backward parts "
        "counted, about {total} ({low}–{high}).",
        "host_whole": "The {calories} kcal shown likely assume forward motion; the figure above counts "
        "going backward.",
        "knee_less": "Kneecap: about {pct}% less peak compression per step than forward at the same speed "
        "(20-runner average, not every runner){per_km}.",
        "knee_alike": "Kneecap: at this slow pace, about the same per step as forward{per_km}.",
        "per_km_more": "; with your steps, about {pct}% more per {unit}",
        "per_km_less": "; with your steps, about {pct}% less per {unit}",
        "per_km_same": "; with your steps, about the same per {unit}",
        "myth_steps": "Myth: 100 backward steps ≠ 1,000 forward. Your {steps} equal about {low}–{high} "
        "forward steps of energy.",
        "myth_steps_general": "Myth: 100 backward steps ≠ 1,000 forward; they equal about {low}–{high} "
        "forward steps of energy.",
        "myth_lap": "Myth: one lap backward ≠ six forward; it costs about {low}–{high} forward laps.",
        "myth_calories": "Myth: “{claim}% more calories”? Here about {pct}% more than forward.",
        "careful_run": "More backward than usual: build up slowly, walk it before you run it. Dizzy or "
        "unsteady? See a clinician.",
        "careful_walk": "More backward than usual: build up slowly, on flat clear ground. Dizzy or unsteady? "
        "See a clinician.",
        "sources": "{end} {url}",
    },
}


def _t(lang: str, key: str, **values: object) -> str:
    """One user-facing string, in lang when we have it, else English."""
    table = STRINGS.get(lang, STRINGS["en"])
    template = table.get(key, STRINGS["en"][key])
    return template.format(**values)


def _int(n: float) -> str:
    return f"{n:,}"


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def _round_steps(x: float) -> int:
    """Step counts are estimates: whole steps below 1,000, nearest ten above."""
    if x >= 1000:
        return _round_half_up(x / 10) * 10
    return _round_half_up(x)


def format_duration(seconds: float) -> str:
    """m:ss, or h:mm:ss from an hour, rounded half up."""
    s = _round_half_up(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


@dataclass(frozen=True)
class NoteFacts:
    """What a note may say, computed once (summary.py) and shared with `analyze --json`.

    energy: None when an effort cannot be priced. host_calories: the host's own kcal for the whole
    activity, whose method is unpublished. recent_backward_s: the athlete's backward time in the
    RECENT_DAYS before this activity; None when unknown (a file on the command line). forward_step_m: the
    athlete's forward step in the same activity at the efforts' gait (steps.py); None when not measured.
    """

    efforts: tuple[Effort, ...]
    energy: energy.EnergyEstimate | None
    knee: knee.KneeSummary | None
    host_calories: float | None = None
    recent_backward_s: float | None = None
    forward_step_m: float | None = None

    @property
    def steps(self) -> int | None:
        """Steps only when every effort has a count: a partial sum would understate and feed the myth line."""
        counts = [e.steps for e in self.efforts]
        if any(c is None for c in counts):
            return None
        total = sum(c for c in counts if c is not None)
        return total if total > 0 else None

    @property
    def backward_s(self) -> float:
        return sum(max(e.duration_s, 0.0) for e in self.efforts)

    @property
    def distance_m(self) -> float:
        return sum(max(e.distance_m, 0.0) for e in self.efforts)

    @property
    def walking(self) -> bool:
        """Every effort a walk with a distance to show it (a time-only effort's gait is not known)."""
        return all(e.gait == "walk" and e.distance_m > 0 for e in self.efforts)

    @property
    def gait(self) -> Gait:
        """The gait of most of the backward time (walking when neither is most)."""
        return main_gait(self.efforts) or "walk"


def _format_weight(weight_kg: float, profile: AthleteProfile, lang: str) -> str:
    if profile.units == "imperial":
        return _t(lang, "weight_lb", value=_int(_round_half_up(weight_kg / KG_PER_LB)))
    value = f"{weight_kg:.1f}".removesuffix(".0")
    return _t(lang, "weight_kg", value=value)


def _headline(facts: NoteFacts, profile: AthleteProfile, lang: str) -> str:
    n = len(facts.efforts)
    kind = "walk" if facts.walking else "effort"
    what = _t(lang, f"{kind}_one") if n == 1 else _t(lang, f"{kind}_many", n=n)
    distance = ""
    if facts.distance_m > 0:
        if profile.units == "imperial":
            distance = ", " + _t(lang, "distance_mi", value=f"{facts.distance_m / M_PER_MILE:,.2f}")
        else:
            distance = ", " + _t(lang, "distance_km", value=f"{facts.distance_m / 1000:,.2f}")
    duration = ""
    if _round_half_up(facts.backward_s) > 0:
        key = "in_duration" if distance else "and_duration"
        duration = _t(lang, key, duration=format_duration(facts.backward_s))
    steps_text = ""
    if facts.steps is not None:
        shown = _round_steps(facts.steps)
        steps_text = _t(lang, "steps_one" if shown == 1 else "steps_many", n=_int(shown))
    return _t(
        lang, "headline", start=NOTE_START, what=what, distance=distance, duration=duration, steps=steps_text
    )


def _kcal_text(kcal: float, lang: str) -> str:
    """Whole kcal; "under 1" rather than a 0 that reads as "no difference"."""
    rounded = _round_half_up(kcal)
    return _int(rounded) if rounded >= 1 else _t(lang, "under_one")


def _energy_line(facts: NoteFacts, profile: AthleteProfile, lang: str) -> str | None:
    est = facts.energy
    if est is None or _round_half_up(est.kcal) < 1:
        return None
    notes = []
    if est.basis == "time":
        notes.append(_t(lang, "note_time"))
    elif est.less_certain:
        notes.append(_t(lang, "note_walk"))
    if profile.weight_source == "default":
        notes.append(_t(lang, "note_weight", weight=_format_weight(profile.weight_kg, profile, lang)))
    note = "".join(notes)
    low, high = _round_half_up(est.kcal_low), _round_half_up(est.kcal_high)
    # A range that rounds to one number ("4–4") says nothing: show the figure alone.
    return _t(
        lang,
        "energy" if low != high else "energy_point",
        kcal=_int(_round_half_up(est.kcal)),
        low=_int(low),
        high=_int(high),
        more=_kcal_text(est.extra_kcal, lang),
        note=f" ({note.removeprefix('; ')})" if note else "",
    )


def _host_calories_line(facts: NoteFacts, lang: str) -> str | None:
    """The host's figure against ours, so that the two agree: its method is unpublished and likely assumes
    forward motion. For a whole-activity effort our figure is the backward-aware one; for parts, the host's
    figure plus what going backward added."""
    est, calories = facts.energy, facts.host_calories
    if est is None or calories is None or not math.isfinite(calories) or _round_half_up(calories) < 1:
        return None
    if any(e.source == "whole" for e in facts.efforts):
        return _t(lang, "host_whole", calories=_int(_round_half_up(calories)))
    # A host figure below our forward cost of the backward parts alone is counted some other way (net of
    # rest, or a partial recording): adding to it would mislead.
    if calories < est.kcal_if_forward or _round_half_up(est.extra_kcal) < 1:
        return None
    return _t(
        lang,
        "host_part",
        calories=_int(_round_half_up(calories)),
        total=_int(_round_half_up(calories + est.extra_kcal)),
        low=_int(_round_half_up(calories + est.extra_low)),
        high=_int(_round_half_up(calories + est.extra_high)),
    )


def _knee_line(facts: NoteFacts, profile: AthleteProfile, lang: str) -> str | None:
    summary = facts.knee
    if summary is None:
        return None
    per_km = ""
    if summary.per_km_change is not None:
        unit = _t(lang, "unit_mi" if profile.units == "imperial" else "unit_km")
        pct = _round_half_up(abs(summary.per_km_change) * 100)
        if abs(summary.per_km_change) < SAME_SHARE:
            per_km = _t(lang, "per_km_same", unit=unit)
        else:
            key = "per_km_more" if summary.per_km_change > 0 else "per_km_less"
            per_km = _t(lang, key, pct=pct, unit=unit)
    if summary.per_step == "less":
        return _t(lang, "knee_less", pct=_round_half_up(-summary.pfj_per_step_change * 100), per_km=per_km)
    return _t(lang, "knee_alike", per_km=per_km)


def _effort_speed(facts: NoteFacts) -> float:
    """The efforts' mean speed; a time-only effort is priced at energy.TIME_ONLY_SPEED_M_S."""
    if facts.distance_m > 0 and facts.backward_s > 0:
        return facts.distance_m / facts.backward_s
    return energy.TIME_ONLY_SPEED_M_S


def step_worth(facts: NoteFacts) -> tuple[float, float]:
    """What one backward step is worth in the athlete's forward steps of energy, low and high: the backward
    factor per metre times the backward step's length over the forward one (measured in this activity, else
    SCIENCE.md's 60-80%)."""
    low, _, high = energy.backward_factor(facts.gait, _effort_speed(facts))
    ratio = steps.step_ratio(steps.backward_step_m(facts.efforts), facts.forward_step_m)
    ratio_low, ratio_high = (ratio, ratio) if ratio is not None else steps.ASSUMED_STEP_RATIO
    return low * ratio_low, high * ratio_high


def _on_track(efforts: tuple[Effort, ...]) -> bool:
    for e in efforts:
        laps = round(e.distance_m / TRACK_LAP_M)
        if not 1 <= laps <= TRACK_MAX_LAPS or abs(e.distance_m - laps * TRACK_LAP_M) > TRACK_TOLERANCE * (
            laps * TRACK_LAP_M
        ):
            return False
    return bool(efforts)


def _myth_line(facts: NoteFacts, lang: str) -> str:
    """One viral claim, the one this activity answers best: the lap claim on a track, the step claim when
    the steps were counted, the calorie claim with the athlete's own percentage otherwise."""
    gait = facts.gait
    est = facts.energy
    if _on_track(facts.efforts):
        low, _, high = energy.backward_factor(gait, _effort_speed(facts))
        return _t(lang, "myth_lap", low=f"{low:.1f}", high=f"{high:.1f}")
    low, high = step_worth(facts)
    if facts.steps is not None and facts.steps >= MYTH_MIN_STEPS:
        return _t(
            lang,
            "myth_steps",
            steps=_int(_round_steps(facts.steps)),
            low=_int(_round_steps(facts.steps * low)),
            high=_int(_round_steps(facts.steps * high)),
        )
    if est is not None and est.basis == "distance" and est.kcal_if_forward > 0:
        claim = MYTH_CALORIE_CLAIM_RUN if gait == "run" else MYTH_CALORIE_CLAIM_WALK
        return _t(lang, "myth_calories", claim=claim, pct=_round_half_up(est.extra_share * 100))
    return _t(lang, "myth_steps_general", low=_round_half_up(100 * low), high=_round_half_up(100 * high))


def volume_jumped(backward_s: float, recent_backward_s: float | None) -> bool:
    """True when this activity at least doubles the athlete's backward time of the previous RECENT_DAYS."""
    if recent_backward_s is None or not math.isfinite(backward_s):
        return False
    return backward_s >= CAREFUL_START_MIN_S and backward_s >= max(recent_backward_s, 0.0)


def sources_line(sources_url: str) -> str:
    return _t("en", "sources", end=NOTE_END, url=sources_url)


def build_note(facts: NoteFacts, profile: AthleteProfile, sources_url: str, lang: str = "en") -> Note | None:
    """The plain-text note for these facts, in the athlete's units and note style; None when no effort.

    compact: headline, energy, the myth (or the careful-start tip in its place), and the sources line.
    detailed adds the host's calories against ours, the kneecap (running only) and the displaced myth.
    """
    if not facts.efforts:
        return None
    myth = _myth_line(facts, lang)
    tip = None
    if volume_jumped(facts.backward_s, facts.recent_backward_s):
        tip = _t(lang, "careful_walk" if facts.walking else "careful_run")
    sources = sources_line(sources_url)
    core = [line for line in (_headline(facts, profile, lang), _energy_line(facts, profile, lang)) if line]
    third = tip or myth
    # Extreme figures (a day-long walk) can make the third line too long for the compact limit: it goes.
    if len("\n".join([*core, third, sources])) <= NOTE_MAX_CHARS:
        core.append(third)
    extra: list[str | None] = []
    if profile.note_style == "detailed":
        extra = [_host_calories_line(facts, lang), _knee_line(facts, profile, lang)]
        extra += [line for line in (tip, myth) if line and line not in core]
    lines = [*core, *(line for line in extra if line), sources]
    return Note(text="\n".join(lines), efforts=facts.efforts)


# ---------------------------------------------------------------------------------------------------------
# Finding and merging the block

LineKind = Literal["start", "end", "blank", "text"]


@dataclass(frozen=True)
class _Line:
    start: int  # offset of the first character
    end: int  # offset just past the content, before "\r\n" or "\n": the athlete's line ending is kept
    kind: LineKind


@dataclass(frozen=True)
class _Scan:
    lines: list[_Line]
    blocks: list[tuple[int, int]]  # (start line index, end line index) of complete blocks
    dangling_starts: list[int]
    dangling_ends: list[int]

    @property
    def damaged(self) -> bool:
        return bool(self.dangling_starts or self.dangling_ends)


def _split_lines(text: str) -> list[_Line]:
    # Only "\n" ends a line (with an optional "\r" before it, as Strava may send): other Unicode breaks are
    # the athlete's text, and a marker after them is not at the start of a line.
    lines: list[_Line] = []
    pos = 0
    while True:
        nl = text.find("\n", pos)
        stop = len(text) if nl == -1 else nl
        end = stop - 1 if stop > pos and text[stop - 1] == "\r" else stop
        content = text[pos:end]
        kind: LineKind
        if content.startswith(NOTE_START):
            kind = "start"
        elif content.startswith(NOTE_END) or content.rstrip() == LEGACY_NOTE_END:
            kind = "end"
        elif not content.strip():
            kind = "blank"
        else:
            kind = "text"
        lines.append(_Line(pos, end, kind))
        if nl == -1:
            return lines
        pos = nl + 1


def _scan(text: str) -> _Scan:
    lines = _split_lines(text)
    blocks: list[tuple[int, int]] = []
    dangling_starts: list[int] = []
    dangling_ends: list[int] = []
    open_start: int | None = None
    for i, line in enumerate(lines):
        if line.kind == "start":
            if open_start is not None:
                dangling_starts.append(open_start)
            open_start = i
        elif line.kind == "end":
            if open_start is None:
                dangling_ends.append(i)
            else:
                blocks.append((open_start, i))
                open_start = None
    if open_start is not None:
        dangling_starts.append(open_start)
    return _Scan(lines, blocks, dangling_starts, dangling_ends)


def _span(scan: _Scan, first: int, last: int) -> tuple[int, int]:
    return scan.lines[first].start, scan.lines[last].end


def _remove_span(text: str, start: int, end: int) -> str:
    """Cut text[start:end] (whole lines) and the separator that joined it to the athlete's text."""
    before, after = text[:start], text[end:]
    # "\n\n" first: it is what merge_note adds; "\r\n\r\n" is the same after a host rewrote line endings.
    for sep in ("\n\n", "\r\n\r\n"):
        if before.endswith(sep):
            return before[: -len(sep)] + after
    if not before:
        for sep in ("\n\n", "\r\n\r\n"):
            if after.startswith(sep):
                return after[len(sep) :]
    for brk in ("\r\n", "\n"):
        if after.startswith(brk):
            return before + after[len(brk) :]
    return before + after


def _validate_note_text(note_text: str) -> None:
    scan = _scan(note_text)
    if scan.damaged or scan.blocks != [(0, len(scan.lines) - 1)]:
        raise ValueError("note_text must be one block: first line starts with NOTE_START, last is NOTE_END")


def strip_note(description: str) -> str:
    """The athlete's own text: every Backstride block removed, and what is left of a damaged one too.

    For a description merge_note wrote, strip_note(merge_note(d, n)) == d. A damaged block (a marker
    without its partner) is removed up to the nearest blank line, so our words never count as the athlete's.
    """
    text = description or ""
    scan = _scan(text)
    ranges = list(scan.blocks)
    kinds = [line.kind for line in scan.lines]
    for i in scan.dangling_starts:
        j = i
        while j + 1 < len(kinds) and kinds[j + 1] == "text":
            j += 1
        ranges.append((i, j))
    for j in scan.dangling_ends:
        i = j
        while i - 1 >= 0 and kinds[i - 1] == "text":
            i -= 1
        ranges.append((i, j))
    for first, last in sorted(ranges, reverse=True):
        text = _remove_span(text, *_span(scan, first, last))
    return text


def merge_note(description: str | None, note_text: str | None) -> str | None:
    """The description with our block set to note_text (None: removed); None when our block is damaged.

    The athlete's text is kept byte for byte: an existing block is replaced in place, a new one is appended
    after a blank line, and removing it also removes that blank line.
    """
    if note_text is not None:
        _validate_note_text(note_text)
    text = description or ""
    scan = _scan(text)
    if scan.damaged:
        return None
    if not scan.blocks:
        if note_text is None:
            return text
        return note_text if not text else text + "\n\n" + note_text
    first, *extra = scan.blocks
    # Extra blocks lie after the first: removing them last to first keeps the earlier offsets valid.
    for block in reversed(extra):
        text = _remove_span(text, *_span(scan, *block))
    start, end = _span(scan, *first)
    if note_text is None:
        return _remove_span(text, start, end)
    return text[:start] + note_text + text[end:]


def has_note(description: str | None) -> bool:
    """True when the description holds a Backstride block or any part of one (a start or end line)."""
    if not description:
        return False
    return any(line.kind in ("start", "end") for line in _split_lines(description))
