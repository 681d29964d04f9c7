"""The database: engine set-up and the few queries the app needs. No Flask, no HTTP."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Engine,
    Insert,
    Text,
    and_,
    bindparam,
    case,
    cast,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, aliased, sessionmaker

from plugin.store import sqlite
from plugin.store.crypto import TokenCipher, TokenUnreadable
from plugin.store.liveness import StaleConnectionCheck
from plugin.store.models import ActivityRecord, AppState, Athlete, InboxEvent, RateLimitState
from plugin.store.prepared import PreparedStatement, wrap_driver_error

T = TypeVar("T")

__all__ = [
    "DATABASE_UNAVAILABLE",
    "describe_database_error",
    "Store",
    "TokenSet",
    "NewEvent",
    "ClaimedEvent",
    "ProcessedActivity",
    "ForgottenActivity",
    "RecordChange",
    "RateCounts",
    "utcnow",
    "Athlete",
    "InboxEvent",
]

# Activity data and everything derived from it is kept at most this long (DESIGN.md, data policy).
RETENTION = timedelta(days=7)
SUBSCRIPTION_KEY = "strava_subscription_id"
# Event states: pending (waiting, maybe until not_before), working (leased by a worker), then one of the
# final states done, ignored, failed (will not be retried; outcome says why) or dead (retries exhausted).
OPEN_STATES = ("pending", "working")
# The database could not be reached or used just now: down, restarting, unreachable, locked for longer than
# the busy or lock timeout, or no pooled connection free. A fault of the moment, not of the event.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout)
# receive_events' statements, built once (building them per call costs more than running them).
_STORED_SUBSCRIPTION = select(AppState.value).where(AppState.key == SUBSCRIPTION_KEY).scalar_subquery()
_RECEIVE_CHECKS = select(_STORED_SUBSCRIPTION, exists().where(Athlete.id == bindparam("owner_id")))


_EARLIER_EVENT = aliased(InboxEvent)
# The worker's statements, built once like the webhook's: for the worker's few short statements, building
# and keying a statement cost more CPU than running it. Parameters are bound at each call.
_EVENT_STATE = select(InboxEvent.status, InboxEvent.not_before).where(InboxEvent.id == bindparam("event_id"))
# Claims an event that is due and free, in one statement: open (pending, or working with its lease run out),
# not put off past now, and no earlier event of its activity still open (one activity's events run in order).
# It returns what the worker needs of the event, so a claim is one round trip.
_CLAIM = (
    update(InboxEvent)
    .where(InboxEvent.id == bindparam("event_id"))
    .where(
        (InboxEvent.status == "pending")
        | ((InboxEvent.status == "working") & (InboxEvent.lease_until < bindparam("now")))
    )
    .where(InboxEvent.not_before.is_(None) | (InboxEvent.not_before <= bindparam("now")))
    .where(
        ~exists().where(
            _EARLIER_EVENT.object_key == InboxEvent.object_key,
            _EARLIER_EVENT.id < InboxEvent.id,
            _EARLIER_EVENT.status.in_(OPEN_STATES),
        )
    )
    .values(status="working", lease_until=bindparam("lease_until"), attempts=InboxEvent.attempts + 1)
    .returning(
        InboxEvent.id,
        InboxEvent.owner_id,
        InboxEvent.object_type,
        InboxEvent.object_id,
        InboxEvent.aspect_type,
        InboxEvent.updates,
        InboxEvent.attempts,
        InboxEvent.not_before,
    )
)
# Its SET clause comes from the parameters' column names (status, outcome, ...).
_UPDATE_EVENT = update(InboxEvent).where(InboxEvent.id == bindparam("event_id"))
_SETTLE_EVENT = _UPDATE_EVENT.values(
    status=bindparam("status"),
    outcome=bindparam("outcome"),
    lease_until=None,
    finished_at=bindparam("finished_at"),
    host_calls=bindparam("host_calls"),
)
# Only the owner's record: a delete event names its owner, and another athlete's record is not theirs to end.
_FORGET_RECORD = (
    delete(ActivityRecord)
    .where(ActivityRecord.activity_id == bindparam("activity_id"))
    .where(ActivityRecord.athlete_id == bindparam("athlete_id"))
)
_BACKWARD_SECONDS_SINCE = (
    select(func.coalesce(func.sum(ActivityRecord.backward_s), 0.0))
    .where(ActivityRecord.athlete_id == bindparam("athlete_id"))
    .where(ActivityRecord.processed_at >= bindparam("since"))
    .where(ActivityRecord.activity_id != bindparam("except_activity_id"))
)
_ATHLETE = select(Athlete.__table__).where(Athlete.id == bindparam("athlete_id"))
_RATE_COUNTS = select(RateLimitState.__table__).where(RateLimitState.host == bindparam("host"))
_SWAP_RATE_COUNTS = (
    update(RateLimitState)
    .where(RateLimitState.host == bindparam("for_host"))
    .where(RateLimitState.observed_at == bindparam("seen_at"))
    .where(RateLimitState.short_usage.is_not_distinct_from(bindparam("seen_short")))
    .where(RateLimitState.daily_usage.is_not_distinct_from(bindparam("seen_daily")))
)


def _dialect_insert(dialect_name: str, entity: Any) -> Any:
    """The dialect's own INSERT, which has ON CONFLICT (both SQLite and PostgreSQL)."""
    return (postgresql_insert if dialect_name == "postgresql" else sqlite_insert)(entity)


def _save_record(dialect_name: str) -> Insert:
    """INSERT ... SELECT <values> WHERE <the athlete is still connected> ON CONFLICT (activity_id) DO UPDATE:
    an activity processed again replaces its record, and a job that finishes after its athlete disconnected
    leaves no record behind. Its values are bound by column name (activity_id, note, ...)."""
    columns = ActivityRecord.__table__.columns
    values = select(*(bindparam(column.name, type_=column.type) for column in columns)).where(
        exists().where(Athlete.id == bindparam("athlete_id", type_=BigInteger))
    )
    statement = _dialect_insert(dialect_name, ActivityRecord).from_select([c.name for c in columns], values)
    replaced = {column.name: statement.excluded[column.name] for column in columns}
    return statement.on_conflict_do_update(index_elements=[ActivityRecord.activity_id], set_=replaced)


def _settle_with_record(save_record: Insert) -> dict[type, Any]:
    """On PostgreSQL, the settlement of an event with its record's change in the same statement (a
    data-modifying WITH), by kind of change: one round trip, and atomic without a BEGIN and a COMMIT, each of
    which psycopg would send as a round trip of its own."""
    return {
        ForgottenActivity: _SETTLE_EVENT.add_cte(_FORGET_RECORD.cte("forgotten")),
        ProcessedActivity: _SETTLE_EVENT.add_cte(save_record.cte("saved")),
    }


def _insert_new_event(dialect_name: str) -> Insert:
    """INSERT ... SELECT <the delivery's values> WHERE <the stored subscription is the delivery's> AND <its
    owner is connected> ON CONFLICT (dedupe_key) DO NOTHING: the checks and the insert in one statement, one
    round trip to a server for a delivery that is stored. With no subscription stored nothing is taken. A
    duplicate inserts nothing, and the transaction goes on (on PostgreSQL a failed INSERT would abort the
    other deliveries written with it). PostgreSQL returns the new id; SQLite gives it as the cursor's
    lastrowid (RETURNING needs SQLite 3.35)."""
    columns = InboxEvent.__table__.c
    subscription_id = bindparam("subscription_id", type_=BigInteger)
    delivery = select(*(bindparam(name, type_=columns[name].type) for name in _RECEIVED_COLUMNS)).where(
        cast(subscription_id, Text) == _STORED_SUBSCRIPTION,
        exists().where(Athlete.id == bindparam("owner_id", type_=BigInteger)),
    )
    statement = _dialect_insert(dialect_name, InboxEvent).from_select(_RECEIVED_COLUMNS, delivery)
    statement = statement.on_conflict_do_nothing(index_elements=[InboxEvent.dedupe_key])
    return statement.returning(InboxEvent.id) if dialect_name == "postgresql" else statement


# What receive_events stores of a new event; the other columns start empty.
_RECEIVED_COLUMNS = (
    "dedupe_key",
    "subscription_id",
    "owner_id",
    "object_type",
    "object_id",
    "aspect_type",
    "updates",
    "event_time",
    "object_key",
    "status",
    "attempts",
    "received_at",
)


def utcnow() -> datetime:
    """Naive UTC: the one time convention in the database (SQLite keeps no time zone)."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str
    expires_at: int


@dataclass(frozen=True)
class NewEvent:
    subscription_id: int
    owner_id: int
    object_type: str
    object_id: int
    aspect_type: str
    updates: dict[str, str]
    event_time: int

    @property
    def dedupe_key(self) -> str:
        # A duplicate is the same delivery again (DESIGN.md, event semantics): every field counts.
        canonical = json.dumps(
            [
                self.subscription_id,
                self.object_type,
                self.object_id,
                self.aspect_type,
                self.event_time,
                self.owner_id,
                sorted(self.updates.items()),
            ]
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def object_key(self) -> str:
        return f"{self.object_type}:{self.object_id}"


@dataclass(frozen=True)
class RateCounts:
    """The fleet's count of host calls in the current rate-limit windows, as one process read it."""

    short: tuple[int, int] | None  # (limit, calls) of the 15-minute window
    daily: tuple[int, int] | None
    counted_at: datetime  # the counts belong to the windows holding this moment
    blocked_until: datetime | None = None


@dataclass(frozen=True)
class ProcessedActivity:
    """What is kept of an activity once processed (its activity_records row)."""

    activity_id: int
    athlete_id: int
    efforts: int
    backward_m: float
    backward_s: float
    note: str | None
    written: bool
    remark: str | None = None  # why there is no note when the athlete may wonder (detect.Detection.remark)


@dataclass(frozen=True)
class ForgottenActivity:
    """An activity whose record goes: deleted by the athlete, or no longer at the host. Only the record of
    that athlete's activity goes."""

    activity_id: int
    athlete_id: int


# What settling an event does to its activity's record, in the same transaction.
RecordChange = ProcessedActivity | ForgottenActivity


@dataclass(frozen=True)
class ClaimedEvent:
    id: int
    owner_id: int
    object_type: str
    object_id: int
    aspect_type: str
    updates: dict[str, str]
    attempts: int
    # Put off before (deferred to a later rate-limit window, or retried after a fault): backlog, which
    # yields the host's budget to fresh activities.
    put_off: bool = False


class Store:
    def __init__(self, database_url: str, token_key: str) -> None:
        self.engine, self._stale_check = make_engine(database_url)
        # For the worker's statements that stand alone (a read, a single guarded UPDATE): on a server each
        # commits itself, with no BEGIN, COMMIT or ROLLBACK round trip around it. SQLite keeps its
        # transactions, which take its write lock.
        self._standalone = (
            self.engine
            if self.engine.dialect.name == "sqlite"
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.cipher = TokenCipher(token_key)
        self._receive_checks = PreparedStatement(_RECEIVE_CHECKS, self.engine.dialect)
        self._insert_event = PreparedStatement(
            _insert_new_event(self.engine.dialect.name), self.engine.dialect
        )
        self._save_record = _save_record(self.engine.dialect.name)
        self._settle_with_record = (
            _settle_with_record(self._save_record) if self.engine.dialect.name == "postgresql" else None
        )

    def create_schema(self) -> None:
        """Create or upgrade the schema (Alembic migrations; many processes may start at once)."""
        from plugin.store.migrate import upgrade

        upgrade(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    def ping(self) -> None:
        def select_one() -> None:
            with self.session() as session:
                session.execute(select(1))

        # A connection found broken after a server restart is no unreachable database.
        _once_more_if_broken(select_one)

    # --- installation state -------------------------------------------------------------------------

    def subscription_id(self) -> int | None:
        with self.session() as session:
            row = session.get(AppState, SUBSCRIPTION_KEY)
            return int(row.value) if row else None

    def set_subscription_id(self, subscription_id: int | None) -> None:
        with self.session() as session:
            row = session.get(AppState, SUBSCRIPTION_KEY)
            if subscription_id is None:
                if row:
                    session.delete(row)
            elif row:
                row.value = str(subscription_id)
            else:
                session.add(AppState(key=SUBSCRIPTION_KEY, value=str(subscription_id)))

    # --- athletes -----------------------------------------------------------------------------------

    def save_athlete(
        self,
        athlete_id: int,
        tokens: TokenSet,
        scopes: frozenset[str],
        host_weight_kg: float | None,
        host_units: str | None,
    ) -> None:
        """Insert or update (reconnecting never duplicates an athlete)."""
        now = utcnow()
        with self.session() as session:
            athlete = session.get(Athlete, athlete_id)
            if athlete is None:
                athlete = Athlete(id=athlete_id, connected_at=now, settings={})
                session.add(athlete)
            athlete.access_token_enc = self.cipher.encrypt(tokens.access_token)
            athlete.refresh_token_enc = self.cipher.encrypt(tokens.refresh_token)
            athlete.expires_at = tokens.expires_at
            athlete.scopes = ",".join(sorted(scopes))
            athlete.needs_reconnect = False
            athlete.refresh_lease_until = None
            if host_weight_kg is not None:
                athlete.host_weight_kg = host_weight_kg
            if host_units is not None:
                athlete.host_units = host_units
            athlete.updated_at = now

    def athlete(self, athlete_id: int) -> Athlete | None:
        """The athlete, or None if not connected: a copy to read, in no session (changes go through the
        methods below). One standalone Core read: the worker reads the athlete for every event, and a
        session's get took twice the CPU and, on a server, three round trips (BEGIN, SELECT, COMMIT)
        instead of one."""
        with self._standalone.connect() as connection:
            row = connection.execute(_ATHLETE, {"athlete_id": athlete_id}).one_or_none()
        return None if row is None else Athlete(**row._mapping)

    def is_connected(self, athlete_id: int) -> bool:
        with self.session() as session:
            return session.scalar(select(exists().where(Athlete.id == athlete_id))) or False

    def athlete_calls_since(
        self, athlete_id: int, since: datetime, in_flight_calls: int, except_event: int
    ) -> int:
        """Host calls spent on the athlete's events settled since `since`, plus in_flight_calls for each of
        their events in progress other than except_event (the one asking)."""
        with self.session() as session:
            settled = session.scalar(
                select(func.coalesce(func.sum(InboxEvent.host_calls), 0)).where(
                    InboxEvent.owner_id == athlete_id, InboxEvent.finished_at >= since
                )
            )
            working = session.scalar(
                select(func.count()).where(
                    InboxEvent.owner_id == athlete_id,
                    InboxEvent.status == "working",
                    InboxEvent.id != except_event,
                )
            )
        return int(settled or 0) + in_flight_calls * int(working or 0)

    def end_sessions(self, athlete_id: int) -> None:
        """Every session cookie issued to the athlete so far stops working (sign-out)."""
        with self.session() as session:
            session.execute(
                update(Athlete)
                .where(Athlete.id == athlete_id)
                .values(session_version=Athlete.session_version + 1)
            )

    def rotate_tokens(self) -> tuple[int, list[int]]:
        """Every stored token encrypted again with the newest BACKSTRIDE_TOKEN_KEY, one athlete per
        transaction (a rotation that stops half way leaves every token readable with the old and new keys).
        Returns how many athletes were rotated, and the ids of those whose tokens no configured key opens
        (marked to reconnect)."""
        rotated, unreadable = 0, []
        with self.session() as session:
            ids = list(session.scalars(select(Athlete.id).order_by(Athlete.id)))
        for athlete_id in ids:
            with self.session() as session:
                athlete = session.get(Athlete, athlete_id, with_for_update=True)
                if athlete is None:
                    continue  # deleted meanwhile
                try:
                    access = self.cipher.rotate(athlete.access_token_enc)
                    refresh = self.cipher.rotate(athlete.refresh_token_enc)
                except TokenUnreadable:
                    athlete.needs_reconnect = True
                    unreadable.append(athlete_id)
                    continue
                athlete.access_token_enc, athlete.refresh_token_enc = access, refresh
                rotated += 1
        return rotated, unreadable

    def tokens(self, athlete_id: int) -> TokenSet | None:
        athlete = self.athlete(athlete_id)
        return None if athlete is None else self.token_set(athlete)

    def token_set(self, athlete: Athlete) -> TokenSet:
        """The tokens of an athlete already read, decrypted."""
        return TokenSet(
            access_token=self.cipher.decrypt(athlete.access_token_enc),
            refresh_token=self.cipher.decrypt(athlete.refresh_token_enc),
            expires_at=athlete.expires_at,
        )

    def acquire_refresh_lease(self, athlete_id: int, now: float, ttl_s: float) -> bool:
        """Compare-and-set, so exactly one process of the fleet refreshes a token at a time.

        No lock is held on the database while the host is called; a crashed holder's lease just expires.
        """
        with self.session() as session:
            result = session.execute(
                update(Athlete)
                .where(Athlete.id == athlete_id)
                .where((Athlete.refresh_lease_until.is_(None)) | (Athlete.refresh_lease_until < now))
                .values(refresh_lease_until=now + ttl_s)
            )
            return result.rowcount == 1

    def store_refreshed_tokens(self, athlete_id: int, tokens: TokenSet) -> None:
        """Store the rotated tokens at once (the old refresh token is already invalid) and free the lease."""
        with self.session() as session:
            session.execute(
                update(Athlete)
                .where(Athlete.id == athlete_id)
                .values(
                    access_token_enc=self.cipher.encrypt(tokens.access_token),
                    refresh_token_enc=self.cipher.encrypt(tokens.refresh_token),
                    expires_at=tokens.expires_at,
                    refresh_lease_until=None,
                    updated_at=utcnow(),
                )
            )

    def release_refresh_lease(self, athlete_id: int) -> None:
        with self.session() as session:
            session.execute(update(Athlete).where(Athlete.id == athlete_id).values(refresh_lease_until=None))

    def mark_needs_reconnect(self, athlete_id: int) -> None:
        with self.session() as session:
            session.execute(
                update(Athlete)
                .where(Athlete.id == athlete_id)
                .values(needs_reconnect=True, refresh_lease_until=None, updated_at=utcnow())
            )

    def update_settings(self, athlete_id: int, settings: dict[str, Any]) -> bool:
        """Replace the athlete's settings; False when the athlete no longer exists."""
        with self.session() as session:
            athlete = session.get(Athlete, athlete_id)
            if athlete is None:
                return False
            athlete.settings = dict(settings)
            athlete.updated_at = utcnow()
            return True

    def recent_records(self, athlete_id: int, limit: int = 20) -> list[ActivityRecord]:
        """The athlete's processed activities still on record (7 days), newest first."""
        with self.session() as session:
            return list(
                session.scalars(
                    select(ActivityRecord)
                    .where(ActivityRecord.athlete_id == athlete_id)
                    .order_by(ActivityRecord.processed_at.desc())
                    .limit(limit)
                )
            )

    def export_athlete(self, athlete_id: int) -> dict[str, Any] | None:
        """Everything stored about the athlete, as plain JSON-able data; tokens only said to exist."""
        with self.session() as session:
            athlete = session.get(Athlete, athlete_id)
            if athlete is None:
                return None
            records = session.scalars(select(ActivityRecord).where(ActivityRecord.athlete_id == athlete_id))
            events = session.scalars(select(InboxEvent).where(InboxEvent.owner_id == athlete_id))
            return {
                "athlete": {
                    "id": athlete.id,
                    "connected_at": _iso(athlete.connected_at),
                    "updated_at": _iso(athlete.updated_at),
                    "scopes": sorted(athlete.scope_set),
                    "needs_reconnect": athlete.needs_reconnect,
                    "host_weight_kg": athlete.host_weight_kg,
                    "host_units": athlete.host_units,
                    "settings": dict(athlete.settings or {}),
                    "tokens": "stored encrypted (Fernet); not exported, they give access to your account",
                },
                "activity_records": [
                    {
                        "activity_id": r.activity_id,
                        "processed_at": _iso(r.processed_at),
                        "efforts": r.efforts,
                        "backward_m": r.backward_m,
                        "backward_s": r.backward_s,
                        "note": r.note,
                        "written": r.written,
                        "remark": r.remark,
                    }
                    for r in records
                ],
                "events": [
                    {
                        "object_type": e.object_type,
                        "object_id": e.object_id,
                        "aspect_type": e.aspect_type,
                        "updates": e.updates,
                        "event_time": e.event_time,
                        "status": e.status,
                        "received_at": _iso(e.received_at),
                        "outcome": e.outcome,
                    }
                    for e in events
                ],
            }

    def delete_athlete(self, athlete_id: int) -> None:
        """The athlete and everything of theirs, in one transaction."""
        with self.session() as session:
            session.execute(delete(ActivityRecord).where(ActivityRecord.athlete_id == athlete_id))
            session.execute(delete(InboxEvent).where(InboxEvent.owner_id == athlete_id))
            session.execute(delete(Athlete).where(Athlete.id == athlete_id))

    # --- inbox --------------------------------------------------------------------------------------

    def receive_events(self, deliveries: Sequence[NewEvent]) -> list[int | str]:
        """The webhook's one database step, for deliveries that arrived together: for each, in order, the
        new event's id or why it was not stored ("foreign subscription", "unknown owner", "duplicate").

        This runs for every delivery while the host waits, so it costs as few round trips as it can: one
        statement per delivery checks and inserts (see _insert_new_event), run on the driver's connection
        (see prepared.py); only a delivery not stored takes a second, to say why. On SQLite the deliveries
        are written in one transaction that takes the write lock first (see sqlite.begin_write): one wait
        for the lock and one commit for all of them, and a busy moment costs a short wait rather than
        SQLite's own sleeps. On a server, which locks rows rather than the database, each statement commits
        itself: no BEGIN and no COMMIT to wait for.

        Tried once more on a connection found broken (a server restart since its last use): what the first
        try had committed is then answered "duplicate", and the intake enqueues it if it still waits."""
        return _once_more_if_broken(lambda: self._receive_events_once(deliveries))

    def _receive_events_once(self, deliveries: Sequence[NewEvent]) -> list[int | str]:
        answers: list[int | str] = []
        with self._driver_cursor() as cursor:
            for new in deliveries:
                row = {
                    "dedupe_key": new.dedupe_key,
                    "subscription_id": new.subscription_id,
                    "owner_id": new.owner_id,
                    "object_type": new.object_type,
                    "object_id": new.object_id,
                    "aspect_type": new.aspect_type,
                    "updates": dict(new.updates),
                    "event_time": new.event_time,
                    "object_key": new.object_key,
                    "status": "pending",
                    "attempts": 0,
                    "received_at": utcnow(),
                }
                stored = self._insert(cursor, row)
                answers.append(stored if stored is not None else self._why_not_stored(cursor, new))
        return answers

    def _insert(self, cursor: Any, row: dict[str, Any]) -> int | None:
        """The new event's id, or None when nothing was stored."""
        self._insert_event.execute(cursor, row)
        if self.engine.dialect.name == "sqlite":
            return int(cursor.lastrowid) if cursor.rowcount == 1 else None
        inserted = cursor.fetchone()
        return None if inserted is None else int(inserted[0])

    def _why_not_stored(self, cursor: Any, new: NewEvent) -> str:
        subscription, connected = self._receive_checks.execute(cursor, {"owner_id": new.owner_id}).fetchone()
        if subscription is None or int(subscription) != new.subscription_id:
            return "foreign subscription"
        if not connected:
            return "unknown owner"
        return "duplicate"

    @contextmanager
    def _driver_cursor(self) -> Iterator[Any]:
        """A cursor on a pooled driver connection: on SQLite in a transaction that holds the write lock from
        the start, committed at the end; on a server with each statement committing itself. Driver errors
        are raised as SQLAlchemy raises them; one that found the connection broken has
        connection_invalidated set, and the connection is closed rather than pooled again."""
        dialect = self.engine.dialect
        dbapi = dialect.loaded_dbapi
        try:
            connection = self.engine.raw_connection()  # pinged first if it may be stale (liveness.py)
        except dbapi.Error as exc:
            raise wrap_driver_error("receive_events", exc, dbapi) from exc
        on_sqlite = dialect.name == "sqlite"
        try:
            if on_sqlite:
                sqlite.begin_write(connection.dbapi_connection)
            else:
                connection.dbapi_connection.autocommit = True
            with closing(connection.cursor()) as cursor:
                yield cursor
            if on_sqlite:
                connection.commit()
        except BaseException as exc:
            driver_error = getattr(exc, "orig", exc)  # PreparedStatement raises it wrapped
            if isinstance(driver_error, dbapi.Error) and dialect.is_disconnect(
                driver_error, connection.dbapi_connection, None
            ):
                connection.invalidate(driver_error)
                if self._stale_check is not None:
                    self._stale_check.broken_connection_seen()
                raise wrap_driver_error("receive_events", driver_error, dbapi, broken=True) from driver_error
            if on_sqlite:
                connection.rollback()
            if isinstance(exc, dbapi.Error):
                raise wrap_driver_error("receive_events", exc, dbapi) from exc
            raise
        finally:
            if not on_sqlite and connection.is_valid:
                connection.dbapi_connection.autocommit = False  # as the pool's other users expect
            connection.close()  # back to the pool, unless invalidated above

    def waiting_event_id(self, new: NewEvent) -> int | None:
        """The id of this delivery's stored event while it waits for a worker and is due (pending, not
        deferred to later), else None."""
        with self.session() as session:
            return session.scalar(
                select(InboxEvent.id).where(
                    InboxEvent.dedupe_key == new.dedupe_key,
                    InboxEvent.status == "pending",
                    (InboxEvent.not_before.is_(None)) | (InboxEvent.not_before <= utcnow()),
                )
            )

    # The worker's writes below run on a plain connection, not an ORM session, each in one short
    # transaction (on a server, a write that is one statement commits itself: see _standalone). On SQLite
    # the write lock is held from a transaction's first write to its commit, and the web's inbox writes
    # wait for it: a session's own work in that window (synchronising its objects, refreshing them, its
    # commit) made the worker's transactions last milliseconds under load.

    def claim_event(self, event_id: int, lease: timedelta) -> ClaimedEvent | str:
        """Lease an event for processing.

        Returns the event, or why not: "gone" (finished or deleted), "busy" (leased by another worker, or an
        earlier event of the same object is still open: events of one activity run in order), "later"
        (deferred until not_before). The claim is one statement; only an event it could not claim is read
        again, to say why.
        """
        now = utcnow()
        claim = {"event_id": event_id, "now": now, "lease_until": now + lease}
        with self._standalone.begin() as connection:
            claimed = connection.execute(_CLAIM, claim).one_or_none()
        if claimed is None:
            return self._why_not_claimed(event_id, now)
        return ClaimedEvent(
            id=claimed.id,
            owner_id=claimed.owner_id,
            object_type=claimed.object_type,
            object_id=claimed.object_id,
            aspect_type=claimed.aspect_type,
            updates=dict(claimed.updates or {}),
            attempts=claimed.attempts,
            put_off=claimed.not_before is not None,
        )

    def _why_not_claimed(self, event_id: int, now: datetime) -> str:
        with self._standalone.connect() as connection:
            row = connection.execute(_EVENT_STATE, {"event_id": event_id}).one_or_none()
        if row is None or row.status not in OPEN_STATES:
            return "gone"
        if row.not_before is not None and row.not_before > now:
            return "later"
        return "busy"

    def finish_event(
        self,
        event_id: int,
        status: str,
        outcome: str,
        host_calls: int | None = None,
        record: RecordChange | None = None,
    ) -> None:
        """Settle an event, and save or forget its activity's record in the same transaction."""
        now = utcnow()
        settled = {
            "event_id": event_id,
            "status": status,
            "outcome": outcome[:300],
            "finished_at": now,
            "host_calls": host_calls,
        }
        if record is None:
            with self._standalone.begin() as connection:
                connection.execute(_SETTLE_EVENT, settled)
            return
        if isinstance(record, ForgottenActivity):
            change, values = (
                _FORGET_RECORD,
                {"activity_id": record.activity_id, "athlete_id": record.athlete_id},
            )
        else:
            change, values = self._save_record, {**asdict(record), "processed_at": now}
        if self._settle_with_record is not None:
            with self._standalone.begin() as connection:
                connection.execute(self._settle_with_record[type(record)], {**settled, **values})
            return
        with self.engine.begin() as connection:
            connection.execute(_SETTLE_EVENT, settled)
            connection.execute(change, values)

    def defer_event(self, event_id: int, not_before: datetime, outcome: str, refund_attempt: bool) -> None:
        """Put a leased event back to wait. A rate-limit deferral is not a failed attempt."""
        values: dict = {
            "status": "pending",
            "not_before": not_before,
            "lease_until": None,
            "outcome": outcome[:300],
        }
        if refund_attempt:
            values["attempts"] = InboxEvent.attempts - 1
        with self._standalone.begin() as connection:
            connection.execute(_UPDATE_EVENT.values(**values), {"event_id": event_id})

    def event(self, event_id: int) -> InboxEvent | None:
        with self.session() as session:
            return session.get(InboxEvent, event_id)

    def events_to_resume(self, stale_after: timedelta) -> list[tuple[int, datetime | None]]:
        """Open events nobody is working on: lost from the queue, or leased by a process that died."""
        now = utcnow()
        with self.session() as session:
            rows = session.execute(
                select(InboxEvent.id, InboxEvent.not_before)
                .where(
                    # Pending and overdue: a deferred event has its own scheduled task until its time
                    # has come and gone, so it is resumed only when that task did not run.
                    (
                        (InboxEvent.status == "pending")
                        & (InboxEvent.received_at < now - stale_after)
                        & (InboxEvent.not_before.is_(None) | (InboxEvent.not_before < now - stale_after))
                    )
                    | ((InboxEvent.status == "working") & (InboxEvent.lease_until < now))
                )
                .order_by(InboxEvent.id)
            ).all()
            return [(row.id, row.not_before) for row in rows]

    def metrics(self) -> dict[str, Any]:
        """Fleet-wide figures for /metrics, from the shared database (so every process reports the same)."""
        now = utcnow()
        with self.session() as session:
            by_status = dict(
                session.execute(select(InboxEvent.status, func.count()).group_by(InboxEvent.status)).all()
            )
            calls = session.execute(
                select(
                    InboxEvent.status,
                    func.count(InboxEvent.host_calls),
                    func.coalesce(func.sum(InboxEvent.host_calls), 0),
                )
                .where(InboxEvent.host_calls.is_not(None))
                .group_by(InboxEvent.status)
            ).all()
            due = session.scalar(
                select(func.count())
                .select_from(InboxEvent)
                .where(InboxEvent.status == "pending")
                .where((InboxEvent.not_before.is_(None)) | (InboxEvent.not_before <= now))
            )
            athletes = session.scalar(select(func.count()).select_from(Athlete))
            needs_reconnect = session.scalar(
                select(func.count()).select_from(Athlete).where(Athlete.needs_reconnect.is_(True))
            )
            limits = session.scalars(select(RateLimitState)).all()
        return {
            "events": by_status,
            "events_due": due or 0,
            "host_calls": {status: (int(n), int(total)) for status, n, total in calls},
            "athletes": athletes or 0,
            "athletes_needing_reconnect": needs_reconnect or 0,
            "rate_limits": [
                {
                    "host": row.host,
                    "short": (row.short_limit, row.short_usage),
                    "daily": (row.daily_limit, row.daily_usage),
                    "counted_at": row.observed_at,
                    "blocked": row.blocked_until is not None and row.blocked_until > now,
                }
                for row in limits
            ],
        }

    def event_counts(self) -> dict[str, int]:
        with self.session() as session:
            rows = session.execute(select(InboxEvent.status, func.count()).group_by(InboxEvent.status)).all()
        return {status: count for status, count in rows}

    # --- activity records ---------------------------------------------------------------------------

    def activity_record(self, activity_id: int) -> ActivityRecord | None:
        with self.session() as session:
            return session.get(ActivityRecord, activity_id)

    def backward_seconds_since(self, athlete_id: int, since: datetime, except_activity_id: int) -> float:
        """The athlete's backward time in activities processed since `since`, leaving one activity out."""
        parameters = {"athlete_id": athlete_id, "since": since, "except_activity_id": except_activity_id}
        with self._standalone.connect() as connection:
            total = connection.execute(_BACKWARD_SECONDS_SINCE, parameters).scalar()
        return float(total or 0.0)

    def expire_old_data(self) -> int:
        """Remove processing records and finished inbox events older than the retention period."""
        cutoff = utcnow() - RETENTION
        with self.session() as session:
            removed = session.execute(
                delete(ActivityRecord).where(ActivityRecord.processed_at < cutoff)
            ).rowcount
            removed += session.execute(
                delete(InboxEvent)
                .where(InboxEvent.received_at < cutoff)
                .where(InboxEvent.status.not_in(OPEN_STATES))
            ).rowcount
            return removed

    # --- the host's rate limit ----------------------------------------------------------------------

    def rate_counts(self, host: str) -> RateCounts | None:
        """The fleet's counts for the host, or None before its first answer said what the limits are."""
        row = self._rate_counts_row(host)
        if row is None or row.observed_at is None:
            return None
        return RateCounts(
            short=_pair(row.short_limit, row.short_usage),
            daily=_pair(row.daily_limit, row.daily_usage),
            counted_at=row.observed_at,
            blocked_until=row.blocked_until,
        )

    def _rate_counts_row(self, host: str) -> Any:
        with self._standalone.connect() as connection:
            return connection.execute(_RATE_COUNTS, {"host": host}).one_or_none()

    def swap_rate_counts(self, host: str, seen: RateCounts, new: RateCounts) -> bool:
        """Replace the counts `seen` by `new` in one statement, unless another process changed them since
        they were read (then False: read them again). Every host call is counted this way before it goes
        out, so the whole fleet's calls in flight are in the count and the host never has to refuse one."""
        swap = {
            "for_host": host,
            "seen_at": seen.counted_at,
            "seen_short": seen.short[1] if seen.short else None,
            "seen_daily": seen.daily[1] if seen.daily else None,
            "observed_at": new.counted_at,
            # A window the counts had none of stays without one (its usage NULL, as the WHERE required).
            "short_usage": new.short[1] if new.short else None,
            "daily_usage": new.daily[1] if new.daily else None,
        }
        with self._standalone.begin() as connection:
            return connection.execute(_SWAP_RATE_COUNTS, swap).rowcount == 1

    def record_rate_limit(
        self,
        host: str,
        short: tuple[int, int] | None,
        daily: tuple[int, int] | None,
        blocked_until: datetime | None,
        windows_since: tuple[datetime, datetime],
    ) -> None:
        """Take in the (limit, usage) pairs of the host's latest answer. Within the same windows (started at
        windows_since: the quarter hour and the day) the fleet's own count is kept when it is higher: it
        includes calls still in flight. A later block never shortens an earlier one. One UPDATE, so that no
        process's count in between is lost; none at all when the answer tells nothing the counts do not
        already hold, which is the usual case, since every call is counted before it is made."""
        state = RateLimitState
        row = self._rate_counts_row(host)
        if row is not None and _already_counted(row, short, daily, blocked_until, windows_since):
            return
        short_since, daily_since = windows_since
        values: dict[str, Any] = {"observed_at": utcnow()}
        if short:
            values["short_limit"] = short[0]
            values["short_usage"] = _higher_within(
                state.short_usage, short[1], state.observed_at >= short_since
            )
        if daily:
            values["daily_limit"] = daily[0]
            values["daily_usage"] = _higher_within(
                state.daily_usage, daily[1], state.observed_at >= daily_since
            )
        if blocked_until is not None:
            values["blocked_until"] = case(
                (
                    and_(state.blocked_until.is_not(None), state.blocked_until > blocked_until),
                    state.blocked_until,
                ),
                else_=blocked_until,
            )
        try:
            with self.engine.begin() as connection:
                if connection.execute(update(state).where(state.host == host).values(**values)).rowcount:
                    return
                connection.execute(
                    insert(state).values(
                        host=host,
                        short_limit=short[0] if short else None,
                        short_usage=short[1] if short else None,
                        daily_limit=daily[0] if daily else None,
                        daily_usage=daily[1] if daily else None,
                        observed_at=values["observed_at"],
                        blocked_until=blocked_until,
                    )
                )
        except IntegrityError:  # another process inserted the row first: update it
            with self.engine.begin() as connection:
                connection.execute(update(state).where(state.host == host).values(**values))


def _once_more_if_broken(work: Callable[[], T]) -> T:
    """`work()`, run once more if it failed on a pooled connection found broken (the server restarted or
    closed it since its last use; see liveness.py). The pool has renewed its connections by then. A second
    failure is raised."""
    try:
        return work()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    return work()


def describe_database_error(exc: BaseException) -> str:
    """One line for the log: the driver's own first line, never SQLAlchemy's text, which carries the
    statement's parameters (tokens, titles)."""
    cause = getattr(exc, "orig", None)
    if cause is None:
        if not isinstance(exc, PoolTimeout):
            return type(exc).__name__
        cause = exc  # the pool's own message: no statement, no parameters
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0][:200]}" if lines else type(cause).__name__


def _pair(limit: int | None, usage: int | None) -> tuple[int, int] | None:
    return (limit, usage or 0) if limit is not None else None


def _already_counted(
    row: Any,
    short: tuple[int, int] | None,
    daily: tuple[int, int] | None,
    blocked_until: datetime | None,
    windows_since: tuple[datetime, datetime],
) -> bool:
    """Whether the stored counts (`row`) already hold a host's answer: the same limits, at least the usage
    it reports within the same windows, and any block it reports."""

    def holds(
        limit: int | None, usage: int | None, reported: tuple[int, int] | None, since: datetime
    ) -> bool:
        if reported is None:
            return True
        return limit == reported[0] and (usage or 0) >= reported[1] and row.observed_at >= since

    if row.observed_at is None:
        return False
    short_since, daily_since = windows_since
    blocked = blocked_until is None or (row.blocked_until is not None and row.blocked_until >= blocked_until)
    return (
        blocked
        and holds(row.short_limit, row.short_usage, short, short_since)
        and holds(row.daily_limit, row.daily_usage, daily, daily_since)
    )


def _higher_within(column: Any, reported: int, same_window: Any) -> Any:
    """SQL: the stored count when it belongs to the same window and is higher, else the reported one."""
    return case((and_(same_window, column.is_not(None), column > reported), column), else_=reported)


def make_engine(database_url: str) -> tuple[Engine, StaleConnectionCheck | None]:
    """The engine, and for a server the check of its pooled connections (liveness.py)."""
    url = _with_driver(database_url)
    if url.startswith("sqlite"):
        # A file on this machine: no connection to go stale, nothing to check before use.
        engine = create_engine(url)
        event.listen(engine, "connect", sqlite.configure_connection)
        return engine, None
    # A server: a pooled connection may have been closed by it (restart, idle timeout); checked before use
    # when it may have been. An unreachable server or a lock held too long fails in seconds, as SQLite's
    # busy timeout does, rather than holding a request or a job indefinitely.
    engine = create_engine(url, connect_args={"connect_timeout": 5, "options": "-c lock_timeout=10000"})
    return engine, StaleConnectionCheck(engine)


def _with_driver(database_url: str) -> str:
    """postgresql://... means psycopg 3 (SQLAlchemy would otherwise pick psycopg2, which we do not ship)."""
    for plain in ("postgresql://", "postgres://"):
        if database_url.startswith(plain):
            return "postgresql+psycopg://" + database_url.removeprefix(plain)
    return database_url


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.replace(tzinfo=UTC).isoformat()
