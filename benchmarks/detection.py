"""Precision and recall of the backward-effort detector on real forward runs with spliced backward efforts.

    python benchmarks/detection.py [--trials 16] [--seed 2026] [--quick] [--no-smart]

1. Unmodified recordings (../shared/realruns, tests/data/files, the sandbox seed's "easy-run"), analysed
   untagged (mode "auto"), tagged "#retro" and tagged "#retro 2x": none holds backward locomotion. Every
   effort published untagged is wrong, and so is every effort published on a base (forward running a
   detector can see); a tag may yield one whole-activity effort only without usable or with uniform streams.
2. Bases: the recordings with speed, cadence and at least 15 min of steady running (benchmarks/splicing.py).
3. Spliced efforts: backward efforts of 20 s to 30 min spliced route-true into each base (speed x0.5-0.8,
   cadence x0.95-1.12 of the minute before, the forward samples' own variation, altitude and grade of the
   route, heart rate from the metabolic model of SCIENCE.md), 1-4 per activity up to 4 min, 1 beyond; each
   activity analysed untagged ("Morning Run"), tagged ("Morning Run #retro") and tagged with the count and the
   distance ("Morning Run #retro 3x300m"). An effort is found when a detection overlaps it with IoU >= 0.5
   (one detection per effort); precision = matched detections / detections.
4. The same activities as a "smart recording" device keeps them (a sample every 1-7 s), 1 Hz bases only.

Deterministic: one random.Random(seed) drives every choice. No timing of the detector here beyond the total
(see detection_speed.py).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import describe  # noqa: E402
from splicing import Route, Truth, prepare, retitled, smart_recording, splice  # noqa: E402
from splicing import plan as plan_efforts  # noqa: E402 - "plan" reads as a noun in the driver

from plugin.analysis.detect import detect_efforts, find_tag  # noqa: E402
from plugin.domain import Activity, Effort, Streams  # noqa: E402
from plugin.files import ActivityFileError, read_activity_file  # noqa: E402
from plugin.sandbox.seed import load_seed_activity  # noqa: E402

REALRUNS = ROOT.parent / "shared" / "realruns"
TEST_FILES = ROOT / "tests" / "data" / "files"

DURATIONS_S = (20, 30, 60, 120, 240, 420, 600, 1200, 1800)
SEVERAL_UP_TO_S = 240  # interval-style sessions (1-4 efforts) up to this duration, one effort beyond
EFFORTS_PER_ACTIVITY = (1, 4)
MIN_BASE_RUNNING_S = 15 * 60.0
SMART_MAX_DT_S = 1.5  # only bases recorded about every second become "smart recordings"
IOU = 0.5
DISTANCE_TOLERANCE = 0.15
WORST_SHOWN = 5

MODES = ("auto", "tagged", "counted")
DETECTOR_MODE: dict[str, Literal["auto", "tagged"]] = {
    "auto": "auto",
    "tagged": "tagged",
    "counted": "tagged",
}
MODE_TITLES = {
    "auto": 'untagged, mode "auto", name "Morning Run"',
    "tagged": 'tagged, mode "tagged", name "Morning Run #retro"',
    "counted": 'tagged with count and distance, mode "tagged", name "Morning Run #retro 3x300m"',
}
GOALS = {
    "auto": "goals: recall >= 0.90 at every duration from 60 s, precision >= 0.98",
    "tagged": "goals: recall >= 0.95, precision >= 0.97, distance within +/-15% in >= 95% of activities",
    "counted": "goals: recall >= 0.95, precision >= 0.97, distance within +/-15% in >= 95% of activities",
}
RECALL_GOAL = {"auto": 0.90, "tagged": 0.95, "counted": 0.95}
RECALL_GOAL_FROM_S = {"auto": 60, "tagged": 0, "counted": 0}
PRECISION_GOAL = {"auto": 0.98, "tagged": 0.97, "counted": 0.97}
DISTANCE_GOAL = 0.95


# --- the detector, timed ------------------------------------------------------------------------------------


@dataclass
class Detector:
    """detect_efforts, counting its calls and the time spent in it."""

    calls: int = 0
    seconds: float = 0.0

    def __call__(
        self, activity: Activity, streams: Streams | None, mode: Literal["auto", "tagged"]
    ) -> list[Effort]:
        started = time.perf_counter()
        try:
            return detect_efforts(activity, streams, mode)
        finally:
            self.calls += 1
            self.seconds += time.perf_counter() - started


# --- scoring ----------------------------------------------------------------------------------------------


def iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0])
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if inter > 0 and union > 0 else 0.0


def match(truths: Sequence[Truth], efforts: Sequence[Effort]) -> list[int | None]:
    """For each truth, the index of the detection matched to it (best IoU first, each detection once)."""
    pairs = sorted(
        (
            (iou((t.start_s, t.end_s), (e.start_s, e.end_s)), i, j)
            for i, t in enumerate(truths)
            for j, e in enumerate(efforts)
        ),
        reverse=True,
    )
    out: list[int | None] = [None] * len(truths)
    used: set[int] = set()
    for score, i, j in pairs:
        if score < IOU:
            break
        if out[i] is None and j not in used:
            out[i] = j
            used.add(j)
    return out


@dataclass
class Score:
    truths: int = 0
    found: int = 0
    detections: int = 0
    correct: int = 0
    activities: int = 0
    distance_ok: int = 0
    # Unmatched detections that overlap a true effort (wrong extent, e.g. a piece of a long effort or the
    # whole activity) are a different failure from a note on forward running.
    partial: int = 0

    def add(self, truths: Sequence[Truth], efforts: Sequence[Effort]) -> None:
        pairs = match(truths, efforts)
        matched = sum(j is not None for j in pairs)
        self.partial += sum(
            1
            for j, e in enumerate(efforts)
            if j not in pairs and any(min(e.end_s, t.end_s) > max(e.start_s, t.start_s) for t in truths)
        )
        self.truths += len(truths)
        self.found += matched
        self.detections += len(efforts)
        self.correct += matched
        self.activities += 1
        true_m = sum(t.distance_m for t in truths)
        self.distance_ok += abs(sum(e.distance_m for e in efforts) - true_m) <= DISTANCE_TOLERANCE * true_m

    @property
    def recall(self) -> float:
        return self.found / self.truths if self.truths else float("nan")

    @property
    def precision(self) -> float:
        return self.correct / self.detections if self.detections else float("nan")

    @property
    def distance_share(self) -> float:
        return self.distance_ok / self.activities if self.activities else float("nan")


@dataclass(frozen=True)
class DistanceError:
    relative: float
    base: str
    duration_s: int
    efforts: int
    true_m: float
    reported_m: float
    reported: int


@dataclass
class Results:
    by_duration: dict[tuple[str, int], Score] = field(default_factory=lambda: defaultdict(Score))
    by_base: dict[tuple[str, str], Score] = field(default_factory=lambda: defaultdict(Score))
    overall: dict[str, Score] = field(default_factory=lambda: defaultdict(Score))
    errors: dict[str, list[DistanceError]] = field(default_factory=lambda: defaultdict(list))

    def add(self, mode: str, base: str, duration: int, truths: list[Truth], efforts: list[Effort]) -> None:
        for score in (self.by_duration[(mode, duration)], self.by_base[(mode, base)], self.overall[mode]):
            score.add(truths, efforts)
        true_m = sum(t.distance_m for t in truths)
        reported_m = sum(e.distance_m for e in efforts)
        self.errors[mode].append(
            DistanceError(
                (reported_m - true_m) / true_m, base, duration, len(truths), true_m, reported_m, len(efforts)
            )
        )


# --- recordings -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recording:
    name: str
    activity: Activity
    streams: Streams | None
    route: Route | None


def load_recordings() -> tuple[list[Recording], list[str]]:
    problems: list[str] = []
    paths = [p for p in sorted(REALRUNS.iterdir()) if p.suffix.lower() in (".fit", ".tcx", ".gpx")]
    paths += sorted(TEST_FILES.iterdir())
    out: list[Recording] = []
    for path in paths:
        label = path.name if path.parent == REALRUNS else f"tests/data/files/{path.name}"
        if path.suffix.lower() == ".md":
            continue
        try:
            loaded = read_activity_file(path)
        except ActivityFileError as exc:
            problems.append(f"{label}: unreadable ({exc.reason})")
            continue
        out.append(Recording(label, loaded.activity, loaded.streams, prepare(loaded.streams)))
    easy, easy_streams = load_seed_activity("easy-run")
    out.append(Recording("seed.json easy-run", easy, easy_streams, prepare(easy_streams)))
    return out, problems


def is_base(rec: Recording) -> bool:
    """A real recording with enough steady running (the sandbox seed is synthetic: section 1 only)."""
    real = not rec.name.startswith("seed.json")
    return real and rec.route is not None and rec.route.running_s >= MIN_BASE_RUNNING_S


def distance_words(metres: float) -> str:
    if metres < 100:
        return f"{round(metres / 10) * 10:.0f}m"
    if metres < 1000:
        return f"{round(metres / 50) * 50:.0f}m"
    return f"{metres / 1000:.1f}km"


def named(activity: Activity, streams: Streams, truths: Sequence[Truth]) -> dict[str, Activity]:
    plain = retitled(activity, streams, "Morning Run")
    mean_m = sum(t.distance_m for t in truths) / max(1, len(truths))
    return {
        "auto": plain,
        "tagged": replace(plain, name="Morning Run #retro"),
        "counted": replace(plain, name=f"Morning Run #retro {len(truths)}x{distance_words(mean_m)}"),
    }


def label(duration_s: int) -> str:
    return f"{duration_s} s" if duration_s < 60 else f"{duration_s // 60} min"


def fmt(x: float) -> str:
    return "  -  " if x != x else f"{x:5.2f}"  # NaN: nothing to score


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


# --- sections ---------------------------------------------------------------------------------------------


def unmodified(recordings: list[Recording], detect: Detector) -> None:
    print('1. Unmodified forward recordings: efforts published (auto / tagged / tagged + count "#retro 2x")')
    totals = {"auto": 0, "tagged": 0, "counted": 0}
    base_blocks = {"tagged": 0, "counted": 0}  # stream blocks published on forward running: all wrong
    base_whole = 0
    for rec in recordings:
        own_tag = find_tag(f"{rec.activity.name}\n{rec.activity.description}") is not None
        auto = detect(rec.activity, rec.streams, "auto")
        tagged = detect(
            replace(rec.activity, name="Morning Run #retro", description=""), rec.streams, "tagged"
        )
        counted = detect(
            replace(rec.activity, name="Morning Run #retro 2x", description=""), rec.streams, "tagged"
        )
        totals["auto"] += 0 if own_tag else len(auto)
        totals["tagged"] += len(tagged)
        totals["counted"] += len(counted)
        whole = sum(e.source == "whole" for e in tagged)
        if is_base(rec):
            base_blocks["tagged"] += len(tagged) - whole
            base_blocks["counted"] += sum(e.source != "whole" for e in counted)
            base_whole += whole
        n = len(rec.streams.time) if rec.streams is not None else 0
        span = float(rec.streams.time[-1] - rec.streams.time[0]) if n else 0.0
        cadence = "cadence" if rec.streams is not None and rec.streams.cadence is not None else "no cadence"
        note = " (tagged by its author: auto not counted)" if own_tag else ""
        print(
            f"   {rec.name:46s} {n:5d} samples {span / 60:5.1f} min {cadence:10s}"
            f" {'base' if is_base(rec) else '    '}  {len(auto)} / {len(tagged)}"
            f"{' (whole)' if whole else ''} / {len(counted)}{note}"
        )
    print(f"   auto, all recordings: {totals['auto']} efforts (goal 0: {met(totals['auto'] == 0)})")
    print(
        f'   tagged "#retro" on the bases: {base_blocks["tagged"]} stream blocks (goal 0:'
        f" {met(base_blocks['tagged'] == 0)}) and {base_whole} whole-activity efforts (by design when the"
        " streams are uniform: nothing forward to compare with)"
    )
    print(
        f'   tagged "#retro 2x" on the bases: {base_blocks["counted"]} stream blocks (goal 0:'
        f" {met(base_blocks['counted'] == 0)})"
    )
    print()


def bases_section(recordings: list[Recording]) -> list[Recording]:
    bases = [rec for rec in recordings if is_base(rec)]
    print(
        f"2. Bases: speed, cadence and >= {MIN_BASE_RUNNING_S / 60:.0f} min of steady running "
        "(1-min medians: cadence >= 70 per leg, speed >= 1.3 m/s; a gap in the recording ends a stretch)"
    )
    for rec in recordings:
        route = rec.route
        if route is None:
            why = (
                "no cadence"
                if rec.streams is not None and rec.streams.cadence is None
                else "no usable streams"
            )
            if rec.streams is not None and len(rec.streams.time) < 10:
                why = "too short"
            print(f"   {rec.name:46s} not a base: {why}")
            continue
        s = route.streams
        hr = "HR" if s.heartrate is not None else "no HR"
        alt = (
            f"altitude {np.min(s.altitude):.0f}-{np.max(s.altitude):.0f} m"
            if s.altitude is not None
            else "no altitude"
        )
        head = (
            f"   {rec.name:46s} running {route.running_s / 60:5.1f} min, longest stretch "
            f"{route.longest_stretch_s / 60:5.1f} min, every {route.dt_s:.0f} s, {hr}, {alt}"
        )
        why = "synthetic, section 1 only" if rec.name.startswith("seed.json") else "too little running"
        print(head + ("" if is_base(rec) else f"  -> not a base: {why}"))
    print()
    return bases


def evaluate(
    bases: list[Recording], trials: int, rnd: random.Random, detect: Detector, smart: bool
) -> tuple[Results, Results, list[str]]:
    results, smart_results = Results(), Results()
    skipped: list[str] = []
    for rec in bases:
        route = rec.route
        assert route is not None
        for duration in DURATIONS_S:
            built = 0
            for _ in range(trials):
                count = rnd.randint(*EFFORTS_PER_ACTIVITY) if duration <= SEVERAL_UP_TO_S else 1
                specs = plan_efforts(route, duration, count, rnd)
                if not specs:
                    continue
                built += 1
                streams, truths = splice(route, specs, rnd)
                for mode, activity in named(rec.activity, streams, truths).items():
                    results.add(
                        mode, rec.name, duration, truths, detect(activity, streams, DETECTOR_MODE[mode])
                    )
                if smart and route.dt_s <= SMART_MAX_DT_S:
                    sparse = smart_recording(streams, rnd)
                    for mode, activity in named(rec.activity, sparse, truths).items():
                        smart_results.add(
                            mode, rec.name, duration, truths, detect(activity, sparse, DETECTOR_MODE[mode])
                        )
            if built < trials:
                skipped.append(
                    f"{rec.name}: {label(duration)} efforts placed in {built} of {trials} activities "
                    f"(longest running stretch {route.longest_stretch_s / 60:.1f} min; an effort needs its "
                    "route at speed x0.8 plus 2 min before and after)"
                )
    return results, smart_results, skipped


def report(results: Results, bases: list[Recording], indent: str = "   ") -> None:
    durations = [d for d in DURATIONS_S if any(results.by_duration[(m, d)].truths for m in MODES)]
    for mode in MODES:
        overall = results.overall[mode]
        print(f"{indent}{mode}: {MODE_TITLES[mode]}")
        print(f"{indent}  {GOALS[mode]}")
        print(f"{indent}  {'duration':12s}" + "".join(f"{label(d):>8s}" for d in durations) + "     all")
        cells = [results.by_duration[(mode, d)] for d in durations]
        print(
            f"{indent}  {'efforts':12s}" + "".join(f"{c.truths:8d}" for c in cells) + f"{overall.truths:8d}"
        )
        print(
            f"{indent}  {'recall':12s}"
            + "".join(f"   {fmt(c.recall)}" for c in cells)
            + f"   {fmt(overall.recall)}"
        )
        print(
            f"{indent}  {'precision':12s}"
            + "".join(f"   {fmt(c.precision)}" for c in cells)
            + f"   {fmt(overall.precision)}"
        )
        if mode != "auto":
            print(
                f"{indent}  {'dist +/-15%':12s}"
                + "".join(f"   {fmt(c.distance_share)}" for c in cells)
                + f"   {fmt(overall.distance_share)}"
            )
        recall_ok = all(
            c.recall >= RECALL_GOAL[mode]
            for d, c in zip(durations, cells, strict=True)
            if d >= RECALL_GOAL_FROM_S[mode]
        )
        line = (
            f"{indent}  recall goal {met(recall_ok)}; precision {fmt(overall.precision).strip()} "
            f"({overall.correct}/{overall.detections}, goal {PRECISION_GOAL[mode]}: "
            f"{met(overall.precision >= PRECISION_GOAL[mode])}; of the "
            f"{overall.detections - overall.correct} unmatched, {overall.partial} overlap a true effort)"
        )
        if mode != "auto":
            line += (
                f"; distance within +/-15% in {overall.distance_ok}/{overall.activities} activities "
                f"({met(overall.distance_share >= DISTANCE_GOAL)})"
            )
        print(line)
        if mode != "auto":
            errors = results.errors[mode]
            worst = sorted(errors, key=lambda e: -abs(e.relative))[:WORST_SHOWN]
            median = float(np.median([abs(e.relative) for e in errors])) if errors else float("nan")
            print(f"{indent}  median |total distance error| {median:.0%}; worst:")
            for e in worst:
                print(
                    f"{indent}    {e.relative:+7.0%}  {e.base}, {e.efforts} x {label(e.duration_s)}: true "
                    f"{e.true_m:.0f} m, reported {e.reported_m:.0f} m in {e.reported} effort(s)"
                )
    print(f"{indent}per base (recall / precision; tagged modes also the distance share):")
    for rec in bases:
        scores = [results.by_base[(m, rec.name)] for m in MODES]
        if not scores[0].truths:
            continue
        parts = []
        for mode, s in zip(MODES, scores, strict=True):
            extra = f" / {fmt(s.distance_share).strip()}" if mode != "auto" else ""
            parts.append(f"{mode} {fmt(s.recall).strip()} / {fmt(s.precision).strip()}{extra}")
        print(
            f"{indent}  {rec.name:46s} {scores[0].activities:3d} act. {scores[0].truths:4d} eff.  "
            + "   ".join(parts)
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16, help="spliced activities per base and duration")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--quick", action="store_true", help="2 activities per base and duration, no smart")
    parser.add_argument("--no-smart", action="store_true", help="skip the smart-recording variant")
    args = parser.parse_args(argv)
    trials = 2 if args.quick else args.trials
    smart = not (args.quick or args.no_smart)
    started = time.perf_counter()
    print(describe())
    print("command: python benchmarks/" + Path(__file__).name + " " + " ".join(argv or sys.argv[1:]))
    print()
    detect = Detector()
    recordings, problems = load_recordings()
    unmodified(recordings, detect)
    for problem in problems:
        print(f"   {problem}")
    if problems:
        print()
    bases = bases_section(recordings)

    rnd = random.Random(args.seed)  # noqa: S311 - a reproducible benchmark, not a secret
    print(
        f"3. Spliced backward efforts: {trials} activities per base and duration, seed {args.seed}, "
        f"IoU >= {IOU}; {EFFORTS_PER_ACTIVITY[0]}-{EFFORTS_PER_ACTIVITY[1]} efforts per activity up to "
        f"{label(SEVERAL_UP_TO_S)}, 1 beyond"
    )
    results, smart_results, skipped = evaluate(bases, trials, rnd, detect, smart)
    for line in skipped:
        print(f"   skipped: {line}")
    report(results, bases)
    print()
    if smart:
        print(
            '4. The same activities as a "smart recording" (a sample every 1-7 s, irregular), 1 Hz bases only'
        )
        report(smart_results, bases)
        print()
    print(f"{detect.calls} calls, {detect.seconds:.1f} s in detect_efforts")
    print(f"elapsed {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
