"""One event in, at most one description written out. The only module that ties hosts/, analysis/ and
store/ together; it parses no HTTP and knows no Flask or queue."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from plugin.analysis.detect import DetectionMode, wants_streams
from plugin.analysis.notes import RECENT_DAYS, has_note, merge_note
from plugin.analysis.summary import analyse, own_words
from plugin.domain import DEFAULT_WEIGHT_KG, NOTE_STYLES, Activity, AthleteProfile, Effort
from plugin.hosts.base import (
    BadResponse,
    Forbidden,
    Host,
    HostUnavailable,
    NotFound,
    RateLimited,
    Unauthorized,
)
from plugin.hosts.strava.ratelimit import (
    BACKLOG_SHARE,
    Ledger,
    Window,
    next_quarter_hour,
    quarter_hour_start,
)
from plugin.store import (
    DATABASE_UNAVAILABLE,
    Athlete,
    ClaimedEvent,
    ForgottenActivity,
    ProcessedActivity,
    RateCounts,
    RecordChange,
    Store,
    TokenSet,
    describe_database_error,
    utcnow,
)
from plugin.store.crypto import TokenUnreadable

log = logging.getLogger(__name__)

T = TypeVar("T")

# A worker's lease on an event; a worker that dies mid-job loses it after this and the event is resumed.
EVENT_LEASE = timedelta(minutes=5)
# Retries of a job that failed for a transient reason (host down, unexpected error), then it is dead.
MAX_ATTEMPTS = 6
# Host calls per event, in the normal case (a 401's refresh and retry aside): the activity, its streams and
# the update for an annotated activity; the activity alone for one we leave alone; nothing for a duplicate.
CALLS_PER_ANNOTATED_ACTIVITY = 3
CALLS_PER_IGNORED_ACTIVITY = 1
CALLS_PER_DUPLICATE_EVENT = 0
# One athlete's events may spend at most this share of a 15-minute window's host calls (the rest stays for
# everybody else), and never less than ATHLETE_MIN_CALLS (ten activities: more than any runner uploads in a
# quarter hour); DEFAULT_SHORT_LIMIT stands for the limit before the host's first answer has told it.
ATHLETE_SHARE = 0.25
ATHLETE_MIN_CALLS = 10 * CALLS_PER_ANNOTATED_ACTIVITY
DEFAULT_SHORT_LIMIT = 100
RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)
# Wait before looking again at an event whose earlier sibling (same activity) is still being processed.
BUSY_RETRY = timedelta(seconds=2)
# How long a process waits for another one's token refresh before giving up for now.
REFRESH_LEASE_S = 30.0
# Attempts at counting a host call when other processes keep changing the counts at the same moment.
RESERVE_TRIES = 20
# When a job lost the database after its claim but could put the event back, it looks again after this.
DATABASE_RETRY = timedelta(seconds=30)


class NeedsReconnect(Exception):
    """The host no longer accepts this athlete's tokens."""


class Deferred(Exception):
    """Try again at retry_at; not a failure (rate-limit window spent)."""

    def __init__(self, retry_at: datetime, reason: str) -> None:
        super().__init__(reason)
        self.retry_at = retry_at


@dataclass(frozen=True)
class Outcome:
    status: str  # done | ignored | failed
    reason: str
    host_calls: int = 0
    # The activity's record to save or forget, written with the event's settlement.
    record: RecordChange | None = None


@dataclass(frozen=True)
class Verdict:
    """What the queue should do after handling an event: nothing more, or run it again after `delay`."""

    outcome: str
    delay: timedelta | None = None


class Pipeline:
    def __init__(
        self,
        store: Store,
        host: Host,
        *,
        sources_url: str,
        refresh_margin_s: int = 600,
        retry_base: timedelta = RETRY_BASE,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.host = host
        self.sources_url = sources_url  # the public page of sources each note links to
        self.refresh_margin_s = refresh_margin_s
        self.retry_base = retry_base
        self._clock = clock
        self._sleep = sleep

    # --- the queue's entry point ----------------------------------------------------------------------

    def handle_event(self, event_id: int) -> Verdict:
        """Claim, process and settle one inbox event. Safe to call any number of times for one event."""
        try:
            claimed = self.store.claim_event(event_id, EVENT_LEASE)
        except DATABASE_UNAVAILABLE as exc:
            # Nothing was claimed, so nothing is counted: the event waits, pending, in the inbox, and the
            # resume task enqueues it again once the database answers (no retry chain per event meanwhile).
            log.warning(
                "event %s: database unavailable, not claimed: %s", event_id, describe_database_error(exc)
            )
            return Verdict("database unavailable")
        if claimed == "gone":
            return Verdict("already settled")
        if claimed == "busy":
            return Verdict("busy", BUSY_RETRY)
        if claimed == "later":
            event = self.store.event(event_id)
            wait = (event.not_before - utcnow()) if event and event.not_before else BUSY_RETRY
            return Verdict("not yet due", max(wait, timedelta(seconds=1)))
        assert isinstance(claimed, ClaimedEvent)
        try:
            outcome = self.process(claimed)
            self.store.finish_event(
                claimed.id, outcome.status, outcome.reason, outcome.host_calls, outcome.record
            )
        except Deferred as exc:
            self.store.defer_event(claimed.id, exc.retry_at, str(exc), refund_attempt=True)
            return Verdict("deferred", max(exc.retry_at - utcnow(), timedelta(seconds=1)))
        except DATABASE_UNAVAILABLE as exc:
            return self._wait_for_database(claimed, exc)
        except (HostUnavailable, BadResponse) as exc:
            return self._retry_or_bury(claimed, str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must not lose the event: retry, then dead-letter
            log.exception("event %s: unexpected error", claimed.id)
            return self._retry_or_bury(claimed, f"internal error: {type(exc).__name__}")
        log.info(
            "event %s %s: %s (%d host calls)", claimed.id, outcome.status, outcome.reason, outcome.host_calls
        )
        return Verdict(outcome.status)

    def _wait_for_database(self, event: ClaimedEvent, exc: Exception) -> Verdict:
        # The database failed under a claimed job. That is not the event's fault, so it is not a failed
        # attempt: counted, a long or flapping outage would dead-letter every event in flight. When the
        # database answers again at once, the event goes back with its attempt refunded; when it does not,
        # the event keeps its lease and the resume task takes it up once the lease has run out. Running it
        # again is safe: a note already written is found in place and not written a second time.
        log.warning("event %s: database unavailable mid-job: %s", event.id, describe_database_error(exc))
        try:
            self.store.defer_event(
                event.id, utcnow() + DATABASE_RETRY, "will retry: database unavailable", refund_attempt=True
            )
        except DATABASE_UNAVAILABLE:
            return Verdict("database unavailable")
        return Verdict("database unavailable", DATABASE_RETRY)

    def _retry_or_bury(self, event: ClaimedEvent, reason: str) -> Verdict:
        if event.attempts >= MAX_ATTEMPTS:
            self.store.finish_event(event.id, "dead", f"gave up after {event.attempts} attempts: {reason}")
            log.error("event %s dead after %d attempts: %s", event.id, event.attempts, reason)
            return Verdict("dead")
        backoff = min(self.retry_base * (2 ** (event.attempts - 1)), RETRY_CAP)
        delay = backoff * (0.75 + random.random() / 2)  # noqa: S311 - jitter, not security
        self.store.defer_event(event.id, utcnow() + delay, f"will retry: {reason}", refund_attempt=False)
        log.warning(
            "event %s attempt %d failed, retry in %ds: %s",
            event.id,
            event.attempts,
            delay.total_seconds(),
            reason,
        )
        return Verdict("retrying", delay)

    # --- deciding what one event means ----------------------------------------------------------------

    def process(self, event: ClaimedEvent) -> Outcome:
        if event.object_type == "athlete":
            if event.aspect_type == "update" and event.updates.get("authorized") == "false":
                return self._deauthorization(event.owner_id)
            return Outcome("ignored", "athlete event other than deauthorization")

        if event.aspect_type == "delete":
            return Outcome(
                "done",
                "activity deleted: its record removed",
                record=ForgottenActivity(event.object_id, event.owner_id),
            )
        if event.aspect_type == "update" and not ({"title", "type", "sport_type"} & event.updates.keys()):
            return Outcome("ignored", "update that changes neither title nor type")

        athlete = self.store.athlete(event.owner_id)
        if athlete is None:
            return Outcome("ignored", "athlete is not connected")
        if athlete.needs_reconnect:
            return Outcome("failed", "athlete must reconnect")
        if (athlete.settings or {}).get("paused"):
            return Outcome("ignored", "athlete paused annotations")
        self._within_fair_share(athlete.id, event.id)
        share = BACKLOG_SHARE if event.put_off else 1.0
        return _Annotation(self, athlete, event.object_id, share).run()

    def _within_fair_share(self, athlete_id: int, event_id: int) -> None:
        """Deferred to the next 15-minute window when this athlete's events (real or forged: webhooks are not
        signed) have spent their fair share of the window's host calls: one athlete cannot starve others."""
        counts = self.store.rate_counts(self.host.name)
        limit = counts.short[0] if counts is not None and counts.short else DEFAULT_SHORT_LIMIT
        now = utcnow()
        window = quarter_hour_start(now)
        spent = self.store.athlete_calls_since(athlete_id, window, CALLS_PER_ANNOTATED_ACTIVITY, event_id)
        if spent + CALLS_PER_ANNOTATED_ACTIVITY > max(ATHLETE_SHARE * limit, ATHLETE_MIN_CALLS):
            raise Deferred(
                next_quarter_hour(now),
                f"the athlete's share of the host's 15-minute budget is used ({spent} calls)",
            )

    def _deauthorization(self, athlete_id: int) -> Outcome:
        """Webhook events are not signed: a deauthorization deletes nothing until the host confirms it. The
        athlete's token is tried on the host (refreshed once if refused); only when the host refuses both the
        token and the refresh is the grant gone, and then everything of theirs is deleted at once."""
        athlete = self.store.athlete(athlete_id)
        if athlete is None:
            return Outcome("ignored", "athlete is not connected")
        probe = _AthleteCalls(self, athlete, 1.0)
        try:
            probe.call(self.host.fetch_athlete)
        except NeedsReconnect:
            self.store.delete_athlete(athlete_id)
            return Outcome(
                "done", "deauthorization confirmed by the host: everything of theirs deleted", probe.calls
            )
        except RateLimited as exc:
            raise Deferred(exc.retry_at, str(exc)) from exc
        unconfirmed = "deauthorization not confirmed: the host still accepts the athlete's token"
        return Outcome("ignored", unconfirmed, probe.calls)

    # --- tokens and host calls ------------------------------------------------------------------------

    def access_token(
        self, athlete_id: int, rejected: str | None = None, known: TokenSet | None = None
    ) -> str:
        """A token the host should accept, refreshing it when it expires soon (or was just `rejected`).
        `known`: the athlete's tokens as just read, to look at before reading them again.

        Exactly one process refreshes at a time (a lease in the database); the others wait for the
        rotated token instead of spending the old refresh token, which the host invalidates at once.
        """
        try:
            return self._access_token(athlete_id, rejected, known)
        except TokenUnreadable as exc:
            # Written with a key no longer configured: only a new grant helps.
            self.store.mark_needs_reconnect(athlete_id)
            raise NeedsReconnect(str(exc)) from exc

    def _access_token(self, athlete_id: int, rejected: str | None, known: TokenSet | None) -> str:
        deadline = self._clock() + REFRESH_LEASE_S
        while True:
            tokens = known if known is not None else self.store.tokens(athlete_id)
            known = None  # a second look (after waiting for another process's refresh) reads them again
            if tokens is None:
                raise NeedsReconnect("athlete is no longer connected")
            usable = tokens.access_token != rejected
            if usable and tokens.expires_at - self._clock() > self.refresh_margin_s:
                return tokens.access_token
            if self.store.acquire_refresh_lease(athlete_id, self._clock(), REFRESH_LEASE_S):
                return self._refresh_holding_lease(athlete_id, rejected)
            if self._clock() > deadline:
                raise HostUnavailable("another process's token refresh did not finish in time")
            self._sleep(0.2)

    def _refresh_holding_lease(self, athlete_id: int, rejected: str | None) -> str:
        try:
            tokens = self.store.tokens(athlete_id)
            if tokens is None:
                raise NeedsReconnect("athlete is no longer connected")
            # Someone may have refreshed between our read and the lease.
            if tokens.access_token != rejected and tokens.expires_at - self._clock() > self.refresh_margin_s:
                self.store.release_refresh_lease(athlete_id)
                return tokens.access_token
            grant = self.host.refresh(tokens.refresh_token)
        except Unauthorized as exc:
            self.store.mark_needs_reconnect(athlete_id)
            raise NeedsReconnect(str(exc)) from exc
        except BaseException:
            self.store.release_refresh_lease(athlete_id)
            raise
        self.store.store_refreshed_tokens(
            athlete_id, TokenSet(grant.access_token, grant.refresh_token, grant.expires_at)
        )
        return grant.access_token

    def reserve_call(self, share: float = 1.0) -> None:
        """Count one host call against the fleet's budget before it is made; Deferred when the windows'
        allowance (`share` of it: BACKLOG_SHARE for backlog) is used up or the host said to wait."""
        for _ in range(RESERVE_TRIES):
            now = utcnow()
            counts = self.store.rate_counts(self.host.name)
            if counts is None:
                return  # no answer from the host yet: its first one's headers give the limits
            if counts.blocked_until is not None and counts.blocked_until > now:
                raise Deferred(
                    counts.blocked_until, f"host rate limit spent until {_iso(counts.blocked_until)}"
                )
            ledger = Ledger(
                Window(*counts.short) if counts.short else None,
                Window(*counts.daily) if counts.daily else None,
                counts.counted_at,
            )
            after = ledger.one_more_call(now, share)
            if isinstance(after, datetime):
                whose = "the backlog's share of the" if share < 1 else "the"
                raise Deferred(after, f"{whose} host rate limit is used until {_iso(after)}")
            new = RateCounts(
                (after.short.limit, after.short.usage) if after.short else None,
                (after.daily.limit, after.daily.usage) if after.daily else None,
                now,
            )
            if self.store.swap_rate_counts(self.host.name, counts, new):
                return
        # Many processes counting at the same moment: let this one come back in a moment.
        raise Deferred(utcnow() + BUSY_RETRY, "host rate budget busy")


def _iso(moment: datetime) -> str:
    return f"{moment.isoformat()}Z"


class _AthleteCalls:
    """Host calls with one athlete's token, each counted against the budget first; a refused token gets one
    refresh, and a host that refuses the refreshed one too means the athlete must reconnect."""

    def __init__(self, pipeline: Pipeline, athlete: Athlete, budget_share: float) -> None:
        self.pipeline = pipeline
        self.budget_share = budget_share
        self.store = pipeline.store
        self.host = pipeline.host
        self.athlete = athlete
        self.calls = 0
        # The token of these calls: taken from the athlete as read, refreshed only when it expires within
        # the refresh margin (minutes, longer than an annotation takes) or the host refuses it.
        self._token: str | None = None

    def call(self, request: Callable[[str], T]) -> T:
        """One host call with the athlete's token: budget checked first; a 401 gets one refresh."""
        self.pipeline.reserve_call(self.budget_share)
        if self._token is None:
            self._token = self.pipeline.access_token(self.athlete.id, known=self._known_tokens())
        self.calls += 1
        try:
            return request(self._token)
        except Unauthorized:
            self._token = self.pipeline.access_token(self.athlete.id, rejected=self._token)
        self.pipeline.reserve_call(self.budget_share)
        self.calls += 1
        try:
            return request(self._token)
        except Unauthorized as exc:
            self.store.mark_needs_reconnect(self.athlete.id)
            raise NeedsReconnect("the host refused a freshly refreshed token") from exc

    def _known_tokens(self) -> TokenSet | None:
        """The tokens of the athlete as read; None when no configured key opens them (access_token then
        reads them again and says the athlete must reconnect)."""
        try:
            return self.store.token_set(self.athlete)
        except TokenUnreadable:
            return None


class _Annotation(_AthleteCalls):
    """Fetch one activity, find its backward efforts and write the note: at most three host calls."""

    def __init__(self, pipeline: Pipeline, athlete: Athlete, activity_id: int, budget_share: float) -> None:
        super().__init__(pipeline, athlete, budget_share)
        self.activity_id = activity_id

    def run(self) -> Outcome:
        try:
            return self._annotate()
        except NotFound:
            return self._outcome(
                "done", "activity no longer exists", ForgottenActivity(self.activity_id, self.athlete.id)
            )
        except Forbidden as exc:
            return self._outcome("failed", f"not permitted by the granted scopes: {exc}")
        except NeedsReconnect as exc:
            return self._outcome("failed", f"athlete must reconnect ({exc})")
        except RateLimited as exc:
            raise Deferred(exc.retry_at, str(exc)) from exc

    def _annotate(self) -> Outcome:
        activity = self.call(lambda token: self.host.fetch_activity(token, self.activity_id))
        if activity.athlete_id is not None and activity.athlete_id != self.athlete.id:
            return self._outcome("failed", "activity belongs to another athlete")
        if not activity.is_foot_sport:
            if has_note(activity.description):
                # Retyped to a sport we do not annotate: our note no longer applies.
                return self._write(activity, None, [])
            return self._outcome("ignored", f"sport {activity.sport_type or 'unknown'} is not on foot")

        mode = detection_mode(self.athlete)
        streams = None
        if wants_streams(own_words(activity), mode):
            streams = self.call(lambda token: self.host.fetch_streams(token, self.activity_id))
        # Records are kept for 7 days, exactly the window the careful-start tip compares against.
        recent = self.store.backward_seconds_since(
            self.athlete.id, utcnow() - timedelta(days=RECENT_DAYS), except_activity_id=self.activity_id
        )
        profile = profile_for(self.athlete)
        result = analyse(
            activity, streams, profile, self.pipeline.sources_url, mode, recent_backward_s=recent
        )
        note_text = result.note.text if result.note else None
        return self._write(activity, note_text, list(result.efforts), result.remark)

    def _write(
        self, activity: Activity, note_text: str | None, efforts: list[Effort], remark: str | None = None
    ) -> Outcome:
        merged = merge_note(activity.description, note_text)
        if merged is None:
            return self._outcome(
                "failed", "the note in the description was edited by the athlete; left alone"
            )
        changed = merged != (activity.description or "")
        if changed:
            # Disconnect wins: an athlete deleted while this job fetched and analysed gets no write.
            if not self.store.is_connected(self.athlete.id):
                return self._outcome("ignored", "athlete disconnected meanwhile: nothing written")
            self.call(lambda token: self.host.update_description(token, self.activity_id, merged))
        record = ProcessedActivity(
            activity_id=self.activity_id,
            athlete_id=self.athlete.id,
            efforts=len(efforts),
            backward_m=sum(e.distance_m for e in efforts),
            backward_s=sum(e.duration_s for e in efforts),
            note=note_text,
            written=changed,
            remark=remark,
        )
        if not changed:
            what = "description already up to date" if note_text else (remark or "nothing to say")
        else:
            what = f"note written ({len(efforts)} backward efforts)" if note_text else "note removed"
        return self._outcome("done", what, record)

    def _outcome(self, status: str, reason: str, record: RecordChange | None = None) -> Outcome:
        return Outcome(status, reason, self.calls, record)


def detection_mode(athlete: Athlete) -> DetectionMode:
    """Automatic detection unless the athlete chose to be annotated only when they tag an activity."""
    return "tagged" if (athlete.settings or {}).get("detection") == "tagged" else "auto"


def profile_for(athlete: Athlete) -> AthleteProfile:
    """Weight from the athlete's settings, else the host profile, else the default (said in the note)."""
    settings = athlete.settings or {}
    units = settings.get("units") if settings.get("units") in ("metric", "imperial") else None
    units = units or (athlete.host_units if athlete.host_units in ("metric", "imperial") else "metric")
    style = settings.get("note_style") if settings.get("note_style") in NOTE_STYLES else "detailed"
    if settings.get("weight_kg"):
        return AthleteProfile(float(settings["weight_kg"]), "settings", units, style)
    if athlete.host_weight_kg:
        return AthleteProfile(float(athlete.host_weight_kg), "host", units, style)
    return AthleteProfile(DEFAULT_WEIGHT_KG, "default", units, style)


__all__ = ["Pipeline", "Outcome", "Verdict", "Deferred", "NeedsReconnect", "profile_for"]
