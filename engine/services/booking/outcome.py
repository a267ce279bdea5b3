"""What one attempt to book (or to move a booking) came to, and the sentences
that explain a refusal.

Every front end renders the same :class:`BookingOutcome`: the bookings,
link and reschedule routes map its :class:`Result` to a status (201, 202,
502, 409, 422, 503), ``calpool book`` to a line and an exit code, and the
customer page to a message, all with the sentences of :data:`REASONS`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from engine.core.model import Booking, BookingStatus
from engine.core.slots import SlotRejection
from engine.services.booking.errors import (
    BookingError,
    InvalidBooking,
    ProviderUnavailable,
    SlotUnavailable,
)
from engine.store import StatusChange

REASONS: Mapping[SlotRejection, str] = {
    SlotRejection.PAST: "the start is in the past",
    SlotRejection.MIN_NOTICE: "the start is sooner than the event type's minimum notice",
    SlotRejection.HORIZON: "the start is beyond the event type's booking horizon",
    SlotRejection.OUTSIDE_HOURS: "the start is outside working hours",
    SlotRejection.DAILY_LIMIT: "the owner's daily limit of these bookings is reached that day",
    SlotRejection.OWNER_BUSY: "the owner is busy then",
    SlotRejection.PERSON_BUSY: "a person who must attend is busy then",
    SlotRejection.NO_ROOM: "no room of a pool is free then",
    SlotRejection.OFF_GRID: "the start is not on the slot grid",
}
"""One sentence per reason a start cannot be booked, for people to read."""


class Result(enum.StrEnum):
    """How an attempt ended; the first three leave a booking, the rest none."""

    CONFIRMED = "confirmed"  # every provider write is done
    PENDING = "pending"  # reserved; the outbox goes on writing
    FAILED = "failed"  # reserved, then a provider refused; what was written is removed
    REFUSED = "refused"  # the slot cannot be booked: ``reason`` says why
    INVALID = "invalid"  # the request is malformed: ``field`` names what
    UNAVAILABLE = "unavailable"  # a provider could not be asked live; try again later

    @property
    def booked(self) -> bool:
        return self in (Result.CONFIRMED, Result.PENDING, Result.FAILED)


@dataclass(frozen=True, slots=True)
class BookingOutcome:
    """One attempt's end: the booking and its history where one was made,
    else the refusal with its ``reason`` (a slot rejection) or ``field``
    (the malformed input), and ``detail``, a sentence for people."""

    result: Result
    detail: str
    booking: Booking | None = None
    history: tuple[StatusChange, ...] = ()
    reason: SlotRejection | None = None
    field: str | None = None

    @classmethod
    def of_booking(cls, booking: Booking, history: Sequence[StatusChange]) -> BookingOutcome:
        """The outcome of a booking as it stands (pending, confirmed or
        failed; a cancelled one reads as failed, which only a cancel that
        raced the attempt can cause)."""
        history = tuple(history)
        if booking.status is BookingStatus.CONFIRMED:
            return cls(Result.CONFIRMED, f"booking {booking.id} is confirmed", booking, history)
        if booking.status is BookingStatus.PENDING:
            return cls(Result.PENDING, f"booking {booking.id} is reserved; its events are not "
                                       "all written yet", booking, history)
        return cls(Result.FAILED, f"booking {booking.id} failed: {_cause(history)}", booking,
                   history)

    @classmethod
    def refusal(cls, error: BookingError) -> BookingOutcome:
        """The outcome of an attempt the rules refused before anything was
        reserved.  An error that is no refusal (an unknown booking, an
        unknown event type) is the caller's to handle and raised again."""
        if isinstance(error, SlotUnavailable):
            return cls(Result.REFUSED, REASONS[error.reason], reason=error.reason)
        if isinstance(error, InvalidBooking):
            return cls(Result.INVALID, error.detail, field=error.field)
        if isinstance(error, ProviderUnavailable):
            return cls(Result.UNAVAILABLE, str(error))
        raise error

    @property
    def failure_cause(self) -> str:
        """Why a failed booking failed (the last history entry)."""
        return _cause(self.history)


def _cause(history: Sequence[StatusChange]) -> str:
    if history and history[-1].detail:
        return history[-1].detail
    return "a provider write failed"
