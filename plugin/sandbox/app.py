"""The sandbox host's HTTP face: the subset of Strava that Backstride uses, a control API for tests and demos
(under /_sandbox), and activity pages that show what a plugin wrote."""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import requests
from flask import Blueprint, Flask, abort, jsonify, redirect, render_template, request

from plugin.sandbox.delivery import Deliverer
from plugin.sandbox.state import (
    ALL_SCOPES,
    UPDATABLE_FIELDS,
    Fault,
    Grant,
    SandboxConfig,
    SandboxError,
    SandboxState,
)

log = logging.getLogger(__name__)
CONTROL_PREFIX = "/_sandbox"


def create_sandbox(
    config: SandboxConfig | None = None, oauth_prefix: str = "/oauth", api_prefix: str = "/api/v3"
) -> Flask:
    """A Strava-compatible host. `app.extensions["sandbox"]` holds its state and webhook deliverer."""
    state = SandboxState(config or SandboxConfig())
    deliverer = Deliverer(state)
    app = Flask(__name__, template_folder="templates")
    app.extensions["sandbox"] = state
    app.extensions["sandbox_deliverer"] = deliverer
    app.config["OAUTH_PREFIX"] = oauth_prefix
    app.config["API_PREFIX"] = api_prefix

    @app.errorhandler(SandboxError)
    def sandbox_error(error: SandboxError):
        return jsonify(error.body), error.status

    @app.before_request
    def inject_faults():
        if request.path.startswith(CONTROL_PREFIX):
            return None
        fault = state.take_fault("http", request.method, request.path)
        if fault is None:
            return None
        time.sleep(fault.latency_ms / 1000 + fault.timeout_s)
        if fault.status is None:
            return None  # latency only
        headers = state.rate_headers(spent=fault.spent) if request.path.startswith(api_prefix) else {}
        message = "Rate Limit Exceeded" if fault.status == 429 else "Injected fault"
        return jsonify({"message": message, "errors": []}), fault.status, headers

    app.register_blueprint(_oauth_blueprint(state, deliverer), url_prefix=oauth_prefix)
    app.register_blueprint(_api_blueprint(state, deliverer), url_prefix=api_prefix)
    app.register_blueprint(_control_blueprint(state, deliverer), url_prefix=CONTROL_PREFIX)
    app.register_blueprint(_pages_blueprint(state))
    return app


# --- OAuth --------------------------------------------------------------------------------------------------


def _oauth_blueprint(state: SandboxState, deliverer: Deliverer) -> Blueprint:
    bp = Blueprint("oauth", __name__)

    def redirect_back(redirect_uri: str, **params: str | None) -> Any:
        query = urlencode({k: v for k, v in params.items() if v is not None}, safe=",:")
        return redirect(f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}", code=302)

    def requested_scopes(raw: str) -> list[str]:
        scopes = [s for s in raw.replace(" ", ",").split(",") if s]
        unknown = [s for s in scopes if s not in ALL_SCOPES]
        if unknown:
            raise SandboxError(400, "Bad Request", "Authorize", "scope", "invalid")
        return scopes or ["read"]

    @bp.get("/authorize")
    def authorize():
        args = request.args
        state.check_client(args.get("client_id"), secret=False)
        redirect_uri = args.get("redirect_uri", "")
        if not redirect_uri.startswith(("http://", "https://")):
            raise SandboxError(400, "Bad Request", "Application", "redirect_uri", "invalid")
        if args.get("response_type") != "code":
            raise SandboxError(400, "Bad Request", "Authorize", "response_type", "invalid")
        scopes = requested_scopes(args.get("scope", ""))
        athlete_id = int(args.get("athlete_id") or state.demo_athlete_id or 0)
        if athlete_id not in state.athletes:
            raise SandboxError(400, "Bad Request", "Athlete", "athlete_id", "no athlete signed in")
        existing = state.existing_grant(athlete_id)
        if args.get("approval_prompt", "auto") == "auto" and existing and set(scopes) <= existing.scopes:
            # Already authorized with these scopes: Strava skips the consent page.
            code = state.issue_code(athlete_id, existing.scopes, redirect_uri)
            return redirect_back(
                redirect_uri, state=args.get("state"), code=code, scope=",".join(sorted(existing.scopes))
            )
        return render_template(
            "consent.html",
            app_name=state.config.app_name,
            athlete=state.athletes[athlete_id],
            athlete_id=athlete_id,
            scopes=scopes,
            client_id=args.get("client_id"),
            redirect_uri=redirect_uri,
            oauth_state=args.get("state", ""),
        )

    @bp.post("/authorize")
    def decide():
        form = request.form
        state.check_client(form.get("client_id"), secret=False)
        redirect_uri = form.get("redirect_uri", "")
        oauth_state = form.get("state") or None
        if form.get("decision") != "authorize":
            return redirect_back(redirect_uri, state=oauth_state, error="access_denied")
        offered = set(requested_scopes(form.get("requested", "")))
        granted = frozenset(s for s in form.getlist("scope") if s in offered)
        code = state.issue_code(int(form["athlete_id"]), granted, redirect_uri)
        return redirect_back(redirect_uri, state=oauth_state, code=code, scope=",".join(sorted(granted)))

    @bp.post("/token")
    def token():
        form = request.form
        state.check_client(form.get("client_id"), form.get("client_secret"))
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return jsonify(state.exchange_code(form.get("code", "")))
        if grant_type == "refresh_token":
            return jsonify(state.refresh_tokens(form.get("refresh_token", "")))
        raise SandboxError(400, "Bad Request", "Token", "grant_type", "invalid")

    @bp.post("/revoke")
    def revoke():
        auth = request.authorization
        state.check_client(auth.username if auth else None, auth.password if auth else None)
        athlete_id = state.revoke_token(request.form.get("token", ""))
        if athlete_id is not None:
            deliverer.publish("athlete", athlete_id, "update", athlete_id, {"authorized": "false"})
        return jsonify({}), 200

    @bp.post("/deauthorize")
    def deauthorize():
        token = request.form.get("access_token") or (request.headers.get("Authorization") or "")[7:]
        athlete_id = state.revoke_token(token)
        if athlete_id is None:
            raise SandboxError(401, "Authorization Error", "Athlete", "access_token", "invalid")
        deliverer.publish("athlete", athlete_id, "update", athlete_id, {"authorized": "false"})
        return jsonify({"access_token": token})

    return bp


# --- API ----------------------------------------------------------------------------------------------------


def _api_blueprint(state: SandboxState, deliverer: Deliverer) -> Blueprint:
    bp = Blueprint("api", __name__)
    headers_key = "sandbox_rate_headers"

    @bp.before_request
    def rate_limit():
        # Every request Backstride makes is "non-upload", so it counts against both limits.
        headers, over = state.count_request(read=True)
        request.environ[headers_key] = headers
        if over:
            return jsonify(
                {
                    "message": "Rate Limit Exceeded",
                    "errors": [{"resource": "Application", "field": "rate limit", "code": "exceeded"}],
                }
            ), 429
        return None

    @bp.after_request
    def rate_headers(response):
        response.headers.update(request.environ.get(headers_key, {}))
        state.record_call(request.method, request.path, response.status_code)
        return response

    def grant() -> Grant:
        return state.authenticate(request.headers.get("Authorization"))

    @bp.get("/athlete")
    def athlete():
        return jsonify(state.detailed_athlete(grant()))

    @bp.get("/activities/<int:activity_id>")
    def get_activity(activity_id: int):
        return jsonify(state.get_activity(grant(), activity_id))

    @bp.put("/activities/<int:activity_id>")
    def put_activity(activity_id: int):
        who = grant()
        with state.lock:
            state.owned_activity(who, activity_id, write=True)
        body = request.get_json(silent=True) if request.is_json else request.form.to_dict()
        if not isinstance(body, dict):
            raise SandboxError(400, "Bad Request", "Activity", "body", "invalid")
        changes = {k: v for k, v in body.items() if k in UPDATABLE_FIELDS}
        activity, updates = state.update_activity(activity_id, changes)
        if updates:
            deliverer.publish("activity", activity_id, "update", who.athlete_id, updates)
        return jsonify(activity)

    @bp.get("/activities/<int:activity_id>/streams")
    def streams(activity_id: int):
        keys = [k for k in request.args.get("keys", "").split(",") if k]
        key_by_type = request.args.get("key_by_type", "false").lower() == "true"
        return jsonify(state.get_streams(grant(), activity_id, keys, key_by_type))

    @bp.post("/push_subscriptions")
    def create_subscription():
        form = request.form
        state.check_client(form.get("client_id"), form.get("client_secret"))
        callback_url = form.get("callback_url", "")
        if not callback_url or len(callback_url) > 255:
            raise SandboxError(400, "Bad Request", "PushSubscription", "callback url", "invalid")
        if state.subscription is not None:
            raise SandboxError(400, "Bad Request", "PushSubscription", "", "already exists")
        verify_token = form.get("verify_token", "")
        if not _callback_validates(callback_url, verify_token, state.config.validation_timeout_s):
            raise SandboxError(
                400,
                "Bad Request",
                "PushSubscription",
                "callback url",
                "GET to callback URL does not return 200",
            )
        subscription = state.new_subscription(callback_url, verify_token)
        return jsonify({"id": subscription.id}), 201

    @bp.get("/push_subscriptions")
    def list_subscriptions():
        state.check_client(request.args.get("client_id"), request.args.get("client_secret"))
        subscription = state.subscription
        if subscription is None:
            return jsonify([])
        return jsonify(
            [
                {
                    "id": subscription.id,
                    "resource_state": 2,
                    "application_id": int(state.config.client_id),
                    "callback_url": subscription.callback_url,
                    "created_at": subscription.created_at,
                    "updated_at": subscription.created_at,
                }
            ]
        )

    @bp.delete("/push_subscriptions/<int:subscription_id>")
    def delete_subscription(subscription_id: int):
        state.check_client(request.args.get("client_id"), request.args.get("client_secret"))
        state.delete_subscription(subscription_id)
        return "", 204

    return bp


def _callback_validates(callback_url: str, verify_token: str, timeout_s: float) -> bool:
    """Strava's validation GET: the callback must echo hub.challenge within 2 seconds."""
    challenge = secrets.token_hex(16)
    try:
        response = requests.get(
            callback_url,
            params={"hub.mode": "subscribe", "hub.challenge": challenge, "hub.verify_token": verify_token},
            timeout=timeout_s,
        )
        return response.status_code == 200 and response.json().get("hub.challenge") == challenge
    except (requests.RequestException, ValueError, AttributeError):
        return False


# --- control API (not Strava) -------------------------------------------------------------------------------


def _control_blueprint(state: SandboxState, deliverer: Deliverer) -> Blueprint:
    bp = Blueprint("control", __name__)

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            abort(400, "body must be a JSON object")
        return data

    @bp.post("/reset")
    def reset():
        state.reset()
        return jsonify({"status": "reset"})

    @bp.get("/state")
    def summary():
        with state.lock:
            return jsonify(
                {
                    "demo_athlete_id": state.demo_athlete_id,
                    "athletes": sorted(state.athletes),
                    "authorized": sorted(state.grants),
                    "subscription": state.subscription.id if state.subscription else None,
                    "activities": [
                        {
                            "id": a["id"],
                            "athlete_id": a["athlete"]["id"],
                            "name": a["name"],
                            "sport_type": a["sport_type"],
                            "description": a["description"],
                        }
                        for a in state.activities.values()
                    ],
                    "seed_keys": list(state.seed_activities),
                    "limits": {"overall": state.config.overall_limits, "read": state.config.read_limits},
                }
            )

    @bp.post("/athletes")
    def add_athlete():
        data = body()
        if not isinstance(data.get("id"), int):
            abort(400, "id (an integer) is required")
        return jsonify(state.add_athlete(data)), 201

    @bp.post("/athletes/<int:athlete_id>/revoke")
    def athlete_revokes(athlete_id: int):
        """The athlete removes the app in their settings on the host."""
        if state.revoke_athlete(athlete_id):
            deliverer.publish("athlete", athlete_id, "update", athlete_id, {"authorized": "false"})
        return jsonify({"status": "revoked"})

    @bp.post("/activities")
    def add_activity():
        """Upload an activity: from a seed key ({"seed": "retro-intervals"}) or explicit fields."""
        data = body()
        athlete_id = int(data.get("athlete_id") or state.demo_athlete_id or 0)
        fields: dict[str, Any] = {}
        streams = None
        if "seed" in data:
            seed = state.seed_activities.get(data["seed"])
            if seed is None:
                abort(400, f"unknown seed activity {data['seed']!r}")
            fields, streams = dict(seed["activity"]), seed.get("streams")
        fields.update(data.get("activity") or {})
        streams = data.get("streams", streams)
        activity = state.create_activity(athlete_id, fields, streams)
        deliverer.publish("activity", activity["id"], "create", athlete_id)
        return jsonify(activity), 201

    @bp.patch("/activities/<int:activity_id>")
    def edit_activity(activity_id: int):
        """The athlete edits the activity on the host (title, type, privacy or description)."""
        activity, updates = state.update_activity(activity_id, body())
        if updates:
            deliverer.publish("activity", activity_id, "update", activity["athlete"]["id"], updates)
        return jsonify(activity)

    @bp.delete("/activities/<int:activity_id>")
    def remove_activity(activity_id: int):
        activity = state.delete_activity(activity_id)
        deliverer.publish("activity", activity_id, "delete", activity["athlete"]["id"])
        return "", 204

    @bp.get("/activities/<int:activity_id>")
    def peek_activity(activity_id: int):
        activity = state.activities.get(activity_id)
        if activity is None:
            abort(404)
        return jsonify(activity)

    @bp.post("/faults")
    def add_fault():
        data = body()
        allowed = {"kind", "path", "method", "status", "latency_ms", "timeout_s", "spent", "count"}
        unknown = set(data) - allowed
        if unknown or data.get("kind", "http") not in ("http", "drop_event", "duplicate_event"):
            abort(400, f"fault fields are {sorted(allowed)}; kind is http, drop_event or duplicate_event")
        fault = state.add_fault(Fault(**{"kind": "http", **data}))
        return jsonify({"id": fault.id}), 201

    @bp.delete("/faults")
    def clear_faults():
        with state.lock:
            state.faults.clear()
        return "", 204

    @bp.put("/limits")
    def set_limits():
        data = body()
        state.set_limits(data.get("overall"), data.get("read"), bool(data.get("reset_usage", True)))
        return jsonify({"overall": state.config.overall_limits, "read": state.config.read_limits})

    @bp.get("/deliveries")
    def deliveries():
        with state.lock:
            return jsonify(
                [
                    {
                        "event": d.event,
                        "attempts": d.attempts,
                        "status": d.status,
                        "last_status": d.last_status,
                    }
                    for d in state.deliveries
                ]
            )

    @bp.get("/calls")
    def calls():
        with state.lock:
            return jsonify(list(state.calls))

    @bp.post("/idle")
    def idle():
        """Wait until every queued webhook delivery finished (tests and the demo use this)."""
        return jsonify({"idle": deliverer.wait_idle(float(body().get("timeout", 30)))})

    return bp


# --- pages --------------------------------------------------------------------------------------------------


def _pages_blueprint(state: SandboxState) -> Blueprint:
    bp = Blueprint("sandbox_pages", __name__)

    @bp.get("/")
    def index():
        with state.lock:
            activities = sorted(state.activities.values(), key=lambda a: a["id"], reverse=True)
            return render_template(
                "index.html", activities=activities, attribution=getattr(state, "attribution", [])
            )

    @bp.get("/activities/<int:activity_id>")
    def activity_page(activity_id: int):
        activity = state.activities.get(activity_id)
        if activity is None:
            abort(404)
        return render_template("activity.html", activity=activity)

    return bp
