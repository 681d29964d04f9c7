"""Connect once: /connect and /oauth/callback against the fake host."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from plugin.store.models import Athlete
from tests.conftest import ATHLETE_ID, PUBLIC_URL
from tests.fake_strava import CLIENT_ID, OAUTH


@pytest.fixture
def backend() -> dict[str, str]:
    """The embedded defaults only: the OAuth flow is the web layer's concern."""
    return {}


def start_connect(client) -> dict[str, str]:
    response = client.get("/connect")
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{OAUTH}/authorize"
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def test_connect_redirects_to_authorize_with_what_strava_needs(client):
    query = start_connect(client)
    assert query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == f"{PUBLIC_URL}/oauth/callback"
    assert query["response_type"] == "code"
    assert query["approval_prompt"] == "auto"
    assert set(query["scope"].split(",")) == {"activity:read_all", "activity:write", "profile:read_all"}
    assert len(query["state"]) >= 20


def test_each_connect_gets_a_new_state(client):
    assert start_connect(client)["state"] != start_connect(client)["state"]


def test_callback_stores_athlete_with_encrypted_tokens(client, services, strava):
    strava.add_athlete(ATHLETE_ID, weight=58.5, units="feet")
    state = start_connect(client)["state"]
    code = strava.issue_code(ATHLETE_ID)
    response = client.get(
        f"/oauth/callback?state={state}&code={code}&scope=read,activity:read_all,"
        "activity:write,profile:read_all"
    )
    assert response.status_code == 200
    assert b"connected" in response.data

    athlete = services.store.athlete(ATHLETE_ID)
    assert athlete is not None
    assert athlete.host_weight_kg == 58.5
    assert athlete.host_units == "imperial"
    assert "activity:write" in athlete.scope_set
    tokens = services.store.tokens(ATHLETE_ID)
    assert tokens.access_token in strava.access
    # At rest the tokens are ciphertext: neither the access nor the refresh token appears in the row.
    assert tokens.access_token not in athlete.access_token_enc
    assert tokens.refresh_token not in athlete.refresh_token_enc
    with client.session_transaction() as session:
        assert session["athlete_id"] == ATHLETE_ID


def test_reconnecting_updates_the_athlete_and_never_duplicates(client, services, strava):
    strava.add_athlete(ATHLETE_ID)
    for _ in range(2):
        state = start_connect(client)["state"]
        code = strava.issue_code(ATHLETE_ID)
        assert (
            client.get(
                f"/oauth/callback?state={state}&code={code}&scope=activity:read_all,"
                "activity:write,profile:read_all"
            ).status_code
            == 200
        )
    with services.store.session() as session:
        assert len(session.scalars(select(Athlete)).all()) == 1
    newest = strava.calls_to("POST", "/oauth/token")
    assert len(newest) == 2
    assert services.store.tokens(ATHLETE_ID).access_token in strava.access


def test_denied_access_stores_nothing(client, services, strava):
    state = start_connect(client)["state"]
    response = client.get(f"/oauth/callback?state={state}&error=access_denied")
    assert response.status_code == 403
    assert b"chose not to connect" in response.data
    assert services.store.athlete(ATHLETE_ID) is None
    assert strava.calls == []


def test_forged_state_is_refused_without_calling_the_host(client, services, strava):
    start_connect(client)
    code = strava.issue_code(ATHLETE_ID)
    response = client.get(f"/oauth/callback?state=forged&code={code}&scope=activity:read_all,activity:write")
    assert response.status_code == 400
    assert strava.calls == []
    assert services.store.athlete(ATHLETE_ID) is None


def test_callback_without_a_started_connect_is_refused(client, strava):
    code = strava.issue_code(ATHLETE_ID)
    response = client.get(f"/oauth/callback?state=abc&code={code}&scope=activity:read_all,activity:write")
    assert response.status_code == 400
    assert strava.calls == []


def test_state_is_single_use(client, strava):
    strava.add_athlete(ATHLETE_ID)
    state = start_connect(client)["state"]
    scope = "activity:read_all,activity:write,profile:read_all"
    first = client.get(f"/oauth/callback?state={state}&code={strava.issue_code(ATHLETE_ID)}&scope={scope}")
    assert first.status_code == 200
    replay = client.get(f"/oauth/callback?state={state}&code={strava.issue_code(ATHLETE_ID)}&scope={scope}")
    assert replay.status_code == 400


def test_missing_write_scope_explains_and_stores_nothing(client, services, strava):
    state = start_connect(client)["state"]
    code = strava.issue_code(ATHLETE_ID, scopes="read,activity:read_all")
    response = client.get(f"/oauth/callback?state={state}&code={code}&scope=read,activity:read_all")
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert "activity:write" in page
    assert "force=1" in page  # the retry link asks Strava to show the consent boxes again
    assert services.store.athlete(ATHLETE_ID) is None
    assert strava.calls == []


def test_without_profile_scope_connects_and_says_weight_is_assumed(client, services, strava):
    state = start_connect(client)["state"]
    code = strava.issue_code(ATHLETE_ID, scopes="read,activity:read_all,activity:write")
    response = client.get(
        f"/oauth/callback?state={state}&code={code}&scope=read,activity:read_all,activity:write"
    )
    assert response.status_code == 200
    assert b"70 kg" in response.data
    athlete = services.store.athlete(ATHLETE_ID)
    assert athlete.host_weight_kg is None
    assert strava.calls_to("GET", "/athlete") == []


def test_host_refusing_the_code_is_a_client_error_with_a_clear_page(client, services, strava):
    # An expired, reused or made-up code is the link's fault: 400, not a 502 that pages the operator
    # (once a 502; found by tests/integration/test_hostile_input.py).
    state = start_connect(client)["state"]
    response = client.get(
        f"/oauth/callback?state={state}&code=expired-code&scope=activity:read_all,activity:write"
    )
    assert response.status_code == 400
    assert b"Nothing was stored" in response.data
    assert len(strava.calls_to("POST", "/oauth/token")) == 1
    assert services.store.athlete(ATHLETE_ID) is None


def test_host_refusing_our_client_credentials_is_a_server_error(client, services, strava):
    strava.fail("POST", "/oauth/token", 401)
    state = start_connect(client)["state"]
    code = strava.issue_code(ATHLETE_ID)
    response = client.get(f"/oauth/callback?state={state}&code={code}&scope=activity:read_all,activity:write")
    assert response.status_code == 502
    assert services.store.athlete(ATHLETE_ID) is None


def test_host_outage_during_exchange_is_not_retried_and_stores_nothing(client, services, strava):
    strava.fail("POST", "/oauth/token", 503, times=5)
    state = start_connect(client)["state"]
    code = strava.issue_code(ATHLETE_ID)
    response = client.get(f"/oauth/callback?state={state}&code={code}&scope=activity:read_all,activity:write")
    assert response.status_code == 502
    assert len(strava.calls_to("POST", "/oauth/token")) == 1
    assert services.store.athlete(ATHLETE_ID) is None


def test_session_cookie_is_httponly_lax_and_secure_for_https(client):
    response = client.get("/connect")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" in cookie


def test_the_signed_in_session_expires_after_12_hours(client, strava):
    from datetime import UTC, datetime
    from email.utils import parsedate_to_datetime

    from plugin.web import SESSION_LIFETIME_S

    strava.add_athlete(ATHLETE_ID)
    state = start_connect(client)["state"]
    code = strava.issue_code(ATHLETE_ID)
    response = client.get(
        f"/oauth/callback?state={state}&code={code}&scope=read,activity:read_all,activity:write"
    )
    cookie = response.headers["Set-Cookie"]
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", cookie).group(1))
    lifetime = (expires - datetime.now(UTC)).total_seconds()
    assert SESSION_LIFETIME_S == 12 * 3600
    assert abs(lifetime - SESSION_LIFETIME_S) < 60
