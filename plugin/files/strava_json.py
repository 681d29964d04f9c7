"""Strava's own JSON, read with the same schemas as the webhook path (plugin.hosts.strava.schemas).

Accepted shapes: the streams object keyed by type ({"time": {"data": [...]}, ...}) or Strava's list of
streams; {"activity": <DetailedActivity>, "streams": <streams>}; a DetailedActivity alone (no streams).
"""

from __future__ import annotations

import json
import math
from typing import Any

from marshmallow import ValidationError

from plugin.domain import Activity, Streams
from plugin.files._core import UnreadableFile, activity_from_streams, complete_streams
from plugin.hosts.strava.schemas import ActivitySchema, load_streams


def _reason(exc: ValidationError) -> str:
    """marshmallow's nested messages as one short line: 'id: Missing data for required field.'"""

    def walk(messages: Any, prefix: str) -> str:
        if isinstance(messages, dict) and messages:
            key, value = next(iter(messages.items()))
            return walk(value, f"{prefix}{key}: " if key != "_schema" else prefix)
        if isinstance(messages, list) and messages:
            return walk(messages[0], prefix)
        return f"{prefix}{messages}"

    return walk(exc.messages, "")


def _streams(payload: Any, where: str) -> Streams | None:
    try:
        streams = load_streams(payload)
    except ValidationError as exc:
        raise UnreadableFile(f"{where}{_reason(exc)}") from exc
    except (TypeError, AttributeError) as exc:
        raise UnreadableFile(f"{where}not in the shape of Strava's streams") from exc
    if streams is None:
        return None
    if any(not math.isfinite(t) for t in streams.time):
        raise UnreadableFile(f"{where}the time stream holds values that are not finite numbers")
    return complete_streams(streams)


def _activity(payload: Any) -> Activity:
    if not isinstance(payload, dict):
        raise UnreadableFile("'activity' must be an object (Strava's DetailedActivity)")
    try:
        activity = ActivitySchema().load(payload)
    except ValidationError as exc:
        raise UnreadableFile(f"activity: {_reason(exc)}") from exc
    return activity


def _is_streams(payload: Any) -> bool:
    if isinstance(payload, list):
        return any(isinstance(item, dict) and "type" in item and "data" in item for item in payload)
    return isinstance(payload, dict) and isinstance(payload.get("time"), dict)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number Strava writes")


def read(data: bytes, stem: str) -> tuple[Activity, Streams | None]:
    try:
        payload = json.loads(data.decode("utf-8-sig"), parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"JSON file is not UTF-8 text (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise UnreadableFile(f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from exc
    except ValueError as exc:
        raise UnreadableFile(f"not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise UnreadableFile("JSON nested too deeply") from exc
    if isinstance(payload, dict) and ("streams" in payload or "activity" in payload):
        streams = payload.get("streams")
        loaded = _streams(streams, "streams: ") if streams is not None else None
        if "activity" not in payload or payload["activity"] is None:
            if loaded is None:
                raise UnreadableFile("neither an activity nor streams with a 'time' series")
            return _default_activity(loaded, stem), loaded
        return _activity(payload["activity"]), loaded
    if _is_streams(payload):
        loaded = _streams(payload, "")
        if loaded is None:
            raise UnreadableFile("streams hold no 'time' series")
        return _default_activity(loaded, stem), loaded
    if isinstance(payload, dict) and "id" in payload and ("sport_type" in payload or "type" in payload):
        return _activity(payload), None
    raise UnreadableFile(
        'JSON is not Strava streams: expected {"time": {"data": [...]}, ...} '
        'or {"activity": {...}, "streams": {...}}'
    )


def _default_activity(streams: Streams, stem: str) -> Activity:
    return activity_from_streams(streams, activity_id=0, name=stem, sport_type="Run")
