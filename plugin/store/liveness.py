"""Checking a pooled server connection before use only when it may have gone stale.

SQLAlchemy's pool_pre_ping sends a statement on every checkout: one more round trip to the server for every
webhook delivery and for every step of a job, nearly always on a connection used a moment before. Here a
connection is pinged at checkout only when it has been idle for IDLE_BEFORE_PING_S (a server's or a proxy's
idle timeout, a restart while the process was quiet), or when a broken connection has been seen since it was
last used (a restart ends every connection at once). A connection that breaks between two uses close
together fails at its first statement instead: SQLAlchemy then renews the pool and the request or job fails
as in an outage (a 503, a job put off), and the webhook's write tries once more (Store.receive_events)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError

# Idle longer than this, a connection is pinged before use. Far below any server's idle timeout; long enough
# that under load (a burst of deliveries, a worker with a backlog) no connection waits that long.
IDLE_BEFORE_PING_S = 2.0

_IDLE_SINCE = "backstride_idle_since"  # in the pool's per-connection info, which is emptied on reconnect


class StaleConnectionCheck:
    """Installed on a server's engine instead of pool_pre_ping."""

    def __init__(self, engine: Engine) -> None:
        self._dialect = engine.dialect
        self._broken_seen_at = float("-inf")
        event.listen(engine, "checkin", self._checked_in)
        event.listen(engine, "checkout", self._checked_out)

    def broken_connection_seen(self) -> None:
        """Every connection used before now is pinged at its next checkout. For the driver connections the
        webhook uses (SQLAlchemy renews the pool itself when one of its statements finds a connection
        broken)."""
        self._broken_seen_at = time.monotonic()

    def _checked_in(self, dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None:  # None: invalidated, nothing to keep
            record.info[_IDLE_SINCE] = time.monotonic()

    def _checked_out(self, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None:  # opened for this checkout
            return
        if time.monotonic() - idle_since < IDLE_BEFORE_PING_S and idle_since > self._broken_seen_at:
            return
        try:
            alive = self._dialect.do_ping(dbapi_connection)
        except self._dialect.loaded_dbapi.Error as exc:
            if not self._dialect.is_disconnect(exc, dbapi_connection, None):
                raise
            alive = False
        if not alive:
            # The others may be broken too (a restart). The pool reconnects this one and tries again.
            self.broken_connection_seen()
            raise DisconnectionError("pooled connection found closed")
