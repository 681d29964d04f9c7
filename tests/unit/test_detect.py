"""Tags, lap labels, the athlete's words, and the effort detector from laps, tags and streams
(plugin/analysis/detect/)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugin.analysis.detect import (
    IMPLAUSIBLE,
    NO_BLOCK_FOUND,
    TagMatch,
    detect,
    detect_efforts,
    expected_efforts,
    find_tag,
    lap_is_backward,
    wants_streams,
)
from plugin.analysis.detect.words import stated_amount
from plugin.domain import Activity, Effort, Lap, Streams
from plugin.sandbox.seed import load_seed_activity


def activity(**overrides: object) -> Activity:
    fields: dict[str, object] = {
        "id": 1,
        "athlete_id": 7,
        "name": "Morning Run",
        "description": "",
        "sport_type": "Run",
        "distance_m": 5000.0,
        "moving_time_s": 1500.0,
        "elapsed_time_s": 1600.0,
    }
    fields.update(overrides)
    return Activity(**fields)  # type: ignore[arg-type]


def lap(
    index: int, name: str, elapsed: float, moving: float | None = None, distance: float = 0.0, **kw: object
) -> Lap:
    return Lap(
        index=index,
        name=name,
        elapsed_time_s=elapsed,
        moving_time_s=elapsed if moving is None else moving,
        distance_m=distance,
        **kw,  # type: ignore[arg-type]
    )


# --- find_tag: explicit signals ---

POSITIVE = [
    # English hashtags
    ("#retro", None),
    ("Sunday shuffle #RETRO", None),
    ("#retrorun", "run"),
    ("#retrowalk", "walk"),
    ("#backwards", None),
    ("#backward", None),
    ("#backwardsrun", "run"),
    ("#backwardrunning", "run"),
    ("#ReverseRunning", "run"),
    ("#deadmill", None),
    ("10 min on the deadmill", None),
    # English phrases
    ("Backwards run", "run"),
    ("backward running drills", "run"),
    ("backwards runs are hard", "run"),
    ("Backwards jog to cool down", "run"),
    ("backward-running intervals", "run"),
    ("backwards walk up the hill", "walk"),
    ("backward walking for my knee", "walk"),
    ("Ran backwards for 1k", "run"),
    ("walked backwards the whole way home", "walk"),
    ("jogged backward", "run"),
    ("ran backwards around the track", "run"),
    ("Retro run", "run"),
    ("retro running club", "run"),
    ("retro-walking", "walk"),
    ("retro jog", "run"),
    ("Reverse running session", "run"),
    ("reverse walking", "walk"),
    ("Running in reverse", "run"),
    ("walking in reverse on the treadmill", "walk"),
    ("Track session: backwards running 8x200", "run"),
    ("Easy loop with backwards running drills", "run"),
    ("Did my route, then ran backwards for 400 m", "run"),
    # German
    ("rückwärts laufen", "run"),
    ("Rückwärtslaufen im Park", "run"),
    ("Rückwärtslauf", "run"),
    ("ruckwarts laufen", "run"),
    ("rueckwaerts gelaufen", "run"),
    ("rückwärts gehen", "walk"),
    ("Rückwärtsgehen", "walk"),
    ("rückwärts joggen", "run"),
    ("RÜCKWÄRTS LAUFEN", "run"),
    # French
    ("course arrière", "run"),
    ("Course arriere", "run"),
    ("courir à reculons", "run"),
    ("courir a reculons", "run"),
    ("course à reculons", "run"),
    ("marcher à reculons", "walk"),
    ("2 km de marche arrière", "walk"),
    # Spanish
    ("correr hacia atrás", "run"),
    ("correr hacia atras", "run"),
    ("carrera hacia atrás", "run"),
    ("caminar hacia atrás", "walk"),
    ("marcha atrás en la cinta", "walk"),
    # Italian
    ("corsa all'indietro", "run"),
    ("Corsa all’indietro", "run"),
    ("correre all'indietro", "run"),
    ("camminata all'indietro", "walk"),
    ("camminare all'indietro", "walk"),
    # Portuguese
    ("correr de costas", "run"),
    ("corrida de costas", "run"),
    ("caminhar de costas", "walk"),
    ("caminhada de costas", "walk"),
    ("corrida para trás", "run"),
    ("corrida para tras", "run"),
    # Dutch ("lopen" is said of walking and of running: no gait)
    ("achteruit lopen", None),
    ("Achteruitlopen", None),
    ("achteruit rennen", "run"),
    ("achteruit wandelen", "walk"),
    # Chinese
    ("倒跑", "run"),
    ("今天倒跑5公里", "run"),
    ("倒走", "walk"),
    ("倒着跑", "run"),
    ("倒着走", "walk"),
    ("倒退跑", "run"),
    ("公园倒退走30分钟", "walk"),
    # Japanese (走 means run)
    ("後ろ向き走", "run"),
    ("後ろ向きに走った", "run"),
    ("後ろ歩き", "walk"),
    ("後ろ向き歩き", "walk"),
    ("バック走", "run"),
    ("後ろ走り", "run"),
]


@pytest.mark.parametrize(("text", "gait"), POSITIVE)
def test_find_tag_detects_backward_locomotion(text: str, gait: str | None) -> None:
    tag = find_tag(text)
    assert tag is not None, text
    assert tag.gait == gait
    assert tag.phrase
    assert tag.phrase.lower() in text.lower()


NEGATIVE = [
    "",
    "Morning Run",
    "Easy 10k, legs felt good",
    # look-alike words
    "retrograde amnesia jokes on the run",
    "metro running late again",
    "#retrograde",
    "#retro2024",
    "Retro running shoes finally arrived",
    "reverse walking lunges at the gym",
    # route phrases: forward running on a reversed route
    "ran my loop backwards",
    "did the route backwards",
    "ran the course in reverse",
    "the usual loop in reverse",
    "ran the parkrun course backwards",
    "reverse loop",
    "backwards route",
    "did my lap backwards",
    "Parkrun course backwards run",
    "loop backwards run for a change",
    "the parkrun ran backwards this week",
    "ran backwards loop",
    "running in reverse direction",
    "running in reverse order of the intervals",
    "the course is run in reverse this year",
    "reverse run of the usual circuit",
    "My loop #backwards",
    # idioms that share the words
    "ran backwards and forwards along the beach",
    "walked backward and forward waiting for the bus",
    "J'ai fait marche arrière au km 5",
    "Tuve que dar marcha atrás por la lluvia",
    "摔倒走不了",
    "カムバック走",
    "a long walk back home",
    "Out and back",
]


@pytest.mark.parametrize("text", NEGATIVE)
def test_find_tag_ignores_forward_and_look_alike_text(text: str) -> None:
    assert find_tag(text) is None


def test_find_tag_returns_the_matched_words() -> None:
    assert find_tag("Lovely day. Did 2 km Backwards Running at the end") == TagMatch(
        gait="run", phrase="Backwards Running"
    )


def test_find_tag_hashtag_plus_phrase_takes_the_phrase_gait() -> None:
    assert find_tag("#retro: backwards walk with the dog") == TagMatch(gait="walk", phrase="backwards walk")


def test_find_tag_both_gaits_leaves_gait_open() -> None:
    tag = find_tag("retro walk warm-up then retro run")
    assert tag is not None
    assert tag.gait is None


def test_find_tag_accepts_decomposed_umlaut() -> None:
    assert find_tag("Ru\u0308ckwa\u0308rts laufen") == TagMatch(gait="run", phrase="Rückwärts laufen")


# --- lap labels ---


@pytest.mark.parametrize(
    "name",
    [
        "Backward",
        "backwards",
        "Retro",
        "Retro 2",
        "BWD",
        "BWD #3",
        "bwd-4",
        "Rückwärts",
        "ruckwarts 1",
        "Arrière",
        "arriere",
        "Atrás",
        "atras 2",
        "  Retro  ",
        "Backwards run",
        "Lap 3 - retro walk",
        "倒走",
    ],
)
def test_lap_is_backward_accepts_labels_and_tags(name: str) -> None:
    assert lap_is_backward(name) is not None


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Lap 1",
        "Run",
        "Warm Up",
        "Cool Down",
        "Back",
        "Back home",
        "Retro lap",
        "Backstretch",
        "Recover",
        "2 back",
        "Backwards loop",
    ],
)
def test_lap_is_backward_rejects_other_lap_names(name: str) -> None:
    assert lap_is_backward(name) is None


def test_lap_label_has_no_gait_but_lap_phrase_does() -> None:
    assert lap_is_backward("Retro 2") == TagMatch(gait=None, phrase="Retro 2")
    assert lap_is_backward("retro walk") == TagMatch(gait="walk", phrase="retro walk")


# --- wants_streams ---


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"name": "Backwards run #retro"}, True),
        ({"description": "Did 2 km backwards running"}, True),
        ({"sport_type": "Walk", "name": "Retro walk"}, True),
        ({"sport_type": "TrailRun", "name": "#backwards"}, True),
        ({"name": "Backwards run", "manual": True}, False),
        ({"sport_type": "Ride", "name": "#retro"}, False),
        ({"sport_type": "Swim", "description": "backwards running after"}, False),
        ({"name": "Morning Run"}, False),
        ({"name": "Ran my loop backwards"}, False),
    ],
)
def test_wants_streams(overrides: dict[str, object], expected: bool) -> None:
    assert wants_streams(activity(**overrides)) is expected


def test_wants_streams_for_a_lap_named_backward() -> None:
    # A lap name is the athlete's own tag (it was not in the first version): the streams count its steps.
    assert wants_streams(activity(laps=(lap(0, "Retro", 300.0),))) is True
    assert wants_streams(activity(laps=(lap(0, "Retro", 300.0),)), "tagged") is True


# --- detect_efforts ---


def test_non_foot_sport_has_no_efforts() -> None:
    assert detect_efforts(activity(sport_type="Ride", name="#retro"), None) == []


def test_untagged_activity_without_backward_laps_has_no_efforts() -> None:
    assert detect_efforts(activity(laps=(lap(0, "Lap 1", 600.0),)), None) == []


def test_tagged_whole_activity_counts_steps_from_cadence_stream() -> None:
    streams = Streams(time=(0.0, 1.0, 2.0, 4.0, 6.0), cadence=(90.0, 90.0, 0.0, 75.0, 60.0))
    act = activity(
        name="Retro run",
        distance_m=12.0,
        moving_time_s=6.0,
        elapsed_time_s=6.0,
        average_cadence=75.0,
    )
    [effort] = detect_efforts(act, streams)
    # Each sample covers the interval ending at it, steps = 2 x cadence / 60 x dt; the zero sample is skipped:
    # 2*90/60*1 + 2*75/60*2 + 2*60/60*2 = 3 + 5 + 4 = 12 (not 2*75*6/60 = 15 from the average).
    assert effort.steps == 12
    assert effort.source == "whole"
    assert effort.start_s == 0.0
    assert effort.end_s == 6.0
    assert effort.duration_s == 6.0
    assert effort.distance_m == 12.0
    assert effort.gait == "run"
    assert effort.confidence == pytest.approx(0.85)


def test_tagged_manual_activity_is_one_whole_effort() -> None:
    act = activity(
        name="Treadmill",
        description="20 min #retrowalk",
        manual=True,
        distance_m=0.0,
        moving_time_s=1200.0,
        elapsed_time_s=1500.0,
    )
    [effort] = detect_efforts(act, None)
    assert effort.source == "whole"
    assert effort.duration_s == 1200.0
    assert effort.end_s == 1500.0
    assert effort.distance_m == 0.0
    assert effort.steps is None
    assert effort.gait == "walk"
    assert effort.confidence == pytest.approx(0.9)


def test_whole_effort_steps_from_average_cadence_without_streams() -> None:
    act = activity(
        name="#retro", distance_m=2000.0, moving_time_s=600.0, elapsed_time_s=650.0, average_cadence=85.0
    )
    [effort] = detect_efforts(act, None)
    assert effort.steps == 1700  # 2 x 85 per leg x 10 min
    assert effort.gait == "run"  # 3.3 m/s


def test_whole_effort_elapsed_time_when_moving_time_missing() -> None:
    act = activity(name="#backwards", moving_time_s=0.0, elapsed_time_s=900.0, distance_m=900.0)
    [effort] = detect_efforts(act, None)
    assert effort.duration_s == 900.0
    assert effort.end_s == 900.0
    assert effort.gait == "walk"  # 1.0 m/s


def test_tagged_activity_without_any_time_is_dropped() -> None:
    act = activity(name="#retro", manual=True, moving_time_s=0.0, elapsed_time_s=0.0, distance_m=0.0)
    assert detect_efforts(act, None) == []


def test_route_phrase_gives_no_effort() -> None:
    assert detect_efforts(activity(name="Ran the parkrun course backwards"), None) == []


def test_lap_efforts_start_after_earlier_laps() -> None:
    laps = (
        lap(2, "Retro 2", 200.0, moving=180.0, distance=300.0),
        lap(0, "Warm Up", 600.0, distance=1800.0),
        lap(1, "Backwards", 130.0, moving=120.0, distance=240.0, average_cadence=80.0),
        lap(3, "Cool Down", 300.0, distance=900.0),
    )
    efforts = detect_efforts(activity(name="Morning Run", laps=laps), None)
    assert [(e.start_s, e.end_s, e.duration_s, e.distance_m) for e in efforts] == [
        (600.0, 730.0, 120.0, 240.0),
        (730.0, 930.0, 180.0, 300.0),
    ]
    assert all(e.source == "lap" for e in efforts)
    assert all(e.confidence == pytest.approx(0.8) for e in efforts)
    assert efforts[0].steps == 320  # 2 x 80 per leg x 2 min
    assert efforts[1].steps is None  # no cadence known


def test_lap_efforts_are_more_confident_when_activity_is_tagged() -> None:
    laps = (lap(0, "Lap 1", 600.0, distance=1800.0), lap(1, "BWD", 120.0, distance=150.0))
    efforts = detect_efforts(activity(name="Intervals #retro", laps=laps), None)
    assert len(efforts) == 1
    assert efforts[0].confidence == pytest.approx(0.9)
    assert efforts[0].start_s == 600.0


def test_lap_steps_from_stream_indices() -> None:
    streams = Streams(time=(0.0, 1.0, 2.0, 4.0, 6.0), cadence=(90.0, 90.0, 0.0, 75.0, 60.0))
    laps = (
        lap(0, "Lap 1", 2.0, distance=6.0, start_index=0, end_index=2),
        lap(1, "Retro", 4.0, distance=4.0, start_index=2, end_index=4, average_cadence=99.0),
    )
    [effort] = detect_efforts(activity(laps=laps, moving_time_s=6.0, elapsed_time_s=6.0), streams)
    # Samples 3 and 4 only: 2*75/60*2 + 2*60/60*2 = 5 + 4.
    assert effort.steps == 9
    assert effort.start_s == 2.0


def test_lap_without_time_is_dropped() -> None:
    laps = (lap(0, "Retro", 0.0, distance=0.0), lap(1, "Retro", 60.0, distance=60.0))
    [effort] = detect_efforts(activity(laps=laps), None)
    assert effort.start_s == 0.0
    assert effort.duration_s == 60.0


@pytest.mark.parametrize(
    ("distance", "cadence", "gait"),
    [
        (400.0, None, "run"),  # 2.0 m/s
        (320.0, None, "run"),  # exactly 1.6 m/s
        (200.0, None, "walk"),  # 1.0 m/s
        (200.0, 80.0, "run"),  # slow, but 160 steps/min is running
        (200.0, 65.0, "walk"),
        (0.0, None, "walk"),  # nothing measured: the slow gait
    ],
)
def test_lap_gait_by_speed_and_cadence(distance: float, cadence: float | None, gait: str) -> None:
    laps = (lap(0, "Backwards", 200.0, distance=distance, average_cadence=cadence),)
    [effort] = detect_efforts(activity(laps=laps), None)
    assert effort.gait == gait


def test_running_pace_is_running_whatever_the_tag_says() -> None:
    fast = activity(name="#retrowalk", distance_m=2000.0, moving_time_s=600.0)  # 3.3 m/s
    assert [e.gait for e in detect_efforts(fast, None)] == ["run"]
    slow = activity(name="#retrowalk", distance_m=600.0, moving_time_s=600.0)  # 1.0 m/s
    assert [e.gait for e in detect_efforts(slow, None)] == ["walk"]
    jog = activity(name="#retrorun", distance_m=600.0, moving_time_s=600.0)  # slow, but the athlete ran
    assert [e.gait for e in detect_efforts(jog, None)] == ["run"]


def test_a_fast_lap_named_walk_is_running() -> None:
    laps = (lap(0, "Backward walk", 300.0, distance=750.0, average_cadence=90.0),)  # 2.5 m/s, 90 per leg
    [effort] = detect_efforts(activity(laps=laps), None)
    assert effort.gait == "run"


def test_lap_label_takes_gait_from_activity_tag() -> None:
    laps = (lap(0, "Retro 1", 300.0, distance=300.0),)  # 1 m/s: the athlete's words decide
    [effort] = detect_efforts(activity(name="Retro walk intervals", laps=laps), None)
    assert effort.gait == "walk"


def test_lap_phrase_gait_wins_over_activity_tag() -> None:
    laps = (lap(0, "backwards walk", 300.0, distance=300.0),)
    [effort] = detect_efforts(activity(name="#retrorun", laps=laps), None)
    assert effort.gait == "walk"


# --- stream detection: synthetic recordings ---
#
# A forward run at 3.0-3.4 m/s and 82-86 steps per leg per minute, heart rate 150-160, 1 Hz; pieces of it
# replaced by backward efforts (speed x0.55-0.75 and cadence x1.0-1.1 of the forward level, heart rate
# holding) or by the things that must not become efforts.


@dataclass(frozen=True)
class Piece:
    start: int  # seconds from the start
    duration: int
    speed: float = 1.0  # factor of the forward speed...
    cadence: float = 1.0  # ...and cadence at that moment
    abs_speed: float | None = None  # or absolute values
    abs_cadence: float | None = None
    hr: str = "hold"  # "hold" (creeps up), "fall" (recovery), "rise" (climb)
    grade: float = 0.0
    moving: bool = True


def recording(
    minutes: int = 40,
    pieces: tuple[Piece, ...] = (),
    *,
    seed: int = 7,
    speed: tuple[float, float] = (3.0, 3.4),
    cadence: tuple[float, float] = (82.0, 86.0),
    heart_rate: bool = True,
    grade: bool = True,
    spikes: bool = False,
    name: str = "Morning Run",
    sport: str = "Run",
    trainer: bool = False,
) -> tuple[Activity, Streams]:
    rnd = random.Random(seed)
    n = minutes * 60 + 1
    mid_v, half_v = sum(speed) / 2, (speed[1] - speed[0]) / 2
    mid_c, half_c = sum(cadence) / 2, (cadence[1] - cadence[0]) / 2
    t, d, v, c, h, g, moving = [], [], [], [], [], [], []
    dist, heart = 0.0, 155.0
    for i in range(n):
        fv = mid_v + half_v * math.sin(i / 420.0) + rnd.gauss(0.0, 0.06)
        fc = mid_c + half_c * math.sin(i / 333.0 + 1.0) + rnd.gauss(0.0, 0.8)
        sv, sc, sg, mv, hr_mode = fv, fc, 0.0, True, None
        for p in pieces:
            if p.start <= i < p.start + p.duration:
                sv = fv * p.speed if p.abs_speed is None else p.abs_speed + rnd.gauss(0.0, 0.04)
                sc = fc * p.cadence if p.abs_cadence is None else p.abs_cadence + rnd.gauss(0.0, 0.8)
                sg, mv, hr_mode = p.grade, p.moving, p.hr
                if not p.moving:
                    sv = sc = 0.0
        if hr_mode == "fall":
            heart += (128.0 - heart) / 30.0
        elif hr_mode == "rise":
            heart += (175.0 - heart) / 40.0
        elif hr_mode == "hold":
            heart += 0.04
        else:
            heart += (155.0 + 5.0 * math.sin(i / 600.0) - heart) / 40.0
        if spikes and i % 137 == 50:
            sv = 9.0 + 3.0 * rnd.random()  # GPS jumps
        dist += sv
        t.append(float(i))
        d.append(round(dist, 1))
        v.append(round(max(sv, 0.0), 2))
        c.append(float(round(max(sc, 0.0))))
        h.append(float(round(heart)))
        g.append(sg)
        moving.append(mv and sv > 0.3)
    if spikes:  # and drop-outs: speed collapses for a few seconds while the feet go on
        for k in range(300, n - 300, 173):
            v[k : k + 6] = [0.6] * 6
    streams = Streams(
        time=tuple(t),
        distance=tuple(d),
        velocity_smooth=tuple(v),
        cadence=tuple(c),
        heartrate=tuple(h) if heart_rate else None,
        grade_smooth=tuple(g) if grade else None,
        moving=tuple(moving),
    )
    act = activity(
        name=name,
        sport_type=sport,
        distance_m=dist,
        moving_time_s=n - 1.0,
        elapsed_time_s=n - 1.0,
        trainer=trainer,
    )
    return act, streams


def iou(effort: Effort, start: float, end: float) -> float:
    inter = min(effort.end_s, end) - max(effort.start_s, start)
    union = max(effort.end_s, end) - min(effort.start_s, start)
    return inter / union if inter > 0 else 0.0


def assert_matches(efforts: list[Effort], pieces: tuple[Piece, ...]) -> None:
    """Each piece found once (IoU >= 0.5), and nothing else."""
    assert len(efforts) == len(pieces), [(e.start_s, e.end_s) for e in efforts]
    for effort, piece in zip(efforts, sorted(pieces, key=lambda p: p.start), strict=True):
        assert iou(effort, piece.start, piece.start + piece.duration) >= 0.5, (effort, piece)


CLEAR = (
    Piece(600, 90, speed=0.6, cadence=1.05),
    Piece(1300, 150, speed=0.65, cadence=1.0),
    Piece(2000, 240, speed=0.7, cadence=1.1),
)


def test_auto_mode_finds_each_clear_backward_effort_and_nothing_else() -> None:
    act, streams = recording(45, CLEAR)
    efforts = detect_efforts(act, streams)
    assert_matches(efforts, CLEAR)
    for effort, piece in zip(efforts, CLEAR, strict=True):
        assert effort.source == "stream"
        assert effort.gait == "run"  # cadence above 70 per leg
        assert 0.75 <= effort.confidence <= 1.0
        assert effort.duration_s == pytest.approx(piece.duration, abs=3)
        # Steps are the cadence integral: about 2 x 84 x factor per minute.
        assert effort.steps == pytest.approx(2 * 84 * piece.cadence * piece.duration / 60, rel=0.05)
        assert effort.distance_m == pytest.approx(3.2 * piece.speed * piece.duration, rel=0.1)


SPEC_CORNERS = [
    (Piece(700, 60, speed=0.75, cadence=1.0), Piece(1500, 240, speed=0.55, cadence=1.1)),
    (Piece(700, 240, speed=0.75, cadence=1.1), Piece(1500, 60, speed=0.55, cadence=1.0)),
    (Piece(500, 120, speed=0.7, cadence=1.0), Piece(1100, 90, speed=0.6, cadence=1.03)),
]


@pytest.mark.parametrize("pieces", SPEC_CORNERS)
@pytest.mark.parametrize("seed", [1, 2])
def test_tagged_mode_finds_each_effort_across_the_synthetic_range(
    pieces: tuple[Piece, ...], seed: int
) -> None:
    act, streams = recording(40, pieces, seed=seed, name="Morning Run #retro")
    efforts = detect_efforts(act, streams, "tagged")
    assert_matches(efforts, pieces)
    assert all(e.source == "tag" for e in efforts)


def test_confidence_is_higher_when_the_athlete_tagged_it() -> None:
    act, streams = recording(45, CLEAR)
    auto = detect_efforts(act, streams)
    tagged = detect_efforts(replace(act, name="Intervals #retro"), streams, "tagged")
    assert len(auto) == len(tagged) == 3
    assert all(t.confidence > a.confidence for a, t in zip(auto, tagged, strict=True))


NOT_BACKWARD = {
    "pauses": dict(pieces=(Piece(600, 90, moving=False), Piece(1500, 60, moving=False))),
    "walking break": dict(pieces=(Piece(900, 90, abs_speed=1.4, abs_cadence=55.0, hr="fall"),)),
    "walking break, heart rate holding": dict(pieces=(Piece(900, 90, abs_speed=1.4, abs_cadence=55.0),)),
    "steep climb": dict(pieces=(Piece(900, 150, speed=0.7, cadence=0.95, hr="rise", grade=12.0),)),
    "steep climb at unchanged cadence": dict(pieces=(Piece(900, 150, speed=0.7, hr="rise", grade=12.0),)),
    # Slower with a cadence that falls too (to 88%): forward running's own way of slowing.
    "recovery jog": dict(pieces=(Piece(900, 180, speed=0.7, cadence=0.88, hr="fall"),)),
    # Easing into a slower jog over two minutes at the same cadence: no abrupt turn.
    "gradual slowdown into a cool-down jog": dict(
        pieces=tuple(Piece(900 + 20 * k, 20, speed=1.0 - 0.05 * k) for k in range(6))
        + (Piece(1020, 300, speed=0.7),)
    ),
    # An abrupt slowdown of 14% at the same cadence: slower than any backward effort's x0.8, give or take.
    "abrupt small slowdown": dict(pieces=(Piece(900, 120, speed=0.86),)),
    "GPS speed spikes and drop-outs": dict(spikes=True),
    "slow uniform easy running": dict(speed=(1.9, 2.1), cadence=(74.0, 76.0)),
    "slow first minute (GPS settling)": dict(pieces=(Piece(0, 45, speed=0.5),)),
    "slow last minute (cooling down)": dict(pieces=(Piece(2370, 31, speed=0.5),)),
    "forward walk": dict(speed=(1.35, 1.45), cadence=(56.0, 58.0), sport="Walk"),
    "slower stretch of a forward walk": dict(
        speed=(1.35, 1.45),
        cadence=(56.0, 58.0),
        sport="Walk",
        pieces=(Piece(900, 150, abs_speed=1.1, abs_cadence=50.0, hr="fall"),),
    ),
}


@pytest.mark.parametrize("case", list(NOT_BACKWARD))
def test_forward_look_alikes_give_no_effort_in_auto_mode(case: str) -> None:
    act, streams = recording(40, **NOT_BACKWARD[case])  # type: ignore[arg-type]
    assert detect_efforts(act, streams) == []


def test_treadmill_streams_are_not_analysed() -> None:
    act, streams = recording(40, CLEAR, trainer=True)
    assert detect_efforts(act, streams) == []
    assert wants_streams(act) is False
    # Tagged, it is one effort of the whole session (a treadmill has no GPS speed to locate it).
    [effort] = detect_efforts(replace(act, name="#retro"), streams)
    assert effort.source == "whole"
    assert effort.confidence == pytest.approx(0.9)


def test_virtual_run_streams_are_not_analysed() -> None:
    act, streams = recording(40, CLEAR, sport="VirtualRun")
    assert detect_efforts(act, streams) == []


def test_a_recovery_jog_at_held_cadence_is_a_blind_spot() -> None:
    # Slower by 30% at the same cadence, starting and ending abruptly: exactly what a backward effort looks
    # like in speed and cadence. Heart rate falling is no reason to reject it (SCIENCE.md: a slow backward
    # effort lowers the metabolic rate too), so it is reported (docs/detection.md, blind spots).
    jog = Piece(900, 180, speed=0.7, hr="fall")
    act, streams = recording(40, (jog,))
    assert_matches(detect_efforts(act, streams), (jog,))


def test_auto_and_tagged_modes_find_the_edges_of_the_backward_range() -> None:
    # The slowest and least clear efforts of the range (speed x0.5-0.8, cadence x0.95-1.12).
    pieces = (Piece(600, 90, speed=0.5, cadence=1.12), Piece(1400, 120, speed=0.8, cadence=0.96))
    act, streams = recording(40, pieces)
    assert_matches(detect_efforts(act, streams), pieces)
    assert_matches(detect_efforts(replace(act, name="#retro"), streams, "tagged"), pieces)


def test_tag_with_count_picks_that_many_and_skips_a_recovery_jog() -> None:
    intervals = (
        Piece(600, 90, speed=0.78, cadence=1.0),
        Piece(1200, 90, speed=0.8, cadence=1.0),
        Piece(1800, 90, speed=0.78, cadence=1.02),
    )
    jog = Piece(2300, 120, speed=0.75, cadence=0.88, hr="fall")
    act, streams = recording(45, (*intervals, jog))
    counted = replace(act, name="Track: 3 retro intervals")
    assert expected_efforts(counted) == 3
    assert_matches(detect_efforts(counted, streams, "tagged"), intervals)


def test_long_effort_between_steep_hills_is_measured_against_the_forward_running() -> None:
    # A 4-minute effort on the flat between a steep climb and a steep descent: their blocks have no running
    # level, so a fixed +/- 5-minute window holds as many blocks of the effort as of forward running, and
    # the effort drags its own forward level down. It was then missed in every mode, and with "2x" in the
    # title the detector took a forward slowdown in its place. The window now widens past the hills.
    efforts = (Piece(600, 90, speed=0.6, cadence=1.05), Piece(1500, 240, speed=0.62, cadence=1.04))
    hills = (Piece(1200, 240, speed=0.7, hr="rise", grade=12.0), Piece(1800, 240, speed=0.75, grade=-12.0))
    slowdown = Piece(2400, 60, speed=0.86, cadence=0.98, hr="fall")
    act, streams = recording(45, (*efforts, *hills, slowdown), seed=2)
    assert_matches(detect_efforts(replace(act, name="#retro 2x"), streams, "tagged"), efforts)
    assert_matches(detect_efforts(replace(act, name="#retro"), streams, "tagged"), efforts)
    assert_matches(detect_efforts(act, streams), efforts)


def test_tagged_mode_ignores_an_untagged_activity() -> None:
    act, streams = recording(45, CLEAR)
    assert detect_efforts(act, streams, "tagged") == []


def test_a_tagged_steady_run_with_forward_length_steps_gets_no_effort() -> None:
    # Uniform streams, but with the steps of forward running at that speed (1.14 m at 3.2 m/s): nothing says
    # which part, if any, was backward, so nothing is published rather than the whole run.
    act, streams = recording(40, name="Retro run")
    found = detect(act, streams, "tagged")
    assert found.efforts == ()
    assert found.remark == NO_BLOCK_FOUND


def test_tagged_run_without_cadence_is_one_whole_effort() -> None:
    act, streams = recording(40, CLEAR, name="#retro")
    [effort] = detect_efforts(act, replace(streams, cadence=None))
    assert effort.source == "whole"
    assert effort.steps is None


@pytest.mark.parametrize("hr", ["hold", "fall", "rise", None])
def test_heart_rate_never_decides(hr: str | None) -> None:
    # A slow backward effort lowers the metabolic rate, so heart rate may fall 10-25 bpm (SCIENCE.md):
    # the same efforts are found whatever it does, and without a heart-rate strap.
    pieces = (
        Piece(700, 150, speed=0.6, cadence=1.0, hr=hr or "hold"),
        Piece(1500, 90, speed=0.7, cadence=1.05),
    )
    act, streams = recording(40, pieces, heart_rate=hr is not None)
    assert_matches(detect_efforts(act, streams), pieces)
    assert_matches(detect_efforts(replace(act, name="#retro"), streams, "tagged"), pieces)


def test_without_grade_auto_mode_reports_nothing() -> None:
    # A climb cannot be ruled out, so only the athlete's words count.
    act, streams = recording(45, CLEAR, grade=False)
    assert detect_efforts(act, streams) == []
    assert_matches(detect_efforts(replace(act, name="#retro"), streams, "tagged"), CLEAR)


def test_backward_walk_inside_a_forward_walk() -> None:
    back = Piece(900, 150, abs_speed=0.8, abs_cadence=57.0)  # same cadence, 60% of the speed (Laufer 2005)
    act, streams = recording(40, (back,), speed=(1.35, 1.45), cadence=(56.0, 58.0), sport="Walk")
    [effort] = detect_efforts(act, streams)
    assert iou(effort, 900, 1050) >= 0.5
    assert effort.gait == "walk"


def test_speed_from_distance_when_velocity_is_missing() -> None:
    act, streams = recording(45, CLEAR)
    assert_matches(detect_efforts(act, replace(streams, velocity_smooth=None)), CLEAR)


@pytest.mark.parametrize(
    "streams",
    [
        Streams(),
        Streams(time=(0.0, 1.0), cadence=(80.0, 80.0), velocity_smooth=(3.0, 3.0)),
        Streams(time=tuple(float(i) for i in range(600)), cadence=(80.0,) * 10, velocity_smooth=(3.0,) * 600),
        Streams(time=tuple(float(i) for i in range(600)), cadence=(0.0,) * 600, velocity_smooth=(3.0,) * 600),
        Streams(
            time=tuple(float(i) for i in range(600)), cadence=(None,) * 600, velocity_smooth=(None,) * 600
        ),  # type: ignore[arg-type]
        # Time running backward: a damaged recording.
        Streams(
            time=tuple(float(600 - i) for i in range(600)),
            cadence=(84.0,) * 600,
            velocity_smooth=(3.0,) * 600,
        ),
    ],
)
def test_unusable_streams_give_no_effort_and_no_error(streams: Streams) -> None:
    assert detect_efforts(activity(), streams) == []
    [effort] = detect_efforts(activity(name="#retro"), streams)
    assert effort.source == "whole"


def test_non_foot_sport_streams_give_no_effort() -> None:
    act, streams = recording(45, CLEAR, sport="Ride")
    assert detect_efforts(act, streams) == []


# --- counts in the athlete's words ---


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("3x200m retro", 3),
        ("Track: 3 retro intervals", 3),
        ("#retro 4x1'", 4),
        ("three backwards reps", 3),
        ("backwards running 8x200", 8),
        ("6 x 100 m backward", 6),
        ("Morning Run #retro", None),
        ("did the loop 3x backwards", None),  # the route, three times
        ("3 reverse intervals", None),  # a reversed order
        ("3x200m", None),
    ],
)
def test_expected_efforts_from_the_words(text: str, count: int | None) -> None:
    assert expected_efforts(activity(name=text)) == count


def test_a_count_phrase_is_a_tag() -> None:
    assert wants_streams(activity(name="3 retro intervals")) is True
    assert wants_streams(activity(name="did the loop 3x backwards")) is False


# --- wants_streams from laps ---


def laps_with(*averages: tuple[float, float | None], seconds: float = 120.0) -> tuple[Lap, ...]:
    return tuple(
        lap(k, f"Lap {k + 1}", seconds, distance=speed * seconds, average_speed=speed, average_cadence=cad)
        for k, (speed, cad) in enumerate(averages)
    )


BACKWARD_LAPS = laps_with((3.3, 84.0), (2.2, 90.0), (3.4, 85.0), (2.3, 89.0), (3.3, 84.0))


@pytest.mark.parametrize(
    ("overrides", "mode", "expected"),
    [
        ({"laps": BACKWARD_LAPS}, "auto", True),
        ({"laps": BACKWARD_LAPS}, "tagged", False),  # tagged mode never spends a call on an untagged activity
        ({"laps": BACKWARD_LAPS, "trainer": True}, "auto", False),
        ({"laps": BACKWARD_LAPS, "manual": True}, "auto", False),
        ({"laps": BACKWARD_LAPS, "sport_type": "VirtualRun"}, "auto", False),
        ({"laps": BACKWARD_LAPS, "sport_type": "Ride"}, "auto", False),
        ({"laps": laps_with((3.3, 84.0))}, "auto", False),  # one lap: nothing to compare
        ({"laps": ()}, "auto", False),
        ({"laps": laps_with((3.3, 84.0), (2.2, None), (3.3, 84.0))}, "auto", False),  # no cadence
        # Slower with a lower cadence: a recovery jog or a walk.
        ({"laps": laps_with((3.3, 84.0), (2.2, 78.0), (3.3, 84.0))}, "auto", False),
        ({"laps": laps_with((3.3, 84.0), (1.4, 55.0), (3.3, 84.0))}, "auto", False),
        # Only 10% slower: no candidate.
        ({"laps": laps_with((3.3, 84.0), (3.0, 86.0), (3.3, 84.0))}, "auto", False),
        # A 20-s lap (a button pressed at a crossing) says nothing.
        (
            {
                "laps": (
                    *laps_with((3.3, 84.0), (3.3, 85.0)),
                    lap(2, "Lap 3", 20.0, distance=40.0, average_speed=2.0, average_cadence=86.0),
                )
            },
            "auto",
            False,
        ),
        # 1-km auto-laps average a short effort away: a documented blind spot.
        ({"laps": laps_with((3.3, 84.0), (3.1, 85.0), (3.3, 84.0), seconds=300.0)}, "auto", False),
        ({"name": "#retro", "trainer": True}, "auto", False),
    ],
)
def test_wants_streams_from_laps(overrides: dict[str, object], mode: str, expected: bool) -> None:
    assert wants_streams(activity(**overrides), mode) is expected  # type: ignore[arg-type]


# --- the sandbox seed ---


def retro_laps(act: Activity, streams: Streams) -> list[tuple[float, float]]:
    return [
        (streams.time[x.start_index or 0], streams.time[x.end_index or 0])
        for x in act.laps
        if x.name.startswith("Retro")
    ]


def test_seed_retro_intervals_gives_its_three_retro_laps() -> None:
    act, streams = load_seed_activity("retro-intervals")
    assert streams is not None
    efforts = detect_efforts(act, streams)
    assert [(e.start_s, e.end_s) for e in efforts] == retro_laps(act, streams)
    assert all(e.source == "lap" and e.gait == "run" for e in efforts)
    assert wants_streams(act) is True


def test_seed_retro_intervals_found_from_streams_alone() -> None:
    # Lap names and the tag removed: the untagged auto mode still finds the three intervals.
    act, streams = load_seed_activity("retro-intervals")
    assert streams is not None
    plain = replace(
        act, name="Tempo", description="", laps=tuple(replace(x, name=f"Lap {x.index}") for x in act.laps)
    )
    efforts = detect_efforts(plain, streams)
    assert len(efforts) == 3
    for effort, (start, end) in zip(efforts, retro_laps(act, streams), strict=True):
        assert iou(effort, start, end) >= 0.5
        assert effort.source == "stream"
    assert wants_streams(plain) is True  # its laps show the pattern
    # Without laps at all (no lap data): found as well, but no stream call would be spent on it.
    assert len(detect_efforts(replace(plain, laps=()), streams)) == 3
    assert wants_streams(replace(plain, laps=())) is False


def test_seed_easy_run_gives_nothing_in_auto_mode() -> None:
    act, streams = load_seed_activity("easy-run")
    assert detect_efforts(act, streams) == []
    assert wants_streams(act) is False


def test_seed_retro_walk_is_one_whole_effort() -> None:
    act, streams = load_seed_activity("retro-walk")
    [effort] = detect_efforts(act, streams)
    assert effort.source == "whole"
    assert effort.gait == "walk"


# --- robustness: whatever a host or a file sends, detection answers and does not raise ---

_value = st.one_of(st.none(), st.floats(min_value=-5.0, max_value=300.0, allow_nan=False))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(min_value=0, max_value=400),
    step=st.sampled_from([1.0, 2.0, 5.0]),
    values=st.lists(_value, min_size=0, max_size=400),
    tagged=st.booleans(),
)
def test_detection_never_raises_on_odd_streams(
    n: int, step: float, values: list[float | None], tagged: bool
) -> None:
    def column(offset: int) -> tuple[float | None, ...]:
        return tuple(values[(i + offset) % len(values)] for i in range(n)) if values else ()

    streams = Streams(
        time=tuple(i * step for i in range(n)),
        distance=tuple(i * 3.0 * step for i in range(n)),
        velocity_smooth=column(0),  # type: ignore[arg-type]
        cadence=column(7),  # type: ignore[arg-type]
        heartrate=column(13),  # type: ignore[arg-type]
        grade_smooth=column(29),  # type: ignore[arg-type]
        moving=tuple(bool(i % 9) for i in range(n)),
    )
    act = activity(name="#retro" if tagged else "Morning Run", laps=laps_with((3.3, 84.0), (2.2, 90.0)))
    for mode in ("auto", "tagged"):
        efforts = detect_efforts(act, streams, mode)  # type: ignore[arg-type]
        assert all(0.0 <= e.confidence <= 1.0 and e.end_s >= e.start_s for e in efforts)


# --- issue examples, built from their description -----------------------------------------------------------


def retro_kilometre(name: str) -> tuple[Activity, Streams]:
    """20 min forward at 3.0 m/s, then 500 s backward at 2.0 m/s with cadence +7%, then 5 min forward: 1 Hz
    time, distance, velocity_smooth, cadence, heartrate (falling in the slower backward block, as the
    metabolic model says), grade_smooth 0 and moving."""
    rnd = random.Random(3)
    t, d, v, c, h = [], [], [], [], []
    dist, heart = 0.0, 150.0
    for i in range(1200 + 500 + 300 + 1):
        backward = 1200 < i <= 1700
        speed = (2.0 if backward else 3.0) + rnd.gauss(0.0, 0.05)
        heart += ((138.0 if backward else 150.0) - heart) / 45.0
        dist += speed
        t.append(float(i))
        d.append(round(dist, 1))
        v.append(round(speed, 2))
        c.append(round((84.0 * 1.07 if backward else 84.0) + rnd.gauss(0.0, 0.7)))
        h.append(round(heart))
    n = len(t)
    streams = Streams(
        time=t,
        distance=d,
        velocity_smooth=v,
        cadence=c,
        heartrate=h,
        grade_smooth=[0.0] * n,
        moving=[True] * n,
    )
    return activity(name=name, distance_m=dist, moving_time_s=n - 1.0, elapsed_time_s=n - 1.0), streams


@pytest.mark.parametrize(("name", "mode"), [("Retro kilometre #retro", "tagged"), ("Morning Run", "auto")])
def test_the_retro_kilometre_is_found_tagged_and_untagged(name: str, mode: str) -> None:
    act, streams = retro_kilometre(name)
    [effort] = detect_efforts(act, streams, mode)  # type: ignore[arg-type]
    assert effort.start_s == pytest.approx(1200, abs=3)
    assert effort.end_s == pytest.approx(1700, abs=3)
    assert effort.distance_m == pytest.approx(1000, rel=0.05)
    assert effort.gait == "run"


def test_a_tag_with_a_distance_and_no_streams_is_that_distance_not_the_whole_run() -> None:
    act = activity(
        name="Easy 10k with 4x200m #retro", distance_m=10_000.0, moving_time_s=3000.0, average_cadence=85.0
    )
    [effort] = detect_efforts(act, None, "tagged")
    assert effort.distance_m == 800.0
    assert effort.duration_s == pytest.approx(240.0)  # at the activity's own pace, 3.33 m/s
    assert effort.steps == round(2 * 85.0 * 240.0 / 60.0)
    assert effort.source == "tag"


def test_a_stated_duration_without_streams_takes_its_distance_from_the_pace() -> None:
    act = activity(name="Long run, 10 min retro at the end", distance_m=15_000.0, moving_time_s=5000.0)
    [effort] = detect_efforts(act, None, "tagged")
    assert effort.duration_s == 600.0
    assert effort.distance_m == pytest.approx(1800.0)


def test_words_that_cover_the_whole_activity_give_the_whole_activity() -> None:
    act = activity(name="Retro walk 2 km", distance_m=2050.0, moving_time_s=1500.0, manual=True)
    [effort] = detect_efforts(act, None, "tagged")
    assert effort.source == "whole"
    assert effort.distance_m == 2050.0


@pytest.mark.parametrize(
    ("text", "count", "each_m", "each_s"),
    [
        ("4x200m retro", 4, 200.0, None),
        ("Easy 10k with 4x200m #retro", 4, 200.0, None),
        ("1 km backward", None, 1000.0, None),
        ("10 min retro", None, None, 600.0),
        ("retro mile", None, 1609.344, None),
        ("Retro kilometre #retro", None, 1000.0, None),
        ("ran backwards for 1k", None, 1000.0, None),
        ("backwards running 8x200", 8, 200.0, None),
        ("4 x 1' backwards", 4, None, 60.0),
        ("1,5 km rückwärts", None, 1500.0, None),
        ("Rückwärtslauf 2 km", None, 2000.0, None),
        ("2 km de marche arrière", None, 2000.0, None),
        ("500 m à reculons", None, 500.0, None),
        ("1 km hacia atrás", None, 1000.0, None),
        ("倒走1公里", None, 1000.0, None),
        ("倒跑10分钟", None, None, 600.0),
        ("後ろ向きに1km走った", None, 1000.0, None),
        ("Track: 3 retro intervals of 300 m", 3, 300.0, None),
        ("#retro", None, None, None),
        ("10k race, then #retro", None, None, None),
        ("did the 5 km loop backwards", None, None, None),  # the route
        ("retro 1m", None, None, None),  # 1 metre: not an effort
    ],
)
def test_distances_and_durations_in_the_words(
    text: str, count: int | None, each_m: float | None, each_s: float | None
) -> None:
    amount = stated_amount(activity(name=text))
    if each_m is None and each_s is None:
        assert amount is None
        return
    assert amount is not None
    assert (amount.count, amount.each_m, amount.each_s) == (count, each_m, each_s)


def test_tagged_forward_running_with_no_backward_block_publishes_nothing_and_says_why() -> None:
    # A run with changes of pace but nothing backward in it: the tag cannot be placed.
    act, streams = recording(40, (Piece(900, 300, speed=0.8, cadence=0.9),), name="Sunday run #retro")
    found = detect(act, streams, "tagged")
    assert found.efforts == ()
    assert found.remark == NO_BLOCK_FOUND


def test_uniform_tagged_streams_with_short_steps_are_one_whole_effort() -> None:
    # A backward run from start to finish: 1.8 m/s at 95 per leg is a 0.57 m step, where forward running at
    # that speed takes about 0.71 m.
    act, streams = recording(30, speed=(1.75, 1.85), cadence=(94.0, 96.0), name="Backwards run to the lake")
    [effort] = detect_efforts(act, streams, "tagged")
    assert effort.source == "whole"
    assert effort.steps == pytest.approx(2 * 95 * 30, rel=0.02)


@pytest.mark.parametrize(
    ("distance_m", "minutes"),
    [(5600.0, 20), (10_000.0, 50)],
    ids=["faster than the backward mile record", "over 45 minutes above 3 m/s"],
)
def test_an_implausible_backward_effort_is_not_published(distance_m: float, minutes: int) -> None:
    act = activity(name="Retro run", distance_m=distance_m, moving_time_s=minutes * 60.0, manual=True)
    found = detect(act, None, "tagged")
    assert found.efforts == ()
    assert found.remark == IMPLAUSIBLE


def test_a_lap_named_retro_faster_than_backward_running_can_be_is_not_published() -> None:
    laps = (lap(0, "Warm-up", 600.0, distance=1800.0), lap(1, "Retro", 120.0, distance=600.0))
    assert detect_efforts(activity(laps=laps), None) == []


@pytest.mark.parametrize("seconds", [20, 30, 420, 600, 1200, 1800])
def test_no_preferred_effort_length(seconds: int) -> None:
    # From a 20-s stride to a 30-minute block in a 75-minute run, tagged and (from 30 s) untagged.
    piece = Piece(1500, seconds, speed=0.62, cadence=1.04)
    act, streams = recording(75, (piece,), seed=seconds)
    assert_matches(detect_efforts(replace(act, name="#retro"), streams, "tagged"), (piece,))
    if seconds >= 30:
        assert_matches(detect_efforts(act, streams), (piece,))
    [tagged] = detect_efforts(replace(act, name="#retro"), streams, "tagged")
    assert tagged.distance_m == pytest.approx(3.2 * 0.62 * seconds, rel=0.15)
