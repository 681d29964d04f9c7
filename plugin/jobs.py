"""The Huey queue and its tasks. The inbox in the database is the source of truth; the queue only says
"look at event N now". A task lost with a killed process is found again by the periodic resume task."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from huey import Huey, crontab
from huey.storage import MemoryStorage, PriorityRedisStorage, SqliteStorage

from plugin.pipeline import Pipeline
from plugin.store import DATABASE_UNAVAILABLE, Store, describe_database_error
from plugin.store.sqlite import begin_write

log = logging.getLogger(__name__)

# An event still pending this long after it arrived, with no task in sight, is enqueued again.
RESUME_AFTER = timedelta(seconds=60)
# Queue priority of a fresh event (higher runs first; everything else has none, i.e. 0).
FRESH_PRIORITY = 10


class _Huey(Huey):
    """Huey without task revocation. Backstride revokes no task: an event is settled in the inbox, and a task
    for a settled event finds nothing to do. Huey looks up every task's revocation flags before running it
    and deletes its flag after: two round trips to Redis per task, or on the embedded queue a read and a
    write transaction, which the web's enqueues wait for."""

    def is_revoked(self, task: Any, timestamp: Any = None, peek: bool = True) -> bool:
        return False

    def delete(self, key: str) -> bool:
        if key.startswith(_REVOKE_FLAG_PREFIX):
            return False
        return super().delete(key)


# How Huey names a task's revocation flag (huey.api.Task.revoke_id).
_REVOKE_FLAG_PREFIX = "r:"


class _SqliteQueueStorage(SqliteStorage):
    """Huey's SQLite storage, with two changes for the enqueue that a webhook pays for while the host waits.

    synchronous=NORMAL instead of FULL: in WAL mode a commit then skips the fsync (most of an enqueue's cost)
    and the file still cannot be corrupted by a crash; a power cut may lose the last few enqueues, which is
    harmless: the inbox is the record of the work, and the resume task enqueues its pending events again.

    The write lock, which the web process and the worker's dequeues take in turn, is waited for in short
    steps (plugin.store.sqlite.begin_write) rather than in SQLite's sleeps of 1 to 100 ms, and several
    enqueues can share one transaction (together())."""

    _together = False  # inside together(): Huey's own writes join its transaction

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lock = threading.RLock()  # together() holds it around Huey's own db() calls

    @contextmanager
    def together(self) -> Iterator[None]:
        """One transaction around several writes: one wait for the lock and one commit for all."""
        with self.db(commit=True):
            self._together = True
            try:
                yield
            finally:
                self._together = False

    def _create_connection(self):  # noqa: ANN202 - Huey's own signature
        connection = super()._create_connection()
        connection.execute("pragma synchronous=NORMAL")
        return connection

    @contextmanager
    def db(self, commit: bool = False, close: bool = False) -> Iterator[sqlite3.Cursor]:
        """Huey's own transaction wrapper (one connection, used by one thread at a time), but with the
        transaction begun by begin_write, and none of its own inside together()."""
        with self.lock:
            connection = self.conn
            cursor = connection.cursor()
            transaction = commit and not self._together
            try:
                if transaction:
                    begin_write(connection, self.begin_sql)
                yield cursor
            except Exception:
                if transaction:
                    connection.rollback()
                raise
            else:
                if transaction:
                    connection.commit()
            finally:
                cursor.close()
                if close:
                    connection.close()
                    self._conn = None


class _RedisQueueStorage(PriorityRedisStorage):
    """Huey's Redis storage, priority variant (fresh events go ahead of the backlog), with together(): the
    enqueues a thread makes inside it go to Redis in one round trip (a pipeline) at its end, not one each.
    A webhook's intake enqueues the deliveries it wrote together so."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._pipelines = threading.local()  # set before Huey's __init__ assigns conn
        super().__init__(*args, **kwargs)

    # Huey's storage sends every command through self.conn: inside together(), the thread's pipeline.
    @property
    def conn(self) -> Any:
        pipeline = getattr(self._pipelines, "current", None)
        return self._client if pipeline is None else pipeline

    @conn.setter
    def conn(self, client: Any) -> None:
        self._client = client

    @contextmanager
    def together(self) -> Iterator[None]:
        pipeline = self._client.pipeline(transaction=False)
        self._pipelines.current = pipeline
        try:
            yield
        finally:
            self._pipelines.current = None
        pipeline.execute()


def make_huey(queue_url: str) -> Huey:
    """sqlite:///path (embedded default), redis://... (shared by a fleet) or memory:// (tests)."""
    scheme = urlsplit(queue_url).scheme
    if scheme == "sqlite":
        path = queue_url.split("sqlite:///", 1)[1] if queue_url.startswith("sqlite:///") else ""
        if not path:
            raise ValueError(f"BACKSTRIDE_QUEUE_URL {queue_url!r}: expected sqlite:///PATH")
        return _Huey(name="backstride", filename=path, results=False, storage_class=_SqliteQueueStorage)
    if scheme in ("redis", "rediss", "unix"):
        return _Huey(name="backstride", url=queue_url, results=False, storage_class=_RedisQueueStorage)
    if scheme == "memory":
        return _Huey(name="backstride", results=False, storage_class=MemoryStorage)
    raise ValueError(f"BACKSTRIDE_QUEUE_URL {queue_url!r}: use sqlite:///PATH or redis://HOST:PORT/DB")


class Queue:
    """Registers Backstride's tasks on a Huey instance and enqueues them."""

    def __init__(self, huey: Huey, store: Store, pipeline: Pipeline) -> None:
        self.huey = huey
        self.store = store
        self.pipeline = pipeline
        self._process = huey.task(name="process_event")(self._process_event)
        huey.periodic_task(crontab(minute="*"), name="resume_events")(self.resume_events)
        huey.periodic_task(crontab(minute="17"), name="expire_data")(self.expire_data)

    def enqueue_event(self, event_id: int, delay: timedelta | None = None) -> None:
        """Run the event's task now or after `delay` (retried or resumed work: the backlog)."""
        if delay is not None and delay.total_seconds() > 0:
            self._process.schedule(args=(event_id,), delay=delay.total_seconds())
        else:
            self._process(event_id)

    def enqueue_fresh(self, event_ids: Sequence[int]) -> None:
        """Enqueue events just received from the host. They go ahead of everything else waiting (new
        activities before the backlog), in one transaction on the embedded queue and in one round trip to
        Redis: an error leaves all of them to the resume task."""
        storage = self.huey.storage
        together_storages = (_SqliteQueueStorage, _RedisQueueStorage)
        together = storage.together() if isinstance(storage, together_storages) else nullcontext()
        with together:
            for event_id in event_ids:
                self._process(event_id, priority=FRESH_PRIORITY)

    def _process_event(self, event_id: int) -> None:
        verdict = self.pipeline.handle_event(event_id)
        if verdict.delay is not None:
            self.enqueue_event(event_id, verdict.delay)

    def resume_events(self) -> int:
        """Enqueue open events that no task is working on (lost from the queue, or their worker died)."""
        try:
            resumed = self.store.events_to_resume(RESUME_AFTER)
        except DATABASE_UNAVAILABLE as exc:
            # During an outage the events wait in the inbox and this task looks again next minute: one line
            # per minute, not a traceback (whose text would carry the statement's parameters).
            log.warning("resume: database unavailable, will look again: %s", describe_database_error(exc))
            return 0
        for event_id, _not_before in resumed:
            # handle_event itself waits out not_before and keeps one activity's events in order.
            self.enqueue_event(event_id)
        if resumed:
            log.info("resumed %d open events", len(resumed))
        return len(resumed)

    def expire_data(self) -> int:
        removed = self.store.expire_old_data()
        log.info("data policy: removed %d records older than the retention period", removed)
        return removed

    def ping(self) -> None:
        self.huey.pending_count()

    def depth(self) -> tuple[int, int]:
        """Tasks waiting to run now, and tasks scheduled for later (deferred or retrying)."""
        return self.huey.pending_count(), self.huey.scheduled_count()
