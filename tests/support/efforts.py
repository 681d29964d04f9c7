"""Made-up backward efforts for the analysis tests."""

from __future__ import annotations

from plugin.domain import Effort


def effort(
    distance_m: float,
    duration_s: float,
    gait: str = "run",
    steps: int | None = None,
    source: str = "stream",
    start_s: float = 0.0,
) -> Effort:
    """One effort from start_s, its moving time its whole duration, confidence 0.9."""
    return Effort(start_s, start_s + duration_s, distance_m, duration_s, steps, 0.9, source, gait)  # type: ignore[arg-type]
