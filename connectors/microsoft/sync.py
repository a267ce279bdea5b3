"""Reading a mailbox's calendar: delta rounds over the window, plain
calendarView reads, and the cursor.

A listing is a new ``calendarView/delta`` round over the window: pages of
``Prefer: odata.maxpagesize`` items, ``@odata.nextLink`` to follow (an
empty page with one means go on) until a page carries the
``@odata.deltaLink``, which is the cursor's heart.  Following it later
answers what changed since: changed instances in full, removed ones as
``{"id", "@removed"}``.  A 410 (``syncStateNotFound``, ``resyncRequired``)
is ``CursorExpired``: the engine lists the window anew.
https://learn.microsoft.com/en-us/graph/delta-query-events
https://learn.microsoft.com/en-us/graph/api/event-delta

Delta answers name instances, calpool caches objects: a change to one
occurrence (or its removal, which names only the occurrence's id) means
the whole series is reported again, so the cursor remembers which
occurrence ids belong to which series, and a round that touched a series
reads that series' instances in the window once with a plain
calendarView (delta may not resend the unchanged ones).

Delta refuses ``$expand`` (400), so its items carry no extended
properties: sync recognises calpool's events by their ``transactionId``
(:func:`~connectors.microsoft.account.booking_of_transaction`); plain
calendarView reads also ask for the booking property.

Times are asked for in UTC (``Prefer: outlook.timezone="UTC"``); zones
named in the answer, Windows ones included, are read all the same.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

from connectors.microsoft import times
from connectors.microsoft.account import BOOKING_PROPERTY
from connectors.microsoft.events import JSON, group, is_series_item, source_of
from connectors.microsoft.graph import GraphSession, mailbox_path
from engine.core.model import ChangeSet, Interval, RemoteEvent
from engine.errors import AuthFailed, CursorExpired, NotFound, PermanentError
from engine.ports import CalendarRef

CURSOR_PREFIX = "g1:"
MAX_PAGES = 10_000  # a round longer than this is a server that never ends it
NEW_ROUNDS = 3  # a listing begun again when Graph forgets its state mid-round
EXPAND_BOOKING = f"singleValueExtendedProperties($filter=id eq '{BOOKING_PROPERTY}')"


@dataclass(frozen=True)
class Cursor:
    """Where a delta round ended, for one mailbox: the deltaLink and the
    series each known occurrence id belongs to."""

    mailbox: str
    delta_link: str
    series: Mapping[str, str] = field(default_factory=dict)

    def encode(self) -> str:
        masters = sorted(set(self.series.values()))
        index = {master: n for n, master in enumerate(masters)}
        document = {"u": self.mailbox.lower(), "d": self.delta_link, "m": masters,
                    "s": {occurrence: index[m] for occurrence, m in self.series.items()}}
        packed = zlib.compress(json.dumps(document, separators=(",", ":")).encode(), 9)
        return CURSOR_PREFIX + base64.urlsafe_b64encode(packed).decode()

    @classmethod
    def decode(cls, text: str, *, mailbox: str) -> Cursor:
        """The cursor ``text`` stands for; :class:`CursorExpired` for a
        forged one, or one of another mailbox."""
        refused = CursorExpired("not a cursor of this mailbox's delta rounds",
                                cursor=text, calendar=mailbox)
        if not text.startswith(CURSOR_PREFIX):
            raise refused
        try:
            packed = base64.urlsafe_b64decode(text[len(CURSOR_PREFIX):].encode())
            document = json.loads(zlib.decompress(packed))
            owner, link = str(document["u"]), str(document["d"])
            masters = [str(m) for m in document["m"]]
            series = {str(k): masters[int(v)] for k, v in dict(document["s"]).items()}
        except (binascii.Error, zlib.error, ValueError, KeyError, TypeError, IndexError):
            raise refused from None
        if owner != mailbox.lower():
            raise refused
        return cls(owner, link, series)


@dataclass
class Round:
    """What one delta round answered."""

    items: list[JSON] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    delta_link: str = ""


class CalendarReader:
    """The reads of one mailbox's default calendar."""

    def __init__(self, graph: GraphSession, calendar: CalendarRef) -> None:
        self._graph = graph
        self._calendar = calendar
        self._base = mailbox_path(calendar.id)
        account = graph.account
        self._prefer = {
            "Prefer": f'outlook.timezone="UTC", odata.maxpagesize={account.page_size}'}
        self._tentative_is_busy = account.tentative_is_busy

    # -- pages -------------------------------------------------------------------

    def _pages(self, path: str, params: Mapping[str, str] | None) -> Iterator[JSON]:
        """Every page from ``path`` on, following ``@odata.nextLink``; the
        last page is the one without a nextLink."""
        page = self._graph.json("GET", path, params=params, headers=self._prefer)
        for _ in range(MAX_PAGES):
            yield page
            link = page.get("@odata.nextLink")
            if not link:
                return
            page = self._graph.json("GET", str(link), headers=self._prefer)
        raise PermanentError(f"{path}: still more pages after {MAX_PAGES}")

    def _round(self, path: str, params: Mapping[str, str] | None) -> Round:
        found = Round()
        for page in self._pages(path, params):
            for item in page.get("value") or ():
                if not isinstance(item, dict) or not item.get("id"):
                    continue
                if "@removed" in item:
                    found.removed.append(str(item["id"]))
                else:
                    found.items.append(item)
            link = page.get("@odata.deltaLink")
            if link:
                found.delta_link = str(link)
        if not found.delta_link:
            raise PermanentError(f"{path}: a delta round ended without a deltaLink")
        return found

    def _window_params(self, window: Interval) -> dict[str, str]:
        return {"startDateTime": times.query_instant(window.start),
                "endDateTime": times.query_instant(window.end)}

    def _meeting(self, organizer: str, uid: str) -> list[JSON]:
        """The organizer's events of the meeting ``uid``; none when that
        mailbox cannot be asked (outside the tenant, or not readable)."""
        params = {"$filter": f"iCalUId eq '{uid.replace(chr(39), chr(39) * 2)}'",
                  "$expand": EXPAND_BOOKING}
        try:
            answer = self._graph.json("GET", mailbox_path(organizer) + "/events", params=params)
        except (NotFound, AuthFailed, PermanentError):
            return []
        return [item for item in answer.get("value") or () if isinstance(item, dict)]

    def _objects(self, items: list[JSON]) -> tuple[dict[str, tuple[RemoteEvent, ...]],
                                                    dict[str, str]]:
        items = self._graph.origins.attribute(items, mailbox=self._calendar.id,
                                              lookup=self._meeting)
        grouped = group(items, calendar_zone=self._calendar.timezone,
                        tentative_is_busy=self._tentative_is_busy)
        objects = {source: tuple(sorted(events, key=lambda e: (e.start, e.instance)))
                   for source, events in grouped.objects.items()}
        return objects, grouped.unreadable

    @staticmethod
    def _series_of(items: list[JSON]) -> dict[str, str]:
        return {str(item["id"]): source_of(item) for item in items if is_series_item(item)}

    # -- the port's reads ------------------------------------------------------------

    def list_window(self, window: Interval) -> ChangeSet:
        found = self._new_round(window)
        objects, unreadable = self._objects(found.items)
        cursor = Cursor(self._calendar.id, found.delta_link, self._series_of(found.items))
        return ChangeSet(cursor=cursor.encode(), objects=objects, full=True,
                         unreadable=unreadable)

    def _new_round(self, window: Interval) -> Round:
        """A new delta round over ``window``; when Graph forgets the round's
        state while it is paged (410 on a nextLink), it is begun again,
        up to :data:`NEW_ROUNDS` times."""
        for attempt in range(NEW_ROUNDS):
            try:
                return self._round(self._base + "/calendarView/delta",
                                   self._window_params(window))
            except CursorExpired:
                if attempt == NEW_ROUNDS - 1:
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    def changes_since(self, cursor_text: str, window: Interval) -> ChangeSet:
        cursor = Cursor.decode(cursor_text, mailbox=self._calendar.id)
        try:
            own = unquote(self._graph.account.graph_url + self._base + "/").lower()
            if not unquote(cursor.delta_link).lower().startswith(own):
                raise CursorExpired("the cursor's deltaLink is not this mailbox's",
                                    cursor=cursor_text)
            found = self._round(cursor.delta_link, None)
        except CursorExpired as exc:
            raise CursorExpired(exc.detail, cursor=cursor_text,
                                calendar=self._calendar.id) from exc
        series = dict(cursor.series)
        objects: dict[str, tuple[RemoteEvent, ...]] = {}
        touched: set[str] = set()
        singles = []
        for item in found.items:
            if is_series_item(item):
                touched.add(source_of(item))
            else:
                singles.append(item)
        for removed in found.removed:
            if removed in series:
                touched.add(series.pop(removed))
            else:
                objects[removed] = ()
        changed, unreadable = self._objects(singles)
        objects.update(changed)
        if touched:
            # The whole of every series that changed, read once as it is now.
            current = [item for item in self._view(window)
                       if is_series_item(item) and source_of(item) in touched]
            series = {k: v for k, v in series.items() if v not in touched}
            series.update(self._series_of(current))
            objects.update(dict.fromkeys(touched, ()))
            reread, unreadable_series = self._objects(current)
            objects.update(reread)
            unreadable.update(unreadable_series)
        objects.update(dict.fromkeys(unreadable, ()))
        next_cursor = Cursor(self._calendar.id, found.delta_link, series)
        return ChangeSet(cursor=next_cursor.encode(), objects=objects, full=False,
                         unreadable=unreadable)

    def _view(self, window: Interval) -> list[JSON]:
        """Every instance in ``window`` by a plain calendarView (no delta
        round), with the booking property."""
        params = {**self._window_params(window), "$expand": EXPAND_BOOKING}
        items: list[JSON] = []
        for page in self._pages(self._base + "/calendarView", params):
            items += [item for item in page.get("value") or ()
                      if isinstance(item, dict) and item.get("id")]
        return items

    def events_in(self, window: Interval) -> tuple[RemoteEvent, ...]:
        objects, _ = self._objects(self._view(window))
        return tuple(event for events in objects.values() for event in events)

