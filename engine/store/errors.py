"""What the store raises.

::

    StoreError                 the store cannot do what was asked
    ├── SchemaNotCurrent       the database is unmigrated, behind, or ahead of this calpool
    ├── ReservationConflict    an active reservation already holds the calendar then
    ├── BookingExists          a booking with this id is already stored
    ├── UnknownBooking         no booking with this id
    └── DuplicateInstance      a sync batch names one instance of an object twice
"""

from __future__ import annotations


class StoreError(Exception):
    """The store cannot do what was asked."""


class SchemaNotCurrent(StoreError):
    """The database schema is not the one this calpool was built for.

    ``current`` is the database's revision (``None`` for an unmigrated
    database), ``expected`` the revision this code needs.
    """

    def __init__(self, message: str, *, current: str | None, expected: str) -> None:
        super().__init__(message)
        self.current = current
        self.expected = expected


class ReservationConflict(StoreError):
    """Booking ``booking_id`` cannot reserve ``calendar_key``: the active
    booking ``held_by`` (when known) overlaps it."""

    def __init__(self, calendar_key: str, booking_id: str, held_by: str | None = None) -> None:
        holder = f" (held by booking {held_by})" if held_by else ""
        super().__init__(
            f"booking {booking_id} overlaps an active reservation of {calendar_key}{holder}"
        )
        self.calendar_key = calendar_key
        self.booking_id = booking_id
        self.held_by = held_by


class BookingExists(StoreError):
    def __init__(self, booking_id: str) -> None:
        super().__init__(f"booking {booking_id} is already stored")
        self.booking_id = booking_id


class UnknownBooking(StoreError):
    def __init__(self, booking_id: str) -> None:
        super().__init__(f"no booking {booking_id}")
        self.booking_id = booking_id


class DuplicateInstance(StoreError, ValueError):
    """A sync batch lists two instances of ``source`` with the same
    ``instance`` key.  Each instance of a series is identified by its own
    original start (RFC 5545 §3.8.4.4), so a repeated key is a connector bug
    (a THISANDFUTURE override once keyed every later instance by its own
    RECURRENCE-ID); keeping either row would silently lose busy time."""

    def __init__(self, source: str, instance: str) -> None:
        super().__init__(f"instance {instance!r} of source {source!r} is listed twice")
        self.source = source
        self.instance = instance
