"""The sandbox host's world: athletes, grants and tokens, activities, the push subscription,
rate-limit windows and injected faults. No Flask here; plugin/sandbox/app.py is a thin HTTP layer over it.

It behaves as ../shared/STRAVA.md describes Strava: rotating refresh tokens, a new access token only when the
current one expires within an hour, 15-minute and daily windows reset at :00/:15/:30/:45 and midnight UTC,
requests beyond the short limit still counting toward the daily one.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from plugin.sandbox.seed import SEED_FILE

ALL_SCOPES = (
    "read",
    "read_all",
    "profile:read_all",
    "profile:write",
    "activity:read",
    "activity:read_all",
    "activity:write",
)
# The fields of UpdatableActivity (Strava's PUT /activities/{id}); anything else in the body is ignored.
UPDATABLE_FIELDS = (
    "name",
    "description",
    "sport_type",
    "type",
    "gear_id",
    "commute",
    "trainer",
    "hide_from_home",
)


class SandboxError(Exception):
    """An API error with Strava's status and body."""

    def __init__(
        self, status: int, message: str, resource: str = "", fieldname: str = "", code: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message}
        if resource or fieldname or code:
            self.body["errors"] = [{"resource": resource, "field": fieldname, "code": code}]


def not_found() -> SandboxError:
    return SandboxError(404, "Record Not Found", "resource", "path", "invalid")


def auth_error(code: str = "invalid") -> SandboxError:
    return SandboxError(401, "Authorization Error", "Athlete", "access_token", code)


@dataclass
class SandboxConfig:
    client_id: str = "1234"
    client_secret: str = "sandbox-client-secret"  # noqa: S105 - the sandbox's own made-up app
    app_name: str = "Backstride"
    token_lifetime_s: int = 21600
    refresh_window_s: int = 3600  # a new access token only when the current one expires within this
    overall_limits: tuple[int, int] = (200, 2000)
    read_limits: tuple[int, int] = (100, 1000)
    delivery_attempts: int = 3
    delivery_retry_s: float = 1.0
    validation_timeout_s: float = 2.0
    seed: bool = True


@dataclass
class Grant:
    athlete_id: int
    scopes: frozenset[str]


@dataclass
class Fault:
    """Injected trouble for matching requests (method, path regex) or webhook events."""

    kind: str  # http | drop_event | duplicate_event
    path: str = ".*"
    method: str = "*"
    status: int | None = None
    latency_ms: int = 0
    timeout_s: float = 0.0
    spent: bool = False  # for 429: headers that say the window is spent
    count: int = 1
    id: int = 0

    def matches(self, method: str, path: str) -> bool:
        return self.count > 0 and self.method in ("*", method) and re.search(self.path, path) is not None


@dataclass
class Subscription:
    id: int
    callback_url: str
    verify_token: str
    created_at: str


@dataclass
class Delivery:
    event: dict[str, Any]
    attempts: int = 0
    status: str = "pending"  # pending | delivered | failed | dropped
    last_status: int | None = None


@dataclass
class RateWindow:
    short_key: int = -1
    day_key: str = ""
    overall: list[int] = field(default_factory=lambda: [0, 0])
    read: list[int] = field(default_factory=lambda: [0, 0])


class SandboxState:
    def __init__(self, config: SandboxConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()
        self._ids = itertools.count(10_000_001)
        self.reset()

    # --- seed ----------------------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.athletes: dict[int, dict[str, Any]] = {}
            self.activities: dict[int, dict[str, Any]] = {}
            self.streams: dict[int, dict[str, list]] = {}
            self.grants: dict[int, Grant] = {}  # athlete id -> what they authorized for the app
            self.codes: dict[str, tuple[Grant, str, float]] = {}  # code -> grant, redirect_uri, expiry
            self.access: dict[str, tuple[Grant, int]] = {}  # token -> grant, expires_at
            self.refresh: dict[str, Grant] = {}
            self.subscription: Subscription | None = None
            self.faults: list[Fault] = []
            self.deliveries: list[Delivery] = []
            self.calls: list[dict[str, Any]] = []
            self.window = RateWindow()
            self.seed_activities: dict[str, dict[str, Any]] = {}
            self.demo_athlete_id: int | None = None
            if self.config.seed:
                self._load_seed()

    def _load_seed(self) -> None:
        seed = json.loads(SEED_FILE.read_text())
        athlete = dict(seed["athlete"])
        self.athletes[athlete["id"]] = athlete
        self.demo_athlete_id = athlete["id"]
        self.attribution = seed.get("attribution", [])
        for item in seed["activities"]:
            self.seed_activities[item["key"]] = item

    # --- athletes and OAuth --------------------------------------------------------------------------

    def add_athlete(self, athlete: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            athlete = {
                "firstname": "Sandbox",
                "lastname": "Athlete",
                "weight": None,
                "measurement_preference": "meters",
                **athlete,
            }
            self.athletes[int(athlete["id"])] = athlete
            return athlete

    def check_client(
        self, client_id: str | None, client_secret: str | None = None, *, secret: bool = True
    ) -> None:
        if client_id != self.config.client_id:
            raise SandboxError(400, "Bad Request", "Application", "client_id", "invalid")
        if secret and not secrets.compare_digest(client_secret or "", self.config.client_secret):
            raise SandboxError(401, "Bad Request", "Application", "client_secret", "invalid")

    def existing_grant(self, athlete_id: int) -> Grant | None:
        with self.lock:
            return self.grants.get(athlete_id)

    def issue_code(self, athlete_id: int, scopes: frozenset[str], redirect_uri: str) -> str:
        with self.lock:
            if athlete_id not in self.athletes:
                raise SandboxError(404, "Record Not Found", "Athlete", "id", "invalid")
            grant = Grant(athlete_id, scopes)
            # A new authorization replaces the old one: its tokens, refresh tokens included, stop working.
            self.revoke_athlete(athlete_id)
            self.grants[athlete_id] = grant
            code = secrets.token_hex(20)
            self.codes[code] = (grant, redirect_uri, self.clock() + 600)
            return code

    def exchange_code(self, code: str) -> dict[str, Any]:
        with self.lock:
            entry = self.codes.pop(code, None)
            if entry is None or entry[2] < self.clock():
                raise SandboxError(400, "Bad Request", "AuthorizationCode", "code", "invalid")
            grant = entry[0]
            body = self._new_tokens(grant)
            body["athlete"] = self.summary_athlete(grant.athlete_id)
            return body

    def refresh_tokens(self, refresh_token: str) -> dict[str, Any]:
        with self.lock:
            grant = self.refresh.get(refresh_token)
            if grant is None:
                raise SandboxError(400, "Bad Request", "RefreshToken", "refresh_token", "invalid")
            current = [(t, exp) for t, (g, exp) in self.access.items() if g is grant]
            now = self.clock()
            if current and max(exp for _, exp in current) - now > self.config.refresh_window_s:
                token, expires_at = max(current, key=lambda item: item[1])
                return {
                    "token_type": "Bearer",
                    "access_token": token,
                    "expires_at": expires_at,
                    "expires_in": int(expires_at - now),
                    "refresh_token": refresh_token,
                }
            # Rotate: the old refresh token is invalid at once.
            del self.refresh[refresh_token]
            return self._new_tokens(grant)

    def _new_tokens(self, grant: Grant) -> dict[str, Any]:
        access, refresh = secrets.token_hex(20), secrets.token_hex(20)
        expires_at = int(self.clock()) + self.config.token_lifetime_s
        self.access[access] = (grant, expires_at)
        self.refresh[refresh] = grant
        return {
            "token_type": "Bearer",
            "access_token": access,
            "expires_at": expires_at,
            "expires_in": self.config.token_lifetime_s,
            "refresh_token": refresh,
        }

    def revoke_token(self, token: str) -> int | None:
        """Revoke the whole grant a token belongs to; returns the athlete id, or None if unknown."""
        with self.lock:
            grant = (self.access.get(token) or (None,))[0] or self.refresh.get(token)
            if grant is None:
                return None
            self.revoke_athlete(grant.athlete_id)
            return grant.athlete_id

    def revoke_athlete(self, athlete_id: int) -> bool:
        with self.lock:
            had = athlete_id in self.grants
            self.grants.pop(athlete_id, None)
            self.access = {t: v for t, v in self.access.items() if v[0].athlete_id != athlete_id}
            self.refresh = {t: g for t, g in self.refresh.items() if g.athlete_id != athlete_id}
            self.codes = {c: v for c, v in self.codes.items() if v[0].athlete_id != athlete_id}
            return had

    def authenticate(self, authorization: str | None) -> Grant:
        """Bearer header only (Strava announced header-only auth)."""
        if not authorization or not authorization.startswith("Bearer "):
            raise auth_error("missing")
        with self.lock:
            entry = self.access.get(authorization[len("Bearer ") :].strip())
            if entry is None or entry[1] <= self.clock():
                raise auth_error()
            grant = entry[0]
            if self.grants.get(grant.athlete_id) is not grant:
                raise auth_error()
            return grant

    # --- athletes' data --------------------------------------------------------------------------------

    def summary_athlete(self, athlete_id: int) -> dict[str, Any]:
        athlete = self.athletes[athlete_id]
        keys = (
            "id",
            "username",
            "firstname",
            "lastname",
            "city",
            "country",
            "sex",
            "premium",
            "created_at",
            "updated_at",
        )
        return {"resource_state": 2, **{k: athlete[k] for k in keys if k in athlete}}

    def detailed_athlete(self, grant: Grant) -> dict[str, Any]:
        with self.lock:
            athlete = dict(self.athletes[grant.athlete_id])
            if "profile:read_all" not in grant.scopes:
                return self.summary_athlete(grant.athlete_id)
            return {"resource_state": 3, **athlete}

    def create_activity(
        self, athlete_id: int, fields: dict[str, Any], streams: dict[str, list] | None
    ) -> dict:
        with self.lock:
            if athlete_id not in self.athletes:
                raise SandboxError(404, "Record Not Found", "Athlete", "id", "invalid")
            activity_id = next(self._ids)
            activity = {
                "id": activity_id,
                "resource_state": 3,
                "athlete": {"id": athlete_id, "resource_state": 1},
                "name": "Activity",
                "description": None,
                "sport_type": "Run",
                "distance": 0.0,
                "moving_time": 0,
                "elapsed_time": 0,
                "total_elevation_gain": 0.0,
                "trainer": False,
                "manual": False,
                "private": False,
                "commute": False,
                "laps": [],
                **copy.deepcopy(fields),
            }
            activity["type"] = activity.get("type") or activity["sport_type"]
            activity.setdefault("start_date", _iso(self.clock()))
            activity.setdefault("start_date_local", activity["start_date"])
            # Strava's DetailedActivity always carries these; derive them when an upload names none.
            moving = activity["moving_time"]
            activity.setdefault("average_speed", round(activity["distance"] / moving, 3) if moving else 0.0)
            activity.setdefault("timezone", "(GMT+00:00) UTC")
            activity.setdefault("calories", 0.0)
            for lap in activity["laps"]:
                lap.setdefault("activity", {"id": activity_id, "resource_state": 1})
                lap.setdefault("athlete", {"id": athlete_id, "resource_state": 1})
            self.activities[activity_id] = activity
            if streams:
                self.streams[activity_id] = copy.deepcopy(streams)
            return copy.deepcopy(activity)

    def owned_activity(self, grant: Grant, activity_id: int, write: bool = False) -> dict[str, Any]:
        activity = self.activities.get(activity_id)
        if activity is None or activity["athlete"]["id"] != grant.athlete_id:
            raise not_found()
        readable = {"activity:read", "activity:read_all"} & grant.scopes
        if not readable or (activity["private"] and "activity:read_all" not in grant.scopes):
            # Strava hides what the token may not read.
            raise not_found()
        if write and "activity:write" not in grant.scopes:
            raise SandboxError(
                403, "Authorization Error", "Athlete", "access_token", "activity:write_permission"
            )
        return activity

    def get_activity(self, grant: Grant, activity_id: int) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.owned_activity(grant, activity_id))

    def update_activity(
        self, activity_id: int, changes: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Apply changes; returns the activity and the webhook `updates` they cause (none for description)."""
        with self.lock:
            activity = self.activities.get(activity_id)
            if activity is None:
                raise not_found()
            updates: dict[str, str] = {}
            for key, value in changes.items():
                if key not in (*UPDATABLE_FIELDS, "private") or activity.get(key) == value:
                    continue
                activity[key] = value
                if key == "name":
                    updates["title"] = str(value)
                elif key in ("sport_type", "type"):
                    activity["sport_type"] = activity["type"] = value
                    updates["type"] = str(value)
                elif key == "private":
                    updates["private"] = "true" if value else "false"
            return copy.deepcopy(activity), updates

    def delete_activity(self, activity_id: int) -> dict[str, Any]:
        with self.lock:
            activity = self.activities.pop(activity_id, None)
            self.streams.pop(activity_id, None)
            if activity is None:
                raise not_found()
            return activity

    def get_streams(self, grant: Grant, activity_id: int, keys: list[str], key_by_type: bool) -> Any:
        with self.lock:
            self.owned_activity(grant, activity_id)
            streams = self.streams.get(activity_id)
            if not streams:
                raise not_found()
            # Strava always includes the series the others are indexed by.
            wanted = [k for k in dict.fromkeys([*keys, "distance", "time"]) if k in streams]
            items = {
                key: {
                    "data": list(streams[key]),
                    "series_type": "distance" if "distance" in streams else "time",
                    "original_size": len(streams[key]),
                    "resolution": "high",
                }
                for key in wanted
            }
            if key_by_type:
                return items
            return [{"type": key, **value} for key, value in items.items()]

    def activity_event_seen_by_app(
        self, owner_id: int, activity_id: int, aspect_type: str, updates: dict[str, str]
    ) -> tuple[str, dict[str, str]] | None:
        """The event the app receives for a change, or None: as STRAVA.md describes, events come only for
        athletes who authorized the app, and with activity:read alone a private activity is invisible: made
        private it arrives as a delete, made public again as a create."""
        with self.lock:
            grant = self.grants.get(owner_id)
            if grant is None:
                return None
            if "activity:read_all" in grant.scopes:
                return aspect_type, updates
            if updates.get("private") == "true":
                return "delete", {}
            if updates.get("private") == "false":
                return "create", {}
            activity = self.activities.get(activity_id)
            if activity is not None and activity.get("private"):
                return None
            return aspect_type, updates

    # --- subscription --------------------------------------------------------------------------------

    def new_subscription(self, callback_url: str, verify_token: str) -> Subscription:
        with self.lock:
            if self.subscription is not None:
                raise SandboxError(400, "Bad Request", "PushSubscription", "", "already exists")
            self.subscription = Subscription(next(self._ids), callback_url, verify_token, _iso(self.clock()))
            return self.subscription

    def delete_subscription(self, subscription_id: int) -> None:
        with self.lock:
            if self.subscription is None or self.subscription.id != subscription_id:
                raise not_found()
            self.subscription = None

    # --- rate limits ---------------------------------------------------------------------------------

    def count_request(self, read: bool) -> tuple[dict[str, str], bool]:
        """Count one API request; returns the rate-limit headers and whether it is over a limit."""
        with self.lock:
            now = self.clock()
            short_key = int(now // 900)
            day_key = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
            w = self.window
            if w.day_key != day_key:
                w.day_key, w.overall[1], w.read[1] = day_key, 0, 0
            if w.short_key != short_key:
                w.short_key, w.overall[0], w.read[0] = short_key, 0, 0
            over = (
                w.overall[0] >= self.config.overall_limits[0]
                or w.overall[1] >= self.config.overall_limits[1]
                or (
                    read
                    and (w.read[0] >= self.config.read_limits[0] or w.read[1] >= self.config.read_limits[1])
                )
            )
            # Every request counts, even one refused for being over the short limit.
            w.overall[0] += 1
            w.overall[1] += 1
            if read:
                w.read[0] += 1
                w.read[1] += 1
            return self.rate_headers(), over

    def rate_headers(self, spent: bool = False) -> dict[str, str]:
        w, c = self.window, self.config
        overall = c.overall_limits if spent else w.overall
        read = c.read_limits if spent else w.read
        return {
            "X-RateLimit-Limit": f"{c.overall_limits[0]},{c.overall_limits[1]}",
            "X-RateLimit-Usage": f"{overall[0]},{overall[1]}",
            "X-ReadRateLimit-Limit": f"{c.read_limits[0]},{c.read_limits[1]}",
            "X-ReadRateLimit-Usage": f"{read[0]},{read[1]}",
        }

    def set_limits(self, overall: tuple[int, int] | None, read: tuple[int, int] | None, reset: bool) -> None:
        with self.lock:
            if overall:
                self.config.overall_limits = (int(overall[0]), int(overall[1]))
            if read:
                self.config.read_limits = (int(read[0]), int(read[1]))
            if reset:
                self.window = RateWindow()

    # --- faults --------------------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> Fault:
        with self.lock:
            fault.id = next(self._ids)
            self.faults.append(fault)
            return fault

    def take_fault(self, kind: str, method: str = "*", path: str = "") -> Fault | None:
        """The first live fault of this kind matching the request; uses up one of its count."""
        with self.lock:
            for fault in self.faults:
                if fault.kind == kind and fault.matches(method, path):
                    fault.count -= 1
                    return copy.copy(fault)
            return None

    def record_call(self, method: str, path: str, status: int) -> None:
        with self.lock:
            self.calls.append({"method": method, "path": path, "status": status, "at": self.clock()})


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
