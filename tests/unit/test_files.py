"""plugin.files: FIT, TCX, GPX and Strava JSON files -> Activity + Streams, on real and damaged files.

Real recordings are in tests/data/realruns (attribution in its MANIFEST.tsv); the values checked against the
manifest are the ones a user would compare with their watch. Synthetic files (made-up athletes and places)
are in tests/data/files, or built here: a small FIT writer makes the multisport, treadmill and no-foot cases.
"""

from __future__ import annotations

import csv
import functools
import gzip
import json
import math
import statistics
import struct
import xml.etree.ElementTree as ET  # noqa: S405 - parses our own fixtures only
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugin.domain import Activity, Streams
from plugin.files import ActivityFileError, LoadedFile, read_activity_file

DATA = Path(__file__).resolve().parents[1] / "data"
REAL = DATA / "realruns"
FILES = DATA / "files"


@functools.cache
def real(name: str) -> LoadedFile:
    """Each real file is read once per test session (the 1 MB multisport FIT takes a few seconds)."""
    return read_activity_file(REAL / name)


@functools.cache
def manifest() -> dict[str, dict[str, str]]:
    with (REAL / "MANIFEST.tsv").open(newline="") as handle:
        return {row["file"]: row for row in csv.DictReader(handle, delimiter="\t")}


def positive_median(values: tuple[float, ...] | None) -> float | None:
    found = [v for v in (values if values is not None else ()) if v > 0]
    return statistics.median(found) if found else None


def check_invariants(loaded: LoadedFile) -> None:
    """What every consumer of Streams relies on, whatever file it came from."""
    assert isinstance(loaded, LoadedFile)
    assert loaded.format in ("fit", "tcx", "gpx", "json")
    activity, streams = loaded.activity, loaded.streams
    assert isinstance(activity, Activity)
    assert activity.athlete_id is None or loaded.format == "json"
    if streams is None:
        return
    assert isinstance(streams, Streams)
    n = len(streams.time)
    assert n >= 1
    if loaded.format != "json":
        assert streams.time[0] == 0
        assert all(b > a for a, b in zip(streams.time, streams.time[1:], strict=False))
    for name in ("distance", "velocity_smooth", "cadence", "heartrate", "grade_smooth", "altitude", "moving"):
        series = getattr(streams, name)
        if series is not None:
            assert len(series) == n, name
            if name != "moving":
                assert all(math.isfinite(v) for v in series), name
    if streams.distance is not None and loaded.format != "json":
        assert all(b >= a for a, b in zip(streams.distance, streams.distance[1:], strict=False))
    for value in (activity.distance_m, activity.moving_time_s, activity.elapsed_time_s):
        assert math.isfinite(value) and value >= 0
    for lap in activity.laps:
        assert lap.start_index is not None and lap.end_index is not None
        assert 0 <= lap.start_index <= lap.end_index < n


def write(tmp_path: Path, name: str, content: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def read_error(path: Path) -> str:
    with pytest.raises(ActivityFileError) as caught:
        read_activity_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path.name}: "), message
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------------------------------------
# A minimal FIT writer (definition + data messages, CRCs), enough for the messages the reader uses.

FIT_EPOCH = datetime(1989, 12, 31, tzinfo=UTC)
_BASE = {
    "enum": (0x00, "B"),
    "uint8": (0x02, "B"),
    "uint16": (0x84, "H"),
    "sint32": (0x85, "i"),
    "uint32": (0x86, "I"),
    "uint32z": (0x8C, "I"),
}
_MESSAGES: dict[str, tuple[int, dict[str, tuple[int, str, float, float]]]] = {
    "file_id": (
        0,
        {
            "type": (0, "enum", 1, 0),
            "manufacturer": (1, "uint16", 1, 0),
            "serial_number": (3, "uint32z", 1, 0),
            "time_created": (4, "uint32", 1, 0),
        },
    ),
    "sport": (12, {"sport": (0, "enum", 1, 0), "sub_sport": (1, "enum", 1, 0)}),
    "record": (
        20,
        {
            "timestamp": (253, "uint32", 1, 0),
            "position_lat": (0, "sint32", 1, 0),
            "position_long": (1, "sint32", 1, 0),
            "altitude": (2, "uint16", 5, 500),
            "heart_rate": (3, "uint8", 1, 0),
            "cadence": (4, "uint8", 1, 0),
            "distance": (5, "uint32", 100, 0),
            "speed": (6, "uint16", 1000, 0),
        },
    ),
    "lap": (
        19,
        {
            "timestamp": (253, "uint32", 1, 0),
            "start_time": (2, "uint32", 1, 0),
            "total_elapsed_time": (7, "uint32", 1000, 0),
            "total_timer_time": (8, "uint32", 1000, 0),
            "total_distance": (9, "uint32", 100, 0),
            "sport": (25, "enum", 1, 0),
            "sub_sport": (39, "enum", 1, 0),
        },
    ),
    "session": (
        18,
        {
            "timestamp": (253, "uint32", 1, 0),
            "start_time": (2, "uint32", 1, 0),
            "sport": (5, "enum", 1, 0),
            "sub_sport": (6, "enum", 1, 0),
            "total_elapsed_time": (7, "uint32", 1000, 0),
            "total_timer_time": (8, "uint32", 1000, 0),
            "total_distance": (9, "uint32", 100, 0),
            "total_ascent": (22, "uint16", 1, 0),
        },
    ),
}
SPORT = {
    "generic": 0,
    "running": 1,
    "cycling": 2,
    "transition": 3,
    "swimming": 5,
    "walking": 11,
    "hiking": 17,
}
SUB_SPORT = {"generic": 0, "treadmill": 1, "trail": 3}
_CRC_TABLE = (
    0x0000, 0xCC01, 0xD801, 0x1400, 0xF001, 0x3C00, 0x2800, 0xE401,
    0xA001, 0x6C00, 0x7800, 0xB401, 0x5000, 0x9C01, 0x8801, 0x4400,
)  # fmt: skip


def fit_crc(data: bytes, crc: int = 0) -> int:
    for byte in data:
        for nibble in (byte & 0xF, byte >> 4):
            tmp = _CRC_TABLE[crc & 0xF]
            crc = ((crc >> 4) & 0x0FFF) ^ tmp ^ _CRC_TABLE[nibble]
    return crc


def fit_bytes(messages: list[tuple[str, dict]], *, data_size: int | None = None) -> bytes:
    body = bytearray()
    local: dict[tuple, int] = {}
    for name, values in messages:
        global_number, spec = _MESSAGES[name]
        keys = tuple(k for k in spec if k in values)
        signature = (name, keys)
        if signature not in local:
            local[signature] = len(local) % 16
            body += struct.pack("<BBBHB", 0x40 | local[signature], 0, 0, global_number, len(keys))
            for key in keys:
                number, base, _, _ = spec[key]
                body += struct.pack("<BBB", number, struct.calcsize(_BASE[base][1]), _BASE[base][0])
        body.append(local[signature])
        for key in keys:
            _, base, scale, offset = spec[key]
            value = values[key]
            if isinstance(value, datetime):
                value = (value - FIT_EPOCH).total_seconds()
            body += struct.pack("<" + _BASE[base][1], round((value + offset) * scale))
    size = len(body) if data_size is None else data_size
    header = struct.pack("<BBHI4s", 14, 0x20, 2132, size, b".FIT")
    header += struct.pack("<H", fit_crc(header))
    return header + bytes(body) + struct.pack("<H", fit_crc(header + bytes(body)))


START = datetime(2024, 5, 4, 8, 0, tzinfo=UTC)


def leg_messages(
    sport: str,
    start: datetime,
    seconds: int,
    speed: float,
    *,
    sub_sport: str = "generic",
    cadence: int | None = 84,
    distance0: float = 0.0,
    positions: bool = True,
) -> tuple[list[tuple[str, dict]], float]:
    """One leg: a sport message, a record per second, its lap and its session."""
    messages: list[tuple[str, dict]] = [("sport", {"sport": SPORT[sport], "sub_sport": SUB_SPORT[sub_sport]})]
    distance = distance0
    for i in range(seconds + 1):
        record: dict = {
            "timestamp": start + timedelta(seconds=i),
            "distance": distance,
            "speed": speed,
            "heart_rate": 120 + i % 30,
            "altitude": 300 + 0.02 * (distance - distance0),
        }
        if positions:
            record["position_lat"] = round((45.0 + distance / 111_195) / (180 / 2**31))
            record["position_long"] = round(7.0 / (180 / 2**31))
        if cadence is not None:
            record["cadence"] = cadence
        messages.append(("record", record))
        distance += speed
    covered = speed * seconds
    summary = {
        "timestamp": start + timedelta(seconds=seconds),
        "start_time": start,
        "total_elapsed_time": seconds,
        "total_timer_time": seconds,
        "total_distance": covered,
        "sport": SPORT[sport],
        "sub_sport": SUB_SPORT[sub_sport],
    }
    messages.append(("lap", summary))
    messages.append(("session", summary))
    return messages, distance0 + covered


def file_id(serial: int = 12345) -> tuple[str, dict]:
    return ("file_id", {"type": 4, "manufacturer": 1, "serial_number": serial, "time_created": START})


def one_sport_fit(sport: str, sub_sport: str = "generic", **kwargs) -> bytes:
    messages, _ = leg_messages(sport, START, 120, 3.0, sub_sport=sub_sport, **kwargs)
    return fit_bytes([file_id(), *messages])


def test_the_fit_writer_writes_what_fitdecode_reads(tmp_path):
    loaded = read_activity_file(write(tmp_path, "synthetic.fit", one_sport_fit("running")))
    check_invariants(loaded)
    assert loaded.activity.sport_type == "Run"
    assert len(loaded.streams.time) == 121
    assert loaded.activity.distance_m == pytest.approx(360.0)
    assert positive_median(loaded.streams.cadence) == 84


# --------------------------------------------------------------------------------------------------------
# Real files against the manifest

SINGLE_SPORT = [
    "fitparse_activity-small-fenix2-run.fit",
    "fitparse_2013-02-06-12-11-14.fit",
    "fitparse_garmin-fenix-5-run.fit",
    "fitparse_garmin-fenix-5-walk.fit",
    "heartandsole_testdata.fit",
    "tormoder_mornindew-broken.fit",
]


def test_the_manifest_lists_every_copied_file():
    copied = {p.name for p in REAL.iterdir() if p.suffix in (".fit", ".tcx")}
    assert copied == set(manifest())
    assert sum((REAL / name).stat().st_size for name in copied) < 3_000_000


@pytest.mark.parametrize("name", SINGLE_SPORT)
def test_real_single_sport_files_match_the_manifest(name):
    row = manifest()[name]
    loaded = real(name)
    check_invariants(loaded)
    activity, streams = loaded.activity, loaded.streams
    assert loaded.format == "fit"
    assert activity.sport_type == {"run": "Run", "walk": "Walk"}[row["sport"]]
    assert activity.name == Path(name).stem
    assert activity.description == "" and activity.athlete_id is None
    assert not activity.manual and not activity.trainer
    assert len(streams.time) == pytest.approx(int(row["samples"]), rel=0.02)
    assert streams.time[-1] == pytest.approx(float(row["duration_s"]), rel=0.03)
    assert activity.elapsed_time_s == pytest.approx(float(row["duration_s"]), rel=0.03)
    assert activity.distance_m == pytest.approx(float(row["distance_m"]), rel=0.02)
    assert streams.distance[-1] == pytest.approx(float(row["distance_m"]), rel=0.02)
    assert 0 < activity.moving_time_s <= activity.elapsed_time_s
    if row["median_cadence_rpm"] == "-":
        assert streams.cadence is None and activity.average_cadence is None
    else:
        assert positive_median(streams.cadence) == pytest.approx(float(row["median_cadence_rpm"]), abs=1.5)
    assert statistics.median(streams.heartrate) == pytest.approx(float(row["median_hr"]), abs=2)
    assert positive_median(streams.velocity_smooth) == pytest.approx(float(row["median_speed_mps"]), rel=0.03)
    assert streams.altitude is not None and streams.grade_smooth is not None
    assert activity.laps and activity.laps[0].name == "Lap 1"


def test_fit_values_are_strava_units():
    activity, streams = (
        real("fitparse_activity-small-fenix2-run.fit").activity,
        real("fitparse_activity-small-fenix2-run.fit").streams,
    )
    # per-leg cadence (about 166 steps/min on a 3.4 m/s run), a percent grade, bpm
    assert 75 < activity.average_cadence < 90
    assert all(-100 <= g <= 100 for g in streams.grade_smooth)
    assert activity.average_speed == pytest.approx(activity.distance_m / activity.moving_time_s, rel=1e-3)
    assert activity.total_elevation_gain == 64  # the session's own total_ascent
    assert [lap.index for lap in activity.laps] == [1, 2, 3, 4]
    assert sum(lap.distance_m for lap in activity.laps) == pytest.approx(activity.distance_m, rel=0.001)
    # consecutive laps share their boundary sample, as Strava's do
    for before, after in zip(activity.laps, activity.laps[1:], strict=False):
        assert after.start_index == before.end_index


def test_sparse_smart_recording_keeps_its_irregular_intervals():
    streams = real("fitparse_2013-02-06-12-11-14.fit").streams
    intervals = [b - a for a, b in zip(streams.time, streams.time[1:], strict=False)]
    assert statistics.median(intervals) > 1
    assert max(intervals) > 10
    assert len(set(intervals)) > 5


def test_missing_cadence_is_none_not_zero():
    loaded = real("fitparse_2013-02-06-12-11-14.fit")
    assert loaded.streams.cadence is None
    assert loaded.activity.average_cadence is None
    assert all(lap.average_cadence is None for lap in loaded.activity.laps)


def test_partial_cadence_keeps_zeros_as_unknown():
    streams = real("heartandsole_testdata.fit").streams
    assert 0 < sum(1 for c in streams.cadence if c > 0) < len(streams.cadence)
    assert positive_median(streams.cadence) == pytest.approx(62, abs=1.5)


def test_developer_fields_named_like_standard_ones_are_ignored():
    # tormoder's file carries developer fields "Cadence" and "Power" next to the standard cadence.
    assert positive_median(real("tormoder_mornindew-broken.fit").streams.cadence) == pytest.approx(
        85, abs=1.5
    )


def test_real_tcx_with_cadence_in_the_trackpoint():
    loaded = real("sweatpy_3173437224.tcx")
    check_invariants(loaded)
    activity, streams = loaded.activity, loaded.streams
    assert loaded.format == "tcx"
    assert activity.sport_type == "Run"
    assert activity.name == "sweatpy_3173437224"  # TCX has no activity name; Polar's plan name is the sport
    assert len(streams.time) == 3507
    assert streams.time[-1] == pytest.approx(3903.7, abs=1)
    assert activity.distance_m == pytest.approx(4508.5, rel=0.001)
    assert positive_median(streams.cadence) == 63  # Polar writes per-leg running cadence in <Cadence>
    assert statistics.median(streams.heartrate) == 134
    assert [lap.distance_m for lap in activity.laps] == pytest.approx([142.9, 4365.6], abs=0.1)
    assert activity.calories == 467


# --------------------------------------------------------------------------------------------------------
# Truncated, chained, multisport FIT


def test_the_broken_file_reads_every_record():
    loaded = real("tormoder_mornindew-broken.fit")
    assert len(loaded.streams.time) == 6874
    assert loaded.activity.distance_m == pytest.approx(16773, abs=1)


@pytest.mark.parametrize("fraction", [0.93, 0.5, 0.13])
def test_a_truncated_fit_keeps_the_records_before_the_break(tmp_path, fraction):
    whole = real("tormoder_mornindew-broken.fit")
    data = (REAL / "tormoder_mornindew-broken.fit").read_bytes()
    path = write(tmp_path, "cut.fit", data[: int(len(data) * fraction)])
    loaded = read_activity_file(path)
    check_invariants(loaded)
    n = len(loaded.streams.time)
    assert 0.7 * fraction * 6874 < n < 6874
    # what was read is the start of the whole recording, unchanged
    assert loaded.streams.time.tolist() == whole.streams.time[:n].tolist()
    assert loaded.streams.distance.tolist() == whole.streams.distance[:n].tolist()
    assert loaded.streams.cadence.tolist() == whole.streams.cadence[:n].tolist()
    assert loaded.activity.sport_type == "Run"  # from the sport message at the start; no session survived
    assert loaded.activity.distance_m == pytest.approx(whole.streams.distance[n - 1], abs=0.01)


def test_a_fit_cut_in_every_place_yields_records_or_a_clear_error(tmp_path):
    data = (REAL / "fitparse_garmin-fenix-5-run.fit").read_bytes()
    counts = []
    for end in range(0, len(data) + 1, 97):
        path = write(tmp_path, "cut.fit", data[:end])
        try:
            loaded = read_activity_file(path)
        except ActivityFileError as exc:
            assert str(exc).startswith("cut.fit: ")
            counts.append(0)
        else:
            check_invariants(loaded)
            counts.append(len(loaded.streams.time))
    assert counts[-1] == 21
    assert counts == sorted(counts)  # more file, never fewer records


def test_a_header_that_says_no_data_is_read_to_the_end(tmp_path):
    data = bytearray((REAL / "fitparse_garmin-fenix-5-run.fit").read_bytes())
    data[4:8] = struct.pack("<I", 0)  # as a watch that crashed before closing the file leaves it
    loaded = read_activity_file(write(tmp_path, "crashed.fit", bytes(data)))
    assert len(loaded.streams.time) == 21


def test_chained_fit_files_yield_the_run_leg():
    loaded = real("fitparse_sample_mulitple_header.fit")  # swim, T1, bike, T2, run in four chained files
    check_invariants(loaded)
    activity, streams = loaded.activity, loaded.streams
    assert activity.sport_type == "Run"
    assert activity.distance_m == pytest.approx(9805.92, rel=0.02)
    assert activity.elapsed_time_s == pytest.approx(2850.7, rel=0.02)
    assert streams.distance[0] == 0 and streams.distance[-1] == pytest.approx(9805.92, rel=0.02)
    assert len(streams.time) < int(manifest()["fitparse_sample_mulitple_header.fit"]["samples"])
    assert positive_median(streams.cadence) == pytest.approx(83, abs=1.5)
    assert statistics.median(streams.heartrate) == pytest.approx(176, abs=2)
    assert positive_median(streams.velocity_smooth) == pytest.approx(3.44, rel=0.03)
    assert len(activity.laps) == 1 and activity.laps[0].distance_m == pytest.approx(9805.92)


def test_real_multisport_keeps_the_run_legs_only():
    loaded = real("fitparse_activity-large-fenxi2-multisport.fit")  # bike, run, run and transitions
    check_invariants(loaded)
    activity, streams = loaded.activity, loaded.streams
    assert activity.sport_type == "Run"
    assert activity.distance_m == pytest.approx(2245.23 + 12740.37, rel=0.001)  # the two running sessions
    assert activity.total_elevation_gain == 732 + 455
    assert streams.time[-1] == pytest.approx(2294.84 + 4.3 + 6764.48, abs=5)
    assert len(streams.time) < 0.4 * int(
        manifest()["fitparse_activity-large-fenxi2-multisport.fit"]["samples"]
    )
    # the legs are stitched: no jump in distance over the transition between them (t = 2294.84 .. 2299.1)
    boundary = next(i for i, t in enumerate(streams.time) if t > 2296)
    assert streams.time[boundary] - streams.time[boundary - 1] >= 4
    assert streams.distance[boundary] - streams.distance[boundary - 1] < 5
    assert streams.distance[-1] == pytest.approx(activity.distance_m, rel=0.001)
    assert len(activity.laps) == 2
    assert [lap.distance_m for lap in activity.laps] == pytest.approx([2245.57, 12743.29])


def test_synthetic_multisport_keeps_the_foot_leg_by_time_range(tmp_path):
    ride, after_ride = leg_messages("cycling", START, 600, 8.0, cadence=90)
    transition, after_t = leg_messages(
        "transition", START + timedelta(seconds=600), 60, 1.0, distance0=after_ride
    )
    run, _ = leg_messages("running", START + timedelta(seconds=660), 300, 3.2, cadence=86, distance0=after_t)
    loaded = read_activity_file(
        write(tmp_path, "brick.fit", fit_bytes([file_id(), *ride, *transition, *run]))
    )
    check_invariants(loaded)
    activity, streams = loaded.activity, loaded.streams
    assert activity.sport_type == "Run"
    assert len(streams.time) == 301
    assert streams.time[-1] == 300
    assert streams.distance[0] == 0
    assert activity.distance_m == pytest.approx(960.0)
    assert set(streams.cadence) == {86}
    assert len(activity.laps) == 1 and activity.laps[0].distance_m == pytest.approx(960.0)


def test_two_foot_legs_are_both_kept(tmp_path):
    run1, d1 = leg_messages("running", START, 100, 3.0)
    ride, d2 = leg_messages("cycling", START + timedelta(seconds=100), 100, 8.0, distance0=d1)
    walk, _ = leg_messages("walking", START + timedelta(seconds=200), 300, 1.4, distance0=d2)
    loaded = read_activity_file(write(tmp_path, "mixed.fit", fit_bytes([file_id(), *run1, *ride, *walk])))
    activity, streams = loaded.activity, loaded.streams
    assert activity.sport_type == "Walk"  # the longer foot leg names the activity
    assert len(streams.time) == 101 + 301
    assert activity.distance_m == pytest.approx(300 + 420)
    assert streams.distance[-1] == pytest.approx(720, abs=1)


def test_multisport_without_a_foot_leg_is_the_main_other_sport(tmp_path):
    swim, d1 = leg_messages("swimming", START, 200, 1.0, cadence=None, positions=False)
    ride, _ = leg_messages("cycling", START + timedelta(seconds=200), 400, 8.0, cadence=90, distance0=d1)
    loaded = read_activity_file(write(tmp_path, "swimbike.fit", fit_bytes([file_id(), *swim, *ride])))
    activity, streams = loaded.activity, loaded.streams
    assert activity.sport_type == "Ride"
    assert not activity.is_foot_sport  # so the detector leaves it alone
    assert len(streams.time) == 401 and set(streams.cadence) == {90}
    assert activity.distance_m == pytest.approx(3200)


def test_chained_synthetic_files_ride_then_run(tmp_path):
    ride, _ = leg_messages("cycling", START, 300, 8.0)
    run, _ = leg_messages("running", START + timedelta(seconds=400), 200, 3.0)
    data = fit_bytes([file_id(1), *ride]) + fit_bytes([file_id(1), *run])
    loaded = read_activity_file(write(tmp_path, "chained.fit", data))
    assert loaded.activity.sport_type == "Run"
    assert len(loaded.streams.time) == 201
    assert loaded.activity.distance_m == pytest.approx(600)


def test_a_multisport_file_cut_during_the_run_still_yields_the_run(tmp_path):
    ride, d1 = leg_messages("cycling", START, 300, 8.0)
    run, _ = leg_messages("running", START + timedelta(seconds=300), 200, 3.0, distance0=d1)
    run = [m for m in run if m[0] not in ("lap", "session")]  # the watch died before writing them
    data = fit_bytes([file_id(), *ride, *run])
    loaded = read_activity_file(write(tmp_path, "died.fit", data[:-200]))
    assert loaded.activity.sport_type == "Run"
    assert 150 < len(loaded.streams.time) <= 201
    assert loaded.streams.distance[0] == 0


@pytest.mark.parametrize(
    ("sport", "sub_sport", "sport_type", "trainer"),
    [
        ("running", "generic", "Run", False),
        ("running", "trail", "TrailRun", False),
        ("running", "treadmill", "Run", True),
        ("walking", "generic", "Walk", False),
        ("walking", "treadmill", "Walk", True),
        ("hiking", "generic", "Hike", False),
        ("cycling", "generic", "Ride", False),
        ("generic", "generic", "Workout", False),
    ],
)
def test_fit_sports_map_to_strava_names(tmp_path, sport, sub_sport, sport_type, trainer):
    data = one_sport_fit(sport, sub_sport, positions=sub_sport != "treadmill")
    activity = read_activity_file(write(tmp_path, "sport.fit", data)).activity
    assert (activity.sport_type, activity.trainer) == (sport_type, trainer)


def test_a_fit_without_sport_information_is_taken_for_a_run(tmp_path):
    run, _ = leg_messages("running", START, 60, 3.0)
    records = [m for m in run if m[0] == "record"]
    assert read_activity_file(write(tmp_path, "bare.fit", fit_bytes(records))).activity.sport_type == "Run"


def test_a_fit_course_is_not_an_activity(tmp_path):
    records = [m for m in leg_messages("running", START, 30, 3.0)[0] if m[0] == "record"]
    course = ("file_id", {"type": 6, "manufacturer": 1, "serial_number": 7, "time_created": START})
    assert "course file, not a recorded activity" in read_error(
        write(tmp_path, "route.fit", fit_bytes([course, *records]))
    )


def test_treadmill_distance_comes_from_the_device_without_gps(tmp_path):
    data = one_sport_fit("running", "treadmill", positions=False)
    loaded = read_activity_file(write(tmp_path, "treadmill.fit", data))
    assert loaded.activity.trainer
    assert loaded.streams.distance[-1] == pytest.approx(360)


def test_fit_ids_are_stable_and_differ_between_recordings(tmp_path):
    a = read_activity_file(
        write(tmp_path, "a.fit", fit_bytes([file_id(1), *leg_messages("running", START, 9, 3)[0]]))
    )
    b = read_activity_file(
        write(tmp_path, "b.fit", fit_bytes([file_id(2), *leg_messages("running", START, 9, 3)[0]]))
    )
    again = read_activity_file(tmp_path / "a.fit")
    assert a.activity.id == again.activity.id > 0
    assert a.activity.id != b.activity.id


# --------------------------------------------------------------------------------------------------------
# TCX and GPX


def test_tcx_with_the_tpx_extension():
    loaded = read_activity_file(FILES / "tpx_run.tcx")
    check_invariants(loaded)
    activity, streams = loaded.activity, loaded.streams
    assert loaded.format == "tcx"
    assert activity.sport_type == "Run"
    assert activity.name == "tpx_run"
    assert set(streams.cadence) == {86, 82}  # RunCadence, per leg
    assert set(streams.velocity_smooth) == {3.0, 2.5}  # TPX Speed, not derived from distance
    assert activity.distance_m == pytest.approx(107)
    assert activity.elapsed_time_s == 39
    assert [lap.distance_m for lap in activity.laps] == [57, 50]
    assert activity.laps[1].average_cadence == 82
    assert activity.calories == 24
    assert activity.id > 0
    assert 2 < statistics.median(streams.grade_smooth) < 4  # 3 % climb, from altitude over distance


def test_a_tcx_activity_name_is_used_when_the_file_has_one(tmp_path):
    text = (FILES / "tpx_run.tcx").read_text().replace("</Id>", "</Id>\n      <Name>Made-up hill reps</Name>")
    assert read_activity_file(write(tmp_path, "named.tcx", text)).activity.name == "Made-up hill reps"


def test_undeclared_namespace_prefix_is_recovered():
    path = FILES / "undeclared_prefix.tcx"
    with pytest.raises(ET.ParseError, match="unbound prefix"):
        ET.parse(path)  # noqa: S314 - shows the file really is broken
    loaded = read_activity_file(path)
    clean = read_activity_file(FILES / "tpx_run.tcx")
    assert loaded.streams == clean.streams
    assert loaded.activity.laps == clean.activity.laps


@pytest.mark.parametrize("name", ["bom_whitespace.tcx", "bom_whitespace.gpx"])
def test_bom_and_whitespace_before_the_xml_declaration(name):
    data = (FILES / name).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and not data[3:].startswith(b"<?xml")
    with pytest.raises(ET.ParseError):
        ET.fromstring(data)  # noqa: S314 - shows the file really is broken
    loaded = read_activity_file(FILES / name)
    clean = read_activity_file(FILES / ("tpx_run.tcx" if name.endswith(".tcx") else "garmin_tpx_run.gpx"))
    assert loaded.streams == clean.streams


def test_gpx_with_garmin_trackpoint_extension():
    loaded = read_activity_file(FILES / "garmin_tpx_run.gpx")
    check_invariants(loaded)
    activity, streams = loaded.activity, loaded.streams
    assert loaded.format == "gpx"
    assert (activity.name, activity.sport_type, activity.id) == ("Made-up Morning Run", "Run", 0)
    assert set(streams.cadence) == {86, 82}
    assert streams.heartrate[0] == 140 and streams.heartrate[-1] == 149
    assert activity.distance_m == pytest.approx(107, rel=0.01)  # from the positions
    assert positive_median(streams.velocity_smooth) == pytest.approx(2.75, abs=0.3)
    assert activity.laps == ()


def test_gpx_with_plain_vendor_extensions_and_a_walk():
    loaded = read_activity_file(FILES / "vendor_extensions.gpx")
    assert loaded.activity.sport_type == "Walk"
    assert loaded.activity.name == "Made-up Evening Walk"
    assert set(loaded.streams.cadence) == {86, 82}
    assert statistics.median(loaded.streams.heartrate) == pytest.approx(144.5)


def test_gpx_with_undeclared_gpxtpx_prefix_and_strava_numeric_type():
    loaded = read_activity_file(FILES / "undeclared_prefix.gpx")
    assert loaded.activity.sport_type == "Run"  # Strava writes <type>9</type>
    assert set(loaded.streams.cadence) == {86, 82}
    assert loaded.streams.heartrate is not None


def test_gpx_without_time_is_an_error():
    assert "no timestamps" in read_error(FILES / "no_time.gpx")


@pytest.mark.parametrize(
    ("attribute", "sport_type"),
    [('Sport="Biking"', "Ride"), ('Sport="Other"', "Workout"), ("", "Run"), ('Sport="Walking"', "Walk")],
)
def test_tcx_sports(tmp_path, attribute, sport_type):
    text = (FILES / "tpx_run.tcx").read_text().replace('Sport="Running"', attribute)
    assert read_activity_file(write(tmp_path, "sport.tcx", text)).activity.sport_type == sport_type


def test_tcx_bike_cadence_is_not_taken_for_run_cadence(tmp_path):
    text = (FILES / "tpx_run.tcx").read_text().replace('Sport="Running"', 'Sport="Biking"')
    text = text.replace("<Extensions><ns3:TPX>", "<Cadence>91</Cadence><Extensions><ns3:TPX>")
    assert set(read_activity_file(write(tmp_path, "ride.tcx", text)).streams.cadence) == {91}


@pytest.mark.parametrize("fraction", [0.9, 0.5, 0.05])
def test_a_truncated_tcx_keeps_the_trackpoints_before_the_break(tmp_path, fraction):
    whole = real("sweatpy_3173437224.tcx")
    data = (REAL / "sweatpy_3173437224.tcx").read_bytes()
    loaded = read_activity_file(write(tmp_path, "cut.tcx", data[: int(len(data) * fraction)]))
    check_invariants(loaded)
    n = len(loaded.streams.time)
    assert 0.8 * fraction * 3507 < n < 3507
    assert loaded.streams.time.tolist() == whole.streams.time[:n].tolist()
    assert loaded.streams.cadence.tolist() == whole.streams.cadence[:n].tolist()


def test_gzip_compressed_files_as_in_stravas_bulk_export(tmp_path):
    data = gzip.compress((REAL / "fitparse_garmin-fenix-5-walk.fit").read_bytes())
    loaded = read_activity_file(write(tmp_path, "20170611.fit.gz", data))
    assert loaded.format == "fit" and loaded.activity.name == "20170611"
    assert len(loaded.streams.time) == 17
    gpx = gzip.compress((FILES / "garmin_tpx_run.gpx").read_bytes())
    assert read_activity_file(write(tmp_path, "run.gpx.gz", gpx)).format == "gpx"


def test_the_extension_does_not_decide_the_format(tmp_path):
    data = (FILES / "garmin_tpx_run.gpx").read_bytes()
    assert read_activity_file(write(tmp_path, "actually-gpx.fit", data)).format == "gpx"
    fit = (REAL / "fitparse_garmin-fenix-5-run.fit").read_bytes()
    assert read_activity_file(write(tmp_path, "download", fit)).format == "fit"


# --------------------------------------------------------------------------------------------------------
# Strava JSON


def test_bare_key_by_type_streams_get_a_default_activity():
    loaded = read_activity_file(FILES / "streams_key_by_type.json")
    check_invariants(loaded)
    activity, streams = loaded.activity, loaded.streams
    assert loaded.format == "json"
    assert (activity.id, activity.name, activity.sport_type, activity.description) == (
        0,
        "streams_key_by_type",
        "Run",
        "",
    )
    assert activity.distance_m == pytest.approx(107)
    assert activity.elapsed_time_s == 39 and activity.moving_time_s == 39
    assert activity.average_cadence == pytest.approx(84, abs=0.5)
    assert streams.cadence[0] == 86 and len(streams.time) == 40
    # the series Strava derives are filled in when the file lacks them
    assert (
        streams.velocity_smooth is not None
        and streams.moving is not None
        and streams.grade_smooth is not None
    )


def test_streams_wrapped_with_the_activity_use_stravas_schema():
    loaded = read_activity_file(FILES / "streams_with_activity.json")
    check_invariants(loaded)
    activity = loaded.activity
    assert (activity.id, activity.athlete_id, activity.name) == (987654321, 4242, "Made-up #retro run")
    assert activity.description == "Laps 2 backwards"
    assert [lap.name for lap in activity.laps] == ["Lap 1", "Lap 2 backwards"]
    assert activity.laps[1].start_index == 19
    assert loaded.streams.heartrate[0] == 140


def test_stravas_list_shape_and_an_activity_alone(tmp_path):
    by_type = json.loads((FILES / "streams_key_by_type.json").read_text())
    listed = [{"type": key, **value} for key, value in by_type.items()]
    assert read_activity_file(write(tmp_path, "list.json", json.dumps(listed))).streams.cadence[0] == 86
    wrapped = json.loads((FILES / "streams_with_activity.json").read_text())
    alone = read_activity_file(write(tmp_path, "activity.json", json.dumps(wrapped["activity"])))
    assert alone.streams is None and alone.activity.id == 987654321


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "not valid JSON"),
        ('{"foo": 1}', "not Strava streams"),
        ('{"time": {"data": [0, 1, 2]}, "cadence": {"data": [80, 81]}}', "different lengths"),
        ('{"time": {"data": [0, "x"]}}', "not a number"),
        ('{"time": {"data": [0, NaN]}}', "not valid JSON"),
        ('{"activity": {"name": "no id"}, "streams": {"time": {"data": [0, 1]}}}', "id"),
        ('{"activity": [], "streams": null}', "'activity' must be an object"),
        ('{"distance": {"data": [0, 1]}, "time": {"data": []}}', "no 'time' series"),
        ("[1, 2, 3]", "not Strava streams"),
    ],
)
def test_json_errors(tmp_path, content, reason):
    assert reason in read_error(write(tmp_path, "bad.json", content))


# --------------------------------------------------------------------------------------------------------
# Errors: one ActivityFileError with the file name, never another exception


def test_missing_file(tmp_path):
    assert read_error(tmp_path / "nope.fit") == "nope.fit: no such file"


def test_a_directory(tmp_path):
    (tmp_path / "runs.fit").mkdir()
    assert "is a directory" in read_error(tmp_path / "runs.fit")


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.fit", b"", "empty file"),
        ("blank.gpx", b"  \n\t\n", "empty file"),
        ("noise.bin", b"\x00\x01\x02 definitely not an activity", "unknown format"),
        ("noise.fit", b"\x00\x01\x02 definitely not an activity", "not a FIT file"),
        ("header-only.fit", fit_bytes([])[:14], "FIT"),
        ("nonsense.tcx", b"this is not xml", "not well-formed XML"),
        ("half-tag.gpx", b"<gpx><trk><trkseg><trkpt lat=", "no track points"),
        ("course.tcx", b"<TrainingCenterDatabase><Courses/></TrainingCenterDatabase>", "no activity"),
        ("empty-activity.tcx", b"<TrainingCenterDatabase><Activities><Activity Sport='Running'/>"
         b"</Activities></TrainingCenterDatabase>", "no trackpoints"),
        ("route.gpx", b"<gpx><rte><rtept lat='1' lon='2'/></rte></gpx>", "no track points"),
        ("map.kml", (FILES / "not_activity.kml").read_bytes(), "neither TCX nor GPX"),
        ("bomb.gpx", b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]>'
         b"<gpx>&b;</gpx>", "entity"),
        ("broken.fit.gz", b"\x1f\x8b\x08\x00garbage", "gzip"),
        ("bad-utf8.json", b'{"time": "\xff\xfe"}', "not UTF-8"),
    ],
)  # fmt: skip
def test_unreadable_content(tmp_path, name, content, reason):
    assert reason in read_error(write(tmp_path, name, content))


def test_an_unreadable_file(tmp_path):
    path = write(tmp_path, "locked.fit", b".")
    path.chmod(0)
    try:
        if _readable(path):
            pytest.skip("running as a user who can read any file")
        assert "permission denied" in read_error(path)
    finally:
        path.chmod(0o644)


def _readable(path: Path) -> bool:
    try:
        path.read_bytes()
    except PermissionError:
        return False
    return True


# --------------------------------------------------------------------------------------------------------
# Property: any bytes give a LoadedFile or an ActivityFileError, and a LoadedFile is always well-formed

FENIX_RUN = (REAL / "fitparse_garmin-fenix-5-run.fit").read_bytes()
TPX_TCX = (FILES / "tpx_run.tcx").read_bytes()
SWEATPY_HEAD = (REAL / "sweatpy_3173437224.tcx").read_bytes()[:120_000]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def only_loaded_or_file_error(path: Path) -> None:
    try:
        loaded = read_activity_file(path)
    except ActivityFileError as exc:
        assert str(exc).startswith(f"{path.name}: ")
        assert "\n" not in str(exc)
    else:
        check_invariants(loaded)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(
    data=st.binary(max_size=4096),
    name=st.sampled_from(["x.fit", "x.tcx", "x.gpx", "x.json", "x", "x.fit.gz"]),
)
def test_random_bytes(fuzz_dir, data, name):
    only_loaded_or_file_error(write(fuzz_dir, name, data))


@FUZZ
@given(
    source=st.sampled_from([FENIX_RUN, TPX_TCX, SWEATPY_HEAD]),
    cut=st.floats(min_value=0, max_value=1),
    flips=st.lists(st.tuples(st.floats(min_value=0, max_value=1), st.integers(0, 255)), max_size=4),
)
def test_random_truncations_and_corruptions_of_real_files(fuzz_dir, source, cut, flips):
    data = bytearray(source[: int(len(source) * cut)])
    for where, value in flips:
        if data:
            data[min(int(where * len(data)), len(data) - 1)] = value
    only_loaded_or_file_error(write(fuzz_dir, "fuzzed", bytes(data)))


_JSON_KEYS = st.sampled_from(
    [
        "time",
        "distance",
        "cadence",
        "moving",
        "altitude",
        "data",
        "type",
        "activity",
        "streams",
        "id",
        "sport_type",
    ]
)
_JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**20), 10**20),
        st.floats(allow_nan=False),
        st.text(max_size=4),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(_JSON_KEYS, inner, max_size=5)),
    max_leaves=30,
)


@FUZZ
@given(value=_JSON_VALUES)
def test_any_json_value(fuzz_dir, value):
    path = write(fuzz_dir, "value.json", json.dumps(value))
    try:
        check_invariants(read_activity_file(path))
    except ActivityFileError as exc:
        assert "unreadable content" not in str(exc)  # every JSON problem has its own reason


@FUZZ
@given(head=st.binary(max_size=64), cut=st.integers(min_value=0, max_value=len(FENIX_RUN)))
def test_a_fit_header_followed_by_anything(fuzz_dir, head, cut):
    only_loaded_or_file_error(write(fuzz_dir, "head.fit", FENIX_RUN[:14] + head + FENIX_RUN[cut:]))
