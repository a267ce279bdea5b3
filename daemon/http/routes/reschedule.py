"""``POST /v1/bookings/{id}/reschedule`` (scope ``book``): move a booking.

The new start is checked like a new booking's (409 ``slot-unavailable``
with its ``reason``), the booking's own time does not block it, rooms are
kept where free and reassigned within their pools where not, and the
provider events move in place (``engine.services.reschedule``).  The
answer comes after the moved events were written once (as a cancel's
does); what a provider refused then goes on in the outbox.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from daemon.documents import booking_document
from daemon.http.auth import Client, require_scope
from daemon.http.booking_schemas import (
    BOOKING_NOT_FOUND,
    SLOT_UNAVAILABLE,
    BookingDocument,
    StartText,
    body_start,
    refusal,
)
from daemon.http.context import CalpoolApp
from daemon.http.problems import ProblemType, problem, problem_responses, register_problem_type
from engine.services.booking import BookingNotFound
from engine.services.reschedule import BookingNotReschedulable

NOT_RESCHEDULABLE = register_problem_type(ProblemType(
    "/problems/booking-not-reschedulable", 409, "Booking not reschedulable",
    "the booking is cancelled or failed (or its event type is no longer configured); only "
    "pending and confirmed bookings can be moved"))

router = APIRouter(prefix="/v1/bookings", tags=["bookings"])

BookClient = Annotated[Client, Depends(require_scope("book"))]


class RescheduleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: StartText = Field(
        description="ISO 8601 date-time of the new slot start; one without an offset is read "
                    "in the owner's zone")


@router.post(
    "/{booking_id}/reschedule",
    summary="Move a booking to another start: same rooms where free, the events moved in place",
    response_model=BookingDocument,
    response_model_by_alias=True,
    responses=problem_responses(
        "/problems/unauthorized", "/problems/forbidden", BOOKING_NOT_FOUND.uri,
        NOT_RESCHEDULABLE.uri, SLOT_UNAVAILABLE.uri, "/problems/validation",
        "/problems/database-unavailable"),
)
def reschedule_booking(app: CalpoolApp, _client: BookClient, booking_id: str,
                       body: RescheduleRequest) -> Any:
    """Moving a booking to the start it has answers it unchanged."""
    try:
        booking = app.bookings.get(booking_id)
    except BookingNotFound:
        raise problem(BOOKING_NOT_FOUND.uri, f"there is no booking {booking_id!r}",
                      booking_id=booking_id) from None
    owner = app.config.calendars.get(booking.owner)
    zone = owner.timezone if owner is not None else app.config.daemon.timezone
    start = body_start(body.start, zone)
    try:
        outcome = app.reschedule.attempt(booking_id, start, app.clock())
    except BookingNotFound:
        raise problem(BOOKING_NOT_FOUND.uri, f"there is no booking {booking_id!r}",
                      booking_id=booking_id) from None
    except BookingNotReschedulable as exc:
        raise problem(NOT_RESCHEDULABLE.uri, exc.detail, booking_id=booking_id) from None
    if not outcome.result.booked:
        raise refusal(outcome, "the booking cannot move there")
    assert outcome.booking is not None
    return booking_document(outcome.booking, list(outcome.history), zone,
                            deliveries=app.bookings.deliveries(outcome.booking.id))
