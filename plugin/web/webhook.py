"""The host's webhook: validation GET and event POST. No host call happens here: validate, store and enqueue
(plugin/intake.py), answer (the host wants a 200 within 2 seconds)."""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, abort, jsonify, request
from marshmallow import ValidationError

from plugin.config import WEBHOOK_PATH
from plugin.hosts.strava.schemas import WebhookEventSchema
from plugin.store import NewEvent
from plugin.web import services

log = logging.getLogger(__name__)
bp = Blueprint("webhook", __name__)

_event_schema = WebhookEventSchema()

# Every well-formed delivery gets this same answer, whatever became of it: the answers must not tell a
# sender which subscription ids and athlete ids are real. The log says what happened.
RECEIVED = {"status": "received"}


def _wrong_path(secret: str | None) -> bool:
    """With STRAVA_WEBHOOK_SECRET set, deliveries are taken at /webhooks/strava/<secret> only; without it,
    at /webhooks/strava only. Compared in constant time."""
    expected = services().settings.strava_webhook_secret
    if not expected:
        return secret is not None
    return secret is None or not hmac.compare_digest(secret.encode(), expected.encode())


@bp.get(WEBHOOK_PATH)
@bp.get(f"{WEBHOOK_PATH}/<secret>")
def validate_subscription(secret: str | None = None):
    if _wrong_path(secret):
        abort(404)
    mode = request.args.get("hub.mode")
    challenge = request.args.get("hub.challenge")
    token = request.args.get("hub.verify_token")
    if mode != "subscribe" or challenge is None or token is None:
        return _error(400, "expected hub.mode=subscribe, hub.challenge and hub.verify_token")
    expected = services().settings.strava_verify_token
    if not hmac.compare_digest(token.encode(), expected.encode()):
        log.warning("subscription validation with a wrong verify token")
        return _error(403, "verify token does not match")
    return jsonify({"hub.challenge": challenge})


@bp.post(WEBHOOK_PATH)
@bp.post(f"{WEBHOOK_PATH}/<secret>")
def receive_event(secret: str | None = None):
    if _wrong_path(secret):
        abort(404)
    try:
        body = request.get_json(force=True, silent=True)
    except RecursionError:  # "[[[[..." deeper than the parser's recursion limit: not an event either
        body = None
    if not isinstance(body, dict):
        return _error(400, "body must be a JSON object")
    try:
        data = _event_schema.load(body)
    except ValidationError as exc:
        return _error(400, "invalid event", fields=exc.messages)

    new = NewEvent(**data)
    received = services().intake.receive(new)
    if isinstance(received, str):
        # Not stored: a duplicate (already received), a foreign subscription (stale, forged, or none stored
        # yet) or an unknown owner. Acknowledged like any other, so that the sender stops; nothing more done.
        log.info("delivery for %s %s not stored: %s", new.object_type, new.object_id, received)
    return jsonify(RECEIVED), 200


def _error(code: int, reason: str, **extra):
    return jsonify({"error": reason, **extra}), code
