"""The few statements that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

# SQLSTATE of PostgreSQL's exclusion_violation.
EXCLUSION_VIOLATION = "23P01"


def is_postgresql(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


def insert_ignoring_duplicates(
    connection: Connection, table: Table, conflict_columns: Sequence[str]
) -> Insert:
    """``INSERT`` that silently skips rows whose ``conflict_columns`` exist."""
    if is_postgresql(connection):
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=conflict_columns)


def insert_many(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` with one executemany (SQLAlchemy batches it per dialect)."""
    if rows:
        connection.execute(table.insert(), list(rows))


def is_exclusion_violation(error: DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) == EXCLUSION_VIOLATION


# The channel of "calendar versions or sync states moved" (PostgreSQL).
CHANGES_CHANNEL = "calpool_changes"


def notify_change(connection: Connection) -> None:
    """Tell every listening process, at this transaction's commit, that a
    calendar's version or sync state moved (PostgreSQL's NOTIFY; several in
    one transaction are delivered once).  SQLite has no such thing: there
    the per-query version check is all."""
    if is_postgresql(connection):
        connection.exec_driver_sql(f"NOTIFY {CHANGES_CHANNEL}")
