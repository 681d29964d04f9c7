"""The runner's pages and the headers every response carries."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from plugin.analysis import sources
from plugin.analysis.summary import example_note
from plugin.web import services

bp = Blueprint("pages", __name__)

# No inline scripts or styles anywhere: the policy can stay strict.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
# Every response carries these, unless its view set its own.
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
)


@bp.get("/")
def landing():
    return render_template("landing.html", example_note=example_note(services().settings.sources_url))


@bp.get("/science")
def science():
    """The public page every note links to: each figure a note may use, with its source."""
    return render_template("science.html", sections=sources.SECTIONS)


@bp.get("/privacy")
def privacy():
    return render_template("privacy.html")


@bp.get("/terms")
def terms():
    return render_template("terms.html")


@bp.get("/support")
def support():
    return render_template("support.html")


# Served over https, browsers are told to keep to https for a year (HSTS).
HSTS = ("Strict-Transport-Security", "max-age=31536000")


def init_app(app: Flask) -> None:
    https = app.extensions["backstride"].settings.public_url.startswith("https://")
    headers = (*SECURITY_HEADERS, HSTS) if https else SECURITY_HEADERS

    @app.after_request
    def security_headers(response):
        # One pass over the headers rather than Headers.setdefault, which looks each name up by raising
        # and catching a KeyError: three times the cost, paid by every webhook delivery.
        present = {name.lower() for name, _ in response.headers}
        for name, value in headers:
            if name.lower() not in present:
                response.headers.add(name, value)
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        # Machine clients (the host's webhook) get JSON with a reason; people get a page.
        if request.path.startswith("/webhooks/") or request.accept_mimetypes.best == "application/json":
            return jsonify({"error": error.description or error.name}), error.code
        return render_template("message.html", title=error.name, message=error.description), error.code
