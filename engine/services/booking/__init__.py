"""Booking: the service (:mod:`.service`), why a request is refused
(:mod:`.errors`), what one attempt came to (:mod:`.outcome`) and the rules
that links and reschedule share with it (:mod:`.rules`)."""

from engine.services.booking.errors import (
    BookingError,
    BookingNotFound,
    InvalidBooking,
    ProviderUnavailable,
    SlotUnavailable,
    UnknownEventType,
)
from engine.services.booking.outcome import REASONS, BookingOutcome, Result
from engine.services.booking.rules import (
    check_attendee,
    check_daily_limit,
    check_slot,
    hold_rooms,
    new_booking_id,
)
from engine.services.booking.service import BookingService, OnReserved

__all__ = [
    "REASONS",
    "BookingError",
    "BookingNotFound",
    "BookingOutcome",
    "BookingService",
    "InvalidBooking",
    "OnReserved",
    "ProviderUnavailable",
    "Result",
    "SlotUnavailable",
    "UnknownEventType",
    "check_attendee",
    "check_daily_limit",
    "check_slot",
    "hold_rooms",
    "new_booking_id",
]
