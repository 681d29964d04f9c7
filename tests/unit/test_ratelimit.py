"""Reading Strava's rate-limit headers (plugin/hosts/strava/ratelimit.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from requests.structures import CaseInsensitiveDict

from plugin.hosts.strava.ratelimit import (
    BACKLOG_SHARE,
    Ledger,
    RateLimitStatus,
    Window,
    allowed_calls,
    read_rate_limits,
    retry_after_429,
)

# What Strava sends with the default budget: overall has headroom, the non-upload 15-min window is spent.
HEADERS = {
    "X-RateLimit-Limit": "200,2000",
    "X-RateLimit-Usage": "12,140",
    "X-ReadRateLimit-Limit": "100,1000",
    "X-ReadRateLimit-Usage": "100,300",
}


def headers(**overrides: str) -> dict[str, str]:
    """HEADERS with some values replaced; keyword names use _ for -."""
    result = dict(HEADERS)
    result.update({name.replace("_", "-"): value for name, value in overrides.items()})
    return result


def test_tighter_window_counts_for_each_period():
    status = read_rate_limits(HEADERS)

    assert status is not None
    # 15 min: overall 188 left, non-upload 0 left -> the non-upload window counts.
    assert status.short == Window(limit=100, usage=100)
    assert status.short.spent
    # Daily: overall 1860 left, non-upload 700 left -> the non-upload window counts, with headroom.
    assert status.daily == Window(limit=1000, usage=300)
    assert not status.daily.spent


def test_overall_window_counts_when_it_is_the_tighter_one():
    status = read_rate_limits(headers(X_RateLimit_Usage="199,1990", X_ReadRateLimit_Usage="10,20"))

    assert status is not None
    assert status.short == Window(limit=200, usage=199)
    assert status.daily == Window(limit=2000, usage=1990)


def test_lowercase_header_names_from_a_real_response_are_read():
    # requests hands the client a case-insensitive mapping; HTTP/2 servers send lowercase names.
    lowered = CaseInsensitiveDict({name.lower(): value for name, value in HEADERS.items()})

    assert read_rate_limits(lowered) == read_rate_limits(HEADERS)


def test_only_one_header_pair_present_is_enough():
    status = read_rate_limits({"X-RateLimit-Limit": "200,2000", "X-RateLimit-Usage": "12,140"})

    assert status == RateLimitStatus(short=Window(200, 12), daily=Window(2000, 140))


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2024, 5, 17, 10, 7, 13), datetime(2024, 5, 17, 10, 15)),
        (datetime(2024, 5, 17, 10, 59, 59), datetime(2024, 5, 17, 11, 0)),
        (datetime(2024, 5, 17, 23, 50), datetime(2024, 5, 18, 0, 0)),
        (datetime(2024, 12, 31, 23, 45, 0, 1), datetime(2025, 1, 1, 0, 0)),
        (datetime(2024, 5, 17, 10, 30, 0), datetime(2024, 5, 17, 10, 45)),
    ],
)
def test_spent_short_window_blocks_until_next_quarter_hour(now, expected):
    status = read_rate_limits(HEADERS)

    assert status is not None
    assert status.blocked_until(now) == expected


@pytest.mark.parametrize(
    "now",
    [datetime(2024, 5, 17, 10, 7, 13), datetime(2024, 5, 17, 0, 0, 0), datetime(2024, 2, 29, 23, 59, 59)],
)
def test_spent_daily_window_blocks_until_next_midnight_utc(now):
    status = read_rate_limits(headers(X_ReadRateLimit_Usage="12,1000"))

    assert status is not None
    blocked = status.blocked_until(now)
    assert blocked == datetime(now.year, now.month, now.day) + timedelta(days=1)


def test_spent_daily_window_wins_over_spent_short_window():
    status = read_rate_limits(headers(X_ReadRateLimit_Usage="100,1000"))

    assert status is not None
    assert status.blocked_until(datetime(2024, 5, 17, 10, 7, 13)) == datetime(2024, 5, 18, 0, 0)


def test_usage_beyond_the_limit_counts_as_spent():
    # Calls beyond the short limit still count, so usage can exceed the limit.
    status = read_rate_limits(headers(X_ReadRateLimit_Usage="130,1200"))

    assert status is not None
    assert status.blocked_until(datetime(2024, 5, 17, 10, 7, 13)) == datetime(2024, 5, 18, 0, 0)


def test_headroom_beyond_the_margin_blocks_nothing():
    # Limits 100 and 1000: the margins for calls in flight are 2 and 20 calls.
    status = read_rate_limits(headers(X_ReadRateLimit_Usage="97,979"))

    assert status is not None
    assert status.blocked_until(datetime(2024, 5, 17, 10, 7, 13)) is None


@pytest.mark.parametrize(
    ("usage", "until"),
    [("98,500", datetime(2024, 5, 17, 10, 15)), ("10,980", datetime(2024, 5, 18, 0, 0))],
)
def test_usage_within_the_margin_counts_as_spent(usage, until):
    # Other workers' calls may be in flight: stop before the limit so that they still fit.
    status = read_rate_limits(headers(X_ReadRateLimit_Usage=usage))

    assert status is not None
    assert status.blocked_until(datetime(2024, 5, 17, 10, 7, 13)) == until


@pytest.mark.parametrize(
    "garbled",
    [
        {},
        {"Content-Type": "application/json"},
        {"X-RateLimit-Limit": "200,2000"},  # usage missing
        {"X-RateLimit-Usage": "12,140"},  # limit missing
        {"X-RateLimit-Limit": "200", "X-RateLimit-Usage": "12"},  # one window only
        {"X-RateLimit-Limit": "200,2000,3", "X-RateLimit-Usage": "12,140,1"},
        {"X-RateLimit-Limit": "lots,more", "X-RateLimit-Usage": "12,140"},
        {"X-RateLimit-Limit": "200,2000", "X-RateLimit-Usage": ""},
        {"X-RateLimit-Limit": "200;2000", "X-RateLimit-Usage": "12;140"},
        {"X-ReadRateLimit-Limit": "100,1000", "X-ReadRateLimit-Usage": "1.5,300"},
    ],
)
def test_missing_or_garbled_headers_give_none(garbled):
    assert read_rate_limits(garbled) is None


def test_garbled_pair_is_skipped_and_the_good_one_used():
    status = read_rate_limits(headers(X_ReadRateLimit_Limit="n/a"))

    assert status == RateLimitStatus(short=Window(200, 12), daily=Window(2000, 140))


def test_retry_after_429_with_headroom_is_a_short_backoff():
    now = datetime(2024, 5, 17, 10, 7, 13)
    status = read_rate_limits(headers(X_ReadRateLimit_Usage="42,300"))

    retry_at, window_spent = retry_after_429(status, now)

    assert retry_at == now + timedelta(seconds=30)
    assert window_spent is False


def test_retry_after_429_without_headers_is_a_short_backoff():
    now = datetime(2024, 5, 17, 10, 7, 13)

    assert retry_after_429(None, now) == (now + timedelta(seconds=30), False)


def test_retry_after_429_with_headroom_waits_the_backoff_it_is_given():
    now = datetime(2024, 5, 17, 10, 7, 13)

    assert retry_after_429(None, now, timedelta(seconds=2)) == (now + timedelta(seconds=2), False)


def test_retry_after_429_with_spent_window_waits_for_the_window():
    now = datetime(2024, 5, 17, 10, 7, 13)

    retry_at, window_spent = retry_after_429(read_rate_limits(HEADERS), now)

    assert retry_at == datetime(2024, 5, 17, 10, 15)
    assert window_spent is True


# --- the fleet's ledger: every call counted before it goes out ---------------------------------------------

T0 = datetime(2026, 11, 21, 10, 3, 0)


def spend(ledger: Ledger, now: datetime, share: float = 1.0) -> tuple[int, datetime]:
    """Count calls until the ledger says wait; (calls counted, when to try again)."""
    calls = 0
    while isinstance(after := ledger.one_more_call(now, share), Ledger):
        ledger, calls = after, calls + 1
    return calls, after


def test_allowed_calls_keep_the_margin_for_calls_in_flight():
    assert allowed_calls(100) == 98
    assert allowed_calls(1000) == 980
    assert allowed_calls(100, BACKLOG_SHARE) == 78


def test_the_ledger_stops_at_the_allowance_and_says_when_the_window_reopens():
    calls, retry_at = spend(Ledger(Window(100, 10), Window(1000, 500), T0), T0)
    assert calls == 88  # 10 counted already, 98 allowed
    assert retry_at == datetime(2026, 11, 21, 10, 15)


def test_the_daily_window_stops_the_ledger_until_midnight_utc():
    calls, retry_at = spend(Ledger(Window(100, 0), Window(1000, 975), T0), T0)
    assert calls == 5
    assert retry_at == datetime(2026, 11, 22, 0, 0)


def test_a_new_quarter_hour_starts_the_short_count_from_zero_but_not_the_daily_one():
    ledger = Ledger(Window(100, 98), Window(1000, 600), T0)
    assert isinstance(ledger.one_more_call(T0), datetime)
    after = ledger.one_more_call(T0 + timedelta(minutes=12))  # 10:15
    assert isinstance(after, Ledger)
    assert after.short == Window(100, 1) and after.daily == Window(1000, 601)


def test_a_new_day_starts_both_counts_from_zero():
    after = Ledger(Window(100, 98), Window(1000, 980), T0).one_more_call(datetime(2026, 11, 22, 0, 0, 1))
    assert isinstance(after, Ledger)
    assert after.short == Window(100, 1) and after.daily == Window(1000, 1)


def test_the_backlog_leaves_a_share_of_each_window_to_fresh_activities():
    ledger = Ledger(Window(100, 0), Window(1000, 0), T0)
    backlog, _ = spend(ledger, T0, BACKLOG_SHARE)
    assert backlog == 78
    after_backlog = Ledger(Window(100, backlog), Window(1000, backlog), T0)
    fresh, _ = spend(after_backlog, T0)
    assert fresh == 20  # what the backlog may not take stays for new activities
