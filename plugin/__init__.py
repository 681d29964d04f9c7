"""Backstride: finds backward running and walking in workouts and writes an honest note into the activity.

The package itself loads nothing: the web app's factory is plugin.web.create_app, and analysis/ and files/
import no Flask and no database."""

__version__ = "0.1.0"
