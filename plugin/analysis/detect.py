"""Find backward ("retro") efforts in an activity: first version, from tags and lap names only.

A later version adds stream-based detection. Here streams are only used to count the steps of an effort the
athlete has already named, so an untagged activity costs no stream call. Precision comes first: a note on a
forward run is public and wrong, so every phrase below must be about the body going backward, not the route.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

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


def _activity_tag(activity: Activity) -> TagMatch | None:
    # A newline keeps the route check from reading across name and description.
    return find_tag(f"{activity.name or ''}\n{activity.description or ''}")


def wants_streams(activity: Activity) -> bool:
    """Whether fetching streams is worth a call: a tagged, recorded (not manual) foot activity."""
    return activity.is_foot_sport and not activity.manual and _activity_tag(activity) is not None


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


def detect_efforts(activity: Activity, streams: Streams | None) -> list[Effort]:
    """Backward efforts from lap names, else the whole activity when its name or description is tagged.

    The caller strips any Backstride note from the description first, so our own words never count as a tag.
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
    if not efforts and activity_tag is not None:
        efforts.append(_whole_effort(activity, streams, activity_tag))
    # A lap or activity without time cannot be priced or counted.
    return [effort for effort in efforts if effort.duration_s > 0]
