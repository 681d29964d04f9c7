"""The web app: the Flask app factory, and blueprints that are thin adapters (validate, store, enqueue and
answer)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Request, current_app
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from plugin.config import Settings, load_settings
from plugin.services import Services, build_services

# Webhook bodies are a few hundred bytes; anything much larger is not from the host.
MAX_REQUEST_BYTES = 64 * 1024
SESSION_LIFETIME_S = 12 * 60 * 60

csrf = CSRFProtect()


def create_app(
    config: Settings | Mapping[str, str] | None = None,
    services: Services | None = None,
    **flask_config: Any,
) -> Flask:
    """The Flask app factory.

    `config` is a Settings object, or a mapping read like the environment (tests pass one), or None to
    read os.environ. `services` lets tests supply a queue or host of their own.
    """
    settings = config if isinstance(config, Settings) else load_settings(config)
    services = services or build_services(settings)

    app = Flask(__name__, template_folder="templates", static_folder="static")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        # A signed-in session lasts 12 hours; connecting again (one click, no consent page) renews it.
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME_S,
        # Forms carry a CSRF token valid for the session's life, not a shorter fixed time.
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.config.update(flask_config)
    if settings.proxy_hops:
        # Behind nginx: the client's address and scheme come from X-Forwarded-*, trusted only this deep.
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    app.session_interface = _SessionInterface()
    app.extensions["backstride"] = services
    _quiet_noisy_loggers()

    from plugin.web import connect, errors, health, metrics, pages, settings, webhook

    app.register_blueprint(pages.bp)
    app.register_blueprint(connect.bp)
    app.register_blueprint(settings.bp)
    app.register_blueprint(webhook.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    pages.init_app(app)
    errors.init_app(app)  # a database briefly unavailable: 503 with Retry-After, never a traceback
    # Every form is protected; the host's webhook posts carry no browser session and are checked by
    # their verify token, subscription id and owner instead.
    csrf.init_app(app)
    csrf.exempt(webhook.bp)
    return app


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, except for the host's webhook, whose posts carry no cookie: opening a
    session derives the signing key on every request, which for a webhook costs about as much as reading
    its event."""

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        if request.path.startswith("/webhooks/"):
            return self.make_null_session(app)
        return super().open_session(app, request)


def _quiet_noisy_loggers() -> None:
    # urllib3 logs full URLs at DEBUG, and subscription calls carry the client secret in the query string.
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def services() -> Services:
    return current_app.extensions["backstride"]
