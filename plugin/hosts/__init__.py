"""Hosts (workout platforms). Each is a package implementing hosts.base.Host; Strava is the first."""
