"""Connect once: GET /connect sends the athlete to the host's consent page; GET /oauth/callback finishes."""

from __future__ import annotations

import hmac
import logging
import secrets

from flask import Blueprint, redirect, render_template, request, session

from plugin.hosts.base import BadResponse, HostError
from plugin.hosts.strava.oauth import REQUESTED_SCOPES, SCOPE_PURPOSE, missing_required, parse_granted
from plugin.store import TokenSet
from plugin.web import services
from plugin.web.settings import sign_in

log = logging.getLogger(__name__)
bp = Blueprint("connect", __name__)

STATE_KEY = "oauth_state"


@bp.get("/connect")
def connect():
    svc = services()
    if not svc.settings.strava_client_id:
        return render_template(
            "message.html",
            title="Not configured yet",
            message="This installation has no STRAVA_CLIENT_ID set, so it cannot connect to Strava.",
        ), 503
    # Single use and bound to this browser's session: the callback must bring the same value back.
    state = secrets.token_urlsafe(24)
    session[STATE_KEY] = state
    url = svc.host.authorize_url(
        svc.settings.redirect_uri, list(REQUESTED_SCOPES), state, force=request.args.get("force") == "1"
    )
    return redirect(url, code=302)


@bp.get("/oauth/callback")
def callback():
    expected = session.pop(STATE_KEY, None)
    state = request.args.get("state", "")
    if not expected or not hmac.compare_digest(state.encode(), expected.encode()):
        return render_template(
            "message.html",
            title="This sign-in link is not valid",
            message="It has expired, was already used, or was not started from this browser. "
            "Nothing was stored. Please start again.",
            retry=True,
        ), 400

    if request.args.get("error"):
        denied = request.args.get("error") == "access_denied"
        return render_template(
            "message.html",
            title="Not connected" if denied else "Strava reported a problem",
            message="You chose not to connect Backstride to Strava. Nothing was stored."
            if denied
            else "Strava did not complete the connection. Nothing was stored.",
            retry=True,
        ), 403 if denied else 400

    code = request.args.get("code", "")
    if not code:
        return render_template(
            "message.html",
            title="Sign-in incomplete",
            message="Strava sent no authorization code.",
            retry=True,
        ), 400

    granted = parse_granted(request.args.get("scope"))
    missing = missing_required(granted)
    if missing:
        return render_template(
            "message.html",
            title="Backstride needs a little more access",
            message="Backstride cannot work without these permissions. Please connect again and leave "
            "these boxes ticked:",
            items=[f"{scope}: to {SCOPE_PURPOSE[scope]}" for scope in missing],
            retry=True,
            force=True,
        ), 403

    svc = services()
    try:
        grant = svc.host.exchange_code(code)
    except BadResponse as exc:
        # The host refused the code (expired, already used or made up): the link is at fault, not a server.
        log.warning("OAuth code refused by the host: %s", exc)
        return render_template(
            "message.html",
            title="This sign-in link is not valid",
            message="Strava did not accept it: it has expired or was already used. Nothing was stored. "
            "Please start again.",
            retry=True,
        ), 400
    except HostError as exc:
        log.warning("OAuth code exchange failed: %s", exc)
        return _host_failed()
    athlete_id, weight, units = grant.athlete_id, None, None
    if "profile:read_all" in granted or athlete_id is None:
        try:
            info = svc.host.fetch_athlete(grant.access_token)
        except HostError as exc:
            log.warning("reading the athlete after the OAuth exchange failed: %s", exc)
            return _host_failed()
        athlete_id, weight, units = info.id, info.weight_kg, info.units

    svc.store.save_athlete(
        athlete_id,
        TokenSet(grant.access_token, grant.refresh_token, grant.expires_at),
        granted,
        host_weight_kg=weight,
        host_units=units,
    )
    sign_in(svc.store.athlete(athlete_id))  # type: ignore[arg-type] - just saved
    log.info("athlete %s connected", athlete_id)
    return render_template("connected.html", optional_missing="profile:read_all" not in granted)


def _host_failed() -> tuple[str, int]:
    return render_template(
        "message.html",
        title="Strava did not complete the connection",
        message="Nothing was stored. Please try again in a moment.",
        retry=True,
    ), 502
