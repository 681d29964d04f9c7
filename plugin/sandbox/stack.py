"""The sandbox host and the real plugin (`backstride serve`, a separate process) on loopback, wired together.

`backstride demo` and the end-to-end tests both drive Backstride through this, only over HTTP and the
interfaces in DESIGN.md: environment variables, routes and the `backstride` command.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from plugin.sandbox.app import create_sandbox
from plugin.sandbox.server import LoopbackServer, free_port
from plugin.sandbox.state import SandboxConfig


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
            )
        self._wait_healthy(timeout)

    def stop_plugin(self, sig: int = signal.SIGTERM) -> None:
        if self.plugin is None:
            return
        if self.plugin.poll() is None:
            # The whole process group: the supervisor, gunicorn and the worker.
            os.killpg(self.plugin.pid, sig)
            try:
                self.plugin.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.plugin.pid, signal.SIGKILL)
                self.plugin.wait()
        self.plugin = None

    def stop(self) -> None:
        self.stop_plugin()
        if self.sandbox:
            self.sandbox_app.extensions["sandbox_deliverer"].stop()
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
        from plugin.config import load_settings
        from plugin.store import Store

        settings = load_settings(self.env())
        store = Store(settings.database_url, settings.token_key)
        try:
            while time.monotonic() < deadline:
                counts = store.event_counts()
                if counts.get("pending", 0) == 0 and counts.get("working", 0) == 0:
                    return
                time.sleep(0.2)
            raise StackError(
                f"the plugin still had open events after {timeout:.0f} s: {store.event_counts()}"
            )
        finally:
            store.engine.dispose()


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
