"""Crashes of one process of `backstride serve` (a real process tree) against the sandbox host over loopback:
a web worker SIGKILLed while webhook deliveries are in flight, and the queue worker SIGKILLed in the middle of
a job. The operator's checks afterwards: every acknowledged event was processed, exactly one note sits in each
description, and the host saw exactly one description write per activity."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from plugin.cli import WORKER_NICENESS
from plugin.sandbox.stack import Stack
from plugin.sandbox.state import SandboxConfig
from tests.conftest import EMBEDDED_ONLY
from tests.e2e.test_flow import ATHLETE, RUN, host_calls, notes_in, wait_for

EVENTS = 40  # activities, one create event each
SENDERS = 6  # concurrent deliveries, so that several are inside the web worker when it dies
KILL_AFTER = 6  # acknowledged deliveries before the web worker is killed
# Strava waits 2 s for the answer and retries an unanswered delivery (three attempts in all). This sender
# keeps trying a little longer, so that a slow worker restart on a busy machine cannot make the test flaky.
ANSWER_TIMEOUT_S = 2.0
DELIVERY_ATTEMPTS = 8
RETRY_PAUSE_S = 0.3
NO_ANSWER = "no answer"


@pytest.fixture
def stack(backend: dict[str, str]) -> Iterator[Stack]:
    # backend: the embedded defaults, or PostgreSQL and Redis (tests/conftest.py). Rate limits well above
    # what the tests spend, so that no 429 deferral blurs the call counts.
    config = SandboxConfig(
        seed=False, delivery_retry_s=0.2, overall_limits=(2000, 20000), read_limits=(1000, 10000)
    )
    with Stack(config, extra_env=backend) as running:
        running.control("POST", "/athletes", json={"id": ATHLETE, "firstname": "Eve", "weight": 64.0})
        running.subscribe()
        yield running


@pytest.fixture
def connected(stack: Stack) -> Stack:
    response = stack.connect(athlete_id=ATHLETE)
    assert response.status_code == 200
    assert "connected" in response.text
    return stack


def puts_per_activity(stack: Stack) -> Counter:
    return Counter(int(c["path"].rsplit("/", 1)[1]) for c in host_calls(stack, "PUT"))


def inbox_metrics(stack: Stack) -> dict[str, float]:
    """backstride_inbox_events by status, from GET /metrics as a monitoring system scrapes it."""
    auth = {"Authorization": f"Bearer {stack.metrics_token}"}
    text = requests.get(f"{stack.plugin_url}/metrics", headers=auth, timeout=10).text
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(r'^backstride_inbox_events\{status="(\w+)"\} (\S+)$', text, re.MULTILINE)
    }


def thread_niceness(pid: int) -> set[int]:
    """The nice value of each of the process's threads (each thread has its own on Linux)."""
    return {os.getpriority(os.PRIO_PROCESS, int(tid)) for tid in os.listdir(f"/proc/{pid}/task")}


@EMBEDDED_ONLY  # process priorities, whatever the database and queue
def test_the_queue_worker_yields_the_cpu_to_the_web_server(connected: Stack) -> None:
    # Every thread of the worker (Huey's consumer starts its own), and of the one started after a crash.
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    nicer = min(ours + WORKER_NICENESS, 19)
    (web,) = connected.web_worker_pids()
    worker = connected.queue_worker_pid()
    wait_for(lambda: len(os.listdir(f"/proc/{worker}/task")) > 2, 30, "the consumer's threads to start")
    assert thread_niceness(web) == {ours}
    assert thread_niceness(worker) == {nicer}
    os.kill(worker, signal.SIGKILL)
    wait_for(lambda: connected.queue_worker_pid() not in (None, worker), 30, "the worker's restart")
    assert thread_niceness(connected.queue_worker_pid()) == {nicer}


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


# --- a web worker killed while deliveries are in flight ---------------------------------------------------


class Sender:
    """Posts webhook deliveries as Strava does (a JSON POST on a fresh connection, answered within 2 s) and
    retries the unanswered ones; remembers every attempt's answer per activity."""

    def __init__(self, url: str, on_acknowledged: Callable[[], None]) -> None:
        self.url = url
        self.answers: dict[int, list[str]] = defaultdict(list)
        self.acknowledged = 0
        self._on_acknowledged = on_acknowledged
        self._sent_at: dict[int, float] = {}  # thread -> when its request in flight was sent
        self._lock = threading.Lock()
        # Closed after KILL_AFTER acknowledgements until the test opens it: the deliveries left are then
        # still to be sent when the test is ready for them (a fast stream could otherwise finish first).
        self.gate = threading.Event()
        self.gate.set()

    def deliver(self, event: dict[str, Any]) -> None:
        for attempt in range(DELIVERY_ATTEMPTS):
            if attempt:
                time.sleep(RETRY_PAUSE_S)
            self.gate.wait()
            with self._lock:
                self._sent_at[threading.get_ident()] = time.monotonic()
            try:
                response = requests.post(self.url, json=event, timeout=ANSWER_TIMEOUT_S)
            except requests.RequestException:
                self._record(event, NO_ANSWER)
                continue
            if response.status_code != 200:
                self._record(event, f"HTTP {response.status_code}")
                continue
            self._record(event, response.json().get("status", "?"))
            return

    def waiting_longer_than(self, seconds: float) -> int:
        """Requests sent more than `seconds` ago and still unanswered."""
        now = time.monotonic()
        with self._lock:
            return sum(now - sent > seconds for sent in self._sent_at.values())

    def _record(self, event: dict[str, Any], answer: str) -> None:
        with self._lock:
            self._sent_at.pop(threading.get_ident(), None)
            self.answers[event["object_id"]].append(answer)
            acknowledged = answer == "received"
            if acknowledged:
                self.acknowledged += 1
            # Only the acknowledgement that reaches KILL_AFTER closes the gate: an unanswered attempt
            # recorded later, at the same count, must not close it again.
            closes_gate = acknowledged and self.acknowledged == KILL_AFTER
        if closes_gate:
            self.gate.clear()
            self._on_acknowledged()


def test_a_killed_web_worker_loses_no_acknowledged_delivery(connected: Stack) -> None:
    stack = connected
    # The host's own deliveries are dropped; this test is the sender, so it sees every answer (or none).
    stack.control("POST", "/faults", json={"kind": "drop_event", "count": EVENTS})
    ids = [stack.upload(athlete_id=ATHLETE, name=f"Track #retro {n}", **RUN)["id"] for n in range(EVENTS)]
    events = [d["event"] for d in stack.control("GET", "/deliveries").json() if d["status"] == "dropped"]
    assert sorted(e["object_id"] for e in events) == sorted(ids)

    master = stack.web_master_pid()
    (worker,) = stack.web_worker_pids()
    stream_flowing = threading.Event()
    sender = Sender(f"{stack.plugin_url}/webhooks/strava", stream_flowing.set)
    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        delivered = [pool.submit(sender.deliver, event) for event in events]
        assert stream_flowing.wait(60), "the plugin acknowledged too few deliveries"
        # The database stalls (a lock held elsewhere): every sender's next delivery waits inside the web
        # worker, in the middle of its request, and that is when the worker is killed.
        with stack.inbox_writes_held():
            sender.gate.set()
            wait_for(
                lambda: sender.waiting_longer_than(0.5) == SENDERS, 30, "every sender waiting on the worker"
            )
            os.kill(worker, signal.SIGKILL)
        for delivery in delivered:
            delivery.result(timeout=DELIVERY_ATTEMPTS * (ANSWER_TIMEOUT_S + RETRY_PAUSE_S) + 30)

    # The requests inside the dead worker got no answer; their senders tried again.
    interrupted = [i for i in ids if NO_ANSWER in sender.answers[i]]
    assert len(interrupted) >= 1, f"the kill interrupted no delivery: {dict(sender.answers)}"
    # gunicorn's master lived on and put a new worker in the dead one's place; the plugin stayed up.
    assert not alive(worker)
    assert stack.web_master_pid() == master and stack.plugin is not None and stack.plugin.poll() is None
    assert stack.web_worker_pids() and worker not in stack.web_worker_pids()

    for activity_id in ids:
        answers = sender.answers[activity_id]
        # Every delivery was acknowledged in the end, after its retries, and once: never an error.
        assert answers[-1] == "received", (activity_id, answers)
        assert set(answers) <= {"received", NO_ANSWER}, (activity_id, answers)
        assert answers.count("received") == 1, (activity_id, answers)

    wait_for(lambda: all(notes_in(stack, i) == 1 for i in ids), 60, "a note on every acknowledged activity")
    stack.wait_settled()
    assert all(notes_in(stack, i) == 1 for i in ids)
    assert puts_per_activity(stack) == Counter({i: 1 for i in ids})
    # One inbox row per event, each done once: no delivery was stored twice, none is left open.
    metrics = inbox_metrics(stack)
    assert metrics["done"] == EVENTS
    assert {status: n for status, n in metrics.items() if status != "done" and n} == {}


# --- the queue worker killed in the middle of a job -------------------------------------------------------


def fault_taken(stack: Stack, fault_id: int) -> bool:
    """The injected fault has been used up: its request reached the host and is being slowed down."""
    faults = stack.sandbox_app.extensions["sandbox"].faults
    return all(f.count == 0 for f in faults if f.id == fault_id)


def activity_calls(stack: Stack, activity_id: int) -> list[str]:
    """The host calls about one activity, in order: GET, GET streams, PUT."""
    calls = [c for c in host_calls(stack) if c["path"].startswith(f"/api/v3/activities/{activity_id}")]
    return [c["method"] + (" streams" if c["path"].endswith("/streams") else "") for c in calls]


# What the killed job was doing: the HTTP method slowed down at the host, and what the resumed job then says.
IN_FLIGHT = {
    # Killed while reading the activity: nothing was written; the resumed job writes the note.
    "read": ("GET", "note written"),
    # Killed while its write was on the way: the host applied it; the resumed job finds the note there and
    # writes nothing.
    "write": ("PUT", "description already up to date"),
}


@pytest.mark.parametrize("in_flight", sorted(IN_FLIGHT))
def test_a_killed_queue_worker_resumes_its_job_and_writes_once(connected: Stack, in_flight: str) -> None:
    method, resumed_outcome = IN_FLIGHT[in_flight]
    stack = connected
    fault = stack.control(
        "POST",
        "/faults",
        json={
            "kind": "http",
            "method": method,
            "path": r"^/api/v3/activities/\d+$",
            "latency_ms": 2500,
            "count": 1,
        },
    ).json()
    worker = stack.queue_worker_pid()
    assert worker is not None
    activity = stack.upload(athlete_id=ATHLETE, name="Track #retro", description="Mine.", **RUN)
    wait_for(lambda: fault_taken(stack, fault["id"]), 30, f"the job's slow {method} to reach the host")
    assert [e["status"] for e in stack.inbox()] == ["working"]

    os.kill(worker, signal.SIGKILL)  # the queue worker alone, in the middle of the job

    # The supervisor notices and starts a new worker; the web server is untouched.
    wait_for(
        lambda: stack.queue_worker_pid() not in (None, worker), 30, "the supervisor to restart the worker"
    )
    assert requests.get(f"{stack.plugin_url}/healthz", timeout=5).status_code == 200
    # The dead worker's request still completes at the host (its write, if that was in flight, lands).
    wait_for(lambda: method in activity_calls(stack, activity["id"]), 10, f"the dead worker's {method}")
    # The event stays leased to the dead worker: no other worker touches it before the lease runs out.
    (event,) = stack.inbox()
    assert (event["status"], event["attempts"]) == ("working", 1)

    # The lease (minutes long) runs out and the periodic resume hands the event to the new worker.
    assert stack.expire_event_leases() == 1
    stack.resume_events()
    stack.wait_settled()

    assert notes_in(stack, activity["id"]) == 1
    assert stack.activity(activity["id"])["description"].startswith("Mine.\n\n")
    assert puts_per_activity(stack) == Counter({activity["id"]: 1})
    (event,) = stack.inbox()
    assert (event["status"], event["attempts"]) == ("done", 2)
    assert resumed_outcome in event["outcome"]
    # The resumed job read the activity again; the one write is the dead job's (write) or its own (read).
    expected = {
        "read": ["GET", "GET", "GET streams", "PUT"],
        "write": ["GET", "GET streams", "PUT", "GET", "GET streams"],
    }
    assert activity_calls(stack, activity["id"]) == expected[in_flight]
