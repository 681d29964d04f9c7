"""The host's webhook: validation GET and event POST. No host call happens here: validate, store,
enqueue, answer (the host wants a 200 within 2 seconds)."""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, jsonify, request
from marshmallow import ValidationError

from plugin.hosts.strava.schemas import WebhookEventSchema
from plugin.store import NewEvent
from plugin.web import services

log = logging.getLogger(__name__)
bp = Blueprint("webhook", __name__)

_event_schema = WebhookEventSchema()

NOT_STORED_REASONS = {
    "foreign subscription": "unknown subscription_id",
    "unknown owner": "owner is not a connected athlete",
    "duplicate": "this delivery was already received",
}


@bp.get("/webhooks/strava")
def validate_subscription():
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


@bp.post("/webhooks/strava")
def receive_event():
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        return _error(400, "body must be a JSON object")
    try:
        data = _event_schema.load(body)
    except ValidationError as exc:
        return _error(400, "invalid event", fields=exc.messages)

    new = NewEvent(**data)
    received = services().store.receive_event(new)
    if received == "duplicate":
        # The host delivers again only when it got no answer: the first delivery may have been stored and
        # then lost with its process before it was enqueued. An event still waiting and due is enqueued
        # again, so it does not wait for the resume task; running its task twice is harmless (the second
        # finds it settled, or waits its turn).
        waiting = services().store.waiting_event_id(new)
        if waiting is not None:
            _enqueue(waiting)
        return _answer("duplicate", NOT_STORED_REASONS[received])
    if isinstance(received, str):
        # Not stored: a foreign subscription (stale, or forged) or an unknown owner is acknowledged so that
        # the sender stops, and nothing is done.
        return _answer("ignored", NOT_STORED_REASONS[received])
    _enqueue(received)
    return _answer("accepted")


def _enqueue(event_id: int) -> None:
    try:
        services().queue.enqueue_event(event_id, fresh=True)
    except Exception:  # noqa: BLE001 - the event is stored; the periodic resume task will enqueue it
        log.exception("event %s stored but not enqueued; it will be resumed", event_id)


def _answer(status: str, reason: str | None = None):
    body = {"status": status}
    if reason:
        body["reason"] = reason
    return jsonify(body), 200


def _error(code: int, reason: str, **extra):
    return jsonify({"error": reason, **extra}), code
