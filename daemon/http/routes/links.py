"""``/v1/links``: one-time booking links.

Creating, listing and revoking need a token with the ``admin`` scope.  The
link's own routes — its slots and its one booking — are authorised by the
link token in the path alone (``engine.services.links``): an unknown token
is a 404 that says nothing more, a spent one a 410 ``link-used``, an expired
or revoked one a 410 ``link-expired``.  A link's token is shown once, when
it is created; listings name links by their ``id`` (the token's sha256),
which revokes but never books.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from daemon.config.durations import EXAMPLES, parse_duration
from daemon.documents import booking_document, local_iso, manage_url, slots_json
from daemon.http.auth import Client, require_scope
from daemon.http.booking_schemas import (
    BOOKING_FAILED,
    PROVIDER_UNAVAILABLE,
    SLOT_UNAVAILABLE,
    AttendeeDocument,
    AttendeeInput,
    CreatedBookingDocument,
    EventTypeKey,
    Notes,
    StartText,
    body_problem,
    body_start,
    failure,
    refusal,
    unknown_event_type,
)
from daemon.http.context import CalpoolApp
from daemon.http.problems import (
    Problem,
    ProblemType,
    problem,
    problem_responses,
    register_problem_type,
)
from daemon.http.schemas import SlotsDocument
from daemon.http.slot_query import TIME_EXAMPLES, RoomsQuery, slot_range
from daemon.wiring import App
from engine.core.model import Attendee
from engine.services.booking import Result, UnknownEventType
from engine.services.links import (
    InvalidLink,
    LinkError,
    LinkExpired,
    LinkNotFound,
    LinkUsed,
)
from engine.store import Link

LINK_NOT_FOUND = register_problem_type(ProblemType(
    "/problems/link-not-found", 404, "Link not found",
    "no link has this token (mistyped, or removed after its retention)"))
LINK_USED = register_problem_type(ProblemType(
    "/problems/link-used", 410, "Link used",
    "the link was used for a booking already; a link books once"))
LINK_EXPIRED = register_problem_type(ProblemType(
    "/problems/link-expired", 410, "Link expired",
    "the link is past its expiry, was revoked, or its event type is no longer offered"))

router = APIRouter(prefix="/v1/links", tags=["links"])

AdminClient = Annotated[Client, Depends(require_scope("admin"))]
AUTH_PROBLEMS = ("/problems/unauthorized", "/problems/forbidden")
LINK_PROBLEMS = (LINK_NOT_FOUND.uri, LINK_USED.uri, LINK_EXPIRED.uri)


class LinkRequest(BaseModel):
    """The body of ``POST /v1/links``."""

    model_config = ConfigDict(extra="forbid")

    event_type: EventTypeKey
    expires_in: str | None = Field(
        default=None, max_length=64,
        description=f"how long the link can be used, a duration like {EXAMPLES}; "
                    "default links.default_expiry")
    attendee: AttendeeInput | None = Field(
        default=None, description="prefill the attendee: the link then books for them only")


class LinkCreated(BaseModel):
    id: str = Field(description="the token's sha256: names the link in listings, revokes it")
    token: str = Field(description="the secret of the link, shown this once")
    url: str = Field(description="<http.public_url>/book/<token>: the customer's page")
    event_type: str
    expires_at: datetime = Field(description="in the owner's zone")
    attendee: AttendeeDocument | None


class LinkDocument(BaseModel):
    id: str = Field(description="the token's sha256 (the token itself is never stored)")
    event_type: str
    created_at: datetime
    expires_at: datetime
    attendee: AttendeeDocument | None


class LinksDocument(BaseModel):
    links: list[LinkDocument] = Field(description="unused links, soonest expiry first")


class LinkBookingRequest(BaseModel):
    """The body of ``POST /v1/links/{token}/bookings``."""

    model_config = ConfigDict(extra="forbid")

    start: StartText = Field(
        description="ISO 8601 date-time of a slot start (GET /v1/links/{token}/slots); one "
                    "without an offset is read in the owner's zone")
    attendee: AttendeeInput | None = Field(
        default=None, description="required, unless the link has one; refused if it has")
    notes: Notes = ""


# ---- admin ------------------------------------------------------------------------------------


@router.post(
    "",
    status_code=201,
    summary="Create a one-time booking link",
    response_model=LinkCreated,
    responses=problem_responses(*AUTH_PROBLEMS, "/problems/validation"),
)
def create_link(app: CalpoolApp, _client: AdminClient, body: LinkRequest) -> Any:
    expires_in = None
    if body.expires_in is not None:
        try:
            expires_in = parse_duration(body.expires_in)
        except ValueError as exc:
            raise body_problem("expires_in", str(exc)) from None
    attendee = _attendee(body.attendee)
    try:
        issued = app.links.create(body.event_type, app.clock(), expires_in=expires_in,
                                    attendee=attendee)
    except UnknownEventType:
        raise unknown_event_type(body.event_type, app.config.event_types) from None
    except InvalidLink as exc:
        raise body_problem(exc.field, exc.detail) from None
    return {
        **_link_document(app, issued.link),
        "token": issued.token,
        "url": f"{app.config.http.public_url}/book/{issued.token}",
    }


@router.get(
    "",
    summary="The links that can still be used",
    response_model=LinksDocument,
    responses=problem_responses(*AUTH_PROBLEMS),
)
def list_links(app: CalpoolApp, _client: AdminClient) -> Any:
    return {"links": [_link_document(app, link) for link in app.links.unused(app.clock())]}


@router.delete(
    "/{token}",
    status_code=204,
    summary="Revoke a link, named by its token or its id",
    response_class=Response,
    responses=problem_responses(*AUTH_PROBLEMS, LINK_NOT_FOUND.uri, LINK_USED.uri,
                                "/problems/validation"),
)
def revoke_link(app: CalpoolApp, _client: AdminClient, token: str) -> Response:
    """Idempotent: revoking a revoked or expired link answers 204 again.  A
    used link stays with its booking (410): cancel the booking instead."""
    try:
        app.links.revoke(token, app.clock())
    except LinkError as exc:
        raise _link_problem(exc) from None
    return Response(status_code=204)


# ---- the link's own routes ------------------------------------------------------------------


@router.get(
    "/{token}/slots",
    summary="The bookable slots of the link's event type (authorised by the link)",
    response_class=JSONResponse,
    responses={
        200: {"model": SlotsDocument, "description": "the slots starting in [start, end)"},
        **problem_responses(*LINK_PROBLEMS, "/problems/validation",
                            "/problems/database-unavailable"),
    },
)
def link_slots(
    app: CalpoolApp,
    token: str,
    start: Annotated[str | None, Query(
        description=f"first slot start (inclusive); default now. E.g. {TIME_EXAMPLES}")] = None,
    end: Annotated[str | None, Query(
        description="end of the range (exclusive); default start + 7 days")] = None,
    timezone: Annotated[str | None, Query(
        description="IANA zone to read and write times in; default the owner's zone")] = None,
    rooms: RoomsQuery = "all",
) -> Response:
    now = app.clock()
    link = _open(app, token)
    event_type = app.config.event_types[link.event_type]
    owner_zone = app.config.calendars[event_type.owner].timezone
    asked = slot_range(event_type, owner_zone, start=start, end=end, timezone=timezone, now=now)
    answer = app.slots.slots(event_type.key, asked.window, now=now)
    return Response(slots_json(answer, asked.zone, rooms), media_type="application/json")


@router.post(
    "/{token}/bookings",
    status_code=201,
    summary="Book through the link (authorised by the link); the first booking uses it",
    response_class=JSONResponse,
    responses={
        201: {"model": CreatedBookingDocument, "description": "booked, every event written"},
        202: {"model": CreatedBookingDocument,
              "description": "reserved (status pending); the outbox goes on writing the events"},
        **problem_responses(*LINK_PROBLEMS, "/problems/validation", SLOT_UNAVAILABLE.uri,
                            BOOKING_FAILED.uri, PROVIDER_UNAVAILABLE.uri,
                            "/problems/database-unavailable"),
    },
)
def book_through_link(app: CalpoolApp, token: str, body: LinkBookingRequest) -> JSONResponse:
    """A booking that ends `failed` gives the link back: it can be used again."""
    link = _open(app, token)
    zone = app.config.calendars[app.config.event_types[link.event_type].owner].timezone
    start = body_start(body.start, zone)
    issue, manage_token = app.manage.issuer()
    try:
        outcome = app.links.book(token, start, _attendee(body.attendee), body.notes,
                                 app.clock(), confirm_within=app.config.http.confirm_within,
                                 on_reserved=issue)
    except LinkError as exc:
        raise _link_problem(exc) from None
    if not outcome.result.booked:
        raise refusal(outcome)
    assert outcome.booking is not None
    document = booking_document(outcome.booking, list(outcome.history), zone,
                                deliveries=app.bookings.deliveries(outcome.booking.id))
    if outcome.result is Result.FAILED:
        raise failure(outcome, document, then="; the link can be used again")
    if manage_token.value is not None:
        document["manage_url"] = manage_url(app.config.http.public_url, manage_token.value)
    status = 201 if outcome.result is Result.CONFIRMED else 202
    return JSONResponse(document, status_code=status)


# ---- plumbing -----------------------------------------------------------------------------------


def _open(app: App, token: str) -> Link:
    try:
        return app.links.open(token, app.clock())
    except LinkError as exc:
        raise _link_problem(exc) from None


def _link_problem(exc: LinkError) -> Problem:
    if isinstance(exc, LinkUsed):
        return problem(LINK_USED.uri, "this link was used for a booking already")
    if isinstance(exc, LinkExpired):
        return problem(LINK_EXPIRED.uri, exc.detail)
    if isinstance(exc, InvalidLink):
        return body_problem(exc.field, exc.detail)
    assert isinstance(exc, LinkNotFound)
    return problem(LINK_NOT_FOUND.uri, "there is no such link")


def _attendee(given: AttendeeInput | None) -> Attendee | None:
    return None if given is None else Attendee(given.name.strip(), given.email.strip())


def _link_document(app: App, link: Link) -> dict[str, Any]:
    event_type = app.config.event_types.get(link.event_type)
    owner = app.config.calendars.get(event_type.owner) if event_type is not None else None
    zone = owner.timezone if owner is not None else app.config.daemon.timezone
    attendee = link.attendee
    return {
        "id": link.token_sha256,
        "event_type": link.event_type,
        "created_at": local_iso(link.created_at, zone),
        "expires_at": local_iso(link.expires_at, zone),
        "attendee": {"name": attendee.name, "email": attendee.email} if attendee else None,
    }

