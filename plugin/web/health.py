"""GET /healthz: the database and the queue are reachable."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify

from plugin.web import services
from plugin.web.errors import RETRY_AFTER_S

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    checks = {}
    for name, ping in (("database", services().store.ping), ("queue", services().queue.ping)):
        try:
            ping()
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
            log.warning("health check %s failed: %s", name, type(exc).__name__)
            checks[name] = "unreachable"
    healthy = all(value == "ok" for value in checks.values())
    body = jsonify({"status": "ok" if healthy else "unhealthy", **checks})
    if healthy:
        return body, 200
    return body, 503, {"Retry-After": str(RETRY_AFTER_S)}
