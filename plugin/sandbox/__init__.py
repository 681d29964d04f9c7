"""A Strava-compatible host for the demo, local development, marketplace reviewers and end-to-end tests."""

from plugin.sandbox.app import create_sandbox
from plugin.sandbox.state import SandboxConfig

__all__ = ["create_sandbox", "SandboxConfig"]
