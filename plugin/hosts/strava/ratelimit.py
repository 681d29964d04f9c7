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
# Fresh activities come first. Work put off from an earlier window (deferred when a window was spent, or
# retried after a fault: the backlog) may use only this share of each window, so that the rest stays for
# activities uploaded now, whose runners are looking at them.
BACKLOG_SHARE = 0.8


@dataclass(frozen=True)
class Window:
    limit: int
    usage: int

    @property
    def spent(self) -> bool:
        """Used up, keeping the margin for calls in flight."""
        return self.usage >= allowed_calls(self.limit)


def allowed_calls(limit: int, share: float = 1.0) -> int:
    """How many calls of a window of `limit` may go out: `share` of it, less the margin for calls in
    flight."""
    return int(limit * share) - max(MARGIN_CALLS, int(limit * MARGIN_SHARE))


@dataclass(frozen=True)
class Ledger:
    """The fleet's own count of the calls made in the current windows, kept in the shared database: each
    call is counted before it goes out, so calls in flight in other processes are never overlooked, and
    the host's headers (which count only calls that arrived) can only raise it."""

    short: Window | None
    daily: Window | None
    counted_at: datetime  # the windows the counts belong to are the ones holding this moment

    def at(self, now: datetime) -> Ledger:
        """The same counts, with any window that has ended since counted_at started again from zero."""
        short, daily = self.short, self.daily
        if short and quarter_hour_start(self.counted_at) < quarter_hour_start(now):
            short = Window(short.limit, 0)
        if daily and day_start(self.counted_at) < day_start(now):
            daily = Window(daily.limit, 0)
        return Ledger(short, daily, now)

    def one_more_call(self, now: datetime, share: float = 1.0) -> Ledger | datetime:
        """The ledger with one more call counted, or, when the windows' allowance is used, when to try
        again (the next quarter hour, or midnight UTC for the daily window)."""
        current = self.at(now)
        if current.daily and current.daily.usage >= allowed_calls(current.daily.limit, share):
            return next_midnight(now)
        if current.short and current.short.usage >= allowed_calls(current.short.limit, share):
            return next_quarter_hour(now)
        return Ledger(
            Window(current.short.limit, current.short.usage + 1) if current.short else None,
            Window(current.daily.limit, current.daily.usage + 1) if current.daily else None,
            now,
        )


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


def retry_after_429(
    status: RateLimitStatus | None, now: datetime, short_backoff: timedelta = SHORT_BACKOFF
) -> tuple[datetime, bool]:
    """(when to try again, whether a whole window is spent) for a 429 answer."""
    blocked = status.blocked_until(now) if status else None
    if blocked is not None:
        return blocked, True
    return now + short_backoff, False


def quarter_hour_start(now: datetime) -> datetime:
    return now.replace(minute=(now.minute // 15) * 15, second=0, microsecond=0)


def next_quarter_hour(now: datetime) -> datetime:
    return quarter_hour_start(now) + timedelta(minutes=15)


def day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def next_midnight(now: datetime) -> datetime:
    return day_start(now) + timedelta(days=1)


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
