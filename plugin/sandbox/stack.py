"""The sandbox host and the real plugin (`backstride serve`, a separate process) on loopback, wired together.

`backstride demo` and the end-to-end tests both drive Backstride through this, only over HTTP and the
interfaces in DESIGN.md: environment variables, routes and the `backstride` command.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from plugin.lifetime import ending_with_parent
from plugin.sandbox.app import create_sandbox
from plugin.sandbox.server import LoopbackServer, free_port
from plugin.sandbox.state import SandboxConfig

if TYPE_CHECKING:
    from plugin.store import Store


class StackError(RuntimeError):
    pass


class Stack:
    def __init__(
        self,
        sandbox_config: SandboxConfig | None = None,
        plugin_port: int = 0,
        sandbox_port: int = 0,
        instance_dir: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.sandbox_config = sandbox_config or SandboxConfig()
        self._plugin_port = plugin_port
        self._sandbox_port = sandbox_port
        self._own_instance = instance_dir is None
        self.instance_dir = instance_dir or Path(tempfile.mkdtemp(prefix="backstride-demo-"))
        self.extra_env = extra_env or {}
        # The monitoring token of this stack's plugin (GET /metrics), for tests and benchmarks that scrape.
        self.metrics_token = secrets.token_urlsafe(24)
        self.sandbox_app = create_sandbox(self.sandbox_config)
        self.sandbox: LoopbackServer | None = None
        self.plugin: subprocess.Popen | None = None
        self.plugin_url = ""
        self.log_path = self.instance_dir / "plugin.log"

    # --- life cycle ----------------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> Stack:
        self.sandbox = LoopbackServer(self.sandbox_app, port=free_port(self._sandbox_port)).start()
        port = free_port(self._plugin_port)
        self.plugin_url = f"http://127.0.0.1:{port}"
        self.start_plugin(timeout)
        return self

    def start_plugin(self, timeout: float = 60.0) -> None:
        port = self.plugin_url.rsplit(":", 1)[1]
        with open(self.log_path, "ab") as log:
            self.plugin = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "plugin.cli", "serve", "--port", port, "--web-workers", "1"],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # The plugin ends with the process that started it (the demo, a test run), even when that
                # one is killed without a chance to stop it.
                preexec_fn=ending_with_parent(),
            )
        self._wait_healthy(timeout)

    def stop_plugin(self, sig: int = signal.SIGTERM) -> None:
        if self.plugin is None:
            return
        stop_process_group(self.plugin, sig)  # the supervisor, gunicorn and the worker
        self.plugin = None

    def stop(self) -> None:
        if self.sandbox:
            # First, so that no delivery's kept-alive connection holds up the web server's graceful stop.
            self.sandbox_app.extensions["sandbox_deliverer"].stop()
        self.stop_plugin()
        if self.sandbox:
            self.sandbox.stop()
            self.sandbox = None
        if self._own_instance:
            shutil.rmtree(self.instance_dir, ignore_errors=True)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        assert self.sandbox is not None
        config = self.sandbox_config
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith(("BACKSTRIDE_", "STRAVA_"))},
            "BACKSTRIDE_ENV": "development",
            "BACKSTRIDE_INSTANCE_DIR": str(self.instance_dir),
            "BACKSTRIDE_PUBLIC_URL": self.plugin_url,
            "STRAVA_CLIENT_ID": config.client_id,
            "STRAVA_CLIENT_SECRET": config.client_secret,
            "STRAVA_OAUTH_URL": f"{self.sandbox.url}/oauth",
            "STRAVA_API_URL": f"{self.sandbox.url}/api/v3",
            "BACKSTRIDE_METRICS_TOKEN": self.metrics_token,
            **self.extra_env,
        }

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.plugin is not None and self.plugin.poll() is not None:
                raise StackError(f"the plugin exited with {self.plugin.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.plugin_url}/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise StackError(f"the plugin did not become healthy in {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # --- the plugin's processes, as an operator sees them in `ps` ----------------------------------------

    def _supervised(self, role: str) -> int | None:
        """The supervisor's child running `backstride serve --no-worker` (web) or `backstride worker`."""
        if self.plugin is None:
            return None
        for pid in child_pids(self.plugin.pid):
            command = _cmdline(pid)
            if role == "web" and "--no-worker" in command:
                return pid
            if role == "worker" and command[-1:] == ["worker"]:
                return pid
        return None

    def web_master_pid(self) -> int | None:
        """gunicorn's master (the arbiter): it holds the listening socket and replaces a worker that dies."""
        return self._supervised("web")

    def web_worker_pids(self) -> list[int]:
        """gunicorn's worker processes, the ones serving requests (children of the master)."""
        master = self.web_master_pid()
        return child_pids(master) if master is not None else []

    def queue_worker_pid(self) -> int | None:
        """The queue worker the supervisor runs (and restarts when it dies)."""
        return self._supervised("worker")

    # --- the plugin's inbox, as an operator reads it in the database -------------------------------------

    @contextmanager
    def _store(self) -> Iterator[Store]:
        from plugin.config import load_settings
        from plugin.store import Store

        settings = load_settings(self.env())
        store = Store(settings.database_url, settings.token_key)
        try:
            yield store
        finally:
            store.engine.dispose()

    def inbox(self) -> list[dict[str, Any]]:
        """Every stored webhook event: object, aspect, status, attempts and outcome, oldest first."""
        from sqlalchemy import select

        from plugin.store import InboxEvent

        with self._store() as store, store.session() as session:
            rows = session.scalars(select(InboxEvent).order_by(InboxEvent.id)).all()
            return [
                {
                    "id": row.id,
                    "object_id": row.object_id,
                    "aspect_type": row.aspect_type,
                    "status": row.status,
                    "attempts": row.attempts,
                    "outcome": row.outcome,
                }
                for row in rows
            ]

    @contextmanager
    def inbox_writes_held(self) -> Iterator[None]:
        """Hold the inbox table's write lock, as a long migration or backup would: webhook requests wait
        inside the web server, unanswered, until the block ends (keep it to a few seconds: SQLite's busy
        timeout is 10 s) and then are stored as usual."""
        from plugin.store import InboxEvent

        with self._store() as store:
            if store.engine.dialect.name == "sqlite":
                import sqlite3

                connection = sqlite3.connect(str(store.engine.url.database), isolation_level=None)
                try:
                    connection.execute("BEGIN IMMEDIATE")  # the one writer's lock, taken now
                    yield
                finally:
                    connection.close()  # rolls back
            else:
                # Ends with the transaction (which changed nothing).
                with store.engine.begin() as connection:
                    connection.exec_driver_sql(f"LOCK TABLE {InboxEvent.__tablename__} IN EXCLUSIVE MODE")
                    yield

    def expire_event_leases(self) -> int:
        """Time travel for tests: end every worker's lease on an event now, as if the lease (minutes long)
        had run out; returns how many events were leased. The next resume gives them to a live worker."""
        from sqlalchemy import update

        from plugin.store import InboxEvent, utcnow

        with self._store() as store, store.session() as session:
            result = session.execute(
                update(InboxEvent)
                .where(InboxEvent.status == "working")
                .values(lease_until=utcnow() - timedelta(seconds=1))
            )
            return int(result.rowcount or 0)

    def resume_events(self) -> int:
        """Run the queue's periodic resume task once, now (the worker runs it every minute): open events
        that no live worker holds are enqueued again; returns how many."""
        from plugin.config import load_settings
        from plugin.services import build_services

        services = build_services(load_settings(self.env()))
        try:
            return services.queue.resume_events()
        finally:
            services.store.engine.dispose()

    # --- what a runner and an operator do --------------------------------------------------------------

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603
            [sys.executable, "-m", "plugin.cli", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def subscribe(self) -> None:
        result = self.cli("subscription", "create")
        if result.returncode != 0:
            raise StackError(f"subscription create failed: {result.stderr.strip()}\n{self.log_tail()}")

    def connect(
        self, athlete_id: int | None = None, untick: tuple[str, ...] = (), cancel: bool = False
    ) -> requests.Response:
        """A browser: /connect, the host's consent page, Authorize (or Cancel), back to the callback."""
        browser = requests.Session()
        response = browser.get(f"{self.plugin_url}/connect", timeout=10)
        if athlete_id is not None and urlsplit(response.url).path.endswith("/authorize"):
            # The sandbox signs in whoever the athlete_id parameter names (a sandbox-only convenience).
            response = browser.get(f"{response.url}&athlete_id={athlete_id}", timeout=10)
        if urlsplit(response.url).path == "/oauth/callback":
            return response  # already authorized: the host skipped its consent page
        form = _ConsentForm.parse(response.text)
        fields: list[tuple[str, str]] = [(k, v) for k, v in form.hidden.items()]
        fields += [("scope", s) for s in form.scopes if s not in untick]
        fields.append(("decision", "cancel" if cancel else "authorize"))
        return browser.post(self.sandbox_url(form.action), data=fields, timeout=30)

    def sandbox_url(self, path: str = "") -> str:
        assert self.sandbox is not None
        return f"{self.sandbox.url}{path}"

    def control(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = requests.request(method, self.sandbox_url(f"/_sandbox{path}"), timeout=60, **kwargs)
        response.raise_for_status()
        return response

    def upload(
        self, seed: str | None = None, athlete_id: int | None = None, **activity: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"activity": activity}
        if seed:
            body["seed"] = seed
        if athlete_id is not None:
            body["athlete_id"] = athlete_id
        return self.control("POST", "/activities", json=body).json()

    def activity(self, activity_id: int) -> dict[str, Any]:
        return self.control("GET", f"/activities/{activity_id}").json()

    def wait_settled(self, timeout: float = 60.0) -> None:
        """Until the host delivered every event and the plugin has no open work left."""
        deadline = time.monotonic() + timeout
        self.control("POST", "/idle", json={"timeout": timeout})
        with self._store() as store:
            while time.monotonic() < deadline:
                counts = store.event_counts()
                if counts.get("pending", 0) == 0 and counts.get("working", 0) == 0:
                    return
                time.sleep(0.2)
            raise StackError(
                f"the plugin still had open events after {timeout:.0f} s: {store.event_counts()}"
            )


def stop_process_group(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Signal a process started with start_new_session=True and all of its children; SIGKILL the group if
    its leader has not ended within 20 s, and whatever of the group outlived the leader."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
    with suppress(ProcessLookupError):  # raised when the whole group has ended
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def child_pids(pid: int) -> list[int]:
    """The live (not zombie) child processes of `pid`, from /proc (Linux; no psutil needed)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # the process ended while we looked
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")".
        fields = text.rpartition(")")[2].split()
        if len(fields) >= 2 and fields[0] != "Z" and int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return sorted(children)


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


class _ConsentForm(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.hidden: dict[str, str] = {}
        self.scopes: list[str] = []

    @classmethod
    def parse(cls, html: str) -> _ConsentForm:
        form = cls()
        form.feed(html)
        if not form.action:
            raise StackError("the host did not show a consent form")
        return form

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a.get("action", "")
        elif tag == "input" and a.get("type") == "hidden":
            self.hidden[a.get("name", "")] = a.get("value", "")
        elif tag == "input" and a.get("type") == "checkbox" and a.get("name") == "scope":
            self.scopes.append(a.get("value", ""))
