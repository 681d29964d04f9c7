"""The signed-in runner's pages: /settings, the data download, and POST /disconnect.

Only the athlete in the session is ever shown or changed: every page reads the athlete id from the signed
session cookie, never from the request.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, session, url_for
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from plugin.analysis.notes import KG_PER_LB, M_PER_MILE
from plugin.domain import NOTE_STYLES
from plugin.hosts.base import HostError
from plugin.pipeline import NeedsReconnect, profile_for
from plugin.store.models import Athlete
from plugin.web import services

log = logging.getLogger(__name__)
bp = Blueprint("settings", __name__)


@bp.after_request
def _not_cached(response):
    """An athlete's settings, data and the pages after disconnecting are theirs alone: no browser or proxy
    cache keeps a copy (a shared computer's back button, a corporate proxy)."""
    response.headers["Cache-Control"] = "no-store"
    return response


SESSION_ATHLETE = "athlete_id"
SESSION_VERSION = "session_version"

# A body weight outside this is a typo (or the wrong unit), not a runner.
MIN_WEIGHT_KG = 25.0
MAX_WEIGHT_KG = 300.0

UNIT_CHOICES = ("host", "metric", "imperial")  # "host": follow the host profile's preference
DETECTION_CHOICES = ("auto", "tagged")
WEIGHT_UNITS = ("kg", "lb")


class SettingsForm(Schema):
    """The settings form as posted: strings in, a settings dict out (or errors per field)."""

    weight = fields.String(load_default="")
    weight_unit = fields.String(
        load_default="kg", validate=validate.OneOf(WEIGHT_UNITS, error="Choose kg or lb.")
    )
    units = fields.String(
        load_default="host", validate=validate.OneOf(UNIT_CHOICES, error="Choose one of the unit options.")
    )
    detection = fields.String(
        load_default="auto",
        validate=validate.OneOf(DETECTION_CHOICES, error="Choose one of the detection options."),
    )
    note_style = fields.String(
        load_default="detailed", validate=validate.OneOf(NOTE_STYLES, error="Choose compact or detailed.")
    )
    paused = fields.String(load_default="")

    @validates_schema
    def weight_in_range(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("weight_unit") not in WEIGHT_UNITS:
            return  # already reported on its own field
        try:
            weight_kg = _weight_kg(data.get("weight", ""), data["weight_unit"])
        except _NotANumber:
            return  # reported by parse_settings_form with its own message
        if weight_kg is not None and not MIN_WEIGHT_KG <= weight_kg <= MAX_WEIGHT_KG:
            low, high = MIN_WEIGHT_KG, MAX_WEIGHT_KG
            if data["weight_unit"] == "lb":
                low, high = low / KG_PER_LB, high / KG_PER_LB
            raise ValidationError(
                f"Enter a weight between {low:.0f} and {high:.0f} {data['weight_unit']}.", "weight"
            )


class _NotANumber(ValueError):
    pass


def _weight_kg(text: str, unit: str) -> float | None:
    """The weight in kg; None for a blank field (use the host's); _NotANumber for anything else."""
    text = text.strip().replace(",", ".")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError as exc:
        raise _NotANumber(text) from exc
    if value != value or value in (float("inf"), float("-inf")):  # NaN or infinite
        raise _NotANumber(text)
    return value * KG_PER_LB if unit == "lb" else value


def parse_settings_form(form: dict[str, str]) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """(settings to store, {}) or (None, {field: message}); nothing is half-applied."""
    errors: dict[str, str] = {}
    try:
        _weight_kg(form.get("weight", ""), form.get("weight_unit", "kg"))
    except _NotANumber:
        errors["weight"] = "Enter your weight as a number, for example 68.5, or leave it empty."
    try:
        data = SettingsForm().load({k: v for k, v in form.items() if k in SettingsForm().fields})
    except ValidationError as exc:
        messages = exc.normalized_messages()
        for name, message in messages.items():
            errors.setdefault(name, message[0] if isinstance(message, list) else str(message))
        data = None
    if errors or data is None:
        return None, errors
    weight_kg = _weight_kg(data["weight"], data["weight_unit"])
    settings: dict[str, Any] = {
        "weight_kg": round(weight_kg, 2) if weight_kg is not None else None,
        "weight_unit": data["weight_unit"],
        "detection": data["detection"],
        "note_style": data["note_style"],
        "paused": data["paused"] not in ("", "off", "false", "0"),
    }
    if data["units"] != "host":
        settings["units"] = data["units"]
    return settings, {}


@dataclass(frozen=True)
class FormValues:
    """What the form shows: the stored settings, or what the athlete just typed."""

    weight: str
    weight_unit: str
    units: str
    detection: str
    note_style: str
    paused: bool

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> FormValues:
        unit = settings.get("weight_unit") if settings.get("weight_unit") in WEIGHT_UNITS else "kg"
        weight = settings.get("weight_kg")
        shown = ""
        if weight:
            value = weight / KG_PER_LB if unit == "lb" else weight
            shown = f"{value:.1f}".removesuffix(".0")
        return cls(
            weight=shown,
            weight_unit=unit,
            units=settings.get("units") if settings.get("units") in ("metric", "imperial") else "host",
            detection="tagged" if settings.get("detection") == "tagged" else "auto",
            note_style="compact" if settings.get("note_style") == "compact" else "detailed",
            paused=bool(settings.get("paused")),
        )

    @classmethod
    def from_form(cls, form: dict[str, str]) -> FormValues:
        return cls(
            weight=form.get("weight", "")[:20],
            weight_unit=form.get("weight_unit", "kg"),
            units=form.get("units", "host"),
            detection=form.get("detection", "auto"),
            note_style=form.get("note_style", "detailed"),
            paused=form.get("paused", "") not in ("", "off", "false", "0"),
        )


def signed_in_athlete() -> Athlete | None:
    athlete_id = session.get(SESSION_ATHLETE)
    if not isinstance(athlete_id, int):
        return None
    athlete = services().store.athlete(athlete_id)
    if athlete is None or session.get(SESSION_VERSION) != athlete.session_version:
        # Disconnected elsewhere (deauthorized on the host), or signed out since this cookie was issued
        # (a copy of it kept somewhere): the session means nothing now.
        session.clear()
        return None
    return athlete


def sign_in(athlete: Athlete) -> None:
    """A fresh session for the athlete, carrying their current session version."""
    session.clear()
    session[SESSION_ATHLETE] = athlete.id
    session[SESSION_VERSION] = athlete.session_version
    session.permanent = True


def _not_signed_in() -> tuple[str, int]:
    return render_template(
        "message.html",
        title="Please connect first",
        message="Your settings are shown to you only, after you connect with Strava (or connect again if "
        "your session has ended).",
        retry=True,
    ), 401


def _settings_page(athlete: Athlete, values: FormValues, errors: dict[str, str], status: int = 200):
    svc = services()
    per_unit, unit = (M_PER_MILE, "mi") if profile_for(athlete).units == "imperial" else (1000.0, "km")
    records = [
        {
            "url": svc.host.activity_url(r.activity_id),
            "processed_at": r.processed_at,
            "efforts": r.efforts,
            "distance": f"{r.backward_m / per_unit:.2f} {unit}",
            "written": r.written,
            "remark": r.remark,
        }
        for r in svc.store.recent_records(athlete.id)
    ]
    return render_template(
        "settings.html",
        athlete=athlete,
        values=values,
        errors=errors,
        records=records,
        saved=request.args.get("saved") == "1" and not errors,
        host_units=athlete.host_units,
        host_weight_kg=athlete.host_weight_kg,
        min_weight=MIN_WEIGHT_KG,
        max_weight=MAX_WEIGHT_KG,
    ), status


@bp.get("/settings")
def show():
    athlete = signed_in_athlete()
    if athlete is None:
        return _not_signed_in()
    return _settings_page(athlete, FormValues.from_settings(athlete.settings or {}), {})


@bp.post("/settings")
def save():
    athlete = signed_in_athlete()
    if athlete is None:
        return _not_signed_in()
    form = request.form.to_dict()
    settings, errors = parse_settings_form(form)
    if settings is None:
        return _settings_page(athlete, FormValues.from_form(form), errors, status=400)
    services().store.update_settings(athlete.id, settings)
    log.info("athlete %s changed their settings", athlete.id)
    # Post/redirect/get: a reload does not post the form again.
    return redirect(url_for("settings.show", saved="1"), code=303)


@bp.get("/settings/export")
def export():
    athlete = signed_in_athlete()
    if athlete is None:
        return _not_signed_in()
    data = services().store.export_athlete(athlete.id)
    body = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": 'attachment; filename="backstride-my-data.json"'},
    )


@bp.post("/disconnect")
def disconnect():
    athlete = signed_in_athlete()
    if athlete is None:
        return _not_signed_in()
    svc = services()
    revoked = True
    try:
        svc.host.revoke(svc.pipeline.access_token(athlete.id))
    except (HostError, NeedsReconnect) as exc:
        # The deletion below must happen whatever the host says: the athlete asked for it.
        log.warning("revoking athlete %s at the host failed: %s", athlete.id, exc)
        revoked = False
    svc.store.delete_athlete(athlete.id)
    session.clear()
    log.info("athlete %s disconnected and deleted", athlete.id)
    return render_template("disconnected.html", revoked=revoked)


@bp.post("/signout")
def signout():
    athlete = signed_in_athlete()
    if athlete is not None:
        services().store.end_sessions(athlete.id)
    session.clear()
    return redirect(url_for("pages.landing"), code=303)
