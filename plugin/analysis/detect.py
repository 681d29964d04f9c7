"""Find backward ("retro") efforts in an activity: from the athlete's words, lap names, and the streams.

Three kinds of evidence, strongest first:

- a lap the athlete named backward ("Retro 2", "BWD") is an effort of exactly that lap;
- a tag in the title or description ("#retro", "3x200m backwards") says there is backward locomotion
  somewhere: the streams then say where (and a count in the words says how many efforts to look for); with
  no usable streams, or none that stand out, the whole activity is one effort;
- with no words at all (mode "auto"), the streams alone, and only for a segment that is very clearly backward.

The stream signal (SCIENCE.md, "Speeds and stride"): backward running is slower than the athlete's own forward
running around it, with a step frequency that does not fall, so the step (speed / step frequency) is much
shorter than the forward step; heart rate does not fall with the speed as it does on a recovery jog. A slow
forward shuffle, a climb, a treadmill or a pause can look similar, and a note on a forward run is public and
wrong: precision comes first. docs/detection.md explains the method, its thresholds and its blind spots.

Pure code: plain Python lists, one pass per derived series, so a 6-hour 1 Hz recording takes a few tens of
milliseconds (benchmarks/detection_speed.py).
"""

from __future__ import annotations

import math
import re
import unicodedata
from bisect import bisect_left, bisect_right, insort
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, compress, repeat
from operator import and_, gt, le, mul, sub, truediv
from typing import Literal

from plugin.domain import Activity, Effort, Gait, Lap, Streams

# First-version confidences, set by hand; to be replaced by values measured on labelled activities.
LAP_CONFIDENCE_TAGGED = 0.9  # a lap named backward inside an activity that is also tagged
LAP_CONFIDENCE = 0.8  # a lap named backward, no tag on the activity
# A tagged activity with streams or distance may still hold forward parts (warm-up, the way home).
WHOLE_CONFIDENCE_MEASURED = 0.85
# A tagged manual or trainer session is usually one kind of effort from start to finish.
WHOLE_CONFIDENCE_MANUAL = 0.9

# Backward walk-to-run transition at 1.63 +/- 0.11 m/s (Hreljac et al. 2005, J Sports Sci Med 4:446), and a
# cadence above ~140 steps/min (70 per leg, Strava's unit) says running at any speed (SCIENCE.md).
RUN_SPEED_M_S = 1.6
RUN_CADENCE_PER_LEG = 70.0


@dataclass(frozen=True)
class TagMatch:
    """An explicit signal that the athlete went backward; gait None when the words do not say which."""

    gait: Gait | None
    phrase: str


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    # English "backward(s)" / "reverse" can describe the route ("ran my loop backwards"); such rules mark
    # that word with a group named "mod" and are checked against route nouns around it.
    about_route: bool = False
    # Idioms that share the words but not the meaning ("faire marche arrière" = to back out).
    reject_before: re.Pattern[str] | None = None


def _rule(pattern: str, about_route: bool = False, reject_before: str | None = None) -> _Rule:
    return _Rule(
        regex=re.compile(pattern, re.IGNORECASE),
        about_route=about_route,
        reject_before=re.compile(reject_before, re.IGNORECASE) if reject_before else None,
    )


# Latin-script words must stand alone: "retrograde", "metro running" and "#retro2024" do not match.
_B = r"(?<!\w)"
_E = r"(?!\w)"
_EN_RUN = r"run|runs|running|ran|jog|jogs|jogging|jogged"
_EN_WALK = r"walk|walks|walking|walked"
# People drop the umlaut or spell it out: rückwärts, ruckwarts, rueckwaerts.
_RUECK = r"r(?:ü|ue|u)ckw(?:ä|ae|a)rts"
_ATRAS = r"atr[aá]s"

_RULES: tuple[_Rule, ...] = (
    # --- English ---
    _rule(rf"{_B}#(?:retro|backwards?)(?:(?P<run>running|run|jogging|jog)|(?P<walk>walking|walk)){_E}"),
    _rule(rf"{_B}#retro{_E}"),
    _rule(rf"{_B}#(?P<mod>backwards?){_E}", about_route=True),
    _rule(rf"{_B}#reverse(?:(?P<run>running|run)|(?P<walk>walking|walk)){_E}"),
    _rule(rf"{_B}#?deadmill{_E}"),
    _rule(rf"{_B}(?P<mod>backwards?)[\s-]+(?:(?P<run>{_EN_RUN})|(?P<walk>{_EN_WALK})){_E}", about_route=True),
    _rule(rf"{_B}(?:(?P<run>{_EN_RUN})|(?P<walk>{_EN_WALK}))\s+(?P<mod>backwards?){_E}", about_route=True),
    _rule(rf"{_B}retro[\s-]*(?:(?P<run>running|runs|run|jogging|jog)|(?P<walk>walking|walks|walk)){_E}"),
    # Not "reverse run": "a reverse run of the loop" is about the route.
    _rule(rf"{_B}(?P<mod>reverse)[\s-]+(?:(?P<run>running|jogging)|(?P<walk>walking)){_E}", about_route=True),
    # Not "run/ran in reverse": "the course is run in reverse", "the race ran in reverse" are about the route.
    _rule(
        rf"{_B}(?:(?P<run>running|jogging)|(?P<walk>walking))\s+(?P<mod>in\s+reverse){_E}", about_route=True
    ),
    # --- German ---
    _rule(
        rf"{_B}{_RUECK}[\s-]*(?:(?P<run>lauf(?:en|e|t|st)?|gelaufen|jogg(?:en|e|t)|gejoggt|renn(?:en|e|t)?"
        rf"|gerannt)|(?P<walk>geh(?:en|e|t|st)?|gegangen)){_E}"
    ),
    # --- French ---
    _rule(rf"{_B}(?P<run>course)\s+(?:en\s+)?arri[eè]re{_E}"),
    _rule(
        rf"{_B}(?:(?P<run>courir|cours|court|courons|courez|courent|couru|course)"
        rf"|(?P<walk>marcher|marche|marches|marchons|marchez|marchent|march[ée]))\s+[aà]\s+reculons{_E}"
    ),
    # "faire marche arrière" means to back out or turn back, not to walk backward.
    _rule(
        rf"{_B}(?P<walk>marche)\s+arri[eè]re{_E}",
        reject_before=rf"{_B}(?:faire|fai[st]|faisons|faites|font|fer\w*|fi[st]|faisant)\s*$",
    ),
    # --- Spanish --- ("camino" left out: also the noun "path")
    _rule(
        rf"{_B}(?:(?P<run>correr|corr[ií]|corri[oó]|corriendo|corro|carrera|trotar|trot[eé]|trotando)"
        rf"|(?P<walk>caminar|camin[eé]|camin[oó]|caminando|caminata))\s+hacia\s+{_ATRAS}{_E}"
    ),
    # "dar marcha atrás" means to back out, not to walk backward.
    _rule(
        rf"{_B}(?P<walk>marcha)\s+{_ATRAS}{_E}",
        reject_before=rf"{_B}(?:dar|d[ií]|di[oó]|doy|da|dan|damos|dieron|dando|dado|d[eé])\s*$",
    ),
    # --- Italian --- ("corso", "cammino" left out: also the nouns "course", "path")
    _rule(
        rf"{_B}(?:(?P<run>corsa|correre|corro|correndo)|(?P<walk>camminata|camminare|camminato|camminando))"
        rf"\s+all(?:['’ʼ]\s?|\s)indietro{_E}"
    ),
    # --- Portuguese --- ("caminho" left out: also the noun "path")
    _rule(
        rf"{_B}(?:(?P<run>correr|corri|correu|correndo|corro|corrida)"
        rf"|(?P<walk>caminhar|caminhei|caminhou|caminhando|caminhada|andar|andei|andando))\s+de\s+costas{_E}"
    ),
    _rule(rf"{_B}(?P<run>corrida)\s+para\s+tr[aá]s{_E}"),
    # --- Dutch --- ("lopen" is walking in standard Dutch but said of running too, so it names no gait)
    _rule(
        rf"{_B}achteruit[\s-]*(?:(?P<run>rennen|ren|rende|gerend)|(?P<walk>wandelen|wandel|wandelde|gewandeld)"
        rf"|lopen|loop|liep|gelopen){_E}"
    ),
    # --- Chinese --- (no word boundaries in CJK text; "摔倒走不了" = fell and could not walk, so a verb of
    # falling or knocking down before 倒 is not backward)
    _rule(r"(?<![摔跌绊絆滑推撞打放累晕暈扑撲])倒(?:着|著|退)?(?:(?P<run>跑)|(?P<walk>走))"),
    # --- Japanese --- (走 is "run" in Japanese)
    _rule(r"後ろ向き(?:に|で)?(?P<run>走)"),
    _rule(r"後ろ(?:向き)?(?:に|で)?(?P<walk>歩(?:き|く|いた|い)?)"),
    _rule(r"後ろ(?P<run>走り)"),
    # Not after other katakana: "カムバック走" is a comeback run.
    _rule(r"(?<![ァ-ヶー])バック(?P<run>走)"),
)

# Where the English modifier attaches to one of these, the route is reversed, not the runner.
_ROUTE_NOUNS = frozenset(
    {
        "loop", "loops", "route", "routes", "course", "courses", "lap", "laps", "circuit", "circuits",
        "track", "tracks", "trail", "trails", "path", "paths", "way", "ways", "direction", "directions",
        "parkrun", "parkruns", "segment", "segments", "block", "blocks",
    }
)  # fmt: skip
# "running in reverse order" is about a sequence, not the body.
_NOT_BODY_AFTER = _ROUTE_NOUNS | {"order"}
# "retro running shoes" is fashion; "reverse walking lunges" is a strength exercise.
_NOT_LOCOMOTION_AFTER = frozenset(
    {
        "shoe", "shoes", "trainers", "sneaker", "sneakers", "kit", "jersey", "shirt", "tee", "shorts",
        "outfit", "gear", "lunge", "lunges",
    }
)  # fmt: skip
# The route check looks this many words back, not across punctuation or a joining word, so
# "easy loop with backwards running drills" still counts.
_ROUTE_WINDOW_WORDS = 2
_CLAUSE_BREAK = re.compile(
    r"[.,;:!?()\[\]{}|/+\n]|(?<!\w)(?:and|then|with|plus|but|or|before|after|while|&)(?!\w)", re.IGNORECASE
)
_WORD = re.compile(r"\w+")
_NEXT_WORD = re.compile(r"[\s-]+(\w+)")
# "ran backwards and forwards" means to and fro.
_TO_AND_FRO = re.compile(r"\s*(?:and|&|n'?|or)\s+forwards?(?!\w)", re.IGNORECASE)

# Not "back": on an out-and-back run the laps are often named "Out" and "Back", and they are forward.
_LAP_LABEL = re.compile(
    rf"(?:backwards?|retro|bwd|{_RUECK}|arri[eè]re|{_ATRAS})(?:\s*[-#:.]?\s*\d+)?", re.IGNORECASE
)


def _words_before(text: str, pos: int) -> list[str]:
    segment = _CLAUSE_BREAK.split(text[:pos])[-1]
    return [w.lower() for w in _WORD.findall(segment)][-_ROUTE_WINDOW_WORDS:]


def _next_word(text: str, pos: int) -> str | None:
    m = _NEXT_WORD.match(text, pos)
    return m.group(1).lower() if m else None


def _accepted(rule: _Rule, text: str, m: re.Match[str]) -> bool:
    if rule.reject_before is not None and rule.reject_before.search(text[: m.start()]):
        return False
    if _next_word(text, m.end()) in _NOT_LOCOMOTION_AFTER:
        return False
    if rule.about_route:
        if _ROUTE_NOUNS.intersection(_words_before(text, m.start())):
            return False
        if _next_word(text, m.end("mod")) in _NOT_BODY_AFTER:
            return False
        if _TO_AND_FRO.match(text, m.end("mod")):
            return False
    return True


def _gait_of(m: re.Match[str]) -> Gait | None:
    groups = m.groupdict()
    if groups.get("run"):
        return "run"
    if groups.get("walk"):
        return "walk"
    return None


def find_tag(text: str) -> TagMatch | None:
    """The athlete's own words saying they ran or walked backward, or None.

    When several phrases match, the earliest one wins; if they name both gaits, gait is None so that speed
    and cadence decide.
    """
    if not text:
        return None
    # Compose accents so "ü" typed as u + combining diaeresis matches too.
    text = unicodedata.normalize("NFC", text)
    found: list[tuple[int, TagMatch]] = []
    for rule in _RULES:
        for m in rule.regex.finditer(text):
            if _accepted(rule, text, m):
                found.append((m.start(), TagMatch(gait=_gait_of(m), phrase=m.group(0))))
    if not found:
        return None
    found.sort(key=lambda item: item[0])
    gaits = {tag.gait for _, tag in found if tag.gait is not None}
    if len(gaits) == 1:
        return next(tag for _, tag in found if tag.gait is not None)
    earliest = found[0][1]
    return TagMatch(gait=None, phrase=earliest.phrase) if gaits else earliest


def lap_is_backward(name: str) -> TagMatch | None:
    """A lap name that says backward: any tag, or a bare label such as "Retro 2" or "BWD #3"."""
    tag = find_tag(name)
    if tag is not None:
        return tag
    label = unicodedata.normalize("NFC", name or "").strip()
    if label and _LAP_LABEL.fullmatch(label):
        return TagMatch(gait=None, phrase=label)
    return None


# --- counts in the athlete's words --------------------------------------------------------------------------

_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12,
}  # fmt: skip
_NUM = r"(?P<n>\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
# Not "reverse": "3 reverse intervals" can be a reversed order of intervals.
_BACK_WORD = rf"(?:#?retro|#?backwards?|bwd|{_RUECK})"
_MOVE = rf"(?:{_EN_RUN}|{_EN_WALK})"
_REPS = r"(?:intervals?|reps?|repeats?|repetitions?|efforts?|bouts?|sets?|segments?|sprints?|strides?)"
_AMOUNT = r"(?:\d+(?:[.,]\d+)?\s*(?:km|k|mi|m|secs?|s|mins?|'|\")?)"
_COUNT_RULES = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        # "3x200m retro", "4 x 1' backwards", "3x backward"
        rf"{_B}{_NUM}\s*[x×]\s*(?:{_AMOUNT}\s*)?(?:of\s+)?{_BACK_WORD}{_E}",
        # "3 retro intervals", "three backwards running reps"
        rf"{_B}{_NUM}\s+{_BACK_WORD}[\s-]*(?:{_MOVE}[\s-]+)?{_REPS}{_E}",
        # "#retro 3x200m", "backwards running 8x200"
        rf"{_B}{_BACK_WORD}[\s-]*(?:{_MOVE}[\s-]*)?(?:{_REPS}\s*)?:?\s*{_NUM}\s*[x×]",
    )
)
MAX_EXPECTED_EFFORTS = 20


def _count_phrase(text: str) -> tuple[int, str] | None:
    """How many backward efforts the athlete's words announce ("3x200m retro", "3 retro intervals"), with the
    phrase; None when no count is given. A count on a route ("did the loop 3x backwards") is no count."""
    if not text:
        return None
    text = unicodedata.normalize("NFC", text)
    for rule in _COUNT_RULES:
        for m in rule.finditer(text):
            if _ROUTE_NOUNS.intersection(_words_before(text, m.start())):
                continue
            raw = m.group("n").lower()
            count = _NUMBER_WORDS.get(raw) or int(raw)
            if 1 <= count <= MAX_EXPECTED_EFFORTS:
                return count, m.group(0)
    return None


def _activity_text(activity: Activity) -> str:
    # A newline keeps the route check from reading across name and description.
    return f"{activity.name or ''}\n{activity.description or ''}"


def _activity_tag(activity: Activity) -> TagMatch | None:
    text = _activity_text(activity)
    tag = find_tag(text)
    if tag is None:
        # "3 retro intervals" names backward efforts even without a tag phrase.
        counted = _count_phrase(text)
        if counted is not None:
            tag = TagMatch(gait=None, phrase=counted[1])
    return tag


def expected_efforts(activity: Activity) -> int | None:
    """The number of backward efforts the title or description announces, if it says."""
    counted = _count_phrase(_activity_text(activity))
    return counted[0] if counted else None


def _has_backward_lap(activity: Activity) -> bool:
    return any(lap_is_backward(lap.name) is not None for lap in activity.laps)


# --- laps and the stream budget -----------------------------------------------------------------------------

# A lap "shows the pattern" when it is clearly slower than the athlete's other laps at a step frequency that
# did not fall: its step (speed / cadence) is more than 20% shorter (SCIENCE.md: backward steps are shorter at
# a higher step frequency).
LAP_SPEED_RATIO = 0.8
LAP_CADENCE_RATIO = 0.95
LAP_STEP_RATIO = 0.8
LAP_MIN_S = 30.0  # shorter laps (a button pressed at a crossing) say nothing


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    k = len(ordered)
    mid = k // 2
    return ordered[mid] if k % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


def _pattern_laps(averages: list[tuple[float, float] | None]) -> list[bool]:
    """For each lap's (average speed, average cadence), whether it shows the backward pattern against the
    median of the other laps."""
    out = []
    for k, mine in enumerate(averages):
        others = [a for j, a in enumerate(averages) if j != k and a is not None]
        if mine is None or not others:
            out.append(False)
            continue
        v_ratio = mine[0] / _median([a[0] for a in others])
        c_ratio = mine[1] / _median([a[1] for a in others])
        out.append(
            v_ratio < LAP_SPEED_RATIO and c_ratio >= LAP_CADENCE_RATIO and v_ratio / c_ratio < LAP_STEP_RATIO
        )
    return out


def _lap_averages(activity: Activity) -> list[tuple[float, float] | None]:
    out: list[tuple[float, float] | None] = []
    for lap in sorted(activity.laps, key=lambda lap: lap.index):
        duration = lap.moving_time_s or lap.elapsed_time_s
        speed = lap.average_speed
        if speed is None and duration > 0 and lap.distance_m > 0:
            speed = lap.distance_m / duration
        ok = duration >= LAP_MIN_S and speed and speed > 0 and lap.average_cadence and lap.average_cadence > 0
        out.append((float(speed), float(lap.average_cadence)) if ok else None)  # type: ignore[arg-type]
    return out


def wants_streams(activity: Activity, mode: Literal["auto", "tagged"] = "auto") -> bool:
    """Whether fetching streams is worth a host call (Strava's default budget is 100 calls per 15 minutes for
    the whole app, so an untagged activity must earn it).

    Yes for a recorded (not manual, not trainer) foot activity that is tagged (title, description or a lap
    name), or, in mode "auto", whose laps show a candidate: a lap clearly slower than the others at a cadence
    that did not fall. An untagged activity with one lap or no lap data costs no call: a short effort inside
    1-km auto-laps is averaged away, so it is found only when tagged or lap-marked (docs/detection.md).
    """
    if not activity.is_foot_sport or activity.manual or activity.trainer:
        return False
    if _activity_tag(activity) is not None or _has_backward_lap(activity):
        return True
    if mode != "auto" or activity.sport_type in _NO_STREAM_SPORTS:
        return False
    return any(_pattern_laps(_lap_averages(activity)))


# --- steps, gait, lap and whole-activity efforts ------------------------------------------------------------


def _stream_steps(streams: Streams | None, first: int, last: int) -> int | None:
    """Steps between two sample indices: the integral of 2 x cadence (per leg, per minute) over time."""
    if streams is None or not streams.time or not streams.cadence:
        return None
    time, cadence = streams.time, streams.cadence
    last = min(last, len(time) - 1, len(cadence) - 1)
    total = 0.0
    counted = False
    # Each sample's cadence covers the interval that ends at it, so laps that share a boundary sample
    # (one lap's end_index is the next one's start_index) do not count that interval twice.
    for i in range(max(first, 0) + 1, last + 1):
        c = cadence[i]
        dt = time[i] - time[i - 1]
        if not c or c <= 0 or dt <= 0:
            continue  # no cadence recorded: those steps are unknown, not zero
        total += 2.0 * c / 60.0 * dt
        counted = True
    return round(total) if counted else None


def _steps_from_average(average_cadence: float | None, duration_s: float) -> int | None:
    if average_cadence is None or average_cadence <= 0:
        return None
    return round(2.0 * average_cadence * duration_s / 60.0)


def _gait_by_pace(distance_m: float, duration_s: float, steps: int | None, cadence: float | None) -> Gait:
    # Backward locomotion above ~1.6 m/s, or above 70 per leg per minute, is running (Hreljac et al. 2005,
    # J Sports Sci Med 4:446; SCIENCE.md "Speeds and stride").
    speed = distance_m / duration_s if duration_s > 0 else 0.0
    if cadence is None and steps is not None and duration_s > 0:
        cadence = steps / 2.0 / (duration_s / 60.0)
    if speed >= RUN_SPEED_M_S or (cadence is not None and cadence >= RUN_CADENCE_PER_LEG):
        return "run"
    return "walk"


def _lap_effort(
    lap: Lap, start_s: float, streams: Streams | None, lap_tag: TagMatch, activity_tag: TagMatch | None
) -> Effort:
    duration = lap.moving_time_s or lap.elapsed_time_s
    steps = None
    if lap.start_index is not None and lap.end_index is not None:
        steps = _stream_steps(streams, lap.start_index, lap.end_index)
    if steps is None:
        steps = _steps_from_average(lap.average_cadence, duration)
    gait = lap_tag.gait or (activity_tag.gait if activity_tag else None)
    return Effort(
        start_s=start_s,
        end_s=start_s + lap.elapsed_time_s,
        distance_m=lap.distance_m,
        duration_s=duration,
        steps=steps,
        confidence=LAP_CONFIDENCE_TAGGED if activity_tag else LAP_CONFIDENCE,
        source="lap",
        gait=gait or _gait_by_pace(lap.distance_m, duration, steps, lap.average_cadence),
    )


def _whole_effort(activity: Activity, streams: Streams | None, tag: TagMatch) -> Effort:
    duration = activity.moving_time_s or activity.elapsed_time_s
    steps = None
    if streams is not None and streams.time:
        steps = _stream_steps(streams, 0, len(streams.time) - 1)
    if steps is None:
        steps = _steps_from_average(activity.average_cadence, duration)
    manual = activity.manual or activity.trainer
    return Effort(
        start_s=0.0,
        end_s=activity.elapsed_time_s or activity.moving_time_s,
        distance_m=activity.distance_m,
        duration_s=duration,
        steps=steps,
        confidence=WHOLE_CONFIDENCE_MANUAL if manual else WHOLE_CONFIDENCE_MEASURED,
        source="whole",
        gait=tag.gait or _gait_by_pace(activity.distance_m, duration, steps, activity.average_cadence),
    )


# --- stream detection ---------------------------------------------------------------------------------------

Mode = Literal["auto", "tagged"]

# A virtual run's speed comes from a footpod that turns cadence into speed, and a treadmill ("trainer") has no
# GPS speed: neither can show a step deficit, so only the athlete's words count there.
_NO_STREAM_SPORTS = frozenset({"VirtualRun"})

# Samples.
MIN_SPAN_S = 180.0  # a shorter recording has no forward running to compare with
MIN_USABLE_SAMPLES = 60
STOP_SPEED_M_S = 0.5  # slower is a pause (or standing at a crossing), never an effort
MIN_CADENCE_PER_LEG = 30.0  # lower is no step data (0 = not recorded, or stopped)
SPEED_SPIKE_FACTOR = 1.8  # GPS spikes: speeds above 1.8 x the median running speed are clipped
CADENCE_SPIKE_FACTOR = 1.5  # footpod/wrist glitches, likewise
SMOOTH_HALF_S = 8.0  # centred moving average over +/- 8 s before any threshold
EDGE_S = 30.0  # the first and last 30 s of a recording (GPS settling, pressing stop) hold no effort
# Steeper: short steps are normal uphill (and on steep descents); such samples never count.
MAX_GRADE_PCT = 8.0

# The flat mask and the masked sums are built a chunk of samples at a time: a chunk that settles the question
# for all of its samples at once (no grade beyond MAX_GRADE_PCT, every sample usable) gets its answer whole,
# and only the other chunks are worked out sample by sample. A chunk's grade extremes come from sorting it,
# which on a smooth grade stream costs fewer operations than min() and max(); that needs finite values.
CHUNK_SAMPLES = 64

# The athlete's forward level around each sample: medians of 30-s blocks, then the median of those over
# +/- 10 blocks (about +/- 5 minutes). A backward effort of up to 4 minutes stays a minority of the window.
BLOCK_S = 30.0
REF_HALF_BLOCKS = 10
# That holds only while the window's other blocks have a running level. Blocks without one (a climb steeper
# than MAX_GRADE_PCT, a stop, a walk) leave fewer forward blocks, and a long effort can then be half of what
# is left and drag its own level down: it is missed, or split into pieces. So the window widens, a block on
# each side at a time up to +/- 20 blocks (about +/- 10 minutes), until it holds as many blocks with a level
# as it has blocks. The ends of a recording are not made up for: that would reach far into the run and make
# a slow warm-up look like a dip.
REF_MAX_HALF_BLOCKS = 20
MIN_BLOCK_SAMPLES = 3
MIN_REF_BLOCKS = 4

# A 30-s block is skipped by the segment search when even its best case is this far above leave_step: many
# orders of magnitude above the rounding of a few float operations, so the skip never changes a result.
BLOCK_SKIP_MARGIN = 1.0 + 1e-9
MERGE_GAP_S = 20.0  # segments closer than this are one effort (a glance over the shoulder, a GPS wobble)
REFINE_S = 12.0  # edges move to the sharpest step-length change within +/- 12 s (smoothing blurs them)
REFINE_SAMPLES = 10
SIDE_S = 180.0  # "the forward running around it": up to 3 minutes before and after the segment
SIDE_GAP_S = 5.0
MIN_SIDE_SAMPLES = 10
# Heart rate at the start of a segment: the mean from 10 s before to 10 s after its first sample (a heart rate
# still recovering from an earlier stop is already falling before the segment starts).
HR_START_S = 10.0
GPS_AFTER_S = 30.0  # a speed jump just after a slow stretch is a GPS catch-up (tunnel, trees), not an effort
GPS_JUMP_FACTOR = 1.6
# A segment whose speed jumps around more than this, and more than 1.5 x the forward running around it, is
# stop-and-go or GPS noise; likewise for cadence (a stale or dropping sensor).
MAX_SPEED_CV = 0.25
MAX_CADENCE_CV = 0.1
CV_FACTOR = 1.5
MIN_GAIT_PURITY = 0.9  # share of the segment at one gait (running or walking pace)
MAX_RAMP = 0.15  # speed change from the first to the last third: a restart ramps, an effort holds
STOP_BEFORE_S = 30.0  # a segment starting within 30 s of a stop or a walk is a restart (speed lags cadence)
STOP_MIN_S = 5.0

# Forward walking prior (used when no forward walking surrounds a walking-pace segment): a step of about
# 0.75 m at 1.5 m/s and 60 steps per leg per minute, with step length and step frequency sharing the speed
# change (step length ~ speed^0.5). A working assumption, not a SCIENCE.md fact: walks are reported only
# when the deficit against it is clear.
WALK_PRIOR_STEP_M = 0.75
WALK_PRIOR_SPEED_M_S = 1.5
WALK_PRIOR_EXPONENT = 0.5

# The forward step-length model (log step against log speed, Theil-Sen over 0.1 m/s bins of the athlete's
# own flat forward running): its elasticity is kept between 0.6 (cadence rises with speed, as usual) and 1.0
# (constant cadence, the default when the run has too little speed range to say).
MODEL_MIN_SPAN_M_S = 0.5
MODEL_SAMPLES = 4000  # global fits use at most about this many samples (an even stride through them)
MODEL_ELASTICITY = (0.6, 1.0)
MODEL_DEFAULT_ELASTICITY = 1.0
GRADE_SLOPE_LIMITS = (-0.06, 0.0)  # d log(speed or step) / d grade-percent: uphill never lengthens either


@dataclass(frozen=True)
class _Profile:
    """Thresholds for one level of evidence. Ratios are segment / forward running around it."""

    enter_step: float  # a sample starts a segment below this step ratio (hysteresis: enter low...)
    leave_step: float  # ...and the segment lasts while the ratio stays below this one
    enter_cadence: float  # cadence ratio needed to start
    stay_cadence: float  # and to stay
    enter_speed: float  # speed ratio needed to start
    max_step: float  # segment averages
    max_matched: float  # step / the athlete's own forward step at the same speed (the model)
    max_speed: float
    min_cadence: float
    min_duration_s: float
    min_distance_m: float
    min_consistency: float  # share of the segment's own samples below leave_step
    max_abs_grade: float  # mean grade of the segment, percent
    both_sides: bool  # forward running before AND after (a dip, not a change of pace)
    min_hr_change: float | None  # reject when heart rate falls by more (bpm); None: no heart-rate rule
    no_hr_min_cadence: float  # without a heart-rate stream the cadence and step rules tighten
    no_hr_max_step: float
    max_walk_prior: float  # walking-pace segments: step / forward-walk prior at that speed
    reject_gps_suspect: bool  # and the other signs of a forward artefact (restart, stop-and-go, mixed gait)
    reject_restart: bool  # a stop or walk just before and a speed ramp: the device's speed catching up
    min_confidence: float


# Untagged: only a very clear effort; report nothing when in doubt.
AUTO = _Profile(
    enter_step=0.82, leave_step=0.9, enter_cadence=0.96, stay_cadence=0.92, enter_speed=0.86,
    max_step=0.85, max_matched=1.05, max_speed=0.85, min_cadence=0.97,
    min_duration_s=40.0, min_distance_m=60.0, min_consistency=0.7, max_abs_grade=3.0,
    both_sides=True, min_hr_change=-3.0, no_hr_min_cadence=1.02, no_hr_max_step=0.7,
    max_walk_prior=0.8, reject_gps_suspect=True, reject_restart=True, min_confidence=0.75,
)  # fmt: skip
# Tagged: the athlete says there is backward locomotion; the streams only say where.
TAGGED = _Profile(
    enter_step=0.8, leave_step=0.88, enter_cadence=0.94, stay_cadence=0.9, enter_speed=0.85,
    max_step=0.85, max_matched=1.05, max_speed=0.88, min_cadence=0.96,
    min_duration_s=30.0, min_distance_m=40.0, min_consistency=0.6, max_abs_grade=MAX_GRADE_PCT,
    both_sides=False, min_hr_change=None, no_hr_min_cadence=0.94, no_hr_max_step=0.82,
    max_walk_prior=0.88, reject_gps_suspect=False, reject_restart=True, min_confidence=0.55,
)  # fmt: skip
# Tagged with a count ("3x200m retro"): the best N candidates under a lower threshold.
COUNTED = _Profile(
    enter_step=0.84, leave_step=0.9, enter_cadence=0.92, stay_cadence=0.88, enter_speed=0.9,
    max_step=0.88, max_matched=1.05, max_speed=0.9, min_cadence=0.9,
    min_duration_s=20.0, min_distance_m=25.0, min_consistency=0.5, max_abs_grade=MAX_GRADE_PCT,
    both_sides=False, min_hr_change=None, no_hr_min_cadence=0.9, no_hr_max_step=0.88,
    max_walk_prior=0.92, reject_gps_suspect=False, reject_restart=False, min_confidence=0.0,
)  # fmt: skip

STREAM_CONFIDENCE_MAX = 0.97


@dataclass
class _Series:
    """Per-sample arrays, computed once."""

    n: int
    t: list[float]
    v: list[float]  # speed, m/s, spikes clipped
    v_raw: list[float]
    c: list[float]  # cadence per leg, spikes clipped, 0 = none
    g: list[float]  # grade, percent (0 without a grade stream)
    has_grade: bool
    hr: list[float] | None
    moving: list[bool]
    usable: list[bool]  # moving, with speed and cadence
    flat: list[bool]  # usable and no steeper than MAX_GRADE_PCT
    vs: list[float]  # smoothed speed
    cs: list[float]  # smoothed cadence
    walk: list[bool]  # walking pace (Hreljac 2005: below 1.6 m/s and 70 per leg)
    block_start: list[int]  # first sample of each 30-s block, then n
    # The distance stream as recorded (None where a value is missing): only a few values are ever read, so
    # they are turned into floats where read (_distance_at), not all at once.
    distance: Sequence[float | None] | None
    finite: bool  # no NaN or infinity in vs and cs (sorting them then gives true minima and maxima)


@dataclass(frozen=True)
class _Model:
    log_step_1: float  # log step length (m) at 1 m/s on the flat
    elasticity: float
    grade_speed: float  # log forward speed change per grade percent, against the local forward level
    grade_step: float  # log forward step change per grade percent, likewise

    def step(self, speed: float) -> float:
        return math.exp(self.log_step_1 + self.elasticity * math.log(speed))


@dataclass
class _Candidate:
    first: int  # the sample where the effort starts (the interval after it is the first backward one)
    last: int
    speed_ratio: float = 1.0
    cadence_ratio: float = 1.0
    step_ratio: float = 1.0
    matched_ratio: float = 1.0  # step / the athlete's forward step at the same speed (the model)
    prior_ratio: float = 1.0  # walking pace: step / forward-walk prior
    consistency: float = 0.0
    grade: float = 0.0
    hr_change: float | None = None
    sides: int = 0
    walk: bool = False
    lap_support: bool = False
    gps_suspect: bool = False
    speed_cv: float = 0.0
    cadence_cv: float = 0.0
    forward: list[_Side] = field(default_factory=list)  # the forward running around it (see _unsteady)
    purity: float = 1.0
    ramp: float = 0.0
    after_stop: bool = False
    duration_s: float = 0.0
    distance_m: float = 0.0
    cadence: float = 0.0
    confidence: float = 0.0


def _clamp(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo if x < lo else hi if x > hi else x


def _theil_sen(points: list[tuple[float, float]], min_dx: float) -> float | None:
    slopes = [
        (y2 - y1) / (x2 - x1)
        for k, (x1, y1) in enumerate(points)
        for x2, y2 in points[k + 1 :]
        if abs(x2 - x1) >= min_dx
    ]
    return _median(slopes) if slopes else None


def _series_or_none(values: tuple | None, n: int) -> tuple | None:
    return values if values is not None and len(values) >= n else None


def _floats(values: Sequence[float | None], positive: bool = False) -> list[float]:
    """A stream as floats; a missing value (None) is 0, and so is a negative one when `positive`."""
    try:
        out = list(map(float, values))
    except TypeError:  # None somewhere
        out = [float(x) if x is not None else 0.0 for x in values]
    if positive and min(out, default=0.0) < 0.0:
        out = [x if x > 0.0 else 0.0 for x in out]
    return out


_Window = Callable[[list], tuple[list, list]]


def _window_1hz(n: int) -> _Window:
    """Prefix sums at the ends of each sample's +/- SMOOTH_HALF_S window, for 1 Hz samples (slices)."""
    h = int(SMOOTH_HALF_S)

    def ends(prefix: list) -> tuple[list, list]:
        return prefix[h + 1 :] + [prefix[n]] * h, [prefix[0]] * h + prefix[: n - h]

    return ends


def _window_by_time(t: list[float]) -> _Window:
    """The same for any sampling: window ends found by time."""
    lo = [bisect_left(t, x - SMOOTH_HALF_S) for x in t]
    hi = [bisect_right(t, x + SMOOTH_HALF_S) for x in t]

    def ends(prefix: list) -> tuple[list, list]:
        return [prefix[b] for b in hi], [prefix[a] for a in lo]

    return ends


def _runs_backward(t: list[float]) -> bool:
    """Whether any time is later than the next one. Without NaN, that is whether sorting changes the list:
    sorting an ordered list only compares neighbours (at C speed), and gives back the same objects in the
    same order, which == then checks by identity."""
    if math.isnan(sum(t)):
        return any(map(gt, t, t[1:]))  # NaN compares false both ways, and breaks sorting
    return sorted(t) != t


def _chunks(n: int) -> Iterable[tuple[int, int]]:
    return ((a, a + CHUNK_SAMPLES) for a in range(0, n, CHUNK_SAMPLES))


def _masked(values: list[float], usable: list[bool]) -> list[float]:
    """values * usable (0 where not usable), as map(mul, values, usable) gives it; a fully usable chunk is its
    values unchanged (x * True is x), with no multiplication."""
    out: list[float] = []
    for a, b in _chunks(len(values)):
        mask = usable[a:b]
        out += values[a:b] if all(mask) else map(mul, values[a:b], mask)
    return out


def _flat_mask(usable: list[bool], g: list[float]) -> list[bool]:
    """Usable and no steeper than MAX_GRADE_PCT: [ok and abs(x) <= MAX_GRADE_PCT], a chunk at a time."""
    if not math.isfinite(sum(g)):  # a NaN or an infinity: sorting gives no true extremes
        return [ok and abs(x) <= MAX_GRADE_PCT for ok, x in zip(usable, g, strict=True)]
    out: list[bool] = []
    for a, b in _chunks(len(g)):
        grades = sorted(g[a:b])
        if grades[0] >= -MAX_GRADE_PCT and grades[-1] <= MAX_GRADE_PCT:
            out += usable[a:b]  # `ok and True` is ok
        else:
            out += [ok and abs(x) <= MAX_GRADE_PCT for ok, x in zip(usable[a:b], g[a:b], strict=True)]
    return out


def _prepare(streams: Streams | None) -> _Series | None:
    """The streams as clean per-sample lists, or None when they cannot show a step deficit (too short, no
    speed, no cadence)."""
    if streams is None or streams.is_empty:
        return None
    t = _floats(streams.time)
    n = len(t)
    if n < MIN_USABLE_SAMPLES or t[-1] - t[0] < MIN_SPAN_S or _runs_backward(t):
        return None  # too short, or time running backward (a damaged recording)
    cadence = _series_or_none(streams.cadence, n)
    velocity = _series_or_none(streams.velocity_smooth, n)
    distance = _series_or_none(streams.distance, n)
    if cadence is None or (velocity is None and distance is None):
        return None
    if velocity is not None:
        v_raw = _floats(velocity[:n], positive=True)
    else:
        assert distance is not None
        v_raw = [0.0] * n
        for i in range(1, n):
            dt = t[i] - t[i - 1]
            v_raw[i] = max(0.0, (distance[i] - distance[i - 1]) / dt) if dt > 0 else v_raw[i - 1]
        v_raw[0] = v_raw[1]
    c = _floats(cadence[:n], positive=True)
    moving_stream = _series_or_none(streams.moving, n)
    if moving_stream is not None:
        moving = list(map(bool, moving_stream[:n]))
    else:
        moving = [x >= STOP_SPEED_M_S for x in v_raw]
    # Masks as comprehensions: `and` stops at the first false test, which beats chaining map(and_, ...).
    usable = [
        m and x >= STOP_SPEED_M_S and y >= MIN_CADENCE_PER_LEG
        for m, x, y in zip(moving, v_raw, c, strict=True)
    ]
    if usable.count(True) < MIN_USABLE_SAMPLES:
        return None
    stride = max(1, n // MODEL_SAMPLES)  # a typical level needs no more than a few thousand samples
    sampled = usable[::stride]
    v_cap = SPEED_SPIKE_FACTOR * _median(list(compress(v_raw[::stride], sampled)) or [1.0])
    c_cap = CADENCE_SPIKE_FACTOR * _median(list(compress(c[::stride], sampled)) or [1.0])
    v = [x if x < v_cap else v_cap for x in v_raw] if max(v_raw) > v_cap else v_raw
    c = [x if x < c_cap else c_cap for x in c] if max(c) > c_cap else c
    grade_stream = _series_or_none(streams.grade_smooth, n)
    g = _floats(grade_stream[:n]) if grade_stream is not None else [0.0] * n
    hr_stream = _series_or_none(streams.heartrate, n)
    hr = _floats(hr_stream[:n], positive=True) if hr_stream is not None else None
    if hr is not None and n - hr.count(0.0) < n // 2:
        hr = None  # a strap that dropped out most of the time says nothing either way

    # Centred moving averages over usable samples, by time (recordings are not always 1 Hz), from prefix sums
    # at C speed (map, accumulate): this is most of the cost of a long recording.
    window = _window_1hz(n) if t[-1] - t[0] == n - 1 else _window_by_time(t)
    counts = list(map(sub, *window(list(accumulate(usable, initial=0)))))
    # 1 where empty (the sum is 0 there too). Empty windows are few (long stops), so find them with index().
    empty = -1
    try:
        while True:
            empty = counts.index(0, empty + 1)
            counts[empty] = 1
    except ValueError:
        pass

    def smoothed(values: list[float]) -> tuple[list[float], bool]:
        # One series at a time: its prefix sums are freed before the next one's are made, so their memory is
        # reused instead of grown.
        prefix = list(accumulate(_masked(values, usable), initial=0.0))
        # A NaN or an infinity anywhere makes the total non-finite (a masked one too: nan * False is nan),
        # and only then can the averages hold one.
        return list(map(truediv, map(sub, *window(prefix)), counts)), math.isfinite(prefix[n])

    vs, finite_v = smoothed(v)
    cs, finite_c = smoothed(c)
    finite = finite_v and finite_c
    walk = [x < RUN_SPEED_M_S and y < RUN_CADENCE_PER_LEG for x, y in zip(vs, cs, strict=True)]
    flat = _flat_mask(usable, g) if grade_stream is not None else usable[:]
    t0 = t[0]
    nb = int((t[-1] - t0) // BLOCK_S) + 1
    block_start = [bisect_left(t, t0 + k * BLOCK_S) for k in range(nb)] + [n]
    return _Series(
        n=n, t=t, v=v, v_raw=v_raw, c=c, g=g, has_grade=grade_stream is not None, hr=hr, moving=moving,
        usable=usable, flat=flat, vs=vs, cs=cs, walk=walk, block_start=block_start, distance=distance,
        finite=finite,
    )  # fmt: skip


_Ref = list[tuple[float, float] | None]


def _window_medians(
    values: list[float | None], half: int, min_count: int, max_half: int | None = None
) -> list[float | None]:
    """For each position, the median of the values (None skipped) within +/- half positions of it; None where
    fewer than min_count. One sorted window slides along (insort, then delete what leaves), so each step
    costs a bisection, not a sort; the median of the same values is the same number.

    With max_half, a window with None inside it widens by one position on each side at a time, up to
    +/- max_half, until it holds as many values as it has positions inside the series (see
    REF_MAX_HALF_BLOCKS)."""
    n = len(values)
    if any(x != x for x in values if x is not None):  # NaN cannot be bisected: sort each window afresh
        windows = ([x for x in values[max(0, k - half) : k + half + 1] if x is not None] for k in range(n))
        return [_median(w) if len(w) >= min_count else None for w in windows]
    window = sorted(x for x in values[:half] if x is not None)
    out: list[float | None] = []
    for k in range(n):
        if k + half < n and (entering := values[k + half]) is not None:
            insort(window, entering)
        if k > half and (leaving := values[k - half - 1]) is not None:
            del window[bisect_left(window, leaving)]
        size = len(window)
        if size < min_count:
            out.append(None)
        else:
            mid = size // 2
            out.append(window[mid] if size % 2 else 0.5 * (window[mid - 1] + window[mid]))
    if max_half is not None and None in values:
        _widen_windows(values, half, min_count, max_half, out)
    return out


def _widen_windows(
    values: list[float | None], half: int, min_count: int, max_half: int, out: list[float | None]
) -> None:
    """_window_medians' widening, in place: only windows missing values inside the series are recomputed."""
    n = len(values)
    present = list(accumulate((x is not None for x in values), initial=0))  # values before each position
    for k in range(n):
        lo, hi = max(0, k - half), min(n, k + half + 1)
        wanted = hi - lo  # the window's positions inside the series
        reach = half
        while present[hi] - present[lo] < wanted and reach < max_half and (lo > 0 or hi < n):
            reach += 1
            lo, hi = max(0, k - reach), min(n, k + reach + 1)
        if reach > half:
            window = [x for x in values[lo:hi] if x is not None]
            out[k] = _median(window) if len(window) >= min_count else None


# Per block: the slowest speed and the fastest cadence of its running samples (flat, not at walking pace),
# None when it has none.
_Extremes = list[tuple[float, float] | None]


def _block_references(ser: _Series) -> tuple[_Ref, _Ref | None, _Extremes | None]:
    """For each 30-s block, the forward level (speed, cadence) around it, for running and for walking: the
    median over +/- 10 blocks of the blocks' own medians (one gait, moderate grades only), widened past blocks
    without a level (REF_MAX_HALF_BLOCKS); the walking table is None when no flat sample is at walking pace.
    Also each block's running extremes, which come free with the sorting (None when vs or cs hold a NaN: then
    sorting gives no true extremes)."""
    starts = ser.block_start
    nb = len(starts) - 1
    # No flat walking sample (most runs): the running mask is the flat one, and there is no walking table.
    any_walk = any(compress(ser.walk, ser.flat))
    walk_mask = list(map(and_, ser.flat, ser.walk)) if any_walk else []
    run_mask = [ok and not w for ok, w in zip(ser.flat, ser.walk, strict=True)] if any_walk else ser.flat

    def block_medians(mask: list[bool], extremes: _Extremes | None) -> _Ref:
        # The masked samples of the whole series at once (compress); each block is then a slice of them.
        speeds, cadences = list(compress(ser.vs, mask)), list(compress(ser.cs, mask))
        sizes = [mask[starts[k] : starts[k + 1]].count(True) for k in range(nb)]
        ends = list(accumulate(sizes, initial=0))
        out: _Ref = []
        for k in range(nb):
            a, b = ends[k], ends[k + 1]
            size = b - a
            if size == 0:
                out.append(None)
                if extremes is not None:
                    extremes.append(None)
                continue
            # _median of each, inline: one sort each, and the ends of the sorted lists are the extremes.
            vs, cs = sorted(speeds[a:b]), sorted(cadences[a:b])
            if extremes is not None:
                extremes.append((vs[0], cs[-1]))
            mid = size // 2
            if size < MIN_BLOCK_SAMPLES:
                out.append(None)
            elif size % 2:
                out.append((vs[mid], cs[mid]))
            else:
                out.append((0.5 * (vs[mid - 1] + vs[mid]), 0.5 * (cs[mid - 1] + cs[mid])))
        return out

    def around(med: _Ref) -> _Ref:
        speeds = [m[0] if m else None for m in med]
        cadences = [m[1] if m else None for m in med]
        speed = _window_medians(speeds, REF_HALF_BLOCKS, MIN_REF_BLOCKS, REF_MAX_HALF_BLOCKS)
        cadence = _window_medians(cadences, REF_HALF_BLOCKS, MIN_REF_BLOCKS, REF_MAX_HALF_BLOCKS)
        # Both lists have None at the same places (the same blocks, the same windows).
        return [(s, c) if s is not None else None for s, c in zip(speed, cadence, strict=True)]

    extremes: _Extremes | None = [] if ser.finite else None
    run = around(block_medians(run_mask, extremes))
    walk = around(block_medians(walk_mask, None)) if any_walk else None
    return run, walk, extremes


def _per_sample(ser: _Series, ref: _Ref) -> tuple[list[float], list[float]]:
    """A block table spread over its samples: (speed, cadence), 0 where there is no reference."""
    speed: list[float] = []
    cadence: list[float] = []
    starts = ser.block_start
    for k, r in enumerate(ref):
        count = starts[k + 1] - starts[k]
        speed.extend([r[0] if r else 0.0] * count)
        cadence.extend([r[1] if r else 0.0] * count)
    return speed, cadence


def _fit_model(ser: _Series, ref_speed: list[float], ref_cadence: list[float]) -> _Model:
    """The athlete's own forward step length against speed (flat running) and the local effect of grade."""
    stride = max(1, ser.n // MODEL_SAMPLES)
    # The flat forward samples of the stride (flat, not walking), picked at C speed (compress, map).
    chosen = list(map(gt, ser.flat[::stride], ser.walk[::stride]))
    picked = list(compress(range(0, ser.n, stride), chosen))
    vs = list(compress(ser.vs[::stride], chosen))
    cs = list(compress(ser.cs[::stride], chosen))
    gs = list(compress(ser.g[::stride], chosen))
    if any(map(le, vs, repeat(0.0))) or any(map(le, cs, repeat(0.0))):
        keep = [not (v <= 0 or c <= 0) for v, c in zip(vs, cs, strict=True)]  # NaN is kept
        picked, vs, cs, gs = (list(compress(x, keep)) for x in (picked, vs, cs, gs))
    steps = [v * 30.0 / c for v, c in zip(vs, cs, strict=True)]
    # Step length by 0.1 m/s speed bin over moderate grades; with a grade stream, speed and step against the
    # local forward level by 1% grade bin. One loop; defaultdict adds no empty list per sample, and its keys
    # keep their first-seen order (as setdefault would).
    bins: dict[int, list[float]] = defaultdict(list)
    grade_speed: dict[int, list[float]] = defaultdict(list)
    grade_step: dict[int, list[float]] = defaultdict(list)
    if ser.has_grade:
        for i, v, step, g in zip(picked, vs, steps, gs, strict=True):
            if -3.0 <= g <= 3.0:
                bins[int(v * 10.0)].append(step)
            rv = ref_speed[i]
            if rv > 0.0:
                gk = round(g)
                grade_speed[gk].append(v / rv)
                grade_step[gk].append(step / (rv * 30.0 / ref_cadence[i]))
    else:
        for v, step, g in zip(vs, steps, gs, strict=True):
            if -3.0 <= g <= 3.0:
                bins[int(v * 10.0)].append(step)
    total = sum(len(b) for b in bins.values())
    min_count = max(10, total // 100)
    points = [
        (math.log((k + 0.5) / 10.0), math.log(_median(b)), len(b))
        for k, b in bins.items()
        if len(b) >= min_count
    ]
    elasticity = MODEL_DEFAULT_ELASTICITY
    if len(points) >= 3:
        speeds = [math.exp(p[0]) for p in points]
        if max(speeds) - min(speeds) >= MODEL_MIN_SPAN_M_S:
            slope = _theil_sen([(x, y) for x, y, _ in points], min_dx=0.03)
            if slope is not None:
                elasticity = _clamp(slope, *MODEL_ELASTICITY)
    log_step_1 = math.log(0.4)  # never used: without flat forward running there is no reference
    if points:
        # Weighted median of the intercepts: every flat forward sample votes through its bin.
        votes = sorted((y - elasticity * x, w) for x, y, w in points)
        half, acc = sum(w for _, w in votes) / 2.0, 0
        for value, w in votes:
            acc += w
            if acc >= half:
                log_step_1 = value
                break

    def grade_slope(table: dict[int, list[float]]) -> float:
        pts = [(float(k), math.log(_median(vals))) for k, vals in table.items() if len(vals) >= 10]
        if len(pts) < 3 or max(p[0] for p in pts) - min(p[0] for p in pts) < 3:
            return 0.0
        slope = _theil_sen(pts, min_dx=1.0)
        return 0.0 if slope is None else _clamp(slope, *GRADE_SLOPE_LIMITS)

    return _Model(
        log_step_1=log_step_1,
        elasticity=elasticity,
        grade_speed=grade_slope(grade_speed),
        grade_step=grade_slope(grade_step),
    )


def _walk_prior_step(speed: float) -> float:
    return WALK_PRIOR_STEP_M * (speed / WALK_PRIOR_SPEED_M_S) ** WALK_PRIOR_EXPONENT


@dataclass
class _Refs:
    """The forward level around each sample (0 where there is none), for running and for walking."""

    run_speed: list[float]
    run_cadence: list[float]
    walk_speed: list[float]
    walk_cadence: list[float]
    run_extremes: _Extremes | None  # per block (see _block_references); None: unknown, test every sample
    any_flat_walk: bool  # any flat sample at walking pace; without one the walking lists are all 0


def _sample_ratios(ser: _Series, refs: _Refs, model: _Model, i: int) -> tuple[float, float, float]:
    """(speed ratio, cadence ratio, step ratio) of sample i against the forward level around it, with the
    forward step and speed expected at its grade; (inf, 0, inf) without a reference."""
    v, c, g = ser.vs[i], ser.cs[i], ser.g[i]
    if ser.walk[i]:
        rv, rc = refs.walk_speed[i], refs.walk_cadence[i]
        if rv <= 0:
            step = v * 30.0 / c / _walk_prior_step(v) if c > 0 and v > 0 else math.inf
            return step, 1.0, step
    else:
        rv, rc = refs.run_speed[i], refs.run_cadence[i]
        if rv <= 0:
            return math.inf, 0.0, math.inf
    s = v / rv / math.exp(model.grade_speed * g)
    q = c / rc
    return s, q, (v * rc) / (c * rv) / math.exp(model.grade_step * g)


def _running_candidates(ser: _Series, refs: _Refs, model: _Model, p: _Profile, bound: float) -> list[int]:
    """Running samples that may lie below leave_step (before the grade correction): v * rc < bound * c * rv,
    flat, not at walking pace, with a forward level around and cadence held (c >= rc * stay), in order.

    The forward level is constant over each 30-s block (_per_sample), so each block is first tested whole
    from its running extremes: when even its slowest speed with its fastest cadence, at the most favourable
    grade, gives a step ratio at or above leave_step (with a margin far above rounding), or its fastest
    cadence is below stay_cadence, none of its samples can pass the segment search's own test, and the
    per-sample pass skips it. Forward running is such a block nearly everywhere."""
    vs, cs, g, flat, walk = ser.vs, ser.cs, ser.g, ser.flat, ser.walk
    run_speed, run_cadence = refs.run_speed, refs.run_cadence
    starts = ser.block_start
    extremes = refs.run_extremes
    kl, stay = model.grade_step, p.stay_cadence
    skip_at = p.leave_step * BLOCK_SKIP_MARGIN
    # The largest grade correction a flat sample can get, |g| <= MAX_GRADE_PCT.
    skip_any_grade = skip_at * math.exp(abs(kl) * MAX_GRADE_PCT)
    out: list[int] = []
    for k in range(len(starts) - 1):
        a, b = starts[k], starts[k + 1]
        if a >= b:
            continue  # no sample in this block (a recording gap)
        rv, rc = run_speed[a], run_cadence[a]
        if not rv > 0:
            continue  # no forward level around: no running sample here can pass
        if extremes is not None:
            ext = extremes[k]
            if ext is None:
                continue  # no running sample in this block
            slowest, fastest = ext
            if fastest < rc * stay:
                continue
            if rc > 0:
                lowest = slowest * rc / (fastest * rv)  # the lowest (v * rc) / (c * rv) of the block
                if lowest >= skip_any_grade:
                    continue
                # kl < 0: the correction is largest at the block's lowest grade (min() gives a true
                # lower bound or NaN, and NaN skips nothing).
                if kl < 0 and lowest / math.exp(kl * max(min(g[a:b]), -MAX_GRADE_PCT)) >= skip_at:
                    continue
        # The step test first: forward running fails it, and `and` then skips the rest.
        out += [
            i
            for i in range(a, b)
            if vs[i] * rc < bound * cs[i] * rv and flat[i] and not walk[i] and cs[i] >= rc * stay
        ]
    return out


def _segments(ser: _Series, refs: _Refs, model: _Model, p: _Profile) -> list[tuple[int, int]]:
    """Hysteresis: runs of samples below leave_step (gaps up to MERGE_GAP_S bridged) that reach below
    enter_step somewhere. Returns (first inside, last inside) sample indices. The Python loop only visits
    the samples that may be below leave_step (_running_candidates, and walking samples)."""
    t = ser.t
    lo_t, hi_t = t[0] + EDGE_S, t[-1] - EDGE_S
    first_i, last_i = bisect_left(t, lo_t), bisect_right(t, hi_t)
    kv, kl = model.grade_speed, model.grade_step
    leave, stay = p.leave_step, p.stay_cadence
    enter_step, enter_cadence, enter_speed = p.enter_step, p.enter_cadence, p.enter_speed
    # Running samples: step ratio (v / c) / (v_ref / c_ref); the grade factor is applied below to the few
    # candidates only when the model has one (a flat run has none).
    slack = math.exp(-kl * MAX_GRADE_PCT) if kl else 1.0  # widest grade correction: keep every possible one
    bound = leave * slack  # the same product as leave * slack * c * rv, computed once
    candidates = _running_candidates(ser, refs, model, p, bound)
    walking = list(compress(range(ser.n), map(and_, ser.walk, ser.flat))) if refs.any_flat_walk else []
    if walking:
        candidates = sorted(candidates + walking)
    vs, cs, g, walk = ser.vs, ser.cs, ser.g, ser.walk
    run_speed, run_cadence = refs.run_speed, refs.run_cadence
    exp = math.exp
    out: list[tuple[int, int]] = []
    start = last = -1
    flagged = False
    for i in candidates:
        if i < first_i or i >= last_i:
            continue
        if walk[i]:
            s, q, step = _sample_ratios(ser, refs, model, i)
        else:
            # _sample_ratios for a running sample (which has a forward level, rv > 0), inline: most
            # candidates are running samples.
            v, c, rv, rc, gi = vs[i], cs[i], run_speed[i], run_cadence[i], g[i]
            s = v / rv / exp(kv * gi)
            q = c / rc
            step = (v * rc) / (c * rv) / exp(kl * gi)
        if step >= leave or q < stay:
            continue
        ti = t[i]
        if start >= 0 and ti - t[last] > MERGE_GAP_S:
            if flagged:
                out.append((start, last))
            start = -1
        if start < 0:
            start, flagged = i, False
        last = i
        if step < enter_step and q >= enter_cadence and s < enter_speed:
            flagged = True
    if start >= 0 and flagged:
        out.append((start, last))
    return out


def _lap_spans(activity: Activity, ser: _Series) -> list[tuple[float, float, bool]]:
    """Each lap's (start, end) in stream seconds and whether its averages show the backward pattern."""
    laps = sorted(activity.laps, key=lambda lap: lap.index)
    if len(laps) < 2:
        return []
    t0 = ser.t[0]
    spans: list[tuple[float, float]] = []
    averages: list[tuple[float, float] | None] = []
    start = 0.0
    for lap in laps:
        si, ei = lap.start_index, lap.end_index
        if si is not None and ei is not None and 0 <= si < ei < ser.n:
            a, b = ser.t[si] - t0, ser.t[ei] - t0
            idx = [i for i in range(si + 1, ei + 1) if ser.usable[i]]
            avg = None
            if len(idx) >= 10 and b - a >= LAP_MIN_S:
                avg = (sum(ser.v[i] for i in idx) / len(idx), sum(ser.c[i] for i in idx) / len(idx))
        else:
            a, b = start, start + lap.elapsed_time_s
            duration = lap.moving_time_s or lap.elapsed_time_s
            avg = None
            if duration >= LAP_MIN_S and lap.distance_m > 0 and lap.average_cadence:
                avg = (lap.average_speed or lap.distance_m / duration, lap.average_cadence)
        start = b
        spans.append((a, b))
        averages.append(avg)
    return [(a, b, pat) for (a, b), pat in zip(spans, _pattern_laps(averages), strict=True)]


def _nearest_index(t: list[float], x: float) -> int:
    i = bisect_left(t, x)
    if i >= len(t):
        return len(t) - 1
    if i > 0 and x - t[i - 1] < t[i] - x:
        return i - 1
    return i


def _refine(ser: _Series, first: int, last: int) -> tuple[int, int]:
    """Move each edge to the sharpest change in raw step length within +/- REFINE_S (the smoothing blurs
    edges by a few seconds)."""
    t, v, c, usable, n = ser.t, ser.v, ser.c, ser.usable, ser.n
    w = REFINE_SAMPLES

    def best(edge: int, sign: float, lo_limit: int, hi_limit: int) -> int:
        lo = max(bisect_left(t, t[edge] - REFINE_S), lo_limit)
        hi = min(bisect_right(t, t[edge] + REFINE_S), hi_limit)
        if lo >= hi:
            return edge
        # Raw steps (None where not usable) once, and the mean of each w-sample window ending at j, for
        # j in lo .. hi + w - 1, once: the window "before" k ends at k, the one "after" k ends at k + w.
        base = max(lo - w + 1, 0)
        steps = [v[i] / c[i] if usable[i] else None for i in range(base, min(hi + w, n))]
        means: list[float | None] = []
        gaps = None in steps  # mostly not: then each window is a plain slice, summed in the same order
        for j in range(lo, hi + w):
            # steps[max(j - w + 1, 0) - base : min(j + 1, n) - base], without the costly min() and max() calls
            a = j - w + 1 if j - w + 1 > 0 else 0
            b = j + 1 if j + 1 < n else n
            window = steps[a - base : b - base]
            if gaps:
                window = [x for x in window if x is not None]
            means.append(sum(window) / len(window) if len(window) >= 3 else None)
        chosen, score = edge, -math.inf
        for k in range(lo, hi):
            before, after = means[k - lo], means[k - lo + w]
            if before is None or after is None:
                continue
            value = sign * (before - after)
            if value > score:
                chosen, score = k, value
        return chosen

    # Start: the last forward sample (long steps up to it, short after). End: the last backward sample.
    new_first = best(first, 1.0, 0, last)
    new_last = best(last, -1.0, new_first + 1, ser.n - 1)
    return new_first, max(new_last, new_first + 1)


def _snap(ser: _Series, first: int, last: int, laps: list[tuple[float, float, bool]]) -> tuple[int, int]:
    """Edges move to a lap boundary within max(10 s, 20% of the segment): the athlete pressed lap there."""
    if not laps:
        return first, last
    t0 = ser.t[0]
    bounds = sorted({a for a, _, _ in laps} | {b for _, b, _ in laps})
    tol = max(10.0, 0.2 * (ser.t[last] - ser.t[first]))

    def snap(x: float) -> float:
        near = min(bounds, key=lambda b: abs(b - x))
        return near if abs(near - x) <= tol else x

    a = _nearest_index(ser.t, t0 + snap(ser.t[first] - t0))
    b = _nearest_index(ser.t, t0 + snap(ser.t[last] - t0))
    return (a, b) if b > a else (first, last)


@dataclass(frozen=True)
class _Side:
    """The forward running on one side of a segment: medians, and its samples (how much it varies by itself
    is worked out only when needed, in _unsteady)."""

    speed: float
    cadence: float
    grade: float
    speeds: list[float]
    cadences: list[float]


def _cv(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum([(x - mean) ** 2 for x in values]) / len(values)) / mean if mean > 0 else 0.0


def _distance_at(ser: _Series, i: int) -> float:
    """The recorded distance at sample i as a float; a missing value is 0 (as _floats reads a stream)."""
    assert ser.distance is not None
    x = ser.distance[i]
    return float(x) if x is not None else 0.0


def _side(ser: _Series, lo: int, hi: int, walk: bool, taken: list[bool]) -> _Side | None:
    # The flat samples of that gait not in a candidate, as a mask over the slice; values picked with compress.
    part = slice(max(lo, 0), min(hi, ser.n))
    mask = [
        f and not x and w is walk for f, x, w in zip(ser.flat[part], taken[part], ser.walk[part], strict=True)
    ]
    if mask.count(True) < MIN_SIDE_SAMPLES:
        return None
    vs = list(compress(ser.v[part], mask))
    cs = list(compress(ser.c[part], mask))
    gs = list(compress(ser.g[part], mask))
    return _Side(_median(vs), _median(cs), _median(gs), vs, cs)


def _evaluate(
    ser: _Series,
    model: _Model,
    first: int,
    last: int,
    taken: list[bool],
    laps: list[tuple[float, float, bool]],
    refs: _Refs,
    tagged: bool,
) -> _Candidate | None:
    t, v, c, g = ser.t, ser.v, ser.c, ser.g
    # The segment's usable samples once, as lists picked at C speed (compress over slices); sum over a list
    # beats a generator, and the order and so the sums are the same.
    inside = slice(first + 1, last + 1)
    usable = ser.usable[inside]
    idx = list(compress(range(first + 1, last + 1), usable))
    if len(idx) < 5:
        return None
    cand = _Candidate(first=first, last=last)
    k = len(idx)
    v_idx, c_idx = list(compress(v[inside], usable)), list(compress(c[inside], usable))
    v_seg = sum(v_idx) / k
    c_seg = sum(c_idx) / k
    g_seg = sum(list(compress(g[inside], usable))) / k
    cand.grade = g_seg
    cand.cadence = c_seg
    walking = list(compress(ser.walk[inside], usable)).count(True)
    cand.walk = walking * 2 > k
    cand.purity = max(walking, k - walking) / k
    cand.speed_cv = math.sqrt(sum([(x - v_seg) ** 2 for x in v_idx]) / k) / v_seg if v_seg > 0 else 9.9
    cand.cadence_cv = math.sqrt(sum([(x - c_seg) ** 2 for x in c_idx]) / k) / c_seg if c_seg > 0 else 9.9
    third = max(1, k // 3)
    cand.ramp = (sum(v_idx[-third:]) - sum(v_idx[:third])) / third / v_seg
    # A stop, a walk or a recording gap just before: a restart, where the device's speed lags the cadence.
    stopped = 0.0
    for i in range(max(bisect_left(t, t[first] - STOP_BEFORE_S), 1), first + 2):
        dt = t[i] - t[i - 1]
        if not ser.usable[i] or ser.walk[i] is not cand.walk or dt > MERGE_GAP_S:
            stopped += dt
    cand.after_stop = stopped >= STOP_MIN_S
    cand.duration_s = sum([t[i] - t[i - 1] for i in range(first + 1, last + 1) if ser.moving[i]])
    if ser.distance is not None:
        cand.distance_m = max(0.0, _distance_at(ser, last) - _distance_at(ser, first))
    else:
        cand.distance_m = sum([ser.v_raw[i] * (t[i] - t[i - 1]) for i in range(first + 1, last + 1)])

    # The forward running around it, before and after.
    ta, tb = t[first], t[last]
    kv, kl = model.grade_speed, model.grade_step
    sides = [
        _side(ser, bisect_left(t, ta - SIDE_S), bisect_right(t, ta - SIDE_GAP_S), cand.walk, taken),
        _side(ser, bisect_left(t, tb + SIDE_GAP_S), bisect_right(t, tb + SIDE_S), cand.walk, taken),
    ]
    found = [s for s in sides if s is not None]
    cand.sides = len(found)
    step_seg = v_seg / c_seg
    if found:
        speed_ratios = [v_seg / f.speed / math.exp(kv * (g_seg - f.grade)) for f in found]
        cadence_ratios = [c_seg / f.cadence for f in found]
        step_ratios = [step_seg / (f.speed / f.cadence) / math.exp(kl * (g_seg - f.grade)) for f in found]
        # Conservative: the effort must stand out against each side.
        cand.speed_ratio, cand.cadence_ratio, cand.step_ratio = (
            max(speed_ratios), min(cadence_ratios), max(step_ratios),
        )  # fmt: skip
        cand.forward = found
    else:
        ref_speed = refs.walk_speed if cand.walk else refs.run_speed
        ref_cadence = refs.walk_cadence if cand.walk else refs.run_cadence
        present = [i for i in idx if ref_speed[i] > 0]
        if present:
            rv = sum(ref_speed[i] for i in present) / len(present)
            rc = sum(ref_cadence[i] for i in present) / len(present)
            cand.speed_ratio = v_seg / rv / math.exp(kv * g_seg)
            cand.cadence_ratio = c_seg / rc
            cand.step_ratio = step_seg / (rv / rc) / math.exp(kl * g_seg)
        elif cand.walk:
            cand.speed_ratio = cand.step_ratio = step_seg * 30.0 / _walk_prior_step(v_seg)
        else:
            return None
    # Against the athlete's own forward step at the same speed; at walking pace, the forward-walk prior.
    cand.prior_ratio = step_seg * 30.0 / _walk_prior_step(v_seg) if cand.walk else 0.0
    cand.matched_ratio = cand.prior_ratio if cand.walk else step_seg * 30.0 / model.step(v_seg)

    # How many of its own samples say the same (a GPS wobble says it for a few).
    ref_step = step_seg / cand.step_ratio if cand.step_ratio > 0 else step_seg
    below = sum([x / y / ref_step < TAGGED.leave_step for x, y in zip(v_idx, c_idx, strict=True)])
    cand.consistency = below / k

    # Heart rate: the second half of the segment against its start. A recovery jog lets it fall.
    if ser.hr is not None:
        hr = ser.hr
        before = [
            hr[i]
            for i in range(bisect_left(t, ta - HR_START_S), bisect_right(t, ta + HR_START_S))
            if hr[i] > 0
        ]
        late = [hr[i] for i in range(bisect_left(t, (ta + tb) / 2.0), last + 1) if hr[i] > 0]
        if len(before) >= 3 and len(late) >= 3:
            cand.hr_change = sum(late) / len(late) - sum(before) / len(before)

    # GPS catch-up after a stretch where the position lagged: a jump above the forward speed.
    after = range(last + 1, bisect_right(t, tb + GPS_AFTER_S))
    forward_speed = max((f.speed for f in found), default=v_seg / max(cand.speed_ratio, 1e-6))
    cand.gps_suspect = any(ser.v_raw[i] > GPS_JUMP_FACTOR * forward_speed for i in after)

    t0 = t[0]
    for a, b, pattern in laps:
        if not pattern:
            continue
        inter = min(b, tb - t0) - max(a, ta - t0)
        union = max(b, tb - t0) - min(a, ta - t0)
        if union > 0 and inter / union >= 0.5:
            cand.lap_support = True
    cand.confidence = _confidence(cand, tagged)
    return cand


def _confidence(cand: _Candidate, tagged: bool) -> float:
    """Hand-set weights (no labelled backward recordings exist to fit them): how far the step falls short,
    how clearly cadence holds, duration, consistency, then heart rate, laps, GPS and grade."""
    depth = _clamp((0.88 - cand.step_ratio) / 0.25)
    cadence = _clamp((cand.cadence_ratio - 0.92) / 0.12)
    matched = _clamp((1.0 - cand.matched_ratio) / 0.12)
    duration = _clamp((cand.duration_s - 20.0) / 70.0)
    consistency = _clamp((cand.consistency - 0.5) / 0.4)
    conf = 0.3 + 0.2 * depth + 0.1 * cadence + 0.1 * matched + 0.1 * duration + 0.1 * consistency
    if cand.hr_change is not None:
        if cand.hr_change >= -2.0:
            conf += 0.07  # heart rate holds while speed falls: backward costs more per metre
        elif cand.hr_change <= -6.0:
            conf -= 0.25  # falls with the speed: a recovery jog
    if cand.lap_support:
        conf += 0.08
    if cand.sides < 2:
        conf -= 0.05
    if cand.gps_suspect or cand.after_stop:
        conf -= 0.2
    if _unsteady(cand) or abs(cand.ramp) > MAX_RAMP:
        conf -= 0.1
    if abs(cand.grade) > 3.0:
        conf -= 0.1
    if tagged:
        conf += 0.1
    return round(_clamp(conf, 0.05, STREAM_CONFIDENCE_MAX), 2)


def _unsteady(cand: _Candidate) -> bool:
    """Speed or cadence varies more than MAX_SPEED_CV or MAX_CADENCE_CV, and more than CV_FACTOR x the forward
    running around it. The forward running's variation (the costly part) only matters above the fixed
    floor, so it is worked out only there."""
    if cand.speed_cv > MAX_SPEED_CV:
        forward_cv = max((_cv(f.speeds) for f in cand.forward), default=0.0)
        if cand.speed_cv > max(MAX_SPEED_CV, CV_FACTOR * forward_cv):
            return True
    if cand.cadence_cv > MAX_CADENCE_CV:
        forward_cv = max((_cv(f.cadences) for f in cand.forward), default=0.0)
        if cand.cadence_cv > max(MAX_CADENCE_CV, CV_FACTOR * forward_cv):
            return True
    return False


def _passes(cand: _Candidate, p: _Profile) -> bool:
    if cand.duration_s < p.min_duration_s or cand.distance_m < p.min_distance_m:
        return False
    if cand.step_ratio > p.max_step or cand.speed_ratio > p.max_speed or cand.cadence_ratio < p.min_cadence:
        return False
    if cand.matched_ratio > p.max_matched:
        return False
    if cand.consistency < p.min_consistency or abs(cand.grade) > p.max_abs_grade:
        return False
    if p.both_sides and cand.sides < 2:
        return False
    if cand.walk and cand.prior_ratio > p.max_walk_prior:
        return False
    if p.min_hr_change is not None:
        if cand.hr_change is None:
            if cand.cadence_ratio < p.no_hr_min_cadence or cand.step_ratio > p.no_hr_max_step:
                return False
        elif cand.hr_change < p.min_hr_change:
            return False
    if p.reject_restart and cand.after_stop and cand.ramp > MAX_RAMP:
        return False
    if p.reject_gps_suspect and (
        cand.gps_suspect
        or _unsteady(cand)
        or cand.purity < MIN_GAIT_PURITY
        or abs(cand.ramp) > MAX_RAMP
        or cand.after_stop
    ):
        return False
    return cand.confidence >= p.min_confidence


def _references(ser: _Series) -> _Refs:
    run, walk, run_extremes = _block_references(ser)
    run_speed, run_cadence = _per_sample(ser, run)
    if walk is not None:
        walk_speed, walk_cadence = _per_sample(ser, walk)
    else:
        walk_speed = walk_cadence = [0.0] * ser.n  # no flat walking sample: no walking level anywhere
    return _Refs(run_speed, run_cadence, walk_speed, walk_cadence, run_extremes, walk is not None)


def _stream_candidates(activity: Activity, ser: _Series, p: _Profile, tagged: bool) -> list[_Candidate]:
    refs = _references(ser)
    model = _fit_model(ser, refs.run_speed, refs.run_cadence)
    raw = _segments(ser, refs, model, p)
    if not raw:
        return []
    if p.max_abs_grade <= 3.0 and not ser.has_grade:
        return []  # untagged without a grade stream: a climb cannot be ruled out
    laps = _lap_spans(activity, ser)
    spans = []
    for a, b in raw:
        first, last = _refine(ser, max(a - 1, 0), b)
        spans.append(_snap(ser, first, last, laps))
    taken = [False] * ser.n
    for first, last in spans:
        taken[first + 1 : last + 1] = [True] * (last - first)
    out = []
    for first, last in spans:
        cand = _evaluate(ser, model, first, last, taken, laps, refs, tagged)
        if cand is not None and _passes(cand, p):
            out.append(cand)
    return out


def _stream_effort(
    ser: _Series, streams: Streams, cand: _Candidate, source: str, gait: Gait | None
) -> Effort:
    t0 = ser.t[0]
    steps = _stream_steps(streams, cand.first, cand.last)
    return Effort(
        start_s=ser.t[cand.first] - t0,
        end_s=ser.t[cand.last] - t0,
        distance_m=round(cand.distance_m, 1),
        duration_s=cand.duration_s,
        steps=steps,
        confidence=cand.confidence,
        source=source,  # type: ignore[arg-type]
        gait=gait or _gait_by_pace(cand.distance_m, cand.duration_s, steps, cand.cadence),
    )


def _streams_allowed(activity: Activity) -> bool:
    return not activity.trainer and not activity.manual and activity.sport_type not in _NO_STREAM_SPORTS


def detect_efforts(activity: Activity, streams: Streams | None, mode: Mode = "auto") -> list[Effort]:
    """Backward efforts, from the strongest evidence available.

    Lap names first; then, for a tagged activity, the segments its streams show (the best N when the words
    give a count), else the whole activity; in mode "auto" an untagged activity gets only very clear stream
    segments. The caller strips any Backstride note from the description first, so our own words never
    count.
    """
    if not activity.is_foot_sport:
        return []
    activity_tag = _activity_tag(activity)
    efforts: list[Effort] = []
    start_s = 0.0
    for lap in sorted(activity.laps, key=lambda lap: lap.index):
        lap_tag = lap_is_backward(lap.name)
        if lap_tag is not None:
            efforts.append(_lap_effort(lap, start_s, streams, lap_tag, activity_tag))
        start_s += lap.elapsed_time_s
    if efforts or (activity_tag is None and mode != "auto"):
        return [effort for effort in efforts if effort.duration_s > 0]
    ser = _prepare(streams) if _streams_allowed(activity) else None
    if activity_tag is not None:
        if ser is not None:
            assert streams is not None
            expected = expected_efforts(activity)
            found = _stream_candidates(activity, ser, COUNTED if expected else TAGGED, tagged=True)
            if expected:
                found = sorted(found, key=lambda c: -c.confidence)[:expected]
            found.sort(key=lambda c: c.first)
            efforts = [_stream_effort(ser, streams, c, "tag", activity_tag.gait) for c in found]
        if not efforts:
            efforts = [_whole_effort(activity, streams, activity_tag)]
    elif ser is not None:
        assert streams is not None
        found = _stream_candidates(activity, ser, AUTO, tagged=False)
        efforts = [_stream_effort(ser, streams, c, "stream", None) for c in found]
    # A lap or activity without time cannot be priced or counted.
    return [effort for effort in efforts if effort.duration_s > 0]
