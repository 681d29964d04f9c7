"""Delivers webhook events to the subscribed callback as Strava does: a JSON POST that must be answered 200
within 2 seconds, retried up to three attempts in all. Injected faults can drop or duplicate an event."""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import requests

from plugin.sandbox.state import Delivery, SandboxState

log = logging.getLogger(__name__)


class Deliverer:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
        self._thread.start()

    def publish(
        self,
        object_type: str,
        object_id: int,
        aspect_type: str,
        owner_id: int,
        updates: dict[str, str] | None = None,
    ) -> None:
        with self.state.lock:
            subscription = self.state.subscription
            if subscription is None:
                return
            if object_type == "activity":
                seen = self.state.activity_event_seen_by_app(owner_id, object_id, aspect_type, updates or {})
                if seen is None:
                    return
                aspect_type, updates = seen
            body: dict[str, Any] = {
                "aspect_type": aspect_type,
                "event_time": int(self.state.clock()),
                "object_id": object_id,
                "object_type": object_type,
                "owner_id": owner_id,
                "subscription_id": subscription.id,
                "updates": dict(updates or {}),
            }
            copies = 1
            if self.state.take_fault("drop_event", "*", object_type):
                self.state.deliveries.append(Delivery(body, status="dropped"))
                return
            if self.state.take_fault("duplicate_event", "*", object_type):
                copies = 2
            for _ in range(copies):
                delivery = Delivery(body)
                self.state.deliveries.append(delivery)
                self._queue.put(delivery)

    def idle(self) -> bool:
        return self._queue.unfinished_tasks == 0

    def wait_idle(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self.idle():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Deliver what is queued, then end, closing the connections kept open to the subscriber."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            delivery = self._queue.get()
            try:
                if delivery is None:
                    # Its kept-alive connection would hold up a graceful stop of the plugin's web server.
                    self._session.close()
                    return
                self._deliver(delivery)
            finally:
                self._queue.task_done()

    def _deliver(self, delivery: Delivery) -> None:
        config = self.state.config
        for attempt in range(1, config.delivery_attempts + 1):
            with self.state.lock:
                subscription = self.state.subscription
            if subscription is None:
                delivery.status = "failed"
                return
            delivery.attempts = attempt
            try:
                response = self._session.post(
                    subscription.callback_url, json=delivery.event, timeout=config.validation_timeout_s
                )
                delivery.last_status = response.status_code
                if response.status_code == 200:
                    delivery.status = "delivered"
                    return
            except requests.RequestException as exc:
                delivery.last_status = None
                log.info("webhook delivery attempt %d failed: %s", attempt, type(exc).__name__)
            if attempt < config.delivery_attempts:
                time.sleep(config.delivery_retry_s)
        delivery.status = "failed"
