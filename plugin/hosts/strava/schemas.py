"""Strava's JSON, loaded with marshmallow. Unknown fields are ignored; missing required ones are errors."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate, validates_schema

from plugin.domain import Activity, Lap, Streams


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


# An update's value is a title, a type or "false": nothing longer than this is stored from a delivery (each
# stored event is a row for 7 days, and nobody vouches for what an unsigned event carries).
MAX_UPDATE_VALUE_CHARS = 1000


class UpdateValue(fields.Field):
    """Strava sends `updates` values as strings ("false"); accept plain booleans and numbers too."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            text = str(value)
            if len(text) > MAX_UPDATE_VALUE_CHARS:
                raise ValidationError(f"longer than {MAX_UPDATE_VALUE_CHARS} characters")
            return text
        raise ValidationError("must be a string")


# The events Strava sends and the webhook accepts (manifest.json declares the same).
EVENT_OBJECT_TYPES = ("activity", "athlete")
EVENT_ASPECT_TYPES = ("create", "update", "delete")
# Ids and times are stored as signed 64-bit integers: a larger number is not the host's and would not fit.
INT64_MAX = 2**63 - 1


class WebhookEventSchema(_Lenient):
    object_type = fields.String(required=True, validate=validate.OneOf(EVENT_OBJECT_TYPES))
    object_id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=INT64_MAX))
    aspect_type = fields.String(required=True, validate=validate.OneOf(EVENT_ASPECT_TYPES))
    owner_id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=INT64_MAX))
    subscription_id = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=INT64_MAX)
    )
    event_time = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=INT64_MAX))
    updates = fields.Dict(
        keys=fields.String(validate=validate.Length(max=64)),
        values=UpdateValue(),
        load_default=dict,
        validate=validate.Length(max=20),
    )

    @validates_schema
    def _athlete_events_concern_the_owner(self, data: dict, **kwargs: Any) -> None:
        if data["object_type"] == "athlete" and data["object_id"] != data["owner_id"]:
            raise ValidationError("an athlete event's object_id must equal its owner_id", "object_id")


class TokenResponseSchema(_Lenient):
    access_token = fields.String(required=True, validate=validate.Length(min=1))
    refresh_token = fields.String(required=True, validate=validate.Length(min=1))
    expires_at = fields.Integer(required=True)
    athlete = fields.Dict(load_default=None, allow_none=True)


class AthleteSchema(_Lenient):
    id = fields.Integer(required=True)
    weight = fields.Float(load_default=None, allow_none=True)
    measurement_preference = fields.String(load_default=None, allow_none=True)


class LapSchema(_Lenient):
    lap_index = fields.Integer(load_default=None, allow_none=True)
    name = fields.String(load_default="", allow_none=True)
    elapsed_time = fields.Float(load_default=0.0, allow_none=True)
    moving_time = fields.Float(load_default=0.0, allow_none=True)
    distance = fields.Float(load_default=0.0, allow_none=True)
    start_index = fields.Integer(load_default=None, allow_none=True)
    end_index = fields.Integer(load_default=None, allow_none=True)
    average_speed = fields.Float(load_default=None, allow_none=True)
    average_cadence = fields.Float(load_default=None, allow_none=True)


class ActivitySchema(_Lenient):
    id = fields.Integer(required=True)
    athlete = fields.Dict(load_default=None, allow_none=True)
    name = fields.String(load_default="", allow_none=True)
    description = fields.String(load_default=None, allow_none=True)
    sport_type = fields.String(load_default=None, allow_none=True)
    type = fields.String(
        load_default=None, allow_none=True
    )  # deprecated by Strava; used when sport_type is absent
    distance = fields.Float(load_default=0.0, allow_none=True)
    moving_time = fields.Float(load_default=0.0, allow_none=True)
    elapsed_time = fields.Float(load_default=0.0, allow_none=True)
    average_speed = fields.Float(load_default=None, allow_none=True)
    average_cadence = fields.Float(load_default=None, allow_none=True)
    average_heartrate = fields.Float(load_default=None, allow_none=True)
    calories = fields.Float(load_default=None, allow_none=True)
    total_elevation_gain = fields.Float(load_default=None, allow_none=True)
    trainer = fields.Boolean(load_default=False, allow_none=True)
    manual = fields.Boolean(load_default=False, allow_none=True)
    private = fields.Boolean(load_default=False, allow_none=True)
    laps = fields.List(fields.Nested(LapSchema), load_default=list, allow_none=True)

    @post_load
    def _to_activity(self, data: dict, **kwargs: Any) -> Activity:
        laps = tuple(
            Lap(
                index=lap["lap_index"] if lap["lap_index"] is not None else position + 1,
                name=lap["name"] or "",
                elapsed_time_s=lap["elapsed_time"] or 0.0,
                moving_time_s=lap["moving_time"] or 0.0,
                distance_m=lap["distance"] or 0.0,
                start_index=lap["start_index"],
                end_index=lap["end_index"],
                average_speed=lap["average_speed"],
                average_cadence=lap["average_cadence"],
            )
            for position, lap in enumerate(data["laps"] or [])
        )
        athlete = data["athlete"] or {}
        return Activity(
            id=data["id"],
            athlete_id=athlete.get("id"),
            name=data["name"] or "",
            description=data["description"] or "",
            sport_type=data["sport_type"] or data["type"] or "",
            distance_m=data["distance"] or 0.0,
            moving_time_s=data["moving_time"] or 0.0,
            elapsed_time_s=data["elapsed_time"] or 0.0,
            average_speed=data["average_speed"],
            average_cadence=data["average_cadence"],
            average_heartrate=data["average_heartrate"],
            calories=data["calories"],
            total_elevation_gain=data["total_elevation_gain"],
            trainer=bool(data["trainer"]),
            manual=bool(data["manual"]),
            private=bool(data["private"]),
            laps=laps,
        )


class SubscriptionSchema(_Lenient):
    id = fields.Integer(required=True)
    callback_url = fields.String(load_default="")


# Stream types Backstride asks for; each maps to a field of domain.Streams.
STREAM_KEYS = (
    "time",
    "distance",
    "velocity_smooth",
    "cadence",
    "heartrate",
    "grade_smooth",
    "altitude",
    "moving",
)


def load_streams(payload: Any) -> Streams | None:
    """Strava's streams in either shape: keyed by type ({"time": {"data": [...]}}) or a list of
    {"type": ..., "data": [...]}. A stream the device did not record is simply absent."""
    if isinstance(payload, list):
        items = [item for item in payload if isinstance(item, dict)]
        by_type = {item["type"]: item for item in items if isinstance(item.get("type"), str)}
    elif isinstance(payload, dict):
        by_type = payload
    else:
        raise ValidationError("streams must be an object keyed by type or a list")
    series: dict[str, tuple] = {}
    for key in STREAM_KEYS:
        entry = by_type.get(key)
        data = entry.get("data") if isinstance(entry, dict) else None
        if not isinstance(data, list) or not data:
            continue
        if key == "moving":
            series[key] = tuple(bool(v) for v in data)
        else:
            try:
                series[key] = tuple(float(v) if v is not None else 0.0 for v in data)
            except (TypeError, ValueError, OverflowError) as exc:
                raise ValidationError(f"stream {key!r} holds a value that is not a number") from exc
    if "time" not in series:
        return None
    length = len(series["time"])
    if any(len(values) != length for values in series.values()):
        raise ValidationError("streams have different lengths")
    return Streams(**series)
