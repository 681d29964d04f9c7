"""Webhook acknowledgement latency of the real `backstride serve` (embedded SQLite defaults), on loopback.

Starts the sandbox host and the plugin (as `backstride demo` does), connects an athlete, then posts distinct
activity events to /webhooks/strava: first one at a time, then in a 16-way burst. The worker processes the
events meanwhile (their activities do not exist at the host, so each costs one host call), as it would in
production. Then the same two loads against a bare Flask endpoint (benchmarks/bare_app.py) served the same
way (gunicorn, one gthread worker with 4 threads). Rounds alternate between the two. Prints p50/p90/p99/max
of the time until the 200 arrives, over all rounds, and the ratio of the two: the cost Backstride adds over
Flask and gunicorn themselves.

The load generator runs in a process of its own: the sandbox host answers the worker's calls from threads of
this one, and a client sharing their interpreter lock would time its answers late.

    python benchmarks/webhook_ack.py [--events 400] [--rounds 5] [--backend embedded|postgres-redis]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import requests
from machine import describe
from plugin_stack import backend_env, connect_athlete, percentile

from plugin.sandbox.server import free_port
from plugin.sandbox.stack import Stack
from plugin.sandbox.state import SandboxConfig

ATHLETE = 7001  # made up


def post_events(url: str, first_id: int, count: int, workers: int, subscription_id: int) -> list[float]:
    """Posts `count` distinct events over `workers` keep-alive connections, each sending its next event as
    soon as the previous one is answered; returns each request's latency in ms.

    The load generator shares the machine with the servers, so it must cost little itself: one asyncio
    thread writing prepared HTTP/1.1 requests on raw sockets (the requests library spends about a
    millisecond of CPU per request, as much as a bare Flask endpoint does)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    event_ids = iter(range(first_id, first_id + count))
    latencies: list[float] = []

    def request_bytes(activity_id: int) -> bytes:
        body = json.dumps(
            {
                "object_type": "activity",
                "object_id": activity_id,
                "aspect_type": "create",
                "owner_id": ATHLETE,
                "subscription_id": subscription_id,
                "event_time": int(time.time()),
                "updates": {},
            }
        ).encode()
        head = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for activity_id in event_ids:  # shared: each connection takes the next event
                request = request_bytes(activity_id)
                start = time.perf_counter()
                writer.write(request)
                status = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                answer = await reader.readexactly(length)
                latencies.append((time.perf_counter() - start) * 1000)
                if b" 200 " not in status or b'"received"' not in answer:
                    raise RuntimeError(f"unexpected answer: {status!r} {answer!r}")
        finally:
            writer.close()

    async def run_all() -> None:
        await asyncio.gather(*(connection() for _ in range(workers)))

    asyncio.run(run_all())
    return latencies


@contextmanager
def bare_flask(port: int) -> Iterator[str]:
    """benchmarks/bare_app.py served by gunicorn as `backstride serve` serves Backstride; yields its URL."""
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and gunicorn
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--chdir",
            str(Path(__file__).parent),
            "-w",
            "1",
            "-k",
            "gthread",
            "--threads",
            "4",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            # An access log line per request, written to a file, as `backstride serve` writes its own.
            "--access-logfile",
            str(Path(tempfile.mkdtemp(prefix="bare-flask-")) / "access.log"),
            "bare_app:app",
        ],
    )
    for _ in range(100):
        try:
            requests.post(f"http://127.0.0.1:{port}/webhooks/strava", json={}, timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError("the bare Flask app did not start")
    try:
        yield f"http://127.0.0.1:{port}/webhooks/strava"
    finally:
        process.terminate()
        process.wait()


def report(label: str, rounds: list[list[float]]) -> None:
    """Percentiles over every round's answers, then each round's p99."""
    values = sum(rounds, [])
    each = " ".join(f"{percentile(r, 0.99):.0f}" for r in rounds)
    print(
        f"{label:<22} n={len(values):<5} p50={percentile(values, 0.5):6.1f} ms  "
        f"p90={percentile(values, 0.9):6.1f} ms  p99={percentile(values, 0.99):6.1f} ms  "
        f"max={max(values):6.1f} ms  (p99 by round: {each})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400, help="events per load and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backend", choices=["embedded", "postgres-redis"], default="embedded")
    args = parser.parse_args()
    print(describe())
    print(
        f"command: python benchmarks/webhook_ack.py --events {args.events} --rounds {args.rounds} "
        f"--backend {args.backend}"
    )
    with (
        ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as load,
        backend_env(args.backend) as extra_env,
        Stack(SandboxConfig(seed=False), extra_env=extra_env) as stack,
        bare_flask(free_port(0)) as bare_url,
    ):

        def post(url: str, first_id: int, count: int, workers: int, subscription_id: int) -> list[float]:
            return load.submit(post_events, url, first_id, count, workers, subscription_id).result()

        subscription_id = connect_athlete(stack, ATHLETE)
        url = f"{stack.plugin_url}/webhooks/strava"
        post(url, 1, 20, 1, subscription_id)  # warm-up
        post(bare_url, 1, 20, 1, 1)
        ours: dict[int, list[list[float]]] = {1: [], 16: []}
        base: dict[int, list[list[float]]] = {1: [], 16: []}
        settle: list[float] = []
        next_id = 1_000
        # Rounds alternate between the two servers, so that a slower minute of a shared machine falls on
        # both rather than on one.
        for _ in range(args.rounds):
            for workers in (1, 16):
                ours[workers].append(post(url, next_id, args.events, workers, subscription_id))
                next_id += args.events
            started = time.monotonic()
            stack.wait_settled(timeout=300)  # the worker's share of the machine goes to Backstride's loads
            settle.append(time.monotonic() - started)
            for workers in (1, 16):
                base[workers].append(post(bare_url, next_id, args.events, workers, 1))
                next_id += args.events

    for workers, label in ((1, "sequential"), (16, "16-way")):
        report(f"backstride {label}", ours[workers])
        report(f"bare Flask {label}", base[workers])
    print(f"worker settled every event {statistics.median(settle):.1f} s (median) after each round's burst")
    for workers, label in ((1, "sequential"), (16, "16-way")):
        mine, theirs = sum(ours[workers], []), sum(base[workers], [])
        print(
            f"ratio {label:<10} p50 {percentile(mine, 0.5) / percentile(theirs, 0.5):4.2f}  "
            f"p99 {percentile(mine, 0.99) / percentile(theirs, 0.99):4.2f}"
        )


if __name__ == "__main__":
    main()
