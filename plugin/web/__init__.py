"""Flask blueprints: thin adapters that validate, store, enqueue and answer."""

from __future__ import annotations

from flask import current_app

from plugin.services import Services


def services() -> Services:
    return current_app.extensions["backstride"]
