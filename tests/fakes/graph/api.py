"""The Graph v1.0 routes the fake answers: calendarView (and its delta), events, getSchedule.

Every route needs a bearer token the fake's identity platform issued (else 401
``InvalidAuthenticationToken``); an unknown mailbox is 404 ``ErrorInvalidUser``.
Paths are matched case-insensitively, as Graph does.
https://learn.microsoft.com/en-us/graph/errors
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes.graph import times
from tests.fakes.graph.calendars import (
    Calendars,
    InvalidEvent,
    ItemNotFound,
    StaleChangeKey,
    UnknownMailbox,
)
from tests.fakes.graph.errors import graph_error
from tests.fakes.graph.views import (
    Preferences,
    expand_filter,
    has_property,
    ical_uid_filter,
    property_filter,
    render,
)

DEFAULT_PAGE_SIZE = 10
MAX_SCHEDULES = 20
MAX_SCHEDULE_SPAN = timedelta(days=62)
_NOT_ON_DELTA = ("$filter", "$orderby", "$search", "$expand", "$top", "$skip", "$count")
_AVAILABILITY_DIGIT = {
    "free": "0",
    "tentative": "1",
    "busy": "2",
    "oof": "3",
    "workingElsewhere": "4",
}
_AVAILABILITY_RANK = {"free": 0, "workingElsewhere": 1, "tentative": 2, "busy": 3, "oof": 4}

Handler = Callable[[Request, dict[str, str]], Awaitable[Response]]


@dataclass
class DeltaState:
    """What a ``$skiptoken`` or ``$deltatoken`` stands for (the round's window and progress)."""

    user: str
    window: tuple[datetime, datetime]
    epoch: int
    seq: int  # the change counter the round's snapshot was taken at
    known: frozenset[str]  # ids the client holds once it reached the deltaLink
    pending: list[Any]  # Instances and removed ids still to page out (skip tokens)


class GraphApi:
    """Dispatches ``/v1.0/…`` requests onto the mailboxes."""

    def __init__(self, calendars: Calendars, *, graph_url: Callable[[], str]) -> None:
        self.calendars = calendars
        self._graph_url = graph_url
        self._tokens: dict[str, DeltaState] = {}
        self.empty_delta_page = False  # when True every delta round starts with an empty page
        user = r"/v1\.0/users/(?P<user>[^/]+)"
        calendar = r"(?:/calendar)?"
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(user + calendar + r"/calendarView/delta$", re.I), self.delta),
            ("GET", re.compile(user + calendar + r"/calendarView$", re.I), self.calendar_view),
            ("POST", re.compile(user + r"/calendar/getSchedule$", re.I), self.get_schedule),
            ("POST", re.compile(user + calendar + r"/events$", re.I), self.create_event),
            ("GET", re.compile(user + calendar + r"/events$", re.I), self.list_events),
            (
                "GET",
                re.compile(user + calendar + r"/events/(?P<event>[^/]+)$", re.I),
                self.get_event,
            ),
            (
                "PATCH",
                re.compile(user + calendar + r"/events/(?P<event>[^/]+)$", re.I),
                self.update_event,
            ),
            (
                "DELETE",
                re.compile(user + calendar + r"/events/(?P<event>[^/]+)$", re.I),
                self.delete_event,
            ),
        ]

    def route(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        for verb, pattern, handler in self.routes:
            match = pattern.match(path)
            if match and verb == method:
                return handler, match.groupdict()
        return None

    # ---- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _preferences(request: Request) -> Preferences:
        return Preferences.of(request.headers, request.headers.getlist("prefer"))

    def _link(self, user: str, tail: str, query: dict[str, str]) -> str:
        return (
            f"{self._graph_url()}/users/{quote(user)}/{tail}?{urlencode(query, quote_via=quote)}"
        )

    @staticmethod
    def _window(request: Request) -> tuple[datetime, datetime] | Response:
        """The calendarView window; 400 as Graph answers without one."""
        start = request.query_params.get("startDateTime") or request.query_params.get(
            "startdatetime"
        )
        end = request.query_params.get("endDateTime") or request.query_params.get("enddatetime")
        if not start or not end:
            return graph_error(
                400,
                "ErrorInvalidParameter",
                "This request requires a time window specified by the query "
                "string parameters StartDateTime and EndDateTime.",
                request_headers=request.headers,
            )
        try:
            window = times.parse_query_instant(start), times.parse_query_instant(end)
        except ValueError:
            return graph_error(
                400,
                "ErrorInvalidParameter",
                "startDateTime/endDateTime are not valid ISO 8601 values.",
                request_headers=request.headers,
            )
        if window[1] <= window[0]:
            return graph_error(
                400,
                "ErrorInvalidParameter",
                "endDateTime must be after startDateTime.",
                request_headers=request.headers,
            )
        return window

    # ---- delta ---------------------------------------------------------------------------------

    async def delta(self, request: Request, params: dict[str, str]) -> Response:
        """``GET /users/{id}/calendarView/delta``: a round of pages ending in a deltaLink.

        The first call needs startDateTime/endDateTime; the state tokens in
        ``@odata.nextLink`` (``$skiptoken``) and ``@odata.deltaLink`` (``$deltatoken``)
        carry the window, which therefore stays fixed for the round. A page
        carries either a nextLink or a deltaLink, never both. Following a deltaLink
        answers what changed since: created and updated instances in full,
        removed ones as ``{"id", "@removed": {"reason": "deleted"}}``. An expired
        state token answers 410 ``syncStateNotFound``. Delta does not take
        ``$filter``, ``$orderby``, ``$search`` or ``$expand``.
        https://learn.microsoft.com/en-us/graph/api/event-delta
        https://learn.microsoft.com/en-us/graph/delta-query-events
        https://learn.microsoft.com/en-us/graph/delta-query-overview
        """
        query = request.query_params
        for option in _NOT_ON_DELTA:
            if option in query:
                return graph_error(
                    400,
                    "ErrorInvalidUrlQuery",
                    f"The query parameter '{option}' is not supported with "
                    "change tracking over the 'CalendarView' resource.",
                    request_headers=request.headers,
                )
        preferences = self._preferences(request)
        user = params["user"]
        box = self.calendars.mailbox(user)
        skip, delta_token = query.get("$skiptoken"), query.get("$deltatoken")
        with self.calendars.lock:
            if skip or delta_token:
                state = self._tokens.get(skip or delta_token or "")
                if state is None or state.epoch != box.epoch or state.user.lower() != user.lower():
                    return graph_error(
                        410,
                        "syncStateNotFound",
                        "The sync state generation is not found. Start a new "
                        "round of synchronization.",
                        request_headers=request.headers,
                    )
                if delta_token:
                    state = self._changes_since(state)
                    if self.empty_delta_page:
                        return self._empty_page(user, state)
            else:
                window = self._window(request)
                if isinstance(window, Response):
                    return window
                current = self.calendars.instances(user, *window)
                state = DeltaState(
                    user=user,
                    window=window,
                    epoch=box.epoch,
                    seq=self.calendars.seq,
                    known=frozenset(i.id for i in current),
                    pending=list(current),
                )
                if self.empty_delta_page:
                    return self._empty_page(user, state)
            size = preferences.max_page_size or DEFAULT_PAGE_SIZE
            page, rest = state.pending[:size], state.pending[size:]
            token = secrets.token_urlsafe(18)
            body: dict[str, Any] = {
                "@odata.context": f"{self._graph_url()}/$metadata#Collection(event)"
            }
            body["value"] = [
                {
                    "@odata.type": "#microsoft.graph.event",
                    "id": item,
                    "@removed": {"reason": "deleted"},
                }
                if isinstance(item, str)
                else render(item.resource, preferences)
                for item in page
            ]
            if rest:
                self._tokens[token] = DeltaState(
                    user, state.window, state.epoch, state.seq, state.known, rest
                )
                body["@odata.nextLink"] = self._link(
                    user, "calendarView/delta", {"$skiptoken": token}
                )
            else:
                self._tokens[token] = DeltaState(
                    user, state.window, state.epoch, state.seq, state.known, []
                )
                body["@odata.deltaLink"] = self._link(
                    user, "calendarView/delta", {"$deltatoken": token}
                )
        headers = {}
        if preferences.max_page_size:
            headers["Preference-Applied"] = f"odata.maxpagesize={preferences.max_page_size}"
        return JSONResponse(body, headers=headers)

    def _changes_since(self, state: DeltaState) -> DeltaState:
        current = self.calendars.instances(state.user, *state.window)
        ids = {i.id for i in current}
        changed: list[Any] = [i for i in current if i.seq > state.seq]
        changed += sorted(state.known - ids)
        return DeltaState(
            state.user, state.window, state.epoch, self.calendars.seq, frozenset(ids), changed
        )

    def _empty_page(self, user: str, state: DeltaState) -> Response:
        token = secrets.token_urlsafe(18)
        self._tokens[token] = state
        return JSONResponse(
            {
                "value": [],
                "@odata.nextLink": self._link(user, "calendarView/delta", {"$skiptoken": token}),
            }
        )

    def expire_tokens(self, user: str | None = None) -> None:
        """Older delta/skip tokens of that mailbox (of all, without one) answer 410 from now on."""
        with self.calendars.lock:
            boxes = [self.calendars.mailbox(user)] if user else self.calendars.all_mailboxes()
            for box in boxes:
                box.epoch += 1

    # ---- calendarView and events -------------------------------------------------------------

    @staticmethod
    def _page_bounds(request: Request, preferences: Preferences) -> tuple[int, int] | Response:
        try:
            skip = int(request.query_params.get("$skip", "0"))
            top = (
                int(request.query_params.get("$top", "0"))
                or preferences.max_page_size
                or DEFAULT_PAGE_SIZE
            )
        except ValueError:
            return graph_error(
                400, "BadRequest", "$skip/$top must be integers.", request_headers=request.headers
            )
        return skip, top

    async def calendar_view(self, request: Request, params: dict[str, str]) -> Response:
        """``GET /users/{id}/calendarView``: single instances, occurrences and exceptions, paged.

        https://learn.microsoft.com/en-us/graph/api/user-list-calendarview
        """
        window = self._window(request)
        if isinstance(window, Response):
            return window
        preferences = self._preferences(request)
        bounds = self._page_bounds(request, preferences)
        if isinstance(bounds, Response):
            return bounds
        skip, top = bounds
        try:
            expand = expand_filter(request.query_params.get("$expand"))
        except ValueError as exc:
            return graph_error(400, "BadRequest", str(exc), request_headers=request.headers)
        found = self.calendars.instances(params["user"], *window)
        body: dict[str, Any] = {
            "value": [
                render(i.resource, preferences, expand=expand) for i in found[skip : skip + top]
            ]
        }
        if skip + top < len(found):
            query = {k: v for k, v in request.query_params.items() if k not in {"$skip", "$top"}}
            body["@odata.nextLink"] = self._link(
                params["user"],
                "calendarView",
                {**query, "$top": str(top), "$skip": str(skip + top)},
            )
        return JSONResponse(body)

    async def list_events(self, request: Request, params: dict[str, str]) -> Response:
        """``GET /users/{id}/events``: single events and series masters, optionally filtered
        by a single-value extended property (``singleValueExtendedProperties/any(ep: ep/id eq
        '…' and ep/value eq '…')``) or by ``iCalUId eq '…'`` — the only ``$filter`` forms the
        fake understands.

        https://learn.microsoft.com/en-us/graph/api/user-list-events
        https://learn.microsoft.com/en-us/graph/api/singlevaluelegacyextendedproperty-get
        """
        preferences = self._preferences(request)
        bounds = self._page_bounds(request, preferences)
        if isinstance(bounds, Response):
            return bounds
        skip, top = bounds
        filter_text = request.query_params.get("$filter")
        ical_uid = ical_uid_filter(filter_text) if filter_text else None
        try:
            expand = expand_filter(request.query_params.get("$expand"))
            wanted = (
                property_filter(filter_text)
                if filter_text is not None and ical_uid is None
                else None
            )
        except ValueError as exc:
            return graph_error(400, "BadRequest", str(exc), request_headers=request.headers)
        found = [
            r
            for r in self.calendars.stored(params["user"])
            if (wanted is None or has_property(r, *wanted))
            and (ical_uid is None or r.get("iCalUId") == ical_uid)
        ]
        body: dict[str, Any] = {
            "value": [render(r, preferences, expand=expand) for r in found[skip : skip + top]]
        }
        if skip + top < len(found):
            query = {k: v for k, v in request.query_params.items() if k not in {"$skip", "$top"}}
            body["@odata.nextLink"] = self._link(
                params["user"], "events", {**query, "$top": str(top), "$skip": str(skip + top)}
            )
        return JSONResponse(body)

    async def _json_body(self, request: Request) -> dict[str, Any] | Response:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return graph_error(
                400,
                "BadRequest",
                "Unable to read JSON request payload.",
                request_headers=request.headers,
            )
        if not isinstance(body, dict):
            return graph_error(
                400,
                "BadRequest",
                "The payload must be a JSON object.",
                request_headers=request.headers,
            )
        return body

    async def create_event(self, request: Request, params: dict[str, str]) -> Response:
        """``POST /users/{id}/events``: 201 with the new event; a repeated ``transactionId``
        answers the event already created by it (no second event).

        https://learn.microsoft.com/en-us/graph/api/user-post-events
        https://learn.microsoft.com/en-us/graph/api/resources/event (transactionId)
        """
        body = await self._json_body(request)
        if isinstance(body, Response):
            return body
        try:
            created = self.calendars.create(params["user"], body)
        except InvalidEvent as exc:
            return graph_error(
                400, "ErrorInvalidRequest", str(exc), request_headers=request.headers
            )
        return JSONResponse(render(created, self._preferences(request)), status_code=201)

    def _found(self, request: Request, params: dict[str, str]) -> Response | None:
        if self.calendars.instance(params["user"], params["event"]) is None:
            return graph_error(
                404,
                "ErrorItemNotFound",
                "The specified object was not found in the store.",
                request_headers=request.headers,
            )
        return None

    async def get_event(self, request: Request, params: dict[str, str]) -> Response:
        """``GET /users/{id}/events/{id}`` (404 ``ErrorItemNotFound`` once gone).

        https://learn.microsoft.com/en-us/graph/api/event-get
        """
        try:
            expand = expand_filter(request.query_params.get("$expand"))
        except ValueError as exc:
            return graph_error(400, "BadRequest", str(exc), request_headers=request.headers)
        instance = self.calendars.instance(params["user"], params["event"])
        if instance is None:
            return self._found(request, params) or Response(status_code=500)
        return JSONResponse(render(instance.resource, self._preferences(request), expand=expand))

    async def update_event(self, request: Request, params: dict[str, str]) -> Response:
        """``PATCH /users/{id}/events/{id}``; a stale ``If-Match`` answers 412.

        https://learn.microsoft.com/en-us/graph/api/event-update
        """
        body = await self._json_body(request)
        if isinstance(body, Response):
            return body
        try:
            updated = self.calendars.update(
                params["user"], params["event"], body, if_match=request.headers.get("if-match")
            )
        except ItemNotFound:
            return self._found(request, params) or Response(status_code=500)
        except StaleChangeKey:
            return graph_error(
                412,
                "ErrorIrresolvableConflict",
                "The send or update operation could not be performed because the "
                "change key passed in the request does not match the current "
                "change key for the item.",
                request_headers=request.headers,
            )
        except InvalidEvent as exc:
            return graph_error(
                400, "ErrorInvalidRequest", str(exc), request_headers=request.headers
            )
        return JSONResponse(render(updated, self._preferences(request)))

    async def delete_event(self, request: Request, params: dict[str, str]) -> Response:
        """``DELETE /users/{id}/events/{id}``: 204; on an occurrence, that occurrence is cancelled.

        https://learn.microsoft.com/en-us/graph/api/event-delete
        """
        try:
            self.calendars.delete(
                params["user"], params["event"], if_match=request.headers.get("if-match")
            )
        except ItemNotFound:
            return self._found(request, params) or Response(status_code=500)
        except StaleChangeKey:
            return graph_error(
                412,
                "ErrorIrresolvableConflict",
                "The change key does not match.",
                request_headers=request.headers,
            )
        return Response(status_code=204)

    # ---- getSchedule ---------------------------------------------------------------------------

    async def get_schedule(self, request: Request, params: dict[str, str]) -> Response:
        """``POST /users/{id}/calendar/getSchedule``: free/busy of up to 20 mailboxes.

        ``availabilityViewInterval`` 5–1440 minutes (default 30); ``availabilityView``
        has one digit per interval (0 free, 1 tentative, 2 busy, 3 oof, 4 working
        elsewhere); an unknown schedule gets its own ``error`` inside the 200.
        Times come back in UTC unless ``Prefer: outlook.timezone``. The span is
        limited to 62 days (Exchange's availability limit; ``ErrorTimeIntervalTooBig``).
        https://learn.microsoft.com/en-us/graph/api/calendar-getschedule
        https://learn.microsoft.com/en-us/graph/api/resources/freebusyerror
        """
        # The call is made as a mailbox of the tenant; an unknown one is 404
        # ErrorInvalidUser for the whole call, as on every /users/{id}/… route.
        self.calendars.mailbox(params["user"])
        body = await self._json_body(request)
        if isinstance(body, Response):
            return body
        schedules = body.get("schedules")
        if not isinstance(schedules, list) or not schedules or len(schedules) > MAX_SCHEDULES:
            return graph_error(
                400,
                "ErrorInvalidParameter",
                f"schedules must list 1 to {MAX_SCHEDULES} addresses.",
                request_headers=request.headers,
            )
        interval = body.get("availabilityViewInterval", 30)
        if not isinstance(interval, int) or not 5 <= interval <= 1440:
            return graph_error(
                400,
                "ErrorInvalidParameter",
                "availabilityViewInterval must be between 5 and 1440.",
                request_headers=request.headers,
            )
        try:
            start = times.parse_instant(body["startTime"])
            end = times.parse_instant(body["endTime"])
        except (KeyError, TypeError, ValueError):
            return graph_error(
                400,
                "ErrorInvalidParameter",
                "startTime and endTime are required dateTimeTimeZone values.",
                request_headers=request.headers,
            )
        if end <= start:
            return graph_error(
                400,
                "ErrorInvalidParameter",
                "endTime must be after startTime.",
                request_headers=request.headers,
            )
        if end - start > MAX_SCHEDULE_SPAN:
            return graph_error(
                400,
                "ErrorTimeIntervalTooBig",
                "The time interval is too big; the maximum is 62 days.",
                request_headers=request.headers,
            )
        preferences = self._preferences(request)
        step = timedelta(minutes=interval)
        answers = []
        for address in schedules:
            if not self.calendars.has_mailbox(str(address)):
                answers.append(
                    {
                        "scheduleId": address,
                        "availabilityView": "",
                        "scheduleItems": [],
                        "error": {
                            "message": f"The user '{address}' could not be found.",
                            "responseCode": "ErrorMailRecipientNotFound",
                        },
                    }
                )
                continue
            found = [
                i
                for i in self.calendars.instances(str(address), start, end)
                if not i.resource.get("isCancelled")
            ]
            view = []
            slot = start
            while slot < end:
                overlapping = [
                    i.resource.get("showAs", "busy")
                    for i in found
                    if i.start < slot + step and i.end > slot
                ]
                worst = max(
                    overlapping, key=lambda s: _AVAILABILITY_RANK.get(s, 3), default="free"
                )
                view.append(_AVAILABILITY_DIGIT.get(worst, "2"))
                slot += step
            answers.append(
                {
                    "scheduleId": address,
                    "availabilityView": "".join(view),
                    "scheduleItems": [
                        {
                            "isPrivate": False,
                            "status": i.resource.get("showAs", "busy"),
                            "subject": i.resource.get("subject", ""),
                            "location": (i.resource.get("location") or {}).get("displayName", ""),
                            "start": times.format_instant(i.start, preferences.timezone),
                            "end": times.format_instant(i.end, preferences.timezone),
                        }
                        for i in found
                    ],
                    "workingHours": {
                        "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                        "startTime": "08:00:00.0000000",
                        "endTime": "17:00:00.0000000",
                        "timeZone": {"name": self.calendars.mailbox(str(address)).timezone},
                    },
                }
            )
        return JSONResponse({"value": answers})


def unknown_mailbox(request: Request, exc: UnknownMailbox) -> Response:
    """404 ``ErrorInvalidUser`` for a mailbox the tenant does not have."""
    return graph_error(
        404,
        "ErrorInvalidUser",
        f"The requested user '{exc}' is invalid.",
        request_headers=request.headers,
    )
