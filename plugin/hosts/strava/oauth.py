"""What Backstride asks of the athlete at Strava's consent screen, and how to read what was granted."""

from __future__ import annotations

# Requested at /connect. activity:read_all covers "Only You" activities; activity:write lets us write the
# note; profile:read_all gives weight and units (without it the note says it assumed a weight).
REQUESTED_SCOPES = ("activity:read_all", "activity:write", "profile:read_all")
REQUIRED_SCOPES = frozenset({"activity:read_all", "activity:write"})

SCOPE_PURPOSE = {
    "activity:read_all": "read your activities, including ones only you can see, to find backward efforts",
    "activity:write": "write the Backstride note into your activity's description",
    "profile:read_all": "read your weight and units so calories and distances fit you",
}


def parse_granted(scope_param: str | None) -> frozenset[str]:
    """Strava returns the granted scopes comma separated in the callback's `scope` parameter."""
    return frozenset(s.strip() for s in (scope_param or "").split(",") if s.strip())


def missing_required(granted: frozenset[str]) -> list[str]:
    return sorted(REQUIRED_SCOPES - granted)
