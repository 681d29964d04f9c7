"""Reading Strava's rate-limit headers. Pure: headers and a clock in, a verdict out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

# How long to wait after a 429 whose headers still show headroom (DESIGN.md: a short backoff).
SHORT_BACKOFF = timedelta(seconds=30)
# Calls already in flight when the budget is checked (other worker threads and processes) still land after
# it: stop this many calls, or this share of the limit, before the limit so that they fit.
MARGIN_CALLS = 2
MARGIN_SHARE = 0.02


@dataclass(frozen=True)
class Window:
    limit: int
    usage: int

    @property
    def spent(self) -> bool:
        """Used up, keeping the margin for calls in flight."""
        return self.usage >= self.limit - max(MARGIN_CALLS, int(self.limit * MARGIN_SHARE))


@dataclass(frozen=True)
class RateLimitStatus:
    short: Window | None  # the 15-minute window with the least headroom (overall or non-upload)
    daily: Window | None

    def blocked_until(self, now: datetime) -> datetime | None:
        """When the next call may go out, if a window is spent; None when there is headroom."""
        if self.daily and self.daily.spent:
            return next_midnight(now)
        if self.short and self.short.spent:
            return next_quarter_hour(now)
        return None


def read_rate_limits(headers: Mapping[str, str]) -> RateLimitStatus | None:
    """X-RateLimit-* (overall) and X-ReadRateLimit-* (non-upload; every call Backstride makes) as
    "15min,daily" pairs. The tighter of the two counts for each window."""
    pairs = [
        _pair(headers.get(f"X-{kind}-Limit"), headers.get(f"X-{kind}-Usage"))
        for kind in ("RateLimit", "ReadRateLimit")
    ]
    pairs = [p for p in pairs if p is not None]
    if not pairs:
        return None
    shorts = [short for short, _ in pairs]
    dailies = [daily for _, daily in pairs]
    return RateLimitStatus(short=_tightest(shorts), daily=_tightest(dailies))


def retry_after_429(status: RateLimitStatus | None, now: datetime) -> tuple[datetime, bool]:
    """(when to try again, whether a whole window is spent) for a 429 answer."""
    blocked = status.blocked_until(now) if status else None
    if blocked is not None:
        return blocked, True
    return now + SHORT_BACKOFF, False


def next_quarter_hour(now: datetime) -> datetime:
    base = now.replace(minute=(now.minute // 15) * 15, second=0, microsecond=0)
    return base + timedelta(minutes=15)


def next_midnight(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def _pair(limit: str | None, usage: str | None) -> tuple[Window, Window] | None:
    try:
        limits = [int(v) for v in (limit or "").split(",")]
        usages = [int(v) for v in (usage or "").split(",")]
    except ValueError:
        return None
    if len(limits) != 2 or len(usages) != 2:
        return None
    return Window(limits[0], usages[0]), Window(limits[1], usages[1])


def _tightest(windows: list[Window]) -> Window:
    return min(windows, key=lambda w: w.limit - w.usage)
