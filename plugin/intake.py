"""The webhook's work behind the HTTP: store a delivery in the inbox, say what happened, enqueue its event.

Deliveries that arrive together are written together. A web process answers several deliveries at once (one
per server thread); while one thread writes, the others' deliveries wait, and the next write takes all of
them in one transaction and enqueues them in one go. Under a burst that is one wait for the database's write
lock and one commit per few deliveries instead of per delivery, and threads that wait for their answer sleep
rather than contend for the lock. A lone delivery is written at once, as before.

A delivery is answered once it is stored: the inbox, not the queue, is the record of the work. The thread
that wrote a batch enqueues its events after the batch is answered and while the next batch is written, so
that neither waits for the queue's round trip. An enqueue that fails, or never happens because the process
died, leaves its events to the resume task (plugin/jobs.py)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from plugin.jobs import Queue
from plugin.store import NewEvent, Store

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Delivery:
    event: NewEvent
    answered: threading.Event = field(default_factory=threading.Event)
    answer: int | str | None = None
    error: BaseException | None = None
    writes_next: bool = False  # woken to write the deliveries waiting, its own among them


class Intake:
    def __init__(self, store: Store, queue: Queue) -> None:
        self.store = store
        self.queue = queue
        self._lock = threading.Lock()
        self._waiting: list[_Delivery] = []
        self._writing = False

    def receive(self, new: NewEvent) -> int | str:
        """The stored event's id once it is enqueued, or why it was not stored ("foreign subscription",
        "unknown owner", "duplicate"). Database errors are raised as Store.receive_events raises them."""
        delivery = _Delivery(new)
        with self._lock:
            self._waiting.append(delivery)
            write_now = not self._writing
            self._writing = True
        if not write_now:
            delivery.answered.wait()
        if write_now or delivery.writes_next:
            self._write_waiting()
        if delivery.error is not None:
            raise delivery.error
        assert delivery.answer is not None
        if delivery.answer == "duplicate":
            self._enqueue_if_waiting(new)
        return delivery.answer

    def _write_waiting(self) -> None:
        with self._lock:
            batch, self._waiting = self._waiting, []
        stored: list[int] = []
        try:
            answers = self.store.receive_events([delivery.event for delivery in batch])
            for delivery, answer in zip(batch, answers, strict=True):
                delivery.answer = answer
            stored = [answer for answer in answers if isinstance(answer, int)]
        except BaseException as exc:  # noqa: BLE001 - every waiting thread raises it in its own request
            for delivery in batch:
                delivery.error = exc
        finally:
            with self._lock:
                if self._waiting:  # arrived while this batch was written: the first of them writes next
                    self._waiting[0].writes_next = True
                    self._waiting[0].answered.set()
                else:
                    self._writing = False
            for delivery in batch:
                delivery.answered.set()
        # A stored event is accepted: the others of the batch have their answer, and the next batch is
        # written, while this thread enqueues the events (see _enqueue).
        self._enqueue(stored)

    def _enqueue(self, event_ids: list[int]) -> None:
        if not event_ids:
            return
        try:
            self.queue.enqueue_fresh(event_ids)
        except Exception:  # noqa: BLE001 - the events are stored; the periodic resume task will enqueue them
            log.exception("events %s stored but not enqueued; they will be resumed", event_ids)

    def _enqueue_if_waiting(self, new: NewEvent) -> None:
        # The host delivers again only when it got no answer: the first delivery may have been stored and
        # then lost with its process before it was enqueued. An event still waiting and due is enqueued
        # again, so it does not wait for the resume task; running its task twice is harmless (the second
        # finds it settled, or waits its turn).
        waiting = self.store.waiting_event_id(new)
        if waiting is not None:
            self._enqueue([waiting])
