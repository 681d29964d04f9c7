"""StravaClient: every call Backstride makes to Strava goes through here (one requests.Session)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from marshmallow import ValidationError

from plugin.domain import Activity, Streams
from plugin.hosts.base import (
    AthleteInfo,
    BadResponse,
    Forbidden,
    HostUnavailable,
    NotFound,
    RateLimited,
    Subscription,
    TokenGrant,
    Unauthorized,
)
from plugin.hosts.strava.ratelimit import SHORT_BACKOFF, RateLimitStatus, read_rate_limits, retry_after_429
from plugin.hosts.strava.schemas import (
    STREAM_KEYS,
    ActivitySchema,
    AthleteSchema,
    SubscriptionSchema,
    TokenResponseSchema,
    load_streams,
)

log = logging.getLogger(__name__)

# Statuses of the revoke endpoint that mean "this host does not have it": fall back to the legacy one.
_REVOKE_MISSING = (404, 405, 410, 501)


class StravaClient:
    """The Strava implementation of hosts.base.Host.

    Retries 5xx and connection errors with exponential backoff and jitter (idempotent calls only), turns
    429 and spent windows into RateLimited, and reports every rate-limit header it sees to `on_rate_limit`.
    Tokens travel only in the Authorization header.
    """

    name = "strava"

    def __init__(
        self,
        oauth_url: str,
        api_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: tuple[float, float] = (5.0, 20.0),
        attempts: int = 3,
        backoff_base_s: float = 0.5,
        on_rate_limit: Callable[[RateLimitStatus, datetime], None] | None = None,
        short_backoff: timedelta = SHORT_BACKOFF,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC).replace(tzinfo=None),
    ) -> None:
        self.oauth_url = oauth_url.rstrip("/")
        self.api_url = api_url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.short_backoff = short_backoff
        self.backoff_base_s = backoff_base_s
        self.on_rate_limit = on_rate_limit
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", "Backstride/0.1 (+activity annotation plugin)")
        self.sleep = sleep
        self._clock = clock

    # --- OAuth --------------------------------------------------------------------------------------

    def authorize_url(self, redirect_uri: str, scopes: list[str], state: str, force: bool = False) -> str:
        query = urlencode(
            {
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "response_type": "code",
                "approval_prompt": "force" if force else "auto",
                "scope": ",".join(scopes),
                "state": state,
            },
            safe=",:/",
        )
        return f"{self.oauth_url}/authorize?{query}"

    def exchange_code(self, code: str) -> TokenGrant:
        # Not retried: a code is single-use, a second try after a lost answer would fail anyway.
        response = self._call(
            "POST",
            f"{self.oauth_url}/token",
            data={
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "code": code,
                "grant_type": "authorization_code",
            },
            idempotent=False,
        )
        return self._token_grant(response)

    def refresh(self, refresh_token: str) -> TokenGrant:
        try:
            response = self._call(
                "POST",
                f"{self.oauth_url}/token",
                data={
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "refresh_token": refresh_token,
                    "grant_type": "refresh_token",
                },
                idempotent=False,
            )
        except BadResponse as exc:
            # Strava answers 400 for a refresh token that was revoked or already rotated away.
            raise Unauthorized(f"refresh refused: {exc}") from exc
        return self._token_grant(response)

    def revoke(self, access_token: str) -> None:
        """The revoke endpoint (HTTP Basic client credentials), falling back to the legacy deauthorize."""
        response = self.session.post(
            f"{self.oauth_url}/revoke",
            data={"token": access_token, "token_type_hint": "access_token"},
            auth=(self.client_id, self.client_secret),
            timeout=self.timeout,
        )
        if response.status_code in _REVOKE_MISSING:
            self._call(
                "POST", f"{self.oauth_url}/deauthorize", data={"access_token": access_token}, idempotent=False
            )
            return
        self._raise_for_status(response, "POST /oauth/revoke")

    def activity_url(self, activity_id: int) -> str:
        """The activity's page on the host's site, for the "View on Strava" link (the OAuth URL's origin)."""
        site = self.oauth_url.removesuffix("/oauth")
        return f"{site}/activities/{int(activity_id)}"

    # --- API ----------------------------------------------------------------------------------------

    def fetch_athlete(self, access_token: str) -> AthleteInfo:
        data = self._load(AthleteSchema(), self._call("GET", f"{self.api_url}/athlete", token=access_token))
        preference = data["measurement_preference"]
        units = {"feet": "imperial", "meters": "metric"}.get(preference or "")
        weight = data["weight"] if data["weight"] and data["weight"] > 0 else None
        return AthleteInfo(id=data["id"], weight_kg=weight, units=units)

    def fetch_activity(self, access_token: str, activity_id: int) -> Activity:
        response = self._call("GET", f"{self.api_url}/activities/{activity_id}", token=access_token)
        return self._load(ActivitySchema(), response)

    def fetch_streams(self, access_token: str, activity_id: int) -> Streams | None:
        try:
            response = self._call(
                "GET",
                f"{self.api_url}/activities/{activity_id}/streams",
                token=access_token,
                params={"keys": ",".join(STREAM_KEYS), "key_by_type": "true"},
            )
        except NotFound:
            return None  # manual activities have no streams
        try:
            return load_streams(response.json())
        except (ValueError, ValidationError) as exc:
            raise BadResponse(f"streams of activity {activity_id}: {exc}") from exc

    def update_description(self, access_token: str, activity_id: int, description: str) -> None:
        self._call(
            "PUT",
            f"{self.api_url}/activities/{activity_id}",
            token=access_token,
            json={"description": description},
        )

    # --- push subscription --------------------------------------------------------------------------

    def create_subscription(self, callback_url: str, verify_token: str) -> Subscription:
        response = self._call(
            "POST",
            f"{self.api_url}/push_subscriptions",
            data={
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "callback_url": callback_url,
                "verify_token": verify_token,
            },
            idempotent=False,
        )
        data = self._load(SubscriptionSchema(), response)
        return Subscription(id=data["id"], callback_url=data["callback_url"] or callback_url)

    def show_subscriptions(self) -> list[Subscription]:
        response = self._call(
            "GET",
            f"{self.api_url}/push_subscriptions",
            params={"client_id": self.client_id, "client_secret": self.client_secret},
        )
        try:
            items = SubscriptionSchema(many=True).load(response.json())
        except (ValueError, ValidationError) as exc:
            raise BadResponse(f"push_subscriptions: {exc}") from exc
        return [Subscription(id=item["id"], callback_url=item["callback_url"]) for item in items]

    def delete_subscription(self, subscription_id: int) -> None:
        self._call(
            "DELETE",
            f"{self.api_url}/push_subscriptions/{subscription_id}",
            params={"client_id": self.client_id, "client_secret": self.client_secret},
        )

    # --- plumbing -----------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        url: str,
        *,
        token: str | None = None,
        idempotent: bool = True,
        **kwargs: Any,
    ) -> requests.Response:
        what = f"{method} {self._path(url)}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        attempts = self.attempts if idempotent else 1
        for attempt in range(1, attempts + 1):
            try:
                response = self.session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == attempts:
                    # Not chained: requests puts the full URL (query and client secret too) in its message.
                    raise HostUnavailable(f"{what}: {type(exc).__name__}") from None
                self._backoff(attempt)
                continue
            if response.status_code >= 500 and attempt < attempts:
                # A retried answer still counts against the budget: report its headers too.
                self._report_rate_limit(response, self._clock())
                self._backoff(attempt)
                continue
            self._raise_for_status(response, what)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _report_rate_limit(self, response: requests.Response, now: datetime) -> RateLimitStatus | None:
        status = read_rate_limits(response.headers)
        if status is not None and self.on_rate_limit is not None:
            self.on_rate_limit(status, now)
        return status

    def _raise_for_status(self, response: requests.Response, what: str) -> None:
        now = self._clock()
        status = self._report_rate_limit(response, now)
        code = response.status_code
        if code < 400:
            return
        if code == 429:
            retry_at, spent = retry_after_429(status, now, self.short_backoff)
            raise RateLimited(retry_at, spent)
        if code >= 500:
            raise HostUnavailable(f"{what}: answered {code}")
        reason = f"{what}: answered {code} {_error_summary(response)}".strip()
        if code == 401:
            raise Unauthorized(reason)
        if code == 403:
            raise Forbidden(reason)
        if code == 404:
            raise NotFound(reason)
        raise BadResponse(reason)

    def _backoff(self, attempt: int) -> None:
        # Exponential with full jitter, so many workers hitting one outage do not retry in lockstep.
        self.sleep(self.backoff_base_s * (2 ** (attempt - 1)) * (0.5 + random.random()))  # noqa: S311

    def _load(self, schema: Any, response: requests.Response) -> Any:
        try:
            return schema.load(response.json())
        except (ValueError, ValidationError) as exc:
            raise BadResponse(f"{response.request.method} {self._path(response.url)}: {exc}") from exc

    def _token_grant(self, response: requests.Response) -> TokenGrant:
        data = self._load(TokenResponseSchema(), response)
        athlete = data["athlete"] or {}
        athlete_id = athlete.get("id")
        return TokenGrant(
            access_token=data["access_token"],
            refresh_token=data["refresh_token"],
            expires_at=data["expires_at"],
            athlete_id=int(athlete_id) if isinstance(athlete_id, int) else None,
        )

    def _path(self, url: str) -> str:
        # Paths only: query strings can hold client credentials and must never reach a log or error.
        return urlsplit(url).path


def _error_summary(response: requests.Response) -> str:
    """Strava's error body ({"message", "errors": [{resource, field, code}]}), shortened; no echo of input."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts = [str(body.get("message", ""))]
    for error in body.get("errors") or []:
        if isinstance(error, dict):
            parts.append(
                "{resource}.{field}: {code}".format_map(
                    {k: error.get(k, "") for k in ("resource", "field", "code")}
                )
            )
    return "(" + "; ".join(p for p in parts if p)[:200] + ")" if any(parts) else ""
