"""What the benchmarks that run the real plugin share: the backend's servers, the host set up for a made-up
athlete, and percentiles."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from plugin.sandbox.stack import Stack

# Far above anything a benchmark spends: these measure the plugin, not the host's rate budget.
UNLIMITED = [1_000_000, 10_000_000]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


@contextmanager
def backend_env(backend: str) -> Iterator[dict[str, str]]:
    """The environment for a backend: nothing for the embedded defaults; for `postgres-redis`, private
    PostgreSQL and Redis servers (as the tests start them), stopped afterwards."""
    if backend != "postgres-redis":
        yield {}
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.system_packages import PostgresServer, RedisServer

    postgres, redis_server = PostgresServer(), RedisServer(Path(tempfile.mkdtemp(prefix="bench-redis-")))
    try:
        yield {
            "BACKSTRIDE_DATABASE_URL": postgres.new_database(),
            "BACKSTRIDE_QUEUE_URL": redis_server.new_url(),
        }
    finally:
        postgres.stop()
        redis_server.stop()


def connect_athlete(stack: Stack, athlete_id: int, weight_kg: float | None = None) -> int:
    """A made-up athlete at the host, the host's limits raised, the subscription made and the athlete
    connected through the consent page; returns the subscription id the host's events carry."""
    athlete = {"id": athlete_id, "firstname": "Bench"}
    if weight_kg is not None:
        athlete["weight"] = weight_kg
    stack.control("POST", "/athletes", json=athlete)
    stack.control("PUT", "/limits", json={"overall": UNLIMITED, "read": UNLIMITED})
    stack.subscribe()
    if stack.connect(athlete_id=athlete_id).status_code != 200:
        raise SystemExit(f"connecting the athlete failed:\n{stack.log_tail()}")
    return stack.control("GET", "/state").json()["subscription"]
