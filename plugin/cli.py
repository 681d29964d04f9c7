"""The `backstride` command."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from plugin.config import ConfigError, Settings, load_settings
from plugin.hosts.base import HostError
from plugin.lifetime import ending_with_parent
from plugin.logs import access_log_format, access_logger_class, configure_logging

log = logging.getLogger("backstride")
# How long a thread of a web or queue worker may hold the interpreter while another wants it (Python's default
# is 5 ms): a thread back from the database may be holding its write lock, which webhook deliveries wait for.
SWITCH_INTERVAL_S = 0.001
# `backstride serve` runs its queue worker this much nicer than the web server (0 to 19, higher yields more).
# On a shared machine the host waits for every webhook's answer, while the worker's pace is set by the host's
# latency and rate limit; a worker with a backlog would otherwise take a core's worth of CPU from the web
# server during a burst of deliveries.
WORKER_NICENESS = 10
# How often the supervisor looks at its children when no signal has woken it (a child's exit does).
SUPERVISOR_CHECK_S = 1.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    configure_logging("text")
    try:
        if not getattr(args, "needs_settings", True):
            return args.func(args)
        settings = load_settings()
        configure_logging(settings.log_format)
        return args.func(args, settings)
    except ConfigError as exc:
        print(f"backstride: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backstride", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the plugin (gunicorn, with the queue worker alongside)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=5000)
    serve.add_argument("--no-worker", action="store_true", help="web only; run `backstride worker` elsewhere")
    serve.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
    serve.set_defaults(func=cmd_serve)

    worker = commands.add_parser("worker", help="run the queue worker alone")
    worker.add_argument("--threads", type=int, default=2)
    worker.set_defaults(func=cmd_worker)

    demo = commands.add_parser(
        "demo", help="the sandbox host and the plugin together, with sample activities"
    )
    demo.add_argument("--once", action="store_true", help="exit after printing the annotated descriptions")
    demo.set_defaults(func=cmd_demo, needs_settings=False)

    sandbox = commands.add_parser("sandbox", help="run the Strava-compatible sandbox host alone")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=5100)
    sandbox.add_argument("--client-id", default="1234")
    sandbox.add_argument("--client-secret", default="sandbox-client-secret")
    sandbox.add_argument("--oauth-prefix", default="/oauth")
    sandbox.add_argument("--api-prefix", default="/api/v3")
    sandbox.add_argument(
        "--public",
        action="store_true",
        help="allow a non-loopback --host (it signs in any athlete id: never on a network you share)",
    )
    sandbox.set_defaults(func=cmd_sandbox, needs_settings=False)

    analyze = commands.add_parser(
        "analyze", help="find backward efforts in a FIT, TCX, GPX or streams JSON file"
    )
    analyze.add_argument("file")
    analyze.add_argument("--json", action="store_true", help="print the analysis as JSON")
    analyze.add_argument("--weight", type=_weight_kg, metavar="KG", help="body mass for the calories")
    analyze.add_argument("--units", choices=["metric", "imperial"], default="metric")
    analyze.set_defaults(func=cmd_analyze, needs_settings=False)

    manifest = commands.add_parser("manifest", help="the marketplace manifest")
    manifest.add_argument("action", choices=["check"])
    manifest.add_argument(
        "--file", metavar="PATH", help="the manifest to check (default: the one shipped with the package)"
    )
    manifest.set_defaults(func=cmd_manifest, needs_settings=False)

    keys = commands.add_parser("keys", help="the keys that encrypt stored tokens")
    keys.add_argument("action", choices=["rotate"], help="re-encrypt every stored token with the newest key")
    keys.set_defaults(func=cmd_keys)

    subscription = commands.add_parser("subscription", help="manage the host's push subscription")
    subscription.add_argument("action", choices=["create", "show", "delete"])
    subscription.set_defaults(func=cmd_subscription)
    return parser


# --- manifest -------------------------------------------------------------------------------------------


def cmd_manifest(args: argparse.Namespace) -> int:
    from pathlib import Path

    from plugin.manifest import PACKAGED_MANIFEST, ManifestError, check_manifest

    path = Path(args.file) if args.file else PACKAGED_MANIFEST
    try:
        result = check_manifest(path)
    except ManifestError as exc:
        print(f"backstride manifest check: {path}: {exc}", file=sys.stderr)
        return 1
    if result.errors:
        for error in result.errors:
            print(f"{path}: {error}", file=sys.stderr)
        print(f"backstride manifest check: {len(result.errors)} problem(s) in {path}", file=sys.stderr)
        return 1
    print(f"{path}: valid against the schema and the app ({result.paths_checked} paths checked)")
    return 0


# --- serve ----------------------------------------------------------------------------------------------


# The database, the queue and their journals hold tokens and athlete data: private to the installation's user.
PRIVATE_UMASK = 0o077


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    os.umask(PRIVATE_UMASK)  # the supervisor's children inherit it
    if not args.no_worker:
        # A small parent supervises two children, the web server and the queue worker, so that neither
        # one's process management (gunicorn reaps every child of its master) interferes with the other.
        web = [
            sys.executable,
            "-m",
            "plugin.cli",
            "serve",
            "--no-worker",
            "--host",
            args.host,
            "--port",
            str(args.port),
            "--web-workers",
            str(args.web_workers),
        ]
        return _Supervisor(web=web, worker=[sys.executable, "-m", "plugin.cli", "worker"]).run()

    from gunicorn.app.base import BaseApplication

    from plugin.services import build_services
    from plugin.web import create_app

    build_services(settings)  # creates the schema once, before workers fork, and fails early if broken

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in {
                "bind": f"{args.host}:{args.port}",
                "workers": max(1, args.web_workers),
                "worker_class": "gthread",
                "threads": 4,
                "timeout": 30,
                "graceful_timeout": 10,
                "accesslog": "-",
                "access_log_format": access_log_format(settings.log_format),
                "logger_class": access_logger_class(settings.strava_webhook_secret),
                # One control socket per user is shared by every instance; Backstride does not use it.
                "control_socket_disable": True,
            }.items():
                if key in self.cfg.settings:  # older gunicorn has no control socket setting
                    self.cfg.set(key, value)

        def load(self):
            app = create_app(settings)
            # Everything loaded so far lives as long as the worker. Out of the collector's sight, a full
            # collection (which a burst of requests triggers) scans only what the requests made: on a
            # 2-core machine it paused the worker for about 85 ms before, under 1 ms after.
            gc.freeze()
            sys.setswitchinterval(SWITCH_INTERVAL_S)
            return app

    Server().run()
    return 0


class _Supervisor:
    """Runs the web server and the queue worker; restarts the worker if it dies, stops both together."""

    def __init__(self, web: list[str], worker: list[str]) -> None:
        self.commands = {"web": web, "worker": worker}
        self.children: dict[str, subprocess.Popen] = {}
        self.stopping = False

    def run(self) -> int:
        # Signals (a stop, a child's exit) write to this pipe, so the loop wakes at once instead of at its
        # next check.
        wake, wake_write = os.pipe()
        os.set_blocking(wake, False)
        os.set_blocking(wake_write, False)
        previous_wakeup = signal.set_wakeup_fd(wake_write)
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)
        try:
            for name in self.commands:
                self._spawn(name)
            restarts = 0
            while not self.stopping:
                self._wait(wake, SUPERVISOR_CHECK_S)
                if self.stopping:
                    break
                web_code = self.children["web"].poll()
                if web_code is not None:
                    log.error("web server exited with %s; stopping", web_code)
                    return web_code or 1
                worker_code = self.children["worker"].poll()
                if worker_code is not None:
                    restarts += 1
                    log.warning("queue worker exited with %s; restarting it", worker_code)
                    self._wait(wake, min(30.0, 0.5 * 2 ** min(restarts, 6)))  # no tight crash loop
                    if not self.stopping:
                        self._spawn("worker")
            return 0
        finally:
            self._terminate_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_wakeup)
            os.close(wake)
            os.close(wake_write)

    def _wait(self, wake: int, seconds: float) -> None:
        """Up to `seconds`, or until a signal arrives."""
        deadline = time.monotonic() + seconds
        while not self.stopping and (left := deadline - time.monotonic()) > 0:
            if select.select([wake], [], [], left)[0]:
                try:
                    while os.read(wake, 512):
                        pass
                except BlockingIOError:
                    pass
                return

    def _spawn(self, name: str) -> None:
        # Set in the child before it runs, so every thread it starts inherits it (the supervisor has no
        # threads of its own, which is what makes preexec_fn safe here). A child also ends when the
        # supervisor dies, even by SIGKILL, so that a restart finds the port free.
        lower_priority = (lambda: os.nice(WORKER_NICENESS)) if name == "worker" else None
        self.children[name] = subprocess.Popen(  # noqa: S603 - our own interpreter
            self.commands[name],
            preexec_fn=ending_with_parent(then=lower_priority),
        )

    def _stop(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def _terminate_all(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + 15
        for child in self.children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


# --- demo and sandbox -------------------------------------------------------------------------------------


def _stop_like_ctrl_c(_signum: int, _frame: object) -> None:
    # The clean-up this starts (stopping every process the command started) is not cut short by another one.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def cmd_demo(args: argparse.Namespace) -> int:
    from plugin.demo import run_demo

    # `kill PID` stops the demo as Ctrl-C does: with the plugin and the sandbox it started.
    signal.signal(signal.SIGTERM, _stop_like_ctrl_c)
    return run_demo(once=args.once)


def cmd_sandbox(args: argparse.Namespace) -> int:
    from plugin.config import is_loopback
    from plugin.sandbox import SandboxConfig, create_sandbox
    from plugin.sandbox.server import LoopbackServer

    if not is_loopback(args.host) and not args.public:
        print(
            f"backstride sandbox: --host {args.host} is not loopback; the sandbox signs in any athlete id "
            "and hands out tokens to anyone who asks. Add --public to serve it there anyway.",
            file=sys.stderr,
        )
        return 2
    config = SandboxConfig(client_id=args.client_id, client_secret=args.client_secret)
    app = create_sandbox(config, oauth_prefix=args.oauth_prefix, api_prefix=args.api_prefix)
    server = LoopbackServer(app, host=args.host, port=args.port)
    base = server.url
    print(f"Sandbox host on {base} (Ctrl-C to stop). Point a plugin at it with:")
    print(f"  STRAVA_OAUTH_URL={base}{args.oauth_prefix} STRAVA_API_URL={base}{args.api_prefix}")
    print(f"  STRAVA_CLIENT_ID={config.client_id} STRAVA_CLIENT_SECRET={config.client_secret}", flush=True)
    signal.signal(signal.SIGTERM, _stop_like_ctrl_c)
    try:
        server.start()
        threading.Event().wait()
    finally:
        server.stop()
    return 0


# --- analyze ----------------------------------------------------------------------------------------------


def _weight_kg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of kilograms") from None
    if not 20 <= value <= 300:
        raise argparse.ArgumentTypeError(f"{text} kg is outside 20-300 kg")
    return value


def cmd_analyze(args: argparse.Namespace) -> int:
    from plugin.analyze import analyse_file, render
    from plugin.config import ConfigError, public_url_from
    from plugin.files import ActivityFileError

    try:
        # The note links to the installation's page of sources, as a written note does.
        sources_url = public_url_from(os.environ.get("BACKSTRIDE_PUBLIC_URL", "")) + "/science"
    except ConfigError as exc:
        print(f"backstride analyze: {exc}", file=sys.stderr)
        return 2
    try:
        activity, result = analyse_file(args.file, args.weight, args.units, sources_url)
    except ActivityFileError as exc:
        print(f"backstride analyze: {exc}", file=sys.stderr)
        return 2
    print(render(activity, result, args.units, args.json))
    return 0


# --- worker ---------------------------------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from plugin.services import build_services

    os.umask(PRIVATE_UMASK)

    services = build_services(settings)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    consumer = services.queue.huey.create_consumer(
        workers=max(1, args.threads), worker_type="thread", periodic=True, check_worker_health=True
    )
    # Events that arrived while no worker ran are picked up at once rather than at the next minute.
    services.queue.resume_events()
    consumer.run()
    return 0


# --- subscription -----------------------------------------------------------------------------------------


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    """`keys rotate`: with BACKSTRIDE_TOKEN_KEY="NEW,OLD" every token is written with NEW, and OLD can go."""
    from plugin.store import Store

    store = Store(settings.database_url, settings.token_key)
    store.create_schema()
    rotated, unreadable = store.rotate_tokens()
    print(f"re-encrypted the tokens of {rotated} athlete(s) with the newest key")
    if unreadable:
        listed = ", ".join(str(athlete_id) for athlete_id in unreadable)
        count = len(unreadable)
        print(f"no configured key opens the tokens of {count} athlete(s) ({listed}): they must reconnect")
        return 1
    return 0


def cmd_subscription(args: argparse.Namespace, settings: Settings) -> int:
    from plugin.services import build_services

    for name, value in (
        ("STRAVA_CLIENT_ID", settings.strava_client_id),
        ("STRAVA_CLIENT_SECRET", settings.strava_client_secret),
    ):
        if not value:
            print(
                f"backstride: {name} is not set; it is needed to manage the push subscription",
                file=sys.stderr,
            )
            return 2
    services = build_services(settings)
    host, store = services.host, services.store
    try:
        if args.action == "create":
            created = host.create_subscription(settings.webhook_callback_url, settings.strava_verify_token)
            store.set_subscription_id(created.id)
            print(f"subscription {created.id} created; events go to {settings.webhook_callback_url}")
        elif args.action == "show":
            current = host.show_subscriptions()
            ours = [s for s in current if s.callback_url == settings.webhook_callback_url] or current
            store.set_subscription_id(ours[0].id if ours else None)
            if not current:
                print("no subscription")
            for subscription in current:
                print(f"subscription {subscription.id}: {subscription.callback_url}")
        else:
            subscription_id = store.subscription_id()
            if subscription_id is None:
                current = host.show_subscriptions()
                subscription_id = current[0].id if current else None
            if subscription_id is None:
                print("no subscription to delete")
                return 0
            host.delete_subscription(subscription_id)
            store.set_subscription_id(None)
            print(f"subscription {subscription_id} deleted")
    except HostError as exc:
        print(f"backstride: subscription {args.action} failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
