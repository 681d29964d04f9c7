"""Log output: text by default, one JSON object per line on request."""

from __future__ import annotations

import json
import logging

import pytest

from plugin.config import ConfigError, load_settings
from plugin.logs import ACCESS_LOG_JSON, JsonFormatter, access_log_format


def record(message: str, *args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("plugin.pipeline", logging.INFO, __file__, 1, message, args, exc_info)


def test_json_lines_carry_time_level_logger_and_message():
    line = JsonFormatter().format(record("event %s %s", 12, "done"))
    entry = json.loads(line)
    assert entry["message"] == "event 12 done"
    assert entry["level"] == "info" and entry["logger"] == "plugin.pipeline"
    assert entry["time"].endswith("+00:00")
    assert "\n" not in line


def test_json_lines_keep_exceptions_on_one_line():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        line = JsonFormatter().format(record("failed", exc_info=sys.exc_info()))
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exception"]


def test_access_log_in_json_is_a_json_object_once_filled_in():
    filled = ACCESS_LOG_JSON % {
        "t": "[21/Nov/2026:10:00:00 +0000]",
        "h": "127.0.0.1",
        "m": "POST",
        "U": "/webhooks/strava",
        "s": 200,
        "b": "2",
        "M": 7,
    }
    assert json.loads(filled)["path"] == "/webhooks/strava"
    assert access_log_format("text") != ACCESS_LOG_JSON


def test_log_format_setting(tmp_path):
    assert load_settings({"BACKSTRIDE_INSTANCE_DIR": str(tmp_path)}).log_format == "text"
    settings = load_settings({"BACKSTRIDE_INSTANCE_DIR": str(tmp_path), "BACKSTRIDE_LOG_FORMAT": "JSON"})
    assert settings.log_format == "json"
    with pytest.raises(ConfigError, match="BACKSTRIDE_LOG_FORMAT"):
        load_settings({"BACKSTRIDE_INSTANCE_DIR": str(tmp_path), "BACKSTRIDE_LOG_FORMAT": "xml"})


def access_line(log_format: str, path: str, secret: str = "") -> str:
    import datetime

    from gunicorn.config import Config

    from plugin.logs import access_log_format, access_logger_class

    cfg = Config()
    cfg.set("access_log_format", access_log_format(log_format))
    logger = access_logger_class(secret)(cfg)

    class Response:
        status, sent, headers = "200 OK", 17, []

    environ = {
        "REMOTE_ADDR": "127.0.0.1",
        "REQUEST_METHOD": "POST",
        "RAW_URI": path,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": path,
        "QUERY_STRING": "",
    }
    atoms = logger.atoms(Response(), [], environ, datetime.timedelta(microseconds=1500))
    return access_log_format(log_format) % atoms


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_newline_in_a_path_cannot_forge_an_access_log_line(log_format):
    """Issue 20: %0a in a URL wrote a forged line into the access log."""
    line = access_line(log_format, '/x\n{"logger": "forged"}\r')
    assert "\n" not in line and "\r" not in line
    if log_format == "json":
        assert json.loads(line)["path"] == '/x\n{"logger": "forged"}\r'


def test_the_webhook_secret_never_reaches_the_access_log():
    line = access_line("json", "/webhooks/strava/s3cret-segment", secret="s3cret-segment")
    assert "s3cret-segment" not in line
    assert json.loads(line)["path"] == "/webhooks/strava/<secret>"
