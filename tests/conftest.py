"""Fixtures in the style of Flask's tutorial: app and client; plus the fake host and queue helpers."""

from __future__ import annotations

import time

import pytest
import responses

from plugin.hosts.strava.ratelimit import next_quarter_hour
from plugin.store import utcnow
from plugin.web import create_app
from tests.fake_strava import API, CLIENT_ID, CLIENT_SECRET, OAUTH, FakeStrava
from tests.system_packages import PostgresServer, RedisServer

pytest_plugins = ["tests.support.processes", "pytester"]

VERIFY_TOKEN = "verify-token-for-tests"
PUBLIC_URL = "https://backstride.test"
ATHLETE_ID = 90210  # made up


# An integration test runs on the embedded defaults (SQLite, an in-process queue) and on the scaled-out
# configuration (PostgreSQL and Redis, private servers started for the test run; installed in CI), unless its
# module's own `backend` fixture or EMBEDDED_ONLY says its subject does not depend on them.
BACKENDS = ("embedded", "postgres-redis")
# For a test whose subject does not depend on the database or the queue: the embedded defaults only.
EMBEDDED_ONLY = pytest.mark.parametrize("backend", ["embedded"], indirect=True)


@pytest.fixture(scope="session")
def postgres():
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS)
def backend(request) -> dict[str, str]:
    """The database and queue URLs of one configuration (empty: the embedded defaults)."""
    if request.param == "embedded":
        return {}
    postgres = request.getfixturevalue("postgres")
    redis_server = request.getfixturevalue("redis_server")
    return {
        "BACKSTRIDE_DATABASE_URL": postgres.new_database(),
        "BACKSTRIDE_QUEUE_URL": redis_server.new_url(),
    }


@pytest.fixture
def env(tmp_path, backend) -> dict[str, str]:
    return {
        "BACKSTRIDE_INSTANCE_DIR": str(tmp_path),
        "BACKSTRIDE_QUEUE_URL": "memory://",
        "BACKSTRIDE_PUBLIC_URL": PUBLIC_URL,
        "STRAVA_CLIENT_ID": CLIENT_ID,
        "STRAVA_CLIENT_SECRET": CLIENT_SECRET,
        "STRAVA_VERIFY_TOKEN": VERIFY_TOKEN,
        "STRAVA_OAUTH_URL": OAUTH,
        "STRAVA_API_URL": API,
        **backend,
    }


@pytest.fixture
def strava():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeStrava(mock)


@pytest.fixture
def app(env, strava):
    app = create_app(env, TESTING=True)
    services = app.extensions["backstride"]
    services.host.sleep = lambda seconds: None  # the client's retry backoff, not worth waiting for here
    services.pipeline._sleep = lambda seconds: None
    storage = services.queue.huey.storage
    if hasattr(storage, "blocking"):
        # A worker waits up to a second on an empty Redis queue for work to come; a test runs what is due.
        storage.blocking = False
    return app


# Enough for any test of one rate window, which takes well under a second here.
RATE_WINDOW_MARGIN_S = 20.0


@pytest.fixture
def one_rate_window() -> None:
    """For a test of what one of the host's rate windows allows: it starts with RATE_WINDOW_MARGIN_S or more
    left in the current quarter hour (and so in the day), after waiting for the next one if need be. At the
    turn the budget starts again, and the test would count the next window's calls as this one's."""
    now = utcnow()
    left_s = (next_quarter_hour(now) - now).total_seconds()
    if left_s < RATE_WINDOW_MARGIN_S:
        time.sleep(left_s + 0.1)


SUBSCRIPTION_ID = 5150  # made up; every test event carries it


@pytest.fixture
def services(app):
    """The app's services, subscribed as `backstride subscription create` leaves them: only deliveries for
    the stored subscription are taken."""
    services = app.extensions["backstride"]
    services.store.set_subscription_id(SUBSCRIPTION_ID)
    return services


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def connected(services, strava):
    """A made-up athlete connected with every scope; returns the athlete id."""
    return connect_athlete(services.store, strava)


def connect_athlete(store, strava: FakeStrava) -> int:
    """A made-up athlete at the fake host, connected with every scope as the OAuth callback would store it;
    returns the athlete id."""
    from plugin.store import TokenSet

    strava.add_athlete(ATHLETE_ID)
    grant = strava.grant(ATHLETE_ID)
    store.save_athlete(
        ATHLETE_ID,
        TokenSet(grant["access_token"], grant["refresh_token"], grant["expires_at"]),
        frozenset({"activity:read_all", "activity:write", "profile:read_all"}),
        host_weight_kg=62.0,
        host_units="metric",
    )
    return ATHLETE_ID


def run_queue(services, limit: int = 100) -> int:
    """Run every task that is due now, as a worker would; returns how many ran."""
    huey = services.queue.huey
    ran = 0
    while ran < limit:
        task = huey.dequeue()
        if task is None:
            break
        huey.execute(task)
        ran += 1
    return ran


def event(
    object_id: int,
    aspect_type: str = "create",
    owner_id: int = ATHLETE_ID,
    updates=None,
    object_type: str = "activity",
    subscription_id: int = SUBSCRIPTION_ID,
    event_time: int = 1_700_000_000,
):
    return {
        "object_type": object_type,
        "object_id": object_id,
        "aspect_type": aspect_type,
        "owner_id": owner_id,
        "subscription_id": subscription_id,
        "event_time": event_time,
        "updates": updates or {},
    }
