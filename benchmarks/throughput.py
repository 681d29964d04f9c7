"""End-to-end throughput of the real `backstride serve` against the sandbox host, with the host slowed down.

Starts the sandbox host and the plugin on loopback (the embedded defaults, or PostgreSQL and Redis with
`--backend postgres-redis`), connects a made-up athlete, raises the host's rate limits so that the call budget
is not what is measured, and makes every host API call (`/api/v3/...`) wait `--latency-ms` before it is
answered (a sandbox fault with a huge count). Then uploads `--activities` activities built from the sandbox's
seed recordings (real streams), in a repeating mix of ten: three tagged backward runs with intervals and one
tagged backward walk (each gets a note), four untagged runs and two rides (no note). Every `--duplicate-every`
th upload has its create event delivered twice by the host (the sandbox's duplicate_event fault).

Prints, each on its own line: the time from the first upload until every event is settled, activities per
second, p50/p90/p99 of each activity's latency from its upload to its note (annotated activities) or to its
last host call (the others), and host calls per annotated, left-alone and duplicate activity from the
sandbox's call log, against the goals (at most 3, 1 and 0). Per-activity latency in a burst is mostly queueing
behind earlier uploads; `--rate` paces the uploads instead.

    python benchmarks/throughput.py [--activities 200] [--latency-ms 100] [--backend embedded|postgres-redis]
        [--worker-threads N] [--duplicate-every 7] [--rate 0]

`backstride serve` runs its queue worker with 2 threads and has no option to change that, so with
`--worker-threads N` the plugin runs as the documented scale-out pair instead: `backstride serve --no-worker`
and `backstride worker --threads N`, on the same instance.
"""

from __future__ import annotations

import argparse
import re
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from typing import Any

from machine import describe
from plugin_stack import backend_env, connect_athlete, percentile

from plugin.analysis.notes import NOTE_START
from plugin.sandbox.stack import Stack, stop_process_group
from plugin.sandbox.state import SandboxConfig

ATHLETE = 7101  # made up
# One cycle of ten uploads: (seed key, whether a note is expected). The seed holds real recordings.
MIX: tuple[tuple[str, bool], ...] = (
    ("retro-intervals", True),
    ("easy-run", False),
    ("lunch-ride", False),
    ("retro-intervals", True),
    ("easy-run", False),
    ("retro-walk", True),
    ("easy-run", False),
    ("retro-intervals", True),
    ("lunch-ride", False),
    ("easy-run", False),
)
GOALS = {"annotated": 3, "left alone": 1, "duplicate": 0}
ACTIVITY_PATH = re.compile(r"^/api/v3/activities/(\d+)")


class SplitStack(Stack):
    """The plugin as `backstride serve --no-worker` plus `backstride worker --threads N` (same instance)."""

    def __init__(self, *args: Any, worker_threads: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.worker_threads = worker_threads
        self.worker: subprocess.Popen | None = None

    def start_plugin(self, timeout: float = 60.0) -> None:
        port = self.plugin_url.rsplit(":", 1)[1]
        with open(self.log_path, "ab") as log:
            web = ["serve", "--no-worker", "--port", port, "--web-workers", "1"]
            self.plugin = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "plugin.cli", *web],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self._wait_healthy(timeout)  # the web process creates the schema before the worker starts
            self.worker = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "plugin.cli", "worker", "--threads", str(self.worker_threads)],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop_plugin(self, sig: int = signal.SIGTERM) -> None:
        if self.worker is not None:
            stop_process_group(self.worker, sig)
        self.worker = None
        super().stop_plugin(sig)


def latency_line(label: str, values: list[float]) -> str:
    if not values:
        return f"{label}: none"
    return (
        f"{label}: n={len(values)} p50={percentile(values, 0.5):.2f} s p90={percentile(values, 0.9):.2f} s "
        f"p99={percentile(values, 0.99):.2f} s max={max(values):.2f} s"
    )


def run(args: argparse.Namespace, extra_env: dict[str, str]) -> None:
    config = SandboxConfig(seed=True)  # the seed recordings; the demo athlete is not used
    stack: Stack
    if args.worker_threads:
        stack = SplitStack(config, extra_env=extra_env, worker_threads=args.worker_threads)
    else:
        stack = Stack(config, extra_env=extra_env)
    with stack:
        connect_athlete(stack, ATHLETE, weight_kg=66.0)
        # Every API call from now on waits; OAuth (token refresh) is left alone, as are the control routes.
        stack.control(
            "POST", "/faults", json={"path": "^/api/v3/", "latency_ms": args.latency_ms, "count": 10**9}
        )
        calls_before = len(stack.control("GET", "/calls").json())

        uploads: dict[int, dict[str, Any]] = {}  # activity id -> seed key, expected note, duplicated, time
        started = time.time()
        for index in range(args.activities):
            key, tagged = MIX[index % len(MIX)]
            duplicated = args.duplicate_every > 0 and index % args.duplicate_every == args.duplicate_every - 1
            if duplicated:
                stack.control("POST", "/faults", json={"kind": "duplicate_event", "path": "activity"})
            if args.rate > 0:
                time.sleep(max(0.0, started + index / args.rate - time.time()))
            at = time.time()
            activity = stack.upload(seed=key, athlete_id=ATHLETE)
            uploads[activity["id"]] = {"key": key, "tagged": tagged, "duplicated": duplicated, "at": at}
        uploaded = time.time()
        stack.wait_settled(timeout=args.timeout)
        settled = time.time()

        calls = stack.control("GET", "/calls").json()[calls_before:]
        state = stack.control("GET", "/state").json()
        deliveries = stack.control("GET", "/deliveries").json()
        metrics = _plugin_metrics(stack)

    descriptions = {a["id"]: a["description"] or "" for a in state["activities"]}
    by_activity: dict[int, list[dict[str, Any]]] = {activity_id: [] for activity_id in uploads}
    other_calls: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    for call in calls:
        if not call["path"].startswith("/api/"):
            continue
        statuses[call["status"]] += 1
        match = ACTIVITY_PATH.match(call["path"])
        if match and int(match.group(1)) in by_activity:
            by_activity[int(match.group(1))].append(call)
        else:
            other_calls[f"{call['method']} {call['path']}"] += 1

    annotated_latency, alone_latency, all_latency = [], [], []
    calls_of: dict[str, list[int]] = {"annotated": [], "left alone": []}
    missing_notes, unexpected_notes = 0, 0
    for activity_id, upload in uploads.items():
        own = by_activity[activity_id]
        noted = NOTE_START in descriptions.get(activity_id, "")
        missing_notes += int(upload["tagged"] and not noted)
        unexpected_notes += int(noted and not upload["tagged"])
        kind = "annotated" if noted else "left alone"
        upload["kind"] = kind
        if not upload["duplicated"]:
            calls_of[kind].append(len(own))
        puts = [c["at"] for c in own if c["method"] == "PUT"]
        end = max(puts) if noted and puts else max((c["at"] for c in own), default=None)
        if end is None:
            continue
        latency = end - upload["at"]
        (annotated_latency if noted else alone_latency).append(latency)
        all_latency.append(latency)

    # A duplicate delivery's cost: the calls on a duplicated activity beyond what one delivery of its kind
    # costs (the median over the activities of that kind that were delivered once).
    typical = {kind: statistics.median(v) if v else GOALS[kind] for kind, v in calls_of.items()}
    duplicated = [(i, u) for i, u in uploads.items() if u["duplicated"]]
    extra = sum(len(by_activity[i]) - typical[u["kind"]] for i, u in duplicated)
    delivered_twice = Counter(
        (d["event"]["object_id"], d["event"]["aspect_type"]) for d in deliveries if d["status"] == "delivered"
    )
    duplicates_delivered = sum(1 for i, _ in duplicated if delivered_twice[(i, "create")] >= 2)
    undelivered = sum(1 for d in deliveries if d["status"] != "delivered")

    activity_calls = sum(len(v) for v in by_activity.values())
    floor = activity_calls * args.latency_ms / 1000 / (args.worker_threads or 2)
    elapsed = settled - started
    last_call = max((c["at"] for c in calls), default=settled)
    mix = Counter(u["key"] for u in uploads.values())

    print(f"activities uploaded: {len(uploads)} ({', '.join(f'{k} {n}' for k, n in sorted(mix.items()))})")
    print(f"annotated: {sum(u['kind'] == 'annotated' for u in uploads.values())}")
    print(f"left alone: {sum(u['kind'] == 'left alone' for u in uploads.values())}")
    print(f"tagged without a note: {missing_notes}")
    print(f"untagged with a note: {unexpected_notes}")
    print(f"duplicate deliveries made (each acknowledged 200): {duplicates_delivered} of {len(duplicated)}")
    print(f"deliveries not acknowledged: {undelivered}")
    print(f"host latency per API call: {args.latency_ms} ms")
    print(f"worker threads: {args.worker_threads or '2 (backstride serve default)'}")
    print(f"upload phase: {uploaded - started:.2f} s")
    print(f"first upload to every event settled: {elapsed:.2f} s")
    print(f"first upload to last host call: {last_call - started:.2f} s")
    print(f"throughput: {len(uploads) / elapsed:.2f} activities/s")
    print(f"latency-bound floor (activity calls x latency / worker threads): {floor:.2f} s")
    print(latency_line("latency upload to note (annotated)", annotated_latency))
    print(latency_line("latency upload to last host call (left alone)", alone_latency))
    print(latency_line("latency upload to done (all)", all_latency))
    for kind in ("annotated", "left alone"):
        values = calls_of[kind]
        mean = statistics.mean(values) if values else float("nan")
        worst = max(values, default=0)
        verdict = "met" if worst <= GOALS[kind] else "NOT met"
        print(
            f"host calls per {kind} activity: mean {mean:.2f}, max {worst}, "
            f"distribution {dict(sorted(Counter(values).items()))} (goal <= {GOALS[kind]}: {verdict})"
        )
    per_duplicate = extra / len(duplicated) if duplicated else float("nan")
    verdict = "met" if duplicated and per_duplicate <= GOALS["duplicate"] else "NOT met"
    print(f"host calls per duplicate delivery: {per_duplicate:.2f} (goal 0: {verdict})")
    print(f"host API calls in all: {sum(statuses.values())} (by status {dict(sorted(statuses.items()))})")
    print(f"host API calls not about an uploaded activity: {dict(other_calls) or 0}")
    print(f"plugin's inbox after the run: {metrics}")


def _plugin_metrics(stack: Stack) -> dict[str, Any]:
    """The inbox by status and the host calls the plugin itself recorded per status (its /metrics source)."""
    from plugin.config import load_settings
    from plugin.store import Store

    settings = load_settings(stack.env())
    store = Store(settings.database_url, settings.token_key)
    try:
        figures = store.metrics()
        return {"events": figures["events"], "host_calls (events, calls)": figures["host_calls"]}
    finally:
        store.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activities", type=int, default=200)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--backend", choices=["embedded", "postgres-redis"], default="embedded")
    parser.add_argument("--worker-threads", type=int, default=0, help="0: backstride serve's own worker")
    parser.add_argument("--duplicate-every", type=int, default=7, help="0: no duplicate deliveries")
    parser.add_argument("--rate", type=float, default=0.0, help="uploads per second; 0: as fast as possible")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds to wait for the plugin to settle"
    )
    args = parser.parse_args()
    print(describe())
    command = (
        f"python benchmarks/throughput.py --activities {args.activities} --latency-ms {args.latency_ms} "
        f"--backend {args.backend} --duplicate-every {args.duplicate_every} --rate {args.rate:g}"
    )
    if args.worker_threads:
        command += f" --worker-threads {args.worker_threads}"
    print(f"command: {command}")
    with backend_env(args.backend) as extra_env:
        run(args, extra_env)


if __name__ == "__main__":
    main()
