"""A stateful Strava stand-in on top of `responses`, for unit and integration tests.

It answers the endpoints Backstride uses the way STRAVA.md describes them, keeps activities, tokens and the
subscription, records every call, and can be told to fail. The athletes are made up.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import responses

OAUTH = "https://strava.test/oauth"
API = "https://strava.test/api/v3"
CLIENT_ID = "4711"
CLIENT_SECRET = "client-secret-for-tests"


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    remaining: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    exception: Exception | None = None


class FakeStrava:
    def __init__(self, mock: responses.RequestsMock) -> None:
        self.mock = mock
        self.calls: list[tuple[str, str]] = []
        self.activities: dict[int, dict[str, Any]] = {}
        self.streams: dict[int, dict[str, Any]] = {}
        self.athletes: dict[int, dict[str, Any]] = {}
        self.access: dict[str, tuple[int, int, frozenset[str]]] = {}  # token -> (athlete, expires_at, scopes)
        self.refresh_tokens: dict[str, int] = {}
        self.codes: dict[str, tuple[int, frozenset[str]]] = {}
        self.subscriptions: dict[int, str] = {}
        self.faults: list[Fault] = []
        self.rate_usage = [0, 0]  # 15-min, daily (non-upload)
        self.rate_limit = (100, 1000)  # the read limit: 15-min, daily
        self.overall_rate_limit = (200, 2000)
        self._ids = itertools.count(1000)
        self._install()

    # --- set-up helpers -----------------------------------------------------------------------------

    def add_athlete(self, athlete_id: int, weight: float | None = 62.0, units: str = "meters") -> None:
        self.athletes[athlete_id] = {
            "id": athlete_id,
            "firstname": "Test",
            "lastname": "Runner",
            "weight": weight,
            "measurement_preference": units,
            "resource_state": 3,
        }

    def issue_code(
        self, athlete_id: int, scopes: str = "read,activity:read_all,activity:write,profile:read_all"
    ):
        code = f"code-{next(self._ids)}"
        self.codes[code] = (athlete_id, frozenset(scopes.split(",")))
        return code

    def grant(
        self,
        athlete_id: int,
        expires_in: int = 21600,
        scopes: str = "read,activity:read_all,activity:write,profile:read_all",
    ) -> dict[str, Any]:
        access, refresh = f"access-{next(self._ids)}", f"refresh-{next(self._ids)}"
        expires_at = int(time.time()) + expires_in
        self.access[access] = (athlete_id, expires_at, frozenset(scopes.split(",")))
        self.refresh_tokens[refresh] = athlete_id
        return {
            "token_type": "Bearer",
            "access_token": access,
            "refresh_token": refresh,
            "expires_at": expires_at,
            "expires_in": expires_in,
            "athlete": {"id": athlete_id, "resource_state": 2},
        }

    def revoke_access(self, athlete_id: int) -> None:
        """The athlete revoked the app on the host: every token of theirs is refused from now on."""
        self.access = {token: entry for token, entry in self.access.items() if entry[0] != athlete_id}
        self.refresh_tokens = {token: who for token, who in self.refresh_tokens.items() if who != athlete_id}

    def add_activity(
        self,
        athlete_id: int,
        activity_id: int,
        *,
        name: str = "Morning Run",
        description: str | None = None,
        sport_type: str = "Run",
        distance: float = 5000.0,
        moving_time: float = 1500.0,
        average_cadence: float | None = 84.0,
        manual: bool = False,
        private: bool = False,
        laps: list[dict] | None = None,
        streams: dict[str, Any] | None = None,
    ) -> None:
        self.activities[activity_id] = {
            "id": activity_id,
            "resource_state": 3,
            "athlete": {"id": athlete_id, "resource_state": 1},
            "name": name,
            "description": description,
            "sport_type": sport_type,
            "type": sport_type,
            "distance": distance,
            "moving_time": moving_time,
            "elapsed_time": moving_time + 30,
            "average_speed": distance / moving_time if moving_time else 0.0,
            "average_cadence": average_cadence,
            "manual": manual,
            "private": private,
            "trainer": False,
            "calories": 350.0,
            "laps": laps or [],
        }
        if streams is not None:
            self.streams[activity_id] = streams

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
        exception: Exception | None = None,
    ) -> None:
        """The next `times` calls matching method and path (a regex) fail with `status` (or raise)."""
        self.faults.append(Fault(method, re.compile(path), status, times, headers or {}, body, exception))

    def calls_to(self, method: str, pattern: str = "") -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] == method and re.search(pattern, c[1])]

    def description(self, activity_id: int) -> str | None:
        return self.activities[activity_id]["description"]

    # --- the endpoints ------------------------------------------------------------------------------

    def _install(self) -> None:
        add = self.mock.add_callback
        add(responses.POST, f"{OAUTH}/token", callback=self._wrap(self._token))
        add(responses.POST, f"{OAUTH}/revoke", callback=self._wrap(self._revoke))
        add(responses.POST, f"{OAUTH}/deauthorize", callback=self._wrap(self._revoke))
        add(responses.GET, f"{API}/athlete", callback=self._wrap(self._athlete))
        add(
            responses.GET,
            re.compile(rf"{re.escape(API)}/activities/\d+/streams.*"),
            callback=self._wrap(self._get_streams),
        )
        add(
            responses.GET,
            re.compile(rf"{re.escape(API)}/activities/\d+$"),
            callback=self._wrap(self._get_activity),
        )
        add(
            responses.PUT,
            re.compile(rf"{re.escape(API)}/activities/\d+$"),
            callback=self._wrap(self._put_activity),
        )
        add(responses.POST, f"{API}/push_subscriptions", callback=self._wrap(self._create_subscription))
        add(
            responses.GET,
            re.compile(rf"{re.escape(API)}/push_subscriptions.*"),
            callback=self._wrap(self._list_subscriptions),
        )
        add(
            responses.DELETE,
            re.compile(rf"{re.escape(API)}/push_subscriptions/\d+.*"),
            callback=self._wrap(self._delete_subscription),
        )

    def _wrap(self, handler):
        def callback(request):
            path = urlsplit(request.url).path
            self.calls.append((request.method, path))
            for fault in self.faults:
                if fault.remaining > 0 and fault.method == request.method and fault.path.search(path):
                    fault.remaining -= 1
                    if fault.exception is not None:
                        raise fault.exception
                    return (
                        fault.status,
                        {**self._rate_headers(), **fault.headers},
                        json.dumps(fault.body if fault.body is not None else {"message": "Fault"}),
                    )
            status, body = handler(request, path)
            headers = self._rate_headers() if path.startswith("/api/") else {}
            return status, headers, json.dumps(body) if body is not None else ""

        return callback

    def _rate_headers(self) -> dict[str, str]:
        self.rate_usage = [self.rate_usage[0] + 1, self.rate_usage[1] + 1]
        limits = f"{self.rate_limit[0]},{self.rate_limit[1]}"
        usage = f"{self.rate_usage[0]},{self.rate_usage[1]}"
        return {
            "X-RateLimit-Limit": f"{self.overall_rate_limit[0]},{self.overall_rate_limit[1]}",
            "X-RateLimit-Usage": usage,
            "X-ReadRateLimit-Limit": limits,
            "X-ReadRateLimit-Usage": usage,
        }

    def _bearer(self, request) -> tuple[int, frozenset[str]] | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        entry = self.access.get(header[len("Bearer ") :])
        if entry is None or entry[1] < time.time():
            return None
        return entry[0], entry[2]

    @staticmethod
    def _form(request) -> dict[str, str]:
        body = request.body or ""
        if isinstance(body, bytes):
            body = body.decode()
        return {k: v[0] for k, v in parse_qs(body).items()}

    def _token(self, request, path):
        form = self._form(request)
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return 401, {
                "message": "Bad Request",
                "errors": [{"resource": "Application", "field": "client_id", "code": "invalid"}],
            }
        if form.get("grant_type") == "authorization_code":
            entry = self.codes.pop(form.get("code", ""), None)
            if entry is None:
                return 400, {
                    "message": "Bad Request",
                    "errors": [{"resource": "AuthorizationCode", "field": "code", "code": "invalid"}],
                }
            athlete_id, scopes = entry
            return 200, self.grant(athlete_id, scopes=",".join(sorted(scopes)))
        if form.get("grant_type") == "refresh_token":
            athlete_id = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
            if athlete_id is None:
                return 400, {
                    "message": "Bad Request",
                    "errors": [{"resource": "RefreshToken", "field": "refresh_token", "code": "invalid"}],
                }
            grant = self.grant(athlete_id)
            grant.pop("athlete")
            return 200, grant
        return 400, {"message": "Bad Request"}

    def _revoke(self, request, path):
        return 200, {}

    def _athlete(self, request, path):
        auth = self._bearer(request)
        if auth is None:
            return 401, {"message": "Authorization Error"}
        return 200, self.athletes.get(auth[0], {"id": auth[0]})

    def _activity_for(self, request, path):
        auth = self._bearer(request)
        if auth is None:
            return None, (401, {"message": "Authorization Error"})
        activity_id = int(re.search(r"/activities/(\d+)", path).group(1))
        activity = self.activities.get(activity_id)
        if activity is None or activity["athlete"]["id"] != auth[0]:
            return None, (404, {"message": "Record Not Found"})
        if activity["private"] and "activity:read_all" not in auth[1]:
            return None, (404, {"message": "Record Not Found"})
        return (activity, auth[1]), None

    def _get_activity(self, request, path):
        found, error = self._activity_for(request, path)
        return error or (200, found[0])

    def _get_streams(self, request, path):
        found, error = self._activity_for(request, path)
        if error:
            return error
        streams = self.streams.get(found[0]["id"])
        if streams is None:
            return 404, {"message": "Record Not Found"}
        return 200, streams

    def _put_activity(self, request, path):
        found, error = self._activity_for(request, path)
        if error:
            return error
        activity, scopes = found
        if "activity:write" not in scopes:
            return 403, {
                "message": "Authorization Error",
                "errors": [
                    {"resource": "Athlete", "field": "access_token", "code": "activity:write_permission"}
                ],
            }
        body = json.loads(request.body)
        for key in ("name", "description", "sport_type", "type", "gear_id", "commute", "trainer"):
            if key in body:
                activity[key] = body[key]
        return 200, activity

    def _create_subscription(self, request, path):
        form = self._form(request)
        if self.subscriptions:
            return 400, {
                "message": "Bad Request",
                "errors": [{"resource": "PushSubscription", "field": "", "code": "already exists"}],
            }
        subscription_id = next(self._ids)
        self.subscriptions[subscription_id] = form["callback_url"]
        return 201, {"id": subscription_id}

    def _list_subscriptions(self, request, path):
        return 200, [
            {"id": sid, "callback_url": url, "resource_state": 2} for sid, url in self.subscriptions.items()
        ]

    def _delete_subscription(self, request, path):
        subscription_id = int(path.rsplit("/", 1)[1])
        if self.subscriptions.pop(subscription_id, None) is None:
            return 404, {"message": "Record Not Found"}
        return 204, None
