"""A Core statement compiled once and run straight on the driver's connection.

Only for the webhook's statements, which run for every delivery while the host waits: there SQLAlchemy's
execution machinery (execution context, result object, events) costs several times what the database
takes to run them. The SQL, and each parameter's conversion to what the driver stores (a dict to JSON text, a
datetime to SQLite's text), still come from the Core statement and its columns' types, so the table is
described in one place."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement


class PreparedStatement:
    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self._dbapi = dialect.loaded_dbapi
        # (name, fixed value or None when the caller must give one, conversion or None) for each bound
        # parameter, in the driver's order for a positional paramstyle (SQLite's "?"), else by name
        # (psycopg's "%(name)s"). The conversion is the one the column type has on this dialect.
        self._positional = compiled.positiontup is not None
        names = compiled.positiontup if self._positional else list(compiled.binds)
        self._binds = []
        for name in names:
            bind = compiled.binds[name]
            fixed = None if bind.required else bind.value
            self._binds.append((name, fixed, bind.type.dialect_impl(dialect).bind_processor(dialect)))

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        """The driver's parameters for `values`, by bound parameter name; KeyError if one is missing."""
        converted = []
        for name, fixed, convert in self._binds:
            value = values[name] if fixed is None else fixed
            converted.append(convert(value) if convert is not None else value)
        if self._positional:
            return converted
        return {name: value for (name, _, _), value in zip(self._binds, converted, strict=True)}

    def execute(self, cursor: Any, values: Mapping[str, Any]) -> Any:
        """Runs on a DBAPI cursor; a driver error is raised as SQLAlchemy would raise it (IntegrityError,
        OperationalError...), without the parameters in its text."""
        try:
            cursor.execute(self.sql, self.parameters(values))
        except self._dbapi.Error as exc:
            raise wrap_driver_error(self.sql, exc, self._dbapi) from exc
        return cursor


def wrap_driver_error(sql: str, exc: Exception, dbapi: Any, broken: bool = False) -> DBAPIError:
    """`broken`: the error found the connection broken (SQLAlchemy's connection_invalidated)."""
    return DBAPIError.instance(
        sql, None, exc, dbapi.Error, hide_parameters=True, connection_invalidated=broken
    )
