"""The composition root: builds the store, the host client, the pipeline and the queue from Settings.
The web app, the worker and the CLI all start here, so each process wires things the same way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from plugin.config import Settings
from plugin.hosts.strava import StravaClient
from plugin.hosts.strava.ratelimit import RateLimitStatus, day_start, quarter_hour_start
from plugin.intake import Intake
from plugin.jobs import Queue, make_huey
from plugin.pipeline import Pipeline
from plugin.store import Store


@dataclass
class Services:
    settings: Settings
    store: Store
    host: StravaClient
    pipeline: Pipeline
    queue: Queue
    intake: Intake


def build_services(settings: Settings) -> Services:
    store = Store(settings.database_url, settings.token_key)
    store.create_schema()

    def remember_rate_limit(status: RateLimitStatus, now: datetime) -> None:
        store.record_rate_limit(
            "strava",
            short=(status.short.limit, status.short.usage) if status.short else None,
            daily=(status.daily.limit, status.daily.usage) if status.daily else None,
            blocked_until=status.blocked_until(now),
            windows_since=(quarter_hour_start(now), day_start(now)),
        )

    host = StravaClient(
        settings.strava_oauth_url,
        settings.strava_api_url,
        settings.strava_client_id,
        settings.strava_client_secret,
        timeout=settings.host_timeout,
        attempts=settings.host_attempts,
        on_rate_limit=remember_rate_limit,
        short_backoff=timedelta(seconds=settings.retry_base_s),
    )
    pipeline = Pipeline(
        store,
        host,
        sources_url=settings.sources_url,
        refresh_margin_s=settings.token_refresh_margin_s,
        retry_base=timedelta(seconds=settings.retry_base_s),
    )
    queue = Queue(make_huey(settings.queue_url), store, pipeline)
    return Services(settings, store, host, pipeline, queue, Intake(store, queue))
