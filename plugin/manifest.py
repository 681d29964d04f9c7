"""manifest.json, the marketplace listing: checked against its JSON Schema and against the app itself.

The schema says what a listing must hold; the app check says the listing tells the truth: every declared
path is a real route, the scopes are those /connect requests, the version is the package's, and the figures
(retention, call budget, note markers) are the ones the code uses.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from jsonschema import Draft202012Validator, FormatChecker
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

SCHEMA_FILE = Path(__file__).with_name("manifest.schema.json")
# In a checkout this is a link to the top-level manifest.json; a built wheel carries a copy.
PACKAGED_MANIFEST = Path(__file__).with_name("manifest.json")


class ManifestError(Exception):
    """The manifest cannot be read at all (missing, unreadable, not JSON)."""


@dataclass(frozen=True)
class CheckResult:
    errors: list[str]
    paths_checked: int


def load_manifest(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(f"cannot read it: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ManifestError(f"not UTF-8 text: {exc.reason}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from exc
    if not isinstance(data, dict):
        raise ManifestError("not a JSON object")
    return data


def schema_errors(manifest: dict[str, Any]) -> list[str]:
    """Every schema violation, as "where: what", in document order."""
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    errors = sorted(validator.iter_errors(manifest), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{_where(e.absolute_path)}: {e.message}" for e in errors]


def _where(path: Any) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in path]
    return "manifest" + "".join(parts)


def _throwaway_app(instance_dir: str) -> Flask:
    from plugin.web import create_app

    # An app built only for its routes: a scratch instance directory, an in-memory database, no queue.
    return create_app(
        {
            "BACKSTRIDE_INSTANCE_DIR": instance_dir,
            "BACKSTRIDE_DATABASE_URL": "sqlite://",
            "BACKSTRIDE_QUEUE_URL": "memory://",
        }
    )


def _route_error(app: Flask, path: str, method: str, where: str) -> str | None:
    adapter = app.url_map.bind("backstride.invalid")
    try:
        endpoint, args = adapter.match(path, method=method)
    except MethodNotAllowed:
        return f"{where}: {method} {path} is a route, but not for {method}"
    except (NotFound, RequestRedirect):
        return f"{where}: {path} is not a route of the app"
    if endpoint == "static":
        file = Path(app.static_folder or "") / args["filename"]
        if not file.is_file():
            return f"{where}: {path} names a static file that does not exist"
    return None


def _png_size(file: Path) -> tuple[int, int] | None:
    header = file.read_bytes()[:24]
    if len(header) < 24 or header[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def app_errors(manifest: dict[str, Any], app: Flask) -> CheckResult:
    """Where the manifest and the app disagree. Assumes the manifest passed the schema."""
    from plugin import __version__
    from plugin.analysis.notes import NOTE_END, NOTE_START
    from plugin.config import PRODUCTION_SECRETS
    from plugin.hosts.strava.oauth import REQUESTED_SCOPES, REQUIRED_SCOPES
    from plugin.hosts.strava.schemas import EVENT_ASPECT_TYPES, EVENT_OBJECT_TYPES
    from plugin.pipeline import (
        CALLS_PER_ANNOTATED_ACTIVITY,
        CALLS_PER_DUPLICATE_EVENT,
        CALLS_PER_IGNORED_ACTIVITY,
        MAX_ATTEMPTS,
    )
    from plugin.store import RETENTION

    errors: list[str] = []

    def differs(where: str, declared: object, actual: object) -> None:
        if declared != actual:
            errors.append(f"{where}: declares {declared!r}, the app has {actual!r}")

    differs("manifest.version", manifest["version"], __version__)
    try:
        installed = metadata.version("backstride")
    except metadata.PackageNotFoundError:
        installed = None
    if installed is not None:
        differs("manifest.version (installed package)", manifest["version"], installed)

    routes: list[tuple[str, str, str]] = [
        (manifest["oauth"]["redirect_path"], "GET", "manifest.oauth.redirect_path"),
        (manifest["webhooks"]["callback_path"], "GET", "manifest.webhooks.callback_path (validation)"),
        (manifest["webhooks"]["callback_path"], "POST", "manifest.webhooks.callback_path (events)"),
        (
            manifest["lifecycle"]["connect"]["path"],
            manifest["lifecycle"]["connect"]["method"],
            "manifest.lifecycle.connect",
        ),
        (
            manifest["lifecycle"]["disconnect"]["path"],
            manifest["lifecycle"]["disconnect"]["method"],
            "manifest.lifecycle.disconnect",
        ),
        (manifest["data_handling"]["export_path"], "GET", "manifest.data_handling.export_path"),
        (manifest["health_check_path"], "GET", "manifest.health_check_path"),
    ]
    routes += [(icon["src"], "GET", f"manifest.icons[{i}].src") for i, icon in enumerate(manifest["icons"])]
    base = manifest["base_url"].rstrip("/")
    for key in ("privacy_policy_url", "terms_url"):
        routes += _own_page(manifest[key], base, f"manifest.{key}")
    routes += _own_page(manifest["support"]["url"], base, "manifest.support.url")
    for path, method, where in routes:
        error = _route_error(app, path, method, where)
        if error:
            errors.append(error)

    for i, icon in enumerate(manifest["icons"]):
        file = Path(app.static_folder or "") / icon["src"].removeprefix("/static/")
        if file.is_file():
            size = _png_size(file)
            declared = tuple(int(n) for n in icon["sizes"].split("x"))
            if size != declared:
                errors.append(f"manifest.icons[{i}]: declares {icon['sizes']}, the PNG is {size}")

    scopes = manifest["oauth"]["scopes"]
    differs("manifest.oauth.scopes", sorted(s["scope"] for s in scopes), sorted(REQUESTED_SCOPES))
    differs(
        "manifest.oauth.scopes (required, optional: false)",
        sorted(s["scope"] for s in scopes if not s["optional"]),
        sorted(REQUIRED_SCOPES),
    )
    for key in ("client_id_env", "client_secret_env"):
        if manifest["oauth"][key] not in PRODUCTION_SECRETS:
            errors.append(f"manifest.oauth.{key}: {manifest['oauth'][key]} is not a variable the app reads")
    if manifest["webhooks"]["verify_token_env"] not in PRODUCTION_SECRETS:
        errors.append("manifest.webhooks.verify_token_env: not a variable the app reads")
    for i, event in enumerate(manifest["webhooks"]["events"]):
        if event["object_type"] not in EVENT_OBJECT_TYPES or event["aspect_type"] not in EVENT_ASPECT_TYPES:
            errors.append(f"manifest.webhooks.events[{i}]: the webhook does not accept this event")

    differs("manifest.annotation.marker", manifest["annotation"]["marker"], NOTE_START)
    differs("manifest.annotation.attribution", manifest["annotation"]["attribution"], NOTE_END)
    differs(
        "manifest.data_handling.retention_days", manifest["data_handling"]["retention_days"], RETENTION.days
    )
    limits = manifest["rate_limits"]
    differs(
        "manifest.rate_limits.calls_per_annotated_activity",
        limits["calls_per_annotated_activity"],
        CALLS_PER_ANNOTATED_ACTIVITY,
    )
    differs(
        "manifest.rate_limits.calls_per_ignored_activity",
        limits["calls_per_ignored_activity"],
        CALLS_PER_IGNORED_ACTIVITY,
    )
    differs(
        "manifest.rate_limits.calls_per_duplicate_event",
        limits["calls_per_duplicate_event"],
        CALLS_PER_DUPLICATE_EVENT,
    )
    differs("manifest.rate_limits.backoff.max_attempts", limits["backoff"]["max_attempts"], MAX_ATTEMPTS)

    # A secret's value must never be in a listing: compare with the secrets this environment holds.
    values = set(_strings(manifest))
    for name in PRODUCTION_SECRETS:
        secret = os.environ.get(name, "")
        if len(secret) >= 8 and secret in values:
            errors.append(f"manifest: contains the value of {name}; name the variable, never its value")
    return CheckResult(errors, len(routes))


def _own_page(url: str, base: str, where: str) -> list[tuple[str, str, str]]:
    """A URL on the app's own base_url must be one of its routes; others are the vendor's business."""
    if not url.startswith(base + "/") and url != base:
        return []
    return [(urlsplit(url).path or "/", "GET", where)]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def check_manifest(path: Path) -> CheckResult:
    """Schema first; the app check only for a manifest that has the shape the check relies on."""
    manifest = load_manifest(path)
    errors = schema_errors(manifest)
    if errors:
        return CheckResult(errors, 0)
    with tempfile.TemporaryDirectory(prefix="backstride-manifest-") as instance_dir:
        app = _throwaway_app(instance_dir)
        try:
            return app_errors(manifest, app)
        finally:
            app.extensions["backstride"].store.engine.dispose()
