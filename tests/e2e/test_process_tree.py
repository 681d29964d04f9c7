"""What a command starts ends with it: `backstride serve` killed alone, `backstride demo` stopped with SIGTERM
or killed, and the test run's own check that nothing it started outlives it."""

from __future__ import annotations

import os
import signal

import pytest
import requests

from plugin.sandbox.stack import Stack
from plugin.sandbox.state import SandboxConfig
from tests.e2e.test_demo import backstride, launch, read_until
from tests.support.processes import alive, descendants, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def answers(url: str) -> bool:
    try:
        requests.get(url, timeout=2)
    except requests.ConnectionError:
        return False
    return True


def test_the_supervisor_killed_alone_takes_its_children_and_frees_the_port():
    with Stack(SandboxConfig(seed=False)) as stack:
        assert stack.plugin is not None
        supervisor = stack.plugin.pid
        children = [stack.web_master_pid(), stack.queue_worker_pid(), *stack.web_worker_pids()]
        assert None not in children and len(children) == 3
        # What serve writes (tokens, athlete data) is private to the installation's user.
        for name in ("backstride.db", "queue.db"):
            assert (stack.instance_dir / name).stat().st_mode & 0o077 == 0, name

        os.kill(supervisor, signal.SIGKILL)
        stack.plugin.wait()
        wait_until(lambda: not any(alive(pid) for pid in children), 30, "the supervisor's children to end")
        assert not answers(f"{stack.plugin_url}/healthz")

        # A restart on the same port finds it free and serves.
        stack.start_plugin()
        assert requests.get(f"{stack.plugin_url}/healthz", timeout=5).status_code == 200


@pytest.fixture
def demo(tmp_path):
    process = launch(backstride("demo"), tmp_path)
    try:
        out = read_until(process, "Serving until Ctrl-C", timeout=180)
        yield process, out
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def urls_printed(out: str) -> list[str]:
    marks = ("landing page", "Sandbox activities")
    return [line.split()[-1] for line in out.splitlines() if any(mark in line for mark in marks)]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_the_demo_stopped_or_killed_leaves_nothing_running(demo, sig):
    process, out = demo
    started = descendants(process.pid)
    assert len(started) >= 4  # the plugin's supervisor, web server (master and worker) and queue worker
    urls = urls_printed(out)
    assert len(urls) == 2 and all(answers(url) for url in urls)

    os.kill(process.pid, sig)  # the demo process alone, as `kill PID` does
    code = process.wait(timeout=30)
    assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
    wait_until(lambda: not any(alive(pid) for pid in started), 30, "everything the demo started to end")
    assert not any(answers(url) for url in urls)


def test_a_process_left_running_fails_the_test_run(pytester, monkeypatch):
    pytester.makepyfile(
        test_forgetful="""
        import subprocess, sys

        def test_starts_a_process_and_forgets_it():
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        """
    )
    monkeypatch.setenv("PYTHONPATH", ROOT)
    result = pytester.runpytest_subprocess(
        "-p", "tests.support.processes", "-p", "no:cacheprovider", "-o", "process_grace_s=0.5"
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*1 process(es) started by the tests were still running (now killed)*"])
    result.stdout.fnmatch_lines(["*import time; time.sleep(300)*"])


def test_a_run_that_stops_what_it_starts_passes(pytester, monkeypatch):
    pytester.makepyfile(
        test_tidy="""
        import subprocess, sys

        def test_starts_a_process_and_ends_it():
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
            child.terminate()
            child.wait()
        """
    )
    monkeypatch.setenv("PYTHONPATH", ROOT)
    result = pytester.runpytest_subprocess("-p", "tests.support.processes", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_a_run_stopped_with_sigterm_still_stops_what_it_started(pytester, monkeypatch, tmp_path):
    """A cancelled CI job sends SIGTERM: the fixtures' finalizers still run (a daemonized server, which no
    parent-death signal reaches, is stopped only by them)."""
    pidfile = tmp_path / "child.pid"
    pytester.makepyfile(
        test_cancelled=f"""
        import os, signal, subprocess, sys, time
        import pytest

        @pytest.fixture(scope="session")
        def server():
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
            open({str(pidfile)!r}, "w").write(str(child.pid))
            yield child
            child.terminate()
            child.wait()

        def test_cancelled_midway(server):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
        """
    )
    monkeypatch.setenv("PYTHONPATH", ROOT)
    result = pytester.runpytest_subprocess("-p", "tests.support.processes", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert result.duration < 25
    assert not alive(int(pidfile.read_text()))
