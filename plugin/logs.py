"""Log output: readable text by default, or one JSON object per line (BACKSTRIDE_LOG_FORMAT=json).

What is logged is decided where it is logged: ids, statuses and reasons, never tokens or descriptions.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Gunicorn's access log, paths only (query strings carry verify tokens and OAuth codes).
ACCESS_LOG_TEXT = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
ACCESS_LOG_JSON = (
    '{"time": "%(t)s", "logger": "access", "remote": "%(h)s", "method": "%(m)s", "path": "%(U)s", '
    '"status": %(s)s, "bytes": "%(b)s", "ms": %(M)s}'
)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


_HANDLER_NAME = "backstride"


def configure_logging(log_format: str = "text", level: int = logging.INFO) -> None:
    """Our one stderr handler on the root logger, replaced on a second call; other handlers are kept."""
    handler = logging.StreamHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Alembic narrates every start ("Context impl ..."); only its warnings matter to an operator.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def access_log_format(log_format: str) -> str:
    return ACCESS_LOG_JSON if log_format == "json" else ACCESS_LOG_TEXT


# The access log's fields that come from the request: a client chooses them.
_CLIENT_ATOMS = ("h", "m", "U", "r", "q", "f", "a")


def access_logger_class(webhook_secret: str) -> type:
    """Gunicorn's logger, with every field a client chooses escaped (a "%0a" in a path would otherwise write
    a forged line, and break the JSON log's one object per line) and the webhook's secret path segment
    replaced by "<secret>"."""
    from gunicorn.glogging import Logger

    secret_segment = f"/{webhook_secret}" if webhook_secret else None

    class AccessLogger(Logger):
        def atoms(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
            atoms = super().atoms(resp, req, environ, request_time)
            for key in _CLIENT_ATOMS:
                value = str(atoms.get(key, "-"))
                if secret_segment:
                    value = value.replace(secret_segment, "/<secret>")
                atoms[key] = json.dumps(value, ensure_ascii=False)[1:-1]
            return atoms

    return AccessLogger
