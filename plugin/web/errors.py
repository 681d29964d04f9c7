"""Database faults as clear answers. A database that is briefly unavailable (down, restarting, locked for
longer than the busy or lock timeout) gets 503 with a reason and Retry-After, so the host delivers the event
again and a person tries again; any other database error gets a plain 500. Never a traceback, and the log
gets one line without the request body or the statement's parameters."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from plugin.store import DATABASE_UNAVAILABLE, describe_database_error

log = logging.getLogger(__name__)

# Seconds a client should wait before trying again. Strava redelivers a webhook on its own schedule; a
# load balancer or a person reading the page can use it.
RETRY_AFTER_S = 30
UNAVAILABLE_REASON = "the database is unavailable for a moment; try again shortly"


def init_app(app: Flask) -> None:
    app.register_error_handler(DBAPIError, database_error)
    app.register_error_handler(PoolTimeout, database_error)


def database_error(error: Exception) -> tuple[Response | str, int, dict[str, str]]:
    where = f"{request.method} {request.path}"  # the path alone: a query string may carry a verify token
    if isinstance(error, DATABASE_UNAVAILABLE):
        log.warning("%s answered 503, database unavailable: %s", where, describe_database_error(error))
        return _answer(503, "Service Unavailable", UNAVAILABLE_REASON, {"Retry-After": str(RETRY_AFTER_S)})
    # Not a fault of the moment (a constraint, a value the database refused): a bug to look into.
    log.error("%s answered 500, database error: %s", where, describe_database_error(error))
    return _answer(500, "Internal Server Error", "internal error", {})


def _answer(
    code: int, title: str, reason: str, headers: dict[str, str]
) -> tuple[Response | str, int, dict[str, str]]:
    # As for HTTP errors (pages.py): machine clients (the host's webhook) get JSON, people get a page.
    if request.path.startswith("/webhooks/") or request.accept_mimetypes.best == "application/json":
        return jsonify({"error": reason}), code, headers
    return render_template("message.html", title=title, message=reason), code, headers
