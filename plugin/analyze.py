"""`backstride analyze FILE`: the same detection and note as the webhook path, on a file, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from plugin.analysis.notes import M_PER_MILE, format_duration
from plugin.analysis.summary import Analysis, analyse
from plugin.domain import DEFAULT_WEIGHT_KG, Activity, AthleteProfile, Units
from plugin.files import read_activity_file


def analyse_file(
    path: str | Path, weight_kg: float | None, units: Units, sources_url: str
) -> tuple[Activity, Analysis]:
    """Raises plugin.files.ActivityFileError for a file that cannot be read."""
    loaded = read_activity_file(path)
    if weight_kg is None:
        profile = AthleteProfile(DEFAULT_WEIGHT_KG, "default", units)
    else:
        profile = AthleteProfile(weight_kg, "settings", units)
    return loaded.activity, analyse(loaded.activity, loaded.streams, profile, sources_url)


def as_json(activity: Activity, result: Analysis) -> dict[str, Any]:
    """The shape DESIGN.md fixes for `analyze --json`."""
    energy = result.energy
    knee = result.knee
    return {
        "activity": {
            "id": activity.id,
            "name": activity.name,
            "sport_type": activity.sport_type,
            "distance_m": round(activity.distance_m, 1),
            "moving_time_s": round(activity.moving_time_s, 1),
            "elapsed_time_s": round(activity.elapsed_time_s, 1),
        },
        "efforts": [
            {
                "start_s": round(e.start_s, 1),
                "end_s": round(e.end_s, 1),
                "distance_m": round(e.distance_m, 1),
                "duration_s": round(e.duration_s, 1),
                "steps": e.steps,
                "confidence": round(e.confidence, 3),
                "source": e.source,
            }
            for e in result.efforts
        ],
        "energy": {
            "kcal": _kcal(energy.kcal if energy else None, result),
            "kcal_low": _kcal(energy.kcal_low if energy else None, result),
            "kcal_high": _kcal(energy.kcal_high if energy else None, result),
            "kcal_if_forward": _kcal(energy.kcal_if_forward if energy else None, result),
            # "distance": ACSM equations x backward factor; "time": Compendium METs (no distance).
            "basis": energy.basis if energy else None,
            "less_certain": energy.less_certain if energy else None,
            "extra_low": _kcal(energy.extra_low if energy else None, result),
            "extra_high": _kcal(energy.extra_high if energy else None, result),
            "host_calories": activity.calories,
        },
        "knee": {
            "per_step": knee.per_step if knee else None,
            "pfj_per_step_change": knee.pfj_per_step_change if knee else None,
            "steps": knee.steps if knee else None,
            "steps_per_km": _round(knee.steps_per_km if knee else None),
            "forward_steps_per_km": _round(knee.forward_steps_per_km if knee else None),
            "per_km_change": _round(knee.per_km_change if knee else None, 3),
        },
        "note": result.note.text if result.note else "",
    }


def as_text(activity: Activity, result: Analysis, units: Units) -> str:
    """The note, then a small table of the efforts."""
    lines = [f"{activity.name} ({activity.sport_type or 'unknown sport'})", ""]
    if not result.efforts:
        lines.append("No backward effort found.")
        return "\n".join(lines)
    lines += [result.note.text if result.note else "", ""]
    unit = "mi" if units == "imperial" else "km"
    per_unit = M_PER_MILE if units == "imperial" else 1000.0
    lines.append(
        f"{'#':>2}  {'start':>7}  {'end':>7}  {unit:>6}  {'time':>7}  {'steps':>6}  {'conf':>4}  source"
    )
    for number, e in enumerate(result.efforts, 1):
        steps = "-" if e.steps is None else str(e.steps)
        lines.append(
            f"{number:>2}  {format_duration(e.start_s):>7}  {format_duration(e.end_s):>7}  "
            f"{e.distance_m / per_unit:>6.2f}  {format_duration(e.duration_s):>7}  {steps:>6}  "
            f"{e.confidence:>4.2f}  {e.source}"
        )
    return "\n".join(lines)


def render(activity: Activity, result: Analysis, units: Units, as_json_output: bool) -> str:
    if as_json_output:
        return json.dumps(as_json(activity, result), ensure_ascii=False, indent=2)
    return as_text(activity, result, units)


def _kcal(value: float | None, result: Analysis) -> float | None:
    if not result.efforts:
        return 0.0  # nothing backward: nothing spent backward
    return None if value is None else round(value, 1)


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)
