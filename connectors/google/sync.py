"""Listing a Google calendar, following its changes, asking free/busy.

Recurring events are read with ``singleEvents=true``: Google expands each
series into its instances, exceptions applied, and calpool does no RRULE
expansion of its own.  Why, rather than masters plus local expansion:

- the window moves every day, and Google's expansion answers for any
  window the same way its own clients show the series (its RRULE reading,
  its zone rules, the exceptions a person made in any client);
- an exception (one occurrence moved, or made free) is simply that
  instance with its own times and transparency, and a single cancelled
  occurrence is an instance with ``status: cancelled`` — a tombstone that a
  master-plus-exceptions reading would have to pair with its RRULE;
- incremental sync must keep the full sync's parameters, and with
  ``singleEvents=true`` it reports changed and cancelled *instances*.  An
  instance changed alone is reported under its series, so the series is
  read anew in the window with ``events.instances`` and reported whole, as
  the connector protocol wants every instance of a changed object.

The full listing is bounded by the window (``timeMin``/``timeMax``) and
follows every ``pageToken``; ``nextSyncToken`` comes only on the last page.
Incremental calls send ``syncToken`` alone (with ``singleEvents`` as in the
full sync): Google refuses it with ``timeMin``, ``timeMax``, ``updatedMin``,
``q``, ``orderBy``, ``iCalUID`` and property filters.  A cursor is
``gs1:<calendar tag>:<sync token>``; the tag binds it to its calendar, so
another calendar's cursor expires here instead of being sent.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from googleapiclient.errors import HttpError

from connectors.google.events import (
    Resource,
    UnreadableEvent,
    is_instance,
    remote_event,
    source_of,
)
from engine.core.model import ChangeSet, Interval, RemoteEvent
from engine.errors import (
    AuthFailed,
    ConnectorError,
    CursorExpired,
    NotFound,
    PermanentError,
    TransientError,
)
from engine.ports import FreeBusy

log = logging.getLogger(__name__)

CURSOR_PREFIX = "gs1:"
PAGE_SIZE = 250  # Google's default; the maximum is 2500
FREE_BUSY_BATCH = 50  # calendars per freeBusy.query
FREE_BUSY_SPAN = timedelta(days=90)  # "The requested time range is too long" beyond


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def calendar_tag(calendar_id: str) -> str:
    return hashlib.sha256(calendar_id.encode()).hexdigest()[:12]


def encode_cursor(calendar_id: str, token: str) -> str:
    return f"{CURSOR_PREFIX}{calendar_tag(calendar_id)}:{token}"


def decode_cursor(calendar_id: str, cursor: str) -> str:
    """The sync token of ``cursor``; ``CursorExpired`` when it is not one of
    this calendar's."""
    tag, _, token = cursor.removeprefix(CURSOR_PREFIX).partition(":")
    if not cursor.startswith(CURSOR_PREFIX) or not token:
        raise CursorExpired("not a Google sync cursor", cursor=cursor, calendar=calendar_id)
    if tag != calendar_tag(calendar_id):
        raise CursorExpired("the sync token of another calendar", cursor=cursor,
                            calendar=calendar_id)
    return token


class CalendarSync:
    """Sync of one calendar over one Calendar service."""

    def __init__(self, service: Any, calendar_id: str, *, zone: str) -> None:
        self._events = service.events()
        self._calendar_id = calendar_id
        self._zone = zone

    # -- listing -----------------------------------------------------------

    def _pages(self, **params: Any) -> Iterator[Resource]:
        """Every page of one events.list, following ``nextPageToken``."""
        page_token: str | None = None
        while True:
            extra = {"pageToken": page_token} if page_token else {}
            page = self._events.list(calendarId=self._calendar_id, singleEvents=True,
                                     maxResults=PAGE_SIZE, **params, **extra).execute()
            yield page
            page_token = page.get("nextPageToken")
            if not page_token:
                return

    def _windowed(self, window: Interval) -> tuple[list[Resource], str]:
        """Every event and instance overlapping ``window`` (cancelled ones
        left out), and the sync token of the last page."""
        items: list[Resource] = []
        token = ""
        for page in self._pages(timeMin=rfc3339(window.start), timeMax=rfc3339(window.end)):
            items.extend(page.get("items", ()))
            token = page.get("nextSyncToken", "")
        return items, token

    def list_window(self, window: Interval) -> ChangeSet:
        items, token = self._windowed(window)
        if not token:
            raise PermanentError("Google's last page carried no nextSyncToken",
                                 calendar=self._calendar_id)
        unreadable: dict[str, str] = {}
        objects = self._group(items, window, unreadable)
        return ChangeSet(cursor=encode_cursor(self._calendar_id, token),
                         objects={s: e for s, e in objects.items() if e}, full=True,
                         unreadable=unreadable)

    def changes_since(self, cursor: str, window: Interval) -> ChangeSet:
        token = decode_cursor(self._calendar_id, cursor)
        changed: list[Resource] = []
        next_token = ""
        try:
            for page in self._pages(syncToken=token):
                changed.extend(page.get("items", ()))
                next_token = page.get("nextSyncToken", "")
        except CursorExpired as exc:
            raise CursorExpired(exc.detail, cursor=cursor, calendar=self._calendar_id) from exc
        if not next_token:
            raise PermanentError("Google's last page carried no nextSyncToken",
                                 calendar=self._calendar_id)
        singles = [e for e in changed if not is_instance(e)]
        series = {source_of(e) for e in changed if is_instance(e)}
        unreadable: dict[str, str] = {}
        objects = self._group([e for e in singles if e.get("status") != "cancelled"],
                              window, unreadable)
        for event in singles:
            objects.setdefault(source_of(event), ())  # cancelled, or outside the window
        for source in sorted(series):
            # A changed instance stands for its series: read the series'
            # instances in the window anew and report them all.
            instances = self._instances(source, window)
            objects[source] = self._group(instances, window, unreadable).get(source, ())
        return ChangeSet(cursor=encode_cursor(self._calendar_id, next_token), objects=objects,
                         full=False, unreadable=unreadable)

    def _instances(self, series: str, window: Interval) -> list[Resource]:
        """Every instance of ``series`` in ``window`` (``events.instances``,
        all pages); none when the series is gone."""
        items: list[Resource] = []
        page_token: str | None = None
        while True:
            extra = {"pageToken": page_token} if page_token else {}
            try:
                page = self._events.instances(
                    calendarId=self._calendar_id, eventId=series, timeMin=rfc3339(window.start),
                    timeMax=rfc3339(window.end), maxResults=PAGE_SIZE, **extra).execute()
            except HttpError as exc:
                if exc.resp.status in (404, 410):
                    return []  # the whole series was deleted
                raise
            items.extend(page.get("items", ()))
            page_token = page.get("nextPageToken")
            if not page_token:
                return items

    def events_in(self, window: Interval) -> tuple[RemoteEvent, ...]:
        items, _ = self._windowed(window)  # its token is dropped: no sync state moves
        return tuple(e for found in self._group(items, window).values() for e in found)

    def _group(self, items: Sequence[Resource], window: Interval,
               unreadable: dict[str, str] | None = None) -> dict[str, tuple[RemoteEvent, ...]]:
        """Events by source, only instances overlapping ``window``; an event
        whose timing cannot be read is reported gone and named in
        ``unreadable``."""
        grouped: dict[str, list[RemoteEvent]] = {}
        for item in items:
            source = source_of(item)
            found = grouped.setdefault(source, [])
            if item.get("status") == "cancelled":
                continue
            try:
                event = remote_event(item, self._zone)
            except UnreadableEvent as exc:
                log.warning("google: skipping unreadable event %s of %s: %s",
                            item.get("id"), self._calendar_id, exc.reason)
                if unreadable is not None:
                    unreadable[source] = exc.reason
                continue
            if _in_window(event, window):
                found.append(event)
        return {source: tuple(sorted(found, key=lambda e: (e.start, e.instance)))
                for source, found in grouped.items()}


def _in_window(event: RemoteEvent, window: Interval) -> bool:
    if event.start == event.end:  # a moment: inside when it lies in the window
        return window.start <= event.start < window.end
    return event.start < window.end and window.start < event.end


def free_busy(service: Any, calendar_ids: Sequence[str], window: Interval) -> FreeBusy:
    """``freeBusy.query`` in batches of at most 50 calendars and chunks of at
    most 90 days; a calendar Google reports an error for is in
    ``FreeBusy.errors`` (its first error wins over any chunk that answered)."""
    busy: dict[str, list[tuple[datetime, datetime]]] = {cid: [] for cid in calendar_ids}
    errors: dict[str, ConnectorError] = {}
    chunks: list[Interval] = []
    start = window.start
    while start < window.end:
        end = min(window.end, start + FREE_BUSY_SPAN)
        chunks.append(Interval(start, end))
        start = end
    ids = list(dict.fromkeys(calendar_ids))
    for first in range(0, len(ids), FREE_BUSY_BATCH):
        batch = ids[first:first + FREE_BUSY_BATCH]
        for chunk in chunks:
            answer = service.freebusy().query(body={
                "timeMin": rfc3339(chunk.start), "timeMax": rfc3339(chunk.end),
                "timeZone": "UTC", "items": [{"id": cid} for cid in batch],
            }).execute()
            calendars: Mapping[str, Any] = answer.get("calendars", {})
            for cid in batch:
                entry = calendars.get(cid)
                if entry is None:
                    errors.setdefault(cid, PermanentError(
                        "Google's free/busy answer left this calendar out", calendar=cid))
                    continue
                if entry.get("errors"):
                    errors.setdefault(cid, _calendar_error(entry["errors"], cid))
                    continue
                for span in entry.get("busy", ()):
                    busy[cid].append((_instant(span["start"]), _instant(span["end"])))
    merged = {cid: _merge(spans, window) for cid, spans in busy.items() if cid not in errors}
    return FreeBusy(merged, errors)


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _calendar_error(entries: Sequence[Mapping[str, Any]], calendar_id: str) -> ConnectorError:
    """One calendar's ``errors`` inside a 200 free/busy answer
    (https://developers.google.com/workspace/calendar/api/v3/reference/freebusy/query)."""
    reasons = [str(e.get("reason", "")) for e in entries]
    detail = f"Google could not answer free/busy: {', '.join(reasons)}"
    if "notFound" in reasons:
        return NotFound(detail, calendar=calendar_id)
    if {"backendError", "internalError"} & set(reasons):
        return TransientError(detail, calendar=calendar_id)
    if {"groupTooBig", "tooManyCalendarsRequested", "timeRangeEmpty"} & set(reasons):
        return PermanentError(detail, calendar=calendar_id)
    # Anything else ("forbidden" and the like): the subject may not read
    # this calendar's free/busy.
    return AuthFailed(detail, calendar=calendar_id)


def _merge(spans: list[tuple[datetime, datetime]], window: Interval) -> tuple[Interval, ...]:
    clipped = sorted((max(s, window.start), min(e, window.end)) for s, e in spans)
    merged: list[list[datetime]] = []
    for start, end in clipped:
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple(Interval(start, end) for start, end in merged)
