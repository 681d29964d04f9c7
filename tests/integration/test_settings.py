"""The signed-in runner's pages: settings, the data download, disconnect and sign-out."""

from __future__ import annotations

import html
import json
import re

import pytest

from plugin.pipeline import profile_for
from tests.conftest import ATHLETE_ID, PUBLIC_URL, event, run_queue


@pytest.fixture
def backend() -> dict[str, str]:
    """The embedded defaults only: the settings page is the web layer's concern."""
    return {}


VALID = {
    "weight": "68.5",
    "weight_unit": "kg",
    "units": "host",
    "detection": "auto",
    "note_style": "detailed",
}


@pytest.fixture
def signed_in(client, connected):
    with client.session_transaction() as session:
        session["athlete_id"] = connected
        session["session_version"] = 0  # as the OAuth callback signs in a new athlete
    return connected


def csrf_token(client, path: str = "/settings") -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page has no CSRF token"
    return match.group(1)


def post_settings(client, **changes):
    form = {**VALID, "csrf_token": csrf_token(client), **changes}
    return client.post("/settings", data={k: v for k, v in form.items() if v is not None})


def stored_settings(services) -> dict:
    return services.store.athlete(ATHLETE_ID).settings


# --- access --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method,path", [("GET", "/settings"), ("GET", "/settings/export")])
def test_pages_need_a_signed_in_athlete(client, connected, method, path):
    response = client.open(path, method=method)
    assert response.status_code == 401
    page = response.get_data(as_text=True)
    assert "Please connect first" in page
    assert 'href="/connect' in page
    assert "90210" not in page


def test_posts_without_a_csrf_token_are_refused_and_change_nothing(client, services, signed_in):
    response = client.post("/settings", data={**VALID, "weight": "80"})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    assert stored_settings(services) == {}
    assert client.post("/disconnect").status_code == 400
    assert services.store.is_connected(ATHLETE_ID)


def test_a_session_for_a_deleted_athlete_is_signed_out(client, services, signed_in):
    services.store.delete_athlete(ATHLETE_ID)
    assert client.get("/settings").status_code == 401
    with client.session_transaction() as session:
        assert "athlete_id" not in session


# --- the settings form -----------------------------------------------------------------------------------


def test_settings_page_has_a_labelled_field_for_every_setting(client, signed_in):
    page = client.get("/settings").get_data(as_text=True)
    for field_id in ("weight", "weight_unit"):
        assert f'<label for="{field_id}"' in page and f'id="{field_id}"' in page
    for legend in ("Units in notes", "Which activities get a note", "Note detail"):
        assert f"<legend>{legend}</legend>" in page
    assert "Pause notes" in page
    assert "(62.0 kg)" in page  # the host profile's weight, used while the field is empty
    assert 'action="/disconnect"' in page and "Download what Backstride stores about you" in page


def test_saving_valid_settings_stores_them_and_redirects(client, services, signed_in):
    response = post_settings(
        client, weight="150", weight_unit="lb", units="imperial", detection="tagged", note_style="compact"
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/settings?saved=1")
    assert stored_settings(services) == {
        "weight_kg": 68.04,
        "weight_unit": "lb",
        "units": "imperial",
        "detection": "tagged",
        "note_style": "compact",
        "paused": False,
    }
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Settings saved." in page
    assert 'value="150"' in page  # shown back in the athlete's unit
    profile = profile_for(services.store.athlete(ATHLETE_ID))
    assert (profile.weight_kg, profile.weight_source, profile.units, profile.note_style) == (
        68.04,
        "settings",
        "imperial",
        "compact",
    )


def test_empty_weight_and_following_the_host_fall_back_to_the_profile(client, services, signed_in):
    assert post_settings(client, weight="", units="host").status_code == 303
    settings = stored_settings(services)
    assert settings["weight_kg"] is None and "units" not in settings
    profile = profile_for(services.store.athlete(ATHLETE_ID))
    assert (profile.weight_kg, profile.weight_source, profile.units) == (62.0, "host", "metric")


def test_a_decimal_comma_is_a_decimal_point(client, services, signed_in):
    assert post_settings(client, weight="71,5").status_code == 303
    assert stored_settings(services)["weight_kg"] == 71.5


@pytest.mark.parametrize(
    "changes,field,message",
    [
        ({"weight": "abc"}, "weight", "Enter your weight as a number"),
        ({"weight": "nan"}, "weight", "Enter your weight as a number"),
        ({"weight": "7"}, "weight", "between 25 and 300 kg"),
        ({"weight": "900", "weight_unit": "lb"}, "weight", "between 55 and 661 lb"),
        ({"weight_unit": "stone"}, "weight_unit", "Choose kg or lb."),
        ({"units": "furlongs"}, "units", "Choose one of the unit options."),
        ({"detection": "always"}, "detection", "Choose one of the detection options."),
        ({"note_style": "verbose"}, "note_style", "Choose compact or detailed."),
    ],
)
def test_bad_values_are_explained_next_to_the_field_and_nothing_is_saved(
    client, services, signed_in, changes, field, message
):
    post_settings(client, weight="80")  # something saved before
    before = stored_settings(services)
    response = post_settings(client, **{**changes, "paused": "on"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Nothing was saved" in page
    error = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page)
    assert error and message in error.group(1)
    assert f'aria-describedby="{field}-error"' in page or f'{field}-error"' in page
    assert stored_settings(services) == before  # nothing half-applied, not even the pause


def test_the_typed_value_is_shown_back_after_an_error(client, signed_in):
    page = post_settings(client, weight="7x").get_data(as_text=True)
    assert 'value="7x"' in page


def test_pausing_stops_notes_without_any_host_call(client, services, strava, signed_in):
    assert post_settings(client, paused="on").status_code == 303
    strava.add_activity(ATHLETE_ID, 701, name="#retro run")
    client.post("/webhooks/strava", json=event(701))
    run_queue(services)
    assert strava.calls == []
    assert "Notes are paused" in client.get("/settings").get_data(as_text=True)


def test_recent_activities_link_to_the_host_with_view_on_strava(client, services, strava, signed_in):
    strava.add_activity(ATHLETE_ID, 702, name="#retro run", distance=1200.0, moving_time=500.0)
    client.post("/webhooks/strava", json=event(702))
    run_queue(services)
    page = client.get("/settings").get_data(as_text=True)
    assert '<a href="https://strava.test/activities/702">View on Strava</a>' in page
    assert "1 effort, 1.20 km" in page


def forward_run_streams() -> dict:
    """40 minutes of forward running, 1 Hz, with a slower 5 minutes whose cadence falls with the pace: forward
    running throughout, nothing backward in it."""
    seconds = range(2401)
    speed = [2.3 if 900 <= i < 1200 else 3.2 for i in seconds]
    cadence = [76.0 if 900 <= i < 1200 else 85.0 for i in seconds]
    distance, total = [], 0.0
    for v in speed:
        total += v
        distance.append(total)
    return {
        "time": {"data": list(seconds)},
        "distance": {"data": distance},
        "velocity_smooth": {"data": speed},
        "cadence": {"data": cadence},
        "grade_smooth": {"data": [0.0] * len(speed)},
        "moving": {"data": [True] * len(speed)},
    }


def test_a_tagged_run_without_a_backward_block_says_why_it_has_no_note(client, services, strava, signed_in):
    strava.add_activity(
        ATHLETE_ID,
        704,
        name="Sunday #retro",
        distance=7500.0,
        moving_time=2400.0,
        streams=forward_run_streams(),
    )
    client.post("/webhooks/strava", json=event(704))
    run_queue(services)
    assert strava.description(704) is None  # nothing written
    page = client.get("/settings").get_data(as_text=True)
    assert "tagged, but no backward block found: name a lap Retro to mark it" in page
    exported = json.loads(client.get("/settings/export").get_data(as_text=True))
    assert exported["activity_records"][0]["remark"].startswith("tagged, but no backward block found")


# --- the data download ---------------------------------------------------------------------------------


def test_export_is_everything_stored_about_the_athlete_without_tokens(client, services, strava, signed_in):
    post_settings(client, weight="70")
    strava.add_activity(ATHLETE_ID, 703, name="#retro run")
    client.post("/webhooks/strava", json=event(703))
    run_queue(services)
    response = client.get("/settings/export")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert "attachment" in response.headers["Content-Disposition"]
    data = json.loads(response.get_data(as_text=True))
    assert data["athlete"]["id"] == ATHLETE_ID
    assert data["athlete"]["settings"]["weight_kg"] == 70.0
    assert [r["activity_id"] for r in data["activity_records"]] == [703]
    assert [e["object_id"] for e in data["events"]] == [703]
    tokens = services.store.tokens(ATHLETE_ID)
    assert tokens.access_token not in response.get_data(as_text=True)
    assert tokens.refresh_token not in response.get_data(as_text=True)


# --- disconnect and sign-out -----------------------------------------------------------------------------


def test_disconnect_revokes_deletes_everything_and_signs_out(client, services, strava, signed_in):
    strava.add_activity(ATHLETE_ID, 704, name="#retro run")
    client.post("/webhooks/strava", json=event(704))
    run_queue(services)
    token = csrf_token(client)
    strava.calls.clear()
    response = client.post("/disconnect", data={"csrf_token": token})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Disconnected and deleted" in page
    assert "access to your Strava account has been revoked" in page
    assert strava.calls_to("POST", "/oauth/revoke")
    assert not services.store.is_connected(ATHLETE_ID)
    assert services.store.activity_record(704) is None
    assert services.store.export_athlete(ATHLETE_ID) is None
    with client.session_transaction() as session:
        assert "athlete_id" not in session
    assert client.get("/settings").status_code == 401


def test_disconnect_deletes_even_when_the_host_cannot_revoke(client, services, strava, signed_in):
    token = csrf_token(client)
    strava.fail("POST", "/oauth/revoke", 500, times=10)
    response = client.post("/disconnect", data={"csrf_token": token})
    assert response.status_code == 200
    assert "could not be reached to revoke" in response.get_data(as_text=True)
    assert not services.store.is_connected(ATHLETE_ID)


def test_disconnect_deletes_even_when_no_key_opens_the_stored_token(client, services, strava, signed_in):
    """Issue 20: a changed token key made Disconnect answer 500 and delete nothing."""
    from cryptography.fernet import Fernet

    from plugin.store.crypto import TokenCipher

    token = csrf_token(client)
    services.store.cipher = TokenCipher(Fernet.generate_key().decode())  # restarted with another key
    response = client.post("/disconnect", data={"csrf_token": token})
    assert response.status_code == 200
    assert "Disconnected and deleted" in response.get_data(as_text=True)
    assert not services.store.is_connected(ATHLETE_ID)


def test_a_session_cookie_copied_before_sign_out_is_worthless_after_it(app, client, services, signed_in):
    """Issue 20: a session cookie copied before sign-out still worked after it."""
    copy = app.test_client()
    copy.set_cookie("session", client.get_cookie("session").value, domain="localhost")
    assert copy.get("/settings").status_code == 200
    client.post("/signout", data={"csrf_token": csrf_token(client)})
    assert copy.get("/settings").status_code == 401
    assert services.store.is_connected(ATHLETE_ID)  # signing out disconnects nothing


def test_sign_out_ends_the_session_only(client, services, signed_in):
    token = csrf_token(client)
    response = client.post("/signout", data={"csrf_token": token})
    assert response.status_code == 303
    assert client.get("/settings").status_code == 401
    assert services.store.is_connected(ATHLETE_ID)


# --- the public pages -------------------------------------------------------------------------------------


def test_landing_has_the_connect_button_an_example_note_and_the_attribution(client):
    page = client.get("/").get_data(as_text=True)
    assert '<a class="connect" href="/connect">' in page
    assert 'alt="Connect with Strava"' in page and 'height="48"' in page
    assert "⟲ Backstride: 3 backward efforts" in page
    assert "Powered by Strava" in page
    assert 'href="/privacy"' in page and 'href="/support"' in page
    assert "<script" not in page


def test_the_example_note_links_to_this_installations_sources_page(client):
    page = client.get("/").get_data(as_text=True)
    assert f"— Backstride · sources: {PUBLIC_URL}/science</pre>" in page
    assert 'href="/science"' in page


def test_the_sources_page_shows_every_fact_and_source_the_notes_use(client):
    from plugin.analysis import sources

    response = client.get("/science")
    assert response.status_code == 200
    page = html.unescape(response.get_data(as_text=True))
    assert "<h1>The science behind the notes</h1>" in page
    for section in sources.SECTIONS:
        assert f"<h2>{section.title}</h2>" in page
        for fact in section.facts:
            assert fact.claim in page and fact.source in page
    # The figures the notes use, as the page states them.
    assert "about 35% more per metre" in page and "x1.2-1.5 between runners" in page
    assert "about 24% lower per step backward" in page
    assert "<script" not in page


@pytest.mark.parametrize(
    "path,heading", [("/privacy", "Privacy"), ("/support", "Support"), ("/terms", "Terms of use")]
)
def test_privacy_and_support_pages(client, path, heading):
    response = client.get(path)
    assert response.status_code == 200
    assert f"<h1>{heading}</h1>" in response.get_data(as_text=True)


def test_session_cookie_is_not_secure_on_plain_http(env, strava):
    from plugin.web import create_app

    app = create_app({**env, "BACKSTRIDE_PUBLIC_URL": "http://127.0.0.1:5000"}, TESTING=True)
    cookie = app.test_client().get("/connect").headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "Secure" not in cookie


@pytest.mark.parametrize("path", ["/", "/settings", "/privacy"])
def test_every_page_carries_the_security_headers(client, path):
    headers = client.get(path).headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_private_pages_are_never_cached(client, signed_in):
    """Issue 20: no Cache-Control: no-store on /settings and its export."""
    for path in ("/settings", "/settings/export"):
        assert client.get(path).headers["Cache-Control"] == "no-store", path
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")


def test_https_installations_send_hsts_and_plain_http_ones_do_not(env, strava, client):
    from plugin.web import create_app

    assert client.get("/").headers["Strict-Transport-Security"] == "max-age=31536000"  # PUBLIC_URL is https
    plain = create_app({**env, "BACKSTRIDE_PUBLIC_URL": "http://127.0.0.1:5000"}, TESTING=True)
    assert "Strict-Transport-Security" not in plain.test_client().get("/").headers


def test_behind_a_proxy_its_forwarded_scheme_and_address_are_trusted_as_deep_as_told(env, strava):
    from flask import request

    from plugin.web import create_app

    app = create_app({**env, "BACKSTRIDE_PROXY_HOPS": "1"}, TESTING=True)

    @app.get("/_seen")
    def seen():
        return {"remote": request.remote_addr, "scheme": request.scheme}

    forwarded = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    assert app.test_client().get("/_seen", headers=forwarded).get_json() == {
        "remote": "203.0.113.7",
        "scheme": "https",
    }
    direct = create_app(env, TESTING=True)
    direct.add_url_rule("/_seen", view_func=seen)
    assert direct.test_client().get("/_seen", headers=forwarded).get_json()["remote"] == "127.0.0.1"
