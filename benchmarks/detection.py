"""Precision and recall of the backward-effort detector (plugin/analysis/detect.py) on real forward runs.

    python benchmarks/detection.py [--trials 8] [--sweep-trials 4] [--seed 2026]

1. False positives: every real forward recording in ../shared/realruns (plus the sandbox seed's "easy-run") is
   analysed in mode "auto"; none holds backward locomotion, so every effort reported is a false positive.
2. Spliced efforts: synthetic backward efforts are spliced into the real forward runs that have speed and
   cadence (1-4 per run; speed x0.55-0.75 and cadence x1.0-1.1 of the minute before; 60-240 s; time and
   distance continuous; heart rate not falling), then detected in mode "tagged" (activity named "#retro"),
   "tagged" with the true count in the name ("#retro 3x"), and "auto" (untagged). An effort counts as found
   when a detection overlaps it with IoU >= 0.5; precision = matched detections / detections.
3. A sweep over effort duration and speed factor (cadence x1.05) shows where recall breaks down.

Deterministic: one random.Random(seed) drives every choice. No timing here (see detection_speed.py).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import describe  # noqa: E402

from plugin.analysis.detect import detect_efforts, find_tag  # noqa: E402
from plugin.domain import Activity, Effort, Streams  # noqa: E402
from plugin.files import ActivityFileError, read_activity_file  # noqa: E402
from plugin.hosts.strava.schemas import STREAM_KEYS  # noqa: E402
from plugin.sandbox.seed import load_seed_activity  # noqa: E402

REALRUNS = Path(__file__).resolve().parents[2] / "shared" / "realruns"
TEST_FILES = ROOT / "tests" / "data" / "files"

SPEED_FACTOR = (0.55, 0.75)
CADENCE_FACTOR = (1.0, 1.1)
DURATION_S = (60, 240)
EFFORTS_PER_RUN = (1, 4)
HR_RISE_BPM_S = 0.05  # as the seed generator: heart rate holds and creeps up during the effort
REF_WINDOW_S = 60.0  # "the forward speed just before" = mean over this window
REF_MIN_SAMPLES = 5  # samples needed in that window (sparse "smart" recordings hold about 10 a minute)
EDGE_MARGIN_S = 90.0  # no effort this close to the start or end of a recording
GAP_S = 120.0  # forward running between spliced efforts, at least
MIN_BASE_S = 15 * 60.0  # bases shorter than this hold too little forward running to splice into
SWEEP_DURATIONS = (20, 30, 45, 60, 90, 120)
SWEEP_SPEEDS = (0.55, 0.65, 0.75, 0.85, 0.9)
SWEEP_CADENCE = 1.05
IOU = 0.5


# --- loading ------------------------------------------------------------------------------------------------


def load_recording(path: Path) -> tuple[Activity, Streams | None, str]:
    loaded = read_activity_file(path)
    return loaded.activity, loaded.streams, f"plugin.files ({loaded.format})"


# --- splicing -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    at_s: float  # stream time of the forward sample after which the effort is inserted
    duration_s: int
    speed_factor: float
    cadence_factor: float


def _column(streams: Streams, name: str, n: int) -> list | None:
    values = getattr(streams, name)
    return list(values[:n]) if values is not None else None


def splice(streams: Streams, specs: Sequence[Spec]) -> tuple[Streams, list[tuple[float, float]]]:
    """Insert backward efforts (1 s samples) after the given forward samples; later samples shift by the
    effort's time and distance. Returns the new streams and each effort's (start, end) in stream seconds."""
    n = len(streams.time)
    cols = {
        name: _column(streams, name, n)
        for name in STREAM_KEYS
        if name != "moving"  # booleans, spliced on their own below
    }
    moving = list(streams.moving) if streams.moving is not None else [True] * n
    time_s, dist, speed, cad = cols["time"], cols["distance"], cols["velocity_smooth"], cols["cadence"]
    assert time_s is not None and dist is not None and speed is not None and cad is not None
    at = sorted(specs, key=lambda s: s.at_s)
    out: dict[str, list] = {name: [] for name in cols}
    out_moving: list[bool] = []
    truths: list[tuple[float, float]] = []
    shift_t = shift_d = 0.0
    k = 0
    for i in range(n):
        for name, values in cols.items():
            if values is None:
                continue
            value = values[i]
            if name == "time":
                value = value + shift_t
            elif name == "distance":
                value = value + shift_d
            out[name].append(value)
        out_moving.append(moving[i])
        while k < len(at) and time_s[i] >= at[k].at_s:
            spec = at[k]
            k += 1
            ref = [
                j
                for j in range(max(0, i - 200), i + 1)
                if time_s[i] - REF_WINDOW_S < time_s[j] <= time_s[i] and speed[j] > 0.5 and cad[j] > 0
            ]
            if len(ref) < REF_MIN_SAMPLES:  # running_spots() guarantees it
                raise ValueError(f"no forward running before {spec.at_s} s")
            t, d = out["time"][-1], out["distance"][-1]
            hr0 = out["heartrate"][-1] if out.get("heartrate") else None
            start = t
            for step in range(1, spec.duration_s + 1):
                j = ref[step % len(ref)]
                v = spec.speed_factor * speed[j]  # the minute before's own variation, slowed
                t += 1.0
                d += v
                out["time"].append(t)
                out["distance"].append(d)
                out["velocity_smooth"].append(v)
                out["cadence"].append(spec.cadence_factor * cad[j])
                if cols["heartrate"] is not None:
                    out["heartrate"].append((hr0 or 0.0) + HR_RISE_BPM_S * step if hr0 else 0.0)
                if cols["grade_smooth"] is not None:
                    out["grade_smooth"].append(0.0)  # the inserted stretch is flat
                if cols["altitude"] is not None:
                    out["altitude"].append(out["altitude"][-1])
                out_moving.append(True)
            truths.append((start - out["time"][0], t - out["time"][0]))
            shift_t += spec.duration_s
            shift_d += d - out["distance"][-spec.duration_s - 1]
    spliced = Streams(
        time=tuple(out["time"]),
        distance=tuple(out["distance"]),
        velocity_smooth=tuple(out["velocity_smooth"]),
        cadence=tuple(out["cadence"]),
        heartrate=tuple(out["heartrate"]) if cols["heartrate"] is not None else None,
        grade_smooth=tuple(out["grade_smooth"]) if cols["grade_smooth"] is not None else None,
        altitude=tuple(out["altitude"]) if cols["altitude"] is not None else None,
        moving=tuple(out_moving),
    )
    return spliced, truths


def running_spots(streams: Streams) -> list[float]:
    """Stream times after which an effort may go: the minute before is steady running (speed and cadence),
    away from the recording's ends."""
    t, v, c = streams.time, streams.velocity_smooth, streams.cadence
    assert v is not None and c is not None
    moving = streams.moving
    out = []
    lo, hi = t[0] + EDGE_MARGIN_S, t[-1] - EDGE_MARGIN_S
    start = 0
    for i in range(len(t)):
        while t[start] < t[i] - REF_WINDOW_S:
            start += 1
        if not lo <= t[i] <= hi or i - start < REF_MIN_SAMPLES:
            continue
        window = range(start, i + 1)
        ok = all(v[j] > 1.6 and (c[j] or 0) >= 70 and (moving is None or moving[j]) for j in window)
        if ok and all(t[j] - t[j - 1] <= 10 for j in range(start + 1, i + 1)):
            out.append(t[i])
    return out


def choose_specs(
    rnd: random.Random,
    spots: list[float],
    count: int,
    make: Callable[[random.Random], tuple[int, float, float]],
) -> list[Spec]:
    specs: list[Spec] = []
    for _ in range(200):
        if len(specs) == count or not spots:
            break
        at = rnd.choice(spots)
        if any(abs(at - s.at_s) < GAP_S + s.duration_s + 240 for s in specs):
            continue
        duration, speed, cadence = make(rnd)
        specs.append(Spec(at, duration, speed, cadence))
    return sorted(specs, key=lambda s: s.at_s)


# --- scoring ------------------------------------------------------------------------------------------------


def iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0])
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if inter > 0 and union > 0 else 0.0


@dataclass
class Score:
    truths: int = 0
    found: int = 0  # truths matched
    detections: int = 0
    correct: int = 0  # detections matched

    def add(self, truths: Sequence[tuple[float, float]], efforts: Sequence[Effort]) -> None:
        spans = [(e.start_s, e.end_s) for e in efforts]
        used: set[int] = set()
        for truth in truths:
            best = max(range(len(spans)), key=lambda k: iou(truth, spans[k]), default=None)
            if best is not None and best not in used and iou(truth, spans[best]) >= IOU:
                used.add(best)
        self.truths += len(truths)
        self.found += len(used)
        self.detections += len(spans)
        self.correct += len(used)

    @property
    def recall(self) -> float:
        return self.found / self.truths if self.truths else float("nan")

    @property
    def precision(self) -> float:
        return self.correct / self.detections if self.detections else float("nan")

    def line(self) -> str:
        return (
            f"recall {self.recall:5.3f} ({self.found}/{self.truths})  "
            f"precision {self.precision:5.3f} ({self.correct}/{self.detections})"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8, help="spliced activities per forward run")
    parser.add_argument("--sweep-trials", type=int, default=4, help="activities per run and sweep cell")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(describe())
    print("command: python benchmarks/" + Path(__file__).name + " " + " ".join(argv or sys.argv[1:]))
    print()

    # 1. False positives on forward recordings.
    print(f"1. Forward recordings in {REALRUNS} and tests/data/files (mode auto; an effort is a")
    print("   false positive unless the file's own name or description tags it)")
    bases: list[tuple[str, Activity, Streams]] = []
    false_positives = 0
    files = sorted(p for p in REALRUNS.iterdir() if p.suffix.lower() in (".fit", ".tcx", ".gpx"))
    recordings: list[tuple[str, Activity, Streams | None, str]] = []
    for path in files:
        try:
            activity, streams, reader = load_recording(path)
        except Exception as exc:  # noqa: BLE001 - a benchmark reports and goes on
            print(f"   {path.name}: unreadable ({exc})")
            continue
        recordings.append((path.name, activity, streams, reader))
    # The project's own test files: synthetic damage cases, all forward.
    for path in sorted(TEST_FILES.iterdir()):
        try:
            activity, streams, reader = load_recording(path)
        except ActivityFileError:
            continue  # the fixtures that exist to be unreadable
        recordings.append((f"tests/data/files/{path.name}", activity, streams, reader))
    easy, easy_streams = load_seed_activity("easy-run")
    recordings.append(("seed.json easy-run", easy, easy_streams, "seed.json"))
    for name, activity, streams, _reader in recordings:
        efforts = detect_efforts(activity, streams, "auto")
        tagged = find_tag(f"{activity.name}\n{activity.description}") is not None
        false_positives += 0 if tagged else len(efforts)
        n = len(streams.time) if streams is not None else 0
        span = (streams.time[-1] - streams.time[0]) if n else 0.0
        cadence = "cadence" if streams is not None and streams.cadence is not None else "no cadence"
        result = (
            "no effort"
            if not efforts
            else "; ".join(f"{e.start_s:.0f}-{e.end_s:.0f} s conf {e.confidence:.2f}" for e in efforts)
        )
        if tagged:
            result += " (tagged by its author: not counted)"
        print(
            f"   {name:46s} {activity.sport_type:4s} {n:5d} samples {span / 60:5.1f} min {cadence:10s}"
            f" -> {result}"
        )
        if (
            streams is not None
            and streams.cadence is not None
            and streams.velocity_smooth is not None
            and span >= MIN_BASE_S
            and name.endswith((".fit", ".tcx", ".gpx"))
            and "/" not in name
        ):
            bases.append((name, activity, streams))
    print(f"   false positives in auto mode: {false_positives} (goal: 0); reader: {recordings[0][3]}")
    print()

    # 2. Spliced efforts.
    rnd = random.Random(args.seed)  # noqa: S311 - a reproducible benchmark, not a secret
    modes = {key: Score() for key in ("tagged (#retro)", "tagged + count", "auto (untagged)")}
    per_base: dict[str, Score] = {}

    def run_modes(
        activity: Activity, streams: Streams, truths: list[tuple[float, float]], scores: dict
    ) -> None:
        plain = replace(activity, name="Morning Run", description="", laps=())
        tagged = replace(plain, name="Morning Run #retro")
        counted = replace(plain, name=f"#retro {len(truths)}x")
        scores["tagged (#retro)"].add(truths, detect_efforts(tagged, streams, "tagged"))
        scores["tagged + count"].add(truths, detect_efforts(counted, streams, "tagged"))
        scores["auto (untagged)"].add(truths, detect_efforts(plain, streams, "auto"))

    def spec_random(r: random.Random) -> tuple[int, float, float]:
        return (
            r.randint(*DURATION_S),
            round(r.uniform(*SPEED_FACTOR), 3),
            round(r.uniform(*CADENCE_FACTOR), 3),
        )

    print(
        f"2. Spliced backward efforts: {args.trials} activities per forward run, {EFFORTS_PER_RUN[0]}-"
        f"{EFFORTS_PER_RUN[1]} efforts each, speed x{SPEED_FACTOR[0]}-{SPEED_FACTOR[1]}, cadence "
        f"x{CADENCE_FACTOR[0]}-{CADENCE_FACTOR[1]}, {DURATION_S[0]}-{DURATION_S[1]} s, IoU >= {IOU}, "
        f"seed {args.seed}"
    )
    spots_by_base = {name: running_spots(streams) for name, _, streams in bases}
    for name, activity, streams in bases:
        spots = spots_by_base[name]
        if not spots:
            print(f"   {name}: no steady running to splice into")
            continue
        base_scores = {key: Score() for key in modes}
        for _ in range(args.trials):
            specs = choose_specs(rnd, spots, rnd.randint(*EFFORTS_PER_RUN), spec_random)
            spliced, truths = splice(streams, specs)
            run_modes(activity, spliced, truths, base_scores)
        for key, score in base_scores.items():
            total = modes[key]
            total.truths += score.truths
            total.found += score.found
            total.detections += score.detections
            total.correct += score.correct
        per_base[name] = base_scores["auto (untagged)"]
        print(f"   {name:48s} auto: {base_scores['auto (untagged)'].line()}")
        print(f"   {'':48s} tagged: {base_scores['tagged (#retro)'].line()}")
    print("   all runs:")
    for key, score in modes.items():
        print(f"     {key:18s} {score.line()}")
    print("   goals: recall >= 0.9, precision >= 0.98")
    print()

    # 3. Sweep.
    runs = sum(1 for spots in spots_by_base.values() if spots)
    print(
        f"3. Recall by effort duration and speed factor (cadence x{SWEEP_CADENCE}; one effort per activity; "
        f"{args.sweep_trials} activities per run and cell, {runs} runs)"
    )
    sweep: dict[tuple[int, float], dict[str, Score]] = {}
    for duration in SWEEP_DURATIONS:
        for factor in SWEEP_SPEEDS:
            cell = {key: Score() for key in modes}
            for name, activity, streams in bases:
                spots = spots_by_base[name]
                if not spots:
                    continue
                for _ in range(args.sweep_trials):
                    fixed = (duration, factor, SWEEP_CADENCE)
                    specs = choose_specs(rnd, spots, 1, lambda _r, fixed=fixed: fixed)
                    spliced, truths = splice(streams, specs)
                    run_modes(activity, spliced, truths, cell)
            sweep[(duration, factor)] = cell
    for key in ("auto (untagged)", "tagged (#retro)"):
        print(f"   {key}: recall (precision in brackets)")
        print("     duration " + "".join(f"   speed x{f:<4}    " for f in SWEEP_SPEEDS))
        for duration in SWEEP_DURATIONS:
            row = "".join(
                f"   {sweep[(duration, f)][key].recall:4.2f} ({sweep[(duration, f)][key].precision:4.2f})   "
                for f in SWEEP_SPEEDS
            )
            print(f"     {duration:5d} s " + row)
    print()
    print(f"elapsed {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
