"""``GET /v1/event-types`` and ``GET /v1/event-types/{key}/slots`` (scope ``slots``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from daemon.config.durations import format_duration
from daemon.documents import slots_json
from daemon.http.auth import Client, require_scope
from daemon.http.context import CalpoolApp
from daemon.http.problems import problem, problem_responses
from daemon.http.schemas import (
    EventTypeDocument,
    EventTypesDocument,
    RoomDocument,
    SlotsDocument,
)
from daemon.http.slot_query import TIME_EXAMPLES, RoomsQuery, slot_range
from daemon.wiring import App
from engine.core.model import EventType

router = APIRouter(prefix="/v1/event-types", tags=["slots"])

SlotsClient = Annotated[Client, Depends(require_scope("slots"))]
AUTH_PROBLEMS = ("/problems/unauthorized", "/problems/forbidden")


@router.get(
    "",
    summary="The configured event types with their pools' rooms",
    response_model_by_alias=True,
    responses=problem_responses(*AUTH_PROBLEMS),
)
def list_event_types(app: CalpoolApp, _client: SlotsClient) -> EventTypesDocument:
    return EventTypesDocument(
        event_types=[_event_type(app, event_type) for event_type in app.config.event_types.values()]
    )


@router.get(
    "/{key}/slots",
    summary="The bookable slots of an event type",
    response_class=JSONResponse,
    responses={
        200: {"model": SlotsDocument, "description": "the slots starting in [start, end)"},
        **problem_responses(
            *AUTH_PROBLEMS, "/problems/unknown-event-type", "/problems/validation",
            "/problems/database-unavailable",
        ),
    },
)
def event_type_slots(
    app: CalpoolApp,
    _client: SlotsClient,
    key: str,
    start: Annotated[str | None, Query(
        description=f"first slot start (inclusive); default now. E.g. {TIME_EXAMPLES}; "
                    "a time without an offset is read in `timezone`")] = None,
    end: Annotated[str | None, Query(
        description="end of the range (exclusive, on slot starts); default start + 7 days "
                    "(or the horizon, when shorter); at most the horizon after start")] = None,
    timezone: Annotated[str | None, Query(
        description="IANA zone to read and write times in; default the owner's zone")] = None,
    rooms: RoomsQuery = "all",
) -> Response:
    event_type = app.config.event_types.get(key)
    if event_type is None:
        raise problem("/problems/unknown-event-type", f"there is no event type {key!r}",
                      event_type=key)
    now = app.clock()
    owner_zone = app.config.calendars[event_type.owner].timezone
    asked = slot_range(event_type, owner_zone, start=start, end=end, timezone=timezone, now=now)
    answer = app.slots.slots(key, asked.window, now=now)
    # Sent as built, without a response-model pass, and encoded by orjson: a
    # week of a 100-room pool is ~40,000 room keys (~460 KiB), and the
    # standard encoder took longer than the slot search (bench/slots_http.py);
    # the slot list of a kept answer is encoded once.  The tests check the
    # document against the OpenAPI schema instead.
    return Response(slots_json(answer, asked.zone, rooms), media_type="application/json")


def _event_type(app: App, event_type: EventType) -> EventTypeDocument:
    calendars = app.config.calendars
    return EventTypeDocument(
        key=event_type.key,
        title=event_type.title,
        duration=format_duration(event_type.duration),
        owner=event_type.owner,
        with_=list(event_type.with_),
        pools={
            pool: [
                RoomDocument(
                    key=member,
                    name=calendars[member].name or member,
                    capacity=calendars[member].capacity,
                )
                for member in app.config.pools[pool].members
            ]
            for pool in event_type.pools
        },
    )
