"""How long detect_efforts takes on long 1 Hz recordings, and whether the cost grows linearly.

    python benchmarks/detection_speed.py [--repeats 7]

Synthetic runs of 1, 2, 3 and 6 hours at 1 Hz (forward running at 3.0-3.4 m/s, cadence 82-86 per leg, heart
rate and grade streams, a few pauses, one backward effort every 20 minutes), analysed untagged in mode "auto"
(the full stream path: the stride model, the decoding and each block's measurement) and tagged with a
count. Prints the median and the fastest of several runs in ms, and the median in ms per 1000 samples: a
flat last column means linear cost. On a shared machine the median carries other processes' load; the
fastest run is the cost of the code.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import describe  # noqa: E402

from plugin.analysis.detect import detect_efforts  # noqa: E402
from plugin.domain import Activity, Streams  # noqa: E402

HOURS = (1, 2, 3, 6)
EFFORT_EVERY_S = 1200  # a 90-s backward effort (speed x0.65, cadence x1.05) every 20 minutes
# A 40-s stop every ~28 minutes. One of them (5100 s) eats the start of an effort: mode "auto" leaves the
# rest out by design (right after a stop the device's speed lags the cadence, as on any restart).
PAUSE_EVERY_S = 1700


def synthetic(hours: float, seed: int = 1) -> tuple[Activity, Streams]:
    rnd = random.Random(seed)  # noqa: S311 - reproducible test data
    n = int(hours * 3600) + 1
    t, d, v, c, h, g, moving = [], [], [], [], [], [], []
    dist, heart = 0.0, 150.0
    for i in range(n):
        speed = 3.2 + 0.2 * math.sin(i / 420.0) + rnd.gauss(0.0, 0.06)
        cadence = 84.0 + 2.0 * math.sin(i / 333.0) + rnd.gauss(0.0, 0.8)
        heart += (155.0 + 5.0 * math.sin(i / 600.0) - heart) / 40.0
        if 300 <= i % EFFORT_EVERY_S < 390:
            speed, cadence = 0.65 * speed, 1.05 * cadence
        if i % PAUSE_EVERY_S < 40 and i > 60:
            speed = cadence = 0.0
        dist += speed
        t.append(float(i))
        d.append(round(dist, 1))
        v.append(round(speed, 2))
        c.append(float(round(cadence)))
        h.append(float(round(heart)))
        g.append(round(2.0 * math.sin(i / 250.0), 1))
        moving.append(speed > 0.3)
    streams = Streams(
        time=tuple(t),
        distance=tuple(d),
        velocity_smooth=tuple(v),
        cadence=tuple(c),
        heartrate=tuple(h),
        grade_smooth=tuple(g),
        moving=tuple(moving),
    )
    activity = Activity(
        id=1,
        athlete_id=1,
        name="Long run",
        description="",
        sport_type="Run",
        distance_m=dist,
        moving_time_s=n - 1.0,
        elapsed_time_s=n - 1.0,
    )
    return activity, streams


def timed_ms(activity: Activity, streams: Streams, mode: str, repeats: int) -> tuple[float, float, int]:
    times = []
    found = 0
    for _ in range(repeats):
        start = time.perf_counter()
        found = len(detect_efforts(activity, streams, mode))  # type: ignore[arg-type]
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times), min(times), found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11, help="runs per size and mode")
    args = parser.parse_args(argv)
    print(describe())
    print("command: python benchmarks/" + Path(__file__).name + " " + " ".join(argv or sys.argv[1:]))
    print(f"{args.repeats} runs per row\n")
    print(
        f"{'hours':>5} {'samples':>8} {'mode':>14} {'efforts':>8} {'median ms':>10} {'min ms':>8}"
        f" {'median ms/1000 samples':>23}"
    )
    for hours in HOURS:
        activity, streams = synthetic(hours)
        n = len(streams.time)
        expected = sum(1 for k in range(0, n, EFFORT_EVERY_S) if k + 390 < n)
        detect_efforts(activity, streams)  # warm-up
        for label, act, mode in (
            ("auto", activity, "auto"),
            ("tagged+count", replace(activity, name=f"#retro {expected}x"), "tagged"),
        ):
            ms, fastest, found = timed_ms(act, streams, mode, args.repeats)
            print(
                f"{hours:5d} {n:8d} {label:>14} {found:4d}/{expected:<3d} {ms:10.1f} {fastest:8.1f}"
                f" {ms / n * 1000:23.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
