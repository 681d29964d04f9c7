"""What Backstride needs from a workout platform, independent of any one platform's URLs and JSON."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from plugin.domain import Activity, Streams


class HostError(Exception):
    """A host call failed; subclasses say how the caller should react."""


class HostUnavailable(HostError):
    """5xx, timeout or connection error after the client's own retries: try the job again later."""


class RateLimited(HostError):
    """The host said 429, or its headers show the window is spent: defer the job until retry_at."""

    def __init__(self, retry_at: datetime, window_spent: bool) -> None:
        super().__init__(f"rate limited until {retry_at.isoformat()}Z")
        self.retry_at = retry_at
        self.window_spent = window_spent


class Unauthorized(HostError):
    """401: the access token is not (or no longer) accepted."""


class Forbidden(HostError):
    """403: the token lacks a scope for this object (e.g. a private activity without activity:read_all)."""


class NotFound(HostError):
    """404: the object is gone (deleted meanwhile) or not visible."""


class BadResponse(HostError):
    """The host answered something we cannot use (4xx we did not expect, or a body that fails the schema)."""


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    refresh_token: str
    expires_at: int
    athlete_id: int | None = None


@dataclass(frozen=True)
class AthleteInfo:
    id: int
    weight_kg: float | None
    units: str | None  # "metric" | "imperial"


@dataclass(frozen=True)
class Subscription:
    id: int
    callback_url: str


class Host(Protocol):
    name: str

    def authorize_url(self, redirect_uri: str, scopes: list[str], state: str, force: bool = False) -> str: ...
    def exchange_code(self, code: str) -> TokenGrant: ...
    def refresh(self, refresh_token: str) -> TokenGrant: ...
    def revoke(self, access_token: str) -> None: ...
    def activity_url(self, activity_id: int) -> str: ...
    def fetch_athlete(self, access_token: str) -> AthleteInfo: ...
    def fetch_activity(self, access_token: str, activity_id: int) -> Activity: ...
    def fetch_streams(self, access_token: str, activity_id: int) -> Streams | None: ...
    def update_description(self, access_token: str, activity_id: int, description: str) -> None: ...
    def create_subscription(self, callback_url: str, verify_token: str) -> Subscription: ...
    def show_subscriptions(self) -> list[Subscription]: ...
    def delete_subscription(self, subscription_id: int) -> None: ...
