"""Webhook acknowledgement latency of the real `backstride serve` (embedded SQLite defaults), on loopback.

Starts the sandbox host and the plugin (as `backstride demo` does), connects an athlete, then posts distinct
activity events to /webhooks/strava: first one at a time, then in a 16-way burst. Prints p50/p90/p99/max of
the time until the 200 arrives. The worker processes the events meanwhile (their activities do not exist at
the host, so each costs one host call), as it would in production. Then the same two loads against a bare
Flask endpoint (benchmarks/bare_app.py) served the same way (gunicorn, one gthread worker with 4 threads), in
the same run, and the ratio of the two: the cost Backstride adds over Flask and gunicorn themselves.

    python benchmarks/webhook_ack.py [--events 400] [--backend embedded|postgres-redis]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests
from machine import describe
from plugin_stack import backend_env, connect_athlete, percentile

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
                if b" 200 " not in status or b'"accepted"' not in answer:
                    raise RuntimeError(f"unexpected answer: {status!r} {answer!r}")
        finally:
            writer.close()

    async def run_all() -> None:
        await asyncio.gather(*(connection() for _ in range(workers)))

    asyncio.run(run_all())
    return latencies


def bare_flask(port: int) -> subprocess.Popen:
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
            return process
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the bare Flask app did not start")


def report(label: str, values: list[float]) -> None:
    print(
        f"{label:<22} n={len(values):<5} p50={percentile(values, 0.5):6.1f} ms  "
        f"p90={percentile(values, 0.9):6.1f} ms  p99={percentile(values, 0.99):6.1f} ms  "
        f"max={max(values):6.1f} ms  mean={statistics.mean(values):6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--backend", choices=["embedded", "postgres-redis"], default="embedded")
    args = parser.parse_args()
    print(describe())
    print(f"command: python benchmarks/webhook_ack.py --events {args.events} --backend {args.backend}")
    with (
        backend_env(args.backend) as extra_env,
        Stack(SandboxConfig(seed=False), extra_env=extra_env) as stack,
    ):
        subscription_id = connect_athlete(stack, ATHLETE)
        url = f"{stack.plugin_url}/webhooks/strava"
        post_events(url, 1, 20, 1, subscription_id)  # warm-up
        sequential = post_events(url, 1_000, args.events, 1, subscription_id)
        burst = post_events(url, 100_000, args.events, 16, subscription_id)
        report("backstride sequential", sequential)
        report("backstride 16-way", burst)
        started = time.monotonic()
        stack.wait_settled(timeout=300)
        print(f"worker settled every event {time.monotonic() - started:.1f} s after the burst ended")

    from plugin.sandbox.server import free_port

    port = free_port(0)
    bare = bare_flask(port)
    try:
        bare_url = f"http://127.0.0.1:{port}/webhooks/strava"
        post_events(bare_url, 1, 20, 1, 1)
        bare_sequential = post_events(bare_url, 1_000, args.events, 1, 1)
        bare_burst = post_events(bare_url, 100_000, args.events, 16, 1)
    finally:
        bare.terminate()
        bare.wait()
    report("bare Flask sequential", bare_sequential)
    report("bare Flask 16-way", bare_burst)
    for label, ours, base in (("sequential", sequential, bare_sequential), ("16-way", burst, bare_burst)):
        print(
            f"ratio {label:<10} p50 {percentile(ours, 0.5) / percentile(base, 0.5):4.2f}  "
            f"p99 {percentile(ours, 0.99) / percentile(base, 0.99):4.2f}"
        )


if __name__ == "__main__":
    main()
