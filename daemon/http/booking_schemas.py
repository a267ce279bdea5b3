"""The bookings routes' request and answer models and their problem types,
and the parts the link and reschedule routes share with them: the request
fields, reading a body's ``start``, and the problems of a refused booking.

The request body is validated here, not by FastAPI's body parameter: an
answer given under an ``Idempotency-Key`` is stored, and a malformed body's
422 is such an answer too, so the route must see every refusal itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from daemon.http.problems import Problem, ProblemType, invalid, problem, register_problem_type
from daemon.inputs import InputError, check_email, check_name, check_notes, parse_instant
from engine.services.booking import BookingOutcome, Result

SLOT_UNAVAILABLE = register_problem_type(ProblemType(
    "/problems/slot-unavailable", 409, "Slot unavailable",
    "the start cannot be booked; `reason` is one of past, min_notice, horizon, outside_hours, "
    "owner_busy, person_busy, no_room, daily_limit"))
PROVIDER_UNAVAILABLE = register_problem_type(ProblemType(
    "/problems/provider-unavailable", 503, "Provider unavailable",
    "the live re-check of the event type could not reach a calendar provider; nothing was "
    "booked, try again later"))
BOOKING_FAILED = register_problem_type(ProblemType(
    "/problems/booking-failed", 502, "Booking failed",
    "the booking was reserved but a provider refused its events; it ended `failed` (what was "
    "written is removed again); `booking` is its document"))
BOOKING_NOT_FOUND = register_problem_type(ProblemType(
    "/problems/booking-not-found", 404, "Booking not found", "no booking with this id"))
NOT_CANCELLABLE = register_problem_type(ProblemType(
    "/problems/booking-not-cancellable", 409, "Booking not cancellable",
    "the booking failed (its events were already removed); only pending and confirmed "
    "bookings can be cancelled"))
KEY_REUSED = register_problem_type(ProblemType(
    "/problems/idempotency-key-reused", 422, "Idempotency key reused",
    "this Idempotency-Key was used before with another request body"))
KEY_IN_FLIGHT = register_problem_type(ProblemType(
    "/problems/idempotency-key-in-flight", 409, "Idempotency key in flight",
    "the first request with this Idempotency-Key is still running; retry after `Retry-After`"))

Status = Literal["pending", "confirmed", "failed", "cancelled"]

# Fields of the request bodies (bookings, links, reschedule); a ``start``
# gets its description where it is used, as it names the slots to pick from.
EventTypeKey = Annotated[str, Field(min_length=1, max_length=200,
                                    description="an event type's key")]
StartText = Annotated[str, Field(min_length=1, max_length=64)]
# Names, notes and addresses reach the providers' events: checked here
# (daemon.inputs), before anything is stored or written.
Notes = Annotated[str, Field(max_length=4000, description="free text; tabs and line breaks, no "
                                                          "other control character"),
                  AfterValidator(check_notes)]


class AttendeeInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200,
                               description="one line, no control character"),
                    AfterValidator(check_name)]
    email: Annotated[str, Field(min_length=3, max_length=320,
                                description="an email address (email-validator; stored "
                                            "normalized)"),
                     AfterValidator(check_email)]


class BookingRequest(BaseModel):
    """The body of ``POST /v1/bookings``."""

    model_config = ConfigDict(extra="forbid")

    event_type: EventTypeKey
    start: StartText = Field(
        description="ISO 8601 date-time of a slot start (GET /v1/event-types/{key}/slots); "
                    "one without an offset is read in the owner's zone")
    attendee: AttendeeInput
    notes: Notes = ""

    @classmethod
    def parse(cls, body: bytes) -> BookingRequest:
        """The request from raw JSON, or a ``/problems/validation`` problem
        naming each bad field (the input itself is not echoed)."""
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            raise invalid([_body_error(error) for error in exc.errors()]) from None


def _body_error(error: Any) -> dict[str, str]:
    path = [str(part) for part in error.get("loc", ())]
    return {"in": "body", "name": ".".join(path) or "body",
            "detail": str(error.get("msg", "invalid")), "pointer": "#/" + "/".join(path)}


def body_problem(name: str, detail: str) -> Problem:
    return invalid([{"in": "body", "name": name, "detail": detail,
                     "pointer": "#/" + name.replace(".", "/")}])


def body_start(text: str, zone: str) -> datetime:
    """A body's ``start`` read in ``zone`` (when it has no offset), or a
    validation problem naming the field."""
    try:
        return parse_instant(text, zone)
    except InputError as exc:
        raise body_problem("start", str(exc)) from None


def unknown_event_type(key: str, known: Iterable[str]) -> Problem:
    """The 422 for a body's ``event_type`` that is not configured."""
    return body_problem("event_type", f"there is no event type {key!r} "
                                      f"(known: {', '.join(known) or 'none'})")


def refusal(outcome: BookingOutcome, what: str = "the slot cannot be booked") -> Problem:
    """The problem of an attempt refused before anything was reserved: a
    422 naming the field, a 409 ``slot-unavailable`` whose detail begins
    with ``what``, or a 503 to retry."""
    if outcome.result is Result.INVALID:
        return body_problem(outcome.field or "body", outcome.detail)
    if outcome.result is Result.REFUSED:
        assert outcome.reason is not None
        return problem(SLOT_UNAVAILABLE.uri, f"{what}: {outcome.detail}",
                       reason=outcome.reason.value)
    assert outcome.result is Result.UNAVAILABLE, outcome.result
    return problem(PROVIDER_UNAVAILABLE.uri, outcome.detail, headers={"Retry-After": "30"})


def failure(outcome: BookingOutcome, document: dict[str, Any], *, then: str = "",
            headers: dict[str, str] | None = None) -> Problem:
    """The 502 of a booking that was reserved and then failed; ``then``
    adds what follows for the client (a link that can be used again)."""
    detail = f"booking {document['id']} failed: {outcome.failure_cause}{then}"
    return problem(BOOKING_FAILED.uri, detail, headers=headers, booking=document)


def request_body_schema() -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of ``POST /v1/bookings``, with the nested
    models written in place (the document has no ``$defs``)."""
    schema = BookingRequest.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(definitions[ref.rsplit("/", 1)[1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    return {"required": True, "content": {"application/json": {"schema": resolve(schema)}}}


class AttendeeDocument(BaseModel):
    name: str
    email: str


class HistoryEntryDocument(BaseModel):
    at: datetime = Field(description="in the owner's zone")
    status: Status
    detail: str


class DeliveryDocument(BaseModel):
    calendar: str = Field(description="the calendar key")
    how: Literal["written", "invited"] = Field(
        description="written: calpool wrote the copy; invited: an attendee of the owner's "
                    "event, delivered by the owner's provider (Google, Microsoft), which answers")
    state: Literal["pending", "written", "accepted", "declined", "removed"] = Field(
        description="pending: not written yet, or an invited room's answer awaited; declined: "
                    "an invited room declined or did not answer within sync.room_answer_within "
                    "(it was replaced: see history)")
    at: datetime = Field(description="when the state was last set, in the owner's zone")


class BookingDocument(BaseModel):
    id: str
    status: Status = Field(description="pending → confirmed | failed; confirmed → cancelled "
                                       "(a pending booking can be cancelled too)")
    event_type: str
    start: datetime = Field(description="ISO 8601 with the offset of the owner's zone")
    end: datetime
    owner: str
    with_: list[str] = Field(alias="with")
    rooms: dict[str, str] = Field(description="per pool, the room assigned")
    attendee: AttendeeDocument | None
    notes: str
    history: list[HistoryEntryDocument] = Field(description="every status change, oldest first")
    deliveries: list[DeliveryDocument] = Field(
        description="per calendar, how it gets its copy of the event and where that stands")


class CreatedBookingDocument(BookingDocument):
    """The booking document as the request that created it answers."""

    manage_url: str = Field(
        description="<http.public_url>/manage/<manage_token>: the customer's page to cancel or "
                    "reschedule; only in the answer to the request that created the booking")


class BookingsDocument(BaseModel):
    bookings: list[BookingDocument]
