"""Tags, lap labels and the first-version effort detector (plugin/analysis/detect.py)."""

from __future__ import annotations

import pytest

from plugin.analysis.detect import TagMatch, detect_efforts, find_tag, lap_is_backward, wants_streams
from plugin.domain import Activity, Lap, Streams


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


def test_wants_streams_ignores_untagged_activity_with_backward_laps() -> None:
    # First version: only a tag on the activity buys a stream call.
    assert wants_streams(activity(laps=(lap(0, "Retro", 300.0),))) is False


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


def test_tag_gait_wins_over_speed() -> None:
    act = activity(name="#retrowalk", distance_m=2000.0, moving_time_s=600.0)  # 3.3 m/s
    [effort] = detect_efforts(act, None)
    assert effort.gait == "walk"


def test_lap_label_takes_gait_from_activity_tag() -> None:
    laps = (lap(0, "Retro 1", 300.0, distance=900.0),)  # 3 m/s, but the athlete says walking
    [effort] = detect_efforts(activity(name="Retro walk intervals", laps=laps), None)
    assert effort.gait == "walk"


def test_lap_phrase_gait_wins_over_activity_tag() -> None:
    laps = (lap(0, "backwards walk", 300.0, distance=900.0),)
    [effort] = detect_efforts(activity(name="#retrorun", laps=laps), None)
    assert effort.gait == "walk"
