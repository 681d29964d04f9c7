"""The note Backstride writes into an activity's description, and how it is merged into the athlete's text.

A note is a block of plain-text lines: the first starts with NOTE_START, the last is exactly NOTE_END. Merging
is idempotent and never touches the athlete's own text; a block the athlete edited (a marker without its
partner) makes merge_note refuse, so we never overwrite their words or leave a second note.
Every number in a note comes from ../shared/SCIENCE.md (see energy.py and knee.py for the sources).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from plugin.analysis import energy, knee
from plugin.domain import AthleteProfile, Effort, Note

# Markers are the same in every language: they are how we find our own block again.
NOTE_START = "⟲ Backstride"
NOTE_END = "— Backstride · backward-running notes with sources"

# Unit conversions (international yard and pound, 1959).
M_PER_MILE = 1609.344
KG_PER_LB = 0.45359237

# "100 backward steps = 1,000 forward steps": the viral claim's ratio, which the note answers.
MYTH_STEPS_CLAIM_RATIO = 10
# Energy per step = cost per metre x step length: 100 backward running steps are worth roughly 100-130
# forward steps of energy; generous backward-walking assumptions give about 140 (SCIENCE.md, "The viral
# claims", from Wright & Weyand 2001 and Rasica et al. 2020 with the shorter backward step).
STEP_WORTH_LOW = 1.0
STEP_WORTH_HIGH_RUN = 1.3
STEP_WORTH_HIGH_WALK = 1.4
# Below this many steps a personal "your N steps" answer says nothing; use the general one.
MYTH_MIN_STEPS = 10
# "One lap backward = six laps forward": about 28 kcal net forward vs 36-38 backward per 400 m for 70 kg
# (SCIENCE.md, "The viral claims"): a backward lap is worth the backward running factor in forward laps.

# The careful-start tip: shown when this activity's backward time is at least this long and at least as much
# as the athlete's whole backward time over the previous 7 days (their weekly backward volume doubles or
# more). A product rule, not a study result: SCIENCE.md's guidance is to build up gradually, walking
# backward before running it, and to see a clinician first with balance or vestibular problems.
CAREFUL_START_MIN_S = 300.0
RECENT_DAYS = 7

# A note is at most this long: it shares the description with the athlete's own words. Lines beyond the
# core (headline, energy, myth, tip) are dropped first if a note would exceed it.
NOTE_MAX_LINES = 7  # including the headline and the attribution line
NOTE_MAX_CHARS = 900

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
        "steps_one": ", about {n} step",
        "steps_many": ", about {n} steps",
        "headline": "{start}: {what}{distance}{duration}{steps}.",
        "energy": "Energy: about {kcal} kcal ({low}–{high}{caveat}), {more} kcal more than {baseline}"
        "{assumption}.",
        "energy_point": "Energy: about {kcal} kcal{caveat_alone}, {more} kcal more than {baseline}"
        "{assumption}.",
        "under_one": "under 1",
        "baseline_distance": "the same distance forward",
        "baseline_time": "walking forward as long",
        "caveat_walk": "; walking backward: less certain",
        "caveat_time": "; from time alone, no distance",
        "assumption": " (assuming {weight}; set your weight for a better figure)",
        "weight_kg": "{value} kg",
        "weight_lb": "{value} lb",
        "unit_km": "km",
        "unit_mi": "mile",
        "host_calories": "The {calories} kcal shown for this activity assume forward motion; going backward "
        "added about {extra} ({low}–{high}).",
        "host_calories_point": "The {calories} kcal shown for this activity assume forward motion; going "
        "backward added about {extra}.",
        "knee_running": "Kneecap: about {pct}% less compression per step than running forward at the same "
        "speed; per {unit} about the same (more, shorter steps).",
        "knee_alike": "Kneecap: at this pace backward and forward load the kneecap about alike.",
        "myth_steps": "Myth: 100 backward steps ≠ 1,000 forward steps. Your {steps} backward steps were "
        "worth about {low}–{high} forward steps of energy, not {claim}.",
        "myth_steps_general": "Myth: 100 backward steps ≠ 1,000 forward steps; they are worth about "
        "{low}–{high} forward steps of energy.",
        "myth_lap": "Myth: one lap backward ≠ six laps forward; a backward lap costs about {low}–{high} "
        "forward laps.",
        "careful_start": "More backward than usual: build up gradually, walk before you run it, on flat "
        "clear ground. Balance problems, dizziness or a recent operation? Ask a clinician first.",
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

    energy: None when an effort cannot be priced (no duration). host_calories: the host's own kcal for the
    whole activity, which assumes forward motion. recent_backward_s: the athlete's backward time in the
    RECENT_DAYS before this activity; None when unknown (a file on the command line).
    """

    efforts: tuple[Effort, ...]
    energy: energy.EnergyEstimate | None
    knee: knee.KneeSummary | None
    host_calories: float | None = None
    recent_backward_s: float | None = None

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


def _format_weight(weight_kg: float, profile: AthleteProfile, lang: str) -> str:
    if profile.units == "imperial":
        return _t(lang, "weight_lb", value=_int(_round_half_up(weight_kg / KG_PER_LB)))
    value = f"{weight_kg:.1f}".removesuffix(".0")
    return _t(lang, "weight_kg", value=value)


def _headline(facts: NoteFacts, profile: AthleteProfile, lang: str) -> str:
    efforts = facts.efforts
    n = len(efforts)
    all_walks = all(e.gait == "walk" for e in efforts)
    kind = "walk" if all_walks else "effort"
    what = _t(lang, f"{kind}_one") if n == 1 else _t(lang, f"{kind}_many", n=n)
    distance_m = sum(max(e.distance_m, 0.0) for e in efforts)
    distance = ""
    if distance_m > 0:
        if profile.units == "imperial":
            distance = ", " + _t(lang, "distance_mi", value=f"{distance_m / M_PER_MILE:,.2f}")
        else:
            distance = ", " + _t(lang, "distance_km", value=f"{distance_m / 1000:,.2f}")
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
    assumption = ""
    if profile.weight_source == "default":
        assumption = _t(lang, "assumption", weight=_format_weight(profile.weight_kg, profile, lang))
    caveat = ""
    if est.basis == "time":
        caveat = _t(lang, "caveat_time")
    elif est.less_certain:
        caveat = _t(lang, "caveat_walk")
    low, high = _round_half_up(est.kcal_low), _round_half_up(est.kcal_high)
    # A range that rounds to one number ("4–4") says nothing: show the figure alone, caveat in brackets.
    key = "energy" if low != high else "energy_point"
    return _t(
        lang,
        key,
        kcal=_int(_round_half_up(est.kcal)),
        low=_int(low),
        high=_int(high),
        caveat=caveat,
        caveat_alone=f" ({caveat.removeprefix('; ')})" if caveat else "",
        more=_kcal_text(est.extra_kcal, lang),
        baseline=_t(lang, "baseline_time" if est.basis == "time" else "baseline_distance"),
        assumption=assumption,
    )


def _host_calories_line(facts: NoteFacts, lang: str) -> str | None:
    est, calories = facts.energy, facts.host_calories
    if est is None or calories is None or not math.isfinite(calories):
        return None
    # A host figure below our forward cost of the backward part alone is counted some other way (net of
    # rest, or a partial recording): setting ours against it would mislead.
    if calories < est.kcal_if_forward or _round_half_up(calories) < 1:
        return None
    extra = _round_half_up(est.extra_kcal)
    if extra < 1:
        return None
    low = _round_half_up(est.kcal_low - est.kcal_if_forward)
    high = _round_half_up(est.kcal_high - est.kcal_if_forward)
    return _t(
        lang,
        "host_calories" if low != high else "host_calories_point",
        calories=_int(_round_half_up(calories)),
        extra=_int(extra),
        low=_int(low),
        high=_int(high),
    )


def _knee_line(facts: NoteFacts, profile: AthleteProfile, lang: str) -> str | None:
    summary = facts.knee
    if summary is None:
        return None
    change = summary.pfj_per_step_change
    if summary.per_distance == "about-same" and change is not None and change < 0:
        unit = _t(lang, "unit_mi" if profile.units == "imperial" else "unit_km")
        return _t(lang, "knee_running", pct=_round_half_up(-change * 100), unit=unit)
    return _t(lang, "knee_alike")


def _myth_line(facts: NoteFacts, lang: str) -> str:
    efforts, steps = facts.efforts, facts.steps
    high_factor = STEP_WORTH_HIGH_WALK if any(e.gait == "walk" for e in efforts) else STEP_WORTH_HIGH_RUN
    if steps is not None and steps >= MYTH_MIN_STEPS:
        shown = _round_steps(steps)
        return _t(
            lang,
            "myth_steps",
            steps=_int(shown),
            low=_int(_round_steps(steps * STEP_WORTH_LOW)),
            high=_int(_round_steps(steps * high_factor)),
            claim=_int(shown * MYTH_STEPS_CLAIM_RATIO),
        )
    if sum(max(e.distance_m, 0.0) for e in efforts) > 0:
        ranges = [energy.backward_factor_range(gait) for gait in {e.gait for e in efforts}]
        low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
        return _t(lang, "myth_lap", low=f"{low:.1f}", high=f"{high:.1f}")
    return _t(
        lang,
        "myth_steps_general",
        low=_round_half_up(100 * STEP_WORTH_LOW),
        high=_round_half_up(100 * high_factor),
    )


def volume_jumped(backward_s: float, recent_backward_s: float | None) -> bool:
    """True when this activity at least doubles the athlete's backward time of the previous RECENT_DAYS."""
    if recent_backward_s is None or not math.isfinite(backward_s):
        return False
    return backward_s >= CAREFUL_START_MIN_S and backward_s >= max(recent_backward_s, 0.0)


def build_note(facts: NoteFacts, profile: AthleteProfile, lang: str = "en") -> Note | None:
    """The plain-text note for these facts, in the athlete's units and note style; None when no effort.

    compact: headline, energy, myth (and the careful-start tip when it applies). detailed adds the host's own
    calorie figure against ours and the kneecap line. Never more than NOTE_MAX_LINES and NOTE_MAX_CHARS.
    """
    if not facts.efforts:
        return None
    # (line, optional): optional lines go first when the note would be too long.
    candidates: list[tuple[str | None, bool]] = [
        (_headline(facts, profile, lang), False),
        (_energy_line(facts, profile, lang), False),
    ]
    if profile.note_style == "detailed":
        candidates += [(_host_calories_line(facts, lang), True), (_knee_line(facts, profile, lang), True)]
    candidates.append((_myth_line(facts, lang), False))
    if volume_jumped(facts.backward_s, facts.recent_backward_s):
        candidates.append((_t(lang, "careful_start"), False))
    lines = [(line, optional) for line, optional in candidates if line is not None]

    def fits(kept: list[tuple[str, bool]]) -> bool:
        text = "\n".join([line for line, _ in kept] + [NOTE_END])
        return len(kept) + 1 <= NOTE_MAX_LINES and len(text) <= NOTE_MAX_CHARS

    while not fits(lines) and any(optional for _, optional in lines):
        last_optional = max(i for i, (_, optional) in enumerate(lines) if optional)
        del lines[last_optional]
    text = "\n".join([line for line, _ in lines] + [NOTE_END])
    return Note(text=text, efforts=facts.efforts)


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
        elif content.rstrip() == NOTE_END:
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
