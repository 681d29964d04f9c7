"""StravaClient against a `responses`-mocked Strava (plugin/hosts/strava/client.py)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from plugin.domain import Activity
from plugin.hosts.base import (
    Forbidden,
    HostError,
    HostUnavailable,
    NotFound,
    RateLimited,
    Subscription,
    TokenGrant,
    Unauthorized,
)
from plugin.hosts.strava import client as client_module
from plugin.hosts.strava.client import StravaClient
from plugin.hosts.strava.ratelimit import RateLimitStatus, Window

OAUTH = "https://strava.test/oauth"
API = "https://strava.test/api/v3"
CLIENT_ID = "4711"
CLIENT_SECRET = "secret"
TOKEN = "access-token-1a2b3c"
NOW = datetime(2024, 5, 17, 10, 7, 13)  # naive UTC, like the client's own clock
ACTIVITY_URL = f"{API}/activities/1360128428"

ACTIVITY = {
    "id": 1360128428,
    "athlete": {"id": 134815, "resource_state": 1},
    "name": "Morning Run",
    "description": "Easy #retro",
    "sport_type": "Run",
    "type": "Run",
    "distance": 5000.0,
    "moving_time": 1500,
    "elapsed_time": 1600,
}
TOKEN_RESPONSE = {
    "token_type": "Bearer",
    "access_token": "new-access",
    "refresh_token": "new-refresh",
    "expires_at": 1716000000,
    "expires_in": 21600,
    "athlete": {"id": 134815, "firstname": "Test"},
}
SPENT_READ_WINDOW = {
    "X-RateLimit-Limit": "200,2000",
    "X-RateLimit-Usage": "101,300",
    "X-ReadRateLimit-Limit": "100,1000",
    "X-ReadRateLimit-Usage": "100,300",
}
HEADROOM = {
    "X-RateLimit-Limit": "200,2000",
    "X-RateLimit-Usage": "12,140",
    "X-ReadRateLimit-Limit": "100,1000",
    "X-ReadRateLimit-Usage": "10,138",
}


@pytest.fixture
def http():
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def seen() -> list[tuple[RateLimitStatus, datetime]]:
    return []


@pytest.fixture
def strava(sleeps, seen) -> StravaClient:
    return StravaClient(
        OAUTH,
        API,
        CLIENT_ID,
        CLIENT_SECRET,
        sleep=sleeps.append,
        clock=lambda: NOW,
        on_rate_limit=lambda status, now: seen.append((status, now)),
    )


def form(call) -> dict[str, str]:
    """The form body of a recorded request, one value per field."""
    body = call.request.body
    parsed = parse_qs(body if isinstance(body, str) else body.decode())
    assert all(len(values) == 1 for values in parsed.values()), parsed
    return {name: values[0] for name, values in parsed.items()}


def query(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


# --- OAuth --------------------------------------------------------------------------------------------


def test_authorize_url_asks_strava_for_consent(strava):
    url = strava.authorize_url(
        "https://backstride.test/oauth/callback",
        ["activity:read_all", "activity:write", "profile:read_all"],
        "state-xyz",
    )

    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{OAUTH}/authorize"
    assert parse_qs(parts.query) == {
        "client_id": ["4711"],
        "redirect_uri": ["https://backstride.test/oauth/callback"],
        "response_type": ["code"],
        "approval_prompt": ["auto"],
        "scope": ["activity:read_all,activity:write,profile:read_all"],
        "state": ["state-xyz"],
    }
    assert CLIENT_SECRET not in url


def test_authorize_url_can_force_the_consent_screen(strava):
    url = strava.authorize_url("https://backstride.test/oauth/callback", ["activity:read"], "s", force=True)

    assert parse_qs(urlsplit(url).query)["approval_prompt"] == ["force"]


def test_exchange_code_posts_the_form_and_returns_the_grant(strava, http):
    http.post(f"{OAUTH}/token", json=TOKEN_RESPONSE)

    grant = strava.exchange_code("code-123")

    assert grant == TokenGrant("new-access", "new-refresh", 1716000000, athlete_id=134815)
    assert form(http.calls[0]) == {
        "client_id": "4711",
        "client_secret": "secret",
        "code": "code-123",
        "grant_type": "authorization_code",
    }


def test_exchange_code_is_not_retried(strava, http, sleeps):
    http.post(f"{OAUTH}/token", status=503)

    with pytest.raises(HostUnavailable):
        strava.exchange_code("code-123")

    assert len(http.calls) == 1
    assert sleeps == []


def test_refresh_posts_the_refresh_token(strava, http):
    http.post(f"{OAUTH}/token", json=TOKEN_RESPONSE)

    grant = strava.refresh("old-refresh")

    assert grant.refresh_token == "new-refresh"
    assert form(http.calls[0]) == {
        "client_id": "4711",
        "client_secret": "secret",
        "refresh_token": "old-refresh",
        "grant_type": "refresh_token",
    }


def test_refresh_refused_with_400_is_unauthorized(strava, http):
    http.post(
        f"{OAUTH}/token",
        status=400,
        json={
            "message": "Bad Request",
            "errors": [{"resource": "RefreshToken", "field": "refresh_token", "code": "invalid"}],
        },
    )

    with pytest.raises(Unauthorized):
        strava.refresh("rotated-away")


def test_revoke_uses_basic_auth_and_the_token_in_the_form(strava, http):
    http.post(f"{OAUTH}/revoke", status=200)

    strava.revoke(TOKEN)

    assert len(http.calls) == 1
    request = http.calls[0].request
    assert urlsplit(request.url).path == "/oauth/revoke"
    assert request.method == "POST"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"4711:secret").decode()
    assert form(http.calls[0]) == {"token": TOKEN, "token_type_hint": "access_token"}
    assert TOKEN not in request.url


def test_revoke_falls_back_to_deauthorize_when_revoke_is_missing(strava, http):
    http.post(f"{OAUTH}/revoke", status=404)
    http.post(f"{OAUTH}/deauthorize", json={"access_token": TOKEN})

    strava.revoke(TOKEN)

    assert [urlsplit(call.request.url).path for call in http.calls] == ["/oauth/revoke", "/oauth/deauthorize"]
    assert http.calls[1].request.method == "POST"
    assert form(http.calls[1]) == {"access_token": TOKEN}
    assert TOKEN not in http.calls[1].request.url


def test_revoke_refused_is_an_error(strava, http):
    http.post(f"{OAUTH}/revoke", status=401)

    with pytest.raises(Unauthorized):
        strava.revoke(TOKEN)

    assert len(http.calls) == 1  # no fallback: the endpoint exists and said no


# --- API ----------------------------------------------------------------------------------------------


def test_fetch_activity_sends_the_token_only_in_the_header(strava, http):
    http.get(ACTIVITY_URL, json=ACTIVITY)

    activity = strava.fetch_activity(TOKEN, 1360128428)

    assert isinstance(activity, Activity)
    assert (activity.id, activity.sport_type, activity.description) == (1360128428, "Run", "Easy #retro")
    request = http.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in request.url
    assert request.body is None


def test_fetch_athlete_gives_weight_and_units(strava, http):
    http.get(f"{API}/athlete", json={"id": 134815, "weight": 61.5, "measurement_preference": "feet"})

    athlete = strava.fetch_athlete(TOKEN)

    assert (athlete.id, athlete.weight_kg, athlete.units) == (134815, 61.5, "imperial")


def test_5xx_is_retried_and_then_succeeds(strava, http, sleeps):
    http.get(ACTIVITY_URL, status=503)
    http.get(ACTIVITY_URL, json=ACTIVITY)

    activity = strava.fetch_activity(TOKEN, 1360128428)

    assert activity.id == 1360128428
    assert len(http.calls) == 2
    assert len(sleeps) == 1
    assert sleeps[0] > 0


def test_backoff_grows_between_attempts(strava, http, sleeps, monkeypatch):
    # Pin the jitter: with it free, two sleeps can come out in either order.
    monkeypatch.setattr(client_module.random, "random", lambda: 0.5)
    for _ in range(3):
        http.get(ACTIVITY_URL, status=503)

    with pytest.raises(HostUnavailable):
        strava.fetch_activity(TOKEN, 1360128428)

    assert len(sleeps) == 2
    assert sleeps[1] == pytest.approx(2 * sleeps[0])


@pytest.mark.parametrize("jitter", [0.0, 0.999999])
def test_backoff_stays_within_its_jitter_range(strava, http, sleeps, monkeypatch, jitter):
    monkeypatch.setattr(client_module.random, "random", lambda: jitter)
    for _ in range(3):
        http.get(ACTIVITY_URL, status=502)

    with pytest.raises(HostUnavailable):
        strava.fetch_activity(TOKEN, 1360128428)

    base = strava.backoff_base_s
    assert base * 0.5 <= sleeps[0] < base * 1.5
    assert 2 * base * 0.5 <= sleeps[1] < 2 * base * 1.5


@pytest.mark.parametrize("attempts", [1, 3, 4])
def test_persistent_5xx_is_host_unavailable_after_exactly_attempts_calls(http, sleeps, attempts):
    strava = StravaClient(OAUTH, API, CLIENT_ID, CLIENT_SECRET, attempts=attempts, sleep=sleeps.append)
    for _ in range(attempts):
        http.get(ACTIVITY_URL, status=503)

    with pytest.raises(HostUnavailable) as info:
        strava.fetch_activity(TOKEN, 1360128428)

    assert len(http.calls) == attempts
    assert len(sleeps) == attempts - 1
    assert "503" in str(info.value)


def test_connection_error_is_retried_then_host_unavailable(strava, http, sleeps):
    for _ in range(3):
        http.get(ACTIVITY_URL, body=requests.ConnectionError("connection reset"))

    with pytest.raises(HostUnavailable):
        strava.fetch_activity(TOKEN, 1360128428)

    assert len(http.calls) == 3
    assert len(sleeps) == 2


def test_connection_error_then_success(strava, http, sleeps):
    http.get(ACTIVITY_URL, body=requests.ConnectionError("connection reset"))
    http.get(ACTIVITY_URL, json=ACTIVITY)

    assert strava.fetch_activity(TOKEN, 1360128428).id == 1360128428
    assert len(sleeps) == 1


@pytest.mark.parametrize(("status", "error"), [(401, Unauthorized), (403, Forbidden), (404, NotFound)])
def test_client_errors_map_to_host_errors_without_retry(strava, http, sleeps, status, error):
    http.get(ACTIVITY_URL, status=status, json={"message": "Record Not Found", "errors": []})

    with pytest.raises(error) as info:
        strava.fetch_activity(TOKEN, 1360128428)

    assert len(http.calls) == 1
    assert sleeps == []
    assert str(status) in str(info.value)
    assert "/api/v3/activities/1360128428" in str(info.value)


def test_429_with_spent_window_waits_for_the_next_quarter_hour(strava, http, sleeps):
    http.get(ACTIVITY_URL, status=429, headers=SPENT_READ_WINDOW, json={"message": "Rate Limit Exceeded"})

    with pytest.raises(RateLimited) as info:
        strava.fetch_activity(TOKEN, 1360128428)

    assert info.value.retry_at == datetime(2024, 5, 17, 10, 15)
    assert info.value.window_spent is True
    assert len(http.calls) == 1
    assert sleeps == []


def test_429_with_headroom_retries_after_a_short_backoff(strava, http):
    http.get(ACTIVITY_URL, status=429, headers=HEADROOM, json={"message": "Rate Limit Exceeded"})

    with pytest.raises(RateLimited) as info:
        strava.fetch_activity(TOKEN, 1360128428)

    assert info.value.retry_at == NOW + timedelta(seconds=30)
    assert info.value.window_spent is False


def test_on_rate_limit_sees_every_response(strava, http, seen):
    first = dict(HEADROOM, **{"X-ReadRateLimit-Usage": "10,138"})
    second = dict(HEADROOM, **{"X-ReadRateLimit-Usage": "11,139"})
    http.get(ACTIVITY_URL, status=503, headers=first)
    http.get(ACTIVITY_URL, json=ACTIVITY, headers=second)

    strava.fetch_activity(TOKEN, 1360128428)

    assert [status.daily for status, _ in seen] == [Window(1000, 138), Window(1000, 139)]
    assert [now for _, now in seen] == [NOW, NOW]


def test_on_rate_limit_sees_the_spent_window_of_a_429(strava, http, seen):
    http.get(ACTIVITY_URL, status=429, headers=SPENT_READ_WINDOW)

    with pytest.raises(RateLimited):
        strava.fetch_activity(TOKEN, 1360128428)

    assert len(seen) == 1
    assert seen[0][0].short == Window(100, 100)


def test_response_without_rate_limit_headers_reports_nothing(strava, http, seen):
    http.get(ACTIVITY_URL, json=ACTIVITY)

    strava.fetch_activity(TOKEN, 1360128428)

    assert seen == []


def test_fetch_streams_asks_for_the_needed_keys_by_type(strava, http):
    http.get(
        f"{ACTIVITY_URL}/streams",
        json={"time": {"data": [0, 1, 2]}, "distance": {"data": [0.0, 1.0, 2.0]}},
    )

    streams = strava.fetch_streams(TOKEN, 1360128428)

    assert streams is not None
    assert streams.time.tolist() == [0.0, 1.0, 2.0]
    params = query(http.calls[0])
    assert params["keys"] == ["time,distance,velocity_smooth,cadence,heartrate,grade_smooth,altitude,moving"]
    assert params["key_by_type"] == ["true"]
    assert http.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_fetch_streams_of_a_manual_activity_is_none(strava, http):
    http.get(f"{ACTIVITY_URL}/streams", status=404, json={"message": "Record Not Found"})

    assert strava.fetch_streams(TOKEN, 1360128428) is None
    assert len(http.calls) == 1


def test_update_description_puts_json(strava, http):
    http.put(ACTIVITY_URL, json=ACTIVITY)

    strava.update_description(TOKEN, 1360128428, "Easy #retro\n\nBackstride: 200 m backward")

    request = http.calls[0].request
    assert request.method == "PUT"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {"description": "Easy #retro\n\nBackstride: 200 m backward"}


def test_update_description_without_write_scope_is_forbidden(strava, http):
    http.put(ACTIVITY_URL, status=403, json={"message": "Authorization Error"})

    with pytest.raises(Forbidden):
        strava.update_description(TOKEN, 1360128428, "note")


# --- push subscription --------------------------------------------------------------------------------


def test_create_subscription_posts_callback_and_verify_token(strava, http):
    http.post(f"{API}/push_subscriptions", json={"id": 120475})

    subscription = strava.create_subscription("https://backstride.test/webhooks/strava", "verify-me")

    assert subscription == Subscription(id=120475, callback_url="https://backstride.test/webhooks/strava")
    assert form(http.calls[0]) == {
        "client_id": "4711",
        "client_secret": "secret",
        "callback_url": "https://backstride.test/webhooks/strava",
        "verify_token": "verify-me",
    }


def test_show_subscriptions_lists_them(strava, http):
    http.get(
        f"{API}/push_subscriptions",
        json=[
            {
                "id": 120475,
                "resource_state": 2,
                "application_id": 4711,
                "callback_url": "https://backstride.test/webhooks/strava",
                "created_at": "2024-05-17T10:00:00+00:00",
                "updated_at": "2024-05-17T10:00:00+00:00",
            }
        ],
    )

    subscriptions = strava.show_subscriptions()

    assert subscriptions == [Subscription(120475, "https://backstride.test/webhooks/strava")]
    assert query(http.calls[0]) == {"client_id": ["4711"], "client_secret": ["secret"]}
    assert http.calls[0].request.method == "GET"


def test_show_subscriptions_when_there_are_none(strava, http):
    http.get(f"{API}/push_subscriptions", json=[])

    assert strava.show_subscriptions() == []


def test_delete_subscription(strava, http):
    http.delete(f"{API}/push_subscriptions/120475", status=204)

    strava.delete_subscription(120475)

    request = http.calls[0].request
    assert request.method == "DELETE"
    assert urlsplit(request.url).path == "/api/v3/push_subscriptions/120475"
    assert query(http.calls[0]) == {"client_id": ["4711"], "client_secret": ["secret"]}


# --- nothing secret in error messages -----------------------------------------------------------------

# Distinct from every word Strava uses ("secret" alone is part of the field name client_secret).
LEAKY_SECRET = "cs-9f8e7d6c5b4a"
LEAKY_TOKEN = "at-0a1b2c3d4e5f"


def _leak_cases():
    def bad_credentials(http):
        http.post(
            f"{OAUTH}/token",
            status=400,
            json={
                "message": "Bad Request",
                "errors": [{"resource": "Application", "field": "client_secret", "code": "invalid"}],
            },
        )
        return lambda s: s.exchange_code("code")

    def refused_refresh(http):
        http.post(f"{OAUTH}/token", status=400, json={"message": "Bad Request"})
        return lambda s: s.refresh("refresh")

    def unauthorized(http):
        http.get(
            ACTIVITY_URL,
            status=401,
            json={
                "message": "Authorization Error",
                "errors": [{"resource": "Athlete", "field": "access_token", "code": "invalid"}],
            },
        )
        return lambda s: s.fetch_activity(LEAKY_TOKEN, 1360128428)

    def rate_limited(http):
        http.get(ACTIVITY_URL, status=429, headers=SPENT_READ_WINDOW)
        return lambda s: s.fetch_activity(LEAKY_TOKEN, 1360128428)

    def outage_listing(http):
        for _ in range(3):
            http.get(f"{API}/push_subscriptions", status=503)
        return lambda s: s.show_subscriptions()

    def unreachable_delete(http):
        for _ in range(3):
            http.delete(f"{API}/push_subscriptions/1", body=requests.ConnectionError("no route to host"))
        return lambda s: s.delete_subscription(1)

    def missing_subscription(http):
        http.delete(f"{API}/push_subscriptions/1", status=404, json={"message": "Resource Not Found"})
        return lambda s: s.delete_subscription(1)

    def revoke_refused(http):
        http.post(f"{OAUTH}/revoke", status=401, json={"message": "Authorization Error"})
        return lambda s: s.revoke(LEAKY_TOKEN)

    def deauthorize_refused(http):
        http.post(f"{OAUTH}/revoke", status=404)
        http.post(f"{OAUTH}/deauthorize", status=401, json={"message": "Authorization Error"})
        return lambda s: s.revoke(LEAKY_TOKEN)

    def unreadable_body(http):
        http.get(ACTIVITY_URL, body="<html>oops</html>", content_type="text/html")
        return lambda s: s.fetch_activity(LEAKY_TOKEN, 1360128428)

    return [
        bad_credentials,
        refused_refresh,
        unauthorized,
        rate_limited,
        outage_listing,
        unreachable_delete,
        missing_subscription,
        revoke_refused,
        deauthorize_refused,
        unreadable_body,
    ]


@pytest.mark.parametrize("case", _leak_cases(), ids=lambda case: case.__name__)
def test_error_messages_hold_no_secret_and_no_token(http, case):
    strava = StravaClient(OAUTH, API, CLIENT_ID, LEAKY_SECRET, sleep=lambda s: None, clock=lambda: NOW)
    call = case(http)

    with pytest.raises(HostError) as info:
        call(strava)

    message = str(info.value)
    assert message
    assert LEAKY_SECRET not in message
    assert LEAKY_TOKEN not in message
