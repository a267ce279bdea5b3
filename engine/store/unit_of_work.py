"""``Store`` (one per process and database) and its ``UnitOfWork``.

::

    store = Store.open("sqlite:////var/lib/calpool/calpool.db")
    with store.unit_of_work() as uow:
        uow.bookings.reserve(booking)
        uow.outbox.enqueue("write-events", {...}, due_at=now, now=now, booking_id=booking.id)
        uow.commit()            # both or neither

A unit of work is one database connection and one transaction at a time:
leaving the ``with`` block without ``commit()`` rolls back, and so does an
exception.  After ``commit()`` the next statement starts a new transaction.
On SQLite a unit of work takes the write lock at its first statement
(``BEGIN IMMEDIATE``); use ``store.reader()`` for read-only work, which
never waits for writers.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL

from engine.store.bookings import BookingRepository
from engine.store.calendars import CalendarRepository
from engine.store.changes import ChangeFeed
from engine.store.channels import ChannelRepository
from engine.store.database import READ_ONLY_OPTION, create_store_engine
from engine.store.deliveries import DeliveryRepository
from engine.store.emails import EmailRepository
from engine.store.errors import StoreError
from engine.store.events import EventRepository
from engine.store.idempotency import IdempotencyRepository
from engine.store.leases import LeaseRepository
from engine.store.links import LinkRepository
from engine.store.manage import ManageTokenRepository
from engine.store.migrate import check_current
from engine.store.outbox import OutboxRepository
from engine.store.processes import ProcessRepository
from engine.store.sync_requests import SyncRequestRepository
from engine.store.webhooks import WebhookRepository


class Store:
    """The database of one calpool installation."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @classmethod
    def open(cls, url: str | URL, *, check_schema: bool = True) -> Store:
        """Connect to ``url``; raise :class:`SchemaNotCurrent` (naming
        ``calpool db upgrade``) unless the schema is exactly this code's."""
        engine = create_store_engine(url)
        if check_schema:
            try:
                check_current(engine)
            except BaseException:
                engine.dispose()
                raise
        return cls(engine)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    def change_feed(self, on_change: Callable[[], object]) -> ChangeFeed | None:
        """A feed (not started) that calls ``on_change`` whenever another
        process commits a change of a calendar's version or sync state;
        ``None`` on SQLite (:mod:`engine.store.changes`)."""
        if self.dialect != "postgresql":
            return None
        return ChangeFeed(self._engine, on_change)

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self._engine, read_only=False)

    def reader(self) -> UnitOfWork:
        """A unit of work for reading: one consistent snapshot per transaction;
        on SQLite it does not take the write lock.  (Writing through it is
        not serialized: do not.)"""
        return UnitOfWork(self._engine, read_only=True)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class UnitOfWork:
    """One transaction at a time over one connection, with the repositories."""

    calendars: CalendarRepository
    events: EventRepository
    leases: LeaseRepository
    bookings: BookingRepository
    outbox: OutboxRepository
    processes: ProcessRepository
    links: LinkRepository
    manage_tokens: ManageTokenRepository
    deliveries: DeliveryRepository
    idempotency: IdempotencyRepository
    channels: ChannelRepository
    sync_requests: SyncRequestRepository
    webhooks: WebhookRepository
    emails: EmailRepository

    def __init__(self, engine: Engine, *, read_only: bool) -> None:
        self._engine = engine
        self._read_only = read_only
        self._connection: Connection | None = None

    def __enter__(self) -> UnitOfWork:
        if self._connection is not None:
            raise StoreError("a unit of work cannot be entered twice")
        connection = self._engine.connect()
        if self._read_only:
            connection = connection.execution_options(**{READ_ONLY_OPTION: True})
            if connection.dialect.name == "postgresql":
                # One snapshot for every query of the reader, as SQLite's WAL
                # read transaction gives: busy intervals, bookings and
                # versions read together agree with each other.
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
        self._connection = connection
        self.calendars = CalendarRepository(connection)
        self.events = EventRepository(connection, self.calendars)
        self.leases = LeaseRepository(connection)
        self.webhooks = WebhookRepository(connection)
        self.emails = EmailRepository(connection)
        self.bookings = BookingRepository(connection, self.calendars, self.webhooks,
                                          self.emails)
        self.outbox = OutboxRepository(connection)
        self.processes = ProcessRepository(connection)
        self.links = LinkRepository(connection)
        self.manage_tokens = ManageTokenRepository(connection)
        self.deliveries = DeliveryRepository(connection)
        self.idempotency = IdempotencyRepository(connection)
        self.channels = ChannelRepository(connection, self.calendars)
        self.sync_requests = SyncRequestRepository(connection, self.calendars)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        connection = self._require()
        try:
            if connection.in_transaction():
                connection.rollback()
        finally:
            connection.close()
            self._connection = None

    def commit(self) -> None:
        """Make everything since the last commit durable and visible, at once."""
        self._require().commit()

    def rollback(self) -> None:
        """Discard everything since the last commit."""
        self._require().rollback()

    def _require(self) -> Connection:
        if self._connection is None:
            raise StoreError("use the unit of work inside a `with` block")
        return self._connection
