"""Why a booking request cannot be served: one exception per reason, shared
by booking, links and reschedule (``BookingError`` is their root)."""

from __future__ import annotations

from engine.core.slots import SlotRejection


class BookingError(Exception):
    """A booking request cannot be served; the subclass says why."""


class UnknownEventType(BookingError):
    def __init__(self, key: str) -> None:
        super().__init__(f"unknown event type {key!r}")
        self.key = key


class InvalidBooking(BookingError):
    """The request is malformed (HTTP 422): ``field`` names what is wrong."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


class SlotUnavailable(BookingError):
    """The start cannot be booked (HTTP 409): ``reason`` is one of
    interface.md's reasons (``past`` … ``daily_limit``)."""

    def __init__(self, reason: SlotRejection, detail: str = "") -> None:
        super().__init__(detail or f"the slot is not available: {reason.value}")
        self.reason = reason


class ProviderUnavailable(BookingError):
    """The live re-check could not ask a provider (``detail`` says which)."""


class BookingNotFound(BookingError):
    def __init__(self, booking_id: str) -> None:
        super().__init__(f"no booking {booking_id!r}")
        self.booking_id = booking_id


