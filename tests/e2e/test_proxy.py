"""The documented production layout: nginx (Debian's package) in front of `backstride serve`, with the
configuration the docs ship (docs/nginx-backstride.conf). Clients that trickle their headers tie up only
nginx's connections: the health check and the host's webhook still answer within Strava's 2 seconds."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path

import requests

from plugin.lifetime import ending_with_parent
from plugin.sandbox.server import free_port
from plugin.sandbox.stack import Stack
from plugin.sandbox.state import SandboxConfig
from tests.conftest import event
from tests.support.processes import wait_until
from tests.system_packages import require_program

SITE = Path(__file__).resolve().parents[2] / "docs" / "nginx-backstride.conf"
SLOW_CLIENTS = 16
ANSWER_WITHIN_S = 2.0  # Strava's limit for a webhook's answer


def nginx_config(root: Path, port: int, plugin_address: str) -> Path:
    """A whole nginx configuration around the shipped site snippet, private to the test."""
    site = SITE.read_text().replace("127.0.0.1:5000", plugin_address)
    temp = "\n".join(
        f"    {kind}_temp_path {root / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;" if os.geteuid() == 0 else ""
    config = root / "nginx.conf"
    config.write_text(
        f"""{user}
daemon off;
worker_processes 1;
pid {root / "nginx.pid"};
error_log stderr warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
{temp}
    server {{
        listen 127.0.0.1:{port};
{site}
    }}
}}
"""
    )
    return config


def trickling_client(port: int) -> socket.socket:
    """A client that has sent half its request headers and takes its time with the rest."""
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    client.sendall(b"GET /healthz HTTP/1.1\r\nHost: backstride.test\r\nX-Slow: 1\r\n")
    return client


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def test_behind_nginx_slow_clients_do_not_delay_the_health_check_or_the_webhook(tmp_path):
    nginx = require_program("nginx", "nginx")
    with Stack(SandboxConfig(seed=False), extra_env={"BACKSTRIDE_PROXY_HOPS": "1"}) as stack:
        stack.subscribe()
        port = free_port()
        config = nginx_config(tmp_path, port, stack.plugin_url.removeprefix("http://"))
        proxy = subprocess.Popen(  # noqa: S603 - nginx itself, our own configuration
            [str(nginx), "-c", str(config), "-p", str(tmp_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=ending_with_parent(),  # a test run killed outright takes its nginx with it
        )
        slow: list[socket.socket] = []
        try:
            wait_until(lambda: accepts(port) or proxy.poll() is not None, 15, "nginx to listen")
            assert proxy.poll() is None, proxy.stderr.read().decode() if proxy.stderr else ""
            slow = [trickling_client(port) for _ in range(SLOW_CLIENTS)]

            started = time.monotonic()
            health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=ANSWER_WITHIN_S)
            health_s = time.monotonic() - started
            started = time.monotonic()
            delivery = requests.post(
                f"http://127.0.0.1:{port}/webhooks/strava",
                json=event(
                    4242, owner_id=1, subscription_id=stack.control("GET", "/state").json()["subscription"]
                ),
                timeout=ANSWER_WITHIN_S,
            )
            webhook_s = time.monotonic() - started

            assert health.status_code == 200 and health.json()["status"] == "ok"
            assert delivery.status_code == 200 and delivery.json() == {"status": "received"}
            assert health_s < ANSWER_WITHIN_S and webhook_s < ANSWER_WITHIN_S
            # The slow clients are still waiting at nginx, not in the plugin.
            for client in slow:
                client.setblocking(False)
                # Still open with nothing sent back (BlockingIOError): waiting for the rest of its headers.
                with contextlib.suppress(BlockingIOError):
                    assert client.recv(1) != b"", "nginx closed a slow client early"
        finally:
            for client in slow:
                client.close()
            proxy.terminate()
            proxy.wait(timeout=15)
