"""`backstride demo` and `backstride sandbox` as a newcomer runs them: any directory, no configuration."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import requests

from plugin.analysis.notes import NOTE_START
from plugin.lifetime import ending_with_parent
from plugin.sandbox.server import free_port


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("BACKSTRIDE_", "STRAVA_"))}


def backstride(*args: str) -> list[str]:
    return [sys.executable, "-m", "plugin.cli", *args]


def as_a_terminal_runs_it() -> None:
    # A test run started in the background by a shell without job control (a CI runner, nohup, a script's
    # `&`) has SIGINT ignored, and a child inherits that: Python then installs no KeyboardInterrupt, and
    # Ctrl-C would never reach the command. A terminal runs it with SIGINT at its default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# ... and the command ends (SIGTERM, which it takes as Ctrl-C) if the test run itself is killed.
terminal_child = ending_with_parent(then=as_a_terminal_runs_it)


def launch(command: list[str], cwd) -> subprocess.Popen:
    """A long-running command in its own process group, as a terminal would run it."""
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module
        command,
        cwd=cwd,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=terminal_child,
    )


def read_until(process: subprocess.Popen, marker: str, timeout: float) -> str:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"{marker!r} not printed in {timeout:.0f} s; got:\n{''.join(seen)}")


def test_demo_once_prints_the_annotated_descriptions_and_exits_0(tmp_path):
    result = subprocess.run(
        backstride("demo", "--once"),
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    blocks = {block.split("\n", 1)[0]: block for block in out.split("== ")[1:]}
    intervals = blocks["Tempo with #retro intervals (Run)"]
    assert intervals.count(NOTE_START) == 1
    assert "Felt strong today." in intervals
    assert "3 backward efforts" in intervals
    assert NOTE_START in blocks["Retro walk in the park (Walk)"]
    assert NOTE_START in blocks["Deadmill session, backward (Run)"]
    assert "no note" in next(k for k in blocks if k.startswith("Easy recovery run"))
    assert "no note" in next(k for k in blocks if k.startswith("Lunch ride"))
    assert "Backstride landing page  http://127.0.0.1:" in out
    assert re.search(r"Runner settings +http://127\.0\.0\.1:\d+/settings", out)
    assert list(tmp_path.iterdir()) == []  # nothing left behind in the working directory


def test_demo_keeps_serving_and_ends_cleanly_on_ctrl_c(tmp_path):
    process = launch(backstride("demo"), tmp_path)
    try:
        out = read_until(process, "Serving until Ctrl-C", timeout=180)
        landing = next(line.split()[-1] for line in out.splitlines() if "landing page" in line)
        sandbox = next(line.split()[-1] for line in out.splitlines() if "Sandbox activities" in line)
        assert requests.get(landing, timeout=5).status_code == 200
        assert "Tempo with #retro intervals" in requests.get(sandbox, timeout=5).text
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's whole process group
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    for url in (landing, sandbox):
        try:
            requests.get(url, timeout=2)
        except requests.ConnectionError:
            continue
        raise AssertionError(f"{url} still answers after Ctrl-C")


def test_sandbox_alone_says_how_to_point_a_plugin_at_it(tmp_path):
    port = free_port()
    process = launch(backstride("sandbox", "--port", str(port)), tmp_path)
    try:
        out = read_until(process, "STRAVA_CLIENT_ID=", timeout=30)
        assert f"STRAVA_API_URL=http://127.0.0.1:{port}/api/v3" in out
        state = requests.get(f"http://127.0.0.1:{port}/_sandbox/state", timeout=5).json()
        assert "retro-intervals" in state["seed_keys"]
        unauthenticated = requests.get(f"http://127.0.0.1:{port}/api/v3/athlete", timeout=5)
        assert unauthenticated.status_code == 401
        assert "X-RateLimit-Usage" in unauthenticated.headers
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=15) in (0, 130)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_ctrl_c_reaches_a_command_even_when_the_test_run_ignores_it(tmp_path):
    # As when the test run itself was started in the background by a shell without job control.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        process = launch(backstride("sandbox", "--port", str(free_port())), tmp_path)
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        read_until(process, "STRAVA_CLIENT_ID=", timeout=30)
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=15) in (0, 130)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
