"""Schema migrations with Alembic, run by every process at start under a lock, so that many starting at once
(web instances, workers) upgrade the database exactly once."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, inspect, text

MIGRATIONS = Path(__file__).with_name("migrations")
BASELINE = "0001"  # the schema databases had before migrations existed (created with create_all)
# Any fixed number: PostgreSQL's advisory lock that serialises the upgrade across the fleet.
ADVISORY_LOCK_KEY = 0x6261636B  # "back"


def alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _upgrade_lock(engine: Engine) -> Iterator[Connection]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            connection.commit()
            try:
                yield connection
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
                connection.commit()
        return
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        # SQLite: a lock file beside the database, held while one process upgrades.
        with open(f"{database}.migrate-lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                with engine.connect() as connection:
                    yield connection
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return
    with engine.connect() as connection:
        yield connection


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema; a database from before migrations is adopted first."""
    with _upgrade_lock(engine) as connection:
        config = alembic_config(connection)
        tables = set(inspect(connection).get_table_names())
        if current_revision(connection) is None and "athletes" in tables:
            command.stamp(config, BASELINE)
        command.upgrade(config, "head")
        connection.commit()
