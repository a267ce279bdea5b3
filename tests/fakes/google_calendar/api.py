"""The Calendar API v3 routes the fake answers (under ``/calendar/v3/``).

Calendars are visible to their owner's tokens (``primary`` is the caller's own);
rooms are readable by every user of the domain but writable by none (403
``requiredAccessLevel``); anything else is 404 ``notFound``.
https://developers.google.com/calendar/api/guides/errors
https://developers.google.com/calendar/api/concepts/sharing
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes.google_calendar import times
from tests.fakes.google_calendar.calendars import (
    Calendar,
    CalendarNotFound,
    Calendars,
    Duplicate,
    EventNotFound,
    Gone,
    Instance,
    InvalidEvent,
    StaleEtag,
    is_busy,
)
from tests.fakes.google_calendar.errors import google_error
from tests.fakes.google_calendar.login import (
    FREEBUSY_SCOPES,
    READ_SCOPES,
    WRITE_SCOPES,
    AccessToken,
)
from tests.fakes.google_calendar.push import Channels

DEFAULT_MAX_RESULTS = 250
MAX_MAX_RESULTS = 2500
MAX_FREEBUSY_CALENDARS = 50
MAX_FREEBUSY_SPAN = timedelta(days=90)
# events.list parameters that may not come with a syncToken.
# https://developers.google.com/calendar/api/v3/reference/events/list#parameters
NOT_WITH_SYNC_TOKEN = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)
_SEND_UPDATES = {"all", "externalOnly", "none"}

Handler = Callable[[Request, AccessToken, dict[str, str]], Awaitable[Response]]


@dataclass(frozen=True)
class SyncState:
    """What a sync token stands for: the calendar's change number when it was issued."""

    calendar_id: str
    epoch: int
    seq: int
    window: tuple[datetime | None, datetime | None]


@dataclass
class PageState:
    """The rest of a listing a ``pageToken`` continues (snapshotted at the first page)."""

    key: tuple[str, ...]
    items: list[dict[str, Any]]
    sync_token: str | None


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


class CalendarApi:
    """Dispatches ``/calendar/v3/…`` requests onto the calendars."""

    def __init__(self, calendars: Calendars, channels: Channels) -> None:
        self.calendars = calendars
        self.channels = channels
        self._sync: dict[str, SyncState] = {}
        self._pages: dict[str, PageState] = {}
        base = r"^/calendar/v3"
        cal = base + r"/calendars/(?P<calendar>[^/]+)"
        one = cal + r"/events/(?P<event>[^/]+)"
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("POST", re.compile(base + r"/freeBusy$"), self.free_busy),
            ("POST", re.compile(base + r"/channels/stop$"), self.stop_channel),
            ("GET", re.compile(cal + r"$"), self.get_calendar),
            ("POST", re.compile(cal + r"/events/watch$"), self.watch),
            ("GET", re.compile(cal + r"/events$"), self.list_events),
            ("POST", re.compile(cal + r"/events$"), self.insert_event),
            ("GET", re.compile(one + r"/instances$"), self.instances),
            ("GET", re.compile(one + r"$"), self.get_event),
            ("PATCH", re.compile(one + r"$"), self.patch_event),
            ("PUT", re.compile(one + r"$"), self.update_event),
            ("DELETE", re.compile(one + r"$"), self.delete_event),
        ]

    def route(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        for verb, pattern, handler in self.routes:
            match = pattern.match(path)
            if match and verb == method:
                return handler, match.groupdict()
        return None

    # ---- access --------------------------------------------------------------------------

    def _calendar(self, token: AccessToken, calendar_id: str, *, write: bool) -> Calendar:
        """The calendar the caller may read (or write); raises CalendarNotFound otherwise."""
        wanted = token.subject if calendar_id == "primary" else calendar_id
        calendar = self.calendars.find(wanted)
        if calendar is None:
            raise CalendarNotFound(calendar_id)
        if calendar.owner.lower() == token.subject.lower():
            return calendar
        if calendar.room is not None:
            if write:
                raise PermissionError("You need to have writer access to this calendar.")
            return calendar
        raise CalendarNotFound(calendar_id)

    @staticmethod
    def _scoped(token: AccessToken, allowed: set[str]) -> Response | None:
        if token.scopes & allowed:
            return None
        return google_error(
            403,
            "insufficientPermissions",
            "Request had insufficient authentication scopes.",
        )

    async def dispatch(
        self, handler: Handler, request: Request, token: AccessToken, params: dict[str, str]
    ) -> Response:
        write = request.method != "GET" and handler not in {self.free_busy, self.watch}
        if handler == self.free_busy:
            allowed = FREEBUSY_SCOPES
        else:
            allowed = WRITE_SCOPES if write else READ_SCOPES
        refused = self._scoped(token, allowed)
        if refused:
            return refused
        try:
            if "calendar" in params:
                self._calendar(token, params["calendar"], write=write)
            return await handler(request, token, params)
        except CalendarNotFound:
            return google_error(404, "notFound", "Not Found")
        except EventNotFound:
            return google_error(404, "notFound", "Not Found")
        except PermissionError as exc:
            return google_error(403, "requiredAccessLevel", str(exc))
        except Duplicate:
            return google_error(409, "duplicate", "The requested identifier already exists.")
        except Gone:
            return google_error(410, "deleted", "Resource has been deleted")
        except StaleEtag:
            return google_error(
                412,
                "conditionNotMet",
                "Precondition Failed",
                location="If-Match",
                location_type="header",
            )
        except InvalidEvent as exc:
            return google_error(400, exc.reason, str(exc))
        except times.BadTime as exc:
            return google_error(400, "badRequest", str(exc))

    # ---- calendars -----------------------------------------------------------------------

    async def get_calendar(
        self, request: Request, token: AccessToken, params: dict[str, str]
    ) -> Response:
        """``calendars.get``. https://developers.google.com/calendar/api/v3/reference/calendars/get"""
        calendar = self._calendar(token, params["calendar"], write=False)
        return JSONResponse(
            {
                "kind": "calendar#calendar",
                "etag": f'"{secrets.token_hex(8)}"',
                "id": calendar.id,
                "summary": calendar.room.name if calendar.room else calendar.id,
                "timeZone": calendar.timezone,
            }
        )

    # ---- events.list ---------------------------------------------------------------------

    def _page_size(self, request: Request) -> int:
        text = request.query_params.get("maxResults")
        if text is None:
            return DEFAULT_MAX_RESULTS
        try:
            size = int(text)
        except ValueError:
            raise InvalidEvent(
                f"Invalid value '{text}'. Values must match the following "
                "regular expression: '-?\\d+'"
            ) from None
        if size < 1:
            raise InvalidEvent(
                f"Invalid value '{text}'. Values must be within the range: [1, 2500]"
            )
        return min(size, MAX_MAX_RESULTS)  # "The page size can never be larger than 2500"

    @staticmethod
    def _property_filters(request: Request, name: str) -> list[tuple[str, str]]:
        filters = []
        for constraint in request.query_params.getlist(name):
            key, sep, value = constraint.partition("=")
            if not sep:
                raise InvalidEvent(f"Invalid {name} constraint: {constraint}")
            filters.append((key, value))
        return filters

    def _list_body(
        self, calendar: Calendar, token: AccessToken, items: list[dict[str, Any]]
    ) -> dict[str, Any]:
        return {
            "kind": "calendar#events",
            "etag": f'"p{secrets.token_hex(8)}"',
            "summary": calendar.room.name if calendar.room else calendar.id,
            "description": "",
            "updated": times.format_rfc3339(self.calendars._clock()),
            "timeZone": calendar.timezone,
            "accessRole": "owner" if calendar.owner.lower() == token.subject.lower() else "reader",
            "defaultReminders": [],
            "items": items,
        }

    def _issue_sync_token(
        self, calendar: Calendar, window: tuple[datetime | None, datetime | None]
    ) -> str:
        token = "CP" + secrets.token_urlsafe(24)
        self._sync[token] = SyncState(calendar.id, calendar.epoch, self.calendars.seq, window)
        return token

    async def list_events(
        self, request: Request, token: AccessToken, params: dict[str, str]
    ) -> Response:
        """``events.list``: paged; ``nextSyncToken`` only on the last page.

        Full listings take ``timeMin``/``timeMax`` (RFC 3339 with offset; timeMax before
        timeMin is 400 ``timeRangeEmpty``), ``singleEvents``, ``showDeleted``, ``iCalUID``,
        ``privateExtendedProperty``/``sharedExtendedProperty`` (``key=value``, all must
        match), ``q``, ``updatedMin`` and ``orderBy`` (``startTime`` needs singleEvents).
        A ``syncToken`` may not come with the filters above (400); it answers what changed
        since, deleted events included; an expired or unknown one is 410
        ``fullSyncRequired``; an unchanged calendar answers the same token again.
        ``maxResults`` defaults to 250, pages never exceed 2500, a short page may still
        carry a ``nextPageToken``.
        https://developers.google.com/calendar/api/v3/reference/events/list
        https://developers.google.com/calendar/api/guides/sync
        https://developers.google.com/calendar/api/guides/errors#410_gone
        """
        calendar = self._calendar(token, params["calendar"], write=False)
        query = request.query_params
        size = self._page_size(request)
        page_token = query.get("pageToken")
        sync_token = query.get("syncToken")
        key = tuple(
            f"{k}={v}"
            for k, v in sorted(query.multi_items())
            if k not in {"pageToken", "maxResults"}
        )
        with self.calendars.lock:
            if page_token:
                state = self._pages.get(page_token)
                if state is None or state.key != key:
                    return google_error(400, "invalid", "Invalid page token value.")
                items, final_token = state.items, state.sync_token
            else:
                found = self._select(request, calendar, sync_token)
                if isinstance(found, Response):
                    return found
                items, final_token = found
            page, rest = items[:size], items[size:]
            body = self._list_body(calendar, token, page)
            if rest:
                next_token = secrets.token_urlsafe(24)
                self._pages[next_token] = PageState(key, rest, final_token)
                body["nextPageToken"] = next_token
            elif final_token is not None:
                body["nextSyncToken"] = final_token
        return JSONResponse(body)

    def _select(
        self, request: Request, calendar: Calendar, sync_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None] | Response:
        """The whole answer of a first page: its items and the sync token for the last page."""
        query = request.query_params
        single_events = _flag(request, "singleEvents")
        if sync_token is not None:
            for name in NOT_WITH_SYNC_TOKEN:
                if name in query:
                    return google_error(
                        400,
                        "invalid",
                        "Sync token cannot be used with other request restrictions.",
                        location=name,
                    )
            state = self._sync.get(sync_token)
            if (
                state is None
                or state.calendar_id.lower() != calendar.id.lower()
                or state.epoch != calendar.epoch
            ):
                return google_error(
                    410,
                    "fullSyncRequired",
                    "Sync token is no longer valid, a full sync is required.",
                )
            changed = self.calendars.listing(
                calendar.id,
                window=state.window,
                single_events=single_events,
                show_deleted=True,
                since=state.seq,
            )
            if not changed and not any(s > state.seq for s in calendar.seqs.values()):
                return [], sync_token
            ordered = sorted(changed, key=lambda i: (i.resource["updated"], i.resource["id"]))
            return [i.resource for i in ordered], self._issue_sync_token(calendar, state.window)
        window = (
            times.parse_rfc3339(query["timeMin"]) if "timeMin" in query else None,
            times.parse_rfc3339(query["timeMax"]) if "timeMax" in query else None,
        )
        if window[0] and window[1] and window[1] < window[0]:
            return google_error(
                400, "timeRangeEmpty", "The specified time range is empty.", location="timeMax"
            )
        order_by = query.get("orderBy")
        if order_by not in {None, "startTime", "updated"}:
            return google_error(400, "invalid", f"Invalid value for orderBy: {order_by}")
        if order_by == "startTime" and not single_events:
            return google_error(
                400,
                "badRequest",
                "The requested ordering is not available for the particular query.",
            )
        private = self._property_filters(request, "privateExtendedProperty")
        shared = self._property_filters(request, "sharedExtendedProperty")
        ical_uid = query.get("iCalUID")
        text = (query.get("q") or "").lower()
        updated_min = times.parse_rfc3339(query["updatedMin"]) if "updatedMin" in query else None
        show_deleted = _flag(request, "showDeleted") or updated_min is not None
        found = self.calendars.listing(
            calendar.id, window=window, single_events=single_events, show_deleted=show_deleted
        )

        def wanted(item: Instance) -> bool:
            resource = item.resource
            properties = resource.get("extendedProperties") or {}
            if any((properties.get("private") or {}).get(k) != v for k, v in private):
                return False
            if any((properties.get("shared") or {}).get(k) != v for k, v in shared):
                return False
            if ical_uid is not None and resource.get("iCalUID") != ical_uid:
                return False
            if updated_min is not None and times.parse_rfc3339(resource["updated"]) < updated_min:
                return False
            haystack = " ".join(
                str(resource.get(k, "")) for k in ("summary", "description", "location")
            )
            return not text or text in haystack.lower()

        selected = [i for i in found if wanted(i)]
        if order_by == "startTime":
            selected.sort(key=lambda i: (i.start, i.resource["id"]))
        elif order_by == "updated":
            selected.sort(key=lambda i: (i.resource["updated"], i.resource["id"]))
        # Filtered listings carry no sync token: they cannot be continued incrementally.
        filtered = bool(private or shared or ical_uid or text or order_by or updated_min)
        sync = None if filtered else self._issue_sync_token(calendar, window)
        return [i.resource for i in selected], sync

    async def instances(
        self, request: Request, token: AccessToken, params: dict[str, str]
    ) -> Response:
        """``events.instances``: the instances of a recurring event, paged.

        https://developers.google.com/calendar/api/v3/reference/events/instances
        """
        calendar = self._calendar(token, params["calendar"], write=False)
        master = self.calendars.event(calendar.id, params["event"])
        if master is None:
            raise EventNotFound(params["event"])
        query = request.query_params
        window = (
            times.parse_rfc3339(query["timeMin"]) if "timeMin" in query else None,
            times.parse_rfc3339(query["timeMax"]) if "timeMax" in query else None,
        )
        found = self.calendars.listing(
            calendar.id,
            window=window,
            single_events=True,
            show_deleted=_flag(request, "showDeleted"),
        )
        items = sorted(
            (i for i in found if i.resource.get("recurringEventId") == master["id"]),
            key=lambda i: i.start,
        )
        size = self._page_size(request)
        offset = int(query.get("pageToken") or 0)
        body = self._list_body(calendar, token, [i.resource for i in items[offset : offset + size]])
        if offset + size < len(items):
            body["nextPageToken"] = str(offset + size)
        return JSONResponse(body)

    # ---- single events -------------------------------------------------------------------

    @staticmethod
    async def _json(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            raise InvalidEvent("Parse Error", "parseError") from None
        if not isinstance(body, dict):
            raise InvalidEvent("Parse Error", "parseError")
        return body

    @staticmethod
    def _check_send_updates(request: Request) -> None:
        """``sendUpdates`` is accepted (all / externalOnly / none); the fake sends no mail."""
        value = request.query_params.get("sendUpdates")
        if value is not None and value not in _SEND_UPDATES:
            raise InvalidEvent(f"Invalid value for sendUpdates: {value}")

    async def get_event(
        self, request: Request, token: AccessToken, params: dict[str, str]
    ) -> Response:
        """``events.get``: also answers cancelled events (``status: cancelled``).

        https://developers.google.com/calendar/api/v3/reference/events/get
        """
        calendar = self._calendar(token, params["calendar"], write=False)
        found = self.calendars.event(calendar.id, params["event"])
        if found is None:
            raise EventNotFound(params["event"])
        return JSONResponse(found)

    async def insert_event(
        self, request: Request, token: AccessToken, params: dict[str, str]
    ) -> Response:
        """``events.insert``: a client-chosen id (base32hex, 5–1024) is honoured; a taken id,
        also one of a deleted event, is 409 ``duplicate``.

        https://developers.google.com/calendar/api/v3/reference/events/insert
        https://developers.google.com/calendar/api/guides/errors#409_the_requested_identifier_already_exists
        """
        calendar = self._calendar(token, params["calendar"], write=True)
        self._check_send_updates(request)
        created = self.calendars.insert(
            calendar.id, await self._json(request), creator=token.subject
        )
        return JSONResponse(created)

    async def patch_event(
        self, request: Request, token: AccessToken, params: dict[str, str]
    ) -> Response:
        """``events.patch`` (patch semantics); ``If-Match`` with another etag is 412.

        https://developers.google.com/calendar/api/v3/reference/events/patch
        https://developers.google.com/calendar/api/guides/version-resources
        """
        calendar = self._calendar(token, params["calendar"], write=True)
        self._check_send_updates(request)
        updated = self.calendars.update(
            calendar.id,
            params["event"],
            await self._json(request),
            if_match=request.headers.get("if-match"),
        )
        return JSONResponse(updated)

    async def update_event(
        self, request: Request, token: AccessToken, params: dict[str, str]
    ) -> Response:
        """``events.update``: the body replaces the event; ``If-Match`` as for patch.

        https://developers.google.com/calendar/api/v3/reference/events/update
        """
        calendar = self._calendar(token, params["calendar"], write=True)
        self._check_send_updates(request)
        updated = self.calendars.update(
            calendar.id,
            params["event"],
            await self._json(request),
            replace=True,
            if_match=request.headers.get("if-match"),
        )
        return JSONResponse(updated)

    async def delete_event(
        self, request: Request, token: AccessToken, params: dict[str, str]
    ) -> Response:
        """``events.delete``: 204; the event stays as ``cancelled``; deleting again is 410.

        https://developers.google.com/calendar/api/v3/reference/events/delete
        """
        calendar = self._calendar(token, params["calendar"], write=True)
        self._check_send_updates(request)
        self.calendars.delete(
            calendar.id, params["event"], if_match=request.headers.get("if-match")
        )
        return Response(status_code=204)

    # ---- freeBusy ------------------------------------------------------------------------

    async def free_busy(
        self, request: Request, token: AccessToken, params: dict[str, str]
    ) -> Response:
        """``freeBusy.query``: merged busy periods of opaque, non-cancelled events, clipped
        to the range; an unknown calendar gets ``errors: [{domain: global, reason:
        notFound}]`` inside the 200. At most 50 calendars (``calendarExpansionMax``) and a
        range of at most 90 days ("The requested time range is too long.").
        https://developers.google.com/calendar/api/v3/reference/freebusy/query
        https://developers.google.com/calendar/api/guides/errors#400_bad_request
        """
        body = await self._json(request)
        for name in ("timeMin", "timeMax"):
            if not body.get(name):
                return google_error(400, "required", "Required", location=name)
        low, high = times.parse_rfc3339(body["timeMin"]), times.parse_rfc3339(body["timeMax"])
        if high <= low:
            return google_error(
                400, "timeRangeEmpty", "The specified time range is empty.", location="timeMax"
            )
        if high - low > MAX_FREEBUSY_SPAN:
            return google_error(400, "timeRangeTooLong", "The requested time range is too long.")
        items = body.get("items") or []
        if len(items) > MAX_FREEBUSY_CALENDARS:
            return google_error(
                400,
                "tooManyCalendarsRequested",
                "The number of calendars requested is too large for a single query.",
            )
        shown_zone = times.zone(body.get("timeZone") or "UTC")
        calendars: dict[str, Any] = {}
        for item in items:
            calendar_id = str((item or {}).get("id", ""))
            wanted = token.subject if calendar_id == "primary" else calendar_id
            calendar = self.calendars.find(wanted)
            if calendar is None:
                calendars[calendar_id] = {
                    "errors": [{"domain": "global", "reason": "notFound"}],
                    "busy": [],
                }
                continue
            periods: list[list[datetime]] = []
            for busy in self.calendars.busy(calendar.id, low, high):
                if not is_busy(busy.resource):
                    continue
                start, end = max(busy.start, low), min(busy.end, high)
                if end <= start:
                    continue
                if periods and start <= periods[-1][1]:
                    periods[-1][1] = max(periods[-1][1], end)
                else:
                    periods.append([start, end])
            calendars[calendar_id] = {
                "busy": [
                    {
                        "start": times.format_offset(s.astimezone(shown_zone)),
                        "end": times.format_offset(e.astimezone(shown_zone)),
                    }
                    for s, e in periods
                ]
            }
        return JSONResponse(
            {
                "kind": "calendar#freeBusy",
                "timeMin": times.format_offset(low.astimezone(UTC)),
                "timeMax": times.format_offset(high.astimezone(UTC)),
                "calendars": calendars,
            }
        )

    # ---- push ----------------------------------------------------------------------------

    async def watch(self, request: Request, token: AccessToken, params: dict[str, str]) -> Response:
        """``events.watch`` (see push.py)."""
        calendar = self._calendar(token, params["calendar"], write=False)
        return await self.channels.watch(request, calendar.id)

    async def stop_channel(
        self, request: Request, token: AccessToken, params: dict[str, str]
    ) -> Response:
        """``channels.stop`` (see push.py)."""
        return await self.channels.stop_channel(request)

    def expire_sync_tokens(self, calendar_id: str | None = None) -> None:
        with self.calendars.lock:
            targets = [self.calendars.get(calendar_id)] if calendar_id else self.calendars.all()
            for calendar in targets:
                calendar.epoch += 1
