"""``/v1/bookings`` (scope ``book``): book, list, read and cancel bookings.

``POST`` reserves the slot and then waits up to ``http.confirm_within`` for
the provider writes (on a worker thread: the booking service blocks): 201
when they are done, 202 while they go on in the outbox.  Under an
``Idempotency-Key`` (``engine.services.idempotency``) every answer but a
5xx is stored and replayed byte for byte; the answer for a booking is held
in the reservation's own transaction, so a process killed before it could
answer still answers the retry with that booking (202) instead of booking
again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response

from daemon.documents import booking_document, manage_url
from daemon.http.auth import Client, require_scope
from daemon.http.booking_schemas import (
    BOOKING_FAILED,
    BOOKING_NOT_FOUND,
    KEY_IN_FLIGHT,
    KEY_REUSED,
    NOT_CANCELLABLE,
    PROVIDER_UNAVAILABLE,
    SLOT_UNAVAILABLE,
    BookingDocument,
    BookingRequest,
    BookingsDocument,
    CreatedBookingDocument,
    body_start,
    failure,
    refusal,
    request_body_schema,
    unknown_event_type,
)
from daemon.http.context import CalpoolApp
from daemon.http.problems import MEDIA_TYPE, Problem, invalid, problem, problem_responses
from daemon.http.slot_query import TIME_EXAMPLES, parse_time
from daemon.wiring import App
from engine.core.model import Attendee, Booking, BookingStatus
from engine.services.booking import BookingNotFound, Result
from engine.services.idempotency import (
    Hold,
    KeyInFlight,
    KeyReused,
    StoredAnswer,
    request_fingerprint,
)
from engine.store import StatusChange

log = logging.getLogger("calpool.http")

router = APIRouter(prefix="/v1/bookings", tags=["bookings"])

BookClient = Annotated[Client, Depends(require_scope("book"))]
AUTH_PROBLEMS = ("/problems/unauthorized", "/problems/forbidden")
REPLAYED = "Idempotent-Replayed"


async def raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=255,
    description="makes a retry safe: the same key with the same body gets the first answer "
                "again (kept for retention.idempotency_keys, per token)")]


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer as sent, and as stored for a replay."""

    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)

    def response(self, **headers: str) -> Response:
        media_type = MEDIA_TYPE if self.status >= 400 else "application/json"
        return Response(self.body, status_code=self.status, media_type=media_type,
                        headers={**self.headers, **headers})

    @classmethod
    def of_problem(cls, refusal: Problem) -> Answer:
        return cls(refusal.status, _encode(refusal.document()), dict(refusal.headers))


@router.post(
    "",
    status_code=201,
    summary="Book a slot: reserve it, assign rooms, write the events",
    response_class=Response,
    openapi_extra={"requestBody": request_body_schema()},
    responses={
        201: {"model": CreatedBookingDocument,
              "description": "booked, every event written (status confirmed); `Location` names "
                             "the booking"},
        202: {"model": CreatedBookingDocument,
              "description": "reserved (status pending); the events are not all written within "
                             "http.confirm_within and the outbox goes on (GET the `Location`)"},
        **problem_responses(
            *AUTH_PROBLEMS, "/problems/validation", KEY_REUSED.uri, SLOT_UNAVAILABLE.uri,
            KEY_IN_FLIGHT.uri, BOOKING_FAILED.uri, PROVIDER_UNAVAILABLE.uri,
            "/problems/database-unavailable"),
    },
)
def create_booking(
    app: CalpoolApp, client: BookClient, request: Request, body: RawBody,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An unknown `event_type` is a 422 naming the field (it is body input),
    like a start that is malformed or off the event type's slot grid."""
    if idempotency_key is None:
        return _book(app, body).response()

    def held(booking: Booking, history: Sequence[StatusChange]) -> str:
        return _encode(_document(app, booking, list(history)))

    def attempt(hold: Hold) -> StoredAnswer:
        answer = _book(app, body, on_reserved=hold)
        return StoredAnswer(answer.status, answer.body)

    fingerprint = request_fingerprint("POST", request.url.path, body)
    try:
        keyed = app.keyed.run(client.name, idempotency_key, fingerprint, attempt, held)
    except KeyReused:
        raise problem(KEY_REUSED.uri, "this Idempotency-Key was used before with another "
                                      "request body; use a new key for a new request") from None
    except KeyInFlight:
        raise problem(KEY_IN_FLIGHT.uri, "the first request with this Idempotency-Key is "
                                         "still running", headers={"Retry-After": "1"}) from None
    answer = Answer(keyed.answer.status, keyed.answer.body, _location(keyed.answer.body))
    return answer.response(**({REPLAYED: "true"} if keyed.replayed else {}))


@router.get(
    "",
    summary="Bookings overlapping a time range, by start",
    response_model=BookingsDocument,
    response_model_by_alias=True,
    responses=problem_responses(*AUTH_PROBLEMS, "/problems/validation"),
)
def list_bookings(
    app: CalpoolApp,
    _client: BookClient,
    start: Annotated[str | None, Query(
        description=f"bookings ending after this; e.g. {TIME_EXAMPLES}; a time without an "
                    "offset is read in daemon.timezone")] = None,
    end: Annotated[str | None, Query(description="bookings starting before this")] = None,
    calendar: Annotated[str | None, Query(
        description="only bookings involving this calendar (owner, person or room)")] = None,
    status: Annotated[list[str] | None, Query(
        description="only these statuses (repeat the parameter or separate by commas): "
                    "pending, confirmed, failed, cancelled")] = None,
) -> Any:
    errors: list[dict[str, str]] = []
    zone = app.config.daemon.timezone
    begin = _query_time("start", start, zone, errors)
    finish = _query_time("end", end, zone, errors)
    if begin is not None and finish is not None and finish <= begin:
        errors.append({"in": "query", "name": "end", "detail": "must be later than start"})
    if calendar is not None and calendar not in app.config.calendars:
        errors.append({"in": "query", "name": "calendar",
                       "detail": f"there is no calendar {calendar!r}"})
    statuses = _statuses(status, errors)
    if errors:
        raise invalid(errors)
    found = app.bookings.list(begin, finish, calendar, statuses)
    return {"bookings": [_document(app, booking, app.bookings.history(booking.id))
                         for booking in found]}


@router.get(
    "/{booking_id}",
    summary="One booking",
    response_model=BookingDocument,
    response_model_by_alias=True,
    responses=problem_responses(*AUTH_PROBLEMS, BOOKING_NOT_FOUND.uri, "/problems/validation"),
)
def get_booking(app: CalpoolApp, _client: BookClient, booking_id: str) -> Any:
    return _document(app, _existing(app, booking_id), app.bookings.history(booking_id))


@router.delete(
    "/{booking_id}",
    summary="Cancel a booking: its events leave every calendar",
    response_model=BookingDocument,
    response_model_by_alias=True,
    responses=problem_responses(*AUTH_PROBLEMS, BOOKING_NOT_FOUND.uri, NOT_CANCELLABLE.uri,
                                "/problems/validation"),
)
def cancel_booking(app: CalpoolApp, _client: BookClient, booking_id: str) -> Any:
    """Idempotent: cancelling a cancelled booking answers it again (200)."""
    if _existing(app, booking_id).status is not BookingStatus.FAILED:
        booking = app.bookings.cancel(booking_id, app.clock())
        if booking.status is not BookingStatus.FAILED:
            return _document(app, booking, app.bookings.history(booking_id))
    raise problem(NOT_CANCELLABLE.uri, f"booking {booking_id} failed; its events were "
                                       "removed already", booking_id=booking_id)


# ---- booking ----------------------------------------------------------------------------------


def _book(app: App, body: bytes, on_reserved: Hold | None = None) -> Answer:
    """Book what ``body`` asks for; every refusal is an ``Answer`` too,
    except a 5xx one other than a failed booking (raised, never stored)."""
    try:
        request = BookingRequest.parse(body)
        event_type = app.config.event_types.get(request.event_type)
        if event_type is None:
            raise unknown_event_type(request.event_type, app.config.event_types)
        start = body_start(request.start, app.config.calendars[event_type.owner].timezone)
        attendee = Attendee(request.attendee.name.strip(), request.attendee.email.strip())
        issue, manage_token = app.manage.issuer(on_reserved)
        outcome = app.bookings.attempt(
            event_type.key, start, attendee, request.notes, app.clock(),
            confirm_within=app.config.http.confirm_within, on_reserved=issue)
        if not outcome.result.booked:
            raise refusal(outcome)
    except Problem as refused:
        if refused.status >= 500:
            raise
        return Answer.of_problem(refused)
    assert outcome.booking is not None
    document = _document(app, outcome.booking, list(outcome.history))
    location = {"Location": f"/v1/bookings/{outcome.booking.id}"}
    if outcome.result is Result.FAILED:
        return Answer.of_problem(failure(outcome, document, headers=location))
    if manage_token.value is not None:
        document["manage_url"] = manage_url(app.config.http.public_url, manage_token.value)
    status = 201 if outcome.result is Result.CONFIRMED else 202
    return Answer(status, _encode(document), location)


# ---- documents --------------------------------------------------------------------------------


def _document(app: App, booking: Booking, history: list[Any]) -> dict[str, Any]:
    owner = app.config.calendars.get(booking.owner)
    zone = owner.timezone if owner is not None else app.config.daemon.timezone
    return booking_document(booking, history, zone,
                            deliveries=app.bookings.deliveries(booking.id))


def _encode(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def _location(body: str) -> dict[str, str]:
    """The ``Location`` of a replayed booking answer (the store keeps the
    status and body only)."""
    try:
        document = json.loads(body)
    except ValueError:
        return {}
    found = document.get("booking", document) if isinstance(document, dict) else None
    if isinstance(found, dict) and isinstance(found.get("id"), str) and "status" in found:
        return {"Location": f"/v1/bookings/{found['id']}"}
    return {}


def _existing(app: App, booking_id: str) -> Booking:
    try:
        return app.bookings.get(booking_id)
    except BookingNotFound:
        raise problem(BOOKING_NOT_FOUND.uri, f"there is no booking {booking_id!r}",
                      booking_id=booking_id) from None


def _query_time(name: str, text: str | None, zone: str,
                errors: list[dict[str, str]]) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_time(text, zone)
    except ValueError as exc:  # daemon.inputs.InputError: malformed or out of range
        errors.append({"in": "query", "name": name, "detail": str(exc)})
        return None


def _statuses(given: list[str] | None, errors: list[dict[str, str]]) -> list[BookingStatus] | None:
    if not given:
        return None
    found = []
    for text in (part.strip() for value in given for part in value.split(",")):
        try:
            found.append(BookingStatus(text))
        except ValueError:
            allowed = ", ".join(status.value for status in BookingStatus)
            errors.append({"in": "query", "name": "status",
                           "detail": f"{text!r} is not a status ({allowed})"})
    return found
