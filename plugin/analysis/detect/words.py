"""The athlete's words: tags in the title or description, lap names, and the counts, distances and durations
they give ("4x200m retro", "1 km backward", "10 min retro", "retro mile").

Nine languages are understood: English, German, French, Spanish, Italian, Portuguese, Dutch, Chinese and
Japanese. A match must be about the body going backward, not the route ("ran my loop backwards") or an idiom
("faire marche arrière").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from plugin.domain import Activity, Gait


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


def activity_tag(activity: Activity) -> TagMatch | None:
    """The tag in the title or description, or a count or an amount ("3 retro intervals", "1 km backward")
    standing in for one."""
    text = _activity_text(activity)
    tag = find_tag(text)
    if tag is None:
        # "3 retro intervals", "10 min retro" name backward efforts even without a tag phrase.
        counted = _count_phrase(text)
        if counted is not None:
            return TagMatch(gait=None, phrase=counted[1])
        amount = stated_amount(activity)
        if amount is not None:
            return TagMatch(gait=None, phrase=amount.phrase)
    return tag


def expected_efforts(activity: Activity) -> int | None:
    """The number of backward efforts the title or description announces, if it says."""
    amount = stated_amount(activity)
    if amount is not None and amount.count is not None:
        return amount.count
    counted = _count_phrase(_activity_text(activity))
    return counted[0] if counted else None


# --- distances and durations in the athlete's words -------------------------------------------------------


@dataclass(frozen=True)
class Amount:
    """How far or how long the words say the backward part was: `count` efforts (None: not said) of each_m
    metres or each_s seconds."""

    count: int | None
    each_m: float | None
    each_s: float | None
    phrase: str

    @property
    def efforts(self) -> int:
        return self.count or 1

    @property
    def total_m(self) -> float | None:
        return self.each_m * self.efforts if self.each_m is not None else None

    @property
    def total_s(self) -> float | None:
        return self.each_s * self.efforts if self.each_s is not None else None


_METRES_PER_UNIT = {
    **dict.fromkeys(
        ("m", "meter", "meters", "metre", "metres", "mètre", "mètres", "metro", "metros", "metri", "米",
         "メートル"),
        1.0,
    ),
    **dict.fromkeys(
        ("km", "k", "kilometer", "kilometers", "kilometre", "kilometres", "kilomètre", "kilomètres",
         "kilómetro", "kilómetros", "kilometro", "kilometros", "chilometro", "chilometri", "公里", "千米",
         "キロ"),
        1000.0,
    ),
    **dict.fromkeys(
        ("mi", "mile", "miles", "meile", "meilen", "milla", "millas", "miglio", "miglia", "英里", "マイル"),
        1609.344,
    ),
}  # fmt: skip
_SECONDS_PER_UNIT = {
    **dict.fromkeys(
        ("s", "sec", "secs", "second", "seconds", "sekunde", "sekunden", "seconde", "secondes", "segundo",
         "segundos", "secondo", "secondi", "秒", '"'),
        1.0,
    ),
    **dict.fromkeys(
        ("min", "mins", "minute", "minutes", "minuten", "minuto", "minutos", "minuti", "分钟", "分", "分間",
         "'"),
        60.0,
    ),
    **dict.fromkeys(
        ("h", "hr", "hrs", "hour", "hours", "stunde", "stunden", "heure", "heures", "hora", "horas", "ora",
         "ore", "小时", "時間"),
        3600.0,
    ),
}  # fmt: skip
_UNIT = "|".join(
    sorted((re.escape(u) for u in (*_METRES_PER_UNIT, *_SECONDS_PER_UNIT)), key=len, reverse=True)
)
_QUANTITY = rf"(?P<num>\d+(?:[.,]\d+)?)\s*(?P<unit>{_UNIT})(?![^\W\d_])"
_TIMES = r"(?:(?P<count>\d{1,2})\s*[x×]\s*)"
# Words for backward (or a tag phrase) that an amount can stand next to.
_BACKWARD_WORD = re.compile(
    rf"{_B}(?:#?retro\w*|#?backwards?|bwd|{_RUECK}\w*|[àa]\s+reculons|arri[eè]re|hacia\s+{_ATRAS}"
    rf"|{_ATRAS}|all(?:['’ʼ]\s?|\s)indietro|de\s+costas|para\s+tr[aá]s|achteruit\w*){_E}"
    r"|倒(?:着|著|退)?[跑走]|後ろ向き|後ろ(?:走り|歩き)|バック走",
    re.IGNORECASE,
)
# The amount just before the backward word ("4x200m retro", "1 km backward", "2 km de marche arrière")...
_AMOUNT_BEFORE = re.compile(
    rf"{_B}{_TIMES}?{_QUANTITY}\s*(?:(?:of|de|di|marche|course|carrera|corsa|corrida)\s+){{0,2}}$",
    re.IGNORECASE,
)
# ...or just after it ("retro 15 min", "ran backwards for 1k", "Rückwärtslauf 2 km", "倒走1公里").
_AMOUNT_AFTER = re.compile(
    rf"^[\w\s-]{{0,24}}?(?:\s|^|for\s+|für\s+|pendant\s+|durante\s+|per\s+|:\s*){_TIMES}?{_QUANTITY}",
    re.IGNORECASE,
)
# CJK text has no spaces: the unit runs on into the next word ("1km走った").
_AMOUNT_AFTER_CJK = re.compile(rf"^[^\d\n]{{0,4}}?{_TIMES}?(?P<num>\d+(?:[.,]\d+)?)\s*(?P<unit>{_UNIT})")
# "retro mile", "a mile backwards", "Retro kilometre": one of it, no number.
_ONE_UNIT = re.compile(
    rf"{_B}(?:(?:retro|backwards?)\s+(?P<u1>mile|kilometre|kilometer|km|k)|(?:a|one)\s+(?P<u2>mile|kilometre"
    rf"|kilometer|km|k)\s+(?:retro|backwards?)){_E}",
    re.IGNORECASE,
)
# "8x200": repeats of a bare number are metres on a track.
_BARE_REPEATS = re.compile(
    r"(?<![\w.,])(?P<count>\d{1,2})\s*[x×]\s*(?P<num>\d{2,4})(?![\w.,'\"])", re.IGNORECASE
)
BARE_REPEAT_METRES = (50.0, 5000.0)
# A clause ends at punctuation, but not at the decimal mark of a number ("1,5 km").
_AMOUNT_CLAUSE_BREAK = re.compile(
    r"(?<!\d)[.,]|[.,](?!\d)|[;:!?()\[\]{}|/+\n]|(?<!\w)(?:and|then|with|plus|but|or|before|after|while|&)(?!\w)",
    re.IGNORECASE,
)
# What a stated amount can be: shorter is a typo or another unit ("1m" for a minute), longer something else (a
# race distance, a date).
STATED_M = (20.0, 50_000.0)
STATED_S = (10.0, 6 * 3600.0)


def _quantity(m: re.Match[str]) -> tuple[float | None, float | None]:
    value = float(m.group("num").replace(",", "."))
    unit = m.group("unit").lower()
    if unit in _METRES_PER_UNIT:
        metres = value * _METRES_PER_UNIT[unit]
        return (metres, None) if STATED_M[0] <= metres <= STATED_M[1] else (None, None)
    seconds = value * _SECONDS_PER_UNIT[unit]
    return (None, seconds) if STATED_S[0] <= seconds <= STATED_S[1] else (None, None)


def _amount_near(text: str, start: int, end: int) -> Amount | None:
    clause_start = max((m.end() for m in _AMOUNT_CLAUSE_BREAK.finditer(text, 0, start)), default=0)
    before = _AMOUNT_BEFORE.search(text, clause_start, start)
    found = before
    if found is None:
        after = text[end:]
        clause = _AMOUNT_CLAUSE_BREAK.search(after)
        after = after[: clause.start()] if clause else after
        found = _AMOUNT_AFTER.match(after) or _AMOUNT_AFTER_CJK.match(after)
    if found is None:
        return None
    each_m, each_s = _quantity(found)
    if each_m is None and each_s is None:
        return None
    count = int(found.group("count")) if found.group("count") else None
    if count is not None and not 1 <= count <= MAX_EXPECTED_EFFORTS:
        return None
    if before is not None and _ROUTE_NOUNS.intersection(_words_before(text, before.start())):
        return None  # "did the 5 km loop backwards" is about the route
    return Amount(count, each_m, each_s, found.group(0).strip())


def stated_amount(activity: Activity) -> Amount | None:
    """How far or how long the title or description says the backward part was, with how many efforts when
    it says; None when the words give no distance or duration next to a backward word."""
    text = unicodedata.normalize("NFC", _activity_text(activity))
    for m in _ONE_UNIT.finditer(text):
        unit = (m.group("u1") or m.group("u2")).lower()
        return Amount(None, _METRES_PER_UNIT[unit], None, m.group(0))
    counted = _count_phrase(text)
    for m in _BACKWARD_WORD.finditer(text):
        amount = _amount_near(text, m.start(), m.end())
        if amount is not None:
            if amount.count is None and counted is not None:
                amount = Amount(counted[0], amount.each_m, amount.each_s, amount.phrase)
            return amount
    if counted is not None:
        bare = _BARE_REPEATS.search(counted[1]) or _BARE_REPEATS.search(text, text.find(counted[1]))
        if bare is not None and BARE_REPEAT_METRES[0] <= float(bare.group("num")) <= BARE_REPEAT_METRES[1]:
            return Amount(int(bare.group("count")), float(bare.group("num")), None, bare.group(0))
    return None


def has_backward_lap(activity: Activity) -> bool:
    return any(lap_is_backward(lap.name) is not None for lap in activity.laps)
