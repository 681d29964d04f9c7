"""GET /metrics: Prometheus text exposition of fleet-wide figures.

Every figure is read from the shared database and queue at scrape time, so any web instance answers for the
whole fleet and no per-process counter is lost when a process restarts. Inbox figures cover the retention
window (7 days), which is why they are gauges. No athlete or activity is identified. Only a scraper that sends
the bearer token BACKSTRIDE_METRICS_TOKEN gets an answer; without the variable set, there is no /metrics.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, abort, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from plugin.hosts.strava.ratelimit import Ledger, Window
from plugin.store import utcnow
from plugin.web import services

bp = Blueprint("metrics", __name__)

PREFIX = "backstride"


class _FleetCollector:
    def __init__(self, figures: dict, queue_depth: tuple[int, int]) -> None:
        self.figures = figures
        self.queue_depth = queue_depth

    def collect(self):
        figures = self.figures
        events = GaugeMetricFamily(
            f"{PREFIX}_inbox_events",
            "Webhook events received in the retention window, by processing status",
            labels=["status"],
        )
        for status in ("pending", "working", "done", "ignored", "failed", "dead"):
            events.add_metric([status], figures["events"].get(status, 0))
        yield events
        yield GaugeMetricFamily(
            f"{PREFIX}_inbox_events_due", "Pending events due now (not deferred)", value=figures["events_due"]
        )
        queue = GaugeMetricFamily(f"{PREFIX}_queue_tasks", "Queue tasks, by state", labels=["state"])
        queue.add_metric(["ready"], self.queue_depth[0])
        queue.add_metric(["scheduled"], self.queue_depth[1])
        yield queue
        calls = GaugeMetricFamily(
            f"{PREFIX}_host_calls",
            "Host API calls spent on settled events in the retention window, by event status",
            labels=["status"],
        )
        settled = GaugeMetricFamily(
            f"{PREFIX}_settled_events_counted",
            "Settled events whose host calls were counted, by event status",
            labels=["status"],
        )
        for status, (count, total) in sorted(figures["host_calls"].items()):
            calls.add_metric([status], total)
            settled.add_metric([status], count)
        yield calls
        yield settled
        yield GaugeMetricFamily(f"{PREFIX}_athletes", "Connected athletes", value=figures["athletes"])
        yield GaugeMetricFamily(
            f"{PREFIX}_athletes_needing_reconnect",
            "Athletes whose token the host refused",
            value=figures["athletes_needing_reconnect"],
        )
        limit = GaugeMetricFamily(
            f"{PREFIX}_host_rate_limit", "The host's rate limit per window", labels=["host", "window"]
        )
        usage = GaugeMetricFamily(
            f"{PREFIX}_host_rate_usage",
            "Calls counted in the current window (the fleet's own count, at least the host's)",
            labels=["host", "window"],
        )
        left = GaugeMetricFamily(
            f"{PREFIX}_host_budget_left", "Calls left before the window's limit", labels=["host", "window"]
        )
        blocked = GaugeMetricFamily(
            f"{PREFIX}_host_blocked", "1 while the fleet waits for the next window", labels=["host"]
        )
        now = utcnow()
        for row in figures["rate_limits"]:
            windows = {name: None if None in row[name] else Window(*row[name]) for name in ("short", "daily")}
            # Counts of a window that has ended since they were taken are zero now (a new quarter hour, a
            # new day), as the budget itself sees them.
            current = Ledger(windows["short"], windows["daily"], row["counted_at"] or now).at(now)
            for name, window in (("short", current.short), ("daily", current.daily)):
                if window is None:
                    continue
                limit.add_metric([row["host"], name], window.limit)
                usage.add_metric([row["host"], name], window.usage)
                left.add_metric([row["host"], name], max(window.limit - window.usage, 0))
            blocked.add_metric([row["host"]], 1 if row["blocked"] else 0)
        yield from (limit, usage, left, blocked)


@bp.get("/metrics")
def metrics():
    # Athlete counts, the inbox and the budget left are the operator's, not the public's: /metrics answers
    # only a monitoring system that sends BACKSTRIDE_METRICS_TOKEN (a token, not a loopback rule, because
    # behind a reverse proxy on the same machine every request comes from loopback).
    svc = services()
    expected = svc.settings.metrics_token
    if not expected:
        abort(404)
    sent = request.headers.get("Authorization", "")
    if not hmac.compare_digest(sent.encode(), f"Bearer {expected}".encode()):
        return Response("metrics need the bearer token\n", status=401, headers={"WWW-Authenticate": "Bearer"})
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_FleetCollector(svc.store.metrics(), svc.queue.depth()))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
