"""Strava: the only package that knows Strava's URLs and JSON."""

from plugin.hosts.strava.client import StravaClient

__all__ = ["StravaClient"]
