"""The sandbox host as a plugin developer relies on it: OAuth consent and tokens, the API subset, rate limits,
push subscriptions and webhook delivery, injected faults, revocation and the activity pages.

Everything runs on loopback: the sandbox through Flask's test client, the webhook callback as a tiny real
HTTP server (the sandbox posts to it with requests, as Strava would post to a plugin).
"""

from __future__ import annotations

import re
import threading
import time
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask, jsonify, request

from plugin.sandbox import SandboxConfig, create_sandbox
from plugin.sandbox.server import LoopbackServer

CLIENT_ID = "1234"
CLIENT_SECRET = "sandbox-client-secret"
REDIRECT_URI = "http://127.0.0.1:9/cb"
BACKSTRIDE_SCOPES = "activity:read_all,activity:write,profile:read_all"
ATHLETE = 4242  # made up
OTHER_ATHLETE = 4343
VERIFY_TOKEN = "vt-123"
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Usage", "X-ReadRateLimit-Limit", "X-ReadRateLimit-Usage")

STREAMS = {
    "time": [0, 1, 2, 3],
    "distance": [0.0, 3.1, 6.2, 9.4],
    "velocity_smooth": [0.0, 3.1, 3.1, 3.2],
    "cadence": [0, 84, 85, 85],
}


# --- helpers ------------------------------------------------------------------------------------------------


class _Page(HTMLParser):
    """The form on the consent page: its action, inputs and buttons (with their text)."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.inputs: list[dict[str, Any]] = []
        self.buttons: list[dict[str, Any]] = []
        self._button: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.action = attributes.get("action") or ""
        elif tag == "input":
            self.inputs.append(attributes)
        elif tag == "button":
            self._button = {**attributes, "text": ""}
            self.buttons.append(self._button)

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button["text"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self._button = None

    @property
    def hidden(self) -> dict[str, str]:
        return {i["name"]: i.get("value") or "" for i in self.inputs if i.get("type") == "hidden"}

    @property
    def checkboxes(self) -> list[dict[str, Any]]:
        return [i for i in self.inputs if i.get("type") == "checkbox"]

    def button(self, text: str) -> dict[str, Any]:
        return next(b for b in self.buttons if b["text"].strip() == text)


def parse_page(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def redirect_query(response) -> dict[str, str]:
    assert response.status_code == 302, response.get_data(as_text=True)
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    return {k: v[0] for k, v in parse_qs(location.query).items()}


class Host:
    """A sandbox app with its test client, driven the way a plugin (or an athlete's browser) would."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.state = app.extensions["sandbox"]
        self.client = app.test_client()

    # control API
    def add_athlete(self, athlete_id: int = ATHLETE, **fields: Any) -> dict[str, Any]:
        response = self.client.post("/_sandbox/athletes", json={"id": athlete_id, **fields})
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.get_json()

    def add_activity(
        self, athlete_id: int = ATHLETE, streams: dict[str, list] | None = None, **fields: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"athlete_id": athlete_id, "activity": fields}
        if streams is not None:
            body["streams"] = streams
        response = self.client.post("/_sandbox/activities", json=body)
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.get_json()

    def idle(self) -> None:
        response = self.client.post("/_sandbox/idle", json={"timeout": 10})
        assert response.get_json() == {"idle": True}

    def deliveries(self) -> list[dict[str, Any]]:
        self.idle()
        return self.client.get("/_sandbox/deliveries").get_json()

    def add_fault(self, **fault: Any) -> None:
        response = self.client.post("/_sandbox/faults", json=fault)
        assert response.status_code == 201, response.get_data(as_text=True)

    # OAuth
    def authorize_page(self, athlete_id: int = ATHLETE, scope: str = BACKSTRIDE_SCOPES, **params: str):
        query = {
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "approval_prompt": "auto",
            "scope": scope,
            "state": "s1",
            "athlete_id": str(athlete_id),
            **params,
        }
        return self.client.get(f"/oauth/authorize?{urlencode(query)}")

    def consent(
        self,
        athlete_id: int = ATHLETE,
        scope: str = BACKSTRIDE_SCOPES,
        grant: list[str] | None = None,
        decision: str = "Authorize",
        **params: str,
    ) -> dict[str, str]:
        """Open the consent page, leave ticked only `grant` (default: all), press a button; the redirect."""
        params = {"approval_prompt": "force", **params}  # show the page even when already authorized
        response = self.authorize_page(athlete_id, scope, **params)
        assert response.status_code == 200, response.get_data(as_text=True)
        page = parse_page(response.get_data(as_text=True))
        ticked = [c["value"] for c in page.checkboxes if grant is None or c["value"] in grant]
        button = page.button(decision)
        data = {**page.hidden, "scope": ticked, button["name"]: button["value"]}
        return redirect_query(self.client.post(page.action, data=data))

    def exchange(self, code: str):
        return self.client.post(
            "/oauth/token",
            data={
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "code": code,
                "grant_type": "authorization_code",
            },
        )

    def refresh(self, refresh_token: str):
        return self.client.post(
            "/oauth/token",
            data={
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "refresh_token": refresh_token,
                "grant_type": "refresh_token",
            },
        )

    def connect(
        self, athlete_id: int = ATHLETE, scope: str = BACKSTRIDE_SCOPES, grant: list[str] | None = None
    ) -> dict[str, Any]:
        query = self.consent(athlete_id, scope, grant)
        response = self.exchange(query["code"])
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    # API
    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any):
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.open(f"/api/v3{path}", method=method, headers=headers, **kwargs)

    def subscribe(self, callback_url: str, verify_token: str | None = None):
        return self.api(
            "POST",
            "/push_subscriptions",
            data={
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "callback_url": callback_url,
                "verify_token": verify_token or VERIFY_TOKEN,
            },
        )


class Receiver:
    """A plugin's webhook endpoint: echoes the validation challenge, records event POSTs.

    `get_status` is the status of the validation answer; `post_statuses` the statuses of the next POSTs
    in order (200 once they run out)."""

    def __init__(self) -> None:
        self.gets: list[dict[str, str]] = []
        self.posts: list[dict[str, Any]] = []
        self.get_status = 200
        self.post_statuses: list[int] = []
        self._lock = threading.Lock()
        app = Flask("receiver")

        @app.get("/webhook")
        def validate():
            self.gets.append(request.args.to_dict())
            if self.get_status != 200:
                return jsonify({"error": "nope"}), self.get_status
            return jsonify({"hub.challenge": request.args.get("hub.challenge")})

        @app.post("/webhook")
        def receive():
            with self._lock:
                self.posts.append(request.get_json())
                status = self.post_statuses.pop(0) if self.post_statuses else 200
            return "", status

        self.server = LoopbackServer(app).start()
        self.url = f"{self.server.url}/webhook"


@pytest.fixture
def make_host():
    apps: list[Flask] = []

    def make(**config: Any) -> Host:
        app = create_sandbox(SandboxConfig(**{"seed": False, "delivery_retry_s": 0.05, **config}))
        apps.append(app)
        return Host(app)

    yield make
    for app in apps:
        app.extensions["sandbox_deliverer"].stop()


@pytest.fixture
def host(make_host) -> Host:
    host = make_host()
    host.add_athlete(ATHLETE, firstname="Ada", lastname="Backwards", weight=58.0)
    host.add_athlete(OTHER_ATHLETE)
    return host


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.server.stop()


@pytest.fixture
def subscribed(host: Host, receiver: Receiver) -> Receiver:
    """Subscribed, with the athlete having authorized the app (events come only for such athletes)."""
    response = host.subscribe(receiver.url)
    assert response.status_code == 201, response.get_data(as_text=True)
    host.connect()
    return receiver


# --- OAuth --------------------------------------------------------------------------------------------------


def test_consent_page_lists_each_requested_scope_checked_with_authorize_and_cancel(host):
    response = host.authorize_page()
    assert response.status_code == 200
    page = parse_page(response.get_data(as_text=True))
    boxes = page.checkboxes
    assert [b["value"] for b in boxes] == BACKSTRIDE_SCOPES.split(",")
    assert all(b.get("name") == "scope" and "checked" in b for b in boxes)
    assert page.button("Authorize")["value"] == "authorize"
    assert page.button("Cancel")["value"] == "cancel"
    assert page.hidden["state"] == "s1"
    assert page.hidden["redirect_uri"] == REDIRECT_URI


def test_authorize_grants_every_ticked_scope_and_keeps_state(host):
    query = host.consent()
    assert query["state"] == "s1"
    assert set(query["scope"].split(",")) == set(BACKSTRIDE_SCOPES.split(","))
    assert query["code"]
    assert "error" not in query


def test_unticking_a_scope_grants_only_the_rest(host):
    query = host.consent(grant=["activity:read_all", "profile:read_all"])
    assert set(query["scope"].split(",")) == {"activity:read_all", "profile:read_all"}
    assert query["state"] == "s1"


def test_cancel_is_access_denied_with_state_kept(host):
    query = host.consent(decision="Cancel")
    assert query["error"] == "access_denied"
    assert query["state"] == "s1"
    assert "code" not in query


def test_approval_prompt_auto_skips_consent_once_authorized_and_force_shows_it(host):
    host.connect()
    skipped = redirect_query(host.authorize_page())
    assert skipped["code"] and skipped["state"] == "s1"
    assert host.authorize_page(approval_prompt="force").status_code == 200


def test_unknown_client_id_is_400_with_strava_style_errors(host):
    response = host.authorize_page(client_id="999")
    assert response.status_code == 400
    assert response.get_json() == {
        "message": "Bad Request",
        "errors": [{"resource": "Application", "field": "client_id", "code": "invalid"}],
    }
    token = host.client.post(
        "/oauth/token",
        data={
            "client_id": "999",
            "client_secret": CLIENT_SECRET,
            "code": "x",
            "grant_type": "authorization_code",
        },
    )
    assert token.status_code == 400
    assert token.get_json()["errors"][0]["field"] == "client_id"


def test_code_is_single_use(host):
    code = host.consent()["code"]
    assert host.exchange(code).status_code == 200
    again = host.exchange(code)
    assert again.status_code == 400
    assert again.get_json()["errors"][0]["field"] == "code"


def test_token_response_has_what_strava_sends(host):
    before = int(time.time())
    body = host.connect()
    assert body["token_type"] == "Bearer"
    assert isinstance(body["access_token"], str) and body["access_token"]
    assert isinstance(body["refresh_token"], str) and body["refresh_token"] != body["access_token"]
    assert body["expires_in"] == 21600
    assert isinstance(body["expires_at"], int)
    assert before + 21600 <= body["expires_at"] <= int(time.time()) + 21600
    assert body["athlete"]["id"] == ATHLETE
    assert body["athlete"]["firstname"] == "Ada"


def test_refresh_returns_the_same_access_token_while_it_has_more_than_the_window_left(host):
    tokens = host.connect()
    response = host.refresh(tokens["refresh_token"])
    assert response.status_code == 200
    body = response.get_json()
    assert body["access_token"] == tokens["access_token"]
    assert body["refresh_token"] == tokens["refresh_token"]
    assert body["expires_at"] == tokens["expires_at"]
    assert body["token_type"] == "Bearer"


def test_refresh_within_the_window_issues_a_new_access_token_and_rotates_the_refresh_token(make_host):
    host = make_host(token_lifetime_s=100, refresh_window_s=3600)
    host.add_athlete(ATHLETE)
    tokens = host.connect()
    response = host.refresh(tokens["refresh_token"])
    assert response.status_code == 200
    body = response.get_json()
    assert body["access_token"] != tokens["access_token"]
    assert body["refresh_token"] != tokens["refresh_token"]
    assert body["expires_in"] == 100
    assert host.api("GET", "/athlete", body["access_token"]).status_code == 200
    # The old refresh token is invalid at once.
    stale = host.refresh(tokens["refresh_token"])
    assert stale.status_code == 400
    assert stale.get_json()["errors"][0]["field"] == "refresh_token"
    # The newest one still works.
    assert host.refresh(body["refresh_token"]).status_code == 200


# --- API ----------------------------------------------------------------------------------------------------


def test_api_takes_tokens_only_as_bearer_header(host):
    token = host.connect()["access_token"]
    activity = host.add_activity(name="Morning run")
    path = f"/activities/{activity['id']}"
    assert host.api("GET", path, token).status_code == 200
    missing = host.api("GET", path)
    assert missing.status_code == 401
    assert missing.get_json()["message"] == "Authorization Error"
    assert host.api("GET", f"{path}?access_token={token}").status_code == 401
    assert host.api("GET", path, headers={"Authorization": f"token {token}"}).status_code == 401
    assert host.api("GET", path, "not-a-token").status_code == 401


def test_another_athletes_activity_is_404(host):
    token = host.connect()["access_token"]
    theirs = host.add_activity(OTHER_ATHLETE, name="Not yours")
    response = host.api("GET", f"/activities/{theirs['id']}", token)
    assert response.status_code == 404
    assert response.get_json()["message"] == "Record Not Found"
    assert host.api("GET", "/activities/999999999", token).status_code == 404


def test_private_activity_is_404_with_only_activity_read(host):
    private = host.add_activity(name="Only You", private=True)
    public = host.add_activity(name="Everyone")
    token = host.connect(scope="activity:read")["access_token"]
    assert host.api("GET", f"/activities/{private['id']}", token).status_code == 404
    assert host.api("GET", f"/activities/{public['id']}", token).status_code == 200
    token_all = host.connect(scope="activity:read_all")
    response = host.api("GET", f"/activities/{private['id']}", token_all["access_token"])
    assert response.status_code == 200
    assert response.get_json()["private"] is True


def test_put_without_activity_write_is_403(host):
    activity = host.add_activity(name="Morning run")
    token = host.connect(grant=["activity:read_all", "profile:read_all"])["access_token"]
    response = host.api("PUT", f"/activities/{activity['id']}", token, json={"description": "x"})
    assert response.status_code == 403
    assert host.client.get(f"/_sandbox/activities/{activity['id']}").get_json()["description"] is None


def test_put_ignores_fields_that_are_not_updatable(host):
    activity = host.add_activity(name="Morning run", distance=5000.0)
    token = host.connect()["access_token"]
    response = host.api(
        "PUT",
        f"/activities/{activity['id']}",
        token,
        json={"distance": 1.0, "description": "Backwards: 1 km"},
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["distance"] == 5000.0
    assert body["description"] == "Backwards: 1 km"
    assert host.api("GET", f"/activities/{activity['id']}", token).get_json()["distance"] == 5000.0


def test_name_change_fires_an_update_event_and_description_change_none(host, subscribed):
    activity = host.add_activity(name="Morning run")
    token = host.connect()["access_token"]
    path = f"/activities/{activity['id']}"
    assert host.api("PUT", path, token, json={"description": "a note"}).status_code == 200
    assert host.api("PUT", path, token, json={"name": "Backwards morning"}).status_code == 200
    events = [d["event"] for d in host.deliveries()]
    assert [(e["aspect_type"], e["updates"]) for e in events] == [
        ("create", {}),
        ("update", {"title": "Backwards morning"}),
    ]
    assert events[1]["object_id"] == activity["id"]
    assert [p["aspect_type"] for p in subscribed.posts] == ["create", "update"]


def test_streams_keyed_by_type(host):
    activity = host.add_activity(name="Run", streams=STREAMS)
    token = host.connect()["access_token"]
    response = host.api(
        "GET", f"/activities/{activity['id']}/streams?keys=velocity_smooth,cadence&key_by_type=true", token
    )
    assert response.status_code == 200
    body = response.get_json()
    assert isinstance(body, dict)
    assert {"velocity_smooth", "cadence"} <= set(body)
    for key, stream in body.items():
        assert stream["data"] == STREAMS[key]
        assert set(stream) >= {"data", "series_type", "original_size", "resolution"}
        assert stream["original_size"] == len(STREAMS[key])
        assert stream["series_type"] in ("distance", "time")
        assert stream["resolution"] in ("low", "medium", "high")


def test_streams_without_key_by_type_are_a_list(host):
    activity = host.add_activity(name="Run", streams=STREAMS)
    token = host.connect()["access_token"]
    body = host.api("GET", f"/activities/{activity['id']}/streams?keys=cadence", token).get_json()
    assert isinstance(body, list)
    by_type = {s["type"]: s for s in body}
    assert by_type["cadence"]["data"] == STREAMS["cadence"]
    assert set(by_type["cadence"]) >= {"type", "data", "series_type", "original_size", "resolution"}


def test_missing_streams_are_404(host):
    manual = host.add_activity(name="Treadmill", manual=True)
    token = host.connect()["access_token"]
    response = host.api("GET", f"/activities/{manual['id']}/streams?keys=time&key_by_type=true", token)
    assert response.status_code == 404


# --- rate limits --------------------------------------------------------------------------------------------


def _freeze_clock(host: Host) -> None:
    """Mid-way through a 15-minute window, so no window resets during the test."""
    frozen = int(time.time()) // 900 * 900 + 450
    host.state.clock = lambda: frozen


def test_every_api_response_carries_the_rate_limit_headers(host):
    _freeze_clock(host)
    token = host.connect()["access_token"]
    activity = host.add_activity(name="Run")
    responses = [
        host.api("GET", "/athlete", token),
        host.api("GET", f"/activities/{activity['id']}", token),
        host.api("GET", f"/activities/{activity['id']}/streams?keys=time", token),
        host.api("PUT", f"/activities/{activity['id']}", token, json={"description": "x"}),
        host.api("GET", "/athlete"),
        host.api("GET", "/activities/1", token),
        host.api("GET", f"/push_subscriptions?client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}"),
    ]
    assert [r.status_code for r in responses] == [200, 200, 404, 200, 401, 404, 200]
    for response in responses:
        for header in RATE_HEADERS:
            assert re.fullmatch(r"\d+,\d+", response.headers.get(header, "")), (header, response.headers)
    assert responses[0].headers["X-RateLimit-Limit"] == "200,2000"
    assert responses[0].headers["X-ReadRateLimit-Limit"] == "100,1000"
    assert responses[-1].headers["X-ReadRateLimit-Usage"] == f"{len(responses)},{len(responses)}"


def test_over_the_read_limit_is_429_and_usage_keeps_counting(host):
    _freeze_clock(host)
    token = host.connect()["access_token"]
    response = host.client.put("/_sandbox/limits", json={"read": [3, 1000]})
    assert response.status_code == 200
    for n in range(1, 4):
        ok = host.api("GET", "/athlete", token)
        assert ok.status_code == 200
        assert ok.headers["X-ReadRateLimit-Usage"] == f"{n},{n}"
        assert ok.headers["X-ReadRateLimit-Limit"] == "3,1000"
    over = host.api("GET", "/athlete", token)
    assert over.status_code == 429
    assert over.get_json()["message"] == "Rate Limit Exceeded"
    assert over.headers["X-ReadRateLimit-Usage"] == "4,4"
    again = host.api("GET", "/athlete", token)
    assert again.status_code == 429
    assert again.headers["X-ReadRateLimit-Usage"] == "5,5"
    assert again.headers["X-RateLimit-Usage"] == "5,5"


# --- push subscriptions -------------------------------------------------------------------------------------


def test_creating_a_subscription_runs_the_validation_get(host, receiver):
    response = host.subscribe(receiver.url, verify_token="vt-abc")
    assert response.status_code == 201
    assert isinstance(response.get_json()["id"], int)
    assert len(receiver.gets) == 1
    validation = receiver.gets[0]
    assert validation["hub.mode"] == "subscribe"
    assert validation["hub.verify_token"] == "vt-abc"
    assert validation["hub.challenge"]


def test_subscription_fails_when_the_callback_does_not_answer_200(host, receiver):
    receiver.get_status = 500
    response = host.subscribe(receiver.url)
    assert response.status_code == 400
    body = response.get_json()
    assert body["message"] == "Bad Request"
    assert body["errors"][0]["code"] == "GET to callback URL does not return 200"
    listed = host.api("GET", f"/push_subscriptions?client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}")
    assert listed.get_json() == []


def test_second_subscription_is_400_already_exists(host, subscribed):
    response = host.subscribe(subscribed.url)
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["code"] == "already exists"


def test_subscription_is_listed_and_deleted(host, subscribed):
    credentials = f"client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}"
    listed = host.api("GET", f"/push_subscriptions?{credentials}")
    assert listed.status_code == 200
    [subscription] = listed.get_json()
    assert subscription["callback_url"] == subscribed.url
    assert subscription["application_id"] == int(CLIENT_ID)
    assert (
        host.api("GET", f"/push_subscriptions?client_id={CLIENT_ID}&client_secret=wrong").status_code == 401
    )
    deleted = host.api("DELETE", f"/push_subscriptions/{subscription['id']}?{credentials}")
    assert deleted.status_code == 204
    assert host.api("GET", f"/push_subscriptions?{credentials}").get_json() == []
    # Now a new one can be created.
    assert host.subscribe(subscribed.url).status_code == 201


# --- webhook delivery ---------------------------------------------------------------------------------------


def test_new_activity_is_posted_to_the_callback_with_stravas_body(host, subscribed):
    subscription_id = host.api(
        "GET", f"/push_subscriptions?client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}"
    ).get_json()[0]["id"]
    before = int(time.time())
    activity = host.add_activity(name="Morning run")
    [delivery] = host.deliveries()
    assert delivery["status"] == "delivered"
    assert delivery["attempts"] == 1
    [event] = subscribed.posts
    assert set(event) == {
        "aspect_type",
        "event_time",
        "object_id",
        "object_type",
        "owner_id",
        "subscription_id",
        "updates",
    }
    assert event["aspect_type"] == "create"
    assert event["object_type"] == "activity"
    assert event["object_id"] == activity["id"]
    assert event["owner_id"] == ATHLETE
    assert event["subscription_id"] == subscription_id
    assert event["updates"] == {}
    assert isinstance(event["event_time"], int) and before <= event["event_time"] <= int(time.time())


def test_failing_callback_is_retried_up_to_three_attempts_in_all(host, subscribed):
    subscribed.post_statuses = [500, 500, 500, 500]
    host.add_activity(name="Morning run")
    [delivery] = host.deliveries()
    assert delivery["status"] == "failed"
    assert delivery["attempts"] == 3
    assert delivery["last_status"] == 500
    assert len(subscribed.posts) == 3


def test_callback_that_recovers_gets_the_event_on_a_retry(host, subscribed):
    subscribed.post_statuses = [500]
    host.add_activity(name="Morning run")
    [delivery] = host.deliveries()
    assert delivery["status"] == "delivered"
    assert delivery["attempts"] == 2
    assert len(subscribed.posts) == 2


# --- faults -------------------------------------------------------------------------------------------------


def test_http_fault_fails_exactly_the_next_matching_calls(host):
    activity = host.add_activity(name="Run")
    token = host.connect()["access_token"]
    host.add_fault(kind="http", path="/activities/", status=503, count=2)
    path = f"/activities/{activity['id']}"
    assert host.api("GET", "/athlete", token).status_code == 200  # does not match
    statuses = [host.api("GET", path, token).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_http_fault_can_add_latency(host):
    activity = host.add_activity(name="Run")
    token = host.connect()["access_token"]
    host.add_fault(kind="http", path=f"/activities/{activity['id']}$", latency_ms=200)
    started = time.monotonic()
    response = host.api("GET", f"/activities/{activity['id']}", token)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.2


def test_drop_event_fault_drops_the_next_event(host, subscribed):
    host.add_fault(kind="drop_event")
    dropped = host.add_activity(name="Lost")
    kept = host.add_activity(name="Found")
    deliveries = host.deliveries()
    assert [(d["event"]["object_id"], d["status"]) for d in deliveries] == [
        (dropped["id"], "dropped"),
        (kept["id"], "delivered"),
    ]
    assert [p["object_id"] for p in subscribed.posts] == [kept["id"]]


def test_duplicate_event_fault_delivers_it_twice(host, subscribed):
    host.add_fault(kind="duplicate_event")
    activity = host.add_activity(name="Twice")
    deliveries = host.deliveries()
    assert [d["status"] for d in deliveries] == ["delivered", "delivered"]
    assert [p["object_id"] for p in subscribed.posts] == [activity["id"], activity["id"]]
    assert subscribed.posts[0] == subscribed.posts[1]


# --- revocation ---------------------------------------------------------------------------------------------

DEAUTHORIZED = {"object_type": "athlete", "aspect_type": "update", "updates": {"authorized": "false"}}


def _assert_deauthorized(host: Host, receiver: Receiver, tokens: dict[str, Any]) -> None:
    assert host.api("GET", "/athlete", tokens["access_token"]).status_code == 401
    assert host.refresh(tokens["refresh_token"]).status_code == 400
    host.idle()
    [event] = receiver.posts
    assert {k: event[k] for k in DEAUTHORIZED} == DEAUTHORIZED
    assert event["object_id"] == event["owner_id"] == ATHLETE


def test_athlete_revoking_on_the_host_invalidates_tokens_and_sends_the_athlete_event(host, subscribed):
    tokens = host.connect()
    response = host.client.post(f"/_sandbox/athletes/{ATHLETE}/revoke")
    assert response.status_code == 200
    _assert_deauthorized(host, subscribed, tokens)


def test_oauth_revoke_with_basic_client_credentials(host, subscribed):
    tokens = host.connect()
    refused = host.client.post(
        "/oauth/revoke", auth=(CLIENT_ID, "wrong"), data={"token": tokens["access_token"]}
    )
    assert refused.status_code == 401
    assert host.api("GET", "/athlete", tokens["access_token"]).status_code == 200
    response = host.client.post(
        "/oauth/revoke",
        auth=(CLIENT_ID, CLIENT_SECRET),
        data={"token": tokens["access_token"], "token_type_hint": "access_token"},
    )
    assert response.status_code == 200
    _assert_deauthorized(host, subscribed, tokens)


def test_legacy_deauthorize_with_access_token(host, subscribed):
    tokens = host.connect()
    response = host.client.post("/oauth/deauthorize", data={"access_token": tokens["access_token"]})
    assert response.status_code == 200
    _assert_deauthorized(host, subscribed, tokens)


# --- pages --------------------------------------------------------------------------------------------------


def test_activity_page_shows_the_description_a_plugin_wrote(host):
    activity = host.add_activity(name="Morning run", description="Felt strong.")
    page = host.client.get(f"/activities/{activity['id']}")
    assert page.status_code == 200
    assert "Felt strong." in page.get_data(as_text=True)
    token = host.connect()["access_token"]
    note = "Felt strong.\n\nBackwards: 1.2 km <3"
    assert (
        host.api("PUT", f"/activities/{activity['id']}", token, json={"description": note}).status_code == 200
    )
    html = host.client.get(f"/activities/{activity['id']}").get_data(as_text=True)
    assert "Backwards: 1.2 km &lt;3" in html
    assert host.client.get("/activities/999999999").status_code == 404


def test_no_events_for_an_athlete_who_never_authorized_the_app(host, receiver):
    assert host.subscribe(receiver.url).status_code == 201
    host.add_athlete(4242)
    host.add_activity(athlete_id=4242, name="Not ours")
    host.idle()
    assert receiver.posts == []


def test_with_activity_read_only_a_private_activity_comes_and_goes_as_delete_and_create(host, receiver):
    assert host.subscribe(receiver.url).status_code == 201
    host.connect(scope="activity:read,activity:write")
    public = host.add_activity(name="Public run")
    hidden = host.add_activity(name="Secret run", private=True)
    for changes in ({"private": True}, {"private": False}):
        assert host.client.patch(f"/_sandbox/activities/{public['id']}", json=changes).status_code == 200
    host.idle()
    seen = [(e["object_id"], e["aspect_type"], e["updates"]) for e in receiver.posts]
    assert seen == [(public["id"], "create", {}), (public["id"], "delete", {}), (public["id"], "create", {})]
    assert all(e["object_id"] != hidden["id"] for e in receiver.posts)
