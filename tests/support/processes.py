"""A pytest plugin: no process the tests started outlives the test run.

Every process started during the run inherits a mark in its environment (a variable unique to the run, under
a name that the tests' own environment filters, which drop BACKSTRIDE_* and STRAVA_*, keep). When the run
ends, after every fixture has stopped what it started, any process still carrying the mark is a leak: it is
killed, and the run fails naming it. SIGTERM ends the run as Ctrl-C does, finalizers included.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

MARK = "PYTEST_BACKSTRIDE_RUN"
# How long stopped processes get to finish ending (a web server's graceful stop takes a few seconds); the
# ini option process_grace_s overrides it.
GRACE_S = 20.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("process_grace_s", "seconds the tests' processes get to end", default=str(GRACE_S))


def marked_processes(run: str) -> dict[int, str]:
    """The live processes other than this one whose environment carries the run's mark: pid -> command."""
    wanted = f"{MARK}={run}".encode()
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if wanted not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # ended while we looked, or not ours to read
        found[int(entry.name)] = command.strip()
    return found


def leftovers(run: str, grace_s: float = GRACE_S) -> dict[int, str]:
    """The marked processes still alive after up to grace_s seconds for them to end."""
    deadline = time.monotonic() + grace_s
    while (running := marked_processes(run)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return running


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signum}")


@pytest.fixture(scope="session", autouse=True)
def no_process_outlives_the_run(pytestconfig: pytest.Config):
    # Set up before any other fixture of the run, and so torn down after all of them.
    run = uuid.uuid4().hex
    os.environ[MARK] = run
    # A run stopped with SIGTERM (a CI job cancelled, `kill`) ends as after Ctrl-C: every fixture's
    # finalizer runs and stops what it started, rather than Python exiting on the spot.
    previous = signal.signal(signal.SIGTERM, _interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
    still_running = leftovers(run, float(pytestconfig.getini("process_grace_s")))
    for pid in still_running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if still_running:
        listed = "\n".join(f"  {pid}: {command}" for pid, command in sorted(still_running.items()))
        count = len(still_running)
        pytest.fail(f"{count} process(es) started by the tests were still running (now killed):\n{listed}")


def alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def descendants(pid: int) -> list[int]:
    """Every live process below `pid`: children, their children, and so on."""
    from plugin.sandbox.stack import child_pids

    found: list[int] = []
    frontier = [pid]
    while frontier:
        children = child_pids(frontier.pop())
        found += children
        frontier += children
    return found


def wait_until(predicate, timeout: float, what: str) -> None:
    """Polls the predicate until it holds; fails the test naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)
