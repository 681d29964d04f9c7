"""Webhook acknowledgement latency of the real `backstride serve` (embedded SQLite defaults), on loopback.

Starts the sandbox host and the plugin (as `backstride demo` does), connects an athlete, then posts distinct
activity events to /webhooks/strava: first one at a time, then in a 16-way burst. Prints p50/p90/p99/max of
the time until the 200 arrives. The worker processes the events meanwhile (their activities do not exist at
the host, so each costs one host call), as it would in production.

    python benchmarks/webhook_ack.py [--events 400]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from machine import describe

from plugin.sandbox.stack import Stack
from plugin.sandbox.state import SandboxConfig

ATHLETE = 7001  # made up


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def post_events(url: str, first_id: int, count: int, workers: int, subscription_id: int) -> list[float]:
    session_per_thread: dict[int, requests.Session] = {}

    def post(activity_id: int) -> float:
        session = session_per_thread.setdefault(threading.get_ident(), requests.Session())
        body = {
            "object_type": "activity",
            "object_id": activity_id,
            "aspect_type": "create",
            "owner_id": ATHLETE,
            "subscription_id": subscription_id,
            "event_time": int(time.time()),
            "updates": {},
        }
        start = time.perf_counter()
        response = session.post(url, json=body, timeout=10)
        elapsed = time.perf_counter() - start
        assert response.status_code == 200 and response.json()["status"] == "accepted", response.text
        return elapsed * 1000

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(post, range(first_id, first_id + count)))


def report(label: str, values: list[float]) -> None:
    print(
        f"{label:<22} n={len(values):<5} p50={percentile(values, 0.5):6.1f} ms  "
        f"p90={percentile(values, 0.9):6.1f} ms  p99={percentile(values, 0.99):6.1f} ms  "
        f"max={max(values):6.1f} ms  mean={statistics.mean(values):6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400)
    args = parser.parse_args()
    print(describe())
    with Stack(SandboxConfig(seed=False)) as stack:
        stack.control("POST", "/athletes", json={"id": ATHLETE, "firstname": "Bench"})
        # This measures the acknowledgement, not the rate budget: give the host room for every event.
        stack.control("PUT", "/limits", json={"overall": [100_000, 1_000_000], "read": [100_000, 1_000_000]})
        stack.subscribe()
        assert stack.connect(athlete_id=ATHLETE).status_code == 200
        subscription_id = stack.control("GET", "/state").json()["subscription"]
        url = f"{stack.plugin_url}/webhooks/strava"
        post_events(url, 1, 20, 1, subscription_id)  # warm-up
        report("sequential", post_events(url, 1_000, args.events, 1, subscription_id))
        report("16-way burst", post_events(url, 100_000, args.events, 16, subscription_id))
        started = time.monotonic()
        stack.wait_settled(timeout=300)
        print(f"worker settled every event {time.monotonic() - started:.1f} s after the burst ended")


if __name__ == "__main__":
    main()
