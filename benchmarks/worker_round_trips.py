"""Round trips of the queue worker per event, with PostgreSQL and Redis, by kind of event.

On a machine whose cores are shared, every round trip to a server wakes another process, and on the 2-core
development machine those wake-ups were the larger part of the worker's CPU. This counts them. Starts private
PostgreSQL and Redis servers (as the tests do), builds the app on them with the host mocked in process (the
tests' fake host, `responses`), connects a made-up athlete, and for each kind of event receives `--events`
webhooks, then runs their tasks as a worker does. Prints per event: tasks run, statements PostgreSQL received
(its own log, `log_statement = all`, so BEGIN and COMMIT count), Redis commands (`INFO commandstats`), host
calls, and the CPU of this process while the tasks ran (the worker's code and the fake host's).

    python benchmarks/worker_round_trips.py [--events 100]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis
import responses
from machine import describe
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from plugin.web import create_app  # noqa: E402
from tests.conftest import ATHLETE_ID, connect_athlete, event, run_queue  # noqa: E402
from tests.fake_strava import API, CLIENT_ID, CLIENT_SECRET, OAUTH, FakeStrava  # noqa: E402
from tests.integration.test_pipeline import CADENCE_STREAMS  # noqa: E402
from tests.system_packages import PostgresServer, RedisServer  # noqa: E402

SUBSCRIPTION_ID = 5150
UNLIMITED = (1_000_000, 10_000_000)  # the host's limits, raised: the call budget is not what is counted here


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100, help="events of each kind")
    args = parser.parse_args()
    print(describe())
    print(f"command: python benchmarks/worker_round_trips.py --events {args.events}")
    postgres, redis_server = PostgresServer(), RedisServer(Path(tempfile.mkdtemp(prefix="bench-redis-")))
    try:
        queue_url = redis_server.new_url()
        env = {
            "BACKSTRIDE_INSTANCE_DIR": tempfile.mkdtemp(prefix="bench-round-trips-"),
            "BACKSTRIDE_PUBLIC_URL": "https://backstride.test",
            "BACKSTRIDE_DATABASE_URL": postgres.new_database(),
            "BACKSTRIDE_QUEUE_URL": queue_url,
            "STRAVA_CLIENT_ID": CLIENT_ID,
            "STRAVA_CLIENT_SECRET": CLIENT_SECRET,
            "STRAVA_VERIFY_TOKEN": "verify",
            "STRAVA_OAUTH_URL": OAUTH,
            "STRAVA_API_URL": API,
        }
        admin = create_engine(postgres.admin_url, isolation_level="AUTOCOMMIT")
        statement_log = postgres.data / "log"
        redis_client = redis.Redis.from_url(queue_url)

        def log_statements(on: bool) -> None:
            with admin.connect() as connection:
                connection.execute(text(f"ALTER SYSTEM SET log_statement = '{'all' if on else 'none'}'"))
                connection.execute(text("SELECT pg_reload_conf()"))
            time.sleep(0.5)  # the server's processes take the new setting in

        def redis_commands() -> int:
            stats = redis_client.info("commandstats")
            return sum(stats[name]["calls"] for name in stats if name != "cmdstat_info")

        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            strava = FakeStrava(mock)
            strava.rate_limit = strava.overall_rate_limit = UNLIMITED
            app = create_app(env)
            services = app.extensions["backstride"]
            services.queue.huey.storage.blocking = False  # run what is due, then stop
            connect_athlete(services.store, strava)
            services.store.set_subscription_id(SUBSCRIPTION_ID)
            client = app.test_client()
            kinds: dict[str, Callable[[int], None]] = {
                "activity gone at the host": lambda activity_id: None,
                "ride (left alone)": lambda activity_id: strava.add_activity(
                    ATHLETE_ID, activity_id, name="Evening ride", sport_type="Ride"
                ),
                "run, no note": lambda activity_id: strava.add_activity(
                    ATHLETE_ID, activity_id, name="Easy run"
                ),
                "#retro run, a note": lambda activity_id: strava.add_activity(
                    ATHLETE_ID,
                    activity_id,
                    name="Sunday #retro run",
                    distance=1320.0,
                    moving_time=590.0,
                    streams=CADENCE_STREAMS,
                ),
            }
            # Warm-up: connections opened, statements prepared, as in a worker that has run a while.
            for activity_id in range(1, 30):
                strava.add_activity(ATHLETE_ID, activity_id, name="Easy run")
                client.post("/webhooks/strava", json=event(activity_id))
            run_queue(services)
            print(f"{'event':<26} {'tasks':>5} {'PostgreSQL':>10} {'Redis':>5} {'host':>5} {'CPU':>8}")
            for number, (kind, add_activity) in enumerate(kinds.items(), start=1):
                ids = range(number * 100_000, number * 100_000 + args.events)
                for activity_id in ids:
                    add_activity(activity_id)
                    response = client.post("/webhooks/strava", json=event(activity_id))
                    assert response.get_json()["status"] == "received", response.get_json()
                strava.calls.clear()
                log_statements(True)
                log_start = statement_log.stat().st_size
                commands_before = redis_commands()
                cpu_before = time.process_time()
                tasks = run_queue(services, limit=10 * args.events)
                cpu = time.process_time() - cpu_before
                commands = redis_commands() - commands_before
                log_statements(False)
                lines = statement_log.read_bytes()[log_start:].decode(errors="replace").splitlines()
                statements = sum(
                    1
                    for line in lines
                    if re.search(r"LOG:  (statement|execute)", line)
                    and "ALTER SYSTEM" not in line
                    and "pg_reload_conf" not in line
                )
                n = args.events
                print(
                    f"{kind:<26} {tasks / n:5.1f} {statements / n:10.1f} {commands / n:5.1f} "
                    f"{len(strava.calls) / n:5.1f} {cpu / n * 1000:5.1f} ms"
                )
    finally:
        postgres.stop()
        redis_server.stop()


if __name__ == "__main__":
    main()
