"""Building a SQLAlchemy ``Engine`` for a calpool database URL.

SQLite (``sqlite:///abs/path.db``): WAL so readers never wait for the writer,
a busy timeout so writers queue instead of failing, foreign keys on, and
every write transaction opened with ``BEGIN IMMEDIATE``: the write lock is
taken at the start, so a check followed by an insert (the reservation
overlap check) cannot interleave with another writer.  Python's ``sqlite3``
issues its own deferred ``BEGIN``; the hooks below switch that off and emit
the ``BEGIN`` themselves, the recipe SQLAlchemy documents for pysqlite.
Writers of one engine also queue on a lock in the process before their
``BEGIN IMMEDIATE``: SQLite's busy handler polls a locked database with
sleeps growing to 100 ms, so under many writers the lock would sit free
for most of each hand-over; the lock in the process hands it over as soon
as the holder commits or rolls back.  The busy timeout still queues
writers of other processes.

PostgreSQL (``postgresql+psycopg://…``): sessions in UTC; correctness under
concurrency comes from row locks and the exclusion constraint, not from
serializing.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import ConnectionPoolEntry

from engine.store.errors import StoreError

BUSY_TIMEOUT_MS = 30_000
READ_ONLY_OPTION = "calpool_read_only"


def redacted(url: str | URL) -> str:
    """The URL with its password hidden, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def unreachable(url: str | URL, error: DBAPIError) -> StoreError:
    """One sentence for a database that cannot be opened or answered."""
    reason = str(error.orig).strip().splitlines()[0] if str(error.orig).strip() else "no answer"
    return StoreError(f"cannot use the database {redacted(url)}: {reason}")


def create_store_engine(url: str | URL) -> Engine:
    """An engine for ``url`` configured as the module docstring says.

    Raises :class:`StoreError` for a URL calpool does not support.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        elif parsed.drivername != "postgresql+psycopg":
            raise StoreError(
                f"unsupported PostgreSQL driver in {redacted(parsed)}: use postgresql+psycopg://…"
            )
        return create_engine(
            parsed,
            connect_args={"options": "-c timezone=UTC"},
            pool_pre_ping=True,
        )
    raise StoreError(
        f"unsupported database URL {redacted(parsed)}: use sqlite:///PATH or postgresql+psycopg://…"
    )


class _QueuedWriterConnection(sqlite3.Connection):
    """A SQLite connection whose write transactions hold ``write_lock``
    (one per engine, set on a subclass) from before their ``BEGIN
    IMMEDIATE`` until they end, whichever way they end."""

    write_lock: threading.Lock
    _holding = False

    def queue_for_write(self) -> None:
        # Past the busy timeout the lock is left to SQLite, which then
        # waits its own busy timeout and fails as it would without this.
        self._holding = self.write_lock.acquire(timeout=BUSY_TIMEOUT_MS / 1000)

    def leave_write_queue(self) -> None:
        if self._holding:
            self._holding = False
            self.write_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.leave_write_queue()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.leave_write_queue()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.leave_write_queue()


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        # Every pooled connection would see its own empty database.
        raise StoreError("an in-memory SQLite database cannot be shared; give a file path")
    connection_class = type("QueuedWriterConnection", (_QueuedWriterConnection,),
                            {"write_lock": threading.Lock()})
    engine = create_engine(
        url,
        connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False,
                      "factory": connection_class},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        # Hand transaction control to the "begin" hook below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            # FULL: a commit is on disk when it returns (a confirmed booking is durable).
            cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
            return
        dbapi_connection = connection.connection.dbapi_connection
        dbapi_connection.queue_for_write()
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            dbapi_connection.leave_write_queue()
            raise

    return engine
