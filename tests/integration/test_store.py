"""The store under concurrent processes, as a fleet starting together meets it, and its migrations."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from cryptography.fernet import Fernet
from sqlalchemy import inspect, text

from plugin.store import Store, TokenSet
from plugin.store.migrate import BASELINE, alembic_config, current_revision
from plugin.store.models import Base


@pytest.fixture
def database_url(backend, tmp_path) -> str:
    """An empty database: a fresh SQLite file, or an emptied PostgreSQL schema."""
    return backend.get("BACKSTRIDE_DATABASE_URL") or f"sqlite:///{tmp_path}/store.db"


def store(url: str) -> Store:
    return Store(url, Fernet.generate_key().decode())


def head_revision() -> str:
    with store("sqlite://").engine.connect() as connection:
        return ScriptDirectory.from_config(alembic_config(connection)).get_current_head()


def test_processes_creating_the_schema_together_all_succeed(database_url):
    key = Fernet.generate_key().decode()
    code = f"from plugin.store import Store; Store({database_url!r}, {key!r}).create_schema()"
    processes = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(8)
    ]
    failures = [p.stderr.read() for p in processes if p.wait() != 0]
    assert failures == []
    with store(database_url).engine.connect() as connection:
        assert current_revision(connection) == head_revision()


def test_the_migrations_build_exactly_the_models(database_url):
    migrated = store(database_url)
    migrated.create_schema()
    with migrated.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_a_database_from_before_migrations_is_adopted_and_keeps_its_rows(database_url):
    old = store(database_url)
    # A database from before migrations: the baseline schema, made without Alembic's version table.
    with old.engine.connect() as connection:
        command.upgrade(alembic_config(connection), BASELINE)
        connection.execute(text("DROP TABLE alembic_version"))
        connection.commit()
    old.save_athlete(7, TokenSet("a", "r", 0), frozenset({"activity:write"}), None, None)
    with old.engine.connect() as connection:
        assert current_revision(connection) is None
    old.create_schema()
    with old.engine.connect() as connection:
        assert current_revision(connection) == head_revision()
    assert old.is_connected(7)


def test_upgrading_an_up_to_date_database_changes_nothing(database_url):
    migrated = store(database_url)
    migrated.create_schema()
    migrated.save_athlete(8, TokenSet("a", "r", 0), frozenset(), None, None)
    migrated.create_schema()
    assert migrated.is_connected(8)
    with migrated.engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    assert {"athletes", "inbox_events", "activity_records", "app_state", "rate_limit_state"} <= tables
