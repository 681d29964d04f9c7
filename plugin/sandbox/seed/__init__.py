"""The sandbox's seed: a made-up demo athlete and activities built from real recordings (see generate.py)."""

from __future__ import annotations

import json
from pathlib import Path

from plugin.domain import Activity, Streams
from plugin.hosts.strava.schemas import ActivitySchema, load_streams

SEED_FILE = Path(__file__).with_name("seed.json")


def load_seed_activity(key: str) -> tuple[Activity, Streams | None]:
    """One seed activity as the webhook path builds it: through Strava's own schemas."""
    seed = json.loads(SEED_FILE.read_text(encoding="utf-8"))
    entry = next(e for e in seed["activities"] if e["key"] == key)
    activity = ActivitySchema().load({"id": 1, "athlete": {"id": seed["athlete"]["id"]}, **entry["activity"]})
    streams = entry["streams"]
    return activity, load_streams({k: {"data": v} for k, v in streams.items()}) if streams else None
